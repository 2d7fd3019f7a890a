# The kind walkthrough (README "Run it on kind"): the one entry point, one target per step, each
# idempotent and each failing with a clear message when a tool or the cluster is missing.
#
#   make kind-up        cluster + Istio + observability (terraform/)
#   make images         build every image here (docker/build-images.sh)
#   make kind-load      load the images into the cluster's nodes
#   make tls            self-signed certificate for frontend.local, secret istio-system/frontend-tls
#   make deploy         apply mesh/deploy/overlays/$(OVERLAY) (default 90-10) and wait for the rollout
#   make demo           `mesh demo` through the gateway for $(OVERLAY), with and without x-canary
#   make canary-walk    header-only → 90-10 → 50-50 → promote → rollback, a demo at every step
#   make dashboards     port-forwards: Jaeger :16686, Grafana :3000, Kiali :20001, Prometheus :9090
#   make kind-down      terraform destroy
#   make kind-walk      kind-up images kind-load tls deploy canary-walk
#
# No $(shell …) here: `make -n` must stay side-effect free (tests/upstream/walk_refs.py reads it).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CLUSTER ?= 3rvision
CONTEXT := kind-$(CLUSTER)
KUBECONFIG_FILE ?= $(CURDIR)/terraform/$(CLUSTER)-config
KUBECTL = kubectl --kubeconfig $(KUBECONFIG_FILE) --context $(CONTEXT)
OVERLAY ?= 90-10
STEPS := header-only 90-10 50-50 promote rollback
TIERS := frontend backend ml
BUILDS := stable canary
HTTP_PORT ?= 80
GATEWAY_URL := http://frontend.local:$(HTTP_PORT)
DEMO_REQUESTS ?= 200
MESH ?= cargo run --quiet --release -p mesh-cli --bin mesh --
WORK := target/kind

# require TOOL,WHAT: fail with a clear message when TOOL is not on PATH.
require = command -v $(1) >/dev/null || { echo "make $@: '$(1)' is not installed; $(2)" >&2; exit 1; }
# The cluster must exist for every step after kind-up.
cluster = $(call require,kind,see https://kind.sigs.k8s.io) && \
	{ kind get clusters 2>/dev/null | grep -qx '$(CLUSTER)' || { echo "make $@: there is no kind cluster '$(CLUSTER)'; run 'make kind-up' first" >&2; exit 1; }; } && \
	$(call require,kubectl,see https://kubernetes.io/docs/tasks/tools/)

.PHONY: help kind-up images kind-load tls deploy demo canary-walk dashboards kind-down kind-walk

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

kind-up:
	@$(call require,docker,kind runs its nodes as containers)
	@docker info >/dev/null 2>&1 || { echo "make $@: the Docker engine is not running" >&2; exit 1; }
	@$(call require,terraform,see https://developer.hashicorp.com/terraform/install)
	terraform -chdir=terraform init -input=false
	terraform -chdir=terraform apply -input=false -auto-approve -var cluster_name=$(CLUSTER) -var kubeconfig_path=$(KUBECONFIG_FILE) -var http_port=$(HTTP_PORT)
	$(KUBECTL) get nodes

images:
	@$(call require,docker,the images are built with docker)
	docker/build-images.sh

kind-load:
	@$(cluster)
	for tier in $(TIERS); do for build in $(BUILDS); do \
		docker image inspect 3rvision/$$tier:$$build >/dev/null 2>&1 || { echo "make $@: image 3rvision/$$tier:$$build is missing; run 'make images'" >&2; exit 1; }; \
		kind load docker-image --name $(CLUSTER) 3rvision/$$tier:$$build; \
	done; done

tls:
	@$(cluster)
	@$(call require,openssl,Debian package openssl)
	mkdir -p $(WORK)
	test -s $(WORK)/frontend.local.crt || openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
		-subj /CN=frontend.local -addext subjectAltName=DNS:frontend.local \
		-keyout $(WORK)/frontend.local.key -out $(WORK)/frontend.local.crt
	$(KUBECTL) -n istio-system create secret tls frontend-tls \
		--cert=$(WORK)/frontend.local.crt --key=$(WORK)/frontend.local.key --dry-run=client -o yaml | $(KUBECTL) apply -f -

deploy:
	@$(cluster)
	@test -d mesh/deploy/overlays/$(OVERLAY) || { echo "make $@: no overlay '$(OVERLAY)' in mesh/deploy/overlays" >&2; exit 1; }
	$(KUBECTL) apply -k mesh/deploy/overlays/$(OVERLAY)
	for tier in $(TIERS); do for build in $(BUILDS); do \
		$(KUBECTL) -n $$tier rollout status deployment/$$tier-$$build --timeout=300s; \
	done; done

demo:
	@$(cluster)
	@test -f mesh/deploy/rendered/$(OVERLAY).yaml || { echo "make $@: no rendered overlay mesh/deploy/rendered/$(OVERLAY).yaml" >&2; exit 1; }
	curl -sS -o /dev/null -D - --resolve frontend.local:$(HTTP_PORT):127.0.0.1 -H 'x-canary: true' $(GATEWAY_URL)/ | grep -i '^x-served-by'
	$(MESH) demo --url $(GATEWAY_URL) --resolve frontend.local=127.0.0.1 --requests $(DEMO_REQUESTS) \
		--image ml/tests/fixtures/photos/coffee.jpg --config mesh/deploy/rendered/$(OVERLAY).yaml

canary-walk:
	for step in $(STEPS); do \
		echo "==> canary step $$step"; \
		$(MAKE) --no-print-directory deploy demo OVERLAY=$$step; \
	done

dashboards:
	@$(cluster)
	@echo "Jaeger http://127.0.0.1:16686  Grafana http://127.0.0.1:3000  Kiali http://127.0.0.1:20001  Prometheus http://127.0.0.1:9090 (Ctrl-C ends all)"
	trap 'kill 0' INT TERM EXIT; \
	$(KUBECTL) -n observability port-forward svc/jaeger-query 16686:16686 & \
	$(KUBECTL) -n observability port-forward svc/grafana 3000:80 & \
	$(KUBECTL) -n istio-system port-forward svc/kiali 20001:20001 & \
	$(KUBECTL) -n observability port-forward svc/prometheus-server 9090:80 & \
	wait

kind-down:
	@$(call require,terraform,see https://developer.hashicorp.com/terraform/install)
	terraform -chdir=terraform destroy -input=false -auto-approve -var cluster_name=$(CLUSTER) -var kubeconfig_path=$(KUBECONFIG_FILE)

kind-walk: kind-up images kind-load tls deploy canary-walk
