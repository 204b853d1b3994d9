//! The development CA: `ringway ca init` and `ringway ca issue` run as a
//! user would (in a working directory, defaults where they have them), and
//! what they write is judged by `openssl` and by ringway itself: the leaf
//! verifies against the CA and has the shape of an X509-SVID, private keys
//! are the owner's alone, an existing CA is not replaced unless forced,
//! bad SPIFFE IDs are refused before anything is minted, and the issued
//! certificate serves TLS on a listener that curl trusts through the CA.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ringway_kit::launcher::{binary, run_to_exit, write_config};
use ringway_kit::Ringway;
use ringway_tests::http_client::curl;
use ringway_tests::http_config::{quote, HttpConfig};
use ringway_tests::http_origin::{HttpOrigin, Reply};

const WEB: &str = "spiffe://example.org/ns/default/sa/web";

/// A finished command: its exit status and what it printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the output unless the command succeeded.
    fn assert_ok(self, what: &str) -> Self {
        assert!(self.ok(), "{what} failed: {self:?}");
        self
    }
}

fn run(program: &Path, cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `ringway ARGS` in `cwd`.
fn ringway(cwd: &Path, args: &[&str]) -> Run {
    run(&binary(), cwd, args)
}

/// `openssl ARGS` in `cwd`.
fn openssl(cwd: &Path, args: &[&str]) -> Run {
    run(Path::new("openssl"), cwd, args)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The value lines under `heading` in `openssl x509 -text` output (the
/// line after it), split at ", ".
fn extension(text: &str, heading: &str) -> Vec<String> {
    let mut lines = text.lines();
    lines
        .find(|l| l.trim() == heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{text}"));
    let value = lines.next().unwrap_or_default().trim();
    value.split(", ").map(str::to_owned).collect()
}

/// A working directory with a CA for example.org made in it (the default
/// `./ringway-ca`).
fn with_ca() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let made =
        ringway(dir.path(), &["ca", "init", "--trust-domain", "example.org"]).assert_ok("ca init");
    assert!(made.stdout.contains("example.org"), "{made:?}");
    dir
}

#[test]
fn the_issued_leaf_verifies_against_the_ca_and_is_an_x509_svid() {
    let dir = with_ca();
    let cwd = dir.path();
    assert_eq!(mode(&cwd.join("ringway-ca/ca-key.pem")), 0o600);
    let ca = openssl(
        cwd,
        &["x509", "-in", "ringway-ca/ca.pem", "-text", "-noout"],
    )
    .assert_ok("openssl x509 on the CA");
    assert_eq!(
        extension(&ca.stdout, "X509v3 Basic Constraints: critical"),
        ["CA:TRUE", "pathlen:0"]
    );
    assert_eq!(
        extension(&ca.stdout, "X509v3 Key Usage: critical"),
        ["Certificate Sign", "CRL Sign"]
    );
    assert_eq!(
        extension(&ca.stdout, "X509v3 Subject Alternative Name:"),
        ["URI:spiffe://example.org"]
    );

    let issued = ringway(
        cwd,
        &[
            "ca",
            "issue",
            WEB,
            "--out",
            "web",
            "--dns",
            "web.default.svc",
        ],
    )
    .assert_ok("ca issue");
    assert!(issued.stdout.contains(WEB), "{issued:?}");
    assert_eq!(mode(&cwd.join("web/key.pem")), 0o600);
    assert_eq!(
        std::fs::read(cwd.join("web/ca.pem")).expect("the bundle"),
        std::fs::read(cwd.join("ringway-ca/ca.pem")).expect("the CA"),
        "the bundle beside the leaf is the CA"
    );

    let verified = openssl(cwd, &["verify", "-CAfile", "web/ca.pem", "web/cert.pem"])
        .assert_ok("openssl verify");
    assert_eq!(verified.stdout.trim(), "web/cert.pem: OK");
    // Good for both ends of mTLS.
    for purpose in ["sslserver", "sslclient"] {
        openssl(
            cwd,
            &[
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                "ringway-ca/ca.pem",
                "web/cert.pem",
            ],
        )
        .assert_ok(purpose);
    }

    let leaf = openssl(cwd, &["x509", "-in", "web/cert.pem", "-text", "-noout"])
        .assert_ok("openssl x509 on the leaf");
    let text = &leaf.stdout;
    let names = extension(text, "X509v3 Subject Alternative Name:");
    let uris: Vec<_> = names.iter().filter(|n| n.starts_with("URI:")).collect();
    assert_eq!(uris, [&format!("URI:{WEB}")], "exactly one URI SAN");
    assert!(
        names.contains(&"DNS:web.default.svc".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        extension(text, "X509v3 Basic Constraints: critical"),
        ["CA:FALSE"]
    );
    assert_eq!(
        extension(text, "X509v3 Key Usage: critical"),
        ["Digital Signature"]
    );
    assert_eq!(
        extension(text, "X509v3 Extended Key Usage:"),
        [
            "TLS Web Server Authentication",
            "TLS Web Client Authentication"
        ]
    );
    assert!(text.contains("ASN1 OID: prime256v1"), "not P-256:\n{text}");
    // The key is the certificate's.
    let from_key = openssl(cwd, &["pkey", "-in", "web/key.pem", "-pubout"]).assert_ok("pkey");
    let from_cert =
        openssl(cwd, &["x509", "-in", "web/cert.pem", "-pubkey", "-noout"]).assert_ok("pubkey");
    assert_eq!(from_key.stdout, from_cert.stdout);
    // 30 days by default: still valid in 29, not in 31.
    let in_days = |days: u64| {
        openssl(
            cwd,
            &[
                "x509",
                "-in",
                "web/cert.pem",
                "-noout",
                "-checkend",
                &(days * 86_400).to_string(),
            ],
        )
        .ok()
    };
    assert!(in_days(29));
    assert!(!in_days(31));
}

#[test]
fn a_second_init_is_refused_unless_forced() {
    let dir = with_ca();
    let cwd = dir.path();
    ringway(cwd, &["ca", "issue", WEB, "--out", "web"]).assert_ok("ca issue");
    let first = std::fs::read(cwd.join("ringway-ca/ca.pem")).expect("the CA");
    let again = ringway(cwd, &["ca", "init", "--trust-domain", "example.org"]);
    assert!(!again.ok(), "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert!(again.stderr.contains("--force"), "{again:?}");
    assert_eq!(
        std::fs::read(cwd.join("ringway-ca/ca.pem")).expect("the CA"),
        first,
        "the CA was replaced"
    );
    ringway(
        cwd,
        &["ca", "init", "--trust-domain", "example.org", "--force"],
    )
    .assert_ok("ca init --force");
    assert_ne!(
        std::fs::read(cwd.join("ringway-ca/ca.pem")).expect("the CA"),
        first
    );
    assert_eq!(mode(&cwd.join("ringway-ca/ca-key.pem")), 0o600);
    // What the old CA issued no longer verifies against the new one.
    let old = openssl(
        cwd,
        &["verify", "-CAfile", "ringway-ca/ca.pem", "web/cert.pem"],
    );
    assert!(!old.ok(), "{old:?}");
}

#[test]
fn ids_outside_the_trust_domain_or_malformed_are_refused_before_minting() {
    let dir = with_ca();
    let cwd = dir.path();
    let outside = ringway(
        cwd,
        &["ca", "issue", "spiffe://other.org/ns/a", "--out", "x"],
    );
    assert_eq!(outside.code, Some(2), "{outside:?}");
    assert!(
        outside.stderr.contains("\"other.org\"") && outside.stderr.contains("\"example.org\""),
        "{outside:?}"
    );
    // One ID per rule of the SPIFFE ID standard, and what the error says.
    let long_path = format!("spiffe://example.org/{}", "a".repeat(2048));
    let malformed = [
        ("", "it is empty"),
        ("example.org/ns/a", "does not start with `spiffe://`"),
        ("SPIFFE://example.org/ns/a", "the scheme is lowercase"),
        (
            "spiffe:///ns/a",
            "the trust domain (after `spiffe://`) is empty",
        ),
        ("spiffe://Example.org/ns/a", "trust domains are lowercase"),
        ("spiffe://example.org:443/ns/a", "a port is not allowed"),
        ("spiffe://example.org", "it has no path"),
        ("spiffe://example.org/ns/a/", "the path ends with '/'"),
        ("spiffe://example.org/ns//a", "empty segment"),
        ("spiffe://example.org/ns/./a", "a '.' segment"),
        ("spiffe://example.org/ns/../a", "a '..' segment"),
        (
            "spiffe://example.org/ns/a%2Fb",
            "percent-encoding is not allowed",
        ),
        ("spiffe://example.org/ns/a?b", "a query is not allowed"),
        ("spiffe://example.org/ns/a b", "' ' at byte 25"),
        (long_path.as_str(), "more than the 2048"),
    ];
    for (id, says) in malformed {
        let refused = ringway(cwd, &["ca", "issue", id, "--out", "x"]);
        assert_eq!(refused.code, Some(2), "{id:?}: {refused:?}");
        assert!(
            refused.stderr.contains("invalid SPIFFE ID") && refused.stderr.contains(says),
            "{id:?} should be refused saying {says:?}: {refused:?}"
        );
    }
    assert!(
        !cwd.join("x").exists(),
        "something was written for a bad ID"
    );
    // A bad trust domain for a new CA, and a bad --dns name.
    let bad_domain = ringway(
        cwd,
        &[
            "ca",
            "init",
            "--trust-domain",
            "exa_mple.org:8080",
            "--dir",
            "ca2",
        ],
    );
    assert_eq!(bad_domain.code, Some(2), "{bad_domain:?}");
    assert!(
        bad_domain.stderr.contains("invalid trust domain"),
        "{bad_domain:?}"
    );
    assert!(!cwd.join("ca2").exists());
    let bad_dns = ringway(
        cwd,
        &["ca", "issue", WEB, "--out", "x", "--dns", "web..svc"],
    );
    assert_eq!(bad_dns.code, Some(2), "{bad_dns:?}");
    assert!(bad_dns.stderr.contains("invalid DNS name"), "{bad_dns:?}");
    // No CA where --ca-dir points.
    let no_ca = ringway(
        cwd,
        &["ca", "issue", WEB, "--out", "x", "--ca-dir", "nowhere"],
    );
    assert_eq!(no_ca.code, Some(1), "{no_ca:?}");
    assert!(no_ca.stderr.contains("no CA in"), "{no_ca:?}");
}

/// The listener key `tls = { cert, key }` for the files in `dir`.
fn tls_table(dir: &Path) -> String {
    let path = |name: &str| -> String { quote(&dir.join(name).to_string_lossy()) };
    format!(
        "{{ cert = {}, key = {} }}",
        path("cert.pem"),
        path("key.pem")
    )
}

#[test]
fn ringway_accepts_the_issued_certificate_on_a_tls_listener_and_curl_trusts_it() {
    let dir = with_ca();
    let cwd = dir.path();
    ringway(
        cwd,
        &[
            "ca",
            "issue",
            WEB,
            "--out",
            "web",
            "--dns",
            "localhost",
            "--ca-dir",
            "ringway-ca",
        ],
    )
    .assert_ok("ca issue");
    let web: PathBuf = cwd.join("web");
    let origin = HttpOrigin::start(|_| Reply::ok(b"through the dev CA"));
    let config = HttpConfig::forward_all(&[origin.addr()]).listener_key("tls", &tls_table(&web));
    let file = write_config(&config.to_toml());
    let path = file.path().to_string_lossy().into_owned();
    let checked = run_to_exit(&["check", &path], std::time::Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "ringway check refused the issued certificate: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(stdout.contains("configuration is valid"), "{stdout}");

    let proxy = Ringway::start(&config.to_toml());
    let port = config.listen.port();
    let ca = web.join("ca.pem").to_string_lossy().into_owned();
    let reply = curl(&[
        "-sS",
        "--cacert",
        &ca,
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}/"),
    ]);
    assert!(reply.success, "curl failed: {}", reply.stderr);
    assert_eq!(reply.stdout, "through the dev CA");
    assert_eq!(origin.requests().len(), 1);
    proxy.stop().assert_clean();
}
