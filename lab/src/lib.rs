//! The whole 3RVision lab on loopback, without docker or a cluster.
//!
//! Design: every tier runs twice in this process — a `stable` and a `canary` build, each a real
//! service built by the same `build` function its own binary uses — and in front of each tier sits a
//! [`hop::Hop`], a small HTTP proxy that plays the part of the Envoy sidecar: it evaluates the tier's
//! Istio VirtualService and DestinationRule (read from `mesh/deploy`, never re-typed) for every
//! request, picks a subset with the configured probability, and forwards to the replica whose
//! `version` label the subset selects. The services only know the hop's URL, as they would only know
//! a Kubernetes Service name in the cluster:
//!
//! ```text
//! browser ─▶ hop frontend.local ─▶ frontend/{stable,canary} ─▶ hop backend ─▶ backend/{stable,canary}
//!                                                          ─▶ hop ml ─▶ ml/{stable,canary}
//! ```
#![forbid(unsafe_code)]

pub mod hop;
pub mod lab;
pub mod topology;

pub use lab::{Lab, LabOptions, ReplicaTelemetry};
