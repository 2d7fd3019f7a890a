//! The `mesh` binary end to end: output format and exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::fixtures::{broken, dir};

fn mesh(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mesh starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("mesh finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_good_exits_zero() {
    let good = dir("good");
    let out = mesh(&["check", good.to_str().expect("utf-8")], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The good set's DestinationRule traffic policies are reported, not silently accepted.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("info[MSH0111] ")
            && stdout
                .contains(": spec.trafficPolicy.outlierDetection: not executed by the local lab")
            && stdout
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("0 errors, 0 warnings, ")
                    && l.contains(" fields the local lab does not execute in ")),
        "{stdout}"
    );
}

#[test]
fn check_broken_prints_findings_and_exits_one() {
    let file = broken("dangling-host");
    let path = file.to_str().expect("utf-8");
    let out = mesh(&["check", path], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("error[MSH0101] {path}: VirtualService backend/backend: spec.http[0].route[0].destination.host: "))),
        "{stdout}"
    );
}

#[test]
fn check_warns_on_weights_that_do_not_add_up_to_100() {
    let file = broken("weights-90-20");
    let path = file.to_str().expect("utf-8");
    let line = format!(
        "warning[MSH0105] {path}: VirtualService backend/backend: spec.http[1].route: weights 90 + 20 add up to 110, not 100; Istio splits them relatively: 81.8 % / 18.2 %"
    );
    // Alone, the file names a Service that is not loaded (errors); the weights line is a warning.
    let out = mesh(&["check", path], None);
    assert!(
        text(&out.stdout).lines().any(|l| l == line),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_reports_a_mirror_it_does_not_execute() {
    let file = broken("unexecuted-mirror");
    let path = file.to_str().expect("utf-8");
    let out = mesh(&["check", path], None);
    let stdout = text(&out.stdout);
    for field in ["mirror", "mirrorPercentage"] {
        let line = format!(
            "info[MSH0111] {path}: VirtualService backend/backend: spec.http[1].{field}: not executed by the local lab (Istio applies it in a cluster)"
        );
        assert!(stdout.lines().any(|l| l == line), "{stdout}");
    }
}

#[test]
fn check_reads_a_stream_from_stdin() {
    let text_in = std::fs::read(broken("typo-port-name")).expect("fixture");
    let out = mesh(&["check", "-"], Some(&text_in));
    // Alone, the Service selects nothing and names a typo'd port: warnings only.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout)
            .contains("warning[MSH0201] <stdin>: Service backend/backend: spec.ports[0].name:")
    );
    let out = mesh(&["check", "--deny-warnings", "-"], Some(&text_in));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_unusable_input_exits_two_with_a_clear_message() {
    let cases = [
        (
            dir("invalid/wrong-type.yaml"),
            "spec.http[0].route[0].weight",
        ),
        (dir("invalid/not-yaml.yaml"), "invalid YAML"),
        (dir("does-not-exist"), "cannot read"),
    ];
    for (path, expected) in cases {
        let out = mesh(&["check", path.to_str().expect("utf-8")], None);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains(&*path.to_string_lossy()),
            "{stderr}"
        );
    }
}

#[test]
fn route_prints_the_split() {
    let good = dir("good");
    let out = mesh(
        &[
            "route",
            "--config",
            good.to_str().expect("utf-8"),
            "--host",
            "backend",
            "--from",
            "backend",
            "--path",
            "/api/v1/analyze",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("backend: route `weighted`, timeout 30.0s, 2 retries of 10.0s each on "),
        "{stdout}"
    );
    assert!(
        stdout.contains("backend.backend.svc.cluster.local  stable  8080  0.9\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("backend.backend.svc.cluster.local  canary  8080  0.1\n"),
        "{stdout}"
    );
}

#[test]
fn route_follow_prints_every_trail() {
    let good = dir("good");
    let config = good.to_str().expect("utf-8");
    let out = mesh(
        &[
            "route",
            "--config",
            config,
            "--host",
            "frontend.local",
            "--follow",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 9, "{stdout}");
    assert_eq!(
        lines[1],
        "frontend/stable → backend/stable → ml/stable  0.729"
    );
    assert!(
        lines.contains(&"frontend/canary → backend/stable → ml/canary  0.009"),
        "{stdout}"
    );
    let out = mesh(
        &[
            "route",
            "--config",
            config,
            "--host",
            "frontend.local",
            "--follow",
            "-H",
            "X-Canary: true",
        ],
        None,
    );
    assert_eq!(
        text(&out.stdout).lines().nth(1),
        Some("frontend/canary → backend/canary → ml/canary  1.0")
    );
}

#[test]
fn route_unknown_host_exits_one() {
    let good = dir("good");
    let out = mesh(
        &[
            "route",
            "--config",
            good.to_str().expect("utf-8"),
            "--host",
            "payments",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no VirtualService routes host `payments`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn demo_fails_clearly_when_the_frontend_is_unreachable() {
    // A port that was just free: bind port 0, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let good = dir("good");
    let out = mesh(
        &[
            "demo",
            "--url",
            &url,
            "--requests",
            "3",
            "--config",
            good.to_str().expect("utf-8"),
            "--timeout",
            "5",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is unreachable"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn envoy_check_passes_when_current_and_fails_when_stale() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("mesh/deploy/rendered/90-10.yaml");
    let config = config.to_str().expect("utf-8");
    let out_dir = std::env::temp_dir().join(format!("mesh-envoy-check-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let rendered = out_dir.join("envoy.yaml");
    let rendered_arg = rendered.to_str().expect("utf-8");

    let write = mesh(&["envoy", "--config", config, "--out", rendered_arg], None);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write.stderr));
    let current = mesh(
        &[
            "envoy",
            "--config",
            config,
            "--out",
            rendered_arg,
            "--check",
        ],
        None,
    );
    assert_eq!(current.status.code(), Some(0), "{}", text(&current.stderr));

    let text_now = std::fs::read_to_string(&rendered).expect("read");
    std::fs::write(&rendered, text_now.replacen("weight: 90", "weight: 80", 1)).expect("write");
    let stale = mesh(
        &[
            "envoy",
            "--config",
            config,
            "--out",
            rendered_arg,
            "--check",
        ],
        None,
    );
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale.stdout));
    assert!(
        text(&stale.stderr).contains("is stale"),
        "{}",
        text(&stale.stderr)
    );

    let unusable = mesh(&["envoy", "--config", "/nonexistent/mesh.yaml"], None);
    assert_eq!(unusable.status.code(), Some(2));
    std::fs::remove_dir_all(&out_dir).ok();
}
