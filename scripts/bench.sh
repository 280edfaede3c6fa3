#!/usr/bin/env bash
# `make bench`: runs every benchmark program built into BUILD_DIR/bench and prints its figures.
# Benchmarks never pass or fail on time; a benchmark program that crashes fails the run.
# Usage: scripts/bench.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$root"

mapfile -t programs < <(find "$build/bench" -type f -perm -u+x -not -path '*/CMakeFiles/*' 2>/dev/null | sort)
if ((${#programs[@]} == 0)); then
  echo "bench: no benchmark programs in $build/bench"
  exit 0
fi
for program in "${programs[@]}"; do
  echo "== ${program#"$build"/}"
  "$program"
done
