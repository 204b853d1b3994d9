//! TLS on TCP listeners and to TCP clusters: two ringways as a TLS bridge
//! (plain TCP in, mTLS between them, plain TCP to the origin) carry a
//! checksummed stream both ways intact, and refuse a peer whose identity
//! is not the expected one.

use std::net::SocketAddr;
use std::time::Duration;

use ringway_kit::ports::free_addr;
use ringway_kit::{admin, Ringway};
use ringway_tests::client;
use ringway_tests::data;
use ringway_tests::http_client::metric_sum;
use ringway_tests::http_config::quote;
use ringway_tests::net::{read_until_closed, Ended};
use ringway_tests::origin::{self, Origin};
use ringway_tests::pki::{Ca, Leaf};

const MIB: u64 = 1024 * 1024;
const BULK_TIMEOUT: Duration = Duration::from_secs(240);
const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const DB: &str = "spiffe://example.org/ns/default/sa/db";

/// One ringway: a TCP listener at `listen` (with `listener_tls`, a TOML
/// table, or plain) to one cluster of `endpoint` (with `cluster_tls`).
fn tcp_proxy(
    listen: SocketAddr,
    admin: SocketAddr,
    endpoint: SocketAddr,
    listener_tls: Option<String>,
    cluster_tls: Option<String>,
) -> String {
    tcp_proxy_with(listen, admin, endpoint, listener_tls, cluster_tls, "")
}

/// [`tcp_proxy`] with `listener_extra` (tables of the listener) after the
/// listener's keys.
fn tcp_proxy_with(
    listen: SocketAddr,
    admin: SocketAddr,
    endpoint: SocketAddr,
    listener_tls: Option<String>,
    cluster_tls: Option<String>,
    listener_extra: &str,
) -> String {
    let mut text = format!(
        "[runtime]\nworker_cores = [0]\ndrain_timeout = \"5s\"\n\n[admin]\naddress = \"{admin}\"\n\n\
         [[listeners]]\nname = \"in\"\naddress = \"{listen}\"\nprotocol = \"tcp\"\ncluster = \"out\"\n"
    );
    if let Some(tls) = listener_tls {
        text += &format!("tls = {tls}\n");
    }
    text += listener_extra;
    text += &format!(
        "\n[[clusters]]\nname = \"out\"\nendpoints = [\"{endpoint}\"]\nconnect_timeout = \"2s\"\n"
    );
    if let Some(tls) = cluster_tls {
        text += &format!("tls = {tls}\n");
    }
    text
}

fn leaf_keys(leaf: &Leaf) -> String {
    format!(
        "cert = {}, key = {}",
        quote(&leaf.cert_str()),
        quote(&leaf.key_str())
    )
}

/// The bridge: `outer` (plain in, mTLS out expecting `expect`) to `inner`
/// (mTLS in as `db`, plain out to `origin`). Returns (outer's listen and
/// admin, inner's admin, the two proxies).
fn bridge(
    ca: &Ca,
    origin: SocketAddr,
    expect: &str,
) -> (SocketAddr, SocketAddr, SocketAddr, Ringway, Ringway) {
    bridge_with(ca, origin, expect, "")
}

/// [`bridge`], the inner listener with `inner_extra`.
fn bridge_with(
    ca: &Ca,
    origin: SocketAddr,
    expect: &str,
    inner_extra: &str,
) -> (SocketAddr, SocketAddr, SocketAddr, Ringway, Ringway) {
    let db = ca.workload("db", DB);
    let web = ca.workload("web", WEB);
    let (inner_listen, inner_admin) = (free_addr(), free_addr());
    let inner = Ringway::start(&tcp_proxy_with(
        inner_listen,
        inner_admin,
        origin,
        Some(format!(
            "{{ {}, client_ca = {} }}",
            leaf_keys(&db),
            quote(&ca.pem_str())
        )),
        None,
        inner_extra,
    ));
    let (outer_listen, outer_admin) = (free_addr(), free_addr());
    let outer = Ringway::start(&tcp_proxy(
        outer_listen,
        outer_admin,
        inner_listen,
        None,
        Some(format!(
            "{{ ca = {}, identities = [{}], {} }}",
            quote(&ca.pem_str()),
            quote(expect),
            leaf_keys(&web)
        )),
    ));
    (outer_listen, outer_admin, inner_admin, outer, inner)
}

#[test]
fn a_tls_bridge_carries_64_mib_both_ways_intact() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let origin = Origin::start(origin::echo);
    let (listen, outer_admin, inner_admin, outer, inner) = bridge(&ca, origin.addr(), DB);

    let len = 64 * MIB;
    let stream = client(listen);
    let (sent, echoed) = data::round_trip(&stream, len);
    let sent = sent.expect("sending 64 MiB");
    let echoed = echoed.expect("reading the echo");
    let received = origin.next_ok(BULK_TIMEOUT);
    assert_eq!(sent.bytes, len);
    assert_eq!(received, sent, "what the origin received");
    assert_eq!(echoed, sent, "what came back to the client");
    assert_eq!(admin::stats(inner_admin).sum("tls_handshakes"), 1);
    assert_eq!(admin::stats(outer_admin).sum("upstream_tls_failures"), 0);

    let outer_exit = outer.stop();
    outer_exit.assert_clean();
    assert_eq!(outer_exit.total("bytes_from_clients"), len);
    assert_eq!(outer_exit.total("bytes_from_upstreams"), len);
    let inner_exit = inner.stop();
    inner_exit.assert_clean();
    assert_eq!(inner_exit.total("bytes_from_clients"), len);
}

#[test]
fn a_bridge_expecting_another_identity_is_refused_before_any_byte() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    let origin = Origin::start(origin::echo);
    let (listen, outer_admin, inner_admin, outer, inner) = bridge(
        &ca,
        origin.addr(),
        "spiffe://example.org/ns/default/sa/cache",
    );
    let mut stream = client(listen);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    // The client is reset (an empty orderly stream would pass for a
    // served one) and nothing reaches the origin.
    let ended = read_until_closed(&mut stream).expect("the close");
    assert_eq!(ended, Ended::Reset(0));
    assert_eq!(admin::stats(outer_admin).sum("upstream_tls_failures"), 1);
    // The inner side saw its peer give up the handshake.
    assert_eq!(admin::stats(inner_admin).sum("tls_handshakes"), 0);
    outer.stop().assert_clean();
    inner.stop().assert_clean();
}

#[test]
fn a_tls_listener_authorizes_by_the_identity_its_handshake_proved() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "mesh");
    for (allowed, want) in [
        (WEB, true),
        ("spiffe://example.org/ns/default/sa/cache", false),
    ] {
        let origin = Origin::start(origin::echo);
        let policy = format!(
            "\n[listeners.authorization]\ndefault = \"deny\"\n\
             [[listeners.authorization.rules]]\nname = \"callers\"\naction = \"allow\"\nfrom = [{}]\n",
            quote(allowed)
        );
        let (listen, _, inner_admin, outer, inner) = bridge_with(&ca, origin.addr(), DB, &policy);
        let stream = client(listen);
        let (sent, echoed) = data::round_trip(&stream, 4096);
        let sent = sent.expect("sending");
        match echoed {
            Ok(echoed) if want => assert_eq!(echoed, sent, "what came back"),
            Ok(echoed) => assert_eq!(echoed.bytes, 0, "a denied caller got bytes back"),
            Err(e) => assert!(!want, "the allowed caller failed: {e}"),
        }
        let (rule, decision) = if want {
            ("callers", "allow")
        } else {
            ("", "deny")
        };
        let counted = metric_sum(
            &admin::metrics(inner_admin),
            "ringway_authz_decisions_total",
            &[("listener", "in"), ("rule", rule), ("decision", decision)],
        );
        assert_eq!(counted, 1.0, "{allowed}: {rule:?} {decision}");
        outer.stop().assert_clean();
        inner.stop().assert_clean();
    }
}
