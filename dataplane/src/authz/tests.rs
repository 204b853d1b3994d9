//! Decisions by hand-picked cases: first match, defaults, each kind of
//! condition, paths in their authorization form, and the counts.

use std::sync::Arc;

use super::normal::SlashPolicy;
use super::*;
use crate::proto::h1::path::PathError;
use crate::table::authz::{AuthzPathRules, PathCondition, Source};
use crate::table::route::HeaderMatch;
use crate::table::route::HeaderTest;
use crate::table::tally::AuthzTally;

const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const API: &str = "spiffe://example.org/ns/default/sa/api";
const PROD: &str = "spiffe://example.org/ns/prod/sa/db";
const OTHER: &str = "spiffe://other.org/ns/default/sa/web";

/// Header fields as name-value pairs.
#[derive(Debug, Clone, Copy)]
struct Pairs<'a>(&'a [(&'a [u8], &'a [u8])]);

impl HeaderFields for Pairs<'_> {
    type Values<'s>
        = std::iter::FilterMap<
        std::slice::Iter<'s, (&'s [u8], &'s [u8])>,
        Box<dyn FnMut(&'s (&'s [u8], &'s [u8])) -> Option<&'s [u8]> + 's>,
    >
    where
        Self: 's;

    fn values<'s>(&'s self, name: &'s [u8]) -> Self::Values<'s> {
        self.0.iter().filter_map(Box::new(move |(n, v)| {
            n.eq_ignore_ascii_case(name).then_some(*v)
        }))
    }
}

fn ids(list: &[&str]) -> Box<[Box<str>]> {
    list.iter().map(|&s| s.into()).collect()
}

fn rule(name: &str, action: Action) -> Rule {
    Rule {
        name: name.into(),
        action,
        source: Source {
            unauthenticated: true,
            ..Source::default()
        },
        routes: Box::new([]),
        paths: Box::new([]),
        methods: Box::new([]),
        headers: Box::new([]),
        tally: Arc::new(AuthzTally::new(2)),
    }
}

fn policy(default: Action, rules: Vec<Rule>) -> Authorization {
    Authorization::new(
        default,
        AuthzPathRules::DEFAULT,
        rules,
        Arc::new(AuthzTally::new(2)),
    )
}

/// A request to judge.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    id: Option<&'a str>,
    fields: &'a [(&'a [u8], &'a [u8])],
    route: Option<usize>,
}

fn req<'a>(method: &'a str, path: &'a str, id: Option<&'a str>) -> Req<'a> {
    Req {
        method,
        path,
        id,
        fields: &[],
        route: Some(0),
    }
}

fn judge(p: &Authorization, r: &Req<'_>) -> Verdict {
    let view = RequestView::new(
        r.method.as_bytes(),
        Some(b"a.example"),
        r.path.as_bytes(),
        Pairs(r.fields),
    )
    .with_peer_identity(r.id);
    let mut scratch = Vec::new();
    p.check_request(&view, r.route, 1, &mut scratch)
}

#[test]
fn the_first_matching_rule_decides_and_else_the_default() {
    let mut reads = rule("reads", Action::Allow);
    reads.methods = Box::new([b"GET".to_vec().into()]);
    let everything = rule("everything", Action::Deny);
    let p = policy(Action::Allow, vec![reads, everything]);
    assert_eq!(judge(&p, &req("GET", "/", None)), Verdict::Allow);
    assert_eq!(judge(&p, &req("POST", "/", None)), Verdict::Deny);
    assert_eq!(judge(&p, &req("get", "/", None)), Verdict::Deny);

    let empty = policy(Action::Deny, Vec::new());
    assert_eq!(judge(&empty, &req("GET", "/", Some(WEB))), Verdict::Deny);
    let open = policy(Action::Allow, Vec::new());
    assert_eq!(judge(&open, &req("GET", "/", None)), Verdict::Allow);
    assert_eq!(open.default_tally.totals().allowed, 1);
    assert_eq!(empty.default_tally.totals().denied, 1);
}

#[test]
fn sources_match_by_id_domain_and_prefix_and_never_without_identity_unless_told() {
    let source = |ids_: &[&str], domains: &[&str], prefixes: &[&str], unauth| Source {
        ids: ids(ids_),
        trust_domains: ids(domains),
        prefixes: ids(prefixes),
        unauthenticated: unauth,
    };
    let exact = source(&[WEB], &[], &[], false);
    assert!(exact.matches(Some(WEB)));
    assert!(!exact.matches(Some(API)));
    assert!(!exact.matches(Some("spiffe://example.org/ns/default/sa/web2")));
    assert!(!exact.matches(None));

    let domain = source(&[], &["example.org"], &[], false);
    assert!(domain.matches(Some(WEB)) && domain.matches(Some(PROD)));
    assert!(!domain.matches(Some(OTHER)));
    assert!(!domain.matches(Some("spiffe://example.org.evil/ns/x")));

    let prefix = source(&[], &[], &["spiffe://example.org/ns/prod/"], false);
    assert!(prefix.matches(Some(PROD)));
    assert!(!prefix.matches(Some(WEB)));

    // Every list given must hold (each is any-of).
    let both = source(&[WEB, OTHER], &["example.org"], &[], false);
    assert!(both.matches(Some(WEB)));
    assert!(!both.matches(Some(OTHER)));

    let anyone = source(&[], &[], &[], true);
    assert!(anyone.matches(None) && anyone.matches(Some(OTHER)));
    let authenticated = source(&[], &[], &[], false);
    assert!(!authenticated.matches(None) && authenticated.matches(Some(OTHER)));
    let web_or_plain = source(&[WEB], &[], &[], true);
    assert!(web_or_plain.matches(None) && web_or_plain.matches(Some(WEB)));
    assert!(!web_or_plain.matches(Some(API)));
}

#[test]
fn routes_headers_and_methods_are_conditions() {
    let mut api_route = rule("api-route", Action::Allow);
    api_route.routes = Box::new([2, 5]);
    let mut tenant = rule("tenant", Action::Allow);
    tenant.headers = Box::new([HeaderMatch {
        name: "x-tenant".into(),
        test: HeaderTest::Exact(b"a".to_vec().into()),
    }]);
    let p = policy(Action::Deny, vec![api_route, tenant]);
    let on = |route| Req {
        route,
        ..req("GET", "/", Some(WEB))
    };
    assert_eq!(judge(&p, &on(Some(5))), Verdict::Allow);
    assert_eq!(judge(&p, &on(Some(1))), Verdict::Deny);
    assert_eq!(judge(&p, &on(None)), Verdict::Deny);
    let fields: &[(&[u8], &[u8])] = &[(b"X-Tenant", b"b"), (b"x-tenant", b"a")];
    let with = Req { fields, ..on(None) };
    assert_eq!(judge(&p, &with), Verdict::Allow);
    let wrong: &[(&[u8], &[u8])] = &[(b"x-tenant", b"ab")];
    let without = Req {
        fields: wrong,
        ..on(None)
    };
    assert_eq!(judge(&p, &without), Verdict::Deny);
}

/// A policy that denies `/admin` (prefix) to everyone and allows the rest.
fn admin_denied(rules: AuthzPathRules) -> Authorization {
    let mut admin = rule("admin", Action::Deny);
    admin.paths = Box::new([PathCondition::Prefix("/admin".into())]);
    Authorization::new(
        Action::Allow,
        rules,
        vec![admin],
        Arc::new(AuthzTally::new(2)),
    )
}

#[test]
fn no_spelling_of_a_denied_path_gets_through() {
    let p = admin_denied(AuthzPathRules::DEFAULT);
    for path in [
        "/admin",
        "/admin/",
        "/admin/x",
        "//admin",
        "/x/../admin",
        "/x/%2e%2e/admin",
        "/%61dmin",
        "/admin;v=1",
        "/;x/admin",
        "/x/..;/admin",
        "/adminx",
    ] {
        assert_eq!(
            judge(&p, &req("GET", path, None)),
            Verdict::Deny,
            "{path:?}"
        );
    }
    for path in ["/ADMIN", "/public", "/x/admin", "/a%252Fadmin"] {
        assert_eq!(
            judge(&p, &req("GET", path, None)),
            Verdict::Allow,
            "{path:?}"
        );
    }
    for path in ["/x/..%2Fadmin", "/x/..%2fadmin", "/a%5Cb"] {
        assert_eq!(
            judge(&p, &req("GET", path, None)),
            Verdict::BadPath(PathError::EncodedSlash),
            "{path:?}"
        );
    }
    // Kept, an encoded slash is no separator: `..%2Fadmin` is one segment.
    let keep = admin_denied(AuthzPathRules {
        merge_slashes: true,
        encoded_slashes: SlashPolicy::Keep,
    });
    assert_eq!(
        judge(&keep, &req("GET", "/x/..%2Fadmin", None)),
        Verdict::Allow
    );
    assert_eq!(judge(&keep, &req("GET", "/admin%2Fx", None)), Verdict::Deny);
    // Slashes kept apart: `//admin` is not `/admin`.
    let no_merge = admin_denied(AuthzPathRules {
        merge_slashes: false,
        encoded_slashes: SlashPolicy::Reject,
    });
    assert_eq!(
        judge(&no_merge, &req("GET", "//admin", None)),
        Verdict::Allow
    );
}

#[test]
fn a_path_with_parameters_must_be_allowed_in_both_forms() {
    let mut secret = rule("secret", Action::Deny);
    secret.paths = Box::new([PathCondition::Exact("/public/secret".into())]);
    let mut public = rule("public", Action::Allow);
    public.paths = Box::new([PathCondition::Prefix("/public/".into())]);
    let mut exact = rule("exact", Action::Allow);
    exact.paths = Box::new([PathCondition::Exact("/files/a".into())]);
    let p = policy(Action::Deny, vec![secret, public, exact]);
    assert_eq!(judge(&p, &req("GET", "/public/x", None)), Verdict::Allow);
    assert_eq!(
        judge(&p, &req("GET", "/public/x;v=1", None)),
        Verdict::Allow
    );
    // Allowed as written (a file server's `secret;x`), denied stripped (a
    // servlet container's `/public/secret`): denied.
    assert_eq!(
        judge(&p, &req("GET", "/public/secret;x", None)),
        Verdict::Deny
    );
    // Allowed stripped (a servlet container's `/files/a`), not as written
    // (a file server's `files;x/a`): denied.
    assert_eq!(judge(&p, &req("GET", "/files;x/a", None)), Verdict::Deny);
    // Each request is counted once, on the rule that decided it.
    assert_eq!(p.rules[1].tally.totals().allowed, 2);
    assert_eq!(p.rules[0].tally.totals().denied, 1);
    assert_eq!(p.default_tally.totals().denied, 1);
}

#[test]
fn decisions_are_counted_on_the_workers_block_of_the_rule_that_decided() {
    let mut web = rule("web", Action::Allow);
    web.source = Source {
        ids: ids(&[WEB]),
        ..Source::default()
    };
    let p = policy(Action::Deny, vec![web]);
    assert!(p.check_connection(Some(WEB), 0));
    assert!(p.check_connection(Some(WEB), 1));
    assert!(!p.check_connection(Some(API), 1));
    assert!(!p.check_connection(None, 0));
    let tally = &p.rules[0].tally;
    assert_eq!(tally.worker(0).allowed.get(), 1);
    assert_eq!(tally.worker(1).allowed.get(), 1);
    assert_eq!(tally.totals().denied, 0);
    assert_eq!(
        p.default_tally.totals(),
        crate::table::tally::AuthzTotals {
            allowed: 0,
            denied: 2
        }
    );
}

#[test]
fn paths_are_left_alone_when_no_rule_judges_them() {
    // Nothing to refuse an encoded slash for.
    let p = policy(Action::Allow, vec![rule("any", Action::Allow)]);
    assert_eq!(
        judge(&p, &req("GET", "/x/..%2Fadmin", None)),
        Verdict::Allow
    );
}

/// What judging a request costs, printed (`cargo test --release -p
/// ringway-dataplane authz_cost -- --ignored --nocapture`): a policy of four
/// rules as the configuration reference shows, on a path already in form
/// (judged in place) and on one that must be rewritten. Not a pass/fail
/// test: timings depend on the machine.
#[test]
#[ignore = "a measurement, run by hand"]
fn authz_cost() {
    use std::hint::black_box;

    use crate::proto::h1::path::tests::best_of_batches;

    let mut no_admin = rule("no-admin", Action::Deny);
    no_admin.paths = Box::new([
        PathCondition::Exact("/admin".into()),
        PathCondition::Prefix("/admin/".into()),
    ]);
    let mut reads = rule("web-reads-api", Action::Allow);
    reads.source = Source {
        ids: ids(&[WEB]),
        ..Source::default()
    };
    reads.routes = Box::new([0]);
    reads.methods = Box::new([b"GET".to_vec().into(), b"HEAD".to_vec().into()]);
    let mut ops = rule("ops", Action::Allow);
    ops.source = Source {
        prefixes: ids(&["spiffe://example.org/ns/prod/"]),
        ..Source::default()
    };
    let mut health = rule("health", Action::Allow);
    health.paths = Box::new([PathCondition::Exact("/healthz".into())]);
    let p = policy(Action::Deny, vec![no_admin, reads, ops, health]);
    let mut scratch = Vec::with_capacity(64);
    for (path, id) in [
        ("/api/v1/users/12345/orders", Some(WEB)),
        ("/api/v1/users/12345/orders", Some(PROD)),
        ("/healthz", None),
        ("/api/v1/users;v=2/12345/orders", Some(WEB)),
    ] {
        let view = RequestView::new(b"GET", Some(b"a.example"), path.as_bytes(), Pairs(&[]))
            .with_peer_identity(id);
        let mut verdict = Verdict::Deny;
        let ns = best_of_batches(|| {
            verdict = p.check_request(black_box(&view), Some(0), 0, &mut scratch);
        });
        println!("{path:>32} as {id:?}: {ns:6.1} ns ({verdict:?})");
    }
}
