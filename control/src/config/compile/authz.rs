//! A listener's `[listeners.authorization]`: its default, its path
//! options and its rules, checked key by key; and the identity conditions
//! of its routes (`peer_identity`), which need the same thing rules do: a
//! listener that verifies client certificates.
//!
//! Everything a rule compares is stored in the form the data plane
//! compares it in: SPIFFE IDs and prefixes as written (they are checked to
//! be valid, and IDs are case-sensitive), route names as indices into the
//! listener's routes, paths in the authorization form
//! ([`dataplane::authz::normal`]).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use dataplane::authz::normal::{self, Params};
use dataplane::spiffe::{self, SpiffeId};
use dataplane::table::authz::{
    Action, Authorization, AuthzPathRules, PathCondition, Rule, SlashPolicy, Source,
};
use dataplane::table::Protocol;
use toml::Spanned;

use super::route::{method, path};
use super::Builder;
use crate::config::file::{FileAuthorization, FileAuthzRule, FileListener};
use crate::config::tally::Tallies;

/// The header ringway writes upstream with the verified peer identity. A
/// client may send one too (it is stripped before the request goes up),
/// so no condition may look at it: `from` and `peer_identity` read the
/// identity the handshake proved.
pub(super) const PEER_IDENTITY_HEADER: &str = "x-ringway-peer-identity";

/// What a rule's lists are checked as.
#[derive(Clone, Copy)]
enum Listed {
    Id,
    TrustDomain,
    Prefix,
}

impl Builder<'_> {
    /// Checks the authorization of a listener (`table`, at key path
    /// `prefix`, named `listener` for the tallies) of protocol `protocol`
    /// (`None` when unknown: it is checked as HTTP), and the
    /// `peer_identity` of its routes. `None` on an error; `Some(None)` for
    /// a listener without authorization.
    pub(super) fn authorization(
        &mut self,
        table: &Spanned<FileListener>,
        prefix: &str,
        protocol: Option<Protocol>,
        listener: &Arc<str>,
        tallies: &Tallies,
    ) -> Option<Option<Arc<Authorization>>> {
        let file = table.get_ref();
        // Identities come from verified client certificates only.
        let verifies = file
            .tls
            .as_ref()
            .is_some_and(|t| t.get_ref().client_ca.is_some());
        let tcp = protocol == Some(Protocol::Tcp);
        let no_identity = "this listener does not verify client certificates (it has no tls.client_ca), so no request carries a verified identity";
        let mut ok = true;
        for (j, route) in file.routes.iter().flatten().enumerate() {
            if let (Some(id), false) = (&route.get_ref().peer_identity, verifies) {
                self.report(
                    Some(id.span()),
                    format!("{prefix}.routes[{j}].peer_identity"),
                    format!("this route could never match: {no_identity}; add tls.client_ca"),
                );
                ok = false;
            }
        }
        let Some(authz) = &file.authorization else {
            return ok.then_some(None);
        };
        let prefix = format!("{prefix}.authorization");
        let section = authz.get_ref();
        let default = match &section.default {
            None => {
                self.missing(
                    authz,
                    &prefix,
                    "default",
                    "write default = \"deny\" (refuse what no rule allows) or default = \"allow\"",
                );
                None
            }
            Some(text) => self.check(text, format!("{prefix}.default"), |t| action(t)),
        };
        let path_rules = self.authz_path_rules(section, &prefix);
        // Route names, by their place in the file (the built routes keep
        // it: a listener's routes are built all or none).
        let routes: Vec<Option<&str>> = file
            .routes
            .iter()
            .flatten()
            .map(|r| r.get_ref().name.as_ref().map(|n| n.get_ref().as_str()))
            .collect();
        let mut rules = Vec::new();
        let mut first_use: HashMap<&str, Range<usize>> = HashMap::new();
        let list = section.rules.as_ref().map_or(&[][..], |r| r.get_ref());
        for (k, entry) in list.iter().enumerate() {
            let ctx = RuleCtx {
                prefix: format!("{prefix}.rules[{k}]"),
                tcp,
                verifies,
                no_identity,
                routes: &routes,
                path_rules: path_rules.unwrap_or_default(),
            };
            let name = self.name(
                entry,
                entry.get_ref().name.as_ref(),
                &ctx.prefix,
                "rule",
                &mut first_use,
            );
            match (self.rule(entry, &ctx), name) {
                (Some(parts), Some(name)) => rules.push(Rule {
                    tally: tallies.authz(listener, Some(&name)),
                    name,
                    action: parts.action,
                    source: parts.source,
                    routes: parts.routes,
                    paths: parts.paths,
                    methods: parts.methods,
                    headers: parts.headers,
                }),
                _ => ok = false,
            }
        }
        let (default, path_rules) = (default?, path_rules?);
        ok.then(|| {
            Some(Arc::new(Authorization::new(
                default,
                path_rules,
                rules,
                tallies.authz(listener, None),
            )))
        })
    }

    /// `merge_slashes` and `encoded_slashes` of an authorization.
    fn authz_path_rules(
        &mut self,
        section: &FileAuthorization,
        prefix: &str,
    ) -> Option<AuthzPathRules> {
        let merge_slashes = section
            .merge_slashes
            .as_ref()
            .map_or(AuthzPathRules::DEFAULT.merge_slashes, |m| *m.get_ref());
        let encoded_slashes = match &section.encoded_slashes {
            None => Some(AuthzPathRules::DEFAULT.encoded_slashes),
            Some(text) => self.check(text, format!("{prefix}.encoded_slashes"), |t| {
                match t.as_str() {
                    "reject" => Ok(SlashPolicy::Reject),
                    "keep" => Ok(SlashPolicy::Keep),
                    other => Err(format!(
                        "unknown encoded_slashes {other:?}; write \"reject\" (refuse %2F, %5C and \\ in paths with 400, the default) or \"keep\" (judge them as part of their segment; only for upstreams that never decode them)"
                    )),
                }
            }),
        };
        Some(AuthzPathRules {
            merge_slashes,
            encoded_slashes: encoded_slashes?,
        })
    }

    /// One rule's action and conditions (its name is checked by the
    /// caller).
    fn rule(&mut self, entry: &Spanned<FileAuthzRule>, ctx: &RuleCtx<'_>) -> Option<RuleParts> {
        let file = entry.get_ref();
        let prefix = &ctx.prefix;
        let action = match &file.action {
            None => {
                self.missing(
                    entry,
                    prefix,
                    "action",
                    "write action = \"allow\" or action = \"deny\"",
                );
                None
            }
            Some(text) => self.check(text, format!("{prefix}.action"), |t| action(t)),
        };
        let ids = self.identities(&file.from, prefix, "from", Listed::Id);
        let trust_domains = self.identities(
            &file.from_trust_domains,
            prefix,
            "from_trust_domains",
            Listed::TrustDomain,
        );
        let prefixes =
            self.identities(&file.from_prefixes, prefix, "from_prefixes", Listed::Prefix);
        let (ids, trust_domains, prefixes) = (ids?, trust_domains?, prefixes?);
        let names_identities = !(ids.is_empty() && trust_domains.is_empty() && prefixes.is_empty());
        if names_identities && !ctx.verifies {
            let span = [&file.from, &file.from_trust_domains, &file.from_prefixes]
                .into_iter()
                .flatten()
                .map(Spanned::span)
                .min_by_key(|s| s.start);
            self.report(
                span,
                prefix.clone(),
                format!("this rule's `from` conditions could never match: {}; add tls.client_ca, or judge connections without identity with `unauthenticated = true`", ctx.no_identity),
            );
            return None;
        }
        // A rule that names nobody is about everyone, unless it says
        // otherwise; one that names identities needs one, unless told.
        let unauthenticated = file
            .unauthenticated
            .as_ref()
            .map_or(!names_identities, |u| *u.get_ref());

        let mut ok = true;
        if ctx.tcp {
            let http_only = [
                ("routes", file.routes.as_ref().map(Spanned::span)),
                ("paths", file.paths.as_ref().map(Spanned::span)),
                ("methods", file.methods.as_ref().map(Spanned::span)),
                ("headers", file.headers.as_ref().map(Spanned::span)),
            ];
            for (key, span) in http_only {
                if let Some(span) = span {
                    self.report(
                        Some(span),
                        format!("{prefix}.{key}"),
                        format!("`{key}` applies to http listeners only; a tcp listener's rules judge a connection by its source alone"),
                    );
                    ok = false;
                }
            }
        }
        let routes = self.rule_routes(file, ctx);
        let paths = self.rule_paths(file, ctx);
        let methods = self.rule_methods(file, prefix);
        let headers = self.rule_headers(file, prefix);
        let parts = RuleParts {
            action: action?,
            source: Source {
                ids,
                trust_domains,
                prefixes,
                unauthenticated,
            },
            routes: routes?,
            paths: paths?,
            methods: methods?,
            headers: headers?,
        };
        ok.then_some(parts)
    }

    /// A rule's `from`, `from_trust_domains` or `from_prefixes`.
    fn identities(
        &mut self,
        list: &Option<Spanned<Vec<Spanned<String>>>>,
        prefix: &str,
        key: &str,
        listed: Listed,
    ) -> Option<Box<[Box<str>]>> {
        let Some(list) = list else {
            return Some(Box::new([]));
        };
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                format!("{prefix}.{key}"),
                format!("no entries listed; list at least one, or leave `{key}` out"),
            );
            return None;
        }
        let mut out = Vec::with_capacity(list.get_ref().len());
        let mut ok = true;
        for (i, text) in list.get_ref().iter().enumerate() {
            let checked = self.check(text, format!("{prefix}.{key}[{i}]"), |t| match listed {
                Listed::Id => spiffe_id(t),
                Listed::TrustDomain => match spiffe::parse_trust_domain(t) {
                    Ok(_) if t.starts_with("spiffe://") => Err(format!(
                        "invalid trust domain {t:?}: write its bare name, without spiffe://"
                    )),
                    Ok(_) => Ok(Box::from(t.as_str())),
                    Err(e) => Err(format!("invalid trust domain {t:?}: {e}")),
                },
                Listed::Prefix => id_prefix(t),
            });
            match checked {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    /// A rule's `routes`, as indices into the listener's routes.
    fn rule_routes(&mut self, file: &FileAuthzRule, ctx: &RuleCtx<'_>) -> Option<Box<[u32]>> {
        let Some(list) = &file.routes else {
            return Some(Box::new([]));
        };
        let prefix = &ctx.prefix;
        if ctx.tcp {
            return None;
        }
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                format!("{prefix}.routes"),
                "no routes listed; list at least one route name, or leave `routes` out",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, text) in list.get_ref().iter().enumerate() {
            let name = text.get_ref().as_str();
            let found = ctx.routes.iter().position(|r| *r == Some(name));
            match found {
                Some(at) => out.push(u32::try_from(at).unwrap_or(u32::MAX)),
                None => {
                    let known: Vec<&str> = ctx.routes.iter().flatten().copied().collect();
                    let reason = if known.is_empty() {
                        format!("no route named `{name}` (this listener has no named routes)")
                    } else {
                        format!(
                            "no route named `{name}` on this listener (routes: {})",
                            known.join(", ")
                        )
                    };
                    self.report(Some(text.span()), format!("{prefix}.routes[{i}]"), reason);
                    ok = false;
                }
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    /// A rule's `paths`: exact, or a prefix when they end in `*`.
    fn rule_paths(
        &mut self,
        file: &FileAuthzRule,
        ctx: &RuleCtx<'_>,
    ) -> Option<Box<[PathCondition]>> {
        let Some(list) = &file.paths else {
            return Some(Box::new([]));
        };
        let prefix = &ctx.prefix;
        if ctx.tcp {
            return None;
        }
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                format!("{prefix}.paths"),
                "no paths listed; list at least one, e.g. [\"/healthz\", \"/api/*\"], or leave `paths` out",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, text) in list.get_ref().iter().enumerate() {
            let rules = &ctx.path_rules;
            match self.check(text, format!("{prefix}.paths[{i}]"), |t| {
                path_condition(t, rules)
            }) {
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    fn rule_methods(&mut self, file: &FileAuthzRule, prefix: &str) -> Option<Box<[Box<[u8]>]>> {
        let Some(list) = &file.methods else {
            return Some(Box::new([]));
        };
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                format!("{prefix}.methods"),
                "no methods listed; list at least one, e.g. [\"GET\"], or leave `methods` out",
            );
            return None;
        }
        let mut out: Vec<Box<[u8]>> = Vec::new();
        let mut ok = true;
        for (i, text) in list.get_ref().iter().enumerate() {
            let key = format!("{prefix}.methods[{i}]");
            match self.check(text, &key, |t| method(t)) {
                Some(m) if out.contains(&m) => {
                    self.report(
                        Some(text.span()),
                        key,
                        format!("method {:?} is listed twice", text.get_ref()),
                    );
                    ok = false;
                }
                Some(m) => out.push(m),
                None => ok = false,
            }
        }
        ok.then(|| out.into_boxed_slice())
    }

    fn rule_headers(
        &mut self,
        file: &FileAuthzRule,
        prefix: &str,
    ) -> Option<Box<[dataplane::table::route::HeaderMatch]>> {
        let Some(list) = &file.headers else {
            return Some(Box::new([]));
        };
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                format!("{prefix}.headers"),
                "no header conditions listed; list at least one, e.g. [{ name = \"x-tenant\", exact = \"a\" }], or leave `headers` out",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, entry) in list.get_ref().iter().enumerate() {
            match self.header_match(entry, &format!("{prefix}.headers[{i}]")) {
                Some(m) => out.push(m),
                None => ok = false,
            }
        }
        ok.then(|| out.into_boxed_slice())
    }
}

/// What a rule's checks share.
struct RuleCtx<'a> {
    /// The rule's key path.
    prefix: String,
    /// The listener is a tcp one.
    tcp: bool,
    /// The listener verifies client certificates (connections may carry an
    /// identity).
    verifies: bool,
    /// Why a connection carries no identity here, for messages.
    no_identity: &'static str,
    /// The listener's route names in file order (`None`: a route without a
    /// valid name, reported with the routes).
    routes: &'a [Option<&'a str>],
    /// How the listener's authorization normalizes paths.
    path_rules: AuthzPathRules,
}

/// A rule's checked parts, but its name.
struct RuleParts {
    action: Action,
    source: Source,
    routes: Box<[u32]>,
    paths: Box<[PathCondition]>,
    methods: Box<[Box<[u8]>]>,
    headers: Box<[dataplane::table::route::HeaderMatch]>,
}

/// `allow` or `deny`.
fn action(text: &str) -> Result<Action, String> {
    match text {
        "allow" => Ok(Action::Allow),
        "deny" => Ok(Action::Deny),
        other => Err(format!("unknown action {other:?} (accepted: allow, deny)")),
    }
}

/// A workload's SPIFFE ID, as `from` and `peer_identity` take it.
pub(super) fn spiffe_id(text: &str) -> Result<Box<str>, String> {
    SpiffeId::parse(text)
        .map(|_| Box::from(text))
        .map_err(|e| format!("invalid SPIFFE ID {text:?}: {e}"))
}

/// A prefix of SPIFFE IDs: `spiffe://`, a whole trust domain, a `/`, and
/// the start of a path. The trust domain must be whole, or
/// `spiffe://example.org` would also match `spiffe://example.org.evil/...`.
fn id_prefix(text: &str) -> Result<Box<str>, String> {
    let rest = text.strip_prefix("spiffe://").ok_or_else(|| {
        format!("invalid SPIFFE ID prefix {text:?}: it does not start with spiffe://")
    })?;
    if !rest.contains('/') {
        return Err(format!(
            "invalid SPIFFE ID prefix {text:?}: it must name a whole trust domain and the start of a path, e.g. \"{text}/ns/prod/\"; to match a whole trust domain, use from_trust_domains"
        ));
    }
    // Its last piece may be the start of a segment ("/sa/web" matches
    // "/sa/web2"): judged with a byte more, the whole must be an ID.
    let probe = format!("{text}x");
    SpiffeId::parse(&probe).map_err(|e| {
        format!("invalid SPIFFE ID prefix {text:?}: an ID starting with it is not valid: {e}")
    })?;
    Ok(text.into())
}

/// A rule path: exact, or a prefix when it ends in `*` (as in Istio's
/// `paths`), in its authorization form.
fn path_condition(text: &str, rules: &AuthzPathRules) -> Result<PathCondition, String> {
    let (body, is_prefix) = match text.strip_suffix('*') {
        Some(body) => (body, true),
        None => (text, false),
    };
    if body.contains('*') {
        return Err(format!(
            "path {text:?} has a '*' before its end; a '*' may only end a path, as a prefix (\"/api/*\")"
        ));
    }
    if body.contains(';') {
        return Err(format!(
            "path {text:?} holds ';': paths are judged with their ';' parameters as written and removed, and a rule must hold for both; write the path without parameters"
        ));
    }
    let body = path(body, "path")?;
    // A prefix may end inside a segment ("/api/v" matches "/api/v2"): it
    // is judged with a segment's worth more.
    let probe = if is_prefix {
        format!("{body}x")
    } else {
        body.to_string()
    };
    let mut out = Vec::new();
    let verdict = match normal::normalize(probe.as_bytes(), rules, Params::Keep, &mut out) {
        Ok(_) if out == probe.as_bytes() => {
            return Ok(if is_prefix {
                PathCondition::Prefix(body)
            } else {
                PathCondition::Exact(body)
            })
        }
        Ok(_) => {
            let mut form = String::from_utf8_lossy(&out).into_owned();
            if is_prefix {
                form.pop();
                form.push('*');
            }
            format!(
                "it would never match, since paths are judged in their normal form; write {form:?}"
            )
        }
        Err(e) => {
            format!("it would never match, since every request with such a path is refused: {e}")
        }
    };
    Err(format!("path {text:?} is not a normal path: {verdict}"))
}
