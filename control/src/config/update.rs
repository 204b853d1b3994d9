//! Checks of a configuration meant to replace the running one: everything
//! [`super::parse`] checks, plus what cannot change while ringway runs and
//! whether new listener addresses can be bound.

use std::net::SocketAddr;
use std::ops::Range;

use dataplane::table::lb;
use toml::Spanned;

use super::error::{ConfigError, ConfigErrors};
use super::file::FileConfig;
use super::source::Source;
use super::Config;

/// Parses `text` as the successor of `running`. `cores` are the cores the
/// process may use, as [`super::available_cores`] read them before any
/// thread was pinned (asked later, from the pinned control thread, the
/// answer would be the control core alone). `can_bind` is asked about each
/// listener address the running table does not have; it answers why not, if
/// it cannot be bound.
pub fn parse_update(
    text: &str,
    origin: &str,
    running: &Config,
    cores: Option<&[usize]>,
    can_bind: impl Fn(SocketAddr) -> Result<(), String>,
) -> Result<Config, ConfigErrors> {
    let source = Source { origin, text };
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigErrors {
        errors: vec![source.toml_error(&e)],
    })?;
    // Built as the running table's successor, so that HTTP counters carry on
    // across the update.
    let next = super::compile::compile(&file, &source, cores, Some(&running.table))?;
    let mut errors = Vec::new();
    fixed_keys(&file, &source, running, &next, &mut errors);
    new_addresses(&file, &source, running, &next, can_bind, &mut errors);
    if errors.is_empty() {
        Ok(next)
    } else {
        Err(ConfigErrors::new(errors))
    }
}

/// Settings the workers were started with: changing them needs a restart.
fn fixed_keys(
    file: &FileConfig,
    source: &Source<'_>,
    running: &Config,
    next: &Config,
    errors: &mut Vec<ConfigError>,
) {
    let runtime = file.runtime.as_ref();
    let runtime_span = runtime.map(Spanned::span);
    let file_runtime = runtime.map(Spanned::get_ref);
    let span_of = |key: Option<Range<usize>>| key.or_else(|| runtime_span.clone());
    let mut refuse = |span: Option<Range<usize>>, key: &str, was: String, now: String| {
        errors.push(source.error(
            span,
            Some(key.to_owned()),
            format!("cannot change while ringway runs ({was} -> {now}); restart to apply it"),
        ));
    };
    let (a, b) = (&running.runtime, &next.runtime);
    if a.worker_cores != b.worker_cores {
        refuse(
            span_of(file_runtime.and_then(|r| r.worker_cores.as_ref().map(Spanned::span))),
            "runtime.worker_cores",
            format!("{:?}", a.worker_cores),
            format!("{:?}", b.worker_cores),
        );
    }
    if running.control_core != next.control_core {
        refuse(
            span_of(file_runtime.and_then(|r| r.control_core.as_ref().map(Spanned::span))),
            "runtime.control_core",
            format!("{:?}", running.control_core),
            format!("{:?}", next.control_core),
        );
    }
    if a.drain_timeout != b.drain_timeout {
        refuse(
            span_of(file_runtime.and_then(|r| r.drain_timeout.as_ref().map(Spanned::span))),
            "runtime.drain_timeout",
            humantime::format_duration(a.drain_timeout).to_string(),
            humantime::format_duration(b.drain_timeout).to_string(),
        );
    }
    if a.buffer_size != b.buffer_size {
        refuse(
            span_of(file_runtime.and_then(|r| r.buffer_size.as_ref().map(Spanned::span))),
            "runtime.buffer_size",
            a.buffer_size.to_string(),
            b.buffer_size.to_string(),
        );
    }
    if a.buffer_count != b.buffer_count {
        refuse(
            span_of(file_runtime.and_then(|r| r.buffer_count.as_ref().map(Spanned::span))),
            "runtime.buffer_count",
            a.buffer_count.to_string(),
            b.buffer_count.to_string(),
        );
    }
    if a.max_connections != b.max_connections {
        let show = |n: Option<usize>| n.map_or_else(|| "derived".to_owned(), |n| n.to_string());
        refuse(
            span_of(file_runtime.and_then(|r| r.max_connections.as_ref().map(Spanned::span))),
            "runtime.max_connections",
            show(a.max_connections),
            show(b.max_connections),
        );
    }
    if a.access_log_buffer != b.access_log_buffer {
        refuse(
            span_of(file_runtime.and_then(|r| r.access_log_buffer.as_ref().map(Spanned::span))),
            "runtime.access_log_buffer",
            a.access_log_buffer.to_string(),
            b.access_log_buffer.to_string(),
        );
    }
    // The reactor is chosen once, before the workers start; a worker
    // cannot move its sockets and ops to another.
    if a.io_backend != b.io_backend {
        refuse(
            span_of(file_runtime.and_then(|r| r.io_backend.as_ref().map(Spanned::span))),
            "runtime.io_backend",
            a.io_backend.to_string(),
            b.io_backend.to_string(),
        );
    }
    if running.admin.address != next.admin.address {
        let admin = file.admin.as_ref();
        let span = admin
            .and_then(|a| a.get_ref().address.as_ref().map(Spanned::span))
            .or_else(|| admin.map(Spanned::span));
        refuse(
            span,
            "admin.address",
            running.admin.address.to_string(),
            next.admin.address.to_string(),
        );
    }
}

/// Every listener address the running table does not listen on yet must be
/// bindable, or the workers would fail to start it.
fn new_addresses(
    file: &FileConfig,
    source: &Source<'_>,
    running: &Config,
    next: &Config,
    can_bind: impl Fn(SocketAddr) -> Result<(), String>,
    errors: &mut Vec<ConfigError>,
) {
    for (i, l) in next.table.listeners.iter().enumerate() {
        let known = running
            .table
            .listeners
            .iter()
            .any(|r| r.address == l.address && r.protocol() == l.protocol());
        if known {
            continue;
        }
        if let Err(reason) = can_bind(l.address) {
            // The built table keeps the file's listener order.
            let span = file
                .listeners
                .get(i)
                .and_then(|f| f.get_ref().address.as_ref().map(Spanned::span));
            errors.push(source.error(
                span,
                Some(format!("listeners[{i}].address")),
                format!("cannot listen on {}: {reason}", l.address),
            ));
        }
    }
}

/// One endpoint as `PUT /clusters/NAME/endpoints` lists it: `"ip:port"`,
/// or `{"address": "ip:port", "weight": N}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum EndpointSpec {
    /// The address alone (weight 1).
    Address(String),
    /// An address and its weight.
    Weighted {
        /// `ip:port`.
        address: String,
        /// From 1 to `dataplane::table::lb::MAX_WEIGHT`.
        weight: i64,
    },
}

impl From<&str> for EndpointSpec {
    fn from(text: &str) -> Self {
        Self::Address(text.to_owned())
    }
}

/// Parses a new endpoint list for a cluster (the admin API's
/// `PUT /clusters/NAME/endpoints`): the addresses and their weights, or
/// every entry's error.
pub fn parse_endpoints(list: &[EndpointSpec]) -> Result<(Vec<SocketAddr>, Vec<u32>), Vec<String>> {
    if list.is_empty() {
        return Err(vec![
            "endpoints: no endpoints listed; list at least one ip:port, e.g. [\"127.0.0.1:8000\"]"
                .to_owned(),
        ]);
    }
    let mut endpoints = Vec::with_capacity(list.len());
    let mut weights = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (i, spec) in list.iter().enumerate() {
        let (text, weight) = match spec {
            EndpointSpec::Address(text) => (text, 1),
            EndpointSpec::Weighted { address, weight } => (address, *weight),
        };
        let weight = match u32::try_from(weight) {
            Ok(w) if (1..=lb::MAX_WEIGHT).contains(&w) => Some(w),
            _ => {
                errors.push(format!(
                    "endpoints[{i}].weight: weight {weight} is out of range: from 1 to {}",
                    lb::MAX_WEIGHT
                ));
                None
            }
        };
        match super::compile::endpoint(text) {
            Ok(address) => {
                if let Some(weight) = weight {
                    endpoints.push(address);
                    weights.push(weight);
                }
            }
            Err(reason) => errors.push(format!("endpoints[{i}]: {reason}")),
        }
    }
    if errors.is_empty() {
        Ok((endpoints, weights))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
