output "kubeconfig_path" {
  description = "Path of the kubeconfig written for the cluster."
  value       = kind_cluster.lab.kubeconfig_path
}

output "context" {
  description = "kubectl context of the cluster."
  value       = local.context
}

output "endpoint" {
  description = "The cluster's API server."
  value       = kind_cluster.lab.endpoint
}

output "gateway_urls" {
  description = "Where the ingress gateway answers on this machine (Host: frontend.local)."
  value = {
    http  = "http://127.0.0.1:${var.http_port}"
    https = "https://127.0.0.1:${var.https_port}"
  }
}
