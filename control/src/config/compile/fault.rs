//! Fault injection (a route's or a TCP listener's `fault`) and a route's
//! own `request_timeout`, `idle_timeout` and `max_body`.

use std::sync::Arc;
use std::time::Duration;

use dataplane::table::fault::{RouteFault, Shares, TcpFault};
use dataplane::table::route::RouteLimits;
use dataplane::table::tally::FaultTally;
use toml::Spanned;

use super::route::header_name;
use super::Builder;
use crate::config::duration;
use crate::config::file::{FileFault, FileRoute, FileTcpFault, Int, Ratio};

/// Status of an injected abort that gives none: what an overloaded or
/// unavailable service answers, the failure clients most need to handle.
pub(crate) const DEFAULT_ABORT_STATUS: u16 = 503;

/// The keys of a `fault` both kinds share, as read.
struct Keys<'f> {
    delay: &'f Option<Spanned<String>>,
    delay_percent: &'f Option<Spanned<Ratio>>,
    abort_percent: &'f Option<Spanned<Ratio>>,
}

/// What they mean once checked.
struct Checked {
    abort_percent: f64,
    delay: Option<Duration>,
    delay_percent: f64,
}

impl Builder<'_> {
    /// A route's `fault = { ... }` at key path `prefix` (the route's).
    pub(super) fn route_fault(
        &mut self,
        table: &Spanned<FileFault>,
        prefix: &str,
    ) -> Option<RouteFault> {
        let prefix = format!("{prefix}.fault");
        let file = table.get_ref();
        if let (Some(value), None) = (&file.abort_status, &file.abort_percent) {
            // Said alone: the fault's other checks would only repeat it.
            self.report(
                Some(value.span()),
                format!("{prefix}.abort_status"),
                "abort_status is the status of injected aborts, and this fault has no abort_percent; add abort_percent = N (the share of requests to abort), or remove abort_status",
            );
            return None;
        }
        let keys = Keys {
            delay: &file.delay,
            delay_percent: &file.delay_percent,
            abort_percent: &file.abort_percent,
        };
        let checked = self.fault_keys(
            table,
            &prefix,
            &keys,
            "abort_percent (abort_status is 503 unless given)",
        );
        let abort_status =
            match &file.abort_status {
                None => Some(DEFAULT_ABORT_STATUS),
                Some(value) => self.check(value, format!("{prefix}.abort_status"), |&Int(n)| {
                    match u16::try_from(n) {
                        Ok(s @ 400..=599) => Ok(s),
                        _ => Err(format!(
                            "abort_status {n} is not an error status; give one from 400 to 599"
                        )),
                    }
                }),
            };
        let header = match &file.header {
            None => Some(None),
            Some(text) => self
                .check(text, format!("{prefix}.header"), |t| header_name(t))
                .map(Some),
        };
        let checked = checked?;
        Some(RouteFault::new(
            abort_status?,
            checked.abort_percent,
            checked.delay,
            checked.delay_percent,
            header?,
        ))
    }

    /// A TCP listener's `fault = { ... }` at key path `prefix` (the
    /// listener's), counting into `tally`.
    pub(super) fn tcp_fault(
        &mut self,
        table: &Spanned<FileTcpFault>,
        prefix: &str,
        tally: Arc<FaultTally>,
    ) -> Option<TcpFault> {
        let prefix = format!("{prefix}.fault");
        let file = table.get_ref();
        let keys = Keys {
            delay: &file.delay,
            delay_percent: &file.delay_percent,
            abort_percent: &file.abort_percent,
        };
        let checked = self.fault_keys(table, &prefix, &keys, "abort_percent")?;
        Some(TcpFault {
            shares: Shares::new(checked.abort_percent, checked.delay_percent),
            delay: checked.delay,
            tally,
        })
    }

    /// The shares and the delay of a fault: each percentage from 0 to
    /// 100, together at most 100 (a request is aborted or delayed, never
    /// both); `delay` and `delay_percent` only together; at least one
    /// share above 0.
    fn fault_keys<T>(
        &mut self,
        table: &Spanned<T>,
        prefix: &str,
        keys: &Keys<'_>,
        abort_hint: &str,
    ) -> Option<Checked> {
        let mut ok = true;
        let mut percent = |this: &mut Self, value: &Option<Spanned<Ratio>>, key: &str| {
            let Some(value) = value else {
                return Some(0.0);
            };
            let checked = this.check(value, format!("{prefix}.{key}"), |&Ratio(p)| {
                if p.is_finite() && (0.0..=100.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!(
                        "{key} {p} is out of range: a percentage of requests, from 0 to 100"
                    ))
                }
            });
            ok &= checked.is_some();
            checked
        };
        let abort_percent = percent(self, keys.abort_percent, "abort_percent");
        let delay_percent = percent(self, keys.delay_percent, "delay_percent");
        let delay = match (keys.delay, keys.delay_percent) {
            (None, None) => None,
            (Some(text), None) => {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.delay"),
                    "a delay needs delay_percent, the share of requests to hold back, e.g. delay_percent = 10",
                );
                ok = false;
                None
            }
            (None, Some(value)) => {
                self.report(
                    Some(value.span()),
                    format!("{prefix}.delay_percent"),
                    "delay_percent needs a delay, how long to hold a request back, e.g. delay = \"200ms\"",
                );
                ok = false;
                None
            }
            (Some(text), Some(_)) => {
                let delay = self.check(text, format!("{prefix}.delay"), |t| {
                    duration::parse_nonzero(t)
                });
                ok &= delay.is_some();
                delay
            }
        };
        let (abort_percent, delay_percent) = (abort_percent?, delay_percent?);
        if !ok {
            return None;
        }
        if abort_percent + delay_percent > 100.0 {
            let span = keys
                .delay_percent
                .as_ref()
                .or(keys.abort_percent.as_ref())
                .map(Spanned::span);
            self.report(
                span,
                format!("{prefix}.delay_percent"),
                format!(
                    "abort_percent {abort_percent} and delay_percent {delay_percent} add up to more than 100; a request is aborted or delayed, never both, so the two shares must fit in 100"
                ),
            );
            return None;
        }
        if abort_percent == 0.0 && delay_percent == 0.0 {
            self.report(
                Some(table.span()),
                prefix,
                format!(
                    "this fault injects nothing; give {abort_hint}, or delay with delay_percent, with a share above 0"
                ),
            );
            return None;
        }
        Some(Checked {
            abort_percent,
            delay,
            delay_percent,
        })
    }

    /// A route's own `request_timeout`, `idle_timeout` and `max_body`;
    /// `forwards`: the route sends requests upstream (a request timeout
    /// bounds nothing on a route that answers itself).
    pub(super) fn route_limits(
        &mut self,
        file: &FileRoute,
        prefix: &str,
        forwards: bool,
    ) -> Option<RouteLimits> {
        let request_timeout = match &file.request_timeout {
            None => Some(None),
            Some(text) if !forwards => {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.request_timeout"),
                    "`request_timeout` bounds the exchange with an upstream, and a `redirect` or `direct` route has none; remove it",
                );
                None
            }
            Some(text) => self
                .check(text, format!("{prefix}.request_timeout"), |t| {
                    duration::parse_nonzero(t)
                })
                .map(Some),
        };
        let idle_timeout = match &file.idle_timeout {
            None => Some(None),
            Some(text) => self
                .check(text, format!("{prefix}.idle_timeout"), |t| {
                    duration::parse_nonzero(t)
                })
                .map(Some),
        };
        let max_body = match &file.max_body {
            None => Some(None),
            Some(value) => self
                .check(value, format!("{prefix}.max_body"), |&Int(n)| {
                    u64::try_from(n).map_err(|_| {
                        format!("max_body {n} is negative; give a number of bytes (0 refuses any body), or leave it out for the listener's")
                    })
                })
                .map(Some),
        };
        Some(RouteLimits {
            request_timeout: request_timeout?,
            idle_timeout: idle_timeout?,
            max_body: max_body?,
        })
    }
}
