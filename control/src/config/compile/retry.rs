//! Retry keys: a cluster's or a route's `retry = { ... }`, a cluster's
//! `retry_budget = { ... }`, and the check of a route's `per_try_timeout`
//! against its listener's `request_timeout`.

use std::time::Duration;

use dataplane::table::retry::{
    BudgetSettings, RetryOn, RetryPolicy, MAX_RETRIES, MAX_RETRY_BUFFER,
};
use toml::Spanned;

use super::Builder;
use crate::config::duration;
use crate::config::file::{FileRetry, FileRetryBudget, FileRoute, Int};

/// Most `retriable_status_codes` one policy may list.
const MAX_STATUSES: usize = 32;

impl Builder<'_> {
    /// A `retry = { ... }` table at key path `prefix` (the table's own
    /// path, e.g. `clusters[0].retry`); keys left out take the defaults.
    pub(super) fn retry_policy(
        &mut self,
        table: &Spanned<FileRetry>,
        prefix: &str,
    ) -> Option<RetryPolicy> {
        let file = table.get_ref();
        let key = |k: &str| format!("{prefix}.{k}");
        let defaults = RetryPolicy::default();
        let mut ok = true;

        let retries = match &file.retries {
            None => Some(defaults.retries),
            Some(n) => self.check(n, key("retries"), |&Int(n)| match u32::try_from(n) {
                Ok(v) if v <= MAX_RETRIES => Ok(v),
                _ => Err(format!(
                    "retries {n} is out of range: from 0 (never retry) to {MAX_RETRIES} attempts after the first"
                )),
            }),
        };
        let on = match &file.retry_on {
            None => Some(defaults.on),
            Some(list) => {
                let mut on = RetryOn::default();
                let mut all = true;
                for name in list.get_ref() {
                    let parsed = self.check(name, key("retry_on"), |t| {
                        RetryOn::named(t).ok_or_else(|| {
                            let known: Vec<&str> = RetryOn::NAMES.iter().map(|(_, n)| *n).collect();
                            format!(
                                "unknown retry condition {t:?} (accepted: {}; list single statuses in retriable_status_codes)",
                                known.join(", ")
                            )
                        })
                    });
                    match parsed {
                        Some(cond) => on = on.with(cond),
                        None => all = false,
                    }
                }
                all.then_some(on)
            }
        };
        let statuses = match &file.retriable_status_codes {
            None => Some(Vec::new()),
            Some(list) if list.get_ref().len() > MAX_STATUSES => {
                self.report(
                    Some(list.span()),
                    key("retriable_status_codes"),
                    format!(
                        "{} statuses listed; at most {MAX_STATUSES}",
                        list.get_ref().len()
                    ),
                );
                None
            }
            Some(list) => {
                let mut statuses = Vec::new();
                for s in list.get_ref() {
                    if let Some(code) = self.check(s, key("retriable_status_codes"), |&Int(n)| {
                        match u16::try_from(n) {
                            Ok(c) if (400..=599).contains(&c) => Ok(c),
                            _ => Err(format!(
                                "status {n} cannot be retried: only 4xx and 5xx answers are failures (from 400 to 599)"
                            )),
                        }
                    }) {
                        statuses.push(code);
                    }
                }
                (statuses.len() == list.get_ref().len()).then_some(statuses)
            }
        };
        let per_try_timeout = match &file.per_try_timeout {
            None => Some(None),
            Some(text) => self
                .check(text, key("per_try_timeout"), |t| duration::parse_nonzero(t))
                .map(Some),
        };
        let buffer = match &file.retry_buffer {
            None => Some(defaults.buffer),
            Some(n) => self.check(n, key("retry_buffer"), |&Int(n)| match u32::try_from(n) {
                Ok(v) if v <= MAX_RETRY_BUFFER => Ok(v),
                _ => Err(format!(
                    "retry_buffer {n} is out of range: from 0 (a request with a body is never sent twice) to {MAX_RETRY_BUFFER} bytes"
                )),
            }),
        };
        let pause = |this: &mut Self, v: &Option<Spanned<String>>, k: &str, default| match v {
            None => Some(default),
            Some(text) => this.check(text, key(k), |t| {
                let d = duration::parse(t)?;
                if d > Duration::from_secs(10) {
                    return Err(format!("{k} {t} is too long: at most 10s"));
                }
                Ok(d)
            }),
        };
        let backoff_base = pause(
            self,
            &file.backoff_base,
            "backoff_base",
            defaults.backoff_base,
        );
        let backoff_max = pause(self, &file.backoff_max, "backoff_max", defaults.backoff_max);
        if let (Some(base), Some(max), Some(text)) = (backoff_base, backoff_max, &file.backoff_max)
        {
            if max < base {
                self.report(
                    Some(text.span()),
                    key("backoff_max"),
                    format!(
                        "backoff_max {} is shorter than backoff_base {}",
                        duration::format(max),
                        duration::format(base)
                    ),
                );
                ok = false;
            }
        }
        let flag = |v: &Option<Spanned<bool>>| v.as_ref().is_some_and(|b| *b.get_ref());
        let (retries, on, statuses, per_try_timeout, buffer, backoff_base, backoff_max) = (
            retries?,
            on?,
            statuses?,
            per_try_timeout?,
            buffer?,
            backoff_base?,
            backoff_max?,
        );
        ok.then(|| RetryPolicy {
            retries,
            on,
            statuses: statuses.into_boxed_slice(),
            per_try_timeout,
            non_idempotent: flag(&file.retry_non_idempotent),
            buffer,
            backoff_base,
            backoff_max,
            leave_to_earlier_hop: flag(&file.leave_to_earlier_hop),
        })
    }

    /// A cluster's `retry_budget = { ... }` at key path `prefix`.
    pub(super) fn retry_budget(
        &mut self,
        table: &Spanned<FileRetryBudget>,
        prefix: &str,
    ) -> Option<BudgetSettings> {
        let file = table.get_ref();
        let defaults = BudgetSettings::default();
        let percent = match &file.percent {
            None => Some(defaults.percent),
            Some(n) => self.check(
                n,
                format!("{prefix}.percent"),
                |&Int(n)| match u32::try_from(n) {
                    Ok(v) if v <= 100 => Ok(v),
                    _ => Err(format!(
                        "percent {n} is out of range: from 0 to 100 retries per 100 requests"
                    )),
                },
            ),
        };
        let min_per_second = match &file.min_per_second {
            None => Some(defaults.min_per_second),
            Some(n) => {
                self.check(
                    n,
                    format!("{prefix}.min_per_second"),
                    |&Int(n)| match u32::try_from(n) {
                        Ok(v) if v <= 100_000 => Ok(v),
                        _ => Err(format!(
                            "min_per_second {n} is out of range: from 0 to 100000"
                        )),
                    },
                )
            }
        };
        Some(BudgetSettings {
            percent: percent?,
            min_per_second: min_per_second?,
        })
    }

    /// Refuses a route `per_try_timeout` that is not shorter than the
    /// request timeout of the route's exchanges (its own `request_timeout`
    /// if it has a valid one, else its listener's, `request`), which
    /// bounds every attempt together: such a timeout could never fire.
    pub(super) fn check_per_try_timeouts(
        &mut self,
        routes: &[Spanned<FileRoute>],
        prefix: &str,
        request: Duration,
    ) {
        for (j, route) in routes.iter().enumerate() {
            let Some(retry) = &route.get_ref().retry else {
                continue;
            };
            let own = route
                .get_ref()
                .request_timeout
                .as_ref()
                .and_then(|t| duration::parse_nonzero(t.get_ref()).ok());
            let (request, whose) = match own {
                Some(own) => (own, "the route's"),
                None => (request, "the listener's"),
            };
            let Some(text) = &retry.get_ref().per_try_timeout else {
                continue;
            };
            let Ok(per_try) = duration::parse_nonzero(text.get_ref()) else {
                continue;
            };
            if per_try >= request {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.routes[{j}].retry.per_try_timeout"),
                    format!(
                        "per_try_timeout {} is not shorter than {whose} request_timeout {}, which bounds every attempt together; shorten it or raise request_timeout",
                        text.get_ref(),
                        duration::format(request)
                    ),
                );
            }
        }
    }
}
