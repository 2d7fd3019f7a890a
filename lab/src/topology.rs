//! The three tiers, their in-cluster names and what each service calls the next one.

use mesh::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Frontend,
    Backend,
    Ml,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Frontend, Tier::Backend, Tier::Ml];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Frontend => "frontend",
            Tier::Backend => "backend",
            Tier::Ml => "ml",
        }
    }

    /// The Kubernetes Service's name in the cluster, as the VirtualServices write it.
    pub fn host(self) -> String {
        format!("{0}.{0}.svc.cluster.local", self.name())
    }

    /// The tier that calls this one (whose sidecar routes the call), `None` for the edge.
    pub fn caller(self) -> Option<Tier> {
        match self {
            Tier::Frontend => None,
            Tier::Backend => Some(Tier::Frontend),
            Tier::Ml => Some(Tier::Backend),
        }
    }

    /// The host users reach the tier by: the gateway's host for the edge, the Service otherwise.
    pub fn entry_host(self) -> String {
        match self {
            Tier::Frontend => "frontend.local".to_owned(),
            other => other.host(),
        }
    }
}

pub const VERSIONS: [Version; 2] = [Version::Stable, Version::Canary];
