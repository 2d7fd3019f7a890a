# The kind cluster: one control plane and two workers. The control plane is labelled
# ingress-ready=true and maps host ports 80/443 onto the ingress gateway's NodePorts (kube-proxy on
# that node forwards them to the gateway pod wherever it runs), because a LoadBalancer Service stays
# <pending> on kind.
locals {
  kubeconfig_path = var.kubeconfig_path != "" ? var.kubeconfig_path : "${path.module}/${var.cluster_name}-config"
  context         = "kind-${var.cluster_name}"
}

resource "kind_cluster" "lab" {
  name            = var.cluster_name
  node_image      = var.node_image
  kubeconfig_path = pathexpand(local.kubeconfig_path)
  wait_for_ready  = true

  kind_config {
    kind        = "Cluster"
    api_version = "kind.x-k8s.io/v1alpha4"

    node {
      role   = "control-plane"
      labels = { "ingress-ready" = "true" }

      extra_port_mappings {
        container_port = var.gateway_node_ports.http
        host_port      = var.http_port
        listen_address = "127.0.0.1"
        protocol       = "TCP"
      }
      extra_port_mappings {
        container_port = var.gateway_node_ports.https
        host_port      = var.https_port
        listen_address = "127.0.0.1"
        protocol       = "TCP"
      }
    }

    node {
      role = "worker"
    }

    node {
      role = "worker"
    }
  }
}
