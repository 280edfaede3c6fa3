#!/usr/bin/env bash
# `make lint`: clang-format on every tracked C++ file (no rewrite, any difference fails), then
# clang-tidy (.clang-tidy at the root) on our .cc files as build/compile_commands.json compiles them.
# Usage: scripts/lint.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$root"
[[ $build == /* ]] || build="$root/$build"

mapfile -t sources < <(git ls-files -- '*.h' '*.cc' '*.hpp' '*.cpp')
if ((${#sources[@]} == 0)); then
  echo "lint: no C++ files tracked" >&2
  exit 0
fi
echo "lint: clang-format --dry-run on ${#sources[@]} files"
clang-format --dry-run -Werror "${sources[@]}"

[ -f "$build/compile_commands.json" ] ||
  { echo "lint: $build/compile_commands.json is missing; configure with 'make configure'" >&2; exit 1; }
# Only the tracked .cc files that the build compiles: a file outside the compilation database
# would be checked without its flags and fail for the wrong reason.
mapfile -t units < <(python3 - "$build/compile_commands.json" "$root" "${sources[@]}" <<'PY'
import json, os, sys
db, root, tracked = sys.argv[1], sys.argv[2], sys.argv[3:]
compiled = {os.path.normpath(os.path.join(e["directory"], e["file"])) for e in json.load(open(db))}
for f in tracked:
    if f.endswith((".cc", ".cpp")) and os.path.join(root, f) in compiled:
        print(f)
PY
)
if ((${#units[@]} == 0)); then
  echo "lint: no compiled .cc files to run clang-tidy on"
  exit 0
fi
echo "lint: clang-tidy on ${#units[@]} files"
# xargs runs one clang-tidy per core and exits non-zero if any of them found something; sed drops
# the compiler's "N warnings generated." counts of diagnostics in system headers, which say nothing.
printf '%s\0' "${units[@]}" |
  xargs -0 -n 1 -P "$(nproc)" clang-tidy -p "$build" --quiet 2>&1 |
  sed '/^[0-9]* warnings\{0,1\} generated\.$/d'
echo "lint: clean"
