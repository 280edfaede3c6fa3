# Prints "LINE: duplicate key KEY" for every mapping key that appears twice in one mapping of a
# YAML stream in block style (what helm renders). Block scalars (| and >) are skipped.
function reset_deeper(level,    k) {
  for (k in seen) {
    split(k, parts, SUBSEP)
    if (parts[1] + 0 >= level) delete seen[k]
  }
}
/^---/ { delete seen; scalar = -1; next }
{
  match($0, /^ */)
  indent = RLENGTH
  if (scalar >= 0) {
    if (indent > scalar || $0 ~ /^ *$/) next
    scalar = -1
  }
  if ($0 ~ /^ *(#|$)/) next
  line = substr($0, indent + 1)
  if (line ~ /^- /) {
    # A list item starts a new mapping two columns in.
    reset_deeper(indent + 1)
    indent += 2
    line = substr(line, 3)
  }
  if (match(line, /^[^:#"' ][^:]*: /) || match(line, /^[^:#"' ][^:]*:$/)) {
    key = line
    sub(/:( .*)?$/, "", key)
    reset_deeper(indent + 1)
    if ((indent, key) in seen) print NR ": duplicate key " key
    seen[indent, key] = 1
    if (line ~ /: *[|>][-+]?[0-9]*$/) scalar = indent
  }
}
