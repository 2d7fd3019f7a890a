//! `spawn_lab()` and what the tests need around it.

use std::sync::OnceLock;
use std::time::Duration;

use lab::topology::Tier;
use lab::{Lab, LabOptions, ReplicaTelemetry};
use mesh::telemetry::{ExportSettings, Sampler, TelemetryConfig};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::Deserialize;

pub const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ml/tests/fixtures/photos/coffee.jpg"
);

pub fn photo() -> Vec<u8> {
    std::fs::read(PHOTO).expect("the espresso photo fixture is in the repo")
}

/// Spans of every test in this binary land here (one global subscriber per test binary).
pub fn spans() -> &'static InMemorySpanExporter {
    static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();
    SPANS.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let config = TelemetryConfig {
            service_name: "e2e".into(),
            otlp_traces_endpoint: None,
            sampler: Sampler::ParentBasedAlwaysOn,
            export: ExportSettings::default(),
            log_filter: "warn".into(),
        };
        let guard = mesh::telemetry::install(&config, std::io::sink, provider)
            .expect("the test binary installs its subscriber once");
        // The provider must outlive every test.
        Box::leak(Box::new(guard));
        exporter
    })
}

/// Finished spans of one trace.
pub fn trace_spans(trace_id: &str) -> Vec<SpanData> {
    spans()
        .get_finished_spans()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

pub struct TestLab {
    pub lab: Lab,
    pub http: reqwest::Client,
}

pub async fn spawn_lab() -> TestLab {
    spawn_lab_with(Vec::new()).await
}

pub async fn spawn_lab_with(tier_env: Vec<(Tier, &str, &str)>) -> TestLab {
    spawn_lab_on(LabOptions::default_mesh_config(), tier_env).await
}

/// The checked-in render of one overlay (mesh/deploy/rendered/<overlay>.yaml).
pub fn rendered_overlay(overlay: &str) -> std::path::PathBuf {
    LabOptions::default_mesh_config().with_file_name(format!("{overlay}.yaml"))
}

pub async fn spawn_lab_on(
    mesh_config: std::path::PathBuf,
    tier_env: Vec<(Tier, &str, &str)>,
) -> TestLab {
    spans();
    let options = LabOptions {
        mesh_config: mesh_config.display().to_string(),
        edge: "127.0.0.1:0".parse().expect("address"),
        tier_env: tier_env
            .into_iter()
            .map(|(t, k, v)| (t, k.to_owned(), v.to_owned()))
            .collect(),
        telemetry: ReplicaTelemetry::Shared,
        ..LabOptions::default()
    };
    let lab = Lab::start(options).await.expect("the lab starts");
    lab.wait_ready(Duration::from_secs(60))
        .await
        .expect("every replica gets ready");
    TestLab {
        lab,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    }
}

#[derive(Debug, Deserialize)]
pub struct Analysis {
    pub served_by: Vec<String>,
    pub item: Item,
}

#[derive(Debug, Deserialize)]
pub struct Item {
    pub label: String,
}

impl TestLab {
    pub fn form(&self) -> reqwest::multipart::Form {
        self.form_with(photo(), "coffee.jpg", "image/jpeg")
    }

    pub fn form_with(&self, bytes: Vec<u8>, name: &str, mime: &str) -> reqwest::multipart::Form {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .expect("mime type");
        reqwest::multipart::Form::new().part("image", part)
    }

    /// POST /analyze at the edge asking for JSON, as `mesh demo` does.
    pub fn analyze(&self) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/analyze", self.lab.url()))
            .header("accept", "application/json")
            .multipart(self.form())
    }

    /// POST the espresso photo to the backend tier's hop (its Service).
    pub async fn post_to_backend(&self) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/v1/analyze",
                self.lab.hop_url(Tier::Backend)
            ))
            .multipart(self.form())
            .send()
            .await
            .expect("the backend hop answers")
    }

    /// POST a form to the frontend's `/analyze` as a browser does (an HTML answer).
    pub async fn post_page(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.http
            .post(format!("{}/analyze", self.lab.url()))
            .multipart(form)
            .send()
            .await
            .expect("the edge answers")
    }

    pub async fn analyze_json(&self, canary: bool) -> Analysis {
        let mut request = self.analyze();
        if canary {
            request = request.header("x-canary", "true");
        }
        let response = request.send().await.expect("the edge answers");
        assert_eq!(response.status(), 200, "analyze failed");
        response.json().await.expect("JSON analysis")
    }
}
