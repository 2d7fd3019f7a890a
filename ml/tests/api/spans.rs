//! The request's span follows the classification to the worker thread that runs it.

use std::sync::{Arc, Mutex};

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::helpers::{exclusive_process, spawn_app};

/// A new span: (name, parent's name, thread name).
type SpanRecord = (String, Option<String>, String);

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanRecord>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_owned());
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        if let Ok(mut spans) = self.0.lock() {
            spans.push((attrs.metadata().name().to_owned(), parent, thread));
        }
    }
}

// A current-thread runtime: the handler runs on this thread, under this test's subscriber. The
// test runs alone: tracing caches per-callsite interest process-wide, and other tests hitting the
// same callsites without a subscriber at the same moment can leave them disabled here.
#[tokio::test]
async fn worker_spans_are_children_of_the_request_span() {
    let _guard = exclusive_process().await;
    let recorder = Recorder::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let app = spawn_app(&[]).await;
    app.assert_still_serving("start-up").await;

    let spans = recorder.0.lock().map(|s| s.clone()).unwrap_or_default();
    let test_thread = std::thread::current().name().unwrap_or_default().to_owned();
    let request = spans
        .iter()
        .find(|s| s.0 == "request")
        .expect("the mesh request span");
    assert_eq!(request.2, test_thread);
    for name in ["decode", "preprocess", "inference"] {
        let (_, parent, thread) = spans
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}"));
        assert_eq!(parent.as_deref(), Some("request"), "{name}'s parent");
        assert!(thread.starts_with("ml-worker-"), "{name} ran on {thread}");
    }
}
