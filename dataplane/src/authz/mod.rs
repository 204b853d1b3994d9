//! Authorization: a listener's rules on who may send what, judged per HTTP
//! request (after its route is chosen) or per TCP connection (before any
//! upstream connect).
//!
//! A listener's [`Authorization`] is a list of [`Rule`]s and a default.
//! The first rule whose every condition holds decides (allow or deny);
//! when none does, the default decides. A rule's conditions are its
//! source (the connection's verified SPIFFE ID: exact, trust domain,
//! prefix; or none), and for HTTP the destination route, the path, the
//! method and header fields. Each list is any-of; every condition given
//! must hold.
//!
//! Paths are judged in a form of their own ([`normal`]), taken from the
//! routing form that goes upstream, so that no spelling of a path the
//! upstream resolves to a denied resource is allowed.
//!
//! Every decision is counted per rule (and for the default) in this
//! worker's block of the rule's [`AuthzTally`]. Judging a request
//! allocates nothing: a path that must be rewritten is written into a
//! buffer the caller keeps between requests.

pub mod normal;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use self::normal::{AuthzPathRules, Params};
use crate::proto::h1::path::PathError;
use crate::request::{HeaderFields, Reason, RequestView};
use crate::table::route::HeaderMatch;
use crate::table::tally::AuthzTally;

/// What a rule (or the default) does with what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let it through.
    Allow,
    /// Refuse it: 403 for a request, a closed connection for TCP.
    Deny,
}

impl Action {
    /// The configuration word and label value: `allow` or `deny`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// A listener's authorization policy.
#[derive(Debug)]
pub struct Authorization {
    /// What happens when no rule matches.
    pub default: Action,
    /// How paths are normalized for the rules' path conditions.
    pub path_rules: AuthzPathRules,
    /// The rules, in match order.
    pub rules: Box<[Rule]>,
    /// Counts of the default's decisions.
    pub default_tally: Arc<AuthzTally>,
    /// Whether some rule has a path condition: only then is a path
    /// normalized (and perhaps refused).
    judges_paths: bool,
}

/// One rule: conditions, all of which must hold, and an action.
#[derive(Debug)]
pub struct Rule {
    /// Operator-given name (unique within its listener), used in metrics.
    pub name: Arc<str>,
    /// What a match does.
    pub action: Action,
    /// Who the rule is about.
    pub source: Source,
    /// Destination routes, by index in the listener's routes; empty for
    /// any. A request that matched no route matches no rule that names
    /// routes.
    pub routes: Box<[u32]>,
    /// Path conditions, in the authorization form; empty for any.
    pub paths: Box<[PathCondition]>,
    /// Methods (exact, case-sensitive); empty for any.
    pub methods: Box<[Box<[u8]>]>,
    /// Header conditions, all of which must hold.
    pub headers: Box<[HeaderMatch]>,
    /// Counts of this rule's decisions.
    pub tally: Arc<AuthzTally>,
}

/// A rule's source: the verified identity of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// Exact SPIFFE IDs; empty for any.
    pub ids: Box<[Box<str>]>,
    /// Trust domains the ID must be in; empty for any.
    pub trust_domains: Box<[Box<str>]>,
    /// Prefixes the ID must start with (each at least
    /// `spiffe://domain/`); empty for any.
    pub prefixes: Box<[Box<str>]>,
    /// Whether a connection without a verified identity matches.
    pub unauthenticated: bool,
}

impl Source {
    /// Whether a connection whose verified identity is `identity` (`None`
    /// without one) is one this source is about.
    #[inline]
    pub fn matches(&self, identity: Option<&str>) -> bool {
        let Some(id) = identity else {
            return self.unauthenticated;
        };
        (self.ids.is_empty() || self.ids.iter().any(|x| **x == *id))
            && (self.trust_domains.is_empty()
                || trust_domain(id).is_some_and(|d| self.trust_domains.iter().any(|x| **x == *d)))
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| id.starts_with(&**p)))
    }

    /// Whether the source names identities (any of its lists is given).
    pub fn names_identities(&self) -> bool {
        !(self.ids.is_empty() && self.trust_domains.is_empty() && self.prefixes.is_empty())
    }
}

/// A condition on the path, in the authorization form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathCondition {
    /// The path is exactly this.
    Exact(Box<str>),
    /// The path starts with this (a byte prefix: `/api` matches `/apix`).
    Prefix(Box<str>),
}

impl PathCondition {
    #[inline]
    fn holds(&self, path: &[u8]) -> bool {
        match self {
            PathCondition::Exact(p) => path == p.as_bytes(),
            PathCondition::Prefix(p) => path.starts_with(p.as_bytes()),
        }
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// Refuse with 403.
    Deny,
    /// The path has no authorization form (an encoded slash refused by
    /// the listener's authorization, for one): refuse with 400.
    BadPath(PathError),
}

/// Who decided, for the counts: a rule's index, or the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rule(usize),
    Default,
}

/// The trust domain of a verified SPIFFE ID: what follows `spiffe://` up
/// to the next `/`.
#[inline]
fn trust_domain(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

impl Authorization {
    /// A policy of `rules` (in match order) with `default` when none
    /// matches, paths normalized by `path_rules`.
    pub fn new(
        default: Action,
        path_rules: AuthzPathRules,
        rules: Vec<Rule>,
        default_tally: Arc<AuthzTally>,
    ) -> Self {
        Self {
            default,
            path_rules,
            judges_paths: rules.iter().any(|r| !r.paths.is_empty()),
            rules: rules.into_boxed_slice(),
            default_tally,
        }
    }

    /// Judges a TCP connection whose verified identity is `identity`, on
    /// worker `worker`, and counts the decision. Only source conditions
    /// apply (a TCP listener's rules have no others).
    pub fn check_connection(&self, identity: Option<&str>, worker: usize) -> bool {
        let by = self
            .rules
            .iter()
            .position(|r| r.source.matches(identity))
            .map_or(By::Default, By::Rule);
        self.count(by, worker) == Action::Allow
    }

    /// [`Self::check_request`] as the answer the client gets: `None` to go
    /// on, or the reason and one line to refuse with (403 `forbidden`, or
    /// 400 for a path refused by the authorization's normalization).
    #[inline]
    pub fn refusal<F: HeaderFields>(
        &self,
        req: &RequestView<'_, F>,
        route: Option<usize>,
        worker: usize,
        scratch: &mut Vec<u8>,
    ) -> Option<(Reason, &'static str)> {
        match self.check_request(req, route, worker, scratch) {
            Verdict::Allow => None,
            Verdict::Deny => Some((
                Reason::Forbidden,
                "this listener's authorization policy does not allow this request",
            )),
            Verdict::BadPath(PathError::EncodedSlash) => Some((
                Reason::BadRequest,
                "encoded slash (%2F) or backslash (%5C) in the path, refused by this listener's authorization (authorization.encoded_slashes)",
            )),
            Verdict::BadPath(PathError::Backslash) => Some((
                Reason::BadRequest,
                "backslash in the path, refused by this listener's authorization (authorization.encoded_slashes)",
            )),
            Verdict::BadPath(e) => Some((Reason::BadRequest, e.detail())),
        }
    }

    /// Judges a request, seen through `req` (its peer identity included),
    /// that matched the listener's route `route` (`None`: no route), on
    /// worker `worker`, and counts the decision. `scratch` is where a path
    /// that must be rewritten goes; its contents are replaced.
    ///
    /// A path with `;` parameters is judged twice, as written and with its
    /// parameters removed: servlet containers drop them (`/admin;x` is
    /// their `/admin`), other servers keep them, and the rule must hold for
    /// whichever the upstream is. The request is allowed only if both
    /// forms are; the first refusal is the one counted.
    pub fn check_request<F: HeaderFields>(
        &self,
        req: &RequestView<'_, F>,
        route: Option<usize>,
        worker: usize,
        scratch: &mut Vec<u8>,
    ) -> Verdict {
        let path = req.path();
        let by = if !self.judges_paths || normal::is_normal(path, &self.path_rules) {
            self.decide(req, route, path)
        } else {
            scratch.clear();
            let written = match normal::normalize(path, &self.path_rules, Params::Keep, scratch) {
                Ok(at) => at,
                Err(e) => return Verdict::BadPath(e),
            };
            let end = scratch.len();
            let first = self.decide(req, route, &scratch[written..end]);
            if self.action(first) == Action::Deny || !normal::has_params(path) {
                first
            } else {
                match normal::normalize(path, &self.path_rules, Params::Strip, scratch) {
                    Ok(at) => match self.decide(req, route, &scratch[at..]) {
                        by if self.action(by) == Action::Deny => by,
                        _ => first,
                    },
                    Err(e) => return Verdict::BadPath(e),
                }
            }
        };
        match self.count(by, worker) {
            Action::Allow => Verdict::Allow,
            Action::Deny => Verdict::Deny,
        }
    }

    /// The first rule that matches the request with path `path` (in the
    /// authorization form), or the default.
    fn decide<F: HeaderFields>(
        &self,
        req: &RequestView<'_, F>,
        route: Option<usize>,
        path: &[u8],
    ) -> By {
        self.rules
            .iter()
            .position(|r| r.matches(req, route, path))
            .map_or(By::Default, By::Rule)
    }

    fn action(&self, by: By) -> Action {
        match by {
            By::Rule(i) => self.rules[i].action,
            By::Default => self.default,
        }
    }

    /// Counts a decision on worker `worker`'s block and returns it.
    fn count(&self, by: By, worker: usize) -> Action {
        let (action, tally) = match by {
            By::Rule(i) => (self.rules[i].action, &self.rules[i].tally),
            By::Default => (self.default, &self.default_tally),
        };
        let counters = tally.worker(worker);
        match action {
            Action::Allow => counters.allowed.add(1),
            Action::Deny => counters.denied.add(1),
        }
        action
    }
}

impl Rule {
    /// Whether every condition of the rule holds for `req` (whose
    /// authorization path is `path`), which matched route `route`.
    #[inline]
    fn matches<F: HeaderFields>(
        &self,
        req: &RequestView<'_, F>,
        route: Option<usize>,
        path: &[u8],
    ) -> bool {
        self.source.matches(req.peer_identity())
            && (self.routes.is_empty()
                || route.is_some_and(|r| self.routes.iter().any(|&x| x as usize == r)))
            && (self.paths.is_empty() || self.paths.iter().any(|p| p.holds(path)))
            && (self.methods.is_empty() || self.methods.iter().any(|m| **m == *req.method()))
            && self
                .headers
                .iter()
                .all(|h| crate::routing::header_matches(h, req))
    }
}
