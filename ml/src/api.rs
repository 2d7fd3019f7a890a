//! `POST /v1/classify` and `GET /v1/model`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::header;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use crate::classifier::{ModelCard, Prediction};
use crate::error::ApiError;
use crate::photo::PhotoFormat;
use crate::pool::{InferencePool, Timings};
use mesh::upload::UploadError;

pub const DEFAULT_TOP_K: usize = 5;
pub const MAX_TOP_K: usize = 20;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub pool: Arc<InferencePool>,
    pub card: Arc<ModelCard>,
    pub served_by: String,
    pub max_upload_bytes: usize,
}

pub fn routes(state: ApiState) -> Router {
    let limit = state.max_upload_bytes;
    Router::new()
        .route(
            "/v1/classify",
            post(classify).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/v1/model", get(model))
        .with_state(state)
}

/// How many classes to answer with: 1 ..= 20, default 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopK(usize);

impl TopK {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = raw else {
            return Ok(Self(DEFAULT_TOP_K));
        };
        match raw.trim().parse::<usize>() {
            Ok(k) if (1..=MAX_TOP_K).contains(&k) => Ok(Self(k)),
            _ => Err(ApiError::InvalidTopK(format!(
                "top_k must be a whole number from 1 to {MAX_TOP_K}, got {raw:?}"
            ))),
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

#[derive(Debug, Serialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub input_size: u32,
}

#[derive(Debug, Serialize)]
pub struct TimingsMs {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub queue: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl From<Timings> for TimingsMs {
    fn from(t: Timings) -> Self {
        Self {
            decode: ms(t.decode),
            preprocess: ms(t.preprocess),
            inference: ms(t.inference),
            queue: ms(t.queue),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClassifyResponse {
    pub model: ModelRef,
    pub predictions: Vec<Prediction>,
    pub timings_ms: TimingsMs,
    pub served_by: Vec<String>,
}

enum Upload {
    Raw,
    Multipart,
}

fn upload_kind(request: &Request) -> Result<Upload, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("image/") {
        Ok(Upload::Raw)
    } else if essence == "multipart/form-data" {
        Ok(Upload::Multipart)
    } else if essence.is_empty() {
        Err(ApiError::UnsupportedMediaType(
            "Content-Type is missing; send image/jpeg, image/png or image/webp, or multipart/form-data with a field `image`".into(),
        ))
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {essence} is not taken; send image/jpeg, image/png or image/webp, or multipart/form-data with a field `image`"
        )))
    }
}

async fn raw_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(error) => Err(ApiError::UnreadableBody(error.to_string())),
    }
}

async fn multipart_image(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::InvalidMultipart(e.body_text()))?;
    match mesh::upload::read_image(&mut multipart, limit).await {
        Ok(upload) => Ok(upload.bytes),
        Err(UploadError::TooLarge { limit }) => Err(ApiError::PayloadTooLarge { limit }),
        Err(UploadError::Malformed(reason)) => Err(ApiError::InvalidMultipart(reason)),
        Err(UploadError::Missing) => Err(ApiError::MissingImage),
        Err(UploadError::Empty) => Err(ApiError::EmptyBody),
    }
}

async fn classify(
    State(state): State<ApiState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    request: Request<Body>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let query =
        query.map_err(|e| ApiError::InvalidTopK(format!("the query string is malformed: {e}")))?;
    let top_k = TopK::parse(query.get("top_k").map(String::as_str))?;
    let image = match upload_kind(&request)? {
        Upload::Raw => raw_body(request, state.max_upload_bytes).await?,
        Upload::Multipart => multipart_image(request, state.max_upload_bytes).await?,
    };
    if image.is_empty() {
        return Err(ApiError::EmptyBody);
    }
    // Refuse what is not an image before it takes a queue slot.
    if PhotoFormat::sniff(&image).is_none() {
        return Err(ApiError::UnsupportedMediaType(
            "the body is not a JPEG, PNG or WebP image (judged from its bytes)".into(),
        ));
    }
    let classification = state.pool.classify(image, top_k.get()).await?;
    Ok(Json(ClassifyResponse {
        model: ModelRef {
            name: state.card.name.clone(),
            version: state.card.version.clone(),
            input_size: state.card.input_size,
        },
        predictions: classification.predictions,
        timings_ms: classification.timings.into(),
        served_by: vec![state.served_by.clone()],
    }))
}

#[derive(Debug, Serialize)]
pub struct ModelResponse {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub input_size: u32,
    pub labels_count: usize,
    pub preprocessing: serde_json::Value,
    pub engine: EngineInfo,
    pub served_by: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EngineInfo {
    pub runtime: &'static str,
    pub conv_layout: &'static str,
    pub workers: usize,
    pub queue_capacity: usize,
}

async fn model(State(state): State<ApiState>) -> Json<ModelResponse> {
    let card = &state.card;
    let size = state.pool.size();
    Json(ModelResponse {
        name: card.name.clone(),
        version: card.version.clone(),
        sha256: card.sha256.clone(),
        input_size: card.input_size,
        labels_count: card.labels.len(),
        preprocessing: card.preprocessing_doc.clone(),
        engine: EngineInfo {
            runtime: "tract-onnx 0.23",
            conv_layout: card.layout.as_str(),
            workers: size.workers,
            queue_capacity: size.queue_capacity,
        },
        served_by: vec![state.served_by.clone()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh::ServiceError as _;

    #[test]
    fn top_k_accepts_one_to_twenty() {
        assert_eq!(TopK::parse(None).expect("default").get(), 5);
        assert_eq!(TopK::parse(Some("1")).expect("1").get(), 1);
        assert_eq!(TopK::parse(Some("20")).expect("20").get(), 20);
        for bad in ["0", "21", "-1", "five", "", "2.5"] {
            let err = TopK::parse(Some(bad)).expect_err(bad);
            assert_eq!(err.code(), "invalid_top_k");
        }
    }
}
