# The observability stack from the projects' own charts, pinned: Prometheus (scrapes the pods'
# prometheus.io annotations, which Istio's metrics merging points at the sidecar agent's
# :15020/stats/prometheus), Jaeger all-in-one (OTLP on 4317 for istiod's `jaeger` provider),
# Grafana with the dashboard of the docker compose lab, and Kiali for the traffic graph. The
# namespace `observability` is outside the mesh (no injection): Prometheus scrapes plain HTTP on 15020.
locals {
  observability_namespace = "observability"
  prometheus_url          = "http://prometheus-server.${local.observability_namespace}.svc.cluster.local"
  jaeger_query_url        = "http://jaeger-query.${local.observability_namespace}.svc.cluster.local:16686"
}

resource "helm_release" "prometheus" {
  name             = "prometheus"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "prometheus"
  version          = var.observability_charts.prometheus
  namespace        = local.observability_namespace
  create_namespace = true
  values           = [file("${path.module}/values/prometheus.yaml")]
  depends_on       = [kind_cluster.lab]
}

resource "helm_release" "jaeger" {
  name             = "jaeger"
  repository       = "https://jaegertracing.github.io/helm-charts"
  chart            = "jaeger"
  version          = var.observability_charts.jaeger
  namespace        = local.observability_namespace
  create_namespace = true
  values           = [file("${path.module}/values/jaeger.yaml")]
  depends_on       = [kind_cluster.lab]
}

resource "helm_release" "grafana" {
  name             = "grafana"
  repository       = "https://grafana.github.io/helm-charts"
  chart            = "grafana"
  version          = var.observability_charts.grafana
  namespace        = local.observability_namespace
  create_namespace = true
  values = [
    file("${path.module}/values/grafana.yaml"),
    yamlencode({
      datasources = {
        "datasources.yaml" = {
          apiVersion = 1
          datasources = [
            { name = "Prometheus", uid = "prometheus", type = "prometheus", access = "proxy", url = local.prometheus_url, isDefault = true },
            { name = "Jaeger", uid = "jaeger", type = "jaeger", access = "proxy", url = local.jaeger_query_url },
          ]
        }
      }
      # The same dashboard the docker compose lab provisions (docker/grafana/dashboards/).
      dashboards = {
        default = {
          mesh = { json = file("${path.module}/../docker/grafana/dashboards/mesh.json") }
        }
      }
    }),
  ]
  depends_on = [helm_release.prometheus, helm_release.jaeger]
}

resource "helm_release" "kiali" {
  name       = "kiali-server"
  repository = "https://kiali.org/helm-charts"
  chart      = "kiali-server"
  version    = var.observability_charts.kiali
  namespace  = local.istio_namespace
  values = [
    file("${path.module}/values/kiali.yaml"),
    yamlencode({
      external_services = {
        prometheus = { url = local.prometheus_url }
        tracing    = { enabled = true, internal_url = local.jaeger_query_url, use_grpc = false }
        grafana    = { enabled = true, internal_url = "http://grafana.${local.observability_namespace}.svc.cluster.local" }
      }
    }),
  ]
  depends_on = [helm_release.istiod, helm_release.prometheus]
}
