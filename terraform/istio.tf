# Istio from its official Helm charts, in the order the charts need: base (CRDs), the CNI node agent
# (the workload namespaces enforce the restricted Pod Security profile, which forbids istio-init's
# NET_ADMIN), istiod, then the ingress gateway as a NodePort Service. Values live in values/, the
# same files tests/upstream/ renders offline with helm and checks.
provider "helm" {
  kubernetes = {
    host                   = kind_cluster.lab.endpoint
    client_certificate     = kind_cluster.lab.client_certificate
    client_key             = kind_cluster.lab.client_key
    cluster_ca_certificate = kind_cluster.lab.cluster_ca_certificate
  }
}

locals {
  istio_repository = "https://istio-release.storage.googleapis.com/charts"
  istio_namespace  = "istio-system"
}

resource "helm_release" "istio_base" {
  name             = "istio-base"
  repository       = local.istio_repository
  chart            = "base"
  version          = var.istio_version
  namespace        = local.istio_namespace
  create_namespace = true
  values           = [file("${path.module}/values/base.yaml")]
}

resource "helm_release" "istio_cni" {
  name       = "istio-cni"
  repository = local.istio_repository
  chart      = "cni"
  version    = var.istio_version
  namespace  = local.istio_namespace
  values     = [file("${path.module}/values/cni.yaml")]
  depends_on = [helm_release.istio_base]
}

resource "helm_release" "istiod" {
  name       = "istiod"
  repository = local.istio_repository
  chart      = "istiod"
  version    = var.istio_version
  namespace  = local.istio_namespace
  values     = [file("${path.module}/values/istiod.yaml")]
  wait       = true
  depends_on = [helm_release.istio_cni]
}

# NodePort, not LoadBalancer: `wait` on a LoadBalancer Service would never finish on kind.
resource "helm_release" "ingress_gateway" {
  name       = "istio-ingressgateway"
  repository = local.istio_repository
  chart      = "gateway"
  version    = var.istio_version
  namespace  = local.istio_namespace
  values     = [file("${path.module}/values/gateway.yaml")]
  set = [
    { name = "service.ports[1].nodePort", value = tostring(var.gateway_node_ports.http) },
    { name = "service.ports[2].nodePort", value = tostring(var.gateway_node_ports.https) },
  ]
  wait       = true
  depends_on = [helm_release.istiod]
}
