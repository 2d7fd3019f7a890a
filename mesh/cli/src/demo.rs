//! The canary demo: send requests through the real services, tally which build served each hop,
//! and compare the shares with what the routing config says they should be.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;

use mesh_istio::load::{LoadError, load_path};
use mesh_istio::route::{RouteError, RouteTable};
use mesh_istio::trail::{TIER_CHAIN, subset_share_per_hop};

/// The two batches the demo sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// No routing header: the weighted split applies at every hop.
    Weighted,
    /// `x-canary: true`: every hop must be served by canary.
    Pinned,
}

impl Batch {
    pub const ALL: [Batch; 2] = [Batch::Weighted, Batch::Pinned];

    pub fn label(self) -> &'static str {
        match self {
            Batch::Weighted => "no header",
            Batch::Pinned => "x-canary: true",
        }
    }

    /// The routing headers this batch sends.
    pub fn headers(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self == Batch::Pinned {
            headers.insert("x-canary", http::HeaderValue::from_static("true"));
        }
        headers
    }
}

/// How many requests each build served at one hop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionCounts {
    pub stable: usize,
    pub canary: usize,
    pub other: usize,
}

impl VersionCounts {
    pub fn total(&self) -> usize {
        self.stable + self.canary + self.other
    }
}

/// Counts per hop (in chain order) for one batch, plus the requests that produced no trail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub per_hop: [VersionCounts; TIER_CHAIN.len()],
    pub trails: usize,
    pub failures: Vec<String>,
}

impl Tally {
    /// Records one `served_by` trail such as `["frontend/stable", "backend/canary", "ml/stable"]`.
    /// A trail that does not name every tier once, in order, is recorded as a failure.
    pub fn record(&mut self, served_by: &[String]) {
        let mut versions = Vec::with_capacity(TIER_CHAIN.len());
        for (tier, entry) in TIER_CHAIN.iter().zip(served_by) {
            match entry.split_once('/') {
                Some((name, version)) if name == tier.name => versions.push(version),
                _ => break,
            }
        }
        if versions.len() != TIER_CHAIN.len() || served_by.len() != TIER_CHAIN.len() {
            self.failures.push(format!(
                "served_by {served_by:?} is not a frontend → backend → ml trail of <tier>/<version> entries"
            ));
            return;
        }
        for (counts, version) in self.per_hop.iter_mut().zip(versions) {
            match version {
                "stable" => counts.stable += 1,
                "canary" => counts.canary += 1,
                _ => counts.other += 1,
            }
        }
        self.trails += 1;
    }

    pub fn record_failure(&mut self, message: impl Into<String>) {
        self.failures.push(message.into());
    }
}

/// How far an observed canary share may stray from the configured one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// `sigmas` standard deviations of the binomial share for the batch size.
    Binomial { sigmas: f64 },
    /// A fixed absolute deviation, e.g. 0.05.
    Absolute(f64),
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance::Binomial { sigmas: 4.0 }
    }
}

impl Tolerance {
    /// The allowed |observed − expected| for `n` samples of probability `p`.
    pub fn allowed(self, p: f64, n: usize) -> f64 {
        match self {
            Tolerance::Absolute(t) => t,
            Tolerance::Binomial { sigmas } if n > 0 => sigmas * (p * (1.0 - p) / n as f64).sqrt(),
            Tolerance::Binomial { .. } => 0.0,
        }
    }
}

/// Expected canary probability per hop (chain order) for each batch, from the route config.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub weighted: [f64; TIER_CHAIN.len()],
    pub pinned: [f64; TIER_CHAIN.len()],
}

impl Expectation {
    pub fn from_table(table: &RouteTable) -> Result<Self, RouteError> {
        let shares = |batch: Batch| -> Result<[f64; TIER_CHAIN.len()], RouteError> {
            let mut out = [0.0; TIER_CHAIN.len()];
            for (slot, (_, p)) in
                out.iter_mut()
                    .zip(subset_share_per_hop(table, &batch.headers(), "canary")?)
            {
                *slot = p;
            }
            Ok(out)
        };
        Ok(Expectation {
            weighted: shares(Batch::Weighted)?,
            pinned: shares(Batch::Pinned)?,
        })
    }

    fn for_batch(&self, batch: Batch) -> &[f64; TIER_CHAIN.len()] {
        match batch {
            Batch::Weighted => &self.weighted,
            Batch::Pinned => &self.pinned,
        }
    }
}

/// One line of the verdict: one hop of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct HopVerdict {
    pub batch: Batch,
    pub tier: &'static str,
    pub counts: VersionCounts,
    pub canary_share: f64,
    pub expected: f64,
    pub allowed: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub hops: Vec<HopVerdict>,
    /// Failed requests per batch (the demo fails if any request failed).
    pub failures: Vec<(Batch, String)>,
    pub pass: bool,
}

/// Compares the tallies with the expectation. The pinned batch must be 100 % canary at every
/// hop, whatever `tolerance` says; the weighted batch must be within `tolerance` of the config.
pub fn judge(
    weighted: &Tally,
    pinned: &Tally,
    expected: &Expectation,
    tolerance: Tolerance,
) -> Verdict {
    let mut hops = Vec::new();
    let mut failures = Vec::new();
    for (batch, tally) in [(Batch::Weighted, weighted), (Batch::Pinned, pinned)] {
        failures.extend(tally.failures.iter().map(|f| (batch, f.clone())));
        for (i, tier) in TIER_CHAIN.iter().enumerate() {
            let counts = tally.per_hop[i];
            let n = counts.total();
            let canary_share = if n == 0 {
                0.0
            } else {
                counts.canary as f64 / n as f64
            };
            let (expected_p, allowed) = match batch {
                Batch::Pinned => (1.0, 0.0),
                Batch::Weighted => {
                    let p = expected.for_batch(batch)[i];
                    (p, tolerance.allowed(p, n))
                }
            };
            // A hair of slack so 0.1 observed against 0.1 configured never fails on rounding.
            let pass = n > 0 && (canary_share - expected_p).abs() <= allowed + 1e-9;
            hops.push(HopVerdict {
                batch,
                tier: tier.name,
                counts,
                canary_share,
                expected: expected_p,
                allowed,
                pass,
            });
        }
    }
    let pass = failures.is_empty() && hops.iter().all(|h| h.pass);
    Verdict {
        hops,
        failures,
        pass,
    }
}

/// Why the demo could not run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot read the route config: {0}")]
    Config(#[from] LoadError),
    #[error("the route config cannot route the tier chain: {0}")]
    Route(#[from] RouteError),
    #[error("cannot read image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{url}` is not a usable base URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{url} is unreachable: {}", error_chain(.source))]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// What `mesh demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoPlan {
    /// Base URL of the frontend (the request goes to `<url>/analyze`).
    pub url: String,
    pub requests: usize,
    /// The image to upload; a generated sample when `None`.
    pub image: Option<PathBuf>,
    pub config: PathBuf,
    pub tolerance: Tolerance,
    pub timeout: Duration,
    /// Connect to this address for the URL's host instead of resolving it (like `curl --resolve`),
    /// so a gateway's virtual host such as `frontend.local` is reached without an /etc/hosts entry.
    pub resolve: Option<(String, IpAddr)>,
}

/// Everything `mesh demo` measured and decided.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub expected: Expectation,
    pub weighted: Tally,
    pub pinned: Tally,
    pub verdict: Verdict,
}

#[derive(Deserialize)]
struct AnalyzeAnswer {
    served_by: Vec<String>,
}

/// A batch stops early after this many failed requests in a row, so a broken lab fails fast.
pub const MAX_CONSECUTIVE_FAILURES: usize = 5;

/// Runs the demo against a live frontend. Fails fast when the first request cannot connect.
pub async fn run(plan: &DemoPlan) -> Result<DemoReport, DemoError> {
    let resources = load_path(&plan.config)?;
    let table = RouteTable::from_resources(&resources)?;
    let expected = Expectation::from_table(&table)?;
    let image = match &plan.image {
        Some(path) => std::fs::read(path).map_err(|source| DemoError::Image {
            path: path.clone(),
            source,
        })?,
        None => sample_image(),
    };
    let base = plan.url.trim_end_matches('/');
    let url = format!("{base}/analyze");
    reqwest::Url::parse(&url).map_err(|e| DemoError::InvalidUrl {
        url: plan.url.clone(),
        reason: e.to_string(),
    })?;
    let mut client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .connect_timeout(plan.timeout.min(Duration::from_secs(5)));
    if let Some((host, ip)) = &plan.resolve {
        // reqwest takes the port from the URL; the one given here is ignored.
        client = client.resolve(host, SocketAddr::new(*ip, 0));
    }
    let client = client.build().map_err(DemoError::Client)?;
    let mut tallies = [Tally::default(), Tally::default()];
    for (batch, tally) in Batch::ALL.into_iter().zip(tallies.iter_mut()) {
        let mut consecutive_failures = 0;
        for i in 0..plan.requests {
            match send(&client, &url, batch, &image).await {
                Ok(served_by) => {
                    consecutive_failures = 0;
                    tally.record(&served_by);
                }
                Err(SendError::Connect(source)) if i == 0 && tally.trails == 0 => {
                    return Err(DemoError::Unreachable {
                        url: url.clone(),
                        source,
                    });
                }
                Err(e) => {
                    consecutive_failures += 1;
                    tally.record_failure(format!("request {}: {e}", i + 1));
                }
            }
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                tally.record_failure(format!(
                    "gave up on this batch after {MAX_CONSECUTIVE_FAILURES} failures in a row"
                ));
                break;
            }
        }
    }
    let [weighted, pinned] = tallies;
    let verdict = judge(&weighted, &pinned, &expected, plan.tolerance);
    Ok(DemoReport {
        expected,
        weighted,
        pinned,
        verdict,
    })
}

/// An error and its causes, `outer: inner: innermost` (reqwest keeps the useful part inside).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("cannot connect: {}", error_chain(.0))]
    Connect(#[source] reqwest::Error),
    #[error("{}", error_chain(.0))]
    Transport(#[source] reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("answer is not JSON with a served_by list: {0}")]
    Body(String),
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    batch: Batch,
    image: &[u8],
) -> Result<Vec<String>, SendError> {
    let part = reqwest::multipart::Part::bytes(image.to_vec())
        .file_name("demo.png")
        .mime_str(image_mime(image))
        .map_err(SendError::Transport)?;
    let form = reqwest::multipart::Form::new().part("image", part);
    let response = client
        .post(url)
        .headers(batch.headers())
        .header(http::header::ACCEPT, "application/json")
        .multipart(form)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                SendError::Connect(e)
            } else {
                SendError::Transport(e)
            }
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(SendError::Transport)?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let snippet: String = text.chars().take(200).collect();
        return Err(SendError::Status {
            status: status.as_u16(),
            body: snippet,
        });
    }
    serde_json::from_slice::<AnalyzeAnswer>(&body)
        .map(|a| a.served_by)
        .map_err(|e| SendError::Body(e.to_string()))
}

fn image_mime(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else {
        "image/png"
    }
}

/// A 64×64 RGB gradient PNG, so the demo needs no image file.
pub fn sample_image() -> Vec<u8> {
    const SIDE: u32 = 64;
    let pixels: Vec<u8> = (0..SIDE)
        .flat_map(|y| (0..SIDE).flat_map(move |x| [(x * 4) as u8, (y * 4) as u8, 128]))
        .collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing a fixed-size image into a Vec cannot fail; an empty upload would make the demo's
    // requests fail loudly (415/422) rather than pass.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&pixels);
    }
    png
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(f: &str, b: &str, m: &str) -> Vec<String> {
        vec![
            format!("frontend/{f}"),
            format!("backend/{b}"),
            format!("ml/{m}"),
        ]
    }

    fn expectation(p: f64) -> Expectation {
        Expectation {
            weighted: [p; 3],
            pinned: [1.0; 3],
        }
    }

    /// `n` trails of which the first `canary` are canary at every hop.
    fn weighted_tally(n: usize, canary: usize) -> Tally {
        let mut t = Tally::default();
        for i in 0..n {
            let v = if i < canary { "canary" } else { "stable" };
            t.record(&trail(v, v, v));
        }
        t
    }

    fn pinned_tally(n: usize) -> Tally {
        weighted_tally(n, n)
    }

    #[test]
    fn tally_counts_each_hop_independently() {
        let mut t = Tally::default();
        t.record(&trail("stable", "canary", "stable"));
        t.record(&trail("canary", "canary", "blue"));
        assert_eq!(t.trails, 2);
        assert_eq!(
            t.per_hop[0],
            VersionCounts {
                stable: 1,
                canary: 1,
                other: 0
            }
        );
        assert_eq!(
            t.per_hop[1],
            VersionCounts {
                stable: 0,
                canary: 2,
                other: 0
            }
        );
        assert_eq!(
            t.per_hop[2],
            VersionCounts {
                stable: 1,
                canary: 0,
                other: 1
            }
        );
    }

    #[test]
    fn malformed_trails_are_failures() {
        let mut t = Tally::default();
        t.record(&["frontend/stable".to_owned(), "backend/stable".to_owned()]);
        t.record(&[
            "backend/stable".to_owned(),
            "frontend/stable".to_owned(),
            "ml/stable".to_owned(),
        ]);
        t.record(&[
            "frontend-stable".to_owned(),
            "backend/stable".to_owned(),
            "ml/stable".to_owned(),
        ]);
        let mut long = trail("stable", "stable", "stable");
        long.push("ml/stable".to_owned());
        t.record(&long);
        assert_eq!(t.trails, 0);
        assert_eq!(t.failures.len(), 4);
    }

    #[test]
    fn binomial_bound_passes_a_plausible_split() {
        // p = 0.1, n = 100: sigma = 0.03, 4 sigma = 0.12.
        assert!((Tolerance::default().allowed(0.1, 100) - 0.12).abs() < 1e-12);
        let v = judge(
            &weighted_tally(100, 18),
            &pinned_tally(100),
            &expectation(0.1),
            Tolerance::default(),
        );
        assert!(v.pass, "{v:?}");
        assert_eq!(v.hops.len(), 6);
    }

    #[test]
    fn binomial_bound_fails_an_implausible_split() {
        let v = judge(
            &weighted_tally(100, 25),
            &pinned_tally(100),
            &expectation(0.1),
            Tolerance::default(),
        );
        assert!(!v.pass);
        assert!(
            v.hops
                .iter()
                .filter(|h| h.batch == Batch::Weighted)
                .all(|h| !h.pass)
        );
        assert!(
            v.hops
                .iter()
                .filter(|h| h.batch == Batch::Pinned)
                .all(|h| h.pass)
        );
    }

    #[test]
    fn absolute_tolerance_replaces_the_binomial_bound() {
        let tally = weighted_tally(100, 16);
        assert!(
            !judge(
                &tally,
                &pinned_tally(100),
                &expectation(0.1),
                Tolerance::Absolute(0.05)
            )
            .pass
        );
        assert!(
            judge(
                &tally,
                &pinned_tally(100),
                &expectation(0.1),
                Tolerance::Absolute(0.07)
            )
            .pass
        );
    }

    #[test]
    fn pinned_batch_must_be_all_canary() {
        let mut pinned = pinned_tally(99);
        pinned.record(&trail("canary", "stable", "canary"));
        let v = judge(
            &weighted_tally(100, 10),
            &pinned,
            &expectation(0.1),
            Tolerance::Absolute(0.5),
        );
        assert!(!v.pass);
        let failing: Vec<_> = v
            .hops
            .iter()
            .filter(|h| !h.pass)
            .map(|h| (h.batch, h.tier))
            .collect();
        assert_eq!(failing, vec![(Batch::Pinned, "backend")]);
    }

    #[test]
    fn failures_or_no_data_fail_the_demo() {
        let mut weighted = weighted_tally(100, 10);
        weighted.record_failure("request 7: HTTP 503");
        let v = judge(
            &weighted,
            &pinned_tally(100),
            &expectation(0.1),
            Tolerance::default(),
        );
        assert!(!v.pass);
        assert_eq!(v.failures.len(), 1);
        let v = judge(
            &Tally::default(),
            &Tally::default(),
            &expectation(0.1),
            Tolerance::default(),
        );
        assert!(!v.pass);
    }

    #[test]
    fn exact_expectations_allow_no_deviation() {
        // A route config at 100 % stable: a single canary answer is a failure.
        assert!(
            judge(
                &weighted_tally(50, 0),
                &pinned_tally(50),
                &expectation(0.0),
                Tolerance::default()
            )
            .pass
        );
        assert!(
            !judge(
                &weighted_tally(50, 1),
                &pinned_tally(50),
                &expectation(0.0),
                Tolerance::default()
            )
            .pass
        );
    }

    #[test]
    fn sample_image_decodes() {
        let png = sample_image();
        assert_eq!(image_mime(&png), "image/png");
        let decoded = image::load_from_memory(&png).expect("a valid PNG");
        assert_eq!((decoded.width(), decoded.height()), (64, 64));
        let rgb = decoded.to_rgb8();
        assert_eq!(rgb.get_pixel(10, 20).0, [40, 80, 128]);
    }
}
