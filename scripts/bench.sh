#!/usr/bin/env bash
# `make bench`: runs every benchmark program built into BUILD_DIR/bench, then every bench/*.sh
# script, and prints their figures.
# Benchmarks never pass or fail on time; a benchmark program that crashes fails the run.
# Usage: scripts/bench.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$root"

# operator_bench runs against the local control plane of test/cluster/: start it, or reuse the one
# that runs, which is left running for others (test/cluster/down stops it).
if [[ -x $build/bench/operator_bench ]]; then
  test/cluster/up >/dev/null
fi

mapfile -t programs < <(find "$build/bench" -type f -perm -u+x -not -path '*/CMakeFiles/*' 2>/dev/null | sort)
if ((${#programs[@]} == 0)); then
  echo "bench: no benchmark programs in $build/bench"
else
  for program in "${programs[@]}"; do
    echo "== ${program#"$build"/}"
    "$program"
  done
fi

# Benchmarks of whole command-line runs are scripts in bench/; each takes the build folder.
for script in bench/*.sh; do
  [[ -x $script ]] || continue
  echo "== $script"
  "$script" "$build"
done
