//! Fault injection, validated once: a fixed delay and an HTTP abort, each with its percentage.

use super::{Abort, Delay, Fault, RouteError};
use crate::duration::parse_duration;
use crate::resources::{HttpFault, Percent};

pub(super) fn compile_fault(fault: &HttpFault, field: &str, vs: &str) -> Result<Fault, RouteError> {
    let invalid = |field: String, reason: String| RouteError::InvalidValue {
        virtual_service: vs.to_owned(),
        field,
        reason,
    };
    let percentage = |p: Option<&Percent>, legacy: Option<i64>, field: String| {
        // Istio: an unset percentage means every request.
        let value = p.map_or_else(|| legacy.map_or(100.0, |v| v as f64), |p| p.value);
        if (0.0..=100.0).contains(&value) {
            Ok(value)
        } else {
            Err(invalid(
                field,
                format!("{value} is not a percentage in 0..=100"),
            ))
        }
    };
    let delay = match &fault.delay {
        None => None,
        Some(d) => {
            let text = d.fixed_delay.as_deref().ok_or_else(|| {
                invalid(
                    format!("{field}.delay.fixedDelay"),
                    "the lab executes only fixed delays; set fixedDelay".to_owned(),
                )
            })?;
            Some(Delay {
                fixed_delay: parse_duration(text).map_err(|source| {
                    RouteError::InvalidDuration {
                        virtual_service: vs.to_owned(),
                        field: format!("{field}.delay.fixedDelay"),
                        source,
                    }
                })?,
                percentage: percentage(
                    d.percentage.as_ref(),
                    d.percent,
                    format!("{field}.delay.percentage.value"),
                )?,
            })
        }
    };
    let abort = match &fault.abort {
        None => None,
        Some(a) => {
            let status = a.http_status.ok_or_else(|| {
                invalid(
                    format!("{field}.abort.httpStatus"),
                    "the lab executes only HTTP aborts; set httpStatus".to_owned(),
                )
            })?;
            let http_status = u16::try_from(status)
                .ok()
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| {
                    invalid(
                        format!("{field}.abort.httpStatus"),
                        format!("{status} is not an HTTP status"),
                    )
                })?;
            Some(Abort {
                http_status,
                percentage: percentage(
                    a.percentage.as_ref(),
                    None,
                    format!("{field}.abort.percentage.value"),
                )?,
            })
        }
    };
    Ok(Fault { delay, abort })
}
