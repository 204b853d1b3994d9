//! Certificates rotated while ringway runs (docs/admin.md, "Certificates"):
//! new files written in place or swapped in by a Kubernetes-style `..data`
//! rename are picked up by the watch with no reload call; a pair written
//! half-way is refused with the old one serving until the other half
//! lands; `PUT /tls/...` and `ringway tls push` check, write and apply a
//! pushed pair and refuse a bad one without changing anything; and the
//! expiry gauge follows the certificate in service. curl, trusting one CA
//! at a time, tells which certificate a new handshake gets.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use ringway_kit::admin;
use ringway_kit::launcher::run_to_exit;
use ringway_kit::ports::dead_endpoint;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::http_client::curl;
use ringway_tests::http_config::{quote, Cluster, HttpConfig};
use ringway_tests::http_origin::HttpOrigin;

/// Bound on every wait for the watch or a reload.
const WAIT: Duration = Duration::from_secs(20);

/// A CA of the test's own, its certificate in `pem`.
struct Issuer {
    cert: Certificate,
    key: KeyPair,
    pem: PathBuf,
}

/// A leaf certificate and its key, as PEM text, and when it expires.
#[derive(Clone)]
struct Pair {
    cert: String,
    key: String,
    not_after: i64,
}

/// How a leaf is made: its validity (year, month, day) and SPIFFE ID.
struct Spec<'a> {
    from: (i32, u8, u8),
    until: (i32, u8, u8),
    id: Option<&'a str>,
}

impl Spec<'_> {
    /// Valid from 2024 until `year`-01-01, with no SPIFFE ID.
    fn until(year: i32) -> Self {
        Spec {
            from: (2024, 1, 1),
            until: (year, 1, 1),
            id: None,
        }
    }
}

impl Issuer {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ringway rotation CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("the CA");
        let pem = dir.join(format!("{name}-ca.pem"));
        fs::write(&pem, cert.pem()).expect("the CA file");
        Self { cert, key, pem }
    }

    /// A leaf for `localhost` and 127.0.0.1 (and the SPIFFE ID, if any,
    /// keeping the X509-SVID rules).
    fn leaf(&self, spec: &Spec<'_>) -> Pair {
        let key = KeyPair::generate().expect("a leaf key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        if let Some(id) = spec.id {
            params
                .subject_alt_names
                .push(SanType::URI(id.try_into().expect("an IA5 URI")));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let (y, m, d) = spec.from;
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = spec.until;
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let not_after = params.not_after.unix_timestamp();
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("the leaf");
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
            not_after,
        }
    }
}

/// `config` with the listener's `tls = { cert, key }` at these paths.
fn with_tls(config: HttpConfig, cert: &Path, key: &Path) -> HttpConfig {
    config.listener_key(
        "tls",
        &format!(
            "{{ cert = {}, key = {} }}",
            quote(&cert.to_string_lossy()),
            quote(&key.to_string_lossy())
        ),
    )
}

/// Whether curl, trusting only `ca`, completes a new handshake with the
/// listener and gets an answer.
fn trusted(listen: SocketAddr, ca: &Path) -> bool {
    let url = format!("https://localhost:{}/", listen.port());
    let resolve = format!("localhost:{}:127.0.0.1", listen.port());
    let ca = ca.to_string_lossy().into_owned();
    curl(&["-sS", "--cacert", &ca, "--resolve", &resolve, &url]).success
}

/// Asserts that new handshakes present the certificate `ca` issued, and
/// that one trusting `other` fails.
fn serves(listen: SocketAddr, ca: &Issuer, other: &Issuer) {
    assert!(trusted(listen, &ca.pem), "{} not trusted", ca.pem.display());
    assert!(
        !trusted(listen, &other.pem),
        "{} still trusted",
        other.pem.display()
    );
}

fn unix_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}

/// Checks the expiry gauge of `owner` `name`'s certificate at `cert`: its
/// value is `not_after` minus the time of the scrape, within a minute (the
/// scrape happens between two readings of the test's own clock), and
/// `/stats` says the same.
fn assert_expiry(addr: SocketAddr, owner: &str, name: &str, cert: &Path, not_after: i64) {
    let cert = cert.to_string_lossy();
    let before = unix_now();
    let metrics = admin::metrics(addr);
    let after = unix_now();
    let samples: Vec<f64> = metrics
        .of("ringway_tls_certificate_expiry_seconds")
        .into_iter()
        .filter(|s| {
            s.labels.get("owner") == Some(owner)
                && s.labels.get("name") == Some(name)
                && s.labels.get("cert") == Some(&*cert)
        })
        .filter_map(|s| admin::scalar(&s.value))
        .collect();
    let [value] = samples[..] else {
        panic!(
            "not one expiry sample for {owner} {name} {cert}: {samples:?}\n{}",
            metrics.text
        );
    };
    let (low, high) = (not_after - after - 60, not_after - before + 60);
    assert!(
        value >= low as f64 && value <= high as f64,
        "expiry {value} outside [{low}, {high}]"
    );
    let stats = admin::stats(addr);
    let listed = stats.json["tls_certificates"]
        .as_array()
        .expect("tls_certificates in /stats")
        .iter()
        .find(|c| c["owner"] == owner && c["name"] == name && c["cert"] == *cert)
        .unwrap_or_else(|| panic!("{owner} {name} {cert} not in /stats: {}", stats.json))
        .clone();
    assert_eq!(listed["not_after"], not_after, "{listed}");
}

/// Writes `pair` as `cert` then `key`, each in place (truncate, write),
/// as a script copying files does.
fn write_pair(pair: &Pair, cert: &Path, key: &Path) {
    fs::write(cert, &pair.cert).expect("the certificate file");
    fs::write(key, &pair.key).expect("the key file");
}

/// How many of ringway's stderr lines so far contain `needle`.
fn lines_with(proxy: &Ringway, needle: &str) -> usize {
    proxy
        .stderr()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// The newest generation and the count of refused reloads.
fn generation_and_refusals(addr: SocketAddr) -> (u64, u64) {
    let stats = admin::stats(addr);
    (stats.generation(), stats.u64("/reload_failures"))
}

#[test]
fn files_written_in_place_rotate_and_a_half_written_pair_waits_for_its_other_half() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a, b, c) = (
        Issuer::new(dir.path(), "a"),
        Issuer::new(dir.path(), "b"),
        Issuer::new(dir.path(), "c"),
    );
    let (first, second, third) = (
        a.leaf(&Spec::until(2031)),
        b.leaf(&Spec::until(2032)),
        c.leaf(&Spec::until(2033)),
    );
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_pair(&first, &cert, &key);
    let origin = HttpOrigin::ok("served");
    let config = with_tls(HttpConfig::forward_all(&[origin.addr()]), &cert, &key);
    let proxy = Ringway::start(&config.to_toml());
    serves(config.listen, &a, &b);
    assert_expiry(config.admin, "listener", "web", &cert, first.not_after);

    // New files, no reload call: the watch reads them and new handshakes
    // get the new certificate.
    write_pair(&second, &cert, &key);
    admin::wait_generation(config.admin, 2, WAIT);
    serves(config.listen, &b, &a);
    assert_expiry(config.admin, "listener", "web", &cert, second.not_after);
    let line = proxy.wait_for_stderr("applied generation 2", WAIT);
    assert!(
        line.contains("reload (file change: ") && line.contains(&*dir.path().to_string_lossy()),
        "{line}"
    );

    // A new key without its certificate: refused, naming the key, and the
    // pair in service keeps serving ...
    let refusal = "does not go with the certificate";
    let (before, refused_before) = (
        lines_with(&proxy, refusal),
        generation_and_refusals(config.admin).1,
    );
    fs::write(&key, &third.key).expect("the key file");
    poll("the half-written pair refused", WAIT, || {
        if lines_with(&proxy, refusal) > before {
            Ok(())
        } else {
            Err(proxy.stderr())
        }
    });
    let (generation, refused) = generation_and_refusals(config.admin);
    assert_eq!(generation, 2);
    assert!(refused > refused_before);
    serves(config.listen, &b, &c);
    assert_expiry(config.admin, "listener", "web", &cert, second.not_after);
    // ... until its certificate lands.
    fs::write(&cert, &third.cert).expect("the certificate file");
    admin::wait_generation(config.admin, 3, WAIT);
    serves(config.listen, &c, &b);
    assert_expiry(config.admin, "listener", "web", &cert, third.not_after);
    proxy.stop().assert_clean();
}

/// After a reload that names other files, the old ones are no longer
/// followed (a change there applies nothing) and the new ones are.
#[test]
fn the_files_watched_follow_the_running_configuration() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a, b, c) = (
        Issuer::new(dir.path(), "a"),
        Issuer::new(dir.path(), "b"),
        Issuer::new(dir.path(), "c"),
    );
    let (old, old_key) = (dir.path().join("old.pem"), dir.path().join("old-key.pem"));
    let (new, new_key) = (dir.path().join("new.pem"), dir.path().join("new-key.pem"));
    write_pair(&a.leaf(&Spec::until(2031)), &old, &old_key);
    write_pair(&b.leaf(&Spec::until(2032)), &new, &new_key);
    let origin = HttpOrigin::ok("served");
    let base = HttpConfig::forward_all(&[origin.addr()]);
    let config = with_tls(base.clone(), &old, &old_key);
    let proxy = Ringway::start(&config.to_toml());
    serves(config.listen, &a, &b);
    let moved = with_tls(base, &new, &new_key);
    let applied = admin::post(config.admin, "/config", &moved.to_toml());
    assert_eq!(applied.status, 200, "{}", applied.body);
    serves(config.listen, &b, &a);

    // The old certificate broken, the new one rotated, in one go: only the
    // new files are read, and named.
    fs::write(&old, "not a certificate").expect("the old file");
    write_pair(&c.leaf(&Spec::until(2033)), &new, &new_key);
    admin::wait_generation(config.admin, 3, WAIT);
    serves(config.listen, &c, &b);
    let stderr = proxy.stderr();
    let changes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("reload (file change: "))
        .collect();
    let old = old.to_string_lossy();
    assert!(
        changes.iter().all(|l| !l.contains(&*old)),
        "{old} is still followed:\n{stderr}"
    );
    assert!(
        changes.iter().any(|l| l.contains(&*new.to_string_lossy())),
        "{stderr}"
    );
    proxy.stop().assert_clean();
}

/// A Secret volume as the kubelet lays it out: `tls.crt -> ..data/tls.crt`,
/// `tls.key -> ..data/tls.key`, `..data -> ..STAMP`.
struct SecretVolume {
    root: PathBuf,
}

impl SecretVolume {
    fn new(root: &Path, pair: &Pair) -> Self {
        let volume = Self {
            root: root.to_owned(),
        };
        volume.swap("..v1", pair);
        for name in ["tls.crt", "tls.key"] {
            symlink(format!("..data/{name}"), root.join(name)).expect("a symlink");
        }
        volume
    }

    /// A new directory `stamp` holding `pair`, and `..data` renamed over to
    /// point there.
    fn swap(&self, stamp: &str, pair: &Pair) {
        let dir = self.root.join(stamp);
        fs::create_dir(&dir).expect("a data dir");
        fs::write(dir.join("tls.crt"), &pair.cert).expect("tls.crt");
        fs::write(dir.join("tls.key"), &pair.key).expect("tls.key");
        symlink(stamp, self.root.join("..data_tmp")).expect("a symlink");
        fs::rename(self.root.join("..data_tmp"), self.root.join("..data")).expect("the swap");
    }
}

#[test]
fn a_secret_volume_swap_rotates_the_pair() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a, b, c) = (
        Issuer::new(dir.path(), "a"),
        Issuer::new(dir.path(), "b"),
        Issuer::new(dir.path(), "c"),
    );
    let root = dir.path().join("secret");
    fs::create_dir(&root).expect("the volume");
    let volume = SecretVolume::new(&root, &a.leaf(&Spec::until(2031)));
    let (cert, key) = (root.join("tls.crt"), root.join("tls.key"));
    let origin = HttpOrigin::ok("served");
    let config = with_tls(HttpConfig::forward_all(&[origin.addr()]), &cert, &key);
    let proxy = Ringway::start(&config.to_toml());
    serves(config.listen, &a, &b);

    let second = b.leaf(&Spec::until(2032));
    volume.swap("..v2", &second);
    admin::wait_generation(config.admin, 2, WAIT);
    serves(config.listen, &b, &a);
    assert_expiry(config.admin, "listener", "web", &cert, second.not_after);

    // The kubelet removes the old directory; the next update still lands.
    fs::remove_dir_all(root.join("..v1")).expect("the old data");
    let third = c.leaf(&Spec::until(2033));
    volume.swap("..v3", &third);
    admin::wait_generation(config.admin, 3, WAIT);
    serves(config.listen, &c, &b);
    assert_expiry(config.admin, "listener", "web", &cert, third.not_after);
    proxy.stop().assert_clean();
}

/// `PUT path` with a JSON body of `pair`.
fn push(addr: SocketAddr, path: &str, pair: &Pair) -> admin::Response {
    let body = format!(
        "{{\"cert\": {}, \"key\": {}}}",
        json_string(&pair.cert),
        json_string(&pair.key)
    );
    admin::request(addr, "PUT", path, Some(&body)).expect("PUT to the admin API")
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// What the files at `paths` hold.
fn contents(paths: &[&Path]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| fs::read(p).expect("a file")).collect()
}

#[test]
fn pushed_certificates_rotate_and_bad_ones_change_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a, b) = (Issuer::new(dir.path(), "a"), Issuer::new(dir.path(), "b"));
    let web = "spiffe://example.org/ns/default/sa/web";
    let mesh = "spiffe://example.org/ns/default/sa/mesh";
    let svid = |issuer: &Issuer, id: &str, year: i32| {
        issuer.leaf(&Spec {
            id: Some(id),
            ..Spec::until(year)
        })
    };
    let (cert, key) = (dir.path().join("web.pem"), dir.path().join("web-key.pem"));
    write_pair(&svid(&a, web, 2031), &cert, &key);
    let (client, client_key) = (dir.path().join("mesh.pem"), dir.path().join("mesh-key.pem"));
    write_pair(&svid(&a, mesh, 2031), &client, &client_key);
    let origin = HttpOrigin::ok("served");
    // A cluster presenting a client certificate (no route uses it: only
    // its certificate matters here).
    let cluster_tls = format!(
        "{{ ca = {}, cert = {}, key = {} }}",
        quote(&a.pem.to_string_lossy()),
        quote(&client.to_string_lossy()),
        quote(&client_key.to_string_lossy())
    );
    let config = with_tls(HttpConfig::forward_all(&[origin.addr()]), &cert, &key)
        .cluster_with(Cluster::new("mesh", &[dead_endpoint()]).key("tls", &cluster_tls));
    let proxy = Ringway::start(&config.to_toml());
    serves(config.listen, &a, &b);

    // A good push: same identity, another issuer. Written over the
    // configured files (the key readable by its owner alone) and applied.
    let next = svid(&b, web, 2032);
    let pushed = push(config.admin, "/tls/listeners/web", &next);
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    assert!(
        pushed.body.contains("applied generation 2"),
        "{}",
        pushed.body
    );
    serves(config.listen, &b, &a);
    assert_eq!(fs::read_to_string(&cert).expect("the cert"), next.cert);
    assert_eq!(fs::read_to_string(&key).expect("the key"), next.key);
    let mode = fs::metadata(&key).expect("the key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_expiry(config.admin, "listener", "web", &cert, next.not_after);

    // Bad pushes: refused with the reason, nothing written, nothing applied.
    let files = [cert.as_path(), key.as_path()];
    let on_disk = contents(&files);
    let mismatched = Pair {
        key: svid(&b, web, 2032).key,
        ..next.clone()
    };
    let expired = b.leaf(&Spec {
        from: (2020, 1, 1),
        until: (2021, 1, 1),
        id: Some(web),
    });
    let stranger = svid(&b, "spiffe://example.org/ns/default/sa/other", 2032);
    let anonymous = b.leaf(&Spec::until(2032));
    for (pair, reason) in [
        (&mismatched, "does not go with the certificate"),
        (&expired, "not valid now"),
        (&stranger, "wrong identity for its use"),
        (&anonymous, "carries no SPIFFE ID"),
    ] {
        let refused = push(config.admin, "/tls/listeners/web", pair);
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains(reason), "{reason}: {}", refused.body);
        assert_eq!(contents(&files), on_disk, "{reason}: the files changed");
        assert_eq!(admin::stats(config.admin).generation(), 2, "{reason}");
        serves(config.listen, &b, &a);
    }
    let garbage = admin::request(
        config.admin,
        "PUT",
        "/tls/listeners/web",
        Some("{\"cert\": 1}"),
    )
    .expect("PUT");
    assert_eq!(garbage.status, 400, "{}", garbage.body);
    let unknown = push(config.admin, "/tls/listeners/nowhere", &next);
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // The CLI pushes a cluster's client certificate the same way.
    let admin_addr = config.admin.to_string();
    let cli = |pair: &Pair, name: &str| {
        let (c, k) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}-key.pem")),
        );
        write_pair(pair, &c, &k);
        let (c, k) = (
            c.to_string_lossy().into_owned(),
            k.to_string_lossy().into_owned(),
        );
        run_to_exit(
            &[
                "tls",
                "push",
                "--cluster",
                "mesh",
                "--cert",
                &c,
                "--key",
                &k,
                "--admin",
                &admin_addr,
            ],
            WAIT,
        )
    };
    let next_client = svid(&b, mesh, 2033);
    let out = cli(&next_client, "next-mesh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied generation 3"), "{stdout}");
    assert_eq!(
        fs::read_to_string(&client).expect("the client cert"),
        next_client.cert
    );
    assert_expiry(
        config.admin,
        "cluster",
        "mesh",
        &client,
        next_client.not_after,
    );
    let out = cli(&svid(&b, web, 2033), "wrong-mesh");
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("wrong identity for its use"), "{stdout}");
    assert_eq!(
        fs::read_to_string(&client).expect("the client cert"),
        next_client.cert
    );

    // A good pair the configuration still refuses (another of its files
    // broke meanwhile): the pushed files are put back.
    let refusals = lines_with(&proxy, "configuration refused");
    fs::write(&a.pem, "not a certificate").expect("a broken anchor file");
    poll("the broken anchors refused", WAIT, || {
        if lines_with(&proxy, "configuration refused") > refusals {
            Ok(())
        } else {
            Err(proxy.stderr())
        }
    });
    let on_disk = contents(&files);
    let refused = push(config.admin, "/tls/listeners/web", &svid(&a, web, 2034));
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("clusters[1].tls.ca"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("hold what they held before"),
        "{}",
        refused.body
    );
    assert_eq!(contents(&files), on_disk);
    assert_eq!(admin::stats(config.admin).generation(), 3);
    serves(config.listen, &b, &a);

    // `ringway stats` lists both certificates with their time left.
    let out = run_to_exit(&["stats", "--admin", &admin_addr], WAIT);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("tls certificates:"), "{table}");
    assert!(
        table.contains(&format!(
            "listener web: {} expires 2032-01-01T00:00:00Z (in ",
            cert.display()
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "cluster mesh: {} expires 2033-01-01T00:00:00Z (in ",
            client.display()
        )),
        "{table}"
    );
    proxy.stop().assert_clean();
}
