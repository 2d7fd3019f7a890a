//! Server-only code: the axum handlers that answer with the Leptos pages (or JSON).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leptos::prelude::*;
use mesh::{ErrorBody, RequestContext, ServiceIdentity};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Map, Value, json};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::analysis::Analysis;
use crate::app::{
    ErrorPage, NotFoundPage, Problem, RequestTrail, ResultPage, STYLESHEET_PATH, UploadPage,
    render_document,
};
use crate::backend_client::{BackendClient, BackendError};
use crate::config::{TracingUiUrl, UploadLimit, human_size};
use crate::error::AnalyzeError;
use crate::upload::FormUpload;

/// The stylesheet, compiled into the binary: the frontend needs no external assets.
pub const STYLESHEET: &str = include_str!("../static/app.css");
/// The pages' Content-Security-Policy: they load one stylesheet from here and nothing else (no
/// script, no inline style, no image, no font), post their one form here, and may not be framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                            base-uri 'none'; frame-ancestors 'none'";

/// How each `POST /analyze` ended, by a bounded `outcome` label.
pub type AnalysisOutcomes = Family<OutcomeLabels, Counter>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

struct AppInner {
    identity: ServiceIdentity,
    backend: BackendClient,
    max_upload: UploadLimit,
    tracing_ui: Option<TracingUiUrl>,
    outcomes: AnalysisOutcomes,
}

impl AppState {
    pub fn new(
        identity: ServiceIdentity,
        backend: BackendClient,
        max_upload: UploadLimit,
        tracing_ui: Option<TracingUiUrl>,
        outcomes: AnalysisOutcomes,
    ) -> Self {
        Self(Arc::new(AppInner {
            identity,
            backend,
            max_upload,
            tracing_ui,
            outcomes,
        }))
    }
}

/// The frontend's own routes (the mesh adds health, readiness and metrics around them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(upload_page))
        // The form streams through to the backend (crate::upload), held to the upload limit there.
        .route("/analyze", post(analyze).get(back_to_form))
        .route(STYLESHEET_PATH, get(stylesheet))
        .fallback(not_found)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .with_state(state)
}

async fn upload_page(State(state): State<AppState>) -> Html<String> {
    let identity = state.0.identity.clone();
    let max_upload = human_size(state.0.max_upload.bytes());
    Html(render_document(view! {
        <UploadPage identity=identity max_upload=max_upload />
    }))
}

/// A reload of the result page (a GET) goes back to the form.
async fn back_to_form() -> Redirect {
    Redirect::to("/")
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

async fn not_found(State(state): State<AppState>) -> impl IntoResponse {
    let identity = state.0.identity.clone();
    (
        StatusCode::NOT_FOUND,
        Html(render_document(
            view! { <NotFoundPage identity=identity /> },
        )),
    )
}

/// Whether the caller asked for JSON (the `mesh demo` tool does) rather than a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

impl Format {
    fn negotiate(headers: &HeaderMap) -> Self {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if accept.contains("application/json") && !accept.contains("text/html") {
            Self::Json
        } else {
            Self::Html
        }
    }
}

async fn analyze(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = Format::negotiate(&headers);
    let outcome = async {
        let form = FormUpload::from_request(&headers, body, state.0.max_upload)?;
        let answer = state.0.backend.analyze(&ctx, form).await?;
        let analysis = serde_json::from_value::<Analysis>(Value::Object(answer.body.clone()))
            .map_err(|err| {
                AnalyzeError::Backend(BackendError::InvalidAnswer {
                    reason: err.to_string(),
                    served_by: Vec::new(),
                })
            })?;
        Ok::<_, AnalyzeError>((answer.body, analysis))
    }
    .await;

    let outcome_label = match &outcome {
        Ok(_) => "ok",
        Err(err) => err.code(),
    };
    state
        .0
        .outcomes
        .get_or_create(&OutcomeLabels {
            outcome: outcome_label,
        })
        .inc();

    let mut response = match outcome {
        Ok((body, analysis)) => state.answer(&ctx, format, body, analysis),
        Err(err) => state.failure(&ctx, format, &err),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl AppState {
    /// This frontend first, then whoever the backend says took part.
    fn trail(&self, ctx: &RequestContext, downstream: &[String]) -> RequestTrail {
        let trace_id = ctx.trace_id();
        let trace_link = match (&trace_id, &self.0.tracing_ui) {
            (Some(id), Some(ui)) => Some(ui.trace_link(id)),
            _ => None,
        };
        RequestTrail {
            served_by: std::iter::once(self.0.identity.to_string())
                .chain(downstream.iter().cloned())
                .collect(),
            request_id: ctx.request_id().to_owned(),
            trace_id,
            trace_link,
        }
    }

    fn answer(
        &self,
        ctx: &RequestContext,
        format: Format,
        mut body: Map<String, Value>,
        analysis: Analysis,
    ) -> Response {
        let trail = self.trail(ctx, &analysis.served_by);
        match format {
            Format::Json => {
                body.insert("served_by".to_owned(), json!(trail.served_by));
                body.insert("trace_id".to_owned(), json!(trail.trace_id));
                body.insert("request_id".to_owned(), json!(trail.request_id));
                Json(Value::Object(body)).into_response()
            }
            Format::Html => {
                let identity = self.0.identity.clone();
                Html(render_document(view! {
                    <ResultPage identity=identity analysis=analysis trail=trail />
                }))
                .into_response()
            }
        }
    }

    fn failure(&self, ctx: &RequestContext, format: Format, err: &AnalyzeError) -> Response {
        let status = err.status();
        if status.is_server_error() {
            tracing::warn!(error = %err, code = err.code(), "analysis failed");
        } else {
            tracing::info!(error = %err, code = err.code(), "upload refused");
        }
        let trail = self.trail(ctx, err.served_by());
        let mut response = match format {
            Format::Json => {
                // The shared error body, plus the trail of who saw the request.
                let mut body = json!(ErrorBody::new(err.code(), err.explanation()));
                body["served_by"] = json!(trail.served_by);
                (status, Json(body)).into_response()
            }
            Format::Html => {
                let identity = self.0.identity.clone();
                let problem = Problem {
                    status: status.as_u16(),
                    headline: err.headline().to_owned(),
                    explanation: err.explanation(),
                    detail: err.detail().map(str::to_owned),
                };
                (
                    status,
                    Html(render_document(view! {
                        <ErrorPage identity=identity problem=problem trail=trail />
                    })),
                )
                    .into_response()
            }
        };
        if let Some(value) = err
            .retry_after()
            .and_then(|secs| HeaderValue::from_str(&secs).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn browsers_get_html_and_tools_get_json() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Html);
        assert_eq!(
            Format::negotiate(&accept(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Format::Html
        );
        assert_eq!(Format::negotiate(&accept("application/json")), Format::Json);
    }
}
