//! Builds the ml service's router: loads and optimises the model (off the async executor), starts
//! the classification pool, registers metrics, wraps the routes with the mesh layers, and marks
//! the service ready. `main`, the local lab and the tests all call [`build`].

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use mesh::Mesh;
use tracing::Instrument as _;

use crate::api::{ApiState, routes};
use crate::classifier::Classifier;
use crate::config::Config;
use crate::metrics::MlMetrics;
use crate::pool::InferencePool;

/// The fully wrapped router. Returns once the model is loaded and optimised; readiness is set
/// only then, so `/readyz` never answers 200 before the service can classify.
pub async fn build(config: &Config, mesh: &Mesh) -> anyhow::Result<Router> {
    let selection = config.model.clone();
    let span = tracing::info_span!("load_model", manifest = %selection.manifest.display());
    let classifier = tokio::task::spawn_blocking({
        let span = span.clone();
        move || span.in_scope(|| Classifier::load(&selection))
    })
    .instrument(span)
    .await
    .context("the model loading task failed")??;
    let card = classifier.card().clone();
    tracing::info!(
        model = %card.name,
        version = %card.version,
        input_size = card.input_size,
        layout = card.layout.as_str(),
        workers = config.pool.workers,
        queue_capacity = config.pool.queue_capacity,
        "model loaded"
    );

    let metrics = MlMetrics::default();
    metrics.set_model(&card.name, &card.version);
    mesh.register_metrics(|registry| metrics.register(registry));

    let pool = InferencePool::start(classifier, config.decode, config.pool, metrics)
        .context("cannot start the classification workers")?;
    let state = ApiState {
        pool: Arc::new(pool),
        card: Arc::new(card),
        served_by: mesh.identity().to_string(),
        max_upload_bytes: config.max_upload_bytes,
    };
    let app = mesh.wrap(routes(state));
    mesh.readiness().set_ready(true);
    Ok(app)
}
