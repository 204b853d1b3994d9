//! Routes of an HTTP listener: matching on host, path, method and headers
//! in file order; redirects, direct answers, header edits, prefix rewrites,
//! and a weighted split checked against both origins and `/metrics`.

use ringway_kit::Ringway;
use ringway_tests::http_client::{curl, curl_heads, metric_sum, wait_metric, HttpConn, Req};
use ringway_tests::http_config::{HeaderEdits, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};

/// Origins that answer with their own name, each the only endpoint of a
/// cluster of that name.
struct Named {
    origins: Vec<(String, HttpOrigin)>,
}

impl Named {
    fn new(names: &[&str]) -> Self {
        Self {
            origins: names
                .iter()
                .map(|n| ((*n).to_owned(), HttpOrigin::ok(n)))
                .collect(),
        }
    }

    /// Adds their clusters to `config`.
    fn clusters(&self, mut config: HttpConfig) -> HttpConfig {
        for (name, origin) in &self.origins {
            config = config.cluster(name, &[origin.addr()]);
        }
        config
    }

    fn origin(&self, name: &str) -> &HttpOrigin {
        &self
            .origins
            .iter()
            .find(|(n, _)| n == name)
            .expect("a named origin")
            .1
    }
}

/// Sends `request` on a fresh connection; returns the name of the origin
/// that answered, or `error:REASON` for an answer ringway wrote.
fn served_by(config: &HttpConfig, request: &Req) -> String {
    let response = HttpConn::open(config.listen).exchange(request);
    match response.header("x-ringway-error") {
        Some(reason) => format!("error:{reason}"),
        None => response.body_text(),
    }
}

#[test]
fn host_matches_exactly_ignoring_case_and_port() {
    let named = Named::new(&["api", "www"]);
    let config = named.clusters(
        HttpConfig::new()
            .route(Route::new("api").host("api.example.com").cluster("api"))
            .route(Route::new("www").host("www.example.com").cluster("www")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    let cases = [
        ("api.example.com", "api"),
        ("API.Example.COM", "api"),
        ("api.example.com:8443", "api"),
        ("www.example.com", "www"),
        ("xapi.example.com", "error:no_route"),
        ("api.example.com.evil", "error:no_route"),
    ];
    for (host, want) in cases {
        assert_eq!(
            served_by(&config, &Req::get("/").host(host)),
            want,
            "Host: {host}"
        );
    }
}

#[test]
fn wildcard_host_matches_subdomains_but_not_the_domain_itself() {
    let named = Named::new(&["wild"]);
    let config = named.clusters(
        HttpConfig::new().route(Route::new("wild").host("*.example.com").cluster("wild")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    let cases = [
        ("a.example.com", "wild"),
        ("a.b.example.com", "wild"),
        ("A.EXAMPLE.COM:80", "wild"),
        ("example.com", "error:no_route"),
        ("aexample.com", "error:no_route"),
        ("a.example.org", "error:no_route"),
    ];
    for (host, want) in cases {
        assert_eq!(
            served_by(&config, &Req::get("/").host(host)),
            want,
            "Host: {host}"
        );
    }
}

#[test]
fn path_matches_exactly_or_by_byte_prefix_before_the_query() {
    let named = Named::new(&["exact", "prefix"]);
    let config = named.clusters(
        HttpConfig::new()
            .route(Route::new("exact").path("/exact").cluster("exact"))
            .route(Route::new("prefix").path_prefix("/api").cluster("prefix")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    let cases = [
        ("/exact", "exact"),
        ("/exact?x=1", "exact"),
        ("/exact/", "error:no_route"),
        ("/exactly", "error:no_route"),
        ("/api", "prefix"),
        ("/api/users?id=3", "prefix"),
        ("/apix", "prefix"),
        ("/x?/api", "error:no_route"),
        ("/API", "error:no_route"),
    ];
    for (target, want) in cases {
        assert_eq!(
            served_by(&config, &Req::get(target)),
            want,
            "target {target}"
        );
    }
}

#[test]
fn methods_restrict_a_route() {
    let named = Named::new(&["reads", "rest"]);
    let config = named.clusters(
        HttpConfig::new()
            .route(
                Route::new("reads")
                    .methods(&["GET", "HEAD"])
                    .cluster("reads"),
            )
            .route(Route::new("rest").cluster("rest")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    assert_eq!(served_by(&config, &Req::get("/")), "reads");
    assert_eq!(served_by(&config, &Req::post("/").body(b"x")), "rest");
    assert_eq!(served_by(&config, &Req::new("DELETE", "/")), "rest");
    // Methods are case-sensitive.
    assert_eq!(served_by(&config, &Req::new("get", "/")), "rest");
    let head = HttpConn::open(config.listen).exchange(&Req::new("HEAD", "/"));
    assert_eq!(head.status, 200);
    assert_eq!(named.origin("reads").requests().len(), 2);
}

#[test]
fn header_conditions_exact_present_and_prefix() {
    let named = Named::new(&["canary", "debug", "beta", "rest"]);
    let config = named.clusters(
        HttpConfig::new()
            .route(
                Route::new("canary")
                    .header_exact("x-canary", "1")
                    .cluster("canary"),
            )
            .route(
                Route::new("debug")
                    .header_present("x-debug")
                    .cluster("debug"),
            )
            .route(
                Route::new("beta")
                    .header_prefix("x-user", "beta-")
                    .cluster("beta"),
            )
            .route(Route::new("rest").cluster("rest")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    let cases: [(&[(&str, &str)], &str); 8] = [
        (&[("X-Canary", "1")], "canary"),
        (&[("x-canary", "10")], "rest"),
        (&[("x-canary", "0"), ("x-canary", "1")], "canary"),
        (&[("X-Debug", "")], "debug"),
        (&[("x-debug", "anything")], "debug"),
        (&[("x-user", "beta-alice")], "beta"),
        (&[("x-user", "alpha-beta-bob")], "rest"),
        (&[], "rest"),
    ];
    for (headers, want) in cases {
        let mut request = Req::get("/");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        assert_eq!(served_by(&config, &request), want, "headers {headers:?}");
    }
}

#[test]
fn the_first_matching_route_wins() {
    let named = Named::new(&["first", "second", "third"]);
    let config = named.clusters(
        HttpConfig::new()
            .route(Route::new("first").path_prefix("/a/b").cluster("first"))
            .route(Route::new("second").path_prefix("/a").cluster("second"))
            .route(Route::new("third").path("/a/b/c").cluster("third")),
    );
    let _proxy = Ringway::start(&config.to_toml());

    assert_eq!(served_by(&config, &Req::get("/a/b/c")), "first");
    assert_eq!(served_by(&config, &Req::get("/a/x")), "second");
    assert!(named.origin("third").requests().is_empty());
}

#[test]
fn a_redirect_builds_its_location_from_the_request() {
    let config = HttpConfig::new()
        .route(Route::new("moved").path_prefix("/old").redirect(
            301,
            Some("https"),
            Some("new.example"),
            Some("/p"),
        ))
        .route(Route::new("path-only").path_prefix("/keep").redirect(
            302,
            None,
            None,
            Some("/kept"),
        ))
        .route(Route::new("https-only").redirect(308, Some("https"), None, None));
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let moved = conn.exchange(&Req::get("/old/page?x=1&y=2").host("old.example"));
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("https://new.example/p?x=1&y=2")
    );

    let kept = HttpConn::open(config.listen).exchange(&Req::get("/keep?q=z").host("old.example"));
    assert_eq!(kept.status, 302);
    assert_eq!(kept.header("location"), Some("http://old.example/kept?q=z"));

    let upgraded =
        HttpConn::open(config.listen).exchange(&Req::get("/any/path").host("plain.example"));
    assert_eq!(upgraded.status, 308);
    assert_eq!(
        upgraded.header("location"),
        Some("https://plain.example/any/path")
    );
}

#[test]
fn curl_reads_a_redirect() {
    let config = HttpConfig::new().route(Route::new("moved").redirect(
        301,
        Some("https"),
        Some("new.example"),
        Some("/landing"),
    ));
    let _proxy = Ringway::start(&config.to_toml());

    let url = format!("http://{}/from?ref=curl", config.listen);
    let run = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &url,
    ]);
    assert!(run.success, "curl failed: {}", run.stderr);
    assert_eq!(run.stdout, "301 https://new.example/landing?ref=curl");
    let run = curl(&["-sS", "-D", "-", "-o", "/dev/null", &url]);
    let heads = curl_heads(&run.stdout);
    let location = heads[0]
        .1
        .iter()
        .find(|(n, _)| n == "location")
        .map(|(_, v)| v.as_str());
    assert_eq!(location, Some("https://new.example/landing?ref=curl"));
}

#[test]
fn a_direct_route_answers_without_an_upstream() {
    let config = HttpConfig::new()
        .route(
            Route::new("health")
                .path("/healthz")
                .direct(200, "ok\n", Some("text/plain")),
        )
        .route(Route::new("gone").direct(410, "gone for good\n", None));
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let health = conn.exchange(&Req::get("/healthz"));
    assert_eq!(health.status, 200);
    assert_eq!(health.body, b"ok\n");
    assert_eq!(health.header("content-type"), Some("text/plain"));
    assert_eq!(health.header("content-length"), Some("3"));
    let gone = conn.exchange(&Req::get("/anything"));
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body, b"gone for good\n");
}

#[test]
fn header_edits_apply_to_the_request_and_the_response() {
    let origin = HttpOrigin::start(|_| {
        Reply::ok(b"edited")
            .header("Server", "origin/1.0")
            .header("X-Served-By", "origin")
            .header("X-Served-By", "origin-again")
            .header("X-Origin-Only", "yes")
    });
    let config = HttpConfig::new()
        .route(
            Route::new("edit")
                .cluster("app")
                .request_headers(&HeaderEdits {
                    remove: vec!["x-internal".into()],
                    set: vec![("x-env".into(), "prod".into())],
                    add: vec![("x-via".into(), "ringway".into())],
                })
                .response_headers(&HeaderEdits {
                    remove: vec!["server".into()],
                    set: vec![("x-served-by".into(), "ringway".into())],
                    add: vec![("x-extra".into(), "1".into())],
                }),
        )
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let response = HttpConn::open(config.listen).exchange(
        &Req::get("/")
            .header("X-Internal", "secret")
            .header("X-Env", "dev")
            .header("X-Env", "test")
            .header("X-Via", "client"),
    );
    assert_eq!(response.body, b"edited");
    assert_eq!(response.header("server"), None);
    assert_eq!(response.headers_named("x-served-by"), ["ringway"]);
    assert_eq!(response.headers_named("x-extra"), ["1"]);
    assert_eq!(response.headers_named("x-origin-only"), ["yes"]);

    let up = &origin.requests()[0];
    assert_eq!(up.header("x-internal"), None);
    assert_eq!(up.headers_named("x-env"), ["prod"]);
    assert_eq!(up.headers_named("x-via"), ["client", "ringway"]);
}

#[test]
fn rewrite_prefix_changes_the_path_upstream() {
    let origin = HttpOrigin::ok("rewritten");
    let config = HttpConfig::new()
        .route(
            Route::new("v1-to-v2")
                .path_prefix("/api/")
                .rewrite_prefix("/v2/")
                .cluster("app"),
        )
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    assert_eq!(conn.exchange(&Req::get("/api/users/7?full=1")).status, 200);
    assert_eq!(conn.exchange(&Req::get("/api/")).status, 200);
    let targets: Vec<String> = origin.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/v2/users/7?full=1", "/v2/"]);
}

#[test]
fn a_90_10_split_lands_within_two_points_and_metrics_agree() {
    const REQUESTS: usize = 10_000;
    let named = Named::new(&["v1", "v2"]);
    let config = named
        .clusters(HttpConfig::new().route(Route::new("canary").split(&[("v1", 90), ("v2", 10)])));
    let _proxy = Ringway::start(&config.to_toml());

    let mut answered = [0usize; 2];
    // Ten kept-alive connections of 1,000 requests each.
    for c in 0..10 {
        let mut conn = HttpConn::open(config.listen);
        for i in 0..REQUESTS / 10 {
            let response = conn.exchange(&Req::get(&format!("/item/{c}/{i}")));
            match response.body.as_slice() {
                b"v1" => answered[0] += 1,
                b"v2" => answered[1] += 1,
                other => panic!(
                    "request {c}/{i}: unexpected answer {} {:?}",
                    response.status,
                    String::from_utf8_lossy(other)
                ),
            }
        }
    }
    let counted = [
        named.origin("v1").requests().len(),
        named.origin("v2").requests().len(),
    ];
    assert_eq!(counted, answered, "what the origins counted vs the answers");
    assert_eq!(counted[0] + counted[1], REQUESTS);
    let v2_share = counted[1] as f64 / REQUESTS as f64;
    assert!(
        (0.08..=0.12).contains(&v2_share),
        "v2 got {} of {REQUESTS} requests ({:.1} %), not 10 % ± 2 points",
        counted[1],
        v2_share * 100.0
    );
    for (cluster, count) in [("v1", counted[0]), ("v2", counted[1])] {
        wait_metric(
            config.admin,
            "ringway_http_upstream_requests_total",
            &[
                ("listener", "web"),
                ("route", "canary"),
                ("cluster", cluster),
            ],
            count as f64,
        );
    }
    let metrics = ringway_kit::admin::metrics(config.admin);
    assert_eq!(
        metric_sum(
            &metrics,
            "ringway_http_upstream_requests_total",
            &[("listener", "web")]
        ),
        REQUESTS as f64
    );
}

/// A reload reaches a keep-alive connection at its next request: weights
/// and routes are not frozen into connections that were open before.
#[test]
fn a_keep_alive_connection_follows_a_reload_at_its_next_request() {
    let stable = HttpOrigin::ok("stable");
    let canary = HttpOrigin::ok("canary");
    let config = HttpConfig::new()
        .route(Route::new("app").split(&[("stable", 100), ("canary", 0)]))
        .cluster("stable", &[stable.addr()])
        .cluster("canary", &[canary.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    for _ in 0..5 {
        assert_eq!(conn.exchange(&Req::get("/")).body, b"stable");
    }
    let mut moved = HttpConfig::new()
        .route(Route::new("app").split(&[("stable", 0), ("canary", 100)]))
        .cluster("stable", &[stable.addr()])
        .cluster("canary", &[canary.addr()]);
    (moved.listen, moved.admin) = (config.listen, config.admin);
    let reply = ringway_kit::admin::post(config.admin, "/config", &moved.to_toml());
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The same connection, after the reload answered 200 (every worker runs
    // the new table by then).
    for _ in 0..5 {
        assert_eq!(conn.exchange(&Req::get("/")).body, b"canary");
    }
    assert_eq!(stable.connections().len(), 1);
}
