//! Loading resources from a directory tree, a file, or a multi-document YAML stream.
//!
//! YAML is parsed with `serde_norway`, the maintained fork of the deprecated `serde_yaml` 0.9: the
//! same `Value`/multi-document `Deserializer` API this loader relies on (kind dispatch on a `Value`,
//! field paths through `serde_path_to_error`, `<<` merge keys), on a libyaml fork that still gets
//! fixes. `serde-saphyr` (pure Rust) was the other candidate, but it has no `Value` to dispatch on,
//! so the loader would have had to be rewritten around it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::resources::{ObjectMeta, Provenance, Resource, ResourceBody};

/// What the loader could not read or make sense of. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: no *.yaml or *.yml files found (for a kustomize overlay, pipe `kubectl kustomize <dir>` into `mesh check -`)"
    )]
    NoFiles { path: PathBuf },
    #[error("{file}: document {document}: invalid YAML: {source}")]
    Yaml {
        file: PathBuf,
        document: usize,
        #[source]
        source: serde_norway::Error,
    },
    #[error("{file}: document {document}: expected a Kubernetes object (a mapping), found {found}")]
    NotAnObject {
        file: PathBuf,
        document: usize,
        found: &'static str,
    },
    #[error("{file}: document {document}: missing required field `{field}`")]
    MissingField {
        file: PathBuf,
        document: usize,
        field: &'static str,
    },
    #[error("{0}")]
    InvalidField(Box<FieldError>),
}

/// A field with the wrong type or value, located by file, document, resource and field path.
#[derive(Debug, thiserror::Error)]
#[error("{file}: document {document}: {kind} {name}: {path}: {message}")]
pub struct FieldError {
    pub file: PathBuf,
    pub document: usize,
    pub kind: String,
    pub name: String,
    /// Dotted field path, e.g. `spec.http[1].route[0].weight`.
    pub path: String,
    pub message: String,
}

/// The name used as the file of resources read from standard input.
pub const STDIN_NAME: &str = "<stdin>";

/// Loads `input`: `-` reads standard input, a directory is walked recursively, anything else is
/// read as one (possibly multi-document) YAML file.
pub fn load_input(input: &str) -> Result<Vec<Resource>, LoadError> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| LoadError::Read {
                path: PathBuf::from(STDIN_NAME),
                source,
            })?;
        load_str(&text, Path::new(STDIN_NAME))
    } else {
        load_path(Path::new(input))
    }
}

/// Loads a file or, recursively, every `*.yaml`/`*.yml` under a directory (skipping
/// `kustomization.yaml`), in sorted path order.
pub fn load_path(path: &Path) -> Result<Vec<Resource>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return load_file(path);
    }
    let mut files = Vec::new();
    collect_yaml_files(path, &mut files)?;
    if files.is_empty() {
        return Err(LoadError::NoFiles {
            path: path.to_path_buf(),
        });
    }
    files.sort();
    let mut resources = Vec::new();
    for file in files {
        resources.extend(load_file(&file)?);
    }
    Ok(resources)
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(read_err)?;
        if file_type.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if is_resource_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_resource_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    let kustomization = matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    );
    yaml && !kustomization
}

fn load_file(path: &Path) -> Result<Vec<Resource>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Parses a multi-document YAML stream; `file` is recorded as every resource's provenance.
/// Empty documents are skipped.
pub fn load_str(text: &str, file: &Path) -> Result<Vec<Resource>, LoadError> {
    let mut documents = Vec::new();
    for (index, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut value =
            serde_norway::Value::deserialize(doc).map_err(|source| LoadError::Yaml {
                file: file.to_path_buf(),
                document: index + 1,
                source,
            })?;
        value.apply_merge().map_err(|source| LoadError::Yaml {
            file: file.to_path_buf(),
            document: index + 1,
            source,
        })?;
        documents.push(value);
    }
    let count = documents.len();
    let mut resources = Vec::new();
    for (index, value) in documents.into_iter().enumerate() {
        let provenance = Provenance {
            file: file.to_path_buf(),
            document: index,
            documents_in_file: count,
        };
        if let Some(resource) = parse_document(value, provenance)? {
            resources.push(resource);
        }
    }
    Ok(resources)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<ObjectMeta>,
}

fn parse_document(
    value: serde_norway::Value,
    provenance: Provenance,
) -> Result<Option<Resource>, LoadError> {
    let file = provenance.file.clone();
    let document = provenance.document + 1;
    let found = match &value {
        serde_norway::Value::Null => return Ok(None),
        serde_norway::Value::Mapping(_) => None,
        serde_norway::Value::Bool(_) => Some("a boolean"),
        serde_norway::Value::Number(_) => Some("a number"),
        serde_norway::Value::String(_) => Some("a string"),
        serde_norway::Value::Sequence(_) => Some("a sequence"),
        serde_norway::Value::Tagged(_) => Some("a tagged value"),
    };
    if let Some(found) = found {
        return Err(LoadError::NotAnObject {
            file,
            document,
            found,
        });
    }
    let invalid = |kind: &str, name: &str, err: serde_path_to_error::Error<serde_norway::Error>| {
        LoadError::InvalidField(Box::new(FieldError {
            file: file.clone(),
            document,
            kind: kind.to_owned(),
            name: name.to_owned(),
            path: err.path().to_string(),
            message: err.into_inner().to_string(),
        }))
    };
    let head: Head = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| invalid("object", "(unnamed)", e))?;
    let missing = |field| LoadError::MissingField {
        file: file.clone(),
        document,
        field,
    };
    let api_version = head.api_version.ok_or_else(|| missing("apiVersion"))?;
    let kind = head.kind.ok_or_else(|| missing("kind"))?;
    let metadata = head.metadata.ok_or_else(|| missing("metadata"))?;
    if metadata.name.is_empty() {
        return Err(missing("metadata.name"));
    }
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let name = metadata.name.clone();
    let body = match (group, kind.as_str()) {
        ("", "Namespace") => ResourceBody::Namespace(parse(value, &kind, &name, &invalid)?),
        ("", "ServiceAccount") => ResourceBody::ServiceAccount,
        ("", "Service") => ResourceBody::Service(parse(value, &kind, &name, &invalid)?),
        ("apps", "Deployment") => ResourceBody::Deployment(parse(value, &kind, &name, &invalid)?),
        ("networking.istio.io", "VirtualService") => {
            ResourceBody::VirtualService(parse(value, &kind, &name, &invalid)?)
        }
        ("networking.istio.io", "DestinationRule") => {
            ResourceBody::DestinationRule(parse(value, &kind, &name, &invalid)?)
        }
        ("networking.istio.io", "Gateway") => {
            ResourceBody::Gateway(parse(value, &kind, &name, &invalid)?)
        }
        ("security.istio.io", "PeerAuthentication") => {
            ResourceBody::PeerAuthentication(parse(value, &kind, &name, &invalid)?)
        }
        ("security.istio.io", "AuthorizationPolicy") => {
            ResourceBody::AuthorizationPolicy(parse(value, &kind, &name, &invalid)?)
        }
        _ => ResourceBody::Opaque,
    };
    Ok(Some(Resource {
        provenance,
        api_version,
        kind,
        metadata,
        body,
    }))
}

fn parse<T: DeserializeOwned>(
    value: serde_norway::Value,
    kind: &str,
    name: &str,
    invalid: &dyn Fn(&str, &str, serde_path_to_error::Error<serde_norway::Error>) -> LoadError,
) -> Result<T, LoadError> {
    serde_path_to_error::deserialize(value).map_err(|e| invalid(kind, name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Resource>, LoadError> {
        load_str(text, Path::new("test.yaml"))
    }

    #[test]
    fn multi_document_stream_keeps_provenance() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n\
                    apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: a}\n";
        let resources = load(text).expect("loads");
        assert_eq!(resources.len(), 2);
        assert_eq!(resources[1].provenance.document, 2);
        assert_eq!(resources[1].provenance.to_string(), "test.yaml#3");
        assert_eq!(resources[1].qualified_name(), "a/sa");
        assert_eq!(resources[0].namespace(), None);
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                    metadata: {name: vs, namespace: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    \
                    - destination: {host: a}\n  - route:\n    - destination: {host: a}\n      weight: lots\n";
        let err = load(text).expect_err("wrong type");
        let msg = err.to_string();
        assert!(msg.contains("spec.http[1].route[0].weight"), "{msg}");
        assert!(msg.contains("VirtualService vs"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  frobnicate: 3\n  ports: [{port: 80}]\n";
        let resources = load(text).expect("loads");
        assert_eq!(resources[0].namespace(), Some("default"));
    }

    #[test]
    fn missing_kind_and_non_objects_are_errors() {
        let err = load("apiVersion: v1\nmetadata: {name: x}\n").expect_err("no kind");
        assert!(
            matches!(err, LoadError::MissingField { field: "kind", .. }),
            "{err}"
        );
        let err = load("- a\n- b\n").expect_err("a list");
        assert!(matches!(err, LoadError::NotAnObject { .. }), "{err}");
        let err =
            load("apiVersion: v1\nkind: Service\nmetadata: {name: [x}\n").expect_err("bad yaml");
        assert!(matches!(err, LoadError::Yaml { .. }), "{err}");
    }

    #[test]
    fn missing_path_is_a_read_error() {
        let err = load_path(Path::new("/definitely/not/here")).expect_err("missing");
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
