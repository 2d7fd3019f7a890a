"""The Istio install (charts rendered with terraform/values) provides what mesh/deploy needs.

    install_contract.py --charts DIR --terraform DIR [--deploy FILE] [--gateway FILE]

Reads the charts helm rendered (DIR/<release>.yaml), terraform/*.tf (python-hcl2) and a rendered
overlay (default mesh/deploy/rendered/90-10.yaml), and checks the seams no single tool sees:
  - the ingress gateway Service is a NodePort (a LoadBalancer stays pending on kind) whose node
    ports are the ones kind's control plane maps host ports 80/443 to;
  - the gateway pods carry the labels mesh/deploy's Gateway selects, and run as the service
    account frontend's AuthorizationPolicy admits;
  - istiod's mesh config defines every tracing provider mesh/deploy's Telemetry names;
  - sidecars are injected for the CNI plugin (no istio-init, which Pod Security "restricted"
    forbids), and the CNI node agent is installed.
--gateway replaces the gateway chart's render (for the broken fixture). Exit 1 naming each break.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        d
        for d in docs
        if d.get("kind") == kind and (name is None or d.get("metadata", {}).get("name") == name)
    ]


def attr(body: dict, key: str):
    """An attribute's value: python-hcl2 wraps each in a one-element list."""
    value = body.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def terraform_defaults(tf_dir: Path) -> tuple[dict, list]:
    """Variable defaults, and the kind cluster's control-plane port mappings (as written)."""
    variables, mappings = {}, []
    for tf in sorted(tf_dir.glob("*.tf")):
        with tf.open() as f:
            parsed = hcl2.load(f)
        for block in parsed.get("variable", []):
            for name, body in block.items():
                variables[name] = attr(body, "default")
        for block in parsed.get("resource", []):
            for cluster in block.get("kind_cluster", {}).values():
                for config in cluster.get("kind_config", []):
                    for node in config.get("node", []):
                        if attr(node, "role") == "control-plane":
                            mappings += node.get("extra_port_mappings", [])
    return variables, mappings


def check(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    gateway_docs = load(args.gateway or args.charts / "istio-ingressgateway.yaml")
    istiod_docs = load(args.charts / "istiod.yaml")
    cni_docs = load(args.charts / "istio-cni.yaml")
    deploy = load(args.deploy)
    variables, mappings = terraform_defaults(args.terraform)

    # The gateway Service: NodePort on the ports kind maps.
    services = find(gateway_docs, "Service", "istio-ingressgateway")
    if not services:
        problems.append("gateway chart: no Service istio-ingressgateway")
    for svc in services:
        spec = svc.get("spec", {})
        if spec.get("type") != "NodePort":
            problems.append(
                f"Service istio-ingressgateway: type {spec.get('type')}, want NodePort "
                "(a LoadBalancer stays pending on kind, and terraform's helm wait would hang)"
            )
        node_ports = {p.get("name"): p.get("nodePort") for p in spec.get("ports", [])}
        wanted = variables.get("gateway_node_ports") or {}
        for port_name, key in (("http2", "http"), ("https", "https")):
            if node_ports.get(port_name) != wanted.get(key):
                problems.append(
                    f"Service istio-ingressgateway port {port_name}: nodePort {node_ports.get(port_name)}, "
                    f"but terraform's gateway_node_ports.{key} is {wanted.get(key)}"
                )
    mapped = {str(attr(m, "container_port")) for m in mappings}
    for key in ("http", "https"):
        if f"${{var.gateway_node_ports.{key}}}" not in mapped:
            problems.append(
                f"terraform kind_cluster: the control plane maps no host port onto var.gateway_node_ports.{key}"
            )

    # The gateway pods: the labels the Gateway selects, the identity frontend admits.
    selectors = [g["spec"].get("selector", {}) for g in find(deploy, "Gateway")]
    deployments = find(gateway_docs, "Deployment", "istio-ingressgateway")
    if not deployments:
        problems.append("gateway chart: no Deployment istio-ingressgateway")
    for dep in deployments:
        pod = dep["spec"]["template"]
        labels = pod.get("metadata", {}).get("labels", {})
        for selector in selectors:
            if any(labels.get(k) != v for k, v in selector.items()):
                problems.append(f"gateway pods' labels {labels} do not carry the Gateway selector {selector}")
        account = pod["spec"].get("serviceAccountName")
        principal = f"cluster.local/ns/istio-system/sa/{account}"
        admitted = [
            p
            for policy in find(deploy, "AuthorizationPolicy")
            if policy["metadata"].get("namespace") == "frontend"
            for rule in policy["spec"].get("rules", [])
            for source in rule.get("from", [])
            for p in source.get("source", {}).get("principals", [])
        ]
        if principal not in admitted:
            problems.append(
                f"gateway pods run as {principal}, which frontend's AuthorizationPolicies do not admit ({admitted})"
            )

    # Tracing providers.
    mesh_configs = [yaml.safe_load(c["data"]["mesh"]) for c in find(istiod_docs, "ConfigMap", "istio")]
    providers = {p.get("name") for m in mesh_configs for p in (m or {}).get("extensionProviders", [])}
    for telemetry in find(deploy, "Telemetry"):
        for tracing in telemetry["spec"].get("tracing", []):
            for provider in tracing.get("providers", []):
                if provider.get("name") not in providers:
                    problems.append(
                        f"Telemetry {telemetry['metadata'].get('name')} names tracing provider "
                        f"{provider.get('name')!r}; istiod's meshConfig.extensionProviders has {sorted(providers)}"
                    )

    # CNI: injection without istio-init, and the node agent itself.
    injectors = find(istiod_docs, "ConfigMap", "istio-sidecar-injector")
    values = [json.loads(c["data"]["values"]) for c in injectors]
    if not values or not all(v.get("pilot", {}).get("cni", {}).get("enabled") for v in values):
        problems.append("istiod's sidecar injector does not have pilot.cni.enabled: pods would get istio-init (NET_ADMIN)")
    if not find(cni_docs, "DaemonSet"):
        problems.append("cni chart: no DaemonSet (the CNI node agent)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=Path, required=True)
    parser.add_argument("--terraform", type=Path, required=True)
    parser.add_argument("--deploy", type=Path, default=ROOT / "mesh/deploy/rendered/90-10.yaml")
    parser.add_argument("--gateway", type=Path)
    args = parser.parse_args()
    problems = check(args)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print("install contract holds: NodePort gateway on kind's mapped ports, Gateway labels and identity, tracing provider, CNI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
