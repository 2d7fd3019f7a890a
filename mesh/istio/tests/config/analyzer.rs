//! Every check fires on its broken fixture and stays quiet on the good set.

use mesh_istio::analyze::{Code, Finding, Severity, analyze};

use crate::fixtures::{broken, dir, good, good_with};

/// (broken fixture, code that must fire, severity, resource, field the finding must name)
const CASES: &[(&str, &str, Severity, &str, &str)] = &[
    (
        "unexecuted-mirror",
        "MSH0111",
        Severity::Info,
        "backend/backend",
        "spec.http[1].mirror",
    ),
    (
        "dangling-host",
        "MSH0101",
        Severity::Error,
        "backend/backend",
        "spec.http[1].route[0].destination.host",
    ),
    (
        "wrong-destination-port",
        "MSH0102",
        Severity::Error,
        "backend/backend",
        "spec.http[1].route[1].destination.port.number",
    ),
    (
        "subset-selects-nothing",
        "MSH0104",
        Severity::Error,
        "backend/backend",
        "spec.subsets[1].labels",
    ),
    (
        "weights-90-20",
        "MSH0105",
        Severity::Warning,
        "backend/backend",
        "spec.http[1].route",
    ),
    (
        "method-match",
        "MSH0110",
        Severity::Warning,
        "backend/backend",
        "spec.http[0].match[0].method",
    ),
    (
        "typo-port-name",
        "MSH0201",
        Severity::Warning,
        "backend/backend",
        "spec.ports[0].name",
    ),
    (
        "wrong-target-port",
        "MSH0202",
        Severity::Error,
        "backend/backend",
        "spec.ports[0].targetPort",
    ),
    (
        "service-selects-nothing",
        "MSH0203",
        Severity::Warning,
        "backend/backend",
        "spec.selector",
    ),
    (
        "unlabelled-namespace",
        "MSH0301",
        Severity::Error,
        "backend",
        "metadata.labels",
    ),
    (
        "permissive-namespace",
        "MSH0302",
        Severity::Error,
        "backend/default",
        "spec.mtls.mode",
    ),
    (
        "port-mtls-disabled",
        "MSH0303",
        Severity::Error,
        "backend/backend-metrics",
        "spec.portLevelMtls.9090.mode",
    ),
    (
        "unknown-principal",
        "MSH0304",
        Severity::Error,
        "backend/backend",
        "spec.rules[0].from[0].source.principals[0]",
    ),
    (
        "missing-serviceaccount",
        "MSH0305",
        Severity::Error,
        "backend/backend-stable",
        "spec.template.spec.serviceAccountName",
    ),
    (
        "default-serviceaccount",
        "MSH0306",
        Severity::Warning,
        "backend/backend-stable",
        "spec.template.spec.serviceAccountName",
    ),
    (
        "tls-disable",
        "MSH0307",
        Severity::Warning,
        "backend/backend",
        "spec.trafficPolicy.tls.mode",
    ),
    (
        "probe-wrong-port",
        "MSH0401",
        Severity::Error,
        "backend/backend-stable",
        "spec.template.spec.containers[0].livenessProbe.httpGet.port",
    ),
    (
        "probe-wrong-path",
        "MSH0402",
        Severity::Warning,
        "backend/backend-stable",
        "spec.template.spec.containers[0].readinessProbe.httpGet.path",
    ),
    (
        "probe-missing",
        "MSH0403",
        Severity::Warning,
        "backend/backend-stable",
        "spec.template.spec.containers[0].readinessProbe",
    ),
];

/// The good set's own MSH0111 notes (its DestinationRules' traffic policies, which Istio applies
/// and the lab does not) are the baseline; every other finding is a problem.
fn problems(resources: &[mesh_istio::resources::Resource]) -> Vec<Finding> {
    let baseline: Vec<Finding> = analyze(&good())
        .into_iter()
        .filter(|f| f.severity == Severity::Info)
        .collect();
    analyze(resources)
        .into_iter()
        .filter(|f| !baseline.contains(f))
        .collect()
}

fn show(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("  {f}\n")).collect()
}

#[test]
fn good_fixture_reports_only_its_unexecuted_traffic_policy() {
    let notes: Vec<String> = analyze(&good())
        .iter()
        .filter(|f| f.severity == Severity::Info)
        .map(|f| format!("{} {}", f.resource, f.field))
        .collect();
    assert!(
        !notes.is_empty() && notes.iter().all(|n| n.contains("spec.trafficPolicy")),
        "{notes:?}"
    );
    let findings = problems(&good());
    assert!(
        findings.is_empty(),
        "unexpected findings on the good fixture:\n{}",
        show(&findings)
    );
}

#[test]
fn every_broken_fixture_fires_its_check() {
    for &(fixture, code, severity, resource, field) in CASES {
        let findings = problems(&good_with(&broken(fixture)));
        let hit = findings
            .iter()
            .find(|f| f.code.id() == code && f.resource == resource && f.field == field);
        let Some(hit) = hit else {
            panic!(
                "{fixture}: expected {code} on {resource} at {field}; got:\n{}",
                show(&findings)
            );
        };
        assert_eq!(hit.severity, severity, "{fixture}: {hit}");
        assert!(
            hit.file.ends_with(&format!("{fixture}.yaml")),
            "{fixture}: finding names {}",
            hit.file
        );
    }
}

#[test]
fn every_code_has_a_broken_fixture_and_every_fixture_a_case() {
    for code in Code::ALL.map(Code::id) {
        assert!(
            CASES.iter().any(|c| c.1 == code),
            "{code} has no broken fixture"
        );
    }
    let listed: Vec<String> = std::fs::read_dir(dir("broken"))
        .expect("broken fixtures")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_owned()
        })
        .collect();
    for name in listed {
        assert!(
            CASES.iter().any(|c| c.0 == name),
            "broken/{name}.yaml is not tested"
        );
    }
}

#[test]
fn messages_name_what_is_wrong() {
    let findings = problems(&good_with(&broken("weights-90-20")));
    let f = findings
        .iter()
        .find(|f| f.code.id() == "MSH0105")
        .expect("fires");
    assert_eq!(
        f.to_string(),
        format!(
            "warning[MSH0105] {}: VirtualService backend/backend: spec.http[1].route: weights 90 + 20 add up to 110, not 100; Istio splits them relatively: 81.8 % / 18.2 %",
            broken("weights-90-20").display()
        )
    );
    let findings = problems(&good_with(&broken("wrong-destination-port")));
    let f = findings
        .iter()
        .find(|f| f.code.id() == "MSH0102")
        .expect("fires");
    assert!(
        f.message.contains("Service backend/backend") && f.message.contains("8080"),
        "{f}"
    );
}

#[test]
fn documented_port_exception_is_accepted() {
    let findings = problems(&good_with(&dir("variants/port-mtls-documented.yaml")));
    assert!(findings.is_empty(), "{}", show(&findings));
}

#[test]
fn unlabelled_namespace_is_reported_on_the_namespace() {
    let findings = problems(&good_with(&broken("unlabelled-namespace")));
    let codes: Vec<&str> = findings.iter().map(|f| f.code.id()).collect();
    assert_eq!(codes, vec!["MSH0301"], "{}", show(&findings));
}

#[test]
fn undeclared_namespace_is_only_a_warning() {
    let resources: Vec<_> = good()
        .into_iter()
        .filter(|r| !(r.kind == "Namespace" && r.name() == "ml"))
        .collect();
    let findings = problems(&resources);
    let f = findings
        .iter()
        .find(|f| f.code.id() == "MSH0301")
        .expect("fires");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.resource, "ml/ml-stable");
}

#[test]
fn missing_mesh_wide_strict_policy_leaves_every_namespace_uncovered() {
    let resources: Vec<_> = good()
        .into_iter()
        .filter(|r| r.kind != "PeerAuthentication")
        .collect();
    let findings = problems(&resources);
    let uncovered: Vec<&str> = findings
        .iter()
        .filter(|f| f.code.id() == "MSH0302")
        .map(|f| f.resource.as_str())
        .collect();
    assert_eq!(
        uncovered,
        vec!["backend", "frontend", "ml"],
        "{}",
        show(&findings)
    );
}
