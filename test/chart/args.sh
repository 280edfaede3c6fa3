#!/usr/bin/env bash
# The command lines the chart's Deployments give picket-webhook and picket-operator are accepted
# by the programs' own flag parsers (each is run with those arguments and a final --help, which
# parses every flag and then only prints the usage), with the default values and with every value
# that adds or changes a flag.
# Usage: args.sh PICKET_WEBHOOK PICKET_OPERATOR
source "$(dirname "$0")/lib.sh"
webhook=${1:?usage: args.sh PICKET_WEBHOOK PICKET_OPERATOR}
operator=${2:?usage: args.sh PICKET_WEBHOOK PICKET_OPERATOR}

# args FILE: the container's args of the Deployment in FILE, one a line (comments skipped).
args() {
  awk '
    /^ *args:$/ { inside = 1; indent = index($0, "a"); next }
    inside && /^ *#/ { next }
    inside && index($0, "- ") == indent + 2 { print substr($0, indent + 4); next }
    inside { inside = 0 }' "$1"
}

check() {
  local label=$1 program=$2 template=$3
  shift 3
  helm template picket "$chart" --namespace picket-test --show-only "templates/$template" "$@" \
    >"$work/deployment.yaml"
  mapfile -t flags < <(args "$work/deployment.yaml")
  [ "${#flags[@]}" -gt 0 ] || fail "$label: no args in $template"
  "$program" "${flags[@]}" --help >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "$label: $(basename "$program") refuses: ${flags[*]}"; }
}

check "webhook, defaults" "$webhook" webhook-deployment.yaml
check "webhook, other port" "$webhook" webhook-deployment.yaml --set webhook.port=9443
check "operator, defaults" "$operator" operator-deployment.yaml
grep -qF -- "--webhook-secret=picket-test/picket-webhook-tls" "$work/deployment.yaml" ||
  fail "selfSigned: the operator is not told to manage the webhook's certificates"
check "operator, certManager" "$operator" operator-deployment.yaml --set certificates.mode=certManager
! grep -qF -- "--webhook-" "$work/deployment.yaml" ||
  fail "certManager: the operator is told to manage the certificates cert-manager issues"
check "operator, every flag value" "$operator" operator-deployment.yaml \
  --set operator.backend=kubernetes --set operator.workers=8 --set operator.watchNamespace=shop \
  --set operator.metricsPort=9191 --set fullnameOverride=mesh
echo "args: ok"
