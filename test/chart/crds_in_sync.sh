#!/usr/bin/env bash
# charts/picket/crds/ holds exactly the files of crds/ (the one source of the API schema), byte
# for byte: helm installs the chart's copy, so a change to crds/ must reach it (`make manifests`).
source "$(dirname "$0")/lib.sh"
diff -r "$root/crds" "$chart/crds" >"$work/out" 2>&1 ||
  { cat "$work/out" >&2; fail "charts/picket/crds/ differs from crds/: run make manifests"; }
echo "crds_in_sync: ok"
