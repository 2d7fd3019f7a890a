//! Match conditions, compiled once and evaluated per request: StringMatch (exact, prefix, full-match
//! regex, presence), uri with and without the query string, authority, headers, withoutHeaders and
//! queryParams.

use std::collections::BTreeMap;

use regex::Regex;

use super::RouteError;
use crate::resources::{HttpMatchRequest, StringMatch};

#[derive(Debug)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Present,
}

impl Matcher {
    fn compile(m: &StringMatch, vs: &str, field: &str) -> Result<Self, RouteError> {
        let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(RouteError::InvalidValue {
                virtual_service: vs.to_owned(),
                field: field.to_owned(),
                reason: "set only one of exact, prefix, regex".to_owned(),
            });
        }
        Ok(if let Some(exact) = &m.exact {
            Matcher::Exact(exact.clone())
        } else if let Some(prefix) = &m.prefix {
            Matcher::Prefix(prefix.clone())
        } else if let Some(regex) = &m.regex {
            Matcher::Regex(compile_regex(regex, vs, field)?)
        } else {
            Matcher::Present
        })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => value == e,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
        }
    }
}

/// Compiles an Istio (RE2) regex with full-match semantics.
pub fn compile_regex(pattern: &str, vs: &str, field: &str) -> Result<Regex, RouteError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|source| RouteError::InvalidRegex {
        virtual_service: vs.to_owned(),
        field: field.to_owned(),
        source: Box::new(source),
    })
}

#[derive(Debug)]
pub(super) struct CompiledMatch {
    field: String,
    uri: Option<Matcher>,
    ignore_uri_case: bool,
    authority: Option<Matcher>,
    headers: Vec<(String, Matcher)>,
    without_headers: Vec<(String, Matcher)>,
    query_params: Vec<(String, Matcher)>,
    unsupported: Option<&'static str>,
}

pub(super) fn compile_match(
    m: &HttpMatchRequest,
    field: &str,
    vs: &str,
) -> Result<CompiledMatch, RouteError> {
    let map = |entries: &BTreeMap<String, StringMatch>, what: &str| {
        entries
            .iter()
            .map(|(name, sm)| {
                // Header names are case-insensitive; query parameter names are not.
                let key = if what == "queryParams" {
                    name.clone()
                } else {
                    name.to_ascii_lowercase()
                };
                Ok((
                    key,
                    Matcher::compile(sm, vs, &format!("{field}.{what}.{name}"))?,
                ))
            })
            .collect::<Result<Vec<_>, RouteError>>()
    };
    let mut unsupported = m.unsupported_condition();
    let headers = map(&m.headers, "headers")?;
    let without_headers = map(&m.without_headers, "withoutHeaders")?;
    for (name, _) in headers.iter().chain(&without_headers) {
        if name.starts_with(':') && name != ":authority" && name != ":path" {
            unsupported = unsupported.or(Some("pseudo-header"));
        }
    }
    Ok(CompiledMatch {
        field: field.to_owned(),
        uri: m
            .uri
            .as_ref()
            .map(|u| Matcher::compile(u, vs, &format!("{field}.uri")))
            .transpose()?,
        ignore_uri_case: m.ignore_uri_case,
        authority: m
            .authority
            .as_ref()
            .map(|a| Matcher::compile(a, vs, &format!("{field}.authority")))
            .transpose()?,
        headers,
        without_headers,
        query_params: map(&m.query_params, "queryParams")?,
        unsupported,
    })
}

pub(super) struct Request<'a> {
    host: &'a str,
    path: &'a str,
    path_without_query: &'a str,
    query: Vec<(&'a str, &'a str)>,
    headers: &'a http::HeaderMap,
}

impl<'a> Request<'a> {
    pub(super) fn new(host: &'a str, path: &'a str, headers: &'a http::HeaderMap) -> Self {
        let (path_without_query, query) = path.split_once('?').unwrap_or((path, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        Request {
            host,
            path,
            path_without_query,
            query,
            headers,
        }
    }

    /// A header's value, multiple values joined by `,`; `None` when absent or not text.
    fn header(&self, name: &str) -> Option<String> {
        match name {
            ":authority" => return Some(self.host.to_owned()),
            ":path" => return Some(self.path.to_owned()),
            _ => {}
        }
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<_, _>>()
            .ok()?;
        if values.is_empty() {
            None
        } else {
            Some(values.join(","))
        }
    }
}

pub(super) fn block_matches(
    block: &CompiledMatch,
    request: &Request<'_>,
    vs: &str,
) -> Result<bool, RouteError> {
    if let Some(condition) = block.unsupported {
        return Err(RouteError::UnsupportedMatch {
            virtual_service: vs.to_owned(),
            field: block.field.clone(),
            condition: condition.to_owned(),
        });
    }
    if let Some(uri) = &block.uri {
        let subject = match uri {
            Matcher::Prefix(_) => request.path,
            _ => request.path_without_query,
        };
        let ok = if block.ignore_uri_case {
            match uri {
                Matcher::Exact(e) => subject.eq_ignore_ascii_case(e),
                Matcher::Prefix(p) => subject
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p)),
                other => other.matches(subject),
            }
        } else {
            uri.matches(subject)
        };
        if !ok {
            return Ok(false);
        }
    }
    if let Some(authority) = &block.authority
        && !authority.matches(request.host)
    {
        return Ok(false);
    }
    for (name, matcher) in &block.headers {
        match request.header(name) {
            Some(value) if matcher.matches(&value) => {}
            _ => return Ok(false),
        }
    }
    for (name, matcher) in &block.without_headers {
        if request
            .header(name)
            .is_some_and(|value| matcher.matches(&value))
        {
            return Ok(false);
        }
    }
    for (name, matcher) in &block.query_params {
        let found = request.query.iter().find(|(k, _)| k == name);
        match found {
            Some((_, value)) if matcher.matches(value) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}
