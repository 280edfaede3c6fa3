#!/usr/bin/env bash
# Runs every libFuzzer target of test/fuzz for a set time, one after another, and prints how many
# executions each reached. `make fuzz` calls it after building the targets.
#
#   test/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# SECONDS (default 600) is per target; TARGETs default to every *_fuzz binary built. Each run
# starts from the seed corpus and what earlier runs kept (BUILD_DIR/fuzz/corpus/<target>/), and a
# finding lands in BUILD_DIR/fuzz/artifacts/ with libFuzzer's report in
# BUILD_DIR/fuzz/logs/<target>.log. Exits non-zero when any target found something.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [SECONDS] [TARGET...]" >&2
  exit 2
fi
build_dir=$1
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
source_dir=$(cd "$(dirname "$0")" && pwd)
fuzz_dir=$build_dir/fuzz

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for binary in "$fuzz_dir"/bin/*_fuzz; do
    [[ -x $binary ]] && targets+=("$(basename "$binary" _fuzz)")
  done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "no fuzz targets in $fuzz_dir/bin; build the picket_fuzz target first" >&2
  exit 2
fi

mkdir -p "$fuzz_dir/artifacts" "$fuzz_dir/logs"
failed=0
summary=()
for target in "${targets[@]}"; do
  binary=$fuzz_dir/bin/${target}_fuzz
  if [[ ! -x $binary ]]; then
    echo "no such fuzz target: $binary" >&2
    exit 2
  fi
  mkdir -p "$fuzz_dir/corpus/$target"
  log=$fuzz_dir/logs/$target.log
  echo "fuzz: $target for ${seconds}s (log: $log)"
  status=0
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fuzz_dir/artifacts/$target-" \
    "$fuzz_dir/corpus/$target" "$source_dir/corpus/$target" >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [[ $status -eq 0 ]]; then
    outcome="no finding"
  else
    outcome="FINDING (exit $status; see $log)"
    failed=1
  fi
  summary+=("$(printf '%-16s %14s executions in %ss  %s' "$target" "${executions:-?}" \
    "$seconds" "$outcome")")
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
