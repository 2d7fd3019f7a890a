//! The backend's HTTP API: `POST /api/v1/analyze` and `GET /api/v1/categories`, behind the mesh layers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mesh::upload::UploadError;
use mesh::{Mesh, RequestContext};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::assessment::{Assessment, Assessor, Prediction, Strategy};
use crate::classifier::RemoteClassifier;
use crate::config::Config;
use crate::error::ApiError;
use crate::knowledge::{Category, KnowledgeBase, NotProduct};
use crate::metrics::BackendMetrics;

/// Room for multipart boundaries and part headers on top of the image itself.
const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct AppState {
    assessor: Assessor,
    classifier: RemoteClassifier,
    served_by: String,
    max_upload_bytes: usize,
    categories_json: Bytes,
    metrics: BackendMetrics,
    /// One permit per analysis in flight; none left means 503, never a queue.
    analyses: Arc<Semaphore>,
}

/// Builds the backend's router, wrapped by the mesh (health, readiness, metrics, propagation), and
/// marks the service ready: it needs nothing but its embedded knowledge base to serve.
pub async fn build(config: &Config, mesh: &Mesh) -> anyhow::Result<Router> {
    let knowledge =
        Arc::new(KnowledgeBase::bundled().context("the embedded knowledge base is invalid")?);
    let served_by = mesh.identity().to_string();
    let categories_json = Bytes::from(
        serde_json::to_vec(&CategoriesResponse {
            class_count: knowledge.class_count(),
            categories: knowledge.categories(),
            not_products: knowledge.not_products(),
            served_by: vec![served_by.clone()],
        })
        .context("serialising the knowledge base")?,
    );
    let strategy = Strategy::for_version(mesh.identity().version());
    let metrics = BackendMetrics::default();
    mesh.register_metrics(|registry| metrics.register(registry));
    let state = AppState {
        assessor: Assessor::new(knowledge, strategy, config.min_confidence),
        classifier: RemoteClassifier::new(mesh.client(config.ml_timeout), &config.ml_url),
        served_by,
        max_upload_bytes: config.max_upload_bytes,
        categories_json,
        metrics,
        analyses: Arc::new(Semaphore::new(config.max_concurrent_analyses)),
    };
    let routes = Router::new()
        .route("/api/v1/analyze", post(analyze))
        .route("/api/v1/categories", get(categories))
        .layer(DefaultBodyLimit::max(
            config
                .max_upload_bytes
                .saturating_add(MULTIPART_OVERHEAD_BYTES),
        ))
        .with_state(state);
    let app = mesh.wrap(routes);
    tracing::info!(
        strategy = %strategy,
        ml_url = %config.ml_url,
        min_confidence = config.min_confidence.get(),
        "backend ready"
    );
    mesh.readiness().set_ready(true);
    Ok(app)
}

#[derive(Serialize)]
struct CategoriesResponse<'a> {
    class_count: usize,
    categories: &'a [Category],
    /// The classes no advice is given for, and why.
    not_products: &'a [NotProduct],
    served_by: Vec<String>,
}

async fn categories(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.categories_json.clone(),
    )
}

/// What the backend identified.
#[derive(Debug, Serialize)]
struct Item {
    label: String,
    class_index: u32,
    /// The probability of this class on its own.
    confidence: f64,
    /// The knowledge-base category id, only when the assessment is known.
    category: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClassificationOut {
    model: serde_json::Value,
    predictions: Vec<Prediction>,
}

#[derive(Debug, Serialize)]
struct TimingsOut {
    /// The whole classify round trip as the backend saw it, in milliseconds.
    ml_total: f64,
    /// ml's own breakdown, as ml reported it.
    ml: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct AnalyzeResponse {
    item: Option<Item>,
    classification: ClassificationOut,
    assessment: Assessment,
    timings_ms: TimingsOut,
    served_by: Vec<String>,
}

async fn analyze(
    State(app): State<AppState>,
    ctx: RequestContext,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<AnalyzeResponse>, ApiError> {
    let _permit = app
        .analyses
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let mut multipart = multipart.map_err(|r| ApiError::InvalidMultipart(r.body_text()))?;
    let upload = read_image(&mut multipart, app.max_upload_bytes).await?;
    let classification = match app
        .classifier
        .classify(&ctx, &upload.content_type, upload.bytes)
        .await
    {
        Ok(classification) => {
            app.metrics
                .record_ml_call("ok", Some(classification.elapsed.as_secs_f64()));
            classification
        }
        Err(error) => {
            app.metrics.record_ml_call(error.outcome(), None);
            return Err(error.into());
        }
    };
    let assessment = app.assessor.assess(&classification.predictions);
    app.metrics.record_assessment(&assessment);
    let item = match assessment.representative() {
        Some(class) => Some(Item {
            label: class.label.clone(),
            class_index: class.class_index,
            confidence: class.probability,
            category: assessment.category.as_ref().map(|c| c.id.clone()),
        }),
        None => classification
            .predictions
            .iter()
            .filter(|p| p.probability.is_finite())
            .max_by(|a, b| a.probability.total_cmp(&b.probability))
            .map(|top| Item {
                label: top.label.clone(),
                class_index: top.class_index,
                confidence: top.probability,
                category: None,
            }),
    };
    let mut served_by = Vec::with_capacity(1 + classification.served_by.len());
    served_by.push(app.served_by.clone());
    served_by.extend(classification.served_by);
    tracing::info!(
        strategy = %assessment.strategy,
        known = assessment.known,
        category = assessment.category.as_ref().map(|c| c.id.as_str()).unwrap_or(""),
        "assessed"
    );
    Ok(Json(AnalyzeResponse {
        item,
        classification: ClassificationOut {
            model: classification.model,
            predictions: classification.predictions,
        },
        assessment,
        timings_ms: TimingsOut {
            ml_total: millis(classification.elapsed),
            ml: classification.timings_ms,
        },
        served_by,
    }))
}

struct Upload {
    content_type: String,
    bytes: Bytes,
}

/// The declared type of a photo whose sender did not know it: browsers label a file they don't
/// recognise as generic binary, some send no type at all.
const GENERIC_BINARY: &str = "application/octet-stream";

/// Reads the first field named `image` (through `mesh::upload`, never holding more than `limit`
/// bytes of it). The part must say it is an image — or, when it says nothing or only generic
/// binary, its first bytes must be a JPEG, PNG or WebP, whose type is then sent on; ml decides
/// whether it can read it.
async fn read_image(multipart: &mut Multipart, limit: usize) -> Result<Upload, ApiError> {
    let upload = mesh::upload::read_image(multipart, limit)
        .await
        .map_err(|error| match error {
            UploadError::TooLarge { limit } => ApiError::TooLarge { limit },
            UploadError::Malformed(reason) => ApiError::InvalidMultipart(reason),
            UploadError::Missing => ApiError::MissingImage,
            UploadError::Empty => ApiError::EmptyImage,
        })?;
    let content_type = match &upload.declared_type {
        Some(declared) if upload.declares_an_image() => declared.to_string(),
        Some(declared) if declared.essence_str() != GENERIC_BINARY => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{:?}",
                declared.to_string()
            )));
        }
        generic => match upload.format() {
            Some(format) => format.mime().to_string(),
            None => {
                return Err(ApiError::UnsupportedMediaType(match generic {
                    Some(_) => {
                        format!("{GENERIC_BINARY:?} whose bytes are not a JPEG, PNG or WebP")
                    }
                    None => "a part without a valid content type, whose bytes are not a JPEG, \
                             PNG or WebP"
                        .to_owned(),
                }));
            }
        },
    };
    Ok(Upload {
        content_type,
        bytes: upload.bytes,
    })
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}
