#!/usr/bin/env bash
# The ConfigMap the chart renders is read by the programs' own parsers and means what the values
# say: picketctl inject reads injector.yaml exactly as picket-webhook does (webhook/config.h), and
# picketctl render reads operator.yaml as picket-operator --config does (operator/planner.h).
# Usage: config.sh PICKETCTL
source "$(dirname "$0")/lib.sh"
picketctl=${1:?usage: config.sh PICKETCTL}

# key FILE KEY: the block scalar KEY of the ConfigMap in FILE ("  KEY: |", then lines indented by
# four spaces), without the indentation.
key() {
  awk -v key="  $2: |" '
    $0 == key { inside = 1; next }
    inside && /^    / { print substr($0, 5); next }
    inside && !/^$/ { inside = 0 }' "$1"
}

cat >"$work/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, app.kubernetes.io/name: web}
spec:
  containers:
    - name: web
      image: nginx
      ports: [{containerPort: 8080}]
YAML
cat >"$work/allowlist.yaml" <<'YAML'
apiVersion: picket.dev/v1alpha1
kind: ServiceAllowlist
metadata: {name: web, namespace: shop}
spec:
  service: web
  callers: [{service: cart}]
YAML

check() {
  local label=$1
  shift
  helm template picket "$chart" --namespace picket-test --show-only templates/configmap.yaml \
    "$@" >"$work/configmap.yaml"
  key "$work/configmap.yaml" injector.yaml >"$work/injector.yaml"
  key "$work/configmap.yaml" operator.yaml >"$work/operator.yaml"
  [ -s "$work/injector.yaml" ] && [ -s "$work/operator.yaml" ] || fail "$label: no config in the ConfigMap"
  "$picketctl" inject --config "$work/injector.yaml" -f "$work/pod.yaml" -n shop >"$work/injected" \
    2>"$work/err" || { cat "$work/err" "$work/injector.yaml" >&2; fail "$label: injector.yaml refused"; }
  "$picketctl" render --config "$work/operator.yaml" -f "$work/allowlist.yaml" >"$work/policies" \
    2>"$work/err" || { cat "$work/err" "$work/operator.yaml" >&2; fail "$label: operator.yaml refused"; }
}
injected_has() { grep -qF -- "$1" "$work/injected" || fail "$2: the injected pod lacks \"$1\""; }
policies_have() { grep -qF -- "$1" "$work/policies" || fail "$2: the policy lacks \"$1\""; }

check defaults
injected_has "picket-proxy" "defaults"
injected_has "envoyproxy/envoy:v1.40.0" "defaults"
injected_has "ghcr.io/picket/picket:0.1.0" "defaults"
injected_has "picket-operator.picket-test.svc.cluster.local" "defaults"

check overrides --set identityLabel=app --set proxy.image=registry.example/envoy:v9 \
  --set image.tag=0.2.0 --set proxy.logLevel=debug --set operator.policyOrder=250 \
  --set 'injector.excludedNamespaces={legacy}' --set operator.xdsPort=16010 \
  --set 'operator.extraIngress[0].name=monitoring' \
  --set 'operator.extraIngress[0].reason=Prometheus scrapes every sidecar' \
  --set 'operator.extraIngress[0].from.namespaceSelector.matchLabels.team=observability'
injected_has "registry.example/envoy:v9" "overrides"
injected_has "ghcr.io/picket/picket:0.2.0" "overrides"
injected_has "16010" "overrides"
policies_have "order: 250" "overrides"
policies_have "team == 'observability'" "overrides"
echo "config: ok"
