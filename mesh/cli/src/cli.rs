//! The `mesh` command line: `check`, `route`, `demo`, `envoy` and `compare-routes`.
//!
//! Exit codes: 0 success / PASS, 1 findings with errors / no route / FAIL, 2 unusable input.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::demo::{Batch, DemoPlan, DemoReport, Tolerance};
use mesh_istio::analyze::{Severity, analyze};
use mesh_istio::load::load_input;
use mesh_istio::oracle::{IstioReport, compare};
use mesh_istio::route::{Caller, RouteDecision, RouteTable};
use mesh_istio::trail::{entry_caller, follow};

/// The config `mesh route` and `mesh demo` read unless told otherwise: the checked-in render of
/// the 90-10 overlay (kustomize's namespaces and patches applied), relative to the repository root.
pub const DEFAULT_CONFIG: &str = "mesh/deploy/rendered/90-10.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "mesh",
    version,
    about = "Check, evaluate and demo the 3RVision mesh's Istio routing"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load Kubernetes/Istio YAML and report semantic problems (like `istioctl analyze`).
    Check(CheckArgs),
    /// Show where a request goes: which subset, with what probability.
    Route(RouteArgs),
    /// Send real requests through the frontend and compare version shares with the config.
    Demo(DemoArgs),
    /// Render the docker compose lab's Envoy bootstrap from the VirtualServices and
    /// DestinationRules (or check that a rendering is current).
    Envoy(crate::envoy::EnvoyArgs),
    /// Hold the project's routing against Istio's: every probe Istio's control plane answered
    /// (tests/upstream/oracle) must get the same route, subsets, timeout, retries and fault here.
    CompareRoutes(CompareArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The oracle's answers for one overlay (`<overlay>.istio.json`).
    #[arg(long)]
    pub istio: PathBuf,
    /// The rendered overlay the project evaluates (a YAML file, a directory, or `-`).
    #[arg(long)]
    pub config: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A directory (walked recursively), a YAML file, or `-` for standard input
    /// (e.g. `kubectl kustomize mesh/deploy/overlays/90-10 | mesh check -`).
    pub input: String,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Route config: a YAML file, a directory, or `-` for standard input (default: the rendered
    /// 90-10 overlay, relative to the working directory).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// The request's host: `frontend.local`, `backend`, `backend.backend`, or an FQDN.
    #[arg(long)]
    pub host: String,
    /// The request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// A request header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Follow the request down the tier chain (frontend → backend → ml) and print every trail.
    #[arg(long)]
    pub follow: bool,
    /// Route as a sidecar in this namespace would (VirtualServices bound to `mesh`; short hosts
    /// resolve here). Default: the Gateway that accepts the host, else the host's own namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base URL of the frontend; requests go to `<URL>/analyze`.
    #[arg(long)]
    pub url: String,
    /// Requests per batch (one batch without, one with `x-canary: true`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests: u32,
    /// Image to upload (default: a generated 64×64 PNG).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Route config the expected shares come from (default: the rendered 90-10 overlay, relative
    /// to the working directory).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Absolute tolerance on each hop's canary share (default: a binomial 4-sigma bound).
    #[arg(long, value_parser = parse_tolerance)]
    pub tolerance: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// `HOST=IP`: connect to IP for the URL's HOST instead of resolving it (like `curl --resolve`),
    /// e.g. `--url http://frontend.local --resolve frontend.local=127.0.0.1` for a kind gateway.
    #[arg(long, value_parser = parse_resolve)]
    pub resolve: Option<(String, IpAddr)>,
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("`{}` is not a valid header value", value.trim()))?;
    Ok((name, value))
}

fn parse_resolve(text: &str) -> Result<(String, IpAddr), String> {
    let (host, ip) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not `HOST=IP`"))?;
    if host.is_empty() {
        return Err(format!("`{text}` names no host before `=`"));
    }
    let ip = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address"))?;
    Ok((host.to_owned(), ip))
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("`{text}` is not a share between 0 and 1")),
    }
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!(
            "`{text}` is not a number of seconds between 0 and 3600"
        )),
    }
}

/// Runs a parsed command line, printing to stdout/stderr, and answers the exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Route(args) => route(&args),
        Command::Demo(args) => demo(&args),
        Command::Envoy(args) => crate::envoy::envoy(&args),
        Command::CompareRoutes(args) => compare_routes(&args),
    }
}

fn compare_routes(args: &CompareArgs) -> ExitCode {
    let report = match std::fs::read_to_string(&args.istio)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str::<IstioReport>(&text)
                .map_err(|e| format!("not an oracle report: {e}"))
        }) {
        Ok(report) => report,
        Err(e) => return usage_error(format!("{}: {e}", args.istio.display())),
    };
    let table = match load_input(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|r| RouteTable::from_resources(&r).map_err(|e| e.to_string()))
    {
        Ok(table) => table,
        Err(e) => return usage_error(e),
    };
    let disagreements = compare(&table, &report);
    for d in &disagreements {
        println!("{}: {d}", args.config);
    }
    println!(
        "{}: {} probe{} of Istio {} (proxy {}), {} disagreement{}",
        args.config,
        report.probes.len(),
        plural(report.probes.len()),
        report.overlay,
        report.istio_proxy_version,
        disagreements.len(),
        plural(disagreements.len())
    );
    if disagreements.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mesh: {message}");
    ExitCode::from(2)
}

fn check(args: &CheckArgs) -> ExitCode {
    let resources = match load_input(&args.input) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let kustomize_dir = std::path::Path::new(&args.input).join("kustomization.yaml");
    if kustomize_dir.is_file() {
        eprintln!(
            "note: {} is a kustomize directory; its namespaces and patches apply only when rendered: \
             kubectl kustomize {} | mesh check -",
            args.input, args.input
        );
    }
    let findings = analyze(&resources);
    for finding in &findings {
        println!("{finding}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let unexecuted = findings.len() - errors - warnings;
    let mut summary = format!(
        "{errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    );
    if unexecuted > 0 {
        let _ = write!(
            summary,
            ", {unexecuted} field{} the local lab does not execute",
            plural(unexecuted)
        );
    }
    println!("{summary} in {} resources", resources.len());
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn route(args: &RouteArgs) -> ExitCode {
    let table = match load_input(&args.config).map(|r| RouteTable::from_resources(&r)) {
        Ok(Ok(table)) => table,
        Ok(Err(e)) => return usage_error(e),
        Err(e) => return usage_error(e),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &args.headers {
        headers.append(name.clone(), value.clone());
    }
    let output = if args.follow {
        follow(&table, &args.host, &args.path, &headers).map(|trails| {
            let mut t = TextTable::new(["TRAIL", "PROBABILITY"]);
            for trail in &trails {
                t.row([trail.label(), probability(trail.probability)]);
            }
            t.to_string()
        })
    } else {
        let caller = args
            .from
            .as_deref()
            .map_or_else(|| entry_caller(&table, &args.host), Caller::sidecar);
        table
            .decide(&caller, &args.host, &args.path, &headers)
            .map(|d| describe_decision(&args.host, &d))
    };
    match output {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mesh: {e}");
            ExitCode::from(1)
        }
    }
}

fn describe_decision(host: &str, d: &RouteDecision) -> String {
    let mut out = String::new();
    let name = d
        .route_name
        .as_deref()
        .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{n}`"));
    let _ = write!(out, "{host}: route {name}");
    if let Some(timeout) = d.timeout {
        let _ = write!(out, ", timeout {}", seconds(timeout));
    }
    if let Some(r) = &d.retries {
        let _ = write!(out, ", {} retries", r.attempts);
        if let Some(t) = r.per_try_timeout {
            let _ = write!(out, " of {} each", seconds(t));
        }
        if let Some(on) = &r.retry_on {
            let _ = write!(out, " on {on}");
        }
    }
    if let Some(fault) = &d.fault {
        if let Some(delay) = &fault.delay {
            let _ = write!(
                out,
                ", fault: delay {} for {}%",
                seconds(delay.fixed_delay),
                probability(delay.percentage)
            );
        }
        if let Some(abort) = &fault.abort {
            let _ = write!(
                out,
                ", fault: abort {} for {}%",
                abort.http_status,
                probability(abort.percentage)
            );
        }
    }
    out.push('\n');
    let mut t = TextTable::new(["DESTINATION", "SUBSET", "PORT", "PROBABILITY"]);
    for w in &d.destinations {
        t.row([
            w.destination.host.clone(),
            w.destination
                .subset
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
            w.destination
                .port
                .map_or_else(|| "-".to_owned(), |p| p.to_string()),
            probability(w.probability),
        ]);
    }
    out.push_str(&t.to_string());
    out
}

fn seconds(d: Duration) -> String {
    format!("{}s", probability(d.as_secs_f64()))
}

/// A probability with up to six decimals and no trailing zeros: `0.9`, `0.009`, `1.0`.
pub fn probability(p: f64) -> String {
    let text = format!("{p:.6}");
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_owned()
    }
}

fn demo(args: &DemoArgs) -> ExitCode {
    let plan = DemoPlan {
        url: args.url.clone(),
        requests: args.requests as usize,
        image: args.image.clone(),
        config: args.config.clone(),
        tolerance: args
            .tolerance
            .map_or_else(Tolerance::default, Tolerance::Absolute),
        timeout: Duration::from_secs_f64(args.timeout),
        resolve: args.resolve.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the async runtime: {e}")),
    };
    eprintln!(
        "mesh demo: {} requests without and {} with x-canary: true to {}/analyze",
        plan.requests,
        plan.requests,
        plan.url.trim_end_matches('/')
    );
    match runtime.block_on(crate::demo::run(&plan)) {
        Ok(report) => {
            print!("{}", demo_table(&report));
            if report.verdict.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => usage_error(e),
    }
}

/// The demo's table and verdict, as printed.
pub fn demo_table(report: &DemoReport) -> String {
    let mut t = TextTable::new([
        "BATCH",
        "HOP",
        "STABLE",
        "CANARY",
        "OTHER",
        "CANARY SHARE",
        "EXPECTED",
        "ALLOWED ±",
        "OK",
    ]);
    for h in &report.verdict.hops {
        t.row([
            h.batch.label().to_owned(),
            h.tier.to_owned(),
            h.counts.stable.to_string(),
            h.counts.canary.to_string(),
            h.counts.other.to_string(),
            format!("{:.3}", h.canary_share),
            format!("{:.3}", h.expected),
            format!("{:.3}", h.allowed),
            if h.pass {
                "ok".to_owned()
            } else {
                "FAIL".to_owned()
            },
        ]);
    }
    let mut out = t.to_string();
    for batch in Batch::ALL {
        let failures: Vec<&String> = report
            .verdict
            .failures
            .iter()
            .filter(|(b, _)| *b == batch)
            .map(|(_, f)| f)
            .collect();
        if let Some(first) = failures.first() {
            let _ = writeln!(
                out,
                "{} failed request(s) ({}); first: {first}",
                failures.len(),
                batch.label(),
            );
        }
    }
    let _ = writeln!(out, "{}", if report.verdict.pass { "PASS" } else { "FAIL" });
    out
}

/// Left-aligned columns separated by two spaces.
struct TextTable {
    rows: Vec<Vec<String>>,
}

impl TextTable {
    fn new<const N: usize>(header: [&str; N]) -> Self {
        TextTable {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.to_vec());
    }
}

impl std::fmt::Display for TextTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_print_compactly() {
        assert_eq!(probability(1.0), "1.0");
        assert_eq!(probability(0.9), "0.9");
        assert_eq!(probability(0.1 * 0.9 * 0.1), "0.009");
        assert_eq!(probability(0.0), "0.0");
    }

    #[test]
    fn headers_parse_and_reject_garbage() {
        let (name, value) = parse_header("X-Canary: true").expect("valid");
        assert_eq!(name.as_str(), "x-canary");
        assert_eq!(value, "true");
        assert!(parse_header("no-colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn resolve_parses_host_and_ip_and_rejects_garbage() {
        let (host, ip) = parse_resolve("frontend.local=127.0.0.1").expect("valid");
        assert_eq!(host, "frontend.local");
        assert_eq!(ip, IpAddr::from([127, 0, 0, 1]));
        assert!(parse_resolve("frontend.local:127.0.0.1").is_err());
        assert!(parse_resolve("=127.0.0.1").is_err());
        assert!(parse_resolve("frontend.local=localhost").is_err());
    }

    #[test]
    fn table_columns_align() {
        let mut t = TextTable::new(["A", "LONGER"]);
        t.row(["wide cell".to_owned(), "x".to_owned()]);
        assert_eq!(t.to_string(), "A          LONGER\nwide cell  x\n");
    }
}
