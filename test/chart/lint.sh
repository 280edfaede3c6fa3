#!/usr/bin/env bash
# helm lint --strict passes with the default values and with every optional part turned on.
source "$(dirname "$0")/lib.sh"

helm lint --strict "$chart" >"$work/out" 2>&1 || { cat "$work/out" >&2; fail "helm lint --strict: defaults"; }
helm lint --strict "$chart" \
  --set certificates.mode=certManager \
  --set monitoring.serviceMonitor.enabled=true \
  --set networkPolicy.enabled=true \
  --set 'networkPolicy.monitoringNamespaces={monitoring}' \
  --set operator.policyOrder=500 \
  --set operator.watchNamespace=team-a >"$work/out" 2>&1 ||
  { cat "$work/out" >&2; fail "helm lint --strict: every option on"; }
echo "lint: ok"
