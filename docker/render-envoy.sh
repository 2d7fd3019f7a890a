#!/usr/bin/env bash
# Renders docker/envoy/<step>.yaml, the compose lab's Envoy bootstrap, for every canary step in
# mesh/deploy/rendered/ with `mesh envoy`. Run it after mesh/deploy/render.sh and commit the result;
# with --check it only verifies that every checked-in rendering is current (exit 1 when stale).
# MESH: the mesh binary to use (default: built with cargo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
check=()
[ "${1:-}" = --check ] && check=(--check)
if [ -z "${MESH:-}" ]; then
    cargo build --quiet --locked -p mesh-cli --bin mesh
    MESH="${CARGO_TARGET_DIR:-target}/debug/mesh"
fi
mkdir -p docker/envoy
status=0
for rendered in mesh/deploy/rendered/*.yaml; do
    step=$(basename "$rendered" .yaml)
    "$MESH" envoy --config "$rendered" --otlp jaeger:4318 --out "docker/envoy/$step.yaml" "${check[@]}" || status=1
    [ ${#check[@]} -gt 0 ] || echo "docker/envoy/$step.yaml"
done
exit $status
