//! Rate limit keys: a route's `rate_limit = { ... }` and a listener's
//! `connection_rate_limit = { ... }`.

use std::sync::Arc;

use dataplane::table::rate::{
    ConnectionLimit, KeyTable, RateKey, RateLimit, RateSettings, DEFAULT_MAX_KEYS, MAX_BURST,
    MAX_KEYS, MAX_RATE,
};
use toml::Spanned;

use super::route::header_name;
use super::Builder;
use crate::config::file::{FileConnectionRateLimit, FileListener, FileRateLimit, Int};
use crate::config::tally::Tallies;

/// How `key = "header:NAME"` begins.
const HEADER_PREFIX: &str = "header:";
/// Bytes of one key table slot (see `dataplane::table::rate::KeyTable`).
const SLOT_BYTES: u64 = 16;
/// The most the key tables of one configuration may take together:
/// 256 MiB, sixteen tables of the largest size. Each route's `max_keys` is
/// bounded, but a file with thousands of keyed routes could otherwise ask
/// for more memory than the machine has (twice over during a reload, while
/// the running table still holds its own).
pub(super) const MAX_KEY_TABLE_BYTES: u64 = 256 << 20;

impl Builder<'_> {
    /// Adds up the key tables the keyed `rate_limit`s of `listeners` ask
    /// for and refuses the one that takes the sum past
    /// [`MAX_KEY_TABLE_BYTES`] (then no table is allocated at all). Keys
    /// out of range are left to [`Builder::rate_limit`] to report.
    pub(super) fn key_table_budget(&mut self, listeners: &[Spanned<FileListener>]) {
        let mut keyed = Vec::new();
        for (i, listener) in listeners.iter().enumerate() {
            let routes = listener.get_ref().routes.as_deref().unwrap_or_default();
            for (j, route) in routes.iter().enumerate() {
                let Some(table) = &route.get_ref().rate_limit else {
                    continue;
                };
                let file = table.get_ref();
                if file.key.is_none() {
                    continue;
                }
                let max_keys = match &file.max_keys {
                    None => DEFAULT_MAX_KEYS,
                    Some(n) => match u32::try_from(n.get_ref().0) {
                        Ok(v) if (1..=MAX_KEYS).contains(&v) => v,
                        _ => continue,
                    },
                };
                keyed.push((i, j, table, max_keys));
            }
        }
        let Some((k, total)) = first_over(keyed.iter().map(|&(.., max_keys)| max_keys)) else {
            return;
        };
        let (i, j, table, _) = keyed[k];
        let prefix = format!("listeners[{i}].routes[{j}].rate_limit");
        let (span, key) = match &table.get_ref().max_keys {
            Some(n) => (n.span(), format!("{prefix}.max_keys")),
            None => (table.span(), prefix),
        };
        self.report(
            Some(span),
            key,
            format!(
                "the keyed rate limits up to this one would take {} MiB of key tables; a configuration may take at most {} MiB (16 bytes per slot): lower max_keys here or on other routes",
                total.div_ceil(1 << 20),
                MAX_KEY_TABLE_BYTES >> 20
            ),
        );
        self.key_tables_over = true;
    }

    /// A route's `rate_limit` table at key path `prefix`, for route `route`
    /// of listener `listener`: its buckets are the running route's when
    /// the settings are the same.
    pub(super) fn rate_limit(
        &mut self,
        table: &Spanned<FileRateLimit>,
        prefix: &str,
        listener: &Arc<str>,
        route: &Arc<str>,
        tallies: &Tallies,
    ) -> Option<RateLimit> {
        let file = table.get_ref();
        let per_second = match &file.requests_per_second {
            None => {
                self.missing(
                    table,
                    prefix,
                    "requests_per_second",
                    "e.g. rate_limit = { requests_per_second = 100 }",
                );
                None
            }
            Some(n) => self.rate(n, prefix, "requests_per_second", "requests"),
        };
        let burst = self.burst(file.burst.as_ref(), prefix, per_second);
        let key = match &file.key {
            None => Some(RateKey::Route),
            Some(text) => self.check(text, format!("{prefix}.key"), |t| rate_key(t)),
        };
        let max_keys = match &file.max_keys {
            None => Some(DEFAULT_MAX_KEYS),
            Some(n) => self.check(n, format!("{prefix}.max_keys"), |&Int(n)| {
                match u32::try_from(n) {
                    Ok(v) if (1..=MAX_KEYS).contains(&v) => Ok(v),
                    _ => Err(format!(
                        "max_keys {n} is out of range: from 1 to {MAX_KEYS} (16 bytes each, allocated at once)"
                    )),
                }
            }),
        };
        if let (Some(n), Some(RateKey::Route)) = (&file.max_keys, &key) {
            self.report(
                Some(n.span()),
                format!("{prefix}.max_keys"),
                "max_keys is for a keyed limit: add key = \"client_address\" or key = \"header:NAME\", or leave max_keys out",
            );
            return None;
        }
        let settings = RateSettings {
            per_second: per_second?,
            burst: burst?,
            key: key?,
            max_keys: max_keys?,
        };
        if self.key_tables_over {
            return None;
        }
        Some(tallies.rate_limit(listener, route, settings))
    }

    /// A listener's `connection_rate_limit` table at key path `prefix`.
    pub(super) fn connection_rate_limit(
        &mut self,
        table: &Spanned<FileConnectionRateLimit>,
        prefix: &str,
        listener: &Arc<str>,
        tallies: &Tallies,
    ) -> Option<ConnectionLimit> {
        let file = table.get_ref();
        let per_second = match &file.connections_per_second {
            None => {
                self.missing(
                    table,
                    prefix,
                    "connections_per_second",
                    "e.g. connection_rate_limit = { connections_per_second = 100 }",
                );
                None
            }
            Some(n) => self.rate(n, prefix, "connections_per_second", "connections"),
        };
        let burst = self.burst(file.burst.as_ref(), prefix, per_second);
        let settings = RateSettings {
            per_second: per_second?,
            burst: burst?,
            key: RateKey::Route,
            max_keys: 0,
        };
        Some(tallies.connection_limit(listener, settings))
    }

    /// A rate at `prefix.key`: from 1 to [`MAX_RATE`] `what` per second.
    fn rate(&mut self, n: &Spanned<Int>, prefix: &str, key: &str, what: &str) -> Option<u32> {
        self.check(n, format!("{prefix}.{key}"), |&Int(n)| {
            match u32::try_from(n) {
                Ok(v) if (1..=MAX_RATE).contains(&v) => Ok(v),
                _ => Err(format!(
                    "{key} {n} is out of range: from 1 to {MAX_RATE} {what} per second (to refuse everything, answer with a direct response)"
                )),
            }
        })
    }

    /// A `burst` at `prefix.burst`, or the default for `per_second`.
    fn burst(
        &mut self,
        burst: Option<&Spanned<Int>>,
        prefix: &str,
        per_second: Option<u32>,
    ) -> Option<u32> {
        match burst {
            None => per_second.map(RateSettings::default_burst),
            Some(n) => self.check(
                n,
                format!("{prefix}.burst"),
                |&Int(n)| match u32::try_from(n) {
                    Ok(v) if (1..=MAX_BURST).contains(&v) => Ok(v),
                    _ => Err(format!(
                        "burst {n} is out of range: from 1 (no two at once) to {MAX_BURST}"
                    )),
                },
            ),
        }
    }
}

/// A `key`: `client_address` or `header:NAME`.
fn rate_key(text: &str) -> Result<RateKey, String> {
    if text == "client_address" {
        return Ok(RateKey::ClientAddress);
    }
    match text.strip_prefix(HEADER_PREFIX) {
        Some(name) => header_name(name)
            .map(RateKey::Header)
            .map_err(|e| format!("in key {text:?}: {e}")),
        None => Err(format!(
            "unknown rate limit key {text:?} (accepted: \"client_address\", \"header:NAME\" such as \"header:x-api-key\"; leave key out for one bucket for the route)"
        )),
    }
}

/// Of key tables for these `max_keys`, in order, the first that takes
/// their sum past [`MAX_KEY_TABLE_BYTES`], and the sum then.
fn first_over(max_keys: impl IntoIterator<Item = u32>) -> Option<(usize, u64)> {
    let mut total = 0u64;
    for (k, max_keys) in max_keys.into_iter().enumerate() {
        total += KeyTable::slots_for(max_keys) as u64 * SLOT_BYTES;
        if total > MAX_KEY_TABLE_BYTES {
            return Some((k, total));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_table_budget_is_sixteen_of_the_largest() {
        assert_eq!(first_over([MAX_KEYS; 16]), None);
        assert_eq!(first_over([MAX_KEYS; 17]), Some((16, 272 << 20)));
        // Sizes are counted as allocated: rounded up to a power of two.
        assert_eq!(first_over([MAX_KEYS / 2 + 1; 16]), None);
        assert_eq!(first_over([1; 1000]), None);
        assert_eq!(
            first_over(std::iter::repeat_n(DEFAULT_MAX_KEYS, 1025)),
            Some((1024, (1025 * 256) << 10))
        );
    }
}
