#!/usr/bin/env bash
# The real API server accepts everything the chart renders (server-side dry run, so its schema
# validation and admission run, yet nothing is stored): with the default values, and with the
# network policies on. The namespace is created for the run and deleted after; it enforces the
# "restricted" Pod Security Standard, and the API server's warning that a Deployment's pods
# would violate it fails the test.
source "$(dirname "$0")/lib.sh"
need_cluster

ns=picket-chart-dry-$$-$RANDOM
kubectl create namespace "$ns" >/dev/null
cleanups+=("kubectl delete namespace '$ns' --wait=false >/dev/null")
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/warn=restricted >/dev/null
# A dry run of the chart needs its CRDs in the cluster; these are the chart's own.
kubectl apply --server-side --force-conflicts --field-manager=picket-chart-test \
  -f "$chart/crds/" >/dev/null

for values in "" "--set networkPolicy.enabled=true --set networkPolicy.monitoringNamespaces={monitoring}"; do
  # shellcheck disable=SC2086
  helm template picket "$chart" --namespace "$ns" $values >"$work/rendered.yaml"
  kubectl apply --dry-run=server --validate=strict --namespace "$ns" -f "$work/rendered.yaml" >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "the API server refused the chart rendered with: ${values:-defaults}"; }
  if grep -i "podsecurity" "$work/out" >&2; then
    fail "the chart's pods break the restricted Pod Security Standard"
  fi
  kinds=$(grep -c '(server dry run)' "$work/out")
  [ "$kinds" -ge 15 ] || { cat "$work/out" >&2; fail "only $kinds objects were applied"; }
done
echo "dry_run: ok"
