//! Builds the frontend's router from its configuration: the one builder main, the lab and the
//! tests all use.

use axum::Router;
use mesh::Mesh;

use crate::backend_client::BackendClient;
use crate::config::Config;
use crate::routes::{AnalysisOutcomes, AppState, router};

/// The frontend's fully wrapped router. The frontend holds no model and no cache, so it is
/// ready as soon as it is built; whether the backend is up shows on each request instead.
pub async fn build(config: &Config, mesh: &Mesh) -> anyhow::Result<Router> {
    let outcomes = AnalysisOutcomes::default();
    mesh.register_metrics(|registry| {
        registry.register(
            "frontend_analyses",
            "POST /analyze answers by outcome (ok or the error code)",
            outcomes.clone(),
        );
    });
    let backend = BackendClient::new(mesh, &config.backend_url, config.backend_timeout.0);
    let state = AppState::new(
        mesh.identity().clone(),
        backend,
        config.max_upload,
        config.tracing_ui.clone(),
        outcomes,
    );
    let app = mesh.wrap(router(state));
    mesh.readiness().set_ready(true);
    Ok(app)
}
