#!/usr/bin/env bash
# What the chart renders depends on the values as documented: the certificate mode decides between
# the Secret the operator fills and cert-manager's objects plus the inject-ca-from annotation; the
# monitoring and network-policy objects appear only when enabled; the webhook configuration keeps
# the system namespaces and the release namespace out; no rendering has a key twice in one mapping
# (YAML parsers differ on which one wins, so kubectl and a strict parser may read different
# objects).
source "$(dirname "$0")/lib.sh"

render() { helm template picket "$chart" --namespace picket-test "$@"; }
has() { grep -qF -- "$2" <<<"$1" || fail "$3: no \"$2\" in the output"; }
lacks() { ! grep -qF -- "$2" <<<"$1" || fail "$3: unexpected \"$2\" in the output"; }
no_duplicate_keys() {
  local found
  found=$(awk -f "$(dirname "$0")/dupkeys.awk" <<<"$1")
  [ -z "$found" ] || fail "$2: a key twice in one mapping, at output line $found"
}

out=$(render --include-crds)
no_duplicate_keys "$out" "defaults"
has "$out" "kind: Secret" "selfSigned"
has "$out" 'resourceNames: ["picket-webhook-tls"]' "selfSigned: the operator may write the Secret"
has "$out" 'resourceNames: ["picket-webhook-picket-test"]' "selfSigned: the operator may patch caBundle"
lacks "$out" "cert-manager.io" "selfSigned"
lacks "$out" "kind: ServiceMonitor" "monitoring off"
lacks "$out" "kind: PodMonitor" "monitoring off"
lacks "$out" "kind: NetworkPolicy" "network policies off"

mwc=$(render --show-only templates/mutatingwebhookconfiguration.yaml \
  --set 'injector.excludedNamespaces={legacy}' --set webhook.failurePolicy=Ignore \
  --set webhook.timeoutSeconds=7)
for expected in 'values: ["enabled"]' '- "kube-system"' '- "kube-public"' '- "picket-test"' \
  '- "legacy"' 'values: ["disabled"]' "failurePolicy: Ignore" "timeoutSeconds: 7" \
  "sideEffects: None" 'admissionReviewVersions: ["v1"]' "reinvocationPolicy: IfNeeded" \
  'operations: ["CREATE"]' 'resources: ["pods"]' "path: /mutate"; do
  has "$mwc" "$expected" "webhook configuration"
done
lacks "$mwc" "caBundle" "webhook configuration (the operator or cert-manager writes it)"

out=$(render --set certificates.mode=certManager)
no_duplicate_keys "$out" "certManager"
has "$out" "cert-manager.io/inject-ca-from: picket-test/picket-webhook" "certManager"
has "$out" "kind: Certificate" "certManager"
has "$out" "secretName: picket-webhook-tls" "certManager"
lacks "$out" "kind: Secret" "certManager"
lacks "$out" '"secrets"' "certManager: the operator needs no Secret access"

out=$(render --set monitoring.serviceMonitor.enabled=true --set networkPolicy.enabled=true \
  --set 'networkPolicy.monitoringNamespaces={observability}' --set 'webhook.podLabels.team=mesh' \
  --set 'operator.podAnnotations.note=x' --set 'imagePullSecrets={regcred}')
no_duplicate_keys "$out" "every option on"
has "$out" "kind: ServiceMonitor" "monitoring on"
has "$out" "kind: PodMonitor" "monitoring on"
has "$out" "port: picket-metrics" "monitoring on: the sidecars' port"
has "$out" "kind: NetworkPolicy" "network policies on"
has "$out" '- "observability"' "network policies on: the monitoring namespace"

config=$(render --show-only templates/configmap.yaml --set clusterDomain=example.internal \
  --set operator.xdsPort=16010)
has "$config" 'host: "picket-operator.picket-test.svc.example.internal"' "xDS address"
has "$config" "port: 16010" "xDS port"
has "$config" 'image: "envoyproxy/envoy:v1.40.0"' "proxy image"
has "$config" 'image: "ghcr.io/picket/picket:0.1.0"' "init image"
echo "render: ok"
