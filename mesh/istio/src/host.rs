//! Host names as Istio resolves them: short names in the namespace of the resource (or caller)
//! that writes them, Service FQDNs, literal hosts and wildcards.

/// The Kubernetes cluster domain the mesh runs in.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Istio's short-name rule for hosts written in a resource: a host without a dot is a Service in
/// the resource's `namespace`; anything else (and `*`) is taken as written.
pub fn resolve_short_name(host: &str, namespace: &str) -> String {
    if host == "*" || host.contains('.') {
        host.to_ascii_lowercase()
    } else {
        format!(
            "{}.{namespace}.svc.{CLUSTER_DOMAIN}",
            host.to_ascii_lowercase()
        )
    }
}

/// The host a workload in `namespace` reaches when it calls `host`, as its DNS search path
/// expands it: `svc` → `svc.<namespace>.svc.cluster.local`, `svc.ns` and `svc.ns.svc` → the FQDN,
/// anything else as written. A port is dropped; case is folded.
pub fn resolve_from(host: &str, namespace: &str) -> String {
    let host = strip_port(host).to_ascii_lowercase();
    if !host.contains('.') {
        format!("{host}.{namespace}.svc.{CLUSTER_DOMAIN}")
    } else if host.ends_with(".svc") {
        format!("{host}.{CLUSTER_DOMAIN}")
    } else if host.matches('.').count() == 1 && !host.ends_with(".local") {
        format!("{host}.svc.{CLUSTER_DOMAIN}")
    } else {
        host
    }
}

/// The namespace of a Service FQDN (`svc.ns.svc.cluster.local` → `ns`).
pub fn service_namespace(fqdn: &str) -> Option<&str> {
    fqdn.strip_suffix(&format!(".svc.{CLUSTER_DOMAIN}"))?
        .split_once('.')
        .map(|(_, ns)| ns)
        .filter(|ns| !ns.contains('.'))
}

/// `host:port` → `host` (only when the part after the colon is a number).
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether a resolved host claimed by a VirtualService (possibly `*` or `*.suffix`) covers a
/// resolved request host. Returns the specificity (longer wins) when it does.
pub fn covers(claimed: &str, host: &str) -> Option<usize> {
    if claimed == host {
        return Some(usize::MAX);
    }
    if claimed == "*" {
        return Some(0);
    }
    let suffix = claimed.strip_prefix('*')?;
    (suffix.starts_with('.') && host.ends_with(suffix)).then_some(suffix.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_in_the_callers_namespace() {
        assert_eq!(
            resolve_from("backend", "frontend"),
            "backend.frontend.svc.cluster.local"
        );
        assert_eq!(
            resolve_from("backend.backend", "frontend"),
            "backend.backend.svc.cluster.local"
        );
        assert_eq!(
            resolve_from("BACKEND.backend.svc:8080", "x"),
            "backend.backend.svc.cluster.local"
        );
        assert_eq!(resolve_from("frontend.local", "x"), "frontend.local");
        assert_eq!(
            resolve_short_name("ml", "ml"),
            "ml.ml.svc.cluster.local".to_owned()
        );
        assert_eq!(service_namespace("ml.ml.svc.cluster.local"), Some("ml"));
        assert_eq!(service_namespace("frontend.local"), None);
    }

    #[test]
    fn wildcards_cover_only_their_suffix() {
        assert!(covers("*.example.com", "shop.example.com").is_some());
        assert!(covers("*.example.com", "example.com.evil").is_none());
        assert_eq!(covers("*", "anything"), Some(0));
        assert_eq!(covers("a.b", "a.b"), Some(usize::MAX));
    }
}
