#!/usr/bin/env bash
# helm install into a fresh namespace, helm upgrade with a changed value (seen in the cluster),
# helm uninstall; afterwards no MutatingWebhookConfiguration of the release is left to block pod
# creation. In between, what picket-operator writes in selfSigned mode (the Secret's keys, the
# caBundle) must survive the upgrade: the chart leaves both out so that helm does not take them.
#
# No kubelet runs here, so no webhook pod ever answers. While the release exists its webhook would
# be called for pods of every namespace labelled picket.dev/inject=enabled, cluster-wide, and
# other tests create such pods. So this release is installed with failurePolicy Ignore, its
# namespaceSelector also requires a label unique to this run (no other namespace has it), and it
# is uninstalled on every exit, failure or signal included.
source "$(dirname "$0")/lib.sh"
need_cluster

run=$$-$RANDOM
ns=picket-chart-life-$run
release=picket-life-$run
kubectl create namespace "$ns" >/dev/null
cleanups+=("kubectl delete namespace '$ns' --wait=false >/dev/null")
cleanups+=("helm uninstall '$release' --namespace '$ns' --wait=false >/dev/null 2>&1")
cleanups+=("kubectl delete mutatingwebhookconfiguration -l app.kubernetes.io/instance='$release' --ignore-not-found >/dev/null")

guard=(--set webhook.failurePolicy=Ignore
  --set 'webhook.extraNamespaceSelector[0].key=picket-chart-test/run'
  --set 'webhook.extraNamespaceSelector[0].operator=In'
  --set "webhook.extraNamespaceSelector[0].values[0]=r$run")

helm install "$release" "$chart" --namespace "$ns" "${guard[@]}" >"$work/out" 2>&1 ||
  { cat "$work/out" >&2; fail "helm install"; }
mwc=$(kubectl get mutatingwebhookconfiguration -l app.kubernetes.io/instance="$release" -o name)
[ -n "$mwc" ] || fail "helm install made no MutatingWebhookConfiguration"
selector=$(kubectl get "$mwc" -o jsonpath='{.webhooks[0].namespaceSelector.matchExpressions[*].key}')
[[ "$selector" == *picket-chart-test/run* ]] || fail "the test's namespace guard is missing: $selector"
policy=$(kubectl get "$mwc" -o jsonpath='{.webhooks[0].failurePolicy}')
[ "$policy" = Ignore ] || fail "failurePolicy is $policy, want Ignore"
for object in deployment/picket-life-$run-webhook deployment/picket-life-$run-operator \
  service/picket-life-$run-webhook service/picket-life-$run-operator \
  poddisruptionbudget/picket-life-$run-webhook configmap/picket-life-$run-config \
  secret/picket-life-$run-webhook-tls; do
  kubectl get --namespace "$ns" "$object" >/dev/null || fail "helm install made no $object"
done

# What the operator would write (any bytes do: nothing reads them here).
ca=$(printf 'picket-test-ca' | base64)
kubectl patch --namespace "$ns" secret "picket-life-$run-webhook-tls" --type=merge \
  -p "{\"data\":{\"tls.crt\":\"$ca\",\"tls.key\":\"$ca\",\"ca.crt\":\"$ca\"}}" >/dev/null
kubectl patch "$mwc" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]" >/dev/null

helm upgrade "$release" "$chart" --namespace "$ns" "${guard[@]}" \
  --set webhook.timeoutSeconds=3 --set proxy.logLevel=debug >"$work/out" 2>&1 ||
  { cat "$work/out" >&2; fail "helm upgrade"; }
timeout=$(kubectl get "$mwc" -o jsonpath='{.webhooks[0].timeoutSeconds}')
[ "$timeout" = 3 ] || fail "after helm upgrade timeoutSeconds is $timeout, want 3"
kubectl get configmap --namespace "$ns" "picket-life-$run-config" -o jsonpath='{.data.injector\.yaml}' |
  grep -qF 'logLevel: "debug"' || fail "after helm upgrade the injector config lacks logLevel debug"
bundle=$(kubectl get "$mwc" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
[ "$bundle" = "$ca" ] || fail "helm upgrade changed the caBundle the operator wrote to '$bundle'"
key=$(kubectl get --namespace "$ns" secret "picket-life-$run-webhook-tls" -o jsonpath='{.data.tls\.key}')
[ "$key" = "$ca" ] || fail "helm upgrade changed the Secret the operator filled (tls.key '$key')"
revision=$(helm status "$release" --namespace "$ns" -o json | grep -o '"version":[0-9]*' | head -1)
[ "$revision" = '"version":2' ] || fail "helm status says $revision after one upgrade"

helm uninstall "$release" --namespace "$ns" --wait >"$work/out" 2>&1 ||
  { cat "$work/out" >&2; fail "helm uninstall"; }
left=$(kubectl get mutatingwebhookconfiguration -l app.kubernetes.io/instance="$release" -o name)
[ -z "$left" ] || fail "after helm uninstall $left is left"
left=$(kubectl get clusterrole,clusterrolebinding -l app.kubernetes.io/instance="$release" -o name)
[ -z "$left" ] || fail "after helm uninstall cluster-scoped objects are left: $left"
echo "lifecycle: ok"
