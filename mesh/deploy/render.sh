#!/usr/bin/env bash
# Re-renders every overlay into mesh/deploy/rendered/<overlay>.yaml with real kustomize
# (`kubectl kustomize`, from ./.venv when present). tests/mesh/check.sh fails when a checked-in
# render differs from what kustomize makes now, so run this after changing base/, components/ or
# overlays/ and commit the result.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
KUBECTL="$ROOT/.venv/bin/kubectl"
[[ -x "$KUBECTL" ]] || KUBECTL="$(command -v kubectl)"
mkdir -p mesh/deploy/rendered
rm -f mesh/deploy/rendered/*.yaml
for dir in mesh/deploy/overlays/*/; do
    name="$(basename "$dir")"
    "$KUBECTL" kustomize "$dir" >"mesh/deploy/rendered/$name.yaml"
    echo "mesh/deploy/rendered/$name.yaml"
done
