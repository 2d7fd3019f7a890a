# The upstream tools' pins (sourced by tests/upstream/*.sh; see tests/upstream/README.md).
# shellcheck shell=bash disable=SC2034

# istio.io/istio as the Go module proxy serves it: no release tag of Istio is served here (1.30.3 is
# refused), only pseudo-versions of master; this is the newest, commit eed52ebb66ad of 2026-08-27.
# istioctl, Istio's Helm charts (manifests/charts) and the routing oracle all come from it.
ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad
# The Istio release terraform/ installs from Istio's Helm repository (cannot be fetched here).
ISTIO_RELEASE=1.30.3
# helm's own CLI, for rendering Istio's charts offline.
HELM_VERSION=v3.21.4
# The Kubernetes version charts are rendered for (kind's node image in terraform/ runs this minor).
KUBE_VERSION=v1.34.0
# OpenTofu, built only where no terraform CLI is installed (tests/upstream/tools.sh).
OPENTOFU_VERSION=v1.10.0
