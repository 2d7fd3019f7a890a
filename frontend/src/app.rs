//! The pages, as Leptos components rendered to HTML on the server (no hydration, no JavaScript).
//!
//! Every string that came from the backend or the upload is interpolated as a Leptos text node
//! or attribute value, which Leptos escapes.

use leptos::prelude::*;
use mesh::ServiceIdentity;

use crate::analysis::{Analysis, percent};

/// Path the stylesheet is served from.
pub const STYLESHEET_PATH: &str = "/static/app.css";

/// Renders a page to a complete HTML document.
pub fn render_document(page: impl IntoView) -> String {
    Owner::new().with(|| page.into_view().to_html())
}

/// Where a request went and how to find it again in the tracing UI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTrail {
    /// Services in the order they handled the request, starting with this frontend.
    pub served_by: Vec<String>,
    pub request_id: String,
    pub trace_id: Option<String>,
    /// The trace in the tracing UI, when one is configured.
    pub trace_link: Option<String>,
}

impl RequestTrail {
    /// `frontend/canary → backend/canary → ml/canary`
    pub fn route(&self) -> String {
        self.served_by.join(" → ")
    }
}

/// What an error page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub headline: String,
    pub explanation: String,
    pub detail: Option<String>,
}

/// The document around every page: head, header with the serving build, main landmark.
/// A canary build gets `class="build-canary"` on `<body>` (another accent colour and a badge).
#[component]
pub fn Shell(
    #[prop(into)] title: String,
    identity: ServiceIdentity,
    children: Children,
) -> impl IntoView {
    let version = identity.version().as_str();
    let body_class = format!("build-{version}");
    let badge = format!("{version} build");
    let served_by = identity.to_string();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>{title}</title>
                <link rel="stylesheet" href=STYLESHEET_PATH />
            </head>
            <body class=body_class>
                <a class="skip-link" href="#main">
                    "Skip to content"
                </a>
                <header class="site-header">
                    <p class="brand">
                        <a href="/">"3RVision"</a>
                    </p>
                    <p class="build">
                        "Served by " <code>{served_by}</code> " "
                        <span class="badge">{badge}</span>
                    </p>
                </header>
                <main id="main" tabindex="-1">
                    {children()}
                </main>
                <footer class="site-footer">
                    <p>
                        "3RVision Mesh lab: a frontend, a backend and an ml service, each in a stable and a canary build, routed by Istio rules."
                    </p>
                </footer>
            </body>
        </html>
    }
}

/// `GET /`: the upload form. Works without JavaScript.
#[component]
pub fn UploadPage(identity: ServiceIdentity, max_upload: String) -> impl IntoView {
    let served_by = identity.to_string();
    let canary = identity.version().as_str() == "canary";
    view! {
        <Shell title="3RVision — reduce, reuse, recycle, resell" identity=identity>
            <h1>"What can this become?"</h1>
            <p class="lead">
                "Send a photo of a product or a piece of waste. We identify it and tell you how to reduce, reuse, recycle or resell it."
            </p>
            <form class="upload" method="post" action="/analyze" enctype="multipart/form-data">
                <label for="image">"Photo"</label>
                <p class="hint" id="image-hint">
                    {format!("JPEG, PNG or WebP, up to {max_upload}.")}
                </p>
                <input
                    type="file"
                    id="image"
                    name="image"
                    accept="image/jpeg,image/png,image/webp"
                    aria-describedby="image-hint"
                    required=true
                />
                <button type="submit">"Analyze photo"</button>
            </form>
            <section aria-labelledby="about-heading">
                <h2 id="about-heading">"About this lab"</h2>
                <p>
                    "This page was served by " <code>{served_by}</code>
                    ". Every tier runs a stable and a canary build; the mesh sends requests with the header "
                    <code>"x-canary: true"</code>
                    " to the canary builds and splits the rest 90 % stable / 10 % canary. The result page shows the route your photo took and its trace id."
                </p>
                {canary
                    .then(|| {
                        view! {
                            <p class="canary-note">
                                "You are looking at the canary build of the frontend: the amber accent and badge mark it."
                            </p>
                        }
                    })}
            </section>
        </Shell>
    }
}

/// `POST /analyze`: what the photo shows and what to do with it.
#[component]
pub fn ResultPage(
    identity: ServiceIdentity,
    analysis: Analysis,
    trail: RequestTrail,
) -> impl IntoView {
    let unknown = analysis.is_unknown();
    let category = analysis.category_name();
    let uncertainty = analysis.uncertainty_reason();
    let timings = analysis.timings();
    let contributing = analysis.contributing_labels();
    let Analysis {
        item,
        classification,
        assessment,
        ..
    } = analysis;
    let label = item.as_ref().map(|i| i.label.clone()).unwrap_or_default();
    let confidence = item.as_ref().and_then(|i| i.confidence).map(percent);
    let title = if unknown {
        "Not sure what this is — 3RVision".to_owned()
    } else {
        format!("{label} — 3RVision")
    };

    let heading = if unknown {
        let closest = (!label.trim().is_empty()).then(|| {
            let odds = confidence
                .clone()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!("The closest match was “{label}”{odds}, which is not enough to give advice on.")
        });
        view! {
            <h1>"Not sure what this is"</h1>
            <p class="lead">
                {match uncertainty {
                    Some(reason) => format!("We won't guess: {reason}."),
                    None => "We won't guess: the photo doesn't clearly match anything we know.".to_owned(),
                }}
            </p>
            {closest.map(|text| view! { <p>{text}</p> })}
            <p>"Try a closer, well-lit photo of a single item."</p>
        }
        .into_any()
    } else {
        view! {
            <h1>{label}</h1>
            <p class="lead">
                {confidence.map(|c| view! { "Confidence: " <strong>{c}</strong> ". " })}
                {category.map(|c| view! { "Category: " <strong>{c}</strong> "." })}
            </p>
        }
        .into_any()
    };

    let verdicts = [
        ("Recyclable", assessment.recyclable),
        ("Reusable", assessment.reusable),
        ("Resellable", assessment.resellable),
        ("Biodegradable", assessment.biodegradable),
    ];
    let strategy = assessment.strategy.clone().map(|strategy| {
        let basis = assessment
            .confidence
            .map(|c| format!(", resting on {}", percent(c)))
            .unwrap_or_default();
        format!("Decision strategy: {strategy}{basis}.")
    });

    view! {
        <Shell title=title identity=identity>
            {heading}
            {assessment.summary.clone().map(|s| view! { <p class="summary">{s}</p> })}
            <section aria-labelledby="threer-heading">
                <h2 id="threer-heading">"Reduce, reuse, recycle, resell"</h2>
                <dl class="verdicts">
                    {verdicts
                        .into_iter()
                        .map(|(name, verdict)| {
                            let (class, text) = match verdict {
                                Some(true) => ("yes", "Yes"),
                                Some(false) => ("no", "No"),
                                None => ("unknown", "Not known"),
                            };
                            view! {
                                <div class=format!("verdict {class}")>
                                    <dt>{name}</dt>
                                    <dd>{text}</dd>
                                </div>
                            }
                        })
                        .collect_view()}
                </dl>
                {(!assessment.materials.is_empty())
                    .then(|| {
                        view! {
                            <h3>"Materials"</h3>
                            <ul>
                                {assessment
                                    .materials
                                    .iter()
                                    .map(|m| view! { <li>{m.clone()}</li> })
                                    .collect_view()}
                            </ul>
                        }
                    })}
                {(!assessment.functional_categories.is_empty())
                    .then(|| {
                        view! {
                            <h3>"What it is for"</h3>
                            <p>{assessment.functional_categories.join(", ")}</p>
                        }
                    })}
                {assessment
                    .disposal
                    .clone()
                    .filter(|d| !d.trim().is_empty())
                    .map(|d| view! { <h3>"How to dispose of it"</h3> <p>{d}</p> })}
                {(!assessment.tips.is_empty())
                    .then(|| {
                        view! {
                            <h3>"Tips"</h3>
                            <ul>
                                {assessment
                                    .tips
                                    .iter()
                                    .map(|t| view! { <li>{t.display()}</li> })
                                    .collect_view()}
                            </ul>
                        }
                    })}
                {assessment
                    .carbon_note
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .map(|c| view! { <h3>"Carbon"</h3> <p>{c}</p> })}
            </section>
            <section aria-labelledby="model-heading">
                <h2 id="model-heading">"How we decided"</h2>
                <p>
                    "Model: " <code>{classification.model.name.clone()}</code>
                    {(!classification.model.version.is_empty())
                        .then(|| format!(" version {}", classification.model.version))}
                </p>
                {strategy.map(|s| view! { <p>{s}</p> })}
                {(!contributing.is_empty())
                    .then(|| {
                        view! { <p>{format!("Based on: {}", contributing.join(", "))}</p> }
                    })}
                {(!classification.predictions.is_empty())
                    .then(|| {
                        view! {
                            <table class="predictions">
                                <caption>"Top predictions"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col">"Label"</th>
                                        <th scope="col">"Probability"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {classification
                                        .predictions
                                        .iter()
                                        .map(|p| {
                                            view! {
                                                <tr>
                                                    <td>{p.label.clone()}</td>
                                                    <td>{p.probability.map(percent)}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                    })}
            </section>
            <RouteTaken trail=trail timings=timings />
            <p>
                <a class="button" href="/">
                    "Analyze another photo"
                </a>
            </p>
        </Shell>
    }
}

/// Any failure, with the route and trace as far as they are known.
#[component]
pub fn ErrorPage(
    identity: ServiceIdentity,
    problem: Problem,
    trail: RequestTrail,
) -> impl IntoView {
    let title = format!("{} — 3RVision", problem.headline);
    view! {
        <Shell title=title identity=identity>
            <h1>{problem.headline}</h1>
            <div class="problem" role="alert">
                <p>{problem.explanation}</p>
                {problem.detail.map(|d| view! { <p class="detail">{format!("Details: {d}")}</p> })}
                <p class="status">{format!("HTTP status {}", problem.status)}</p>
            </div>
            <RouteTaken trail=trail timings=Vec::new() />
            <p>
                <a class="button" href="/">
                    "Try another photo"
                </a>
            </p>
        </Shell>
    }
}

/// The served-by trail, trace id (linked to the tracing UI when configured) and request id.
#[component]
pub fn RouteTaken(trail: RequestTrail, timings: Vec<(String, f64)>) -> impl IntoView {
    let route = trail.route();
    let trace = match (trail.trace_id, trail.trace_link) {
        (Some(id), Some(link)) => view! { <a href=link>{id}</a> }.into_any(),
        (Some(id), None) => view! { <code>{id}</code> }.into_any(),
        (None, _) => view! { "not recorded" }.into_any(),
    };
    view! {
        <section aria-labelledby="route-heading" class="route">
            <h2 id="route-heading">"Route this request took"</h2>
            <p class="trail">
                <code>{route}</code>
            </p>
            <dl class="ids">
                <dt>"Trace id"</dt>
                <dd class="trace-id">{trace}</dd>
                <dt>"Request id"</dt>
                <dd class="request-id">
                    <code>{trail.request_id}</code>
                </dd>
            </dl>
            {(!timings.is_empty())
                .then(|| {
                    view! {
                        <h3>"Timings"</h3>
                        <ul class="timings">
                            {timings
                                .into_iter()
                                .map(|(name, ms)| view! { <li>{format!("{name}: {ms:.1} ms")}</li> })
                                .collect_view()}
                        </ul>
                    }
                })}
        </section>
    }
}

/// Any path the frontend does not serve.
#[component]
pub fn NotFoundPage(identity: ServiceIdentity) -> impl IntoView {
    view! {
        <Shell title="Page not found — 3RVision" identity=identity>
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <p>
                <a class="button" href="/">
                    "Go to the upload page"
                </a>
            </p>
        </Shell>
    }
}
