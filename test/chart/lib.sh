# What the chart tests share. Sourced; sets `root`, `chart`, puts helm and kubectl (built by
# test/cluster/build) on PATH, and gives fail() and a per-test temporary directory `work`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
chart=$root/charts/picket
test_name=$(basename "$0" .sh)

fail() {
  printf '%s: FAIL: %s\n' "$test_name" "$*" >&2
  exit 1
}

work=$(mktemp -d)
cleanups=("rm -rf '$work'")
run_cleanups() {
  local i
  for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do eval "${cleanups[$i]}" || true; done
}
trap run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# helm and kubectl from test/cluster; KUBECONFIG from the local control plane's state dir when
# one runs (never the caller's $KUBECONFIG, which may name a real cluster).
unset KUBECONFIG
exports=$("$root/test/cluster/env" 2>/dev/null) || fail "helm and kubectl are not built: run make setup"
eval "$exports"
# helm keeps its caches and settings in the test's own directory.
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data

# Requires the local control plane (the CTest fixture `cluster` starts it).
need_cluster() {
  [ -n "${KUBECONFIG:-}" ] || fail "no local control plane runs (test/cluster/up starts one)"
}
