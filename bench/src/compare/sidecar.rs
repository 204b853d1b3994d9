//! Sidecar-pair scenarios (`pair = true`): each proxy system runs as two
//! processes of its kind, both on the proxy core. The clients speak
//! plaintext to the outbound half; it forwards to the inbound half, over
//! TLS 1.3 when the system's entry has TLS (mutual with client
//! authentication); the inbound half forwards to the origins in plaintext.
//!
//! Both layouts come from the one a single system would have had: the
//! outbound half keeps its listener and takes the inbound half as its one
//! upstream, originating the TLS that listener would have terminated; the
//! inbound half listens on addresses of its own with that TLS, in front of
//! the origins. Each writes its files in a directory of its own under the
//! system's (`outbound/`, `inbound/`).

use std::net::SocketAddr;

use super::configs::{Layout, UpstreamTls};

/// Where a pair's inbound half listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// Its listener, the outbound half's upstream.
    pub listen: SocketAddr,
    /// ringway's admin API (only ringway uses it).
    pub admin: SocketAddr,
}

/// The layouts of a pair's outbound and inbound halves, from the layout
/// `single` a single system would have had.
pub fn split(single: Layout, inbound: Ends) -> (Layout, Layout) {
    let dir = single.dir.clone();
    let outbound = Layout {
        origins: vec![inbound.listen],
        tls: None,
        upstream_tls: single.tls.as_ref().map(|t| UpstreamTls {
            pki: t.pki.clone(),
            client_cert: t.client_auth,
        }),
        dir: dir.join("outbound"),
        ..single.clone()
    };
    let inbound = Layout {
        listen: inbound.listen,
        admin: inbound.admin,
        upstream_tls: None,
        dir: dir.join("inbound"),
        ..single
    };
    (outbound, inbound)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::compare::configs::{self, ListenerTls, Mode, Table, Tuning};
    use crate::compare::pki::Pki;

    fn single(tls: Option<ListenerTls>) -> Layout {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Layout {
            mode: Mode::Http,
            proxy_core: 1,
            control_core: None,
            listen: addr(20001),
            origins: vec![addr(20000), addr(20010)],
            admin: addr(20002),
            max_connections: 32,
            concurrent: 32,
            dir: PathBuf::from("/run/systems/ringway"),
            table: Table::default(),
            splice: false,
            tuning: Tuning::default(),
            tls,
            upstream_tls: None,
            observe: configs::Observe::default(),
        }
    }

    fn pki() -> Pki {
        let file = |name: &str| PathBuf::from("/run/tls").join(name);
        Pki {
            ca: file("ca.pem"),
            server_cert: file("server.pem"),
            server_key: file("server.key"),
            server_bundle: file("server-bundle.pem"),
            client_cert: file("client.pem"),
            client_key: file("client.key"),
            outbound_cert: file("outbound.pem"),
            outbound_key: file("outbound.key"),
            outbound_bundle: file("outbound-bundle.pem"),
        }
    }

    #[test]
    fn the_outbound_half_originates_what_the_inbound_half_terminates() {
        let ends = Ends {
            listen: "127.0.0.1:20003".parse().expect("an address"),
            admin: "127.0.0.1:20004".parse().expect("an address"),
        };
        let tls = ListenerTls {
            pki: pki(),
            client_auth: true,
        };
        let (out, inb) = split(single(Some(tls.clone())), ends);
        // The clients keep talking to the same address, in plaintext.
        assert_eq!(out.listen, single(None).listen);
        assert_eq!(out.tls, None);
        assert_eq!(out.origins, vec![ends.listen]);
        assert_eq!(
            out.upstream_tls,
            Some(UpstreamTls {
                pki: pki(),
                client_cert: true
            })
        );
        assert_eq!((inb.listen, inb.admin), (ends.listen, ends.admin));
        assert_eq!(inb.tls, Some(tls));
        assert_eq!(inb.upstream_tls, None);
        assert_eq!(inb.origins, single(None).origins);
        assert_eq!(out.dir, PathBuf::from("/run/systems/ringway/outbound"));
        assert_eq!(inb.dir, PathBuf::from("/run/systems/ringway/inbound"));
        assert_eq!((out.proxy_core, inb.proxy_core), (1, 1));

        // The generated configs say so.
        let a = configs::ringway(&out);
        assert!(a.contains("endpoints = [\"127.0.0.1:20003\"]"), "{a}");
        assert!(a.contains("cert = \"/run/tls/outbound.pem\""), "{a}");
        let b = configs::ringway(&inb);
        assert!(b.contains("require_client_cert = true"), "{b}");
        assert!(b.contains("endpoints = [\"127.0.0.1:20000\", \"127.0.0.1:20010\"]"));

        // Without TLS, plaintext all the way.
        let (out, inb) = split(single(None), ends);
        assert_eq!((out.upstream_tls, inb.tls), (None, None));
    }
}
