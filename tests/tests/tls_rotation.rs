//! Certificate rotation under load: clients keep a TLS listener busy, some
//! with a new connection (a full handshake) per request, some on one
//! kept-alive connection each, while the test swaps the certificate and
//! key files and reloads, again and again, alternating between two CAs
//! the clients both trust; once it swaps in a key that does not go with
//! its certificate. No request may fail; every handshake that starts after
//! a reload returned must show that reload's certificate (or, while the
//! next one is being applied, the next one), never an older one and never
//! the refused one; the kept-alive connections live through every reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ringway_kit::{admin, wait, Ringway};
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::{quote, HttpConfig};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::pki::{Ca, Leaf};
use ringway_tests::tls_client::{TlsClient, TlsStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Clients opening a new connection for every request.
const FRESH_CLIENTS: usize = 3;
/// Clients sending every request on one connection kept alive.
const KEPT_CLIENTS: usize = 3;
/// Good certificates swapped in after the first one.
const ROTATIONS: usize = 6;
/// The swap after which a bad pair is tried (and refused).
const BAD_AFTER: usize = 3;
/// Requests every client completes after each reload before the next one:
/// steady traffic across every swap, not one request that happened to fit.
const REQUESTS_PER_ROUND: u64 = 10;
/// The longest any wait on the proxy or the clients may take.
const WAIT: Duration = Duration::from_secs(60);
/// What the origin answers.
const BODY: &str = "served";

/// The certificates the listener serves in turn: index 0 from the start,
/// then one per rotation, the CA alternating.
struct Rotation {
    leaves: Vec<Leaf>,
    /// Each leaf's certificate as DER, to tell which one a server showed.
    ders: Vec<Vec<u8>>,
    /// The common name of each leaf's issuer.
    issuers: Vec<String>,
}

impl Rotation {
    fn new(a: &Ca, b: &Ca) -> Self {
        let mut rotation = Self {
            leaves: Vec::new(),
            ders: Vec::new(),
            issuers: Vec::new(),
        };
        for i in 0..=ROTATIONS {
            let (ca, name) = if i % 2 == 0 { (a, "A") } else { (b, "B") };
            let leaf = ca.server(&format!("leaf-{i}"), &["localhost"]);
            rotation.ders.push(der(&leaf.cert));
            rotation.issuers.push(format!("CN=ringway test CA {name}"));
            rotation.leaves.push(leaf);
        }
        rotation
    }

    /// Which of the leaves `stream`'s server presented, if any.
    fn shown(&self, stream: &TlsStream) -> Option<usize> {
        self.ders
            .iter()
            .position(|der| der.as_slice() == stream.peer_certificate())
    }
}

/// The first certificate in the PEM file at `path`, as DER.
fn der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .as_ref()
        .to_vec()
}

/// The files the listener's configuration names; their content changes.
struct Live {
    cert: PathBuf,
    key: PathBuf,
}

impl Live {
    /// Puts `cert` and `key` in place, each by a rename, so that no reader
    /// ever sees a file half written.
    fn install(&self, cert: &Path, key: &Path) {
        for (from, to) in [(cert, &self.cert), (key, &self.key)] {
            let staged = to.with_extension("staged");
            std::fs::copy(from, &staged).expect("staging a file");
            std::fs::rename(&staged, to).expect("renaming a file in place");
        }
    }
}

/// What the clients and the test share while the load runs.
struct Shared {
    stop: AtomicBool,
    /// The newest leaf whose reload has returned: a handshake begun after
    /// this was read must show this leaf or a newer one.
    applied: AtomicUsize,
    /// The newest leaf whose files went in place: no handshake can show a
    /// newer one.
    installed: AtomicUsize,
    /// Requests each client completed (fresh clients first).
    served: Vec<AtomicU64>,
    /// Handshakes each fresh client made that showed each leaf.
    shown: Vec<Vec<AtomicU64>>,
}

/// A client's account, handed back when it stops.
#[derive(Debug, Default)]
struct Account {
    requests: u64,
    handshakes: u64,
    /// Handshakes begun before a reload returned and done after its files
    /// went in place: the ones that raced a swap.
    raced: u64,
    failures: Vec<String>,
}

fn tls_table(live: &Live) -> String {
    format!(
        "{{ cert = {}, key = {} }}",
        quote(&live.cert.to_string_lossy()),
        quote(&live.key.to_string_lossy())
    )
}

/// One request on `conn`; what went wrong, if anything.
fn request(conn: &mut HttpConn<TlsStream>) -> Result<(), String> {
    conn.try_send_raw(&Req::get("/rotating").to_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let response = conn.try_read(false).map_err(|e| format!("reading: {e}"))?;
    if response.status != 200 || response.body != BODY.as_bytes() {
        return Err(format!(
            "answered {} {:?}",
            response.status,
            response.body_text()
        ));
    }
    if response.header("connection") == Some("close") {
        return Err("told to close the connection".to_owned());
    }
    Ok(())
}

/// A client making a new connection per request, checking which leaf each
/// handshake showed against the reloads around it; it stops at the first
/// failure.
fn fresh_client(
    id: usize,
    addr: SocketAddr,
    client: TlsClient,
    rotation: Arc<Rotation>,
    shared: Arc<Shared>,
) -> Account {
    let mut account = Account::default();
    while !shared.stop.load(Ordering::SeqCst) {
        let floor = shared.applied.load(Ordering::SeqCst);
        let stream = match client.connect(addr) {
            Ok(stream) => stream,
            Err(e) => {
                account.failures.push(format!("fresh {id}: handshake: {e}"));
                break;
            }
        };
        account.handshakes += 1;
        let ceiling = shared.installed.load(Ordering::SeqCst);
        if ceiling > floor {
            account.raced += 1;
        }
        match rotation.shown(&stream) {
            Some(leaf) if (floor..=ceiling).contains(&leaf) => {
                let issuer = stream.peer_issuer();
                if issuer != rotation.issuers[leaf] {
                    account.failures.push(format!(
                        "fresh {id}: leaf {leaf} came with issuer {issuer:?}, not {:?}",
                        rotation.issuers[leaf]
                    ));
                    break;
                }
                shared.shown[id][leaf].fetch_add(1, Ordering::SeqCst);
            }
            shown => {
                account.failures.push(format!(
                    "fresh {id}: a handshake begun after leaf {floor} was applied, and done \
                     before leaf {} was installed, showed {shown:?} (issuer {:?})",
                    ceiling + 1,
                    stream.peer_issuer()
                ));
                break;
            }
        }
        let mut conn = HttpConn::over(stream);
        match request(&mut conn) {
            Ok(()) => {
                account.requests += 1;
                shared.served[id].fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                account.failures.push(format!("fresh {id}: {e}"));
                break;
            }
        }
    }
    account
}

/// A client sending every request on the one connection it opened before
/// the first rotation; it stops at the first failure, since the
/// connection is then gone.
fn kept_client(id: usize, mut conn: HttpConn<TlsStream>, shared: Arc<Shared>) -> Account {
    let mut account = Account {
        handshakes: 1,
        ..Account::default()
    };
    while !shared.stop.load(Ordering::SeqCst) {
        match request(&mut conn) {
            Ok(()) => {
                account.requests += 1;
                shared.served[id].fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                account.failures.push(format!(
                    "kept-alive {id}: after {} requests: {e}",
                    account.requests
                ));
                break;
            }
        }
    }
    account
}

/// The clients at work, and what they share with the test.
struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<Account>>,
}

/// How far the clients had got at some moment.
struct Progress {
    /// Requests each client completed.
    served: Vec<u64>,
    /// Handshakes each fresh client made, per leaf shown.
    shown: Vec<Vec<u64>>,
}

impl Load {
    fn progress(&self) -> Progress {
        let load = |n: &AtomicU64| n.load(Ordering::SeqCst);
        Progress {
            served: self.shared.served.iter().map(load).collect(),
            shown: self
                .shared
                .shown
                .iter()
                .map(|per_leaf| per_leaf.iter().map(load).collect())
                .collect(),
        }
    }

    /// Waits until, since `before`, every client completed
    /// [`REQUESTS_PER_ROUND`] requests and every fresh client made that
    /// many handshakes showing `leaf`. A client that stopped (it failed)
    /// or a wait past [`WAIT`] stops the load and fails the test with
    /// every client's account.
    fn wait_for_traffic(&mut self, before: &Progress, leaf: usize) {
        let reached = wait::until(WAIT, || {
            if let Some(i) = self.threads.iter().position(JoinHandle::is_finished) {
                return Ok(Some(i));
            }
            let now = self.progress();
            let served = now.served.iter().zip(&before.served);
            let shown = now.shown.iter().zip(&before.shown);
            let enough = served.into_iter().all(|(n, b)| n - b >= REQUESTS_PER_ROUND)
                && shown
                    .into_iter()
                    .all(|(n, b)| n[leaf] - b[leaf] >= REQUESTS_PER_ROUND);
            if enough {
                Ok(None)
            } else {
                Err(format!(
                    "requests served {:?} (before: {:?}), handshakes showing leaf {leaf}: {:?}",
                    now.served,
                    before.served,
                    now.shown.iter().map(|n| n[leaf]).collect::<Vec<_>>()
                ))
            }
        });
        let why = match reached {
            Ok(None) => return,
            Ok(Some(i)) => format!("client {i} stopped early"),
            Err(last) => format!("the clients did not get on within {WAIT:?}: {last}"),
        };
        let accounts = self.stop();
        panic!("{why}; the clients' accounts: {accounts:#?}");
    }

    /// Stops the clients and collects their accounts.
    fn stop(&mut self) -> Vec<Account> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.threads
            .drain(..)
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    }
}

/// `POST /reload`, expecting it applied; waits until every worker runs
/// the new generation (a reload answers before that if the workers are
/// slow to take it).
fn reload(admin_addr: SocketAddr) {
    let reloaded = admin::post(admin_addr, "/reload", "");
    let generation = |prefix: &str| {
        reloaded
            .body
            .strip_prefix(prefix)
            .and_then(|rest| rest.split([' ', ';', '\n']).next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match reloaded.status {
        200 => {
            assert!(
                generation("applied generation ").is_some(),
                "a reload that changed nothing: {}",
                reloaded.body
            );
        }
        202 => {
            let published = generation("published generation ")
                .unwrap_or_else(|| panic!("no generation in {:?}", reloaded.body));
            admin::wait_generation(admin_addr, published, WAIT);
        }
        status => panic!("the reload was refused ({status}): {}", reloaded.body),
    }
}

/// A handshake and a request of the test's own: the leaf it showed.
fn probe(addr: SocketAddr, client: &TlsClient, rotation: &Rotation) -> usize {
    let stream = client
        .connect(addr)
        .unwrap_or_else(|e| panic!("the test's own handshake failed: {e}"));
    let leaf = rotation.shown(&stream).unwrap_or_else(|| {
        panic!(
            "the listener showed a certificate of none of the leaves (issuer {:?})",
            stream.peer_issuer()
        )
    });
    assert_eq!(stream.peer_issuer(), rotation.issuers[leaf]);
    assert_eq!(stream.alpn(), Some(&b"http/1.1"[..]), "the protocol chosen");
    let mut conn = HttpConn::over(stream);
    request(&mut conn).unwrap_or_else(|e| panic!("the test's own request: {e}"));
    leaf
}

#[test]
fn rotating_certificates_under_load_fails_no_request() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let a = Ca::new(dir.path(), "A");
    let b = Ca::new(dir.path(), "B");
    let rotation = Arc::new(Rotation::new(&a, &b));
    let live = Live {
        cert: dir.path().join("live.pem"),
        key: dir.path().join("live-key.pem"),
    };
    live.install(&rotation.leaves[0].cert, &rotation.leaves[0].key);
    let origin = HttpOrigin::ok(BODY);
    let config = HttpConfig::forward_all(&[origin.addr()]).listener_key("tls", &tls_table(&live));
    let proxy = Ringway::start(&config.to_toml());
    let addr = config.listen;
    let client = TlsClient::new(&[&a.pem, &b.pem]);
    let mut own_handshakes = 0;

    let clients = FRESH_CLIENTS + KEPT_CLIENTS;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        applied: AtomicUsize::new(0),
        installed: AtomicUsize::new(0),
        served: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        shown: (0..FRESH_CLIENTS)
            .map(|_| (0..=ROTATIONS).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    });
    let mut load = Load {
        shared: Arc::clone(&shared),
        threads: Vec::new(),
    };
    for id in 0..FRESH_CLIENTS {
        let (client, rotation, shared) =
            (client.clone(), Arc::clone(&rotation), Arc::clone(&shared));
        load.threads.push(
            thread::Builder::new()
                .name(format!("fresh-{id}"))
                .spawn(move || fresh_client(id, addr, client, rotation, shared))
                .expect("a client thread"),
        );
    }
    for id in FRESH_CLIENTS..clients {
        // Connected here, before any rotation: leaf 0 for its whole life.
        let stream = client.connect(addr).expect("a kept-alive connection");
        assert_eq!(rotation.shown(&stream), Some(0));
        let conn = HttpConn::over(stream);
        let shared = Arc::clone(&shared);
        load.threads.push(
            thread::Builder::new()
                .name(format!("kept-{id}"))
                .spawn(move || kept_client(id, conn, shared))
                .expect("a client thread"),
        );
    }
    let start = load.progress();
    load.wait_for_traffic(&start, 0);

    for leaf in 1..=ROTATIONS {
        shared.installed.store(leaf, Ordering::SeqCst);
        live.install(&rotation.leaves[leaf].cert, &rotation.leaves[leaf].key);
        let before = load.progress();
        reload(config.admin);
        shared.applied.store(leaf, Ordering::SeqCst);
        // New handshakes show the new certificate at once, and its CA.
        assert_eq!(probe(addr, &client, &rotation), leaf);
        own_handshakes += 1;
        load.wait_for_traffic(&before, leaf);

        if leaf == BAD_AFTER {
            // A certificate with a key that is not its own: refused,
            // naming the key, and the one in use keeps serving.
            let bad = b.server("bad", &["localhost"]);
            live.install(&bad.cert, &a.server("stray", &["localhost"]).key);
            let before = load.progress();
            let refused = admin::post(config.admin, "/reload", "");
            assert_eq!(refused.status, 400, "{}", refused.body);
            assert!(
                refused.body.contains("listeners[0].tls.key")
                    && refused.body.contains("does not go with the certificate"),
                "{}",
                refused.body
            );
            assert_eq!(probe(addr, &client, &rotation), leaf);
            own_handshakes += 1;
            load.wait_for_traffic(&before, leaf);
        }
    }

    let accounts = load.stop();
    let failures: Vec<&String> = accounts.iter().flat_map(|a| &a.failures).collect();
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    // The kept-alive connections served through every round: the first,
    // one per rotation and the one after the refused pair.
    let rounds = ROTATIONS as u64 + 2;
    for account in &accounts[FRESH_CLIENTS..] {
        assert!(
            account.requests >= REQUESTS_PER_ROUND * rounds,
            "{account:?}"
        );
    }
    let handshakes: u64 = accounts.iter().map(|a| a.handshakes).sum::<u64>() + own_handshakes;
    let requests: u64 = accounts.iter().map(|a| a.requests).sum::<u64>() + own_handshakes;
    assert_eq!(origin.requests().len() as u64, requests);
    let raced: u64 = accounts.iter().map(|a| a.raced).sum();
    println!(
        "{requests} requests, {handshakes} handshakes ({raced} raced a swap), \
         over {ROTATIONS} rotations and a refused one"
    );
    // Every handshake the clients made was counted, and none failed.
    wait::poll("the handshake counters settle", WAIT, || {
        let stats = admin::stats(config.admin);
        let counted = (
            stats.sum("tls_handshakes"),
            stats.sum("tls_handshake_failures"),
            stats.sum("tls_handshake_timeouts"),
        );
        if counted == (handshakes, 0, 0) {
            Ok(())
        } else {
            Err(format!("{counted:?}, want ({handshakes}, 0, 0)"))
        }
    });
    proxy.stop().assert_clean();
}
