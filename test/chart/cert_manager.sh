#!/usr/bin/env bash
# certificates.mode=certManager: the real API server, with cert-manager's own CRDs installed
# (fetched at run time by test/certmanager/crds, never kept here), accepts what the chart renders
# (server-side dry run with strict field validation, so a field the Certificate or Issuer schema
# does not know fails), both with the chart's own issuer chain and with a given ClusterIssuer; and
# the webhook configuration the API server would store carries cert-manager.io/inject-ca-from
# naming the serving Certificate, which the chart renders in the release namespace. Nothing but
# the CRDs is stored; they stay installed (other runs of this test share them).
source "$(dirname "$0")/lib.sh"
need_cluster

crds=$("$root/test/certmanager/crds") || fail "cannot fetch cert-manager's CRDs"
for kind in certificates issuers clusterissuers; do
  kubectl apply --server-side --force-conflicts --field-manager=picket-chart-test \
    -f "$crds/cert-manager.io_$kind.yaml" >/dev/null
done
kubectl wait --for=condition=Established --timeout=60s crd/certificates.cert-manager.io \
  crd/issuers.cert-manager.io crd/clusterissuers.cert-manager.io >/dev/null
# The chart's own CRDs, for the rest of the release.
kubectl apply --server-side --force-conflicts --field-manager=picket-chart-test \
  -f "$chart/crds/" >/dev/null

ns=picket-chart-cm-$$-$RANDOM
release=picket-cm
kubectl create namespace "$ns" >/dev/null
cleanups+=("kubectl delete namespace '$ns' --wait=false >/dev/null")

# The named object of the given kind in a multi-document YAML (kubectl's JSON List on stdin).
object() { # KIND NAME < list.json
  python3 -c '
import json, sys
kind, name = sys.argv[1:]
for item in json.load(sys.stdin)["items"]:
    if item["kind"] == kind and item["metadata"]["name"] == name:
        json.dump(item, sys.stdout)
        sys.exit(0)
sys.exit("no %s %s in the answer" % (kind, name))' "$@"
}

field() { # PYTHON-EXPRESSION-ON-o < object.json
  python3 -c 'import json, sys; o = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

check() { # LABEL HELM-ARGS...
  local label=$1
  shift
  helm template "$release" "$chart" --namespace "$ns" --set certificates.mode=certManager "$@" \
    >"$work/rendered.yaml" || fail "$label: helm template"
  kubectl apply --dry-run=server --validate=strict --namespace "$ns" -f "$work/rendered.yaml" \
    -o json >"$work/applied.json" 2>"$work/err" ||
    { cat "$work/err" >&2; fail "$label: the API server refused the chart"; }
  # kubectl prints one object bare, several as a List.
  python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
json.dump(doc if doc.get("kind") == "List" else {"items": [doc]}, open(sys.argv[1], "w"))' \
    "$work/applied.json"

  local mwc certificate annotation issuer
  mwc=$(object MutatingWebhookConfiguration "$release-webhook-$ns" <"$work/applied.json") ||
    fail "$label: no MutatingWebhookConfiguration"
  annotation=$(field 'o["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from", "")' <<<"$mwc")
  [ "$annotation" = "$ns/$release-webhook" ] ||
    fail "$label: cert-manager.io/inject-ca-from is '$annotation', want '$ns/$release-webhook'"
  [ "$(field 'o["webhooks"][0]["clientConfig"].get("caBundle", "")' <<<"$mwc")" = "" ] ||
    fail "$label: the chart sets a caBundle that cert-manager's CA injector should write"

  certificate=$(object Certificate "$release-webhook" <"$work/applied.json") ||
    fail "$label: no Certificate $release-webhook for the annotation to name"
  [ "$(field 'o["metadata"]["namespace"]' <<<"$certificate")" = "$ns" ] ||
    fail "$label: the Certificate is not in the release namespace"
  [ "$(field 'o["spec"]["secretName"]' <<<"$certificate")" = "$release-webhook-tls" ] ||
    fail "$label: the Certificate does not fill the Secret the webhook mounts"
  [ "$(field '" ".join(o["spec"]["dnsNames"])' <<<"$certificate")" = \
    "$release-webhook $release-webhook.$ns $release-webhook.$ns.svc $release-webhook.$ns.svc.cluster.local" ] ||
    fail "$label: the Certificate does not name the webhook Service"
  issuer=$(field '"%s/%s" % (o["spec"]["issuerRef"]["kind"], o["spec"]["issuerRef"]["name"])' <<<"$certificate")
  echo "$issuer"
}

# No issuer given: the chart's own chain (self-signed Issuer -> CA Certificate -> CA Issuer).
issuer=$(check "own issuer")
[ "$issuer" = "Issuer/$release-ca" ] || fail "own issuer: the serving Certificate is issued by $issuer"
object Issuer "$release-selfsigned" <"$work/applied.json" >/dev/null || fail "own issuer: no self-signed Issuer"
object Issuer "$release-ca" <"$work/applied.json" >/dev/null || fail "own issuer: no CA Issuer"
ca=$(object Certificate "$release-ca" <"$work/applied.json") || fail "own issuer: no CA Certificate"
[ "$(field 'o["spec"]["isCA"]' <<<"$ca")" = True ] || fail "own issuer: the CA Certificate is not a CA"

# A ClusterIssuer of the user's: the chart makes no issuer of its own.
issuer=$(check "ClusterIssuer" --set certificates.certManager.issuerRef.name=corp-ca \
  --set certificates.certManager.issuerRef.kind=ClusterIssuer)
[ "$issuer" = "ClusterIssuer/corp-ca" ] || fail "ClusterIssuer: the serving Certificate is issued by $issuer"
if python3 -c '
import json, sys
sys.exit(0 if any(i["kind"] == "Issuer" for i in json.load(open(sys.argv[1]))["items"]) else 1)' \
  "$work/applied.json"; then
  fail "ClusterIssuer: the chart still renders an Issuer of its own"
fi
echo "cert_manager: ok"
