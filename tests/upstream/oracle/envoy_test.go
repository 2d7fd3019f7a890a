package oracle

// Reading Envoy's routes: which route a request takes (Envoy's first-match rule over the match
// fields Istio generates), the witness requests that exercise each route, and the route's action
// as a Decision. Any match or action field this file does not know fails the test by name, so a
// configuration it cannot judge is never judged silently.

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The header the canary routes match on (DESIGN.md); every virtual host is probed with and
// without it, and with values that must not match.
const canaryHeader = "x-canary"

type request struct {
	path    string
	headers map[string]string
}

func (r request) key() string {
	keys := make([]string, 0, len(r.headers))
	for k, v := range r.headers {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return r.path + "?" + strings.Join(keys, "&")
}

// requestsFor is the probe set of one virtual host: a witness per route, then the fixed probes.
func requestsFor(t *testing.T, vh *route.VirtualHost) []request {
	var out []request
	seen := map[string]bool{}
	add := func(r request) {
		if !seen[r.key()] {
			seen[r.key()] = true
			out = append(out, r)
		}
	}
	for _, r := range vh.Routes {
		if w, ok := witness(t, r.Match); ok {
			add(w)
		}
	}
	for _, path := range []string{"/", "/analyze"} {
		add(request{path: path, headers: map[string]string{}})
		for _, v := range []string{"true", "false", "TRUE"} {
			add(request{path: path, headers: map[string]string{canaryHeader: v}})
		}
	}
	return out
}

// witness is a request that m matches, when one can be written down from m alone.
func witness(t *testing.T, m *route.RouteMatch) (request, bool) {
	r := request{headers: map[string]string{}}
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		r.path = p.Prefix
	case *route.RouteMatch_Path:
		r.path = p.Path
	case *route.RouteMatch_PathSeparatedPrefix:
		r.path = p.PathSeparatedPrefix
	case *route.RouteMatch_SafeRegex:
		return r, false
	default:
		t.Fatalf("route match path %T is not understood by the oracle", p)
	}
	if !strings.HasPrefix(r.path, "/") {
		r.path = "/" + r.path
	}
	if len(m.QueryParameters) > 0 {
		return r, false
	}
	for _, h := range m.Headers {
		if h.InvertMatch || h.TreatMissingHeaderAsEmpty {
			continue
		}
		value, ok := headerWitness(t, h)
		if !ok {
			return r, false
		}
		r.headers[strings.ToLower(h.Name)] = value
	}
	return r, true
}

func headerWitness(t *testing.T, h *route.HeaderMatcher) (string, bool) {
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_StringMatch:
		switch p := s.StringMatch.GetMatchPattern().(type) {
		case *matcher.StringMatcher_Exact:
			return p.Exact, true
		case *matcher.StringMatcher_Prefix:
			return p.Prefix + "x", true
		case *matcher.StringMatcher_Suffix:
			return "x" + p.Suffix, true
		case *matcher.StringMatcher_Contains:
			return p.Contains, true
		case *matcher.StringMatcher_SafeRegex:
			return "", false
		default:
			t.Fatalf("header %s: string match %T is not understood by the oracle", h.Name, p)
		}
	case *route.HeaderMatcher_PresentMatch:
		return "1", true
	default:
		t.Fatalf("header %s: match %T is not understood by the oracle", h.Name, s)
	}
	return "", false
}

// firstMatch is the route Envoy takes for req: the first whose match holds.
func firstMatch(t *testing.T, vh *route.VirtualHost, req request) *route.Route {
	for _, r := range vh.Routes {
		if matches(t, r.Match, req) {
			return r
		}
	}
	return nil
}

func matches(t *testing.T, m *route.RouteMatch, req request) bool {
	caseSensitive := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	path := req.path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	fold := func(s string) string {
		if caseSensitive {
			return s
		}
		return strings.ToLower(s)
	}
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		if !strings.HasPrefix(fold(req.path), fold(p.Prefix)) {
			return false
		}
	case *route.RouteMatch_Path:
		if fold(path) != fold(p.Path) {
			return false
		}
	case *route.RouteMatch_PathSeparatedPrefix:
		pre := p.PathSeparatedPrefix
		if !(fold(path) == fold(pre) || strings.HasPrefix(fold(path), fold(pre)+"/")) {
			return false
		}
	case *route.RouteMatch_SafeRegex:
		if !fullMatch(t, p.SafeRegex.GetRegex(), path) {
			return false
		}
	default:
		t.Fatalf("route match path %T is not understood by the oracle", p)
	}
	if len(m.QueryParameters) > 0 {
		return false // the probes send no query string
	}
	for _, h := range m.Headers {
		if headerMatches(t, h, req.headers) == h.InvertMatch {
			return false
		}
	}
	return true
}

func headerMatches(t *testing.T, h *route.HeaderMatcher, headers map[string]string) bool {
	value, present := headers[strings.ToLower(h.Name)]
	if !present && h.TreatMissingHeaderAsEmpty {
		value, present = "", true
	}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_PresentMatch:
		return present == s.PresentMatch
	case *route.HeaderMatcher_StringMatch:
		if !present {
			return false
		}
		return stringMatches(t, s.StringMatch, value)
	default:
		t.Fatalf("header %s: match %T is not understood by the oracle", h.Name, s)
	}
	return false
}

func stringMatches(t *testing.T, m *matcher.StringMatcher, value string) bool {
	fold := func(s string) string {
		if m.IgnoreCase {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return fold(value) == fold(p.Exact)
	case *matcher.StringMatcher_Prefix:
		return strings.HasPrefix(fold(value), fold(p.Prefix))
	case *matcher.StringMatcher_Suffix:
		return strings.HasSuffix(fold(value), fold(p.Suffix))
	case *matcher.StringMatcher_Contains:
		return strings.Contains(fold(value), fold(p.Contains))
	case *matcher.StringMatcher_SafeRegex:
		return fullMatch(t, p.SafeRegex.GetRegex(), value)
	default:
		t.Fatalf("string match %T is not understood by the oracle", p)
	}
	return false
}

// fullMatch is Envoy's safe_regex rule: RE2, and the whole value must match.
func fullMatch(t *testing.T, expr, value string) bool {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		t.Fatalf("regex %q from Istio does not compile: %v", expr, err)
	}
	return re.MatchString(value)
}

// decisionOf reads a route's action: weighted subsets, timeout, retries and fault.
func decisionOf(t *testing.T, r *route.Route) Decision {
	d := Decision{Route: r.Name}
	action, ok := r.GetAction().(*route.Route_Route)
	if !ok {
		// A direct response or redirect: no destination. The comparison reports it by name.
		return d
	}
	ra := action.Route
	switch c := ra.GetClusterSpecifier().(type) {
	case *route.RouteAction_Cluster:
		d.Destinations = []Destination{destination(t, c.Cluster, 1)}
	case *route.RouteAction_WeightedClusters:
		var total float64
		for _, wc := range c.WeightedClusters.Clusters {
			total += float64(wc.GetWeight().GetValue())
		}
		for _, wc := range c.WeightedClusters.Clusters {
			if w := float64(wc.GetWeight().GetValue()); w > 0 {
				d.Destinations = append(d.Destinations, destination(t, wc.Name, w/total))
			}
		}
	default:
		t.Fatalf("route %s: cluster specifier %T is not understood by the oracle", r.Name, c)
	}
	d.TimeoutSeconds = seconds(ra.GetTimeout())
	if p := ra.GetRetryPolicy(); p != nil && p.GetNumRetries().GetValue() > 0 {
		on := strings.Split(p.RetryOn, ",")
		sort.Strings(on)
		d.Retries = &Retries{
			Attempts:             p.GetNumRetries().GetValue(),
			PerTryTimeoutSeconds: seconds(p.GetPerTryTimeout()),
			RetryOn:              on,
		}
	}
	if any, ok := r.TypedPerFilterConfig["envoy.filters.http.fault"]; ok {
		var f faultv3.HTTPFault
		if err := any.UnmarshalTo(&f); err != nil {
			t.Fatalf("route %s: fault config: %v", r.Name, err)
		}
		d.Fault = &Fault{}
		if delay := f.GetDelay(); delay != nil {
			d.Fault.DelaySeconds = seconds(delay.GetFixedDelay())
			d.Fault.DelayPercent = percent(delay.GetPercentage())
		}
		if abort := f.GetAbort(); abort != nil {
			d.Fault.AbortStatus = abort.GetHttpStatus()
			d.Fault.AbortPercent = percent(abort.GetPercentage())
		}
	}
	return d
}

// destination reads an Istio subset cluster name, outbound|<port>|<subset>|<fqdn>.
func destination(t *testing.T, cluster string, share float64) Destination {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		t.Fatalf("cluster %q is not an Istio outbound|port|subset|host cluster", cluster)
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("cluster %q: port %q: %v", cluster, parts[1], err)
	}
	return Destination{Host: parts[3], Subset: parts[2], Port: port, Share: share}
}

func seconds(d *durationpb.Duration) float64 {
	if d == nil {
		return 0
	}
	return d.AsDuration().Seconds()
}

func percent(p *typev3.FractionalPercent) float64 {
	if p == nil {
		return 100
	}
	scale := map[typev3.FractionalPercent_DenominatorType]float64{
		typev3.FractionalPercent_HUNDRED:      100,
		typev3.FractionalPercent_TEN_THOUSAND: 10_000,
		typev3.FractionalPercent_MILLION:      1_000_000,
	}[p.Denominator]
	return float64(p.Numerator) / scale * 100
}
