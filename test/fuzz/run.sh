#!/usr/bin/env bash
# Runs every libFuzzer target of test/fuzz for a set time, one after another, and prints how many
# executions each reached. `make fuzz` calls it after building the targets.
#
#   test/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# SECONDS (default 600) is per target; TARGETs default to every *_fuzz binary built. Each run
# starts from the seed corpus and what earlier runs kept (BUILD_DIR/fuzz/corpus/<target>/), and a
# finding lands in BUILD_DIR/fuzz/artifacts/ with libFuzzer's report in
# BUILD_DIR/fuzz/logs/<target>.log (whose end is printed too). Exits non-zero when any target
# found something. `make test` runs each target through this script as well, so the flags below
# are the only ones.
#
# FUZZ_RUNS=N stops a target after N executions (or SECONDS, whichever comes first).
#
# Per target: the input size limit (-max_len) fits what the parser reads (larger inputs only
# repeat structure and cost time), and test/fuzz/dict/<target>.dict holds the field names and
# values the parser looks for. ASan keeps no allocation stack per malloc (malloc_context_size=0):
# recording them took a fifth of the time of the JSON targets. A finding's report then lacks the
# allocation stack; replaying the artifact without ASAN_OPTIONS shows it. Options given in
# ASAN_OPTIONS come last and win.
set -euo pipefail

max_len() {
  case $1 in
    discovery | init_options) echo 1024 ;;
    kubeconfig | injector_config | watch_decoder) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

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
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -max_len="$(max_len "$target")" -artifact_prefix="$fuzz_dir/artifacts/$target-")
  [[ -f $source_dir/dict/$target.dict ]] && flags+=(-dict="$source_dir/dict/$target.dict")
  [[ -n ${FUZZ_RUNS:-} ]] && flags+=(-runs="$FUZZ_RUNS")
  status=0
  # The CPU time it used, besides the wall time: on a shared machine executions per CPU second
  # say how fast a target is, executions per second mostly how busy the machine was.
  TIMEFORMAT='%U %S'
  { time ASAN_OPTIONS="malloc_context_size=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    "$binary" "${flags[@]}" "$fuzz_dir/corpus/$target" "$source_dir/corpus/$target" \
    >"$log" 2>&1 || status=$?; } 2>"$fuzz_dir/logs/$target.cpu"
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  read -r user_seconds system_seconds <"$fuzz_dir/logs/$target.cpu" || true
  cpu_seconds=$(awk -v u="${user_seconds:-0}" -v s="${system_seconds:-0}" 'BEGIN { print u + s }')
  cpu_rate=$(awk -v e="${executions:-0}" -v c="$cpu_seconds" \
    'BEGIN { if (c > 0) printf "%d", e / c; else print "?" }')
  if [[ $status -eq 0 ]]; then
    outcome="no finding"
  else
    outcome="FINDING (exit $status; see $log)"
    failed=1
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-16s %12s executions, %s/s, %s CPU s (%s per CPU s)  %s' "$target" \
    "${executions:-?}" "${rate:-?}" "$cpu_seconds" "$cpu_rate" "$outcome")")
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
