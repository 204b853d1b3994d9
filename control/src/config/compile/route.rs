//! An HTTP listener's routes: conditions, one action, header edits.
//!
//! Every string a route compares is stored in the form the data plane
//! matches it in (host and header names lower-case, a `*.` host as its
//! suffix), so that matching costs comparisons only.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use dataplane::proto::h1::path::{self, PathRules};
use dataplane::table::route::{
    DirectResponse, Forward, HeaderEdits, HeaderMatch, HeaderTest, HostMatch, PathMatch, Redirect,
    Route, RouteAction, RouteMatch, Target,
};
use toml::Spanned;

use super::authz::{spiffe_id, PEER_IDENTITY_HEADER};
use super::{cluster_id, Builder, Clusters};
use crate::config::file::{
    FileDirect, FileHeaderEdits, FileHeaderMatch, FileRedirect, FileRoute, FileSplit, Int,
};
use crate::config::tally::Tallies;

/// Header names ringway writes itself: message framing and hop-by-hop
/// fields. A route may not remove, set or add them.
const OWNED_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "trailer",
];

/// Statuses a redirect may have.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
/// Status of a redirect that gives none: permanent, as most redirects in a
/// configuration file are (http to https, an old path to a new one).
const DEFAULT_REDIRECT_STATUS: u16 = 301;

/// Which of a route's header edits is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

impl Builder<'_> {
    /// Checks the routes of listener `listener` (its name, for the tallies),
    /// whose key path is `prefix`, as if its request paths were normalized
    /// by the default rules (for a listener of unknown protocol, whose
    /// routes are only checked).
    pub(super) fn routes(
        &mut self,
        files: &[Spanned<FileRoute>],
        prefix: &str,
        listener: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
    ) -> Option<Vec<Route>> {
        let rules = PathRules::DEFAULT;
        self.routes_under(files, prefix, listener, clusters, tallies, &rules)
    }

    /// Checks the routes of an HTTP listener whose request paths are
    /// normalized by `rules`; see [`Builder::routes`].
    pub(super) fn routes_under(
        &mut self,
        files: &[Spanned<FileRoute>],
        prefix: &str,
        listener: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
        rules: &PathRules,
    ) -> Option<Vec<Route>> {
        let mut routes = Vec::with_capacity(files.len());
        let mut first_use: HashMap<&str, Range<usize>> = HashMap::new();
        for (j, table) in files.iter().enumerate() {
            let prefix = format!("{prefix}.routes[{j}]");
            let file = table.get_ref();
            let name = self.name(table, file.name.as_ref(), &prefix, "route", &mut first_use);
            let route_key = name.clone().unwrap_or_else(|| Arc::from(""));
            let Some(matcher) = self.route_match(file, &prefix, rules) else {
                // Still check the rest, for its errors.
                let _ = self.action(
                    table, &prefix, listener, &route_key, clusters, tallies, rules,
                );
                let _ = self.edits_of(file, &prefix);
                let forwards = file.cluster.is_some() || file.split.is_some();
                let _ = self.route_limits(file, &prefix, forwards);
                if let Some(f) = &file.fault {
                    let _ = self.route_fault(f, &prefix);
                }
                continue;
            };
            let action = self.action(
                table, &prefix, listener, &route_key, clusters, tallies, rules,
            );
            let edits = self.edits_of(file, &prefix);
            let forwards = file.cluster.is_some() || file.split.is_some();
            let limits = self.route_limits(file, &prefix, forwards);
            let fault = match &file.fault {
                None => Some(None),
                Some(f) => self.route_fault(f, &prefix).map(Some),
            };
            let rate_limit = match &file.rate_limit {
                None => Some(None),
                Some(t) => {
                    let prefix = format!("{prefix}.rate_limit");
                    self.rate_limit(t, &prefix, listener, &route_key, tallies)
                        .map(Some)
                }
            };
            if let (
                Some(name),
                Some(action),
                Some((request_headers, response_headers)),
                Some(limits),
                Some(fault),
                Some(rate_limit),
            ) = (name, action, edits, limits, fault, rate_limit)
            {
                let fault = fault.map(|f| Box::new(f.marking_delays(&response_headers)));
                routes.push(Route {
                    rate_limit,
                    tally: tallies.route(listener, &name),
                    name,
                    matcher,
                    action,
                    request_headers,
                    response_headers,
                    limits,
                    fault,
                });
            }
        }
        (routes.len() == files.len()).then_some(routes)
    }

    fn route_match(
        &mut self,
        file: &FileRoute,
        prefix: &str,
        rules: &PathRules,
    ) -> Option<RouteMatch> {
        let mut ok = true;
        let host = match &file.host {
            None => None,
            Some(text) => {
                let host = self.check(text, format!("{prefix}.host"), |t| host_match(t));
                ok &= host.is_some();
                host
            }
        };

        let path = match (&file.path, &file.path_prefix) {
            (Some(exact), Some(prefix_text)) => {
                let line = self.source.line(&exact.span());
                self.report(
                    Some(prefix_text.span()),
                    format!("{prefix}.path_prefix"),
                    format!("a route takes `path` or `path_prefix`, not both; this one also has `path` (line {line})"),
                );
                ok = false;
                None
            }
            (Some(exact), None) => {
                let path = self.check(exact, format!("{prefix}.path"), |t| {
                    path(t, "path").and_then(|p| normal(p, "path", Whole::Yes, rules))
                });
                ok &= path.is_some();
                path.map(PathMatch::Exact)
            }
            (None, Some(text)) => {
                let path = self.check(text, format!("{prefix}.path_prefix"), |t| {
                    path(t, "path_prefix").and_then(|p| normal(p, "path_prefix", Whole::No, rules))
                });
                ok &= path.is_some();
                path.map(PathMatch::Prefix)
            }
            (None, None) => None,
        };

        let methods = match &file.methods {
            None => Vec::new(),
            Some(list) if list.get_ref().is_empty() => {
                self.report(
                    Some(list.span()),
                    format!("{prefix}.methods"),
                    "no methods listed; list at least one, e.g. [\"GET\"], or leave `methods` out to accept any",
                );
                ok = false;
                Vec::new()
            }
            Some(list) => {
                let mut methods: Vec<Box<[u8]>> = Vec::with_capacity(list.get_ref().len());
                for (k, text) in list.get_ref().iter().enumerate() {
                    let key = format!("{prefix}.methods[{k}]");
                    match self.check(text, &key, |t| method(t)) {
                        Some(m) if methods.contains(&m) => {
                            self.report(
                                Some(text.span()),
                                key,
                                format!("method {:?} is listed twice", text.get_ref()),
                            );
                            ok = false;
                        }
                        Some(m) => methods.push(m),
                        None => ok = false,
                    }
                }
                methods
            }
        };

        let mut headers = Vec::new();
        if let Some(list) = &file.headers {
            if list.get_ref().is_empty() {
                self.report(
                    Some(list.span()),
                    format!("{prefix}.headers"),
                    "no header conditions listed; list at least one, e.g. [{ name = \"x-canary\", exact = \"1\" }], or leave `headers` out",
                );
                ok = false;
            }
            for (k, entry) in list.get_ref().iter().enumerate() {
                match self.header_match(entry, &format!("{prefix}.headers[{k}]")) {
                    Some(m) => headers.push(m),
                    None => ok = false,
                }
            }
        }

        let peer_identity = match &file.peer_identity {
            None => None,
            Some(text) => {
                let id = self.check(text, format!("{prefix}.peer_identity"), |t| spiffe_id(t));
                ok &= id.is_some();
                id
            }
        };

        ok.then_some(RouteMatch {
            host,
            path,
            methods,
            headers,
            peer_identity,
        })
    }

    /// One header condition (of a route or an authorization rule).
    pub(super) fn header_match(
        &mut self,
        entry: &Spanned<FileHeaderMatch>,
        prefix: &str,
    ) -> Option<HeaderMatch> {
        let file = entry.get_ref();
        let name = match &file.name {
            None => {
                self.missing(entry, prefix, "name", "e.g. name = \"x-canary\"");
                None
            }
            Some(text) => self.check(text, format!("{prefix}.name"), |t| {
                let name = header_name(t)?;
                if &*name == PEER_IDENTITY_HEADER {
                    return Err(format!(
                        "`{PEER_IDENTITY_HEADER}` is the header ringway writes upstream with the verified peer identity; a client can send its own, so no condition may look at it: match the identity itself with `peer_identity` (routes) or `from` (authorization rules)"
                    ));
                }
                Ok(name)
            }),
        };
        let mut tests: Vec<(&str, Range<usize>, Option<HeaderTest>)> = Vec::new();
        if let Some(text) = &file.exact {
            let value = self.check(text, format!("{prefix}.exact"), |t| {
                header_value(t).map(|v| HeaderTest::Exact(v.as_bytes().into()))
            });
            tests.push(("exact", text.span(), value));
        }
        if let Some(text) = &file.prefix {
            let value = self.check(text, format!("{prefix}.prefix"), |t| {
                header_value(t).map(|v| HeaderTest::Prefix(v.as_bytes().into()))
            });
            tests.push(("prefix", text.span(), value));
        }
        if let Some(present) = &file.present {
            let test = if *present.get_ref() {
                Some(HeaderTest::Present)
            } else {
                self.report(
                    Some(present.span()),
                    format!("{prefix}.present"),
                    "`present = false` is not a condition ringway has; write `present = true` to require the header, or leave the condition out",
                );
                None
            };
            tests.push(("present", present.span(), test));
        }
        let test = match tests.as_slice() {
            [] => {
                self.report(
                    Some(entry.span()),
                    prefix,
                    "no test; give exactly one of `exact`, `prefix` or `present = true`",
                );
                return None;
            }
            [(_, _, test)] => test.clone(),
            [(first, first_span, _), rest @ ..] => {
                let line = self.source.line(first_span);
                for (key, span, _) in rest {
                    self.report(
                        Some(span.clone()),
                        format!("{prefix}.{key}"),
                        format!("a header condition has exactly one test, and this one already has `{first}` (line {line}); remove one of them"),
                    );
                }
                return None;
            }
        };
        Some(HeaderMatch {
            name: name?,
            test: test?,
        })
    }

    /// The route's one action, and its `rewrite_prefix`.
    #[allow(clippy::too_many_arguments)]
    fn action(
        &mut self,
        table: &Spanned<FileRoute>,
        prefix: &str,
        listener: &Arc<str>,
        route: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
        rules: &PathRules,
    ) -> Option<RouteAction> {
        let file = table.get_ref();
        // Each action written is checked, so its mistakes show even when
        // the route has too many actions.
        let mut actions: Vec<(&str, Range<usize>, Option<RouteAction>)> = Vec::new();
        let target = |cluster: &str| -> Arc<str> { Arc::from(cluster) };
        if let Some(text) = &file.cluster {
            let id = self.check(text, format!("{prefix}.cluster"), |t| {
                cluster_id(t.as_str(), clusters)
            });
            let action = id.map(|cluster| {
                RouteAction::Forward(Forward {
                    targets: vec![Target {
                        cluster,
                        weight: 1,
                        tally: tallies.target(listener, route, &target(text.get_ref())),
                        watch: None,
                    }],
                    total_weight: 1,
                    rewrite_prefix: None,
                    retry: None,
                    mirror: None,
                    rollout: None,
                })
            });
            actions.push(("cluster", text.span(), action));
        }
        if let Some(split) = &file.split {
            let action = self
                .split(split, prefix, listener, route, clusters, tallies)
                .map(RouteAction::Forward);
            actions.push(("split", split.span(), action));
        }
        if let Some(redirect) = &file.redirect {
            let action = self.redirect(redirect, prefix).map(RouteAction::Redirect);
            actions.push(("redirect", redirect.span(), action));
        }
        if let Some(direct) = &file.direct {
            let action = self.direct(direct, prefix).map(RouteAction::Direct);
            actions.push(("direct", direct.span(), action));
        }

        let rewrite = match &file.rewrite_prefix {
            None => Some(None),
            Some(text) => {
                let key = format!("{prefix}.rewrite_prefix");
                let forwards = actions
                    .iter()
                    .all(|(kind, _, _)| matches!(*kind, "cluster" | "split"));
                if file.path_prefix.is_none() {
                    self.report(
                        Some(text.span()),
                        key,
                        "`rewrite_prefix` replaces the matched `path_prefix`, and this route has none; add a `path_prefix`",
                    );
                    None
                } else if !forwards {
                    self.report(
                        Some(text.span()),
                        key,
                        "`rewrite_prefix` applies to forwarded requests (`cluster` or `split`); a `redirect` or `direct` route has nothing to rewrite",
                    );
                    None
                } else {
                    let matched = file.path_prefix.as_ref().map(|p| p.get_ref().as_str());
                    self.check(text, key, |t| {
                        let to = path(t, "rewrite_prefix")?;
                        rewrite_stays_inside(matched.unwrap_or_default(), to, rules)
                    })
                    .map(Some)
                }
            }
        };

        let retry = match &file.retry {
            None => Some(None),
            Some(table) => {
                let key = format!("{prefix}.retry");
                let forwards = actions
                    .iter()
                    .all(|(kind, _, _)| matches!(*kind, "cluster" | "split"));
                if forwards {
                    self.retry_policy(table, &key).map(|p| Some(Arc::new(p)))
                } else {
                    self.report(
                        Some(table.span()),
                        key,
                        "`retry` applies to forwarded requests (`cluster` or `split`); a `redirect` or `direct` route sends nothing upstream",
                    );
                    None
                }
            }
        };

        let mirror = match &file.mirror {
            None => Some(None),
            Some(table) => {
                let key = format!("{prefix}.mirror");
                let forwards = actions
                    .iter()
                    .all(|(kind, _, _)| matches!(*kind, "cluster" | "split"));
                if forwards {
                    self.mirror(table, &key, listener, route, clusters, tallies)
                        .map(Some)
                } else {
                    self.report(
                        Some(table.span()),
                        key,
                        "`mirror` copies forwarded requests (`cluster` or `split`); a `redirect` or `direct` route sends nothing upstream",
                    );
                    None
                }
            }
        };
        let rollout = match &file.rollout {
            None => Some(None),
            Some(table) => self.rollout(table, prefix, file.split.as_ref()).map(Some),
        };

        let action = match actions.as_mut_slice() {
            [] => {
                self.report(
                    Some(table.span()),
                    prefix,
                    "no action; give exactly one of `cluster`, `split`, `redirect` or `direct`",
                );
                return None;
            }
            [(_, _, action)] => action.take(),
            [(first, first_span, _), rest @ ..] => {
                let line = self.source.line(first_span);
                let first = *first;
                let rest: Vec<(&str, Range<usize>)> =
                    rest.iter().map(|(k, s, _)| (*k, s.clone())).collect();
                for (kind, span) in rest {
                    self.report(
                        Some(span),
                        format!("{prefix}.{kind}"),
                        format!("a route has exactly one action, and this one already has `{first}` (line {line}); remove one of them"),
                    );
                }
                return None;
            }
        };
        let mut action = action?;
        let (rewrite, retry, mirror, rollout) = (rewrite?, retry?, mirror?, rollout?);
        if let RouteAction::Forward(forward) = &mut action {
            forward.rewrite_prefix = rewrite;
            forward.retry = retry;
            forward.mirror = mirror;
            if let Some(checked) = rollout {
                for (i, cluster) in [
                    (checked.plan.canary, &checked.canary),
                    (checked.plan.stable, &checked.stable),
                ] {
                    forward.targets[i].watch = Some(tallies.watch(listener, route, cluster));
                }
                forward.rollout = Some(Arc::new(checked.plan));
            }
        }
        Some(action)
    }

    fn split(
        &mut self,
        split: &Spanned<Vec<Spanned<FileSplit>>>,
        prefix: &str,
        listener: &Arc<str>,
        route: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
    ) -> Option<Forward> {
        let list = split.get_ref();
        if list.is_empty() {
            self.report(
                Some(split.span()),
                format!("{prefix}.split"),
                "no clusters listed; list at least one, e.g. [{ cluster = \"v1\", weight = 90 }, { cluster = \"v2\", weight = 10 }]",
            );
            return None;
        }
        let mut targets = Vec::with_capacity(list.len());
        let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
        let mut total: u64 = 0;
        for (k, entry) in list.iter().enumerate() {
            let key = format!("{prefix}.split[{k}]");
            let file = entry.get_ref();
            let cluster = match &file.cluster {
                None => {
                    self.missing(entry, &key, "cluster", "name one of the [[clusters]]");
                    None
                }
                Some(text) => {
                    if let Some(first) = seen.get(text.get_ref().as_str()) {
                        let line = self.source.line(first);
                        self.report(
                            Some(text.span()),
                            format!("{key}.cluster"),
                            format!(
                                "cluster `{}` is already in this split (line {line}); give it one entry with the weights added up",
                                text.get_ref()
                            ),
                        );
                        None
                    } else {
                        seen.insert(text.get_ref(), text.span());
                        self.check(text, format!("{key}.cluster"), |t| {
                            cluster_id(t.as_str(), clusters)
                        })
                        .map(|id| (id, text.get_ref().as_str()))
                    }
                }
            };
            let weight = match &file.weight {
                None => {
                    self.missing(
                        entry,
                        &key,
                        "weight",
                        "e.g. weight = 10 (weights are relative; 0 sends nothing)",
                    );
                    None
                }
                Some(value) => self.check(value, format!("{key}.weight"), |&Int(n)| {
                    u32::try_from(n)
                        .map_err(|_| format!("weight {n} is out of range: from 0 to {}", u32::MAX))
                }),
            };
            if let Some(weight) = weight {
                total += u64::from(weight);
            }
            if let (Some((cluster, name)), Some(weight)) = (cluster, weight) {
                targets.push(Target {
                    cluster,
                    weight,
                    tally: tallies.target(listener, route, &Arc::from(name)),
                    watch: None,
                });
            }
        }
        if targets.len() != list.len() {
            return None;
        }
        let reason = match u32::try_from(total) {
            Ok(0) => "every weight is 0, so no request could go anywhere; give at least one cluster a weight above 0".to_owned(),
            Ok(total_weight) => {
                return Some(Forward {
                    targets,
                    total_weight,
                    rewrite_prefix: None,
                    retry: None,
                    mirror: None,
                    rollout: None,
                })
            }
            Err(_) => format!(
                "the weights add up to {total}, more than {}; weights are relative, so scale them down",
                u32::MAX
            ),
        };
        self.report(Some(split.span()), format!("{prefix}.split"), reason);
        None
    }

    fn redirect(&mut self, redirect: &Spanned<FileRedirect>, prefix: &str) -> Option<Redirect> {
        let prefix = format!("{prefix}.redirect");
        let file = redirect.get_ref();
        let status = match &file.status {
            None => Some(DEFAULT_REDIRECT_STATUS),
            Some(value) => {
                self.check(
                    value,
                    format!("{prefix}.status"),
                    |&Int(n)| match u16::try_from(n) {
                        Ok(status) if REDIRECT_STATUSES.contains(&status) => Ok(status),
                        _ => Err(format!(
                            "redirect status {n} is not one of 301, 302, 303, 307, 308"
                        )),
                    },
                )
            }
        };
        let scheme = file.scheme.as_ref().map(|text| {
            self.check(text, format!("{prefix}.scheme"), |t| match t.as_str() {
                "http" | "https" => Ok(Box::from(t.as_str())),
                other => Err(format!("unknown scheme {other:?} (accepted: http, https)")),
            })
        });
        let host = file
            .host
            .as_ref()
            .map(|text| self.check(text, format!("{prefix}.host"), |t| authority(t)));
        let path = file
            .path
            .as_ref()
            .map(|text| self.check(text, format!("{prefix}.path"), |t| path(t, "path")));
        if scheme.is_none() && host.is_none() && path.is_none() {
            self.report(
                Some(redirect.span()),
                prefix,
                "a redirect needs at least one of `scheme`, `host` or `path`; with none it would send the client back where it came from",
            );
            return None;
        }
        Some(Redirect {
            status: status?,
            scheme: scheme.map_or(Some(None), |s| s.map(Some))?,
            host: host.map_or(Some(None), |h| h.map(Some))?,
            path: path.map_or(Some(None), |p| p.map(Some))?,
        })
    }

    fn direct(&mut self, direct: &Spanned<FileDirect>, prefix: &str) -> Option<DirectResponse> {
        let prefix = format!("{prefix}.direct");
        let file = direct.get_ref();
        let status = match &file.status {
            None => {
                self.missing(direct, &prefix, "status", "e.g. status = 200");
                None
            }
            Some(value) => {
                self.check(
                    value,
                    format!("{prefix}.status"),
                    |&Int(n)| match u16::try_from(n) {
                        Ok(status) if (200..=599).contains(&status) => Ok(status),
                        _ => Err(format!("status {n} is out of range: from 200 to 599")),
                    },
                )
            }
        };
        let body = file.body.as_ref().map_or("", |b| b.get_ref().as_str());
        if let (Some(status @ (204 | 304)), Some(text)) = (status, &file.body) {
            if !text.get_ref().is_empty() {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.body"),
                    format!(
                        "a {status} response has no body; leave `body` out or pick another status"
                    ),
                );
                return None;
            }
        }
        let content_type = match &file.content_type {
            None => Some(None),
            Some(text) => self
                .check(text, format!("{prefix}.content_type"), |t| {
                    if t.is_empty() {
                        Err(
                            "content type is empty; leave `content_type` out to send none"
                                .to_owned(),
                        )
                    } else {
                        header_value(t).map(Box::from)
                    }
                })
                .map(Some),
        };
        Some(DirectResponse {
            status: status?,
            body: Arc::from(body.as_bytes()),
            content_type: content_type?,
        })
    }

    fn edits_of(&mut self, file: &FileRoute, prefix: &str) -> Option<(HeaderEdits, HeaderEdits)> {
        let request = match &file.request_headers {
            None => Some(HeaderEdits::default()),
            Some(edits) => self.edits(
                edits,
                &format!("{prefix}.request_headers"),
                Direction::Request,
            ),
        };
        let response = match &file.response_headers {
            None => Some(HeaderEdits::default()),
            Some(edits) => self.edits(
                edits,
                &format!("{prefix}.response_headers"),
                Direction::Response,
            ),
        };
        Some((request?, response?))
    }

    fn edits(
        &mut self,
        edits: &Spanned<FileHeaderEdits>,
        prefix: &str,
        direction: Direction,
    ) -> Option<HeaderEdits> {
        let file = edits.get_ref();
        let mut ok = true;
        let mut out = HeaderEdits::default();
        if let Some(list) = &file.remove {
            let mut seen: Vec<Box<str>> = Vec::new();
            for (k, text) in list.get_ref().iter().enumerate() {
                let key = format!("{prefix}.remove[{k}]");
                match self.check(text, &key, |t| edited_name(t, "remove", direction)) {
                    Some(name) if seen.contains(&name) => {
                        self.report(
                            Some(text.span()),
                            key,
                            format!("header `{name}` is listed twice"),
                        );
                        ok = false;
                    }
                    Some(name) => seen.push(name),
                    None => ok = false,
                }
            }
            out.remove = seen;
        }
        for (verb, fields) in [("set", &file.set), ("add", &file.add)] {
            let Some(fields) = fields else { continue };
            let mut checked: Vec<(Box<str>, Box<str>)> = Vec::new();
            for (name, value) in &fields.get_ref().0 {
                let key = format!("{prefix}.{verb}.{}", key_segment(name.get_ref()));
                let name_ok = self.check(name, &key, |t| edited_name(t, verb, direction));
                let value_ok = self.check(value, &key, |t| header_value(t).map(Box::from));
                match (name_ok, value_ok) {
                    (Some(n), _) if verb == "set" && checked.iter().any(|(c, _)| *c == n) => {
                        self.report(
                            Some(name.span()),
                            key,
                            format!("header `{n}` is set twice (names are compared case-insensitively); keep one"),
                        );
                        ok = false;
                    }
                    (Some(n), Some(v)) => checked.push((n, v)),
                    _ => ok = false,
                }
            }
            match verb {
                "set" => out.set = checked,
                _ => out.add = checked,
            }
        }
        ok.then_some(out)
    }
}

/// A key path segment for a header name: bare where TOML allows it, quoted
/// otherwise.
fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// Whether `c` may appear in an HTTP token (RFC 9110 `tchar`).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A header name: a token, stored lower-case.
pub(super) fn header_name(text: &str) -> Result<Box<str>, String> {
    if text.is_empty() {
        return Err("header name is empty".to_owned());
    }
    if let Some(c) = text.chars().find(|&c| !is_tchar(c)) {
        return Err(format!(
            "invalid header name {text:?}: {c:?} is not allowed; use letters, digits and !#$%&'*+-.^_`|~"
        ));
    }
    Ok(text.to_ascii_lowercase().into())
}

/// A header name a route edits: a token that ringway does not own.
fn edited_name(text: &str, verb: &str, direction: Direction) -> Result<Box<str>, String> {
    let name = header_name(text)?;
    if OWNED_HEADERS.contains(&&*name) {
        return Err(format!(
            "header `{name}` cannot be edited: message framing and hop-by-hop headers are ringway's to write on each connection"
        ));
    }
    if direction == Direction::Request && &*name == "host" && verb != "set" {
        return Err(format!(
            "a request carries exactly one `host`, so it cannot be {}; use `set` to rewrite it",
            if verb == "remove" { "removed" } else { "added" }
        ));
    }
    Ok(name)
}

/// A header value: visible ASCII, spaces and tabs.
fn header_value(text: &str) -> Result<&str, String> {
    match text
        .char_indices()
        .find(|&(_, c)| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    {
        None => Ok(text),
        Some((at, c)) => Err(format!(
            "invalid header value {text:?}: {c:?} at byte {at} is not allowed; a value holds visible ASCII, spaces and tabs only"
        )),
    }
}

/// A method: a token, compared case-sensitively.
pub(super) fn method(text: &str) -> Result<Box<[u8]>, String> {
    if text.is_empty() {
        return Err("method is empty".to_owned());
    }
    if let Some(c) = text.chars().find(|&c| !is_tchar(c)) {
        return Err(format!(
            "invalid method {text:?}: {c:?} is not allowed in a method"
        ));
    }
    let upper = text.to_ascii_uppercase();
    let standard = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    if upper != text && standard.contains(&upper.as_str()) {
        return Err(format!(
            "methods are case-sensitive and clients send {upper:?}; write {upper:?}"
        ));
    }
    Ok(text.as_bytes().into())
}

/// A path, a path prefix or its replacement: starts with `/`, visible ASCII
/// as it arrives on the wire (no decoding), no query or fragment.
pub(super) fn path(text: &str, key: &str) -> Result<Box<str>, String> {
    if !text.starts_with('/') {
        return Err(format!("{key} {text:?} must start with '/'"));
    }
    if let Some(c) = text.chars().find(|&c| c == '?' || c == '#') {
        return Err(format!(
            "{key} {text:?} holds {c:?}; paths are compared without their query, so leave out the {c:?} and what follows"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{key} {text:?} holds {c:?}; write it as it arrives on the wire, percent-encoded (a space is %20)"
        ));
    }
    Ok(text.into())
}

/// Whether a route's path is a whole path or a prefix of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Whole {
    Yes,
    No,
}

/// Refuses a route path that no normalized request path can match (or, for
/// a prefix, start with): requests are matched in their normal form, so a
/// route written `/%61dmin` or `/x/../admin` would never match anything.
/// The error gives the form to write.
fn normal(text: Box<str>, key: &str, whole: Whole, rules: &PathRules) -> Result<Box<str>, String> {
    // A prefix may end inside a segment ("/api/v" matches "/api/v2"), so
    // it is judged with a segment's worth more: its last piece must be
    // able to begin a normal segment, not be one.
    let probe = match whole {
        Whole::Yes => text.to_string(),
        Whole::No => format!("{text}x"),
    };
    let mut out = Vec::new();
    let verdict = match path::normalize(probe.as_bytes(), rules, &mut out) {
        Ok(()) if out == probe.as_bytes() => return Ok(text),
        Ok(()) => {
            let mut form = String::from_utf8_lossy(&out).into_owned();
            if whole == Whole::No {
                // The probe's "x" survived as the last byte.
                form.pop();
            }
            format!("it would never match, since request paths are matched in their normal form; write {form:?}")
        }
        Err(e) => {
            format!("it would never match, since every request with such a path is refused: {e}")
        }
    };
    Err(format!("{key} {text:?} is not a normal path: {verdict}"))
}

/// Checks a `rewrite_prefix` against the `path_prefix` it replaces: the
/// replacement must be a normal path, and no normal request path that
/// starts with the prefix may come out with a dot segment (which the
/// upstream would resolve outside the replacement).
///
/// Such a segment can only form where replacement and rest meet. When the
/// replacement ends in '/' but the prefix does not, the rest starts inside
/// a segment of the request path: `/api../admin` is normal and starts with
/// `/api`, and `/v2/` + `../admin` escapes. In every other case the
/// segment at the seam is the request's own segment, or the replacement's
/// last one (which is normal) followed by more bytes, and neither is a dot
/// segment.
fn rewrite_stays_inside(
    matched: &str,
    to: Box<str>,
    rules: &PathRules,
) -> Result<Box<str>, String> {
    let to = normal(to, "rewrite_prefix", Whole::Yes, rules)?;
    if to.ends_with('/') && !matched.ends_with('/') {
        return Err(format!(
            "rewrite_prefix {to:?} ends in '/' but path_prefix {matched:?} does not, so the rewrite could escape it: {matched}../x would go upstream as {to}../x; end path_prefix with '/' too ({:?}), or leave the '/' off rewrite_prefix",
            format!("{matched}/")
        ));
    }
    Ok(to)
}

/// A route's `host` condition, lower-cased; `*.example.com` becomes the
/// suffix `.example.com`.
fn host_match(text: &str) -> Result<HostMatch, String> {
    let lower = text.to_ascii_lowercase();
    match lower.strip_prefix("*.") {
        Some(rest) => {
            host_name(rest, text)?;
            Ok(HostMatch::Suffix(format!(".{rest}").into()))
        }
        None => {
            host_name(&lower, text)?;
            Ok(HostMatch::Exact(lower.into()))
        }
    }
}

/// Checks a host name (or bracketed IPv6 address) as a `Host` header
/// carries it, without a port.
fn host_name(host: &str, written: &str) -> Result<(), String> {
    let why = if host.is_empty() {
        "it is empty".to_owned()
    } else if host.contains('*') {
        "a `*` may only start the host, as in \"*.example.com\"".to_owned()
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(());
        }
        "the brackets do not hold an IPv6 address".to_owned()
    } else if host.contains(':') {
        "it has a port; hosts are compared without the port of the Host header, so leave it out"
            .to_owned()
    } else if host.starts_with('.') {
        "it starts with '.'; write \"*.example.com\" to match every name under example.com"
            .to_owned()
    } else if let Some(c) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        if c.is_ascii() {
            format!("{c:?} is not allowed in a host name")
        } else {
            "it is not ASCII; write an internationalised name in its xn-- form".to_owned()
        }
    } else {
        return Ok(());
    };
    Err(format!("invalid host {written:?}: {why}"))
}

/// The host of a redirect: a host name or IP, with an optional port.
fn authority(text: &str) -> Result<Box<str>, String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (text, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "invalid redirect host {text:?}: {port:?} is not a port (1 to 65535)"
            ));
        }
    }
    host_name(&host.to_ascii_lowercase(), text)
        .map_err(|e| e.replacen("invalid host", "invalid redirect host", 1))?;
    Ok(text.into())
}
