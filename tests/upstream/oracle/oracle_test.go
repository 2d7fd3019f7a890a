// Package oracle asks Istio's own control plane what it would push for the project's resources.
//
// TestIstioRoutes loads each rendered overlay (ORACLE_OVERLAYS, space-separated paths) into Istio's
// in-memory discovery server (istio.io/istio/pilot/test/xds, the one Istio's own tests use), builds
// the route configuration istiod would push to the ingress gateway and to a sidecar in each tier's
// namespace, and answers a set of probe requests from it: for every Envoy route of every virtual
// host of the project's services, a request that route matches (its witness), plus requests with
// and without `x-canary`. Each answer names the route, the weighted subsets, the timeout, the retry
// policy and the fault Envoy would apply. The answers go to ORACLE_OUT/<overlay>.istio.json, which
// `mesh compare-routes` holds against the project's own evaluation (tests/upstream/README.md).
//
// Run it with tests/upstream/oracle.sh (which builds this test binary with `go test -c`).
package oracle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
)

// The tiers the project deploys: each gets a sidecar proxy in its own namespace.
var tiers = []string{"frontend", "backend", "ml"}

// The Istio release the cluster runs (tests/upstream/versions.sh ISTIO_RELEASE): proxies report it,
// and istiod generates configuration for that proxy version.
const proxyVersion = "1.30.3"

func TestIstioRoutes(t *testing.T) {
	overlays := strings.Fields(os.Getenv("ORACLE_OVERLAYS"))
	out := os.Getenv("ORACLE_OUT")
	if len(overlays) == 0 || out == "" {
		t.Fatal("set ORACLE_OVERLAYS (rendered overlay files) and ORACLE_OUT (a directory)")
	}
	for _, path := range overlays {
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		t.Run(name, func(t *testing.T) {
			probes := istioAnswers(t, path)
			if len(probes) == 0 {
				t.Fatalf("%s: Istio produced no virtual host for any of the project's services", path)
			}
			data, err := json.MarshalIndent(Report{Overlay: filepath.Base(path), IstioProxyVersion: proxyVersion, Probes: probes}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(out, name+".istio.json")
			if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d probes → %s", path, len(probes), file)
		})
	}
}

// istioAnswers builds Istio's route configuration for one overlay and answers the probes.
func istioAnswers(t *testing.T, path string) []Probe {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := splitObjects(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString:           objects.istio,
		KubernetesObjectString: objects.kubernetes + ingressGateway,
	})

	var probes []Probe
	gateway := s.SetupProxy(&model.Proxy{
		Type:            model.Router,
		ID:              "istio-ingressgateway.istio-system",
		ConfigNamespace: "istio-system",
		Labels:          map[string]string{"istio": "ingressgateway"},
		IPAddresses:     []string{"10.1.0.10"},
		Metadata: &model.NodeMetadata{
			IstioVersion: proxyVersion,
			Namespace:    "istio-system",
			Labels:       map[string]string{"istio": "ingressgateway"},
		},
	})
	probes = append(probes, answer(t, "gateway", s.Routes(gateway), objects.gatewayHosts)...)
	for i, tier := range tiers {
		labels := map[string]string{"app": tier, "version": "stable"}
		sidecar := s.SetupProxy(&model.Proxy{
			ID:              tier + "-stable." + tier,
			ConfigNamespace: tier,
			Labels:          labels,
			IPAddresses:     []string{fmt.Sprintf("10.1.1.%d", i+1)},
			Metadata: &model.NodeMetadata{
				IstioVersion: proxyVersion,
				Namespace:    tier,
				Labels:       labels,
			},
		})
		probes = append(probes, answer(t, "sidecar:"+tier, s.Routes(sidecar), objects.serviceHosts)...)
	}
	return probes
}

// answer probes every virtual host that serves one of hosts, in every route configuration.
func answer(t *testing.T, caller string, configs []*route.RouteConfiguration, hosts []string) []Probe {
	var probes []Probe
	sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	for _, rc := range configs {
		for _, vh := range rc.VirtualHosts {
			host := servedHost(vh, hosts)
			if host == "" {
				continue
			}
			for _, req := range requestsFor(t, vh) {
				probe := Probe{
					Caller:      caller,
					RouteConfig: rc.Name,
					VirtualHost: vh.Name,
					Host:        host,
					Path:        req.path,
					Headers:     req.headers,
				}
				if r := firstMatch(t, vh, req); r != nil {
					decision := decisionOf(t, r)
					probe.Istio = &decision
				}
				probes = append(probes, probe)
			}
		}
	}
	return probes
}

// servedHost is the first of hosts that the virtual host lists as a domain, or "".
func servedHost(vh *route.VirtualHost, hosts []string) string {
	for _, h := range hosts {
		for _, d := range vh.Domains {
			if d == h {
				return h
			}
		}
	}
	return ""
}

// Report is what the oracle writes per overlay.
type Report struct {
	Overlay           string  `json:"overlay"`
	IstioProxyVersion string  `json:"istio_proxy_version"`
	Probes            []Probe `json:"probes"`
}

// Probe is one request and Istio's answer to it (nil: no route matches, Envoy answers 404).
type Probe struct {
	// "gateway", or "sidecar:<namespace>" for a sidecar in that namespace.
	Caller      string            `json:"caller"`
	RouteConfig string            `json:"route_config"`
	VirtualHost string            `json:"virtual_host"`
	Host        string            `json:"host"`
	Path        string            `json:"path"`
	Headers     map[string]string `json:"headers"`
	Istio       *Decision         `json:"istio"`
}

// Decision is the action of the Envoy route a probe matched.
type Decision struct {
	Route          string        `json:"route"`
	Destinations   []Destination `json:"destinations"`
	TimeoutSeconds float64       `json:"timeout_seconds"`
	Retries        *Retries      `json:"retries"`
	Fault          *Fault        `json:"fault"`
}

// Destination is one weighted cluster, as the subset it stands for; Share is weight / total.
type Destination struct {
	Host   string  `json:"host"`
	Subset string  `json:"subset"`
	Port   int     `json:"port"`
	Share  float64 `json:"share"`
}

type Retries struct {
	Attempts             uint32   `json:"attempts"`
	PerTryTimeoutSeconds float64  `json:"per_try_timeout_seconds"`
	RetryOn              []string `json:"retry_on"`
}

type Fault struct {
	DelaySeconds float64 `json:"delay_seconds,omitempty"`
	DelayPercent float64 `json:"delay_percent,omitempty"`
	AbortStatus  uint32  `json:"abort_status,omitempty"`
	AbortPercent float64 `json:"abort_percent,omitempty"`
}
