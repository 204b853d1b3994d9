//! Request mirroring (shadow traffic): a route's `mirror` sends a copy of
//! its requests to another cluster and drops the answer. The shadow sees
//! the head the primary got (with `connection: close`, and `-shadow` after
//! the host name with `host_suffix`) and a small body that came with it;
//! the client sees only the primary's answers; a shadow that is down or
//! silent changes nothing for the primary, and holds at most
//! `max_in_flight` copies per worker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::ports::dead_endpoint;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::http_client::{curl, metric_sum, wait_metric, HttpConn, Req};
use ringway_tests::http_config::{quote, Cluster, HeaderEdits, HttpConfig, Route};
use ringway_tests::http_origin::{Gate, HttpOrigin, Recorded, Reply};
use ringway_tests::pki::Ca;

/// Longest wait for something that happens at once.
const SOON: Duration = Duration::from_secs(10);
/// The mirror family.
const MIRRORED: &str = "ringway_http_mirror_requests_total";

/// Route `all` to cluster `app` (the primary) with `mirror` (its inline
/// table's keys, after `cluster = "shadow"`), and the two clusters.
fn config(primary: SocketAddr, shadow: SocketAddr, mirror: &str) -> HttpConfig {
    HttpConfig::new()
        .route(
            Route::new("all")
                .cluster("app")
                .key("mirror", &format!("{{ cluster = \"shadow\"{mirror} }}")),
        )
        .cluster("app", &[primary])
        .cluster("shadow", &[shadow])
}

/// The mirror count of `outcome` in /metrics.
fn mirrored(admin_addr: SocketAddr, outcome: &str) -> f64 {
    let metrics = admin::metrics(admin_addr);
    metric_sum(&metrics, MIRRORED, &[("outcome", outcome)])
}

/// Every `ringway_http_errors_total` series summed, and the primary
/// cluster's endpoint failures and ejections: what a shadow must never
/// move.
fn primary_troubles(admin_addr: SocketAddr) -> [f64; 3] {
    let metrics = admin::metrics(admin_addr);
    [
        metric_sum(&metrics, "ringway_http_errors_total", &[]),
        metric_sum(
            &metrics,
            "ringway_upstream_endpoint_failures_total",
            &[("cluster", "app")],
        ),
        metric_sum(
            &metrics,
            "ringway_endpoint_ejections_total",
            &[("cluster", "app")],
        ),
    ]
}

/// `n` requests on one keep-alive connection, each answered 200 with the
/// primary's body.
fn primary_requests(listen: SocketAddr, n: usize) {
    let mut client = HttpConn::open(listen);
    for i in 0..n {
        let response = client.exchange(&Req::get(&format!("/r/{i}")));
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.body_text(), "primary", "request {i}");
    }
}

/// The shadow's copy of primary request `p`: found by its request id.
fn copy_of<'a>(p: &Recorded, copies: &'a [Recorded]) -> &'a Recorded {
    let id = p
        .header("x-request-id")
        .expect("ringway writes a request id");
    copies
        .iter()
        .find(|s| s.header("x-request-id") == Some(id))
        .unwrap_or_else(|| panic!("no copy of {} {} (id {id})", p.method, p.target))
}

#[test]
fn every_request_goes_to_the_shadow_with_the_primarys_head_and_body() {
    let primary = HttpOrigin::ok("primary");
    let shadow = HttpOrigin::ok("shadow");
    let log = tempfile::NamedTempFile::new().expect("a temp file");
    let path = log.path().to_str().expect("a UTF-8 path").to_owned();
    let edits = HeaderEdits {
        set: vec![("x-edited".into(), "by-route".into())],
        ..HeaderEdits::default()
    };
    let config = HttpConfig::new()
        .route(
            Route::new("all")
                .cluster("app")
                .request_headers(&edits)
                .key("mirror", r#"{ cluster = "shadow", host_suffix = true }"#),
        )
        .cluster("app", &[primary.addr()])
        .cluster("shadow", &[shadow.addr()])
        .access_log(&ringway_tests::http_config::AccessLog::to(&path));
    let proxy = Ringway::start(&config.to_toml());

    let mut client = HttpConn::open(config.listen);
    let get = Req::get("/a/b?q=1")
        .host("a.example:8080")
        .header("x-test", "one");
    let post = Req::post("/submit")
        .host("b.example")
        .header("content-type", "text/plain")
        .body(b"hello mirror");
    for request in [&get, &post] {
        let response = client.exchange(request);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.body_text(),
            "primary",
            "the client gets the primary's answer"
        );
    }
    // A real client too.
    let url = format!("http://{}/curl", config.listen);
    let run = curl(&["-s", "-H", "Host: c.example", &url]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "primary");

    let copies = shadow.wait_requests(3, SOON);
    let originals = primary.requests();
    assert_eq!(originals.len(), 3);
    for p in &originals {
        let s = copy_of(p, &copies);
        assert_eq!((&s.method, &s.target), (&p.method, &p.target));
        // The same fields in the same order, the host marked, and the copy
        // closing its connection.
        let mut want = p.headers.clone();
        for (name, value) in &mut want {
            if name.eq_ignore_ascii_case("host") {
                *value = match value.split_once(':') {
                    Some((host, port)) => format!("{host}-shadow:{port}"),
                    None => format!("{value}-shadow"),
                };
            }
        }
        want.push(("connection".into(), "close".into()));
        assert_eq!(s.headers, want, "the copy of {} {}", p.method, p.target);
        assert_eq!(s.header("x-edited"), Some("by-route"), "the route's edits");
        assert_eq!(s.body, p.body);
        assert_eq!(s.body_len, p.body_len);
    }
    let post_copy = copy_of(&originals[1], &copies);
    assert_eq!(post_copy.header("host"), Some("b.example-shadow"));
    assert_eq!(post_copy.body_text(), "hello mirror");
    assert_eq!(
        copy_of(&originals[0], &copies).header("host"),
        Some("a.example-shadow:8080")
    );

    wait_metric(config.admin, MIRRORED, &[("outcome", "answered")], 3.0);
    let metrics = admin::metrics(config.admin);
    let labels = [
        ("listener", "web"),
        ("route", "all"),
        ("cluster", "shadow"),
        ("outcome", "answered"),
    ];
    assert_eq!(metric_sum(&metrics, MIRRORED, &labels), 3.0);
    for outcome in ["failed", "dropped", "skipped_body"] {
        assert_eq!(metric_sum(&metrics, MIRRORED, &[("outcome", outcome)]), 0.0);
    }
    // The shadow's answers are no client requests: three records, three
    // requests, all to the primary.
    wait_metric(config.admin, "ringway_access_log_records_total", &[], 3.0);
    wait_metric(config.admin, "ringway_http_requests_total", &[], 3.0);
    assert_eq!(
        metric_sum(
            &metrics,
            "ringway_http_upstream_requests_total",
            &[("cluster", "shadow")]
        ),
        0.0,
        "no route sends to the shadow cluster as a target"
    );
    let stats = admin::stats(config.admin);
    let mirror = "/http/listeners/0/routes/0/mirror";
    assert_eq!(
        stats.json.pointer(&format!("{mirror}/cluster")),
        Some(&serde_json::json!("shadow"))
    );
    assert_eq!(stats.u64(&format!("{mirror}/answered")), 3);
    drop(client);
    proxy.stop().assert_clean();
}

/// With `percent = 10`, 2,000 requests are mirrored Binomial(2000, 0.1):
/// mean 200, standard deviation 13.4. The bounds 126..=274 are 5.5
/// deviations either side: a correct proxy fails this about 4 times in
/// 100 million runs.
#[test]
fn a_tenth_of_the_requests_is_mirrored() {
    const REQUESTS: usize = 2000;
    let primary = HttpOrigin::ok("primary");
    let shadow = HttpOrigin::ok("shadow");
    let config = config(
        primary.addr(),
        shadow.addr(),
        ", percent = 10, max_in_flight = 10000",
    );
    let proxy = Ringway::start(&config.to_toml());
    primary_requests(config.listen, REQUESTS);
    let seen = poll("every copy answered", SOON, || {
        let answered = mirrored(config.admin, "answered");
        let copies = shadow.requests().len();
        if answered == copies as f64 {
            Ok(copies)
        } else {
            Err(format!("{answered} answered, {copies} at the shadow"))
        }
    });
    assert!(
        (126..=274).contains(&seen),
        "{seen} of {REQUESTS} requests mirrored at 10%"
    );
    for outcome in ["failed", "dropped", "skipped_body"] {
        assert_eq!(mirrored(config.admin, outcome), 0.0, "{outcome}");
    }
    assert_eq!(primary.requests().len(), REQUESTS);
    proxy.stop().assert_clean();
}

#[test]
fn bodies_too_large_chunked_or_not_yet_received_are_not_mirrored() {
    let heads = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&heads);
    // The primary echoes bodies back; it counts heads as they arrive.
    let primary = HttpOrigin::start(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Reply::echo()
    });
    let shadow = HttpOrigin::ok("shadow");
    let config = config(primary.addr(), shadow.addr(), ", max_body = 1024");
    let proxy = Ringway::start(&config.to_toml());
    let mut client = HttpConn::open(config.listen);

    // Over max_body, though all of it is sent with the head.
    let large = vec![b'x'; 4096];
    let response = client.exchange(&Req::post("/large").body(&large));
    assert_eq!((response.status, response.body.len()), (200, 4096));
    // Chunked.
    let response = client.exchange(&Req::post("/chunked").chunked(&[b"ab", b"cd"]));
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "abcd")
    );
    // Small, but its body comes after the primary has the head.
    let before = heads.load(Ordering::SeqCst);
    client.send_raw(b"POST /late HTTP/1.1\r\nhost: h\r\ncontent-length: 4\r\n\r\n");
    poll("the head reached the primary", SOON, || {
        match heads.load(Ordering::SeqCst) {
            n if n > before => Ok(()),
            n => Err(format!("{n} heads")),
        }
    });
    client.send_raw(b"late");
    let response = client.read();
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "late")
    );
    // Small and whole with its head: mirrored. (On a new connection: the
    // echo's head went out before the late body came, so ringway closed
    // that one after the answer.)
    let mut client = HttpConn::open(config.listen);
    let response = client.exchange(&Req::post("/small").body(b"small"));
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "small")
    );

    wait_metric(config.admin, MIRRORED, &[("outcome", "skipped_body")], 3.0);
    wait_metric(config.admin, MIRRORED, &[("outcome", "answered")], 1.0);
    let copies = shadow.requests();
    assert_eq!(copies.len(), 1, "{}", shadow.summary());
    assert_eq!(copies[0].target, "/small");
    assert_eq!(copies[0].body_text(), "small");
    assert_eq!(primary_troubles(config.admin), [0.0; 3]);
    drop(client);
    proxy.stop().assert_clean();
}

#[test]
fn a_shadow_that_refuses_connections_changes_nothing_for_the_primary() {
    const REQUESTS: usize = 20;
    let primary = HttpOrigin::ok("primary");
    let config = config(primary.addr(), dead_endpoint(), "");
    let proxy = Ringway::start(&config.to_toml());
    primary_requests(config.listen, REQUESTS);
    wait_metric(
        config.admin,
        MIRRORED,
        &[("outcome", "failed")],
        REQUESTS as f64,
    );
    assert_eq!(mirrored(config.admin, "answered"), 0.0);
    assert_eq!(primary_troubles(config.admin), [0.0; 3]);
    let metrics = admin::metrics(config.admin);
    assert_eq!(
        metric_sum(
            &metrics,
            "ringway_http_responses_total",
            &[("cluster", "app"), ("class", "2xx")]
        ),
        REQUESTS as f64
    );
    assert_eq!(primary.requests().len(), REQUESTS);
    proxy.stop().assert_clean();
}

/// A shadow that takes every copy and never finishes its answer: each copy
/// holds a shadow exchange open. Once the worker has `max_in_flight` of
/// them, further copies are dropped (counted), and the primary's requests
/// go on all the while; when the shadow lets go, the place comes free.
#[test]
fn a_silent_shadow_holds_at_most_max_in_flight_and_the_primary_goes_on() {
    const MAX: usize = 4;
    const REQUESTS: usize = 12;
    let gate = Gate::new();
    let held = gate.clone();
    // The head of a 100-byte answer, then nothing until the gate opens,
    // then a reset.
    let shadow =
        HttpOrigin::start(move |_| Reply::partial_with_length(100, b"", Some(held.clone())));
    let primary = HttpOrigin::ok("primary");
    let config = config(
        primary.addr(),
        shadow.addr(),
        &format!(", max_in_flight = {MAX}"),
    )
    .request_timeout("60s");
    let proxy = Ringway::start(&config.to_toml());

    primary_requests(config.listen, REQUESTS);
    // The primary answered all of them while the shadow holds its copies.
    poll("the shadow holds its copies", SOON, || {
        match shadow.requests().len() {
            MAX => Ok(()),
            n => Err(format!("{n} held")),
        }
    });
    wait_metric(
        config.admin,
        MIRRORED,
        &[("outcome", "dropped")],
        (REQUESTS - MAX) as f64,
    );
    assert_eq!(
        shadow.requests().len(),
        MAX,
        "no more than max_in_flight copies"
    );
    let under_way = |admin_addr| {
        let metrics = admin::metrics(admin_addr);
        metric_sum(
            &metrics,
            "ringway_http_mirror_in_flight",
            &[("route", "all")],
        )
    };
    assert_eq!(under_way(config.admin), MAX as f64);
    assert_eq!(
        admin::stats(config.admin).u64("/http/listeners/0/routes/0/mirror/in_flight"),
        MAX as u64
    );
    assert_eq!(mirrored(config.admin, "answered"), 0.0);
    assert_eq!(mirrored(config.admin, "failed"), 0.0);
    assert_eq!(primary_troubles(config.admin), [0.0; 3]);

    // The shadow resets them: failures, and the places come free.
    gate.open();
    wait_metric(config.admin, MIRRORED, &[("outcome", "failed")], MAX as f64);
    primary_requests(config.listen, 1);
    poll("the next copy went", SOON, || {
        match shadow.requests().len() {
            n if n == MAX + 1 => Ok(()),
            n => Err(format!("{n} at the shadow")),
        }
    });
    wait_metric(
        config.admin,
        MIRRORED,
        &[("outcome", "failed")],
        (MAX + 1) as f64,
    );
    assert_eq!(under_way(config.admin), 0.0, "every copy is over");
    assert_eq!(primary_troubles(config.admin), [0.0; 3]);
    proxy.stop().assert_clean();
}

/// A shadow that answers with far more than any buffer holds, closing the
/// connection after it: read through and dropped, counted answered; the
/// client never sees a byte of it.
#[test]
fn a_large_shadow_answer_is_read_and_dropped() {
    let primary = HttpOrigin::ok("primary");
    let body = vec![b's'; 4 << 20];
    let shadow = HttpOrigin::start(move |_| Reply::close_delimited(200, &body));
    let config = config(primary.addr(), shadow.addr(), "");
    let proxy = Ringway::start(&config.to_toml());
    primary_requests(config.listen, 3);
    wait_metric(config.admin, MIRRORED, &[("outcome", "answered")], 3.0);
    let metrics = admin::metrics(config.admin);
    // Body bytes from upstreams to clients: the primary's 7-byte bodies.
    assert_eq!(
        metric_sum(&metrics, "ringway_bytes_from_upstreams_total", &[]),
        3.0 * 7.0
    );
    assert_eq!(primary_troubles(config.admin), [0.0; 3]);
    proxy.stop().assert_clean();
}

/// Copies still under way when ringway stops are cut, not waited for: the
/// stop is clean while a silent shadow holds every copy it got.
#[test]
fn a_stop_does_not_wait_for_copies_under_way() {
    let gate = Gate::new();
    let held = gate.clone();
    let shadow =
        HttpOrigin::start(move |_| Reply::partial_with_length(100, b"", Some(held.clone())));
    let primary = HttpOrigin::ok("primary");
    let config = config(primary.addr(), shadow.addr(), "").request_timeout("60s");
    let proxy = Ringway::start(&config.to_toml());
    primary_requests(config.listen, 3);
    poll("the shadow holds its copies", SOON, || {
        match shadow.requests().len() {
            3 => Ok(()),
            n => Err(format!("{n} held")),
        }
    });
    let exit = proxy.stop();
    exit.assert_clean();
    assert!(
        !exit.stderr.contains("panicked"),
        "a worker panicked:\n{}",
        exit.stderr
    );
    gate.open();
}

/// A mirror cluster with `tls`: each copy goes over its own TLS connection,
/// verified as the cluster says, here to a second ringway that terminates
/// TLS in front of the shadow origin.
#[test]
fn copies_go_over_tls_to_a_mirror_cluster_with_tls() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let server = ca.server("server", &["localhost"]);
    let shadow = HttpOrigin::ok("shadow");
    let terminating = HttpConfig::forward_all(&[shadow.addr()]).listener_key(
        "tls",
        &format!(
            "{{ cert = {}, key = {} }}",
            quote(&server.cert_str()),
            quote(&server.key_str())
        ),
    );
    let front = Ringway::start(&terminating.to_toml());
    let primary = HttpOrigin::ok("primary");
    let cluster_tls = format!("{{ ca = {}, sni = \"localhost\" }}", quote(&ca.pem_str()));
    let config = HttpConfig::new()
        .route(
            Route::new("all")
                .cluster("app")
                .key("mirror", r#"{ cluster = "shadow" }"#),
        )
        .cluster("app", &[primary.addr()])
        .cluster_with(Cluster::new("shadow", &[terminating.listen]).key("tls", &cluster_tls));
    let proxy = Ringway::start(&config.to_toml());
    primary_requests(config.listen, 3);
    wait_metric(config.admin, MIRRORED, &[("outcome", "answered")], 3.0);
    // Each copy has its own connection: they may arrive in any order.
    let mut paths: Vec<String> = shadow
        .wait_requests(3, SOON)
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/r/0", "/r/1", "/r/2"]);
    assert_eq!(admin::stats(config.admin).sum("upstream_tls_failures"), 0);
    assert_eq!(admin::stats(terminating.admin).sum("tls_handshakes"), 3);
    proxy.stop().assert_clean();
    front.stop().assert_clean();
}

/// `ringway check` refuses a bad `mirror` with the file, line and key.
#[test]
fn a_bad_mirror_is_refused_with_its_key_and_line() {
    for (mirror, key, reason) in [
        (
            r#"{ cluster = "nowhere" }"#,
            "listeners[0].routes[0].mirror.cluster",
            "no cluster named `nowhere`",
        ),
        (
            r#"{ cluster = "shadow", percent = 150 }"#,
            "listeners[0].routes[0].mirror.percent",
            "percent 150 is out of range",
        ),
        (
            r#"{ cluster = "shadow", max_in_flight = 0 }"#,
            "listeners[0].routes[0].mirror.max_in_flight",
            "from 1 to 10000",
        ),
    ] {
        let text = HttpConfig::new()
            .route(Route::new("all").cluster("app").key("mirror", mirror))
            .cluster("app", &[dead_endpoint()])
            .cluster("shadow", &[dead_endpoint()])
            .to_toml();
        let file = write_config(&text);
        let path = file.path().to_str().expect("a UTF-8 temp path");
        let output = run_to_exit(&["check", path], Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let line = 1 + text
            .lines()
            .position(|l| l.contains("mirror ="))
            .expect("the mirror line");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
        assert!(
            error.starts_with(&format!("error: {path}:{line}:")),
            "the error names line {line}: {error}"
        );
        assert!(error.contains(&format!(": {key}: ")), "{error}");
        assert!(error.contains(reason), "{error}");
    }
}

/// A reload that points the mirror elsewhere: copies under way to the old
/// shadow go on where they are (the old one still holds them), and new
/// copies go to the new cluster at once, counted under its label; the
/// primary answers throughout.
#[test]
fn a_reload_moves_the_mirror_without_touching_copies_under_way() {
    let gate = Gate::new();
    let held = gate.clone();
    let old = HttpOrigin::start(move |_| Reply::partial_with_length(100, b"", Some(held.clone())));
    let new = HttpOrigin::ok("new shadow");
    let primary = HttpOrigin::ok("primary");
    let base = HttpConfig::new()
        .cluster("app", &[primary.addr()])
        .cluster("old", &[old.addr()])
        .cluster("new", &[new.addr()])
        .request_timeout("60s");
    // The same listener and admin addresses, the route's mirror to
    // `mirror_cluster`.
    let config_to = |mirror_cluster: &str| {
        base.clone().route(Route::new("all").cluster("app").key(
            "mirror",
            &format!("{{ cluster = \"{mirror_cluster}\", max_in_flight = 2 }}"),
        ))
    };
    let proxy = Ringway::start(&config_to("old").to_toml());
    primary_requests(base.listen, 2);
    poll("the old shadow holds its copies", SOON, || {
        match old.requests().len() {
            2 => Ok(()),
            n => Err(format!("{n} held")),
        }
    });

    let response = admin::post(base.admin, "/config", &config_to("new").to_toml());
    assert_eq!(response.status, 200, "{response:?}");
    admin::wait_generation(base.admin, 2, SOON);
    primary_requests(base.listen, 2);
    new.wait_requests(2, SOON);
    wait_metric(
        base.admin,
        MIRRORED,
        &[("cluster", "new"), ("outcome", "answered")],
        2.0,
    );
    assert_eq!(mirrored(base.admin, "dropped"), 0.0);
    assert_eq!(old.requests().len(), 2, "the old copies are still held");
    assert_eq!(primary_troubles(base.admin), [0.0; 3]);
    gate.open();
    proxy.stop().assert_clean();
}
