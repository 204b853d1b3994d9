//! Authorization: a listener's rules on who may send what, judged per HTTP
//! request (after its route is chosen) or per TCP connection (before any
//! upstream connect). The policy is table data
//! ([`crate::table::authz`]); the decisions on it are made here, as
//! routing's are made in [`crate::routing`].
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
//! worker's block of the rule's
//! [`AuthzTally`](crate::table::tally::AuthzTally). Judging a request
//! allocates nothing: a path that must be rewritten is written into a
//! buffer the caller keeps between requests.

pub mod normal;
#[cfg(test)]
mod tests;

use self::normal::Params;
use crate::proto::h1::path::PathError;
use crate::request::{HeaderFields, Reason, RequestView};
use crate::table::authz::{Action, Authorization, Rule};

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

impl Authorization {
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
        let by = if !self.judges_paths() || normal::is_normal(path, &self.path_rules) {
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
