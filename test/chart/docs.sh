#!/usr/bin/env bash
# docs/configuration.md covers the whole configuration surface, and this fails when something is
# added without it:
#   - every key of charts/picket/values.yaml, by its dotted path in backticks
#     (`webhook.timeoutSeconds`) in the section `## Helm values`; a key inside a documented map
#     of two or more levels, such as `webhook.resources`, counts as covered by it;
#   - every flag that a program's --help prints, in backticks in that program's own section
#     (`## picket-operator`, `### picketctl render`, ...), and a section for each picketctl command;
#   - every picket.dev/* and traffic.picket.dev/* name (labels, annotations, the API group, Event
#     reporters) in the programs' sources and the chart's templates.
# Usage: docs.sh PICKET_WEBHOOK PICKET_OPERATOR PICKET_INIT PICKETCTL
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
(($# == 4)) || { echo "usage: $0 PICKET_WEBHOOK PICKET_OPERATOR PICKET_INIT PICKETCTL" >&2; exit 2; }

exec python3 - "$root" "$@" <<'PY'
import os, re, subprocess, sys
import yaml

root, webhook, operator, init, picketctl = sys.argv[1:]
doc_path = os.path.join(root, "docs/configuration.md")
doc = open(doc_path, encoding="utf-8").read()
missing = []


def mentioned(text, name):
    # `name`, `name VALUE`, `name=...`, `name[=BOOL]`, `name,` ...: the name whole, in a code span.
    return re.search(r"`" + re.escape(name) + r"(?![\w.-])[^`]*`", text) is not None


def section(heading):
    # The text below a heading up to the next heading of the same or a higher level.
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(r"^" + re.escape(heading) + r"\s*$", doc, re.M)
    if match is None:
        return None
    end = re.compile(r"^#{1,%d} " % level, re.M).search(doc, match.end())
    return doc[match.end():end.start() if end else len(doc)]


# Helm values.
def leaves(node, path):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, path + [str(key)])
    else:
        yield path


values = yaml.safe_load(open(os.path.join(root, "charts/picket/values.yaml"), encoding="utf-8"))
values_doc = section("## Helm values")
if values_doc is None:
    missing.append("section '## Helm values'")
    values_doc = ""
for path in leaves(values, []):
    candidates = [".".join(path[:n]) for n in range(len(path), 1, -1)] or [path[0]]
    if not any(mentioned(values_doc, name) for name in candidates):
        missing.append("Helm value %s" % ".".join(path))


# Flags, from what --help prints.
def help_text(program, *args):
    done = subprocess.run([program, *args, "--help"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        sys.exit("docs: %s %s --help exited %d: %s" % (program, " ".join(args), done.returncode,
                                                     done.stderr))
    return done.stdout + done.stderr


def flags(text):
    # The option lines ("  -f, --filename FILE   ..."), not flags of other tools named in prose.
    found = set()
    for short, long in re.findall(r"^ +(?:(-[a-zA-Z]), +)?(--[a-z][a-z0-9-]*)", text, re.M):
        found.update(flag for flag in (short, long) if flag)
    return sorted(found)


def check_flags(heading, text):
    body = section(heading)
    if body is None:
        missing.append("section %r" % heading)
        return
    found = flags(text)
    if not found:
        sys.exit("docs: no flags found in the help of %s" % heading)
    for flag in found:
        if not mentioned(body, flag):
            missing.append("flag %s under %r" % (flag, heading))


check_flags("## picket-webhook", help_text(webhook))
check_flags("## picket-operator", help_text(operator))
check_flags("## picket-init", help_text(init))
usage = help_text(picketctl)
commands_block = re.search(r"^Commands:\n((?:  .*\n)+)", usage, re.M)
if commands_block is None:
    sys.exit("docs: picketctl --help lists no commands:\n" + usage)
for command in re.findall(r"^  ([a-z][a-z-]*)\s", commands_block.group(1), re.M):
    heading = "### picketctl " + command
    if command == "version":
        # Takes no flags (not even --help); the section must still exist.
        if section(heading) is None:
            missing.append("section %r" % heading)
        continue
    check_flags(heading, help_text(picketctl, command))

# Names under picket.dev that the programs and the chart write or read.
name_pattern = re.compile(r"(?<![\w.-])(?:traffic\.)?picket\.dev/[a-z][a-z0-9-]*[a-z0-9]")
names = set()
for folder in ("webhook", "operator", "controlplane", "init", "cli", "common", "kube",
               "charts/picket/templates"):
    for directory, _, files in os.walk(os.path.join(root, folder)):
        for name in files:
            if name.endswith((".h", ".cc", ".yaml", ".tpl", ".txt")):
                names.update(name_pattern.findall(open(os.path.join(directory, name),
                                                       encoding="utf-8").read()))
if not names:
    sys.exit("docs: found no picket.dev names in the sources")
for name in sorted(names):
    if not mentioned(doc, name):
        missing.append("name %s" % name)

if missing:
    print("docs: docs/configuration.md does not mention:", file=sys.stderr)
    for item in missing:
        print("  " + item, file=sys.stderr)
    sys.exit(1)
print("docs: ok (%d names under picket.dev)" % len(names))
PY
