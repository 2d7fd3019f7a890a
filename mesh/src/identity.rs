//! Which build of which service is answering: `ml/canary`, `backend/stable`, …

use std::fmt;
use std::str::FromStr;

/// The build a replica runs. Istio's DestinationRule subsets select pods by this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    Stable,
    Canary,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Stable => "stable",
            Version::Canary => "canary",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("expected `stable` or `canary`")]
pub struct UnknownVersion;

impl FromStr for Version {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stable" => Ok(Version::Stable),
            "canary" => Ok(Version::Canary),
            _ => Err(UnknownVersion),
        }
    }
}

/// A service name plus the build it runs; displayed as `<service>/<version>`, the form used by the
/// `x-served-by` header and the `served_by` trail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceIdentity {
    service: &'static str,
    version: Version,
}

impl ServiceIdentity {
    pub fn new(service: &'static str, version: Version) -> Self {
        Self { service, version }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn version(&self) -> Version {
        self.version
    }
}

impl fmt::Display for ServiceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_displays_as_trail_entry() {
        let id = ServiceIdentity::new("ml", Version::Canary);
        assert_eq!(id.to_string(), "ml/canary");
    }

    #[test]
    fn version_parses_only_known_builds() {
        assert_eq!("stable".parse::<Version>().ok(), Some(Version::Stable));
        assert_eq!("canary".parse::<Version>().ok(), Some(Version::Canary));
        assert!("Canary".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
    }
}
