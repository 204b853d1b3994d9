//! TLS termination on HTTP listeners: a real client (`curl`, verifying the
//! chain against the test's own CA) reaches the origin through ringway,
//! the upstream learns the request came over https, and what is not a TLS
//! client (plain HTTP sent to a TLS port, a client that never says hello)
//! is closed without reaching the origin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::Ringway;
use ringway_tests::http_client::{curl, HttpConn, Req};
use ringway_tests::http_config::{quote, HttpConfig};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::net::{read_until_closed, Ended};
use ringway_tests::tls_client::{ClientStream, TlsClient};

/// A CA, and a server certificate for `localhost` and 127.0.0.1 it signed,
/// written as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// A key that is not the certificate's.
    other_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ringway test CA");
    let ca = ca_params.self_signed(&ca_key).expect("the CA");
    let key = KeyPair::generate().expect("a server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("the server cert");
    let other = KeyPair::generate().expect("another key");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("a PEM file");
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("cert.pem", cert.pem()),
        key: write("key.pem", key.serialize_pem()),
        other_key: write("other.pem", other.serialize_pem()),
    }
}

/// The listener key `tls = { cert, key }` for these files.
fn tls_table(cert: &Path, key: &Path) -> String {
    format!(
        "{{ cert = {}, key = {} }}",
        quote(&cert.to_string_lossy()),
        quote(&key.to_string_lossy())
    )
}

fn tls_config(origin: &HttpOrigin, pki: &Pki) -> HttpConfig {
    HttpConfig::forward_all(&[origin.addr()])
        .listener_key("tls", &tls_table(&pki.cert, &pki.key))
        .header_timeout("1s")
}

/// The URL of `path` on the listener, by the name its certificate has,
/// and the `--resolve` that sends curl there.
fn target(config: &HttpConfig, path: &str) -> (String, String) {
    let port = config.listen.port();
    (
        format!("https://localhost:{port}{path}"),
        format!("localhost:{port}:127.0.0.1"),
    )
}

/// `ringway check` on `text`: whether it passed, its stdout and stderr.
fn check(text: &str) -> (bool, String, String) {
    let file = write_config(text);
    let path = file.path().to_string_lossy().into_owned();
    let out = run_to_exit(&["check", &path], Duration::from_secs(30));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_reaches_the_origin_over_tls_and_the_upstream_hears_https() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    let origin = HttpOrigin::start(|_| Reply::ok(b"over tls"));
    let config = tls_config(&origin, &pki);
    let proxy = Ringway::start(&config.to_toml());
    let (url, resolve) = target(&config, "/hello");
    let ca = pki.ca.to_string_lossy().into_owned();
    // Several requests on one connection, then another connection.
    for _ in 0..2 {
        let run = curl(&[
            "-sS",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            &url,
            &url,
            &url,
        ]);
        assert!(run.success, "curl failed: {}", run.stderr);
        assert_eq!(run.stdout, "over tlsover tlsover tls");
    }
    let requests = origin.requests();
    assert_eq!(requests.len(), 6);
    assert!(requests
        .iter()
        .all(|r| r.header("x-forwarded-proto") == Some("https") && r.path() == "/hello"));
    // A client that does not trust the CA is refused by its own check.
    let run = curl(&["-sS", "--resolve", &resolve, &url]);
    assert!(!run.success);
    assert_eq!(origin.requests().len(), 6);
    proxy.stop().assert_clean();
}

#[test]
fn plain_http_and_a_silent_client_are_closed_without_reaching_the_origin() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    let origin = HttpOrigin::ok("never");
    let config = tls_config(&origin, &pki);
    let proxy = Ringway::start(&config.to_toml());
    // Plain HTTP where a ClientHello should be: the handshake fails and
    // the connection closes (rustls's alert may come first).
    let mut plain = TcpStream::connect(config.listen).expect("a connection");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("sent");
    let mut seen = Vec::new();
    let ended = plain.read_to_end(&mut seen);
    assert!(
        ended.is_ok() || ended.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "not closed"
    );
    assert!(
        !seen.starts_with(b"HTTP/"),
        "answered in plain HTTP: {seen:?}"
    );
    // A client that connects and never says hello is closed by the
    // listener's header timeout (1 s here).
    let mut silent = TcpStream::connect(config.listen).expect("a connection");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let ended = read_until_closed(&mut silent).expect("closed before the read timeout");
    assert!(
        matches!(ended, Ended::Eof(0) | Ended::Reset(0)),
        "the silent client was sent bytes: {ended:?}"
    );
    assert!(origin.requests().is_empty());
    proxy.stop().assert_clean();
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    let origin = HttpOrigin::ok("x");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("tls", &tls_table(&pki.cert, &pki.other_key));
    let (passed, _, stderr) = check(&config.to_toml());
    assert!(!passed, "{stderr}");
    assert!(stderr.contains("listeners[0].tls.key"), "{stderr}");
    assert!(
        stderr.contains("does not go with the certificate"),
        "{stderr}"
    );
    let missing = HttpConfig::forward_all(&[origin.addr()]).listener_key(
        "tls",
        "{ cert = \"/nowhere/cert.pem\", key = \"/nowhere/key.pem\" }",
    );
    let (passed, _, stderr) = check(&missing.to_toml());
    assert!(!passed, "{stderr}");
    assert!(stderr.contains("listeners[0].tls.cert"), "{stderr}");
    assert!(stderr.contains("cannot read certificates"), "{stderr}");
}

#[test]
fn a_large_body_goes_both_ways_over_tls_and_the_config_shows_the_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    let origin = HttpOrigin::echo();
    let config = tls_config(&origin, &pki);
    let proxy = Ringway::start(&config.to_toml());
    // 3 MiB: many TLS records, many ring buffers, sends that wait on a
    // slow reader's window.
    let body: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, &body).expect("the upload");
    let download = dir.path().join("download.bin");
    let (url, resolve) = target(&config, "/echo");
    let ca = pki.ca.to_string_lossy().into_owned();
    let data = format!("@{}", upload.to_string_lossy());
    let out = download.to_string_lossy().into_owned();
    let run = curl(&[
        "-sS",
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &data,
        "-o",
        &out,
        &url,
    ]);
    assert!(run.success, "curl failed: {}", run.stderr);
    let echoed = std::fs::read(&download).expect("the download");
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "the echoed body differs");
    // `GET /config` names the files, never their contents.
    let shown = ringway_kit::admin::get(config.admin, "/config");
    let text = shown.body;
    assert!(text.contains(&*pki.cert.to_string_lossy()), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    // And it reads back as the same configuration.
    let (passed, summary, stderr) = check(&text);
    assert!(passed, "{stderr}");
    assert!(summary.contains("tls: TLS 1.3, certificate"), "{summary}");
    proxy.stop().assert_clean();
}

#[test]
fn key_updates_and_one_byte_records_keep_the_stream_intact() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    // Large bodies both ways: uploads the origin records whole before it
    // answers, and `/big`, 1 MiB.
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let served = big.clone();
    let origin = HttpOrigin::start(move |req| {
        if req.path() == "/big" {
            Reply::ok(&served)
        } else {
            Reply::ok(b"stored")
        }
    });
    let config = tls_config(&origin, &pki);
    let proxy = Ringway::start(&config.to_toml());
    let client = TlsClient::new(&[&pki.ca]);
    let mut conn = HttpConn::over(client.connect(config.listen).expect("a TLS connection"));
    // A request written a byte per record: hundreds of records, each
    // opened on its own, their plaintext gathered for the parser.
    let small = b"one byte per record, and it still adds up";
    for byte in Req::post("/small").body(small).to_bytes() {
        conn.send_raw(&[byte]);
    }
    let answer = conn.read();
    assert_eq!(answer.status, 200);
    // Key updates the client asks the server to answer, around bodies
    // large enough to split records across receive buffers both ways: the
    // server's own key update has to go out before its next record, and
    // nothing may be lost or reordered.
    for round in 0..3 {
        conn.wire().get_mut().refresh_keys().expect("a key update");
        let answer = conn.exchange(&Req::post("/upload").body(&big));
        assert_eq!(answer.status, 200, "round {round}");
        assert_eq!(answer.body_text(), "stored", "round {round}");
        conn.wire().get_mut().refresh_keys().expect("a key update");
        let answer = conn.exchange(&Req::get("/big"));
        assert_eq!(answer.status, 200, "round {round}");
        assert!(answer.body == big, "round {round}: the download differs");
    }
    drop(conn);
    let requests = origin.requests();
    assert_eq!(requests.len(), 7);
    assert_eq!(requests[0].body, small);
    for upload in requests.iter().filter(|r| r.path() == "/upload") {
        assert!(upload.body == big, "an upload arrived changed");
    }
    proxy.stop().assert_clean();
}

#[test]
fn a_forged_record_after_the_handshake_closes_only_its_connection() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = pki(dir.path());
    let origin = HttpOrigin::start(|_| Reply::ok(b"fine"));
    let config = tls_config(&origin, &pki);
    let proxy = Ringway::start(&config.to_toml());
    let client = TlsClient::new(&[&pki.ca]);
    let mut bystander = HttpConn::over(client.connect(config.listen).expect("a connection"));
    assert_eq!(bystander.exchange(&Req::get("/before")).status, 200);
    // Records no key sealed, after a good handshake: one that claims to be
    // application data, one too long to be any record, one in plaintext.
    let forged: [&[u8]; 3] = [
        &[
            23, 3, 3, 0, 40, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
            7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        ],
        &[23, 3, 3, 0xff, 0xff, 0],
        &[22, 3, 3, 0, 4, 24, 0, 0, 1],
    ];
    for bytes in forged {
        let mut victim = client.connect(config.listen).expect("a connection");
        victim
            .tcp()
            .write_all(bytes)
            .expect("the forged record goes");
        victim
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let mut buf = [0u8; 64];
        match victim.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("{n} bytes answered a forged record"),
        }
    }
    // Nothing reached the origin from them, and the other connection is
    // served as before.
    assert_eq!(bystander.exchange(&Req::get("/after")).status, 200);
    let paths: Vec<String> = origin
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/before", "/after"]);
    drop(bystander);
    proxy.stop().assert_clean();
}

/// Whether curl, trusting `ca`, gets an answer from the listener.
fn trusted(config: &HttpConfig, ca: &Path) -> bool {
    let (url, resolve) = target(config, "/");
    let ca = ca.to_string_lossy().into_owned();
    curl(&["-sS", "--cacert", &ca, "--resolve", &resolve, &url]).success
}

#[test]
fn a_reload_rotates_the_certificate_and_a_bad_one_is_refused_with_the_old_serving() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let first = pki(dir.path());
    let next_dir = dir.path().join("next");
    std::fs::create_dir(&next_dir).expect("a dir");
    let next = pki(&next_dir);
    let origin = HttpOrigin::ok("served");
    let config = tls_config(&origin, &first);
    let proxy = Ringway::start(&config.to_toml());
    assert!(trusted(&config, &first.ca));
    assert!(!trusted(&config, &next.ca));

    // New files in place, the configuration text unchanged: a reload reads
    // them, and new handshakes present the new certificate.
    std::fs::copy(&next.cert, &first.cert).expect("the new certificate");
    std::fs::copy(&next.key, &first.key).expect("the new key");
    let reloaded = ringway_kit::admin::post(config.admin, "/reload", "");
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert!(trusted(&config, &next.ca));
    assert!(!trusted(&config, &first.ca));

    // A certificate that does not parse is refused, naming the key, and
    // the one in use keeps serving.
    std::fs::write(&first.cert, "not a certificate").expect("a bad file");
    let refused = ringway_kit::admin::post(config.admin, "/reload", "");
    assert_ne!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("listeners[0].tls.cert"),
        "{}",
        refused.body
    );
    assert!(trusted(&config, &next.ca));
    proxy.stop().assert_clean();
}
