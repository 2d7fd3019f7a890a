#!/usr/bin/env bash
# Istio as the routing oracle: builds tests/upstream/oracle (a Go test against istio.io/istio's
# pilot) with `go test -c`, lets it compute what istiod would push to the ingress gateway and each
# tier's sidecar for every rendered overlay, and holds the project's own routing against it with
# `mesh compare-routes`. Then proves the comparison fails when the project's evaluation differs:
# the 90-10 answers against a render whose backend weights were changed (fixtures/broken/).
# Also fails when mesh/istio/tests/fixtures/istio/90-10.istio.json (the answers cargo's tests
# compare with, recorded from this oracle) is stale.
# Usage: tests/upstream/oracle.sh   (needs Go; MESH_BIN: the mesh binary, default target/debug/mesh)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1
UPSTREAM_TOOLS=${UPSTREAM_TOOLS:-$ROOT/.tools}
MESH_BIN=${MESH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/mesh}
ORACLE="$UPSTREAM_TOOLS/bin/istio-oracle.test"
OUT=target/upstream/oracle
RECORDED=mesh/istio/tests/fixtures/istio/90-10.istio.json
BROKEN=tests/upstream/fixtures/broken/weights-80-20-backend.yaml
# shellcheck source=tests/upstream/versions.sh
. tests/upstream/versions.sh

[[ -x "$MESH_BIN" ]] || { echo "oracle: $MESH_BIN is missing (cargo build -p mesh-cli)" >&2; exit 1; }
# The test binary is rebuilt when the oracle's sources or the Istio pin change.
stamp="$UPSTREAM_TOOLS/stamps/istio-oracle"
want=$(cat tests/upstream/oracle/go.mod tests/upstream/oracle/go.sum tests/upstream/oracle/*.go | sha256sum | cut -d' ' -f1)
if [[ ! -x "$ORACLE" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    started=$SECONDS
    mkdir -p "$(dirname "$ORACLE")" "$(dirname "$stamp")"
    # The same flags as tools.sh's `go install` of istioctl, so that Go's build cache shares the
    # Istio packages both compile (most of pilot) instead of building them twice.
    (cd tests/upstream/oracle && GOFLAGS=-buildvcs=false CGO_ENABLED=0 nice -n 10 go test -c -trimpath -o "$ORACLE" .) || exit 1
    echo "$want" >"$stamp"
    echo "oracle: built $ORACLE in $((SECONDS - started)) s"
fi

mkdir -p "$OUT"
overlays=(mesh/deploy/rendered/*.yaml)
# The overlays as absolute paths: the test binary runs in its own package directory.
ORACLE_OVERLAYS="${overlays[*]/#/$ROOT/}" ORACLE_OUT="$ROOT/$OUT" \
    "$ORACLE" -test.run '^TestIstioRoutes$' -test.count=1 >"$OUT/oracle.log" 2>&1 || {
    echo "oracle: Istio's discovery server failed:" >&2
    tail -n 40 "$OUT/oracle.log" >&2
    exit 1
}

ok=0
for rendered in "${overlays[@]}"; do
    name=$(basename "$rendered" .yaml)
    "$MESH_BIN" compare-routes --istio "$OUT/$name.istio.json" --config "$rendered" || ok=1
done

# Must fail: the project's evaluation of a render whose backend weights are 80/20, against Istio's
# answers for the real 90-10.
if "$MESH_BIN" compare-routes --istio "$OUT/90-10.istio.json" --config "$BROKEN" >"$OUT/broken.out" 2>&1; then
    echo "oracle: compare-routes accepted $BROKEN against Istio's 90-10 answers" >&2
    ok=1
elif ! grep -q "subset \`stable\` of backend.backend.svc.cluster.local gets 0.8000 of the requests in the project, 0.9000 in Istio" "$OUT/broken.out"; then
    echo "oracle: compare-routes rejected $BROKEN without naming the backend route's shares:" >&2
    cat "$OUT/broken.out" >&2
    ok=1
else
    echo "oracle: compare-routes rejects $BROKEN: $(grep -c 'gets' "$OUT/broken.out") share differences named"
fi

# The recorded answers cargo's tests use must be what the oracle says today.
if ! diff -u "$RECORDED" "$OUT/90-10.istio.json" >"$OUT/recorded.diff"; then
    echo "oracle: $RECORDED is stale (diff in $OUT/recorded.diff); record it again: cp $OUT/90-10.istio.json $RECORDED" >&2
    ok=1
fi
exit $ok
