//! A split route's `rollout = { ... }`: the plan the control agent follows
//! to move weight from the stable cluster to the canary (see
//! `crate::rollout`).

use std::sync::Arc;
use std::time::Duration;

use dataplane::table::rollout::Rollout;
use toml::Spanned;

use super::Builder;
use crate::config::duration;
use crate::config::file::{FileRollout, FileSplit, Int, Ratio};

/// Default `steps`: a small share first, then doubling-ish.
pub(crate) const DEFAULT_STEPS: [u32; 5] = [5, 10, 25, 50, 100];
/// Default `interval`: long enough for a p99 at moderate traffic.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `max_error_rate_delta`: one point of percentage.
pub(crate) const DEFAULT_MAX_ERROR_RATE_DELTA: f64 = 0.01;
/// Default `max_p99_ratio`.
pub(crate) const DEFAULT_MAX_P99_RATIO: f64 = 1.5;
/// Default `min_requests`: below a few hundred requests a p99 is one or
/// two requests, and a 1% error rate two failures.
pub(crate) const DEFAULT_MIN_REQUESTS: u64 = 200;
/// Default `min_p99`: microsecond differences between two fast clusters
/// are noise, not a regression.
pub(crate) const DEFAULT_MIN_P99: Duration = Duration::from_millis(5);
/// Shortest `interval`: evaluations read every worker's figures.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Largest `min_requests`.
const MAX_MIN_REQUESTS: i64 = 1_000_000_000;

/// A checked rollout, with the cluster names of its two targets.
pub(super) struct Checked {
    pub(super) plan: Rollout,
    pub(super) canary: Arc<str>,
    pub(super) stable: Arc<str>,
}

impl Builder<'_> {
    /// Checks `table`, the rollout of the route at `prefix` whose split is
    /// `split` (`None`: the route has no split).
    pub(super) fn rollout(
        &mut self,
        table: &Spanned<FileRollout>,
        prefix: &str,
        split: Option<&Spanned<Vec<Spanned<FileSplit>>>>,
    ) -> Option<Checked> {
        let key = format!("{prefix}.rollout");
        let Some(split) = split else {
            self.report(
                Some(table.span()),
                key,
                "`rollout` moves the weights of a `split` between its canary and stable clusters, and this route has no split; write split = [{ cluster = \"v1\", weight = 100 }, { cluster = \"v2\", weight = 0 }]",
            );
            return None;
        };
        let file = table.get_ref();
        let entries: Vec<Option<&str>> = split
            .get_ref()
            .iter()
            .map(|e| e.get_ref().cluster.as_ref().map(|c| c.get_ref().as_str()))
            .collect();
        let mut ok = true;
        let mut side = |b: &mut Self, value: &Option<Spanned<String>>, name: &str| {
            let Some(text) = value else {
                b.missing(
                    table,
                    &key,
                    name,
                    "name one of the split's clusters, e.g. canary = \"v2\", stable = \"v1\"",
                );
                ok = false;
                return None;
            };
            let found = b.check(text, format!("{key}.{name}"), |t| {
                entries
                    .iter()
                    .position(|e| *e == Some(t.as_str()))
                    .ok_or_else(|| format!("cluster `{t}` is not in this route's split"))
            });
            ok &= found.is_some();
            found
        };
        let canary = side(self, &file.canary, "canary");
        let stable = side(self, &file.stable, "stable");
        if let (Some(c), Some(s), Some(text)) = (canary, stable, &file.stable) {
            if c == s {
                self.report(
                    Some(text.span()),
                    format!("{key}.stable"),
                    "the stable cluster is the canary itself; name the cluster the canary replaces",
                );
                ok = false;
            }
        }
        if entries.len() > 2 {
            self.report(
                Some(split.span()),
                format!("{prefix}.split"),
                format!(
                    "a route with a rollout splits between its canary and its stable cluster only, and this split has {} entries; move the other clusters to a route of their own",
                    entries.len()
                ),
            );
            ok = false;
        }

        let steps = match &file.steps {
            None => Some(Arc::from(DEFAULT_STEPS.as_slice())),
            Some(list) => self.steps(list, &format!("{key}.steps")),
        };
        let interval = match &file.interval {
            None => Some(DEFAULT_INTERVAL),
            Some(text) => self.check(text, format!("{key}.interval"), |t| {
                let d = duration::parse(t)?;
                if d < MIN_INTERVAL {
                    return Err(format!(
                        "interval {t:?} is shorter than 100ms; each evaluation needs a few hundred requests to judge"
                    ));
                }
                Ok(d)
            }),
        };
        let max_error_rate_delta = match &file.max_error_rate_delta {
            None => Some(DEFAULT_MAX_ERROR_RATE_DELTA),
            Some(value) => self.check(value, format!("{key}.max_error_rate_delta"), |&Ratio(r)| {
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(format!(
                        "{r} is out of range: an error rate difference is from 0 to 1 (0.01 is one point of percentage)"
                    ))
                }
            }),
        };
        let max_p99_ratio = match &file.max_p99_ratio {
            None => Some(DEFAULT_MAX_P99_RATIO),
            Some(value) => self.check(value, format!("{key}.max_p99_ratio"), |&Ratio(r)| {
                if r.is_finite() && (1.0..=1000.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(format!(
                        "{r} is out of range: from 1 (the canary may be no slower than stable) to 1000"
                    ))
                }
            }),
        };
        let min_requests = match &file.min_requests {
            None => Some(DEFAULT_MIN_REQUESTS),
            Some(value) => self.check(value, format!("{key}.min_requests"), |&Int(n)| {
                if (1..=MAX_MIN_REQUESTS).contains(&n) {
                    Ok(n as u64)
                } else {
                    Err(format!(
                        "min_requests {n} is out of range: from 1 to {MAX_MIN_REQUESTS}"
                    ))
                }
            }),
        };
        let min_p99 = match &file.min_p99 {
            None => Some(DEFAULT_MIN_P99),
            Some(text) => self.check(text, format!("{key}.min_p99"), |t| duration::parse(t)),
        };
        let (c, s) = (canary?, stable?);
        let name = |i: usize| -> Option<Arc<str>> { entries[i].map(Arc::from) };
        let weight = |i: usize| {
            split.get_ref()[i]
                .get_ref()
                .weight
                .as_ref()
                .and_then(|w| u32::try_from(w.get_ref().0).ok())
        };
        let configured = (weight(c)?, weight(s)?);
        let plan = Rollout {
            canary: c,
            stable: s,
            steps: steps?,
            interval: interval?,
            max_error_rate_delta: max_error_rate_delta?,
            max_p99_ratio: max_p99_ratio?,
            min_requests: min_requests?,
            min_p99: min_p99?,
            configured,
        };
        if !ok {
            return None;
        }
        Some(Checked {
            plan,
            canary: name(c)?,
            stable: name(s)?,
        })
    }

    fn steps(&mut self, list: &Spanned<Vec<Spanned<Int>>>, key: &str) -> Option<Arc<[u32]>> {
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                key,
                "no steps listed; list the canary's shares in percent, ending with 100, e.g. [5, 10, 25, 50, 100]",
            );
            return None;
        }
        let mut steps: Vec<u32> = Vec::with_capacity(list.get_ref().len());
        let mut ok = true;
        for (k, value) in list.get_ref().iter().enumerate() {
            let previous = steps.last().copied();
            let step = self.check(value, format!("{key}[{k}]"), |&Int(n)| {
                let step = match u32::try_from(n) {
                    Ok(s) if (1..=100).contains(&s) => s,
                    _ => {
                        return Err(format!(
                            "step {n} is out of range: a share in percent, from 1 to 100"
                        ))
                    }
                };
                match previous {
                    Some(p) if p >= step => Err(format!(
                        "step {step} does not follow {p}: steps increase strictly"
                    )),
                    _ => Ok(step),
                }
            });
            match step {
                Some(s) => steps.push(s),
                None => ok = false,
            }
        }
        if ok && steps.last() != Some(&100) {
            self.report(
                Some(list.span()),
                key,
                "the last step must be 100: a rollout ends with the canary taking every request",
            );
            ok = false;
        }
        ok.then(|| steps.into())
    }
}
