#!/usr/bin/env bash
# Builds the upstream tools that judge mesh/deploy and terraform/ from their Go modules (the Go module
# proxy is the only place this project's machines can get them), into $UPSTREAM_TOOLS/bin.
# Usage: tests/upstream/tools.sh [istioctl|helm|terraform|all]   (default all)
#
# Each tool is rebuilt only when its pinned version changes (a stamp beside the binary), so a warm
# machine reuses it; a cold one builds from the module proxy (times in tests/upstream/README.md).
# The pins live in tests/upstream/versions.sh, one place for every script that needs them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tests/upstream/versions.sh
. "$ROOT/tests/upstream/versions.sh"
UPSTREAM_TOOLS=${UPSTREAM_TOOLS:-$ROOT/.tools}
export GOBIN="$UPSTREAM_TOOLS/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0

# go_tool NAME PACKAGE@VERSION: `go install` the package unless the binary for that version is there.
go_tool() {
    local name=$1 package=$2
    local stamp="$UPSTREAM_TOOLS/stamps/$name"
    if [ -x "$GOBIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$package" ]; then
        echo "$name: $package (already built)"
        return 0
    fi
    command -v go >/dev/null || { echo "$name needs Go to build (go is not on PATH)" >&2; return 1; }
    mkdir -p "$GOBIN" "$(dirname "$stamp")"
    local started=$SECONDS
    echo "$name: go install $package"
    (cd "$UPSTREAM_TOOLS" && nice -n 10 go install -trimpath "$package")
    echo "$package" >"$stamp"
    echo "$name: built in $((SECONDS - started)) s"
}

# terraform fmt needs a Terraform CLI. This project's machines ship terraform; where it is absent,
# OpenTofu (the MPL fork, same formatter) is built from its module: `go install` refuses both
# (replace directives), and terraform's module zip lacks its nested backend modules, so OpenTofu's
# source is copied out of the module cache and built.
terraform_cli() {
    if command -v terraform >/dev/null; then
        echo "terraform: $(command -v terraform) ($(terraform version 2>/dev/null | head -n 1))"
        return 0
    fi
    local module="github.com/opentofu/opentofu@$OPENTOFU_VERSION" stamp="$UPSTREAM_TOOLS/stamps/tofu"
    if [ -x "$GOBIN/tofu" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
        echo "tofu: $module (already built; terraform is not on PATH)"
        return 0
    fi
    local dir started=$SECONDS
    dir=$(go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || { echo "go mod download $module gave no source" >&2; return 1; }
    rm -rf "$UPSTREAM_TOOLS/src/opentofu" && mkdir -p "$UPSTREAM_TOOLS/src" "$GOBIN" "$(dirname "$stamp")"
    cp -r "$dir" "$UPSTREAM_TOOLS/src/opentofu" && chmod -R u+w "$UPSTREAM_TOOLS/src/opentofu"
    (cd "$UPSTREAM_TOOLS/src/opentofu" && nice -n 10 go build -trimpath -o "$GOBIN/tofu" ./cmd/tofu)
    echo "$module" >"$stamp"
    echo "tofu: built in $((SECONDS - started)) s (terraform is not on PATH)"
}

istioctl() { go_tool istioctl "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_MODULE_VERSION"; }
helm() { go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }

case ${1:-all} in
    istioctl) istioctl ;;
    helm) helm ;;
    terraform) terraform_cli ;;
    all) istioctl && helm && terraform_cli ;;
    *)
        echo "usage: tests/upstream/tools.sh [istioctl|helm|terraform|all]" >&2
        exit 64
        ;;
esac
