// The body of the `propagation_headers` fuzz target, shared with the regression test
// (`mesh/tests/fuzz_regressions.rs` includes this file), so both run the same code.
//
// Incoming request headers → `mesh::RequestContext::from_headers` (the OpenTelemetry B3, W3C
// trace-context and baggage propagators, and the headers passed through verbatim) → `inject` into
// an outgoing request, as every tier does for each call it makes while serving a request. Input:
// header lines `name: value`, one per line (what an HTTP/1 request carries).

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh::{RequestContext, X_CANARY, X_REQUEST_ID};

fn headers(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        // hyper refuses a request with a header that is not valid; such a request never reaches
        // a handler.
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
}

/// Extracts the context from the headers in `data`, injects it into an outgoing request and reads
/// that back as the next hop would; answers the trace id (`trace <id>` or `no trace`). Panics
/// when an invariant breaks.
pub fn exercise(data: &[u8]) -> String {
    let incoming = headers(data);
    let ctx = RequestContext::from_headers(&incoming);
    let trace_id = ctx.trace_id();
    let _ = ctx.request_id();
    let _ = ctx.is_canary();

    let mut outgoing = HeaderMap::new();
    ctx.inject(&mut outgoing);
    for name in [X_CANARY, X_REQUEST_ID] {
        assert_eq!(
            outgoing.get(&name),
            incoming.get(&name),
            "{name} passes through"
        );
    }
    if let Some(id) = &trace_id {
        assert_eq!(id.len(), 32, "a trace id is 32 hex digits");
        assert!(
            outgoing.contains_key("traceparent"),
            "a valid context is propagated"
        );
    }
    // The next hop reads what this one wrote: the same trace.
    let next = RequestContext::from_headers(&outgoing);
    assert_eq!(next.trace_id(), trace_id, "the trace survives a hop");
    trace_id.map_or_else(|| "no trace".to_owned(), |id| format!("trace {id}"))
}
