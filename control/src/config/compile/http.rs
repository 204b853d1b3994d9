//! An HTTP listener's settings: limits, timeouts, `trust_forwarded`, and
//! the keys that only HTTP listeners take.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use dataplane::proto::h1::path::{EncodedSlashes, PathRules};
use dataplane::table::route::{HttpLimits, HttpService, HttpTimeouts, Route, Routes};
use dataplane::table::tally::HttpTally;
use dataplane::table::Service;
use toml::Spanned;

use super::{Builder, Clusters};
use crate::config::duration;
use crate::config::file::{FileListener, Int};
use crate::config::tally::Tallies;

/// Default `header_timeout`: a client on a slow mobile link sends a head of
/// a few KiB in well under this; one that takes longer is likely holding
/// the connection open on purpose (slowloris).
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `request_timeout`: generous for an ordinary API call, short
/// enough that a hung upstream does not pin client connections for long.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `send_timeout`.
pub(crate) const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `max_request_line`: what common servers accept (nginx's large
/// header buffer, 8 KiB).
pub(crate) const DEFAULT_MAX_REQUEST_LINE: usize = 8192;
/// Default `max_header_bytes`: 60 KiB, room for large cookies and tokens.
pub(crate) const DEFAULT_MAX_HEADER_BYTES: usize = 60 * 1024;
/// Default `max_headers`: more than any ordinary client sends.
pub(crate) const DEFAULT_MAX_HEADERS: usize = 100;

/// `max_request_line` range: below 64 bytes not even a short URL fits.
const MAX_REQUEST_LINE: RangeInclusive<i64> = 64..=65536;
/// `max_header_bytes` range: from 1 KiB to 1 MiB, the most a worker
/// buffers for one head.
const MAX_HEADER_BYTES: RangeInclusive<i64> = 1024..=1_048_576;
/// `max_headers` range. The upper end is the HTTP/1 parser's fixed capacity
/// of header slots (`dataplane::proto::h1::MAX_HEADERS_CAP`, 512): it cannot
/// count past it.
const MAX_HEADERS: RangeInclusive<i64> = 1..=512;

/// An HTTP listener's service before its idle timeout (a key shared with TCP
/// listeners, checked by the caller) is known.
pub(super) struct HttpParts {
    limits: HttpLimits,
    path_rules: PathRules,
    header: Duration,
    request: Duration,
    send: Duration,
    trust_forwarded: bool,
    routes: Vec<Route>,
    tally: Arc<HttpTally>,
    tls: Option<dataplane::table::route::ListenerTls>,
    access_log: Option<dataplane::table::access::AccessLog>,
    tracing: Option<dataplane::trace::context::Threshold>,
}

impl HttpParts {
    /// The listener's service, with `idle` as its keep-alive timeout.
    pub(super) fn finish(self, idle: Duration) -> Service {
        Service::Http(Arc::new(HttpService {
            limits: self.limits,
            path_rules: self.path_rules,
            timeouts: HttpTimeouts {
                header: self.header,
                request: self.request,
                send: self.send,
                idle,
            },
            trust_forwarded: self.trust_forwarded,
            routes: Routes::new(self.routes),
            tally: self.tally,
            tls: self.tls,
            access_log: self.access_log,
            tracing: self.tracing,
        }))
    }
}

impl Builder<'_> {
    /// Checks an HTTP listener: no `cluster`, at least one route, and its
    /// limits and timeouts. `listener` is its name, for the tallies.
    pub(super) fn http_service(
        &mut self,
        table: &Spanned<FileListener>,
        prefix: &str,
        listener: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
    ) -> Option<HttpParts> {
        let file = table.get_ref();
        if let Some(cluster) = &file.cluster {
            self.report(
                Some(cluster.span()),
                format!("{prefix}.cluster"),
                format!(
                    "an http listener sends each request where its routes say; move `cluster = {:?}` into a [[listeners.routes]] entry (a route with no conditions matches every request)",
                    cluster.get_ref()
                ),
            );
        }
        if let Some(fault) = &file.fault {
            self.report(
                Some(fault.span()),
                format!("{prefix}.fault"),
                "an http listener injects faults per route; move this `fault` into the [[listeners.routes]] entries it is for (a route's fault takes abort_status and header too)",
            );
        }
        let path_rules = self.path_rules(file, prefix);
        let routes = match &file.routes {
            None => {
                self.missing(
                    table,
                    prefix,
                    "routes",
                    "an http listener needs at least one [[listeners.routes]] entry",
                );
                None
            }
            Some(routes) if routes.is_empty() => {
                self.report(
                    Some(table.span()),
                    format!("{prefix}.routes"),
                    "no routes listed; an http listener needs at least one [[listeners.routes]] entry",
                );
                None
            }
            Some(routes) => {
                // Routes are checked against the rules their requests are
                // normalized by; with a broken rule, against the defaults
                // (the rule's own error is reported).
                let rules = path_rules.unwrap_or_default();
                self.routes_under(routes, prefix, listener, clusters, tallies, &rules)
            }
        };

        let header = self.timeout(&file.header_timeout, prefix, "header_timeout");
        let request = self.timeout(&file.request_timeout, prefix, "request_timeout");
        let send = self.timeout(&file.send_timeout, prefix, "send_timeout");
        let header = header.unwrap_or(Some(DEFAULT_HEADER_TIMEOUT));
        let request = request.unwrap_or(Some(DEFAULT_REQUEST_TIMEOUT));
        let send = send.unwrap_or(Some(DEFAULT_SEND_TIMEOUT));
        if let (Some(request), Some(files)) = (request, &file.routes) {
            self.check_per_try_timeouts(files, prefix, request);
        }

        let tls = match &file.tls {
            None => Some(None),
            Some(table) => self.tls(table, &format!("{prefix}.tls"), true).map(Some),
        };
        let access_log = match &file.access_log {
            None => Some(None),
            Some(table) => self.access_log(table, prefix, tallies).map(Some),
        };
        let limits = self.limits(file, prefix);
        let trust_forwarded = file.trust_forwarded.as_ref().is_some_and(|t| *t.get_ref());
        let cluster_refused = file.cluster.is_some() || file.fault.is_some();

        let parts = HttpParts {
            limits: limits?,
            path_rules: path_rules?,
            header: header?,
            request: request?,
            send: send?,
            trust_forwarded,
            routes: routes?,
            tally: tallies.listener(listener),
            tls: tls?,
            access_log: access_log?,
            tracing: self.trace_sample,
        };
        (!cluster_refused).then_some(parts)
    }

    /// Reports every HTTP-only key a TCP listener has.
    pub(super) fn refuse_http_keys(&mut self, file: &FileListener, prefix: &str) {
        let spans = [
            (
                "header_timeout",
                file.header_timeout.as_ref().map(Spanned::span),
            ),
            (
                "request_timeout",
                file.request_timeout.as_ref().map(Spanned::span),
            ),
            (
                "send_timeout",
                file.send_timeout.as_ref().map(Spanned::span),
            ),
            (
                "max_request_line",
                file.max_request_line.as_ref().map(Spanned::span),
            ),
            (
                "max_header_bytes",
                file.max_header_bytes.as_ref().map(Spanned::span),
            ),
            ("max_headers", file.max_headers.as_ref().map(Spanned::span)),
            ("max_body", file.max_body.as_ref().map(Spanned::span)),
            ("access_log", file.access_log.as_ref().map(Spanned::span)),
            (
                "trust_forwarded",
                file.trust_forwarded.as_ref().map(Spanned::span),
            ),
            (
                "merge_slashes",
                file.merge_slashes.as_ref().map(Spanned::span),
            ),
            (
                "encoded_slashes",
                file.encoded_slashes.as_ref().map(Spanned::span),
            ),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                self.report(
                    Some(span),
                    format!("{prefix}.{key}"),
                    format!("`{key}` applies to http listeners only; remove it, or set protocol = \"http\""),
                );
            }
        }
        if let Some(first) = file.routes.as_ref().and_then(|r| r.first()) {
            self.report(
                Some(first.span()),
                format!("{prefix}.routes"),
                "a tcp listener forwards every connection to its `cluster` and has no routes; set protocol = \"http\" to route requests",
            );
        }
    }

    /// A timeout key: `None` when absent, `Some(None)` when invalid.
    fn timeout(
        &mut self,
        value: &Option<Spanned<String>>,
        prefix: &str,
        key: &str,
    ) -> Option<Option<Duration>> {
        let text = value.as_ref()?;
        Some(self.check(text, format!("{prefix}.{key}"), |t| {
            duration::parse_nonzero(t)
        }))
    }

    /// `merge_slashes` and `encoded_slashes`.
    fn path_rules(&mut self, file: &FileListener, prefix: &str) -> Option<PathRules> {
        let merge_slashes = file
            .merge_slashes
            .as_ref()
            .map_or(PathRules::DEFAULT.merge_slashes, |m| *m.get_ref());
        let encoded_slashes = match &file.encoded_slashes {
            None => Some(PathRules::DEFAULT.encoded_slashes),
            Some(text) => self.check(text, format!("{prefix}.encoded_slashes"), |t| {
                match t.as_str() {
                    "reject" => Ok(EncodedSlashes::Reject),
                    "pass" => Ok(EncodedSlashes::Pass),
                    other => Err(format!(
                        "unknown encoded_slashes {other:?}; write \"reject\" (refuse %2F, %5C and \\ in paths with 400, the default) or \"pass\" (forward them as they are)"
                    )),
                }
            }),
        };
        Some(PathRules {
            merge_slashes,
            encoded_slashes: encoded_slashes?,
        })
    }

    fn limits(&mut self, file: &FileListener, prefix: &str) -> Option<HttpLimits> {
        let max_request_line = self.bounded(
            &file.max_request_line,
            prefix,
            "max_request_line",
            MAX_REQUEST_LINE,
            "bytes",
        );
        let max_header_bytes = self.bounded(
            &file.max_header_bytes,
            prefix,
            "max_header_bytes",
            MAX_HEADER_BYTES,
            "bytes",
        );
        let max_headers = self.bounded(
            &file.max_headers,
            prefix,
            "max_headers",
            MAX_HEADERS,
            "header fields (the HTTP parser's capacity is 512)",
        );
        let max_body = match &file.max_body {
            None => Some(None),
            Some(value) => self
                .check(value, format!("{prefix}.max_body"), |&Int(n)| {
                    u64::try_from(n).map_err(|_| {
                        format!("max_body {n} is negative; give a number of bytes (0 refuses any body), or leave it out for no limit")
                    })
                })
                .map(Some),
        };
        let max_request_line = max_request_line?.unwrap_or(DEFAULT_MAX_REQUEST_LINE);
        let max_header_bytes_given = max_header_bytes?;
        let max_header_bytes = max_header_bytes_given.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
        if max_header_bytes < max_request_line {
            // Blame the key the file wrote; with both written, the head's.
            let (span, key, default) = match (&file.max_header_bytes, &file.max_request_line) {
                (Some(bytes), _) => (bytes.span(), "max_header_bytes", ""),
                (None, Some(line)) => (line.span(), "max_request_line", " (the default)"),
                (None, None) => unreachable!("the defaults are in order"),
            };
            self.report(
                Some(span),
                format!("{prefix}.{key}"),
                format!(
                    "max_header_bytes {max_header_bytes}{default} is below max_request_line {max_request_line}; the request line is part of the head, so raise max_header_bytes to at least {max_request_line}"
                ),
            );
            return None;
        }
        Some(HttpLimits {
            max_request_line,
            max_header_bytes,
            max_headers: max_headers?.unwrap_or(DEFAULT_MAX_HEADERS),
            max_body: max_body?,
        })
    }

    /// An integer key within `range`: `Some(None)` when absent, `None` when
    /// invalid.
    fn bounded(
        &mut self,
        value: &Option<Spanned<Int>>,
        prefix: &str,
        key: &str,
        range: RangeInclusive<i64>,
        unit: &str,
    ) -> Option<Option<usize>> {
        let Some(value) = value else {
            return Some(None);
        };
        self.check(
            value,
            format!("{prefix}.{key}"),
            |&Int(n)| match usize::try_from(n) {
                Ok(v) if range.contains(&n) => Ok(v),
                _ => Err(format!(
                    "{key} {n} is out of range: from {} to {} {unit}",
                    range.start(),
                    range.end()
                )),
            },
        )
        .map(Some)
    }
}
