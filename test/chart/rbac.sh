#!/usr/bin/env bash
# The chart's RBAC, as the real API server's authorizer judges it: each service account may do
# what its program's code does (the rules in templates/rbac.yaml name that code) and nothing
# near it: no write where a read is enough, no other Secret, Lease or webhook configuration, no
# core-group Events; the xDS server's Services, EndpointSlices and Pods are read through
# informers only (list, watch: no get, no write). Only the ServiceAccounts and RBAC objects are applied, in a fresh
# namespace, and deleted at the end.
source "$(dirname "$0")/lib.sh"
need_cluster

ns=picket-chart-rbac-$$-$RANDOM
release=picket
kubectl create namespace "$ns" >/dev/null
cleanups+=("kubectl delete namespace '$ns' --wait=false >/dev/null")
helm template "$release" "$chart" --namespace "$ns" \
  --show-only templates/serviceaccounts.yaml --show-only templates/rbac.yaml >"$work/rbac.yaml"
cleanups+=("kubectl delete --namespace '$ns' -f '$work/rbac.yaml' --ignore-not-found >/dev/null 2>&1")
kubectl apply --namespace "$ns" -f "$work/rbac.yaml" >/dev/null

webhook=system:serviceaccount:$ns:picket-webhook
operator=system:serviceaccount:$ns:picket-operator
failures=0
# expect yes|no AS VERB RESOURCE[.GROUP][/NAME] [-n NS | -A] [--subresource=S]
# Asks the authorizer through a SubjectAccessReview that names the group itself, so the answer
# does not depend on which CRDs the shared cluster serves at the moment (`kubectl auth can-i`
# resolves RESOURCE.GROUP through discovery and misreads a group it does not know).
expect() {
  local want=$1 as=$2 verb=$3 target=$4
  shift 4
  local name="" namespace="" subresource=""
  if [[ $target == */* ]]; then
    name=${target#*/}
    target=${target%%/*}
  fi
  local resource=${target%%.*} group=""
  [[ $target == *.* ]] && group=${target#*.}
  while (($#)); do
    case $1 in
      -n) namespace=$2; shift 2 ;;
      -A) namespace=""; shift ;;
      --subresource=*) subresource=${1#--subresource=}; shift ;;
      *) echo "rbac: expect: unknown flag $1" >&2; exit 2 ;;
    esac
  done
  local review got
  review=$(printf '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"%s","groups":["system:serviceaccounts","system:authenticated"],"resourceAttributes":{"verb":"%s","group":"%s","resource":"%s","subresource":"%s","name":"%s","namespace":"%s"}}}' \
    "$as" "$verb" "$group" "$resource" "$subresource" "$name" "$namespace")
  got=$(kubectl create -f - -o jsonpath='{.status.allowed}' <<<"$review" 2>/dev/null) || true
  [[ $got == true ]] && got=yes || got=no
  if [ "$got" != "$want" ]; then
    echo "rbac: ${as##*:} $verb $target${name:+/$name}${subresource:+ ($subresource)}${namespace:+ -n $namespace}: '$got', want '$want'" >&2
    failures=$((failures + 1))
  fi
}

for verb in get list watch; do expect yes "$webhook" "$verb" namespaces; done
for verb in create patch; do expect yes "$webhook" "$verb" events.events.k8s.io -n team-a; done
expect no "$webhook" update namespaces
expect no "$webhook" create events -n team-a
expect no "$webhook" list pods -A
expect no "$webhook" get secrets -n "$ns"
expect no "$webhook" list serviceallowlists.picket.dev -A

for verb in list watch; do
  for resource in serviceallowlists.picket.dev namespaces services pods \
    endpointslices.discovery.k8s.io; do
    expect yes "$operator" "$verb" "$resource" -A
  done
done
# controlplane/control_plane.cc's informers: exactly list and watch, cluster-wide.
for resource in services pods endpointslices.discovery.k8s.io; do
  for verb in get create update patch delete deletecollection; do
    expect no "$operator" "$verb" "$resource" -n team-a
  done
done
expect no "$operator" create pods/binding -n team-a
expect no "$operator" patch pods/status -n team-a
expect no "$operator" get pods/log -n team-a
expect no "$operator" create pods/exec -n team-a
expect yes "$operator" patch serviceallowlists.picket.dev --subresource=status -n team-a
expect no "$operator" patch serviceallowlists.picket.dev -n team-a
expect no "$operator" update serviceallowlists.picket.dev -n team-a
for resource in networkpolicies.projectcalico.org stagednetworkpolicies.projectcalico.org \
  networkpolicies.networking.k8s.io; do
  for verb in get list watch create patch delete; do
    expect yes "$operator" "$verb" "$resource" -n team-a
  done
  expect no "$operator" update "$resource" -n team-a
done
for verb in create patch; do expect yes "$operator" "$verb" events.events.k8s.io -n team-a; done
expect no "$operator" create events -n team-a
for verb in get update; do expect yes "$operator" "$verb" leases.coordination.k8s.io/picket-operator -n "$ns"; done
expect yes "$operator" create leases.coordination.k8s.io -n "$ns"
expect no "$operator" get leases.coordination.k8s.io/other -n "$ns"
expect no "$operator" create leases.coordination.k8s.io -n team-a
for verb in get update; do expect yes "$operator" "$verb" secrets/picket-webhook-tls -n "$ns"; done
expect yes "$operator" create secrets -n "$ns"
expect no "$operator" patch secrets/picket-webhook-tls -n "$ns"
expect no "$operator" get secrets/other -n "$ns"
expect no "$operator" list secrets -n "$ns"
expect no "$operator" create secrets -n team-a
for verb in get patch; do
  expect yes "$operator" "$verb" "mutatingwebhookconfigurations.admissionregistration.k8s.io/picket-webhook-$ns"
done
expect no "$operator" patch mutatingwebhookconfigurations.admissionregistration.k8s.io/other

[ "$failures" = 0 ] || fail "$failures permissions differ from what the programs need"
echo "rbac: ok"
