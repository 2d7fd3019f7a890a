package oracle

// Splitting a rendered overlay into what Istio's fake discovery server takes: Istio resources as
// config, Services and Namespaces as Kubernetes objects (the service registry), nothing else.

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

type objects struct {
	istio, kubernetes string
	// Hosts Gateways accept (`ns/` prefixes dropped) and the Services' FQDNs: the virtual hosts
	// whose routes are probed.
	gatewayHosts, serviceHosts []string
}

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Servers []struct {
			Hosts []string `json:"hosts"`
		} `json:"servers"`
	} `json:"spec"`
}

func splitObjects(data []byte) (objects, error) {
	var out objects
	var istio, kube strings.Builder
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return out, fmt.Errorf("document %d: %w", i+1, err)
		}
		switch {
		case strings.Contains(o.APIVersion, "istio.io/"):
			istio.Write(doc)
			istio.WriteString("\n---\n")
			if o.Kind == "Gateway" {
				for _, s := range o.Spec.Servers {
					for _, h := range s.Hosts {
						if _, host, ok := strings.Cut(h, "/"); ok {
							h = host
						}
						out.gatewayHosts = append(out.gatewayHosts, h)
					}
				}
			}
		case o.APIVersion == "v1" && (o.Kind == "Service" || o.Kind == "Namespace"):
			kube.Write(doc)
			kube.WriteString("\n---\n")
			if o.Kind == "Service" {
				out.serviceHosts = append(out.serviceHosts,
					fmt.Sprintf("%s.%s.svc.cluster.local", o.Metadata.Name, o.Metadata.Namespace))
			}
		}
	}
	if istio.Len() == 0 {
		return out, fmt.Errorf("no Istio resources")
	}
	out.istio, out.kubernetes = istio.String(), kube.String()
	return out, nil
}

// ingressGateway is the gateway workload the install provides (terraform/values/gateway.yaml): its
// Service (service port = target port for 80 and 443) and one ready pod with the label mesh/deploy's
// Gateway selects.
const ingressGateway = `
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  ports:
  - name: http2
    port: 80
    targetPort: 80
  - name: https
    port: 443
    targetPort: 443
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-0
  namespace: istio-system
  labels:
    istio: ingressgateway
spec:
  serviceAccountName: istio-ingressgateway-service-account
  containers:
  - name: istio-proxy
    image: proxyv2
status:
  podIP: 10.1.0.10
  phase: Running
  conditions:
  - type: Ready
    status: "True"
`
