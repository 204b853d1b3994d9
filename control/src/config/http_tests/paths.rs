//! The path keys of an HTTP listener (`merge_slashes`, `encoded_slashes`),
//! route paths checked against the normal form requests are matched in,
//! and rewrites that could leave their prefix.

use dataplane::proto::h1::path::{EncodedSlashes, PathRules};

use super::{assert_only_error, errors, http, one_route, parse_ok};

#[test]
fn path_rules_default_to_merge_and_reject() {
    let config = parse_ok(&one_route("", "cluster = \"app\""));
    assert_eq!(http(&config, 0).path_rules, PathRules::DEFAULT);
    let dumped = config.to_toml();
    for expected in ["merge_slashes = true", "encoded_slashes = \"reject\""] {
        assert!(
            dumped.contains(expected),
            "{expected:?} missing from\n{dumped}"
        );
    }
}

#[test]
fn path_rules_are_read_and_dumped_back() {
    let text = one_route(
        "merge_slashes = false\nencoded_slashes = \"pass\"\n",
        "cluster = \"app\"",
    );
    let config = parse_ok(&text);
    assert_eq!(
        http(&config, 0).path_rules,
        PathRules {
            merge_slashes: false,
            encoded_slashes: EncodedSlashes::Pass,
        }
    );
    let dumped = config.to_toml();
    assert!(dumped.contains("merge_slashes = false"), "{dumped}");
    assert!(dumped.contains("encoded_slashes = \"pass\""), "{dumped}");
    assert_eq!(parse_ok(&dumped).to_toml(), dumped);
}

#[test]
fn path_rule_errors_name_the_key() {
    let text = one_route("encoded_slashes = \"decode\"\n", "cluster = \"app\"");
    assert_only_error(
        &text,
        "encoded_slashes",
        0,
        "listeners[0].encoded_slashes",
        "unknown encoded_slashes \"decode\"; write \"reject\"",
    );
    let text = r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "t"
address = "127.0.0.1:8080"
protocol = "tcp"
cluster = "app"
merge_slashes = true
encoded_slashes = "pass"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#;
    let errors = errors(text);
    let found: Vec<(Option<usize>, Option<&str>)> =
        errors.iter().map(|e| (e.line, e.key.as_deref())).collect();
    assert_eq!(
        found,
        [
            (Some(9), Some("listeners[0].merge_slashes")),
            (Some(10), Some("listeners[0].encoded_slashes")),
        ]
    );
}

#[test]
fn route_paths_must_be_normal() {
    let cases: &[(&str, &str, &str)] = &[
        ("path = \"/%61dmin\"", "path", "write \"/admin\""),
        ("path = \"/a//b\"", "path", "write \"/a/b\""),
        ("path = \"/a/%3a\"", "path", "write \"/a/%3A\""),
        ("path = \"/a/.\"", "path", "write \"/a/\""),
        (
            "path_prefix = \"/x/../admin\"",
            "path_prefix",
            "write \"/admin\"",
        ),
        (
            "path_prefix = \"/;/admin\"",
            "path_prefix",
            "write \"/admin\"",
        ),
        ("path_prefix = \"/api//\"", "path_prefix", "write \"/api/\""),
        ("path_prefix = \"/%7e\"", "path_prefix", "write \"/~\""),
        (
            "path = \"/../x\"",
            "path",
            "every request with such a path is refused: the path goes above the root",
        ),
        (
            "path = \"/a%2Fb\"",
            "path",
            "every request with such a path is refused: encoded slash",
        ),
        (
            "path_prefix = \"/a\\\\b\"",
            "path_prefix",
            "refused: backslash",
        ),
        (
            "path_prefix = \"/a%4\"",
            "path_prefix",
            "invalid percent-encoding",
        ),
    ];
    for (route, key, reason) in cases {
        let text = one_route("", &format!("{route}\ncluster = \"app\""));
        assert_only_error(
            &text,
            &format!("{key} ="),
            0,
            &format!("listeners[0].routes[0].{key}"),
            reason,
        );
    }
    // A prefix may end inside a segment, even one that starts with dots.
    for prefix in ["/", "/api/", "/api/v", "/api/.", "/api/..", "/a;b", "/a%3A"] {
        parse_ok(&one_route(
            "",
            &format!("path_prefix = {prefix:?}\ncluster = \"app\""),
        ));
    }
    // Normal under the listener's own rules.
    parse_ok(&one_route(
        "merge_slashes = false\nencoded_slashes = \"pass\"\n",
        "path = \"//a%2Fb\"\ncluster = \"app\"",
    ));
}

#[test]
fn a_rewrite_must_stay_inside_its_prefix() {
    let text = one_route(
        "",
        "path_prefix = \"/api\"\nrewrite_prefix = \"/v2/\"\ncluster = \"app\"",
    );
    assert_only_error(
        &text,
        "rewrite_prefix",
        0,
        "listeners[0].routes[0].rewrite_prefix",
        "so the rewrite could escape it: /api../x would go upstream as /v2/../x; end path_prefix with '/' too (\"/api/\")",
    );
    let text = one_route(
        "",
        "path_prefix = \"/api/\"\nrewrite_prefix = \"/v2/./\"\ncluster = \"app\"",
    );
    assert_only_error(
        &text,
        "rewrite_prefix",
        0,
        "listeners[0].routes[0].rewrite_prefix",
        "rewrite_prefix \"/v2/./\" is not a normal path",
    );
    for (from, to) in [
        ("/api/", "/v2/"),
        ("/api/", "/"),
        ("/api", "/v2"),
        ("/api", "/"),
        ("/api/", "/v2"),
        ("/api/v1", "/v2"),
    ] {
        let route = format!("path_prefix = {from:?}\nrewrite_prefix = {to:?}\ncluster = \"app\"");
        if from == "/api" && to == "/" {
            assert_eq!(errors(&one_route("", &route)).len(), 1, "{from} -> {to}");
        } else {
            parse_ok(&one_route("", &route));
        }
    }
}
