#!/usr/bin/env bash
# `make demo`: Picket working on this machine. Starts a private local control plane
# (test/cluster/, state in $PICKET_DEMO_DIR, default /tmp/picket-demo, so tests are not
# disturbed), installs Calico's CRDs (served as projectcalico.org/v3, as test/integration does),
# and runs picket-demo (test/demo/demo.cc), which applies the chart, runs picket-webhook and
# picket-operator, runs two namespaces' pods with real Envoys and shows what Picket did.
#
#   scripts/demo.sh [--check] [--keep-cluster] [--build-dir DIR] [--no-build]
#
#   --check         assert the outcomes and exit (non-zero when one differs); no waiting
#   --keep-cluster  leave the control plane running at the end (test/cluster/down stops it)
#   --build-dir DIR the CMake build folder (default: build, as `make build`)
#   --no-build      use the programs already in DIR (ctest passes it)
#
# Needs root (network namespaces, iptables) and `make setup` (Envoy, the control plane's
# binaries). Ctrl-C cleans up: the pods, the local processes and, unless kept, the control plane.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

check=false
keep=false
build_dir=$root/build
build=true
while (($#)); do
  case "$1" in
    --check) check=true ;;
    --keep-cluster) keep=true ;;
    --build-dir)
      [ $# -ge 2 ] || { echo "demo: --build-dir needs a folder" >&2; exit 2; }
      build_dir=$(realpath -m "$2")
      shift
      ;;
    --no-build) build=false ;;
    -h | --help)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo: unknown argument '$1' (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (pods run in network namespaces with iptables): sudo make demo" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if $build; then
  step "Building picket-demo, picket-webhook, picket-operator, picket-init in $build_dir"
  if [ ! -f "$build_dir/build.ninja" ]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$build_dir" --target picket-demo picket-webhook picket-operator picket-init \
    picket-e2e-echo
fi
demo_bin=$build_dir/test/picket-demo
[ -x "$demo_bin" ] || { echo "demo: no $demo_bin; run without --no-build" >&2; exit 1; }

export PICKET_CLUSTER_DIR=${PICKET_DEMO_DIR:-/tmp/picket-demo}
cluster_started=false
demo_pid=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # picket-demo cleans up its pods and processes itself on SIGINT/SIGTERM; wait for it.
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  if $cluster_started; then
    if $keep; then
      echo "demo: the control plane keeps running; stop it with:" \
        "PICKET_CLUSTER_DIR=$PICKET_CLUSTER_DIR $root/test/cluster/down"
    else
      "$root/test/cluster/down" >/dev/null 2>&1 || true
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Starting a local Kubernetes control plane (state in $PICKET_CLUSTER_DIR)"
cluster_started=true
eval "$("$root/test/cluster/up")"
eval "$("$root/test/cluster/env")"
echo "KUBECONFIG=$KUBECONFIG"

step "Installing Calico's CRDs (projectcalico.org/v3; nothing enforces them here)"
crd_dir=$("$root/test/calico/crds")
# Calico ships its CRDs in their crd.projectcalico.org/v1 storage form; the v3 API that Picket
# writes has the same schema, so they are served under that group and version instead.
python3 - "$crd_dir" <<'PY' | kubectl apply --server-side --field-manager=picket-demo -f - >/dev/null
import sys, yaml
for plural in ("networkpolicies", "stagednetworkpolicies", "tiers"):
    path = f"{sys.argv[1]}/crd.projectcalico.org_{plural}.yaml"
    with open(path, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    crd["spec"]["group"] = "projectcalico.org"
    crd["metadata"]["name"] = f"{plural}.projectcalico.org"
    versions = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    if not versions:
        sys.exit(f"demo: {path} has no version v1 to serve as v3")
    versions[0]["name"] = "v3"
    print("---")
    print(yaml.safe_dump(crd))
PY
kubectl wait --for=condition=Established --timeout=60s \
  crd/networkpolicies.projectcalico.org crd/stagednetworkpolicies.projectcalico.org \
  crd/tiers.projectcalico.org >/dev/null
echo "networkpolicies, stagednetworkpolicies and tiers.projectcalico.org established"

args=(--kubeconfig "$KUBECONFIG" --helm "$PICKET_HELM" --chart "$root/charts/picket")
$check && args+=(--check)
# In the background so that this shell's traps run on Ctrl-C while it waits.
"$demo_bin" "${args[@]}" &
demo_pid=$!
set +e
wait "$demo_pid"
status=$?
set -e
demo_pid=
exit "$status"
