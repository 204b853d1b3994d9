//! What a route sees of the request target, and what goes upstream: the
//! host without one trailing dot, the path normalized (unreserved escapes
//! decoded, dot segments removed, slashes merged), encoded slashes and
//! fragments refused, and rewrites kept inside their prefix.
//!
//! Each case pairs a route meant to guard something (a `direct` 403) with a
//! recording origin behind a catch-all route: a request that sidesteps the
//! guard shows up at the origin.

use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::Ringway;
use ringway_tests::http_client::{HttpConn, HttpResponse, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::HttpOrigin;

/// A guard on `/admin` (prefix) answering 403 itself, then everything else
/// to `origin`; `tweak` adds listener keys.
fn guarded(origin: &HttpOrigin, tweak: impl FnOnce(HttpConfig) -> HttpConfig) -> HttpConfig {
    tweak(
        HttpConfig::new()
            .route(
                Route::new("guard")
                    .path_prefix("/admin")
                    .direct(403, "guarded\n", None),
            )
            .route(Route::new("rest").cluster("app"))
            .cluster("app", &[origin.addr()]),
    )
}

/// Sends `request` on a fresh connection.
fn send(config: &HttpConfig, request: &Req) -> HttpResponse {
    HttpConn::open(config.listen).exchange(request)
}

/// The targets the origin received, in order.
fn targets(origin: &HttpOrigin) -> Vec<String> {
    origin.requests().into_iter().map(|r| r.target).collect()
}

#[test]
fn a_trailing_dot_on_the_host_does_not_sidestep_a_host_route() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::new()
        .route(
            Route::new("admin-host")
                .host("admin.example.com")
                .direct(403, "guarded\n", None),
        )
        .route(
            Route::new("wild")
                .host("*.internal.example")
                .direct(403, "guarded\n", None),
        )
        .route(Route::new("rest").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    for host in [
        "admin.example.com",
        "admin.example.com.",
        "ADMIN.example.com.:8080",
        "a.internal.example.",
    ] {
        let response = send(&config, &Req::get("/").host(host));
        assert_eq!(response.status, 403, "Host: {host}");
        assert_eq!(response.body_text(), "guarded\n", "Host: {host}");
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
    // Only one dot goes: two is a different (invalid) name.
    let response = send(&config, &Req::get("/").host("admin.example.com.."));
    assert_ne!(response.body_text(), "guarded\n");
}

#[test]
fn encoded_and_dotted_paths_do_not_sidestep_a_path_route() {
    let origin = HttpOrigin::ok("origin");
    let config = guarded(&origin, |c| c);
    let _proxy = Ringway::start(&config.to_toml());

    let sidesteps = [
        "/%61dmin",
        "/%61%64%6D%69%6e/users",
        "//admin",
        "///admin/x",
        "/x/../admin",
        "/x/y/../../admin",
        "/%2e/admin",
        "/x/%2E%2e/admin/../admin",
        "/x/%2e%2e/admin",
        "/./admin",
        "/;/admin",
        "/;jsessionid=1/admin",
        "/x/..;/admin",
        "/x/.;y/../admin",
        "http://example.test/%61dmin",
        "http://example.test//x/../admin?q=1",
    ];
    for target in sidesteps {
        let response = send(&config, &Req::get(target));
        assert_eq!(response.status, 403, "target {target}");
        assert_eq!(response.body_text(), "guarded\n", "target {target}");
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
}

#[test]
fn the_normalized_path_goes_upstream_with_the_query_as_sent() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let cases = [
        ("/a/./b/../c", "/a/c"),
        ("/a//b///c/", "/a/b/c/"),
        ("/%7euser/%41%2d%5F%2E", "/~user/A-_."),
        ("/x%3a%c3%a9%20y", "/x%3A%C3%A9%20y"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/a;v=1/b", "/a;v=1/b"),
        ("/a/;/b", "/a/b"),
        ("/p/../q?x=/../%2e&y=%zz", "/q?x=/../%2e&y=%zz"),
        ("/plain/path?z=1", "/plain/path?z=1"),
        ("http://example.test/%7e/./x?y", "/~/x?y"),
    ];
    for (sent, _) in cases {
        assert_eq!(send(&config, &Req::get(sent)).status, 200, "target {sent}");
    }
    let want: Vec<&str> = cases.iter().map(|(_, up)| *up).collect();
    assert_eq!(targets(&origin), want);
}

#[test]
fn encoded_slashes_are_refused_by_default() {
    let origin = HttpOrigin::ok("origin");
    let config = guarded(&origin, |c| c);
    let _proxy = Ringway::start(&config.to_toml());

    for target in [
        "/a%2Fb",
        "/x/..%2fadmin",
        "/a%5Cb",
        "/x/..%5cadmin",
        "/a\\b",
    ] {
        let response = send(&config, &Req::get(target));
        response.assert_ringway_error(400, "bad_request");
        let body = response.body_text();
        assert!(
            body.contains("slash") || body.contains("backslash"),
            "target {target}: {body}"
        );
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
}

#[test]
fn encoded_slashes_pass_unchanged_when_the_listener_says_so() {
    let origin = HttpOrigin::ok("origin");
    let config = guarded(&origin, |c| c.listener_key("encoded_slashes", "\"pass\""));
    let _proxy = Ringway::start(&config.to_toml());

    for target in ["/a%2fb/./c", "/x%5Cy", "/p\\q"] {
        assert_eq!(send(&config, &Req::get(target)).status, 200, "{target}");
    }
    assert_eq!(targets(&origin), ["/a%2Fb/c", "/x%5Cy", "/p\\q"]);
}

#[test]
fn merge_slashes_off_keeps_empty_segments_and_still_removes_dots() {
    let origin = HttpOrigin::ok("origin");
    let config = guarded(&origin, |c| c.listener_key("merge_slashes", "false"));
    let _proxy = Ringway::start(&config.to_toml());

    assert_eq!(send(&config, &Req::get("//admin")).status, 200);
    assert_eq!(send(&config, &Req::get("/;/admin")).status, 200);
    assert_eq!(send(&config, &Req::get("/x/../admin")).status, 403);
    assert_eq!(send(&config, &Req::get("/a//./b")).status, 200);
    assert_eq!(targets(&origin), ["//admin", "/;/admin", "/a//b"]);
}

#[test]
fn a_path_above_the_root_is_refused() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    for target in ["/..", "/../x", "/a/../../x", "/%2e%2e/x", "/a/..;/..;/x"] {
        let response = send(&config, &Req::get(target));
        response.assert_ringway_error(400, "bad_request");
        assert!(
            response.body_text().contains("above the root"),
            "target {target}: {}",
            response.body_text()
        );
    }
    for target in ["/a%zz", "/a%4"] {
        send(&config, &Req::get(target)).assert_ringway_error(400, "bad_request");
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
}

#[test]
fn a_rewrite_never_sends_a_path_outside_its_prefix() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::new()
        .route(
            Route::new("api")
                .path_prefix("/api/")
                .rewrite_prefix("/v2/")
                .cluster("app"),
        )
        .route(Route::new("rest").direct(404, "none\n", None))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    // Normalized first: this is /admin, which the api route does not match.
    assert_eq!(send(&config, &Req::get("/api/../admin")).status, 404);
    assert_eq!(send(&config, &Req::get("/api/%2e%2e/admin")).status, 404);
    assert_eq!(send(&config, &Req::get("/api/x/../y")).status, 200);
    assert_eq!(targets(&origin), ["/v2/y"]);
}

#[test]
fn a_rewrite_that_could_escape_its_prefix_is_a_config_error() {
    // `/api../admin` is a normal path that starts with `/api`; rewritten to
    // `/v2/` + `../admin` it would leave `/v2/`.
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::new()
        .route(
            Route::new("api")
                .path_prefix("/api")
                .rewrite_prefix("/v2/")
                .cluster("app"),
        )
        .cluster("app", &[origin.addr()]);
    let text = config.to_toml();
    let file = write_config(&text);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let output = run_to_exit(&["check", path], std::time::Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}\n{text}");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("rewrite_prefix"))
        .expect("the key is in the file");
    let place = format!("error: {path}:{line}:");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(error.starts_with(&place), "{error}");
    assert!(
        error.contains("listeners[0].routes[0].rewrite_prefix: "),
        "{error}"
    );
    assert!(error.contains("escape"), "{error}");
}

#[test]
fn a_fragment_in_the_request_target_is_refused() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    for target in ["/a#frag", "/a?q=1#frag", "/#", "http://example.test/x#y"] {
        let response = send(&config, &Req::get(target));
        response.assert_ringway_error(400, "bad_request");
        assert!(
            response.body_text().contains("fragment"),
            "target {target}: {}",
            response.body_text()
        );
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
}
