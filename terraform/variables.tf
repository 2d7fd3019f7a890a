variable "cluster_name" {
  description = "Name of the kind cluster; the kubeconfig context is kind-<name>."
  type        = string
  default     = "3rvision"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,40}$", var.cluster_name))
    error_message = "cluster_name must be lower-case letters, digits and dashes (a DNS label, at most 41 characters)."
  }
}

variable "node_image" {
  description = "kind node image (pins the Kubernetes version; mesh/deploy needs >= 1.30 for the preStop sleep action)."
  type        = string
  default     = "kindest/node:v1.34.0"
}

variable "http_port" {
  description = "Host port mapped onto the ingress gateway's HTTP NodePort."
  type        = number
  default     = 80
}

variable "https_port" {
  description = "Host port mapped onto the ingress gateway's HTTPS NodePort."
  type        = number
  default     = 443
}

variable "gateway_node_ports" {
  description = "NodePorts of the ingress gateway Service (must lie in the cluster's NodePort range 30000-32767)."
  type = object({
    http  = number
    https = number
  })
  default = {
    http  = 30080
    https = 30443
  }

  validation {
    condition     = alltrue([for p in values(var.gateway_node_ports) : p >= 30000 && p <= 32767])
    error_message = "gateway_node_ports must lie in the NodePort range 30000-32767."
  }
}

variable "kubeconfig_path" {
  description = "Where the cluster's kubeconfig is written (empty: <this directory>/<cluster_name>-config)."
  type        = string
  default     = ""
}

variable "istio_version" {
  description = "Istio release installed from Istio's Helm repository (charts base, istiod, cni, gateway)."
  type        = string
  default     = "1.30.3"
}

variable "observability_charts" {
  description = "Pinned chart versions of the observability stack (the versions Istio's samples/addons render)."
  type = object({
    prometheus = string
    jaeger     = string
    grafana    = string
    kiali      = string
  })
  default = {
    prometheus = "28.13.0"
    jaeger     = "4.4.7"
    grafana    = "9.2.2"
    kiali      = "2.27.0"
  }
}
