//! A listener's authorization policy as the table carries it: rules, a
//! default, and how paths are normalized for the rules. The decisions are
//! made in [`crate::authz`], which judges requests and connections by it.

use std::sync::Arc;

use super::route::HeaderMatch;
use super::tally::AuthzTally;

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

    /// Whether some rule has a path condition.
    pub fn judges_paths(&self) -> bool {
        self.judges_paths
    }
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
    /// Whether `path` (in the authorization form) meets the condition.
    #[inline]
    pub fn holds(&self, path: &[u8]) -> bool {
        match self {
            PathCondition::Exact(p) => path == p.as_bytes(),
            PathCondition::Prefix(p) => path.starts_with(p.as_bytes()),
        }
    }
}

/// What to do with `%2F`, `%5C` and a raw `\` in a path judged by
/// authorization rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlashPolicy {
    /// Refuse the request with 400: some upstreams decode them into
    /// separators, so `/x/..%2Fadmin` could reach `/admin`.
    #[default]
    Reject,
    /// Keep them as they are: they are not separators for the rules, and
    /// the upstream must not decode them either.
    Keep,
}

/// How a listener's authorization normalizes paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthzPathRules {
    /// Remove empty segments before the last (`//admin` is `/admin`).
    pub merge_slashes: bool,
    /// What to do with `%2F`, `%5C` and `\`.
    pub encoded_slashes: SlashPolicy,
}

impl AuthzPathRules {
    /// Merge slashes, refuse encoded slashes: no spelling of a path reaches
    /// a resource other than the one judged, whatever the upstream does
    /// with `//` and `%2F`.
    pub const DEFAULT: AuthzPathRules = AuthzPathRules {
        merge_slashes: true,
        encoded_slashes: SlashPolicy::Reject,
    };
}

impl Default for AuthzPathRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The trust domain of a verified SPIFFE ID: what follows `spiffe://` up
/// to the next `/`.
#[inline]
fn trust_domain(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}
