#!/usr/bin/env bash
# picketctl inject on a 1,000-pod manifest, whole process (start, YAML in, inject, YAML out).
#
# Generates a multi-document YAML file of PODS copies of the realistic pod of
# test/fixtures/webhook (block style, each with its own name), checks once that picketctl injects
# every one of them, then times `picketctl inject -f FILE --config CONFIG` with hyperfine, or,
# without hyperfine, with Python's monotonic clock over RUNS runs. Also prints the peak resident
# memory of one run (/usr/bin/time, when installed). Prints figures; never fails on them.
# Usage: bench/picketctl_inject.sh [BUILD_DIR]   (environment: PODS=1000 RUNS=5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
[[ $build = /* ]] || build=$root/$build
pods=${PODS:-1000}
runs=${RUNS:-5}
picketctl=$build/bin/picketctl
config=$root/test/fixtures/webhook/config.yaml

if [[ ! -x $picketctl ]]; then
  echo "picketctl_inject: no $picketctl (build the picketctl target)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/picketctl-inject-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
manifest=$work/pods.yaml

# Block-style YAML as people write it, not JSON (which is YAML too but parses differently).
python3 - "$root/test/fixtures/webhook/pod_realistic.json" "$pods" >"$manifest" <<'EOF'
import copy, json, sys
import yaml

pod = json.load(open(sys.argv[1]))
pod["metadata"].pop("generateName", None)
documents = []
for index in range(int(sys.argv[2])):
    item = copy.deepcopy(pod)
    item["metadata"]["name"] = "orders-%04d" % index
    documents.append(item)
yaml.safe_dump_all(documents, sys.stdout, sort_keys=False, default_flow_style=False)
EOF

injected=$("$picketctl" inject -f "$manifest" --config "$config" | grep -c 'picket.dev/status:' || true)
echo "manifest: $pods pods, $(wc -c <"$manifest") bytes; picketctl injected $injected of them"
if [[ $injected != "$pods" ]]; then
  echo "picketctl_inject: expected $pods injected pods, got $injected; not timing" >&2
  exit 1
fi

command=("$picketctl" inject -f "$manifest" --config "$config")
if command -v hyperfine >/dev/null; then
  hyperfine --style basic --warmup 1 --runs "$runs" --output=null "${command[*]}"
else
  python3 - "$runs" "${command[@]}" <<'EOF'
import statistics, subprocess, sys, time

runs, command = int(sys.argv[1]), sys.argv[2:]
subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # warm the page cache
times = []
for _ in range(runs):
    start = time.monotonic()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    times.append(time.monotonic() - start)
print("picketctl inject: %d runs, mean %.1f ms, min %.1f ms, max %.1f ms, stdev %.1f ms" % (
    runs, 1000 * statistics.mean(times), 1000 * min(times), 1000 * max(times),
    1000 * (statistics.stdev(times) if runs > 1 else 0)))
EOF
fi

if [[ -x /usr/bin/time ]]; then
  peak=$(/usr/bin/time -f '%M' "${command[@]}" 2>&1 >/dev/null | tail -n 1)
  echo "peak resident memory of one run: ${peak} KiB"
fi
