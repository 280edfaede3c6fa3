#!/usr/bin/env bash
# values.schema.json rejects values of the wrong type or out of range, and unknown keys, naming
# the value at fault; and accepts the defaults and correct overrides.
source "$(dirname "$0")/lib.sh"

# rejects FLAG... EXPECTED: helm template must fail and its message contain EXPECTED.
rejects() {
  local expected=${*: -1}
  local args=("${@:1:$#-1}")
  if helm template t "$chart" "${args[@]}" >"$work/out" 2>&1; then
    fail "accepted ${args[*]}"
  fi
  grep -qF -- "$expected" "$work/out" || { cat "$work/out" >&2; fail "${args[*]}: no \"$expected\" in the error"; }
}
accepts() {
  helm template t "$chart" "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; fail "refused $*"; }
}

rejects --set webhook.replicas=two "/webhook/replicas"
rejects --set-string webhook.timeoutSeconds=5 "/webhook/timeoutSeconds"
rejects --set webhook.timeoutSeconds=31 "/webhook/timeoutSeconds"
rejects --set webhook.failurePolicy=Sometimes "/webhook/failurePolicy"
rejects --set certificates.mode=vault "/certificates/mode"
rejects --set proxy.nativeSidecar=yes "/proxy/nativeSidecar"
rejects --set operator.xdsPort=70000 "/operator/xdsPort"
rejects --set operator.backend=cilium "/operator/backend"
rejects --set image=picket:1 "/image"
rejects --set webhook.resources.limits.cpu= "/webhook/resources/limits/cpu"
rejects --set surprise=1 "additional properties 'surprise' not allowed"
rejects --set webhook.replica=3 "additional properties 'replica' not allowed"

accepts
accepts --set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=10 \
  --set certificates.mode=certManager --set proxy.nativeSidecar=true --set operator.policyOrder=1500
echo "schema: ok"
