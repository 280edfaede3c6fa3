#!/usr/bin/env bash
# manifests/picket.yaml is what the chart renders now, and charts/picket/crds/ is crds/:
# `make manifests` was run after the last change to either.
source "$(dirname "$0")/lib.sh"
PICKET_HELM=$(command -v helm) "$root/scripts/render-manifests.sh" --check
echo "manifests_in_sync: ok"
