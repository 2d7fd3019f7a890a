//! The mesh's Kubernetes and Istio resources as data.
//!
//! # Design sketch
//!
//! ```text
//!  YAML (dir | file | stdin) ──load──▶ [Resource] ──┬──▶ analyze ──▶ [Finding]     (mesh check)
//!   provenance: file + document       typed bodies  │
//!                                                   └──▶ RouteTable ─decide─▶ RouteDecision
//!                                                          │                   (lab, mesh route)
//!                                                          └─ trail::follow ─▶ [Trail]
//!                                                                             (mesh route --follow,
//!                                                                              mesh demo expectations)
//! ```
//!
//! - [`resources`]: serde structs for the subset of Kubernetes/Istio kinds the mesh uses.
//!   Unknown fields are tolerated (schema validation happens elsewhere); wrong types are errors
//!   naming the field path. Each [`resources::Resource`] keeps its [`resources::Provenance`].
//! - [`load`]: reads a directory tree (`*.yaml`/`*.yml`, skipping `kustomization.yaml`), one file,
//!   or a multi-document stream (`-`). Never panics; every [`load::LoadError`] names the file.
//! - [`route`]: the [`route::RouteTable`] the local lab routes with. It evaluates VirtualServices
//!   with Istio's semantics (first matching http route wins, match blocks OR'ed, conditions AND'ed,
//!   case-insensitive header names, full-match regexes, relative weights, gateway vs mesh context
//!   from `spec.gateways`), returns the route's timeout, retries and fault injection for the hop
//!   to execute, and answers DestinationRule subset labels so the lab can map a subset to a build.
//! - [`host`]: host resolution (short names in the namespace of whoever writes them, FQDNs,
//!   wildcards).
//! - [`unexecuted`]: the fields the lab does not execute (mirror, rewrite, traffic policy, …), as
//!   data for `mesh check` (MSH0111) and the lab's banner.
//! - [`trail`]: the frontend → backend → ml chain; every hop decides independently because the
//!   tiers propagate routing headers unchanged, so a trail's probability is a product.
//! - [`analyze`]: semantic checks in the spirit of `istioctl analyze`, codes `MSH01xx` (routing),
//!   `MSH02xx` (Services), `MSH03xx` (mesh security), `MSH04xx` (probes); see
//!   [`analyze::Code`].
//!
//! - [`oracle`]: the [`route::RouteTable`] held against Istio's own answers (the route
//!   configuration istiod would push, computed by tests/upstream/oracle against istio.io/istio's
//!   pilot): every difference in route, weights, timeout, retries or fault, named (`mesh
//!   compare-routes`).
//!
//! The `mesh` command-line tool (`check`, `route`, `demo`) is the `mesh-cli` crate; this library has
//! no async runtime, HTTP client or argument parser, so the lab links only what it routes with.
//!
//! What is deliberately not modelled: TCP/TLS routes, delegate VirtualServices, ServiceEntries,
//! match conditions on method/port/source (the router refuses them with a clear error and the
//! analyzer warns), and Istio's per-namespace `exportTo` visibility.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod duration;
pub mod envoy;
pub mod host;
pub mod load;
pub mod oracle;
pub mod resources;
pub mod route;
pub mod trail;
pub mod unexecuted;
