//! A route's `mirror = { ... }`: the cluster that gets copies of the
//! route's requests, the share copied, and the bounds of the copies.

use std::sync::Arc;

use dataplane::table::mirror::{Mirror, MILLION};
use toml::Spanned;

use super::{cluster_id, Builder, Clusters};
use crate::config::file::{FileMirror, Int, Ratio};
use crate::config::tally::Tallies;

/// The largest body a mirror copies when `max_body` is left out: 64 KiB,
/// a typical API request, copied in one buffer.
pub(crate) const DEFAULT_MAX_BODY: u64 = 64 * 1024;
/// The largest `max_body` accepted: 1 MiB. Each copy holds its body in a
/// buffer of the worker's until the shadow took it, `max_in_flight` of
/// them at once: the product is what mirroring may hold per worker.
pub(crate) const MAX_BODY: u64 = 1024 * 1024;
/// Shadow exchanges a worker runs at once when `max_in_flight` is left
/// out: enough for a shadow as fast as the primary at thousands of
/// mirrored requests a second, few enough that a silent shadow holds 64
/// connections per worker, not thousands.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: u32 = 64;
/// The largest `max_in_flight` accepted.
pub(crate) const MAX_IN_FLIGHT: u32 = 10_000;

impl Builder<'_> {
    /// The `mirror` table at key path `prefix` of route `route` of listener
    /// `listener`.
    pub(super) fn mirror(
        &mut self,
        table: &Spanned<FileMirror>,
        prefix: &str,
        listener: &Arc<str>,
        route: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
    ) -> Option<Mirror> {
        let file = table.get_ref();
        let key = |k: &str| format!("{prefix}.{k}");
        let cluster = match &file.cluster {
            None => {
                self.missing(
                    table,
                    prefix,
                    "cluster",
                    "name the [[clusters]] entry that gets the copies, e.g. cluster = \"v2\"",
                );
                None
            }
            Some(name) => self
                .check(name, key("cluster"), |t| cluster_id(t, clusters))
                .map(|id| (id, name.get_ref().as_str())),
        };
        let ppm = match &file.percent {
            None => Some(MILLION),
            Some(value) => self.check(value, key("percent"), |&Ratio(p)| {
                if (0.0..=100.0).contains(&p) {
                    // Exact to a ten-thousandth of a percent.
                    Ok((p * 10_000.0).round() as u32)
                } else {
                    Err(format!(
                        "percent {p} is out of range: from 0 (mirror nothing) to 100 (every request)"
                    ))
                }
            }),
        };
        let host_suffix = file.host_suffix.as_ref().is_some_and(|b| *b.get_ref());
        let max_body = match &file.max_body {
            None => Some(DEFAULT_MAX_BODY),
            Some(value) => self.check(value, key("max_body"), |&Int(n)| match u64::try_from(n) {
                Ok(n) if n <= MAX_BODY => Ok(n),
                _ => Err(format!(
                    "max_body {n} is out of range: from 0 (mirror only requests without a body) to {MAX_BODY} bytes"
                )),
            }),
        };
        let max_in_flight = match &file.max_in_flight {
            None => Some(DEFAULT_MAX_IN_FLIGHT),
            Some(value) => self.check(value, key("max_in_flight"), |&Int(n)| {
                match u32::try_from(n) {
                    Ok(n) if (1..=MAX_IN_FLIGHT).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "max_in_flight {n} is out of range: from 1 to {MAX_IN_FLIGHT} shadow requests per worker (to mirror nothing, set percent = 0)"
                    )),
                }
            }),
        };
        let (id, name) = cluster?;
        Some(Mirror {
            cluster: id,
            ppm: ppm?,
            host_suffix,
            max_body: max_body?,
            max_in_flight: max_in_flight?,
            tally: tallies.mirror(listener, route, &Arc::from(name)),
        })
    }
}
