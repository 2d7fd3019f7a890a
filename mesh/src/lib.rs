//! What makes a 3RVision service mesh-aware, in one place, used the same way by every tier:
//!
//! - [`Mesh::wrap`] puts a service's routes behind the [`edge`](Mesh::wrap) — `x-request-id` (a UUID
//!   when missing), trace context extraction and a request span named by route template, request
//!   metrics, a caught panic answered as the JSON 500, and the `x-served-by: <service>/<version>`
//!   header — and adds `/healthz`, `/readyz`, `/metrics`;
//! - [`ErrorBody`] and [`ServiceError`] are the one error contract every tier answers with and every
//!   client parses;
//! - [`upload::read_image`] is the one reader of an uploaded photo (field, limit, media type, format
//!   sniffed from the bytes);
//! - [`RequestContext`] (an extractor) and [`MeshClient`] carry the propagated headers onto every
//!   outgoing request;
//! - [`Server`] serves with a graceful stop; [`telemetry`] installs logs and spans; [`config`] reads the
//!   environment once; [`run`] is a service binary's whole `main`, for any [`MeshService`] (and,
//!   as `<binary> healthcheck`, its own readiness probe for images without a shell).
//!
//! Kubernetes and Istio configuration code lives in the separate `mesh-istio` crate, so services do
//! not compile it.
#![forbid(unsafe_code)]

mod client;
pub mod config;
mod edge;
pub mod error;
mod health;
pub mod healthcheck;
mod identity;
pub mod limits;
mod metrics;
mod propagation;
mod server;
mod service;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod upload;

pub use client::MeshClient;
pub use edge::Mesh;
pub use error::{ErrorBody, ServiceError, Unavailability};
pub use health::Readiness;
pub use identity::{ServiceIdentity, UnknownVersion, Version};
pub use limits::ServingLimits;
pub use propagation::{RequestContext, X_CANARY, X_REQUEST_ID, X_SERVED_BY};
pub use server::{Server, StopPolicy, shutdown_signal};
pub use service::{BuildResult, MeshService, Spawned, run, spawn, spawn_traced};
