//! `[tracing]`: where spans go (an OTLP/HTTP collector), how many requests
//! without a sampling decision are traced, and what the spans say of
//! this ringway.

use dataplane::trace::context::Threshold;
use toml::Spanned;

use super::Builder;
use crate::config::duration;
use crate::config::file::{FileTracing, Int};
use crate::telemetry::otlp::{Endpoint, OtlpSettings};

/// The share of requests without a sampling decision that are traced when
/// `sample` is not set: 1%, as cheap as tracing gets while still showing
/// the shape of the traffic.
pub(crate) const DEFAULT_SAMPLE: f64 = 0.01;

/// The most spans the exporter may hold while the collector is away.
const MAX_HELD_SPANS: std::ops::RangeInclusive<i64> = 1_000..=1_000_000;

/// Tracing as configured: the exporter's settings and the sampling ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// Where and how spans are sent.
    pub otlp: OtlpSettings,
    /// The share of requests without a decision that are traced.
    pub sample: f64,
}

impl TracingSettings {
    /// The sampling threshold the workers compare their draws with.
    pub fn threshold(&self) -> Threshold {
        Threshold::from_ratio(self.sample)
    }
}

impl Builder<'_> {
    /// Checks `[tracing]`.
    pub(super) fn tracing(&mut self, table: &Spanned<FileTracing>) -> Option<TracingSettings> {
        let file = table.get_ref();
        let endpoint = match &file.collector {
            None => {
                self.missing(
                    table,
                    "tracing",
                    "collector",
                    "name the OTLP/HTTP collector, e.g. collector = \"http://127.0.0.1:4318/v1/traces\"",
                );
                None
            }
            Some(url) => self.check(url, "tracing.collector", |u| {
                Endpoint::parse(u).map_err(|e| e.to_string())
            }),
        };
        let sample = match &file.sample {
            None => Some(DEFAULT_SAMPLE),
            Some(r) => self.check(r, "tracing.sample", |r| {
                if (0.0..=1.0).contains(&r.0) {
                    Ok(r.0)
                } else {
                    Err(format!(
                        "sample {} is not from 0 to 1 (the share of requests without a sampling decision that are traced)",
                        r.0
                    ))
                }
            }),
        };
        let name = |key: &str, v: &Spanned<String>, b: &mut Self| {
            b.check(v, format!("tracing.{key}"), |s| {
                if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
                    Err(format!(
                        "`{s}` must be 1 to 255 characters, none of them control characters"
                    ))
                } else {
                    Ok(s.clone())
                }
            })
        };
        let service_name = match &file.service_name {
            None => Some("ringway".to_owned()),
            Some(v) => name("service_name", v, self),
        };
        let instance_id = match &file.instance_id {
            None => Some(None),
            Some(v) => name("instance_id", v, self).map(Some),
        };
        let batch_delay = match &file.batch_delay {
            None => Some(None),
            Some(text) => self
                .check(text, "tracing.batch_delay", |t| duration::parse_nonzero(t))
                .map(Some),
        };
        let max_held = match &file.max_held_spans {
            None => Some(None),
            Some(n) => self
                .check(n, "tracing.max_held_spans", |&Int(n)| {
                    if MAX_HELD_SPANS.contains(&n) {
                        Ok(n as usize)
                    } else {
                        Err(format!(
                            "{n} is not from {} to {}",
                            MAX_HELD_SPANS.start(),
                            MAX_HELD_SPANS.end()
                        ))
                    }
                })
                .map(Some),
        };
        let mut otlp = OtlpSettings::new(endpoint?);
        otlp.service_name = service_name?;
        otlp.instance_id = instance_id?;
        if let Some(delay) = batch_delay? {
            otlp.batch_delay = delay;
        }
        if let Some(held) = max_held? {
            otlp.max_held_spans = held;
        }
        if let Err(e) = otlp.check() {
            self.report(Some(table.span()), "tracing", e.to_string());
            return None;
        }
        Some(TracingSettings {
            otlp,
            sample: sample?,
        })
    }
}
