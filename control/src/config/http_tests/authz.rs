//! `[listeners.authorization]` and a route's `peer_identity`: what is
//! built, what is refused (by key and line), and the dump read back.

use dataplane::table::authz::{Action, AuthzPathRules, PathCondition, SlashPolicy};

use super::{assert_only_error, errors, http, one_route, parse_ok, update};

/// An http listener with routes `api` and `r`, and `authz` as its
/// authorization section's body.
fn with_authz(authz: &str) -> String {
    one_route(
        "",
        &format!(
            r#"cluster = "app"

[[listeners.routes]]
name = "api"
path_prefix = "/api/"
cluster = "app"

[listeners.authorization]
{authz}"#
        ),
    )
}

#[test]
fn rules_are_built_in_order_with_their_conditions() {
    let text = with_authz(
        r#"default = "deny"

[[listeners.authorization.rules]]
name = "admin"
action = "deny"
paths = ["/admin", "/api/admin/*"]

[[listeners.authorization.rules]]
name = "reads"
action = "allow"
routes = ["api"]
paths = ["/api/*"]
methods = ["GET", "HEAD"]
headers = [{ name = "X-Tenant", exact = "a" }]
unauthenticated = true
"#,
    );
    let config = parse_ok(&text);
    let authz = config.table.listeners[0]
        .authorization
        .as_deref()
        .expect("authorization");
    assert_eq!(authz.default, Action::Deny);
    assert_eq!(authz.path_rules, AuthzPathRules::DEFAULT);
    let names: Vec<&str> = authz.rules.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["admin", "reads"]);
    let admin = &authz.rules[0];
    assert_eq!(admin.action, Action::Deny);
    assert_eq!(
        &*admin.paths,
        [
            PathCondition::Exact("/admin".into()),
            PathCondition::Prefix("/api/admin/".into())
        ]
    );
    // A rule naming nobody is about everyone.
    assert!(admin.source.unauthenticated);
    let reads = &authz.rules[1];
    // `api` is the listener's second route.
    assert_eq!(&*reads.routes, [1]);
    assert_eq!(reads.methods.len(), 2);
    assert_eq!(&*reads.headers[0].name, "x-tenant");
    assert_eq!(http(&config, 0).routes[1].name.as_ref(), "api");

    // Dumped with every default, and read back the same.
    let dumped = config.to_toml();
    for expected in [
        "[listeners.authorization]",
        "default = \"deny\"",
        "merge_slashes = true",
        "encoded_slashes = \"reject\"",
        "paths = [\"/admin\", \"/api/admin/*\"]",
        "routes = [\"api\"]",
        "unauthenticated = true",
    ] {
        assert!(
            dumped.contains(expected),
            "{expected:?} missing from\n{dumped}"
        );
    }
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    let summary = config.summary();
    assert!(
        summary.contains("    authorization: default deny, 2 rules"),
        "{summary}"
    );
    assert!(
        summary.contains("      rule reads: anyone, routes api, paths /api/*, methods GET HEAD, header x-tenant = a -> allow"),
        "{summary}"
    );
}

#[test]
fn path_options_are_read_and_dumped() {
    let text =
        with_authz("default = \"allow\"\nmerge_slashes = false\nencoded_slashes = \"keep\"\n");
    let config = parse_ok(&text);
    let authz = config.table.listeners[0].authorization.as_deref();
    let authz = authz.expect("authorization");
    assert_eq!(
        authz.path_rules,
        AuthzPathRules {
            merge_slashes: false,
            encoded_slashes: SlashPolicy::Keep
        }
    );
    assert!(authz.rules.is_empty());
    let dumped = config.to_toml();
    assert!(dumped.contains("encoded_slashes = \"keep\""), "{dumped}");
    assert_eq!(parse_ok(&dumped).to_toml(), dumped);

    assert_only_error(
        &with_authz("default = \"allow\"\nencoded_slashes = \"pass\"\n"),
        "encoded_slashes = \"pass\"",
        0,
        "listeners[0].authorization.encoded_slashes",
        "write \"reject\"",
    );
}

#[test]
fn default_and_action_are_required_and_spelled_out() {
    assert_only_error(
        &with_authz("merge_slashes = true\n"),
        "[listeners.authorization]",
        0,
        "listeners[0].authorization.default",
        "missing required key `default`",
    );
    assert_only_error(
        &with_authz("default = \"refuse\"\n"),
        "default = \"refuse\"",
        0,
        "listeners[0].authorization.default",
        "unknown action \"refuse\" (accepted: allow, deny)",
    );
    let text = with_authz(
        "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"x\"\npaths = [\"/\"]\n",
    );
    assert_only_error(
        &text,
        "[[listeners.authorization.rules]]",
        0,
        "listeners[0].authorization.rules[0].action",
        "missing required key `action`",
    );
}

/// The one rule `rule` (after its name and action) on an http listener.
fn one_rule(rule: &str) -> String {
    with_authz(&format!(
        "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"x\"\naction = \"allow\"\n{rule}\n"
    ))
}

#[test]
fn bad_conditions_are_refused_by_key_and_line() {
    let key = "listeners[0].authorization.rules[0]";
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "routes = [\"nope\"]",
            "routes = [",
            "routes[0]",
            "no route named `nope` on this listener (routes: r, api)",
        ),
        (
            "from = [\"spiffe://example.org\"]",
            "from = [",
            "from[0]",
            "invalid SPIFFE ID \"spiffe://example.org\": it has no path",
        ),
        (
            "from = [\"https://example.org/web\"]",
            "from = [",
            "from[0]",
            "does not start with `spiffe://`",
        ),
        (
            "from_trust_domains = [\"Example.org\"]",
            "from_trust_domains",
            "from_trust_domains[0]",
            "invalid trust domain \"Example.org\"",
        ),
        (
            "from_prefixes = [\"spiffe://example.org\"]",
            "from_prefixes",
            "from_prefixes[0]",
            "use from_trust_domains",
        ),
        (
            "from_prefixes = [\"spiffe://example.org//x\"]",
            "from_prefixes",
            "from_prefixes[0]",
            "empty segment",
        ),
        (
            "from = []",
            "from = []",
            "from",
            "no entries listed",
        ),
        (
            "paths = [\"/a/../admin\"]",
            "paths = [",
            "paths[0]",
            "write \"/admin\"",
        ),
        (
            "paths = [\"/%61pi/*\"]",
            "paths = [",
            "paths[0]",
            "write \"/api/*\"",
        ),
        (
            "paths = [\"/a*b\"]",
            "paths = [",
            "paths[0]",
            "a '*' may only end a path",
        ),
        (
            "paths = [\"/a;v=1\"]",
            "paths = [",
            "paths[0]",
            "write the path without parameters",
        ),
        (
            "paths = [\"/a%2Fb\"]",
            "paths = [",
            "paths[0]",
            "every request with such a path is refused",
        ),
        (
            "paths = [\"admin\"]",
            "paths = [",
            "paths[0]",
            "must start with '/'",
        ),
        (
            "methods = [\"get\"]",
            "methods = [",
            "methods[0]",
            "write \"GET\"",
        ),
        (
            "headers = [{ name = \"x-ringway-peer-identity\", exact = \"spiffe://example.org/a\" }]",
            "headers = [",
            "headers[0].name",
            "match the identity itself",
        ),
    ];
    for &(rule, needle, sub, reason) in cases {
        let text = one_rule(rule);
        assert_only_error(&text, needle, 0, &format!("{key}.{sub}"), reason);
    }
    // Two rules of one name.
    let text = with_authz(
        "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"x\"\naction = \"allow\"\n[[listeners.authorization.rules]]\nname = \"x\"\naction = \"deny\"\n",
    );
    assert_only_error(
        &text,
        "name = \"x\"",
        1,
        "listeners[0].authorization.rules[1].name",
        "duplicate rule name `x`; first defined on line",
    );
}

#[test]
fn identities_need_a_listener_that_verifies_client_certificates() {
    assert_only_error(
        &one_rule("from = [\"spiffe://example.org/ns/a/sa/web\"]"),
        "from = [",
        0,
        "listeners[0].authorization.rules[0]",
        "it has no tls.client_ca",
    );
    // A route's peer_identity alike; a bad ID is refused for what it is.
    let text = one_route(
        "",
        "cluster = \"app\"\npeer_identity = \"spiffe://example.org/ns/a/sa/web\"",
    );
    assert_only_error(
        &text,
        "peer_identity",
        0,
        "listeners[0].routes[0].peer_identity",
        "this route could never match",
    );
    let text = one_route(
        "",
        "cluster = \"app\"\npeer_identity = \"spiffe://example.org/a/../b\"",
    );
    let errors = errors(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.reason.contains("invalid SPIFFE ID") && e.reason.contains("'..' segment")),
        "{errors:#?}"
    );
    // A route header condition on the identity header is refused too.
    assert_only_error(
        &one_route(
            "",
            "cluster = \"app\"\nheaders = [{ name = \"X-Ringway-Peer-Identity\", present = true }]",
        ),
        "headers = [",
        0,
        "listeners[0].routes[0].headers[0].name",
        "a client can send its own",
    );
}

/// A tcp listener with `authz` as its authorization's body.
fn tcp_with(authz: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "db"
address = "127.0.0.1:5433"
protocol = "tcp"
cluster = "app"

[listeners.authorization]
{authz}

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#
    )
}

#[test]
fn tcp_rules_judge_the_source_alone() {
    let config = parse_ok(&tcp_with(
        "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"plain\"\naction = \"allow\"\nunauthenticated = true\n",
    ));
    let authz = config.table.listeners[0].authorization.as_deref();
    assert_eq!(authz.map(|a| a.rules.len()), Some(1));
    let dumped = config.to_toml();
    assert!(dumped.contains("[listeners.authorization]"), "{dumped}");
    assert_eq!(parse_ok(&dumped).to_toml(), dumped);

    for (key, value) in [
        ("paths", "[\"/\"]"),
        ("methods", "[\"GET\"]"),
        ("routes", "[\"x\"]"),
        ("headers", "[{ name = \"a\", present = true }]"),
    ] {
        let text = tcp_with(&format!(
            "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"r\"\naction = \"allow\"\n{key} = {value}\n"
        ));
        assert_only_error(
            &text,
            &format!("{key} = "),
            0,
            &format!("listeners[0].authorization.rules[0].{key}"),
            "applies to http listeners only",
        );
    }
    assert_only_error(
        &tcp_with(
            "default = \"deny\"\n[[listeners.authorization.rules]]\nname = \"r\"\naction = \"allow\"\nfrom_trust_domains = [\"example.org\"]\n",
        ),
        "from_trust_domains",
        0,
        "listeners[0].authorization.rules[0]",
        "does not verify client certificates",
    );
}

#[test]
fn unknown_keys_in_a_rule_are_refused() {
    let errors = errors(&one_rule("principals = [\"x\"]"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].reason.contains("principals"), "{}", errors[0]);
}

#[test]
fn tallies_of_rules_are_carried_over_by_name() {
    let text = one_rule("paths = [\"/\"]");
    let first = parse_ok(&text);
    let old = first.table.listeners[0].authorization.as_deref();
    let old = old.expect("authorization");
    let second = update(
        &first,
        &text.replace("name = \"x\"", "name = \"x\"\nmethods = [\"GET\"]"),
    );
    let new = second.table.listeners[0].authorization.as_deref();
    let new = new.expect("authorization");
    assert!(std::sync::Arc::ptr_eq(
        &old.rules[0].tally,
        &new.rules[0].tally
    ));
    assert!(std::sync::Arc::ptr_eq(
        &old.default_tally,
        &new.default_tally
    ));
}
