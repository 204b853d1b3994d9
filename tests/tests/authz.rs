//! Authorization and identity routing with real clients: `curl` over mutual
//! TLS, presenting X509-SVIDs minted by the test's own CA (or no
//! certificate at all), against listeners with `[listeners.authorization]`
//! and routes with `peer_identity`; and raw TCP clients against TCP
//! listeners with authorization.
//!
//! What is checked: the allow/deny matrix by identity, path and method;
//! spellings of a denied path (`..`, `%2e%2e`, `//`, `%61`, `;`, `%2F`)
//! that must not get through; both defaults; a client's own
//! `x-ringway-peer-identity` that must count for nothing; the counts in
//! `/metrics` and `/stats` against what was sent; the effective
//! configuration read back.
//!
//! TCP listeners take no TLS on this version, so TCP authorization is
//! tested with rules on connections without identity (`unauthenticated`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::ports::free_port;
use ringway_kit::Ringway;
use ringway_tests::http_client::{curl, metric_sum};
use ringway_tests::http_config::{quote, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::net;
use ringway_tests::origin::{echo, Origin};
use ringway_tests::pki::{Ca, Leaf};

const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const API: &str = "spiffe://example.org/ns/default/sa/api";
const OPS: &str = "spiffe://example.org/ns/ops/sa/admin";
const DECISIONS: &str = "ringway_authz_decisions_total";

/// The test's CA, the server's certificate, and one SVID per workload.
struct Mesh {
    _dir: tempfile::TempDir,
    ca: Ca,
    server: Leaf,
    web: Leaf,
    api: Leaf,
    ops: Leaf,
}

fn mesh() -> Mesh {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let server = ca.server("server", &["localhost", "127.0.0.1"]);
    let web = ca.workload("web", WEB);
    let api = ca.workload("api", API);
    let ops = ca.workload("ops", OPS);
    Mesh {
        _dir: dir,
        ca,
        server,
        web,
        api,
        ops,
    }
}

/// `config` with TLS on its listener: client certificates verified
/// against the mesh CA, optional (a client without one has no identity).
fn mtls(config: HttpConfig, mesh: &Mesh) -> HttpConfig {
    let tls = format!(
        "{{ cert = {}, key = {}, client_ca = {}, require_client_cert = false }}",
        quote(&mesh.server.cert_str()),
        quote(&mesh.server.key_str()),
        quote(&mesh.ca.pem_str())
    );
    config.listener_key("tls", &tls)
}

/// `[listeners.authorization]` as an inline table: `default`, extra keys
/// (`key = value, ...`), and the rules, each an inline table.
fn authorization(default: &str, extra: &str, rules: &[&str]) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{extra}, ")
    };
    format!(
        "{{ default = {}, {extra}rules = [{}] }}",
        quote(default),
        rules.join(", ")
    )
}

/// What a client got.
#[derive(Debug)]
struct Fetched {
    status: u16,
    /// The `x-ringway-error` of an answer ringway wrote itself.
    error: Option<String>,
    body: String,
}

/// A client of the listener of `config`: with `who`'s certificate (or
/// none), over TLS, or plain when `mesh` is `None`.
struct Client<'a> {
    config: &'a HttpConfig,
    mesh: Option<&'a Mesh>,
}

impl Client<'_> {
    /// `method path` as written (`--path-as-is`: curl removes no dot
    /// segment), with `headers`, as `who`.
    fn send(&self, who: Option<&Leaf>, method: &str, path: &str, headers: &[&str]) -> Fetched {
        let port = self.config.listen.port();
        let (url, resolve, ca) = match self.mesh {
            Some(mesh) => (
                format!("https://localhost:{port}{path}"),
                format!("localhost:{port}:127.0.0.1"),
                Some(mesh.ca.pem_str()),
            ),
            None => (
                format!("http://127.0.0.1:{port}{path}"),
                String::new(),
                None,
            ),
        };
        let mut args: Vec<String> = ["-sS", "-i", "--path-as-is", "-X", method]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if method == "POST" {
            args.extend(["--data".to_owned(), String::new()]);
        }
        if let Some(ca) = ca {
            args.extend(["--cacert".to_owned(), ca, "--resolve".to_owned(), resolve]);
        }
        if let Some(leaf) = who {
            args.extend([
                "--cert".to_owned(),
                leaf.cert_str(),
                "--key".to_owned(),
                leaf.key_str(),
            ]);
        }
        for h in headers {
            args.extend(["-H".to_owned(), (*h).to_owned()]);
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = curl(&args);
        assert!(run.success, "curl {args:?} failed: {}", run.stderr);
        let (head, body) = run
            .stdout
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", run.stdout));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        let error = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("x-ringway-error"))
            .map(|(_, v)| v.trim().to_owned());
        Fetched {
            status,
            error,
            body: body.to_owned(),
        }
    }
}

/// The decisions counted for `rule` (`""`: the default) of listener `web`.
fn decisions(config: &HttpConfig, rule: &str, decision: &str) -> f64 {
    let metrics = admin::metrics(config.admin);
    metric_sum(
        &metrics,
        DECISIONS,
        &[("listener", "web"), ("rule", rule), ("decision", decision)],
    )
}

#[test]
fn an_allow_deny_matrix_by_identity_path_and_method() {
    let mesh = mesh();
    let origin = HttpOrigin::start(|_| Reply::ok(b"origin"));
    let rules = [
        r#"{ name = "no-admin", action = "deny", paths = ["/admin*"] }"#,
        r#"{ name = "ops", action = "allow", from_prefixes = ["spiffe://example.org/ns/ops/"] }"#,
        &format!(
            r#"{{ name = "web-reads-api", action = "allow", from = [{}], routes = ["api"], methods = ["GET"] }}"#,
            quote(WEB)
        ),
        r#"{ name = "public", action = "allow", paths = ["/public/*"] }"#,
    ];
    let config = mtls(
        HttpConfig::new()
            .route(Route::new("api").path_prefix("/api/").cluster("app"))
            .route(Route::new("all").cluster("app"))
            .cluster("app", &[origin.addr()]),
        &mesh,
    )
    // Encoded slashes pass routing here, so that authorization's own
    // refusal is what meets them.
    .listener_key("encoded_slashes", &quote("pass"))
    .listener_key("authorization", &authorization("deny", "", &rules));
    let proxy = Ringway::start(&config.to_toml());
    let client = Client {
        config: &config,
        mesh: Some(&mesh),
    };
    let (web, ops) = (Some(&mesh.web), Some(&mesh.ops));
    // (who, method, path, status, the rule that decides: "" the default)
    let matrix: &[(Option<&Leaf>, &str, &str, u16, &str)] = &[
        (web, "GET", "/api/items", 200, "web-reads-api"),
        (web, "POST", "/api/items", 403, ""),
        (web, "GET", "/other", 403, ""),
        (web, "GET", "/public/a", 200, "public"),
        (web, "GET", "/admin/x", 403, "no-admin"),
        (ops, "GET", "/other", 200, "ops"),
        (ops, "POST", "/api/items", 200, "ops"),
        (ops, "GET", "/admin", 403, "no-admin"),
        (None, "GET", "/public/a", 200, "public"),
        (None, "GET", "/api/items", 403, ""),
        (None, "DELETE", "/other", 403, ""),
        (Some(&mesh.api), "GET", "/api/items", 403, ""),
        // Spellings of `/admin` from a client allowed everything else:
        // none gets through.
        (ops, "GET", "/x/../admin", 403, "no-admin"),
        (ops, "GET", "/x/%2e%2e/admin", 403, "no-admin"),
        (ops, "GET", "/x/%2E%2E/admin/y", 403, "no-admin"),
        (ops, "GET", "//admin", 403, "no-admin"),
        (ops, "GET", "/./admin", 403, "no-admin"),
        (ops, "GET", "/%61dmin", 403, "no-admin"),
        (ops, "GET", "/admin/", 403, "no-admin"),
        (ops, "GET", "/admin;jsessionid=1", 403, "no-admin"),
        (ops, "GET", "/x/..;/admin", 403, "no-admin"),
        (ops, "GET", "/public/..%2F..%2Fadmin", 400, "-"),
        (ops, "GET", "/x/..%2fadmin", 400, "-"),
        // `%252F` is a '%' and "2F", not a slash, decoded once.
        (ops, "GET", "/x/..%252Fadmin", 200, "ops"),
        // Letter case is the path's own: `/ADMIN` is another path.
        (ops, "GET", "/ADMIN", 200, "ops"),
    ];
    let mut allowed = 0;
    for &(who, method, path, status, _) in matrix {
        let got = client.send(who, method, path, &[]);
        let as_who = who.map_or("no certificate".to_owned(), |l| l.cert_str());
        assert_eq!(got.status, status, "{method} {path} as {as_who}: {got:?}");
        match status {
            200 => {
                allowed += 1;
                assert_eq!(got.body, "origin");
            }
            403 => assert_eq!(got.error.as_deref(), Some("forbidden"), "{path}"),
            _ => {
                assert_eq!(got.error.as_deref(), Some("bad_request"), "{path}");
                assert!(got.body.contains("authorization"), "{path}: {got:?}");
            }
        }
    }
    // Only what was allowed reached the origin, in the form routing sent.
    let requests = origin.requests();
    assert_eq!(requests.len(), allowed);
    assert!(requests.iter().all(|r| !r.path().contains("admin")
        || r.path() == "/ADMIN"
        || r.path().contains("%252F")));

    // Every decision counted on the rule that made it.
    for rule in ["no-admin", "ops", "web-reads-api", "public", ""] {
        for (decision, status) in [("allow", 200), ("deny", 403)] {
            let sent = matrix
                .iter()
                .filter(|m| m.4 == rule && m.3 == status)
                .count();
            assert_eq!(
                decisions(&config, rule, decision),
                sent as f64,
                "rule {rule:?} {decision}"
            );
        }
    }
    let metrics = admin::metrics(config.admin);
    let forbidden = metric_sum(
        &metrics,
        "ringway_http_errors_total",
        &[("listener", "web"), ("reason", "forbidden")],
    );
    assert_eq!(
        forbidden,
        matrix.iter().filter(|m| m.3 == 403).count() as f64
    );
    let stats = admin::stats(config.admin);
    assert_eq!(
        stats.u64("/authorization/listeners/0/rules/0/denied"),
        matrix.iter().filter(|m| m.4 == "no-admin").count() as u64
    );
    assert_eq!(stats.u64("/authorization/listeners/0/default/allowed"), 0);

    // The effective configuration is read back as it was.
    let dumped = admin::get(config.admin, "/config").body;
    for expected in [
        "[listeners.authorization]",
        "default = \"deny\"",
        "from_prefixes = [\"spiffe://example.org/ns/ops/\"]",
        "routes = [\"api\"]",
        "paths = [\"/admin*\"]",
        "unauthenticated = false",
    ] {
        assert!(
            dumped.contains(expected),
            "{expected:?} missing from\n{dumped}"
        );
    }
    let file = write_config(&dumped);
    let path = file.path().to_string_lossy().into_owned();
    let out = run_to_exit(&["check", &path], Duration::from_secs(30));
    assert!(
        out.status.success(),
        "the dumped config does not check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("authorization: default deny, 4 rules"),
        "{summary}"
    );
    proxy.stop().assert_clean();
}

#[test]
fn default_allow_and_a_plain_listener_with_default_deny() {
    let origin = HttpOrigin::start(|_| Reply::ok(b"origin"));
    // Plain HTTP, default deny: only what a rule about everyone allows.
    let config = HttpConfig::forward_all(&[origin.addr()]).listener_key(
        "authorization",
        &authorization(
            "deny",
            "",
            &[r#"{ name = "public", action = "allow", paths = ["/public/*"], methods = ["GET"] }"#],
        ),
    );
    let proxy = Ringway::start(&config.to_toml());
    let client = Client {
        config: &config,
        mesh: None,
    };
    assert_eq!(client.send(None, "GET", "/public/x", &[]).status, 200);
    let denied = client.send(None, "GET", "/private", &[]);
    assert_eq!(
        (denied.status, denied.error.as_deref()),
        (403, Some("forbidden"))
    );
    assert_eq!(client.send(None, "POST", "/public/x", &[]).status, 403);
    // A client claiming an identity in the header ringway writes gets
    // nothing for it.
    let claimed = format!("x-ringway-peer-identity: {WEB}");
    assert_eq!(
        client.send(None, "GET", "/private", &[&claimed]).status,
        403
    );
    assert_eq!(origin.requests().len(), 1);
    assert_eq!(decisions(&config, "public", "allow"), 1.0);
    assert_eq!(decisions(&config, "", "deny"), 3.0);
    proxy.stop().assert_clean();

    // Default allow, one path denied; slashes kept apart on request, so
    // `//admin` is its own path here.
    let origin = HttpOrigin::start(|_| Reply::ok(b"origin"));
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("merge_slashes", "false")
        .listener_key(
            "authorization",
            &authorization(
                "allow",
                "merge_slashes = false",
                &[r#"{ name = "admin", action = "deny", paths = ["/admin", "/admin/*"] }"#],
            ),
        );
    let proxy = Ringway::start(&config.to_toml());
    let client = Client {
        config: &config,
        mesh: None,
    };
    for (path, status) in [
        ("/x", 200),
        ("/admin", 403),
        ("/admin/a", 403),
        ("/a/../admin", 403),
        ("/admins", 200),
        ("//admin", 200),
    ] {
        assert_eq!(client.send(None, "GET", path, &[]).status, status, "{path}");
    }
    assert_eq!(decisions(&config, "", "allow"), 3.0);
    assert_eq!(decisions(&config, "admin", "deny"), 3.0);
    proxy.stop().assert_clean();
}

#[test]
fn peer_identity_sends_two_identities_to_two_clusters_and_cannot_be_claimed() {
    let mesh = mesh();
    let web_origin = HttpOrigin::start(|_| Reply::ok(b"web side"));
    let api_origin = HttpOrigin::start(|_| Reply::ok(b"api side"));
    let rules = [
        &format!(
            r#"{{ name = "mesh", action = "allow", from = [{}, {}] }}"#,
            quote(WEB),
            quote(API)
        ),
        r#"{ name = "anonymous", action = "allow", routes = ["rest"], methods = ["GET"] }"#,
    ];
    let config = mtls(
        HttpConfig::new()
            .route(
                Route::new("from-web")
                    .key("peer_identity", &quote(WEB))
                    .cluster("web"),
            )
            .route(
                Route::new("from-api")
                    .key("peer_identity", &quote(API))
                    .cluster("api"),
            )
            .route(Route::new("rest").direct(200, "anonymous", None))
            .cluster("web", &[web_origin.addr()])
            .cluster("api", &[api_origin.addr()]),
        &mesh,
    )
    .listener_key("authorization", &authorization("deny", "", &rules));
    let proxy = Ringway::start(&config.to_toml());
    let client = Client {
        config: &config,
        mesh: Some(&mesh),
    };
    for _ in 0..2 {
        assert_eq!(
            client.send(Some(&mesh.web), "GET", "/x", &[]).body,
            "web side"
        );
        assert_eq!(
            client.send(Some(&mesh.api), "POST", "/x", &[]).body,
            "api side"
        );
    }
    // Another workload of the mesh matches neither route nor rule but the
    // anonymous one.
    assert_eq!(
        client.send(Some(&mesh.ops), "GET", "/x", &[]).body,
        "anonymous"
    );
    assert_eq!(client.send(Some(&mesh.ops), "POST", "/x", &[]).status, 403);
    // Claimed in a header, an identity routes nowhere and allows nothing.
    let claimed = format!("x-ringway-peer-identity: {WEB}");
    let got = client.send(None, "GET", "/x", &[&claimed]);
    assert_eq!((got.status, got.body.as_str()), (200, "anonymous"));
    let got = client.send(None, "POST", "/x", &[&claimed]);
    assert_eq!((got.status, got.error.as_deref()), (403, Some("forbidden")));
    // A verified client's claim is replaced by what it proved.
    let claimed_api = format!("x-ringway-peer-identity: {API}");
    assert_eq!(
        client
            .send(Some(&mesh.web), "GET", "/x", &[&claimed_api])
            .body,
        "web side"
    );
    let web_requests = web_origin.requests();
    assert_eq!(web_requests.len(), 3);
    assert!(web_requests
        .iter()
        .all(|r| r.headers_named("x-ringway-peer-identity") == [WEB]));
    let api_requests = api_origin.requests();
    assert_eq!(api_requests.len(), 2);
    assert!(api_requests
        .iter()
        .all(|r| r.headers_named("x-ringway-peer-identity") == [API]));
    assert_eq!(decisions(&config, "mesh", "allow"), 5.0);
    assert_eq!(decisions(&config, "anonymous", "allow"), 2.0);
    assert_eq!(decisions(&config, "", "deny"), 2.0);
    proxy.stop().assert_clean();
}

#[test]
fn a_tcp_listener_closes_a_denied_connection_before_any_upstream_connect() {
    let open_origin = Origin::start(echo);
    let closed_origin = Origin::start(echo);
    let loopback = || SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let (open, closed, admin_addr) = (loopback(), loopback(), loopback());
    let text = format!(
        r#"[runtime]
worker_cores = [0]
drain_timeout = "5s"

[admin]
address = "{admin_addr}"

[[listeners]]
name = "open"
address = "{open}"
protocol = "tcp"
cluster = "open"

[listeners.authorization]
default = "deny"

[[listeners.authorization.rules]]
name = "plain"
action = "allow"
unauthenticated = true

[[listeners]]
name = "closed"
address = "{closed}"
protocol = "tcp"
cluster = "closed"

[listeners.authorization]
default = "deny"

[[clusters]]
name = "open"
endpoints = ["{}"]

[[clusters]]
name = "closed"
endpoints = ["{}"]
"#,
        open_origin.addr(),
        closed_origin.addr()
    );
    let proxy = Ringway::start(&text);
    for i in 0..3 {
        net::assert_echoed(open, i);
    }
    // Closed without a byte (reset, possibly before connect() returned).
    for _ in 0..4 {
        net::assert_closed_without_a_byte(closed, Duration::from_secs(10));
    }
    assert_eq!(open_origin.accepted(), 3);
    assert_eq!(
        closed_origin.accepted(),
        0,
        "no upstream connect for a denied client"
    );
    let metrics = admin::metrics(admin_addr);
    let count = |listener: &str, rule: &str, decision: &str| {
        metric_sum(
            &metrics,
            DECISIONS,
            &[
                ("listener", listener),
                ("rule", rule),
                ("decision", decision),
            ],
        )
    };
    assert_eq!(count("open", "plain", "allow"), 3.0);
    assert_eq!(count("closed", "", "deny"), 4.0);
    assert_eq!(count("open", "", "deny"), 0.0);
    proxy.stop().assert_clean();
}
