//! Mutual TLS with SPIFFE identities, end to end: certificates chosen by
//! SNI (checked with `openssl s_client`), client certificates required and
//! verified as X509-SVIDs (each rule broken once, with `curl`), the
//! verified identity passed upstream, and two ringways as sidecars: one
//! originating mTLS to a cluster, the other terminating it, with the
//! upstream's certificate verified by CA, name and SPIFFE ID.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::KeyUsagePurpose;
use ringway_kit::admin;
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::Ringway;
use ringway_tests::http_client::{curl, CurlRun};
use ringway_tests::http_config::{quote, Cluster, HttpConfig, Route};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::net::read_until_closed;
use ringway_tests::pki::{Ca, Leaf, Svid};

const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const API: &str = "spiffe://example.org/ns/default/sa/api";

/// `{ cert = "...", key = "...", EXTRA }` for `leaf`.
fn tls(leaf: &Leaf, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "{{ cert = {}, key = {}{extra} }}",
        quote(&leaf.cert_str()),
        quote(&leaf.key_str())
    )
}

/// curl to `path` on `config`'s listener as `localhost`, trusting `ca`,
/// presenting `client` if given; `-i` so the head is in stdout.
fn curl_as(config: &HttpConfig, ca: &Ca, client: Option<&Leaf>, path: &str) -> CurlRun {
    let port = config.listen.port();
    let url = format!("https://localhost:{port}{path}");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let ca = ca.pem_str();
    let mut args = vec!["-sS", "-i", "--cacert", &ca, "--resolve", &resolve];
    let (cert, key) = client.map_or((String::new(), String::new()), |c| {
        (c.cert_str(), c.key_str())
    });
    if client.is_some() {
        args.extend(["--cert", &cert, "--key", &key]);
    }
    args.push(&url);
    curl(&args)
}

/// The subject line `openssl s_client` prints for the certificate the
/// listener at `port` presents for `name`.
fn served_subject(port: u16, name: &str, ca: &Ca) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", name, "-CAfile", &ca.pem_str(), "-brief"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Peer certificate: "))
        .unwrap_or_else(|| panic!("no peer certificate in:\n{text}"))
        .to_owned()
}

#[test]
fn sni_chooses_the_certificate_and_other_names_get_the_default() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "sni");
    let default = ca.server("default", &["localhost"]);
    let api = ca.server("api", &["api.example.test"]);
    let wild = ca.server("wild", &["*.apps.example.test"]);
    let origin = HttpOrigin::ok("sni");
    let sni = format!(
        "sni = [{{ names = [\"api.example.test\"], cert = {}, key = {} }}, {{ names = [\"*.apps.example.test\"], cert = {}, key = {} }}]",
        quote(&api.cert_str()),
        quote(&api.key_str()),
        quote(&wild.cert_str()),
        quote(&wild.key_str()),
    );
    let config =
        HttpConfig::forward_all(&[origin.addr()]).listener_key("tls", &tls(&default, &sni));
    let proxy = Ringway::start(&config.to_toml());
    let port = config.listen.port();
    assert!(served_subject(port, "api.example.test", &ca).contains("CN = api"));
    assert!(served_subject(port, "one.apps.example.test", &ca).contains("CN = wild"));
    // One label only, as wildcards go; anything else is the default's.
    assert!(served_subject(port, "a.b.apps.example.test", &ca).contains("CN = default"));
    assert!(served_subject(port, "localhost", &ca).contains("CN = default"));
    assert!(served_subject(port, "elsewhere.test", &ca).contains("CN = default"));
    // And the chosen certificate serves requests.
    let run = curl_as(&config, &ca, None, "/");
    assert!(run.success, "{}", run.stderr);
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("tls_handshakes"), 6);
    proxy.stop().assert_clean();
}

#[test]
fn tls_1_2_is_refused_unless_the_listener_allows_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "v");
    let leaf = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("v12");
    for (extra, accepted) in [("", false), ("versions = [\"1.2\", \"1.3\"]", true)] {
        let config =
            HttpConfig::forward_all(&[origin.addr()]).listener_key("tls", &tls(&leaf, extra));
        let proxy = Ringway::start(&config.to_toml());
        let port = config.listen.port();
        let ca_file = ca.pem_str();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = format!("https://localhost:{port}/");
        let run = curl(&[
            "-sS",
            "--tls-max",
            "1.2",
            "--cacert",
            &ca_file,
            "--resolve",
            &resolve,
            &url,
        ]);
        assert_eq!(run.success, accepted, "versions {extra:?}: {}", run.stderr);
        proxy.stop().assert_clean();
    }
}

/// A listener requiring client certificates from `ca`, forwarding to
/// `origin`.
fn mtls_listener(origin: &HttpOrigin, ca: &Ca, server: &Leaf, extra: &str) -> HttpConfig {
    let client = format!("client_ca = {}{extra}", quote(&ca.pem_str()));
    HttpConfig::forward_all(&[origin.addr()])
        .listener_key("tls", &tls(server, &client))
        .header_timeout("2s")
}

#[test]
fn a_client_certificate_is_required_and_its_identity_goes_upstream() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let server = ca.server("server", &["localhost"]);
    let web = ca.workload("web", WEB);
    let origin = HttpOrigin::ok("hello web");
    let config = mtls_listener(&origin, &ca, &server, "");
    let proxy = Ringway::start(&config.to_toml());

    let refused = curl_as(&config, &ca, None, "/");
    assert!(
        !refused.success,
        "a client without a certificate got: {}",
        refused.stdout
    );
    assert!(origin.requests().is_empty());

    // A client that claims an identity in a header gets its own, proved
    // one upstream, never the claim.
    let port = config.listen.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/who");
    let (ca_file, cert, key) = (ca.pem_str(), web.cert_str(), web.key_str());
    let run = curl(&[
        "-sS",
        "--cacert",
        &ca_file,
        "--cert",
        &cert,
        "--key",
        &key,
        "--resolve",
        &resolve,
        "-H",
        "x-ringway-peer-identity: spiffe://example.org/ns/default/sa/admin",
        &url,
    ]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "hello web");
    let requests = origin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].headers_named("x-ringway-peer-identity"),
        vec![WEB]
    );
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("tls_handshakes"), 1);
    assert_eq!(stats.sum("tls_handshake_failures"), 1);
    proxy.stop().assert_clean();
}

#[test]
fn optional_client_certificates_let_anonymous_clients_in_without_an_identity() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let server = ca.server("server", &["localhost"]);
    let web = ca.workload("web", WEB);
    let origin = HttpOrigin::ok("ok");
    let config = mtls_listener(&origin, &ca, &server, ", require_client_cert = false");
    let proxy = Ringway::start(&config.to_toml());
    assert!(curl_as(&config, &ca, None, "/").success);
    assert!(curl_as(&config, &ca, Some(&web), "/").success);
    let requests = origin.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0]
        .headers_named("x-ringway-peer-identity")
        .is_empty());
    assert_eq!(
        requests[1].headers_named("x-ringway-peer-identity"),
        vec![WEB]
    );
    proxy.stop().assert_clean();
}

#[test]
fn every_broken_x509_svid_rule_is_refused_at_the_handshake() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let stranger = Ca::new(dir.path(), "stranger");
    let server = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("never");
    let config = mtls_listener(&origin, &ca, &server, ", trust_domains = [\"example.org\"]");
    let proxy = Ringway::start(&config.to_toml());

    let good = Svid::good(WEB);
    let broken: Vec<(&str, Leaf)> = vec![
        (
            "no URI",
            ca.svid(
                "no-uri",
                &Svid {
                    uris: vec![],
                    ..good.clone()
                },
            ),
        ),
        (
            "two URIs",
            ca.svid(
                "two-uris",
                &Svid {
                    uris: vec![WEB.into(), API.into()],
                    ..good.clone()
                },
            ),
        ),
        (
            "not spiffe",
            ca.svid(
                "https",
                &Svid {
                    uris: vec!["https://example.org/web".into()],
                    ..good.clone()
                },
            ),
        ),
        (
            "a trust domain's own ID",
            ca.svid(
                "root",
                &Svid {
                    uris: vec!["spiffe://example.org".into()],
                    ..good.clone()
                },
            ),
        ),
        (
            "a dot segment",
            ca.svid(
                "dots",
                &Svid {
                    uris: vec!["spiffe://example.org/ns/../web".into()],
                    ..good.clone()
                },
            ),
        ),
        (
            "a percent-encoded path",
            ca.svid(
                "pct",
                &Svid {
                    uris: vec!["spiffe://example.org/w%65b".into()],
                    ..good.clone()
                },
            ),
        ),
        (
            "CA=true",
            ca.svid(
                "ca-leaf",
                &Svid {
                    ca: true,
                    ..good.clone()
                },
            ),
        ),
        (
            "keyCertSign",
            ca.svid(
                "certsign",
                &Svid {
                    key_usages: vec![
                        KeyUsagePurpose::DigitalSignature,
                        KeyUsagePurpose::KeyCertSign,
                    ],
                    ..good.clone()
                },
            ),
        ),
        (
            "cRLSign",
            ca.svid(
                "crlsign",
                &Svid {
                    key_usages: vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign],
                    ..good.clone()
                },
            ),
        ),
        (
            "no digitalSignature",
            ca.svid(
                "nosig",
                &Svid {
                    key_usages: vec![KeyUsagePurpose::KeyEncipherment],
                    ..good.clone()
                },
            ),
        ),
        (
            "a foreign trust domain",
            ca.workload("foreign", "spiffe://other.org/ns/default/sa/web"),
        ),
        ("another CA's", stranger.workload("stranger", WEB)),
    ];
    for (rule, leaf) in &broken {
        let run = curl_as(&config, &ca, Some(leaf), "/");
        assert!(
            !run.success,
            "an SVID with {rule} was taken: {}",
            run.stdout
        );
    }
    // The good one passes: the failures were the rules.
    let ok = ca.workload("good", WEB);
    let run = curl_as(&config, &ca, Some(&ok), "/");
    assert!(run.success, "{}", run.stderr);
    assert!(origin.requests().len() == 1);
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("tls_handshake_failures"), broken.len() as u64);
    assert_eq!(stats.sum("tls_handshakes"), 1);
    proxy.stop().assert_clean();
}

#[test]
fn garbage_and_a_silent_client_are_closed_and_counted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "g");
    let server = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("never");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("tls", &tls(&server, ""))
        .header_timeout("500ms");
    let proxy = Ringway::start(&config.to_toml());
    let mut garbage = TcpStream::connect(config.listen).expect("connect");
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    garbage
        .write_all(b"\x00\x01garbage before any hello\r\n\r\n")
        .expect("send");
    read_until_closed(&mut garbage).expect("closed");
    let mut silent = TcpStream::connect(config.listen).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    read_until_closed(&mut silent).expect("closed by the header timeout");
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("tls_handshake_failures"), 1);
    assert_eq!(stats.sum("tls_handshake_timeouts"), 1);
    assert_eq!(stats.sum("tls_handshakes"), 0);
    assert!(origin.requests().is_empty());
    proxy.stop().assert_clean();
}

/// The sidecar pair: `outbound` (plain for the app) sends cluster `app`
/// over mTLS to `inbound`, which requires client certificates and forwards
/// to `origin`.
struct Pair {
    outbound: HttpConfig,
    inbound: HttpConfig,
}

fn pair(origin: &HttpOrigin, ca: &Ca, cluster_tls: impl Fn(&Leaf) -> String) -> Pair {
    let server = ca.workload("api", API);
    let web = ca.workload("web", WEB);
    let inbound = mtls_listener(origin, ca, &server, "");
    let outbound = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(Cluster::new("app", &[inbound.listen]).key("tls", &cluster_tls(&web)));
    Pair { outbound, inbound }
}

/// A plain request to the outbound sidecar: the status and the
/// `x-ringway-error` it came with.
fn through(pair: &Pair, path: &str) -> (u16, Option<String>, String) {
    let url = format!("http://{}{path}", pair.outbound.listen);
    let run = curl(&["-sS", "-i", &url]);
    assert!(run.success, "{}", run.stderr);
    let head = run.stdout.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {:?}", run.stdout));
    let error = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-ringway-error")
            .then(|| value.trim().to_owned())
    });
    (status, error, run.stdout)
}

#[test]
fn two_sidecars_speak_mtls_with_the_identity_verified_both_ways_and_pooled() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let origin = HttpOrigin::ok("from api");
    let ca_file = ca.pem_str();
    let pair = pair(&origin, &ca, |web| {
        tls(
            web,
            &format!("ca = {}, identities = [{}]", quote(&ca_file), quote(API)),
        )
    });
    let inbound = Ringway::start(&pair.inbound.to_toml());
    let outbound = Ringway::start(&pair.outbound.to_toml());
    for i in 0..5 {
        let (status, error, text) = through(&pair, &format!("/call/{i}"));
        assert_eq!((status, error), (200, None), "{text}");
        assert!(text.ends_with("from api"), "{text}");
    }
    let requests = origin.requests();
    assert_eq!(requests.len(), 5);
    // The inbound side verified the outbound side's SVID and passed it on;
    // the request arrived over TLS.
    for r in &requests {
        assert_eq!(r.headers_named("x-ringway-peer-identity"), vec![WEB]);
    }
    // One handshake: the upstream TLS connection went back to the pool
    // after each request and was taken again.
    assert_eq!(admin::stats(pair.inbound.admin).sum("tls_handshakes"), 1);
    assert_eq!(
        admin::stats(pair.outbound.admin).sum("upstream_tls_failures"),
        0
    );
    outbound.stop().assert_clean();
    inbound.stop().assert_clean();
}

#[test]
fn origination_refuses_a_wrong_ca_a_wrong_identity_and_a_wrong_name() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let stranger = Ca::new(dir.path(), "stranger");
    let origin = HttpOrigin::ok("never");
    let cases: Vec<(&str, String)> = vec![
        (
            "a CA that did not sign it",
            format!("ca = {}", quote(&stranger.pem_str())),
        ),
        (
            "another identity",
            format!(
                "ca = {}, identities = [\"spiffe://example.org/ns/default/sa/db\"]",
                quote(&ca.pem_str())
            ),
        ),
        // No identities: the name is verified, and an SVID names no host.
        (
            "a name it does not carry",
            format!("ca = {}, sni = \"api.internal\"", quote(&ca.pem_str())),
        ),
    ];
    for (what, cluster_tls) in &cases {
        let pair = pair(&origin, &ca, |web| tls(web, cluster_tls));
        let inbound = Ringway::start(&pair.inbound.to_toml());
        let outbound = Ringway::start(&pair.outbound.to_toml());
        let (status, error, text) = through(&pair, "/");
        assert_eq!(
            (status, error.as_deref()),
            (502, Some("upstream_tls")),
            "{what}: {text}"
        );
        assert_eq!(
            admin::stats(pair.outbound.admin).sum("upstream_tls_failures"),
            1,
            "{what}"
        );
        outbound.stop().assert_clean();
        inbound.stop().assert_clean();
    }
    assert!(origin.requests().is_empty());

    // Without a client certificate, the inbound side refuses the outbound
    // one; with verification by name (a server leaf for the name), it
    // works.
    let server = ca.server("named", &["api.internal"]);
    let web = ca.workload("web2", WEB);
    let named_origin = HttpOrigin::ok("by name");
    let inbound = mtls_listener(&named_origin, &ca, &server, "");
    for (with_cert, want) in [(false, 502), (true, 200)] {
        let client = format!("ca = {}, sni = \"api.internal\"", quote(&ca.pem_str()));
        let cluster_tls = if with_cert {
            tls(&web, &client)
        } else {
            format!("{{ {client} }}")
        };
        let outbound = HttpConfig::new()
            .route(Route::new("all").cluster("app"))
            .cluster_with(Cluster::new("app", &[inbound.listen]).key("tls", &cluster_tls));
        let pair = Pair {
            outbound,
            inbound: inbound.clone(),
        };
        let a = Ringway::start(&pair.inbound.to_toml());
        let b = Ringway::start(&pair.outbound.to_toml());
        let (status, _, text) = through(&pair, "/");
        assert_eq!(status, want, "client certificate {with_cert}: {text}");
        b.stop().assert_clean();
        a.stop().assert_clean();
    }
    assert_eq!(named_origin.requests().len(), 1);
}

#[test]
fn bad_tls_settings_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "cfg");
    let leaf = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("x");
    let listener = |extra: &str| {
        HttpConfig::forward_all(&[origin.addr()])
            .listener_key("tls", &tls(&leaf, extra))
            .to_toml()
    };
    let cluster = |value: &str| {
        HttpConfig::new()
            .route(Route::new("all").cluster("app"))
            .cluster_with(Cluster::new("app", &[origin.addr()]).key("tls", value))
            .to_toml()
    };
    let ca_file = quote(&ca.pem_str());
    let cases = [
        (
            listener("versions = [\"1.1\"]"),
            "listeners[0].tls.versions[0]",
        ),
        (
            listener("versions = [\"1.2\"]"),
            "listeners[0].tls.versions",
        ),
        (
            listener("require_client_cert = true"),
            "listeners[0].tls.require_client_cert",
        ),
        (
            listener(&format!(
                "client_ca = {ca_file}, trust_domains = [\"Example.org\"]"
            )),
            "listeners[0].tls.trust_domains[0]",
        ),
        (
            listener("sni = [{ names = [\"a..b\"], cert = \"x\", key = \"y\" }]"),
            "listeners[0].tls.sni[0].names[0]",
        ),
        (cluster("{ sni = \"x\" }"), "clusters[0].tls.ca"),
        (
            cluster(&format!(
                "{{ ca = {ca_file}, identities = [\"spiffe://example.org\"] }}"
            )),
            "clusters[0].tls.identities[0]",
        ),
        (
            cluster("{ verify = false, identities = [\"spiffe://example.org/a\"] }"),
            "clusters[0].tls.identities",
        ),
        (
            cluster("{ ca = \"/nonexistent/ca.pem\" }"),
            "clusters[0].tls.ca",
        ),
    ];
    for (text, key) in &cases {
        let file = write_config(text);
        let path = file.path().to_string_lossy().into_owned();
        let out = run_to_exit(&["check", &path], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: accepted\n{text}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}

#[test]
fn a_rotation_that_changes_the_identity_is_refused_and_the_old_one_serves() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let origin = HttpOrigin::ok("still api");
    let ca_file = ca.pem_str();
    let pair = pair(&origin, &ca, |web| {
        tls(
            web,
            &format!("ca = {}, identities = [{}]", quote(&ca_file), quote(API)),
        )
    });
    let inbound = Ringway::start(&pair.inbound.to_toml());
    let outbound = Ringway::start(&pair.outbound.to_toml());
    assert_eq!(through(&pair, "/").0, 200);

    // The inbound side's files now hold another workload's SVID: a reload
    // refuses it, naming the key, and api's certificate keeps serving.
    let other = ca.workload("other", "spiffe://example.org/ns/default/sa/db");
    let api = dir.path().join("api.pem");
    let api_key = dir.path().join("api-key.pem");
    std::fs::copy(&other.cert, &api).expect("the new certificate");
    std::fs::copy(&other.key, &api_key).expect("the new key");
    let reloaded = admin::post(pair.inbound.admin, "/reload", "");
    assert_eq!(reloaded.status, 400, "{}", reloaded.body);
    assert!(
        reloaded.body.contains("listeners[0].tls.cert"),
        "{}",
        reloaded.body
    );
    assert!(
        reloaded
            .body
            .contains("spiffe://example.org/ns/default/sa/db"),
        "{}",
        reloaded.body
    );
    // New connections (a new outbound proxy: no pooled connection) still
    // meet api's identity.
    outbound.stop().assert_clean();
    let outbound = Ringway::start(&pair.outbound.to_toml());
    assert_eq!(through(&pair, "/again").0, 200);
    outbound.stop().assert_clean();
    inbound.stop().assert_clean();
}

/// `openssl s_client` to the listener at `port`, saving its session to
/// `out` or resuming the one in `resume`; whether the session was reused.
fn s_client_session(port: u16, ca: &Ca, out: Option<&Path>, resume: Option<&Path>) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-CAfile", &ca.pem_str()]);
    if let Some(out) = out {
        cmd.arg("-sess_out").arg(out);
    }
    if let Some(resume) = resume {
        cmd.arg("-sess_in").arg(resume);
    }
    // A request that closes the connection: s_client reads to the close,
    // and rustls sends its session ticket before any response, so the
    // ticket is in hand when s_client leaves.
    cmd.arg("-ign_eof");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("the request");
    let out = child.wait_with_output().expect("openssl's output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("New, TLSv1.3") || text.contains("Reused, TLSv1.3"),
        "no TLS 1.3 session in:\n{text}"
    );
    assert!(text.contains("HTTP/1.1 200"), "no answer in:\n{text}");
    text.contains("Reused, TLSv1.3")
}

#[test]
fn outside_clients_resume_their_sessions() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "resume");
    let server = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("x");
    let config = HttpConfig::forward_all(&[origin.addr()]).listener_key("tls", &tls(&server, ""));
    let proxy = Ringway::start(&config.to_toml());
    let session = dir.path().join("session.pem");
    let port = config.listen.port();
    assert!(!s_client_session(port, &ca, Some(&session), None));
    assert!(s_client_session(port, &ca, None, Some(&session)));
    proxy.stop().assert_clean();
}
