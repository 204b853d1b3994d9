//! The TLS part of each proxy's configuration, in the proxy's own terms:
//! TLS on the listener (termination, with client certificates required when
//! asked) and TLS to the upstream (origination, the outbound half of a
//! sidecar pair, presenting a client certificate when asked).
//!
//! The choices are the same everywhere: TLS 1.3 only, the suites of
//! [`TLS13_SUITES`] in that order and the groups of [`TLS_GROUPS`] where
//! the system lets them be set, the run's certificates, chains of depth
//! [`VERIFY_DEPTH`] at most, and each system's own defaults for session
//! tickets and upstream session reuse.

use std::path::Path;

use super::{haproxy_quote, quote, Mode};
use crate::compare::pki::{Pki, SERVER_NAME};

/// The TLS 1.3 suites every OpenSSL-based peer offers, in this order
/// (HAProxy picks by its own order; ringway and nginx by the client's,
/// which puts AES-128-GCM first too).
pub const TLS13_SUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
/// Key exchange groups of the OpenSSL-based peers, in OpenSSL's names
/// (HAProxy's spelling; nginx says `prime256v1` for P-256). The generator
/// offers X25519 alone, which every system accepts.
pub const TLS_GROUPS: &str = "X25519:P-256";
/// The longest certificate chain the systems verify: the leaf and the CA.
pub const VERIFY_DEPTH: u32 = 2;

/// TLS on a proxy's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// The run's certificates.
    pub pki: Pki,
    /// Clients must present a certificate the CA signed (mTLS).
    pub client_auth: bool,
}

/// TLS from a proxy to its upstream: the outbound half of a sidecar pair
/// speaking to the inbound half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The run's certificates: the upstream's is verified against the CA
    /// and the name [`SERVER_NAME`] (also sent as SNI).
    pub pki: Pki,
    /// Present the outbound certificate (mTLS).
    pub client_cert: bool,
}

/// `path` as a TOML string.
fn toml_path(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// ringway: the listener's `tls` line. TLS 1.3 is ringway's default, and
/// it takes suites in the client's order.
pub(super) fn ringway_listener(tls: &ListenerTls) -> String {
    let mut table = format!(
        "cert = {}, key = {}",
        toml_path(&tls.pki.server_cert),
        toml_path(&tls.pki.server_key)
    );
    if tls.client_auth {
        // Required is ringway's default once a CA is set; said here so the
        // file reads as the peers' `verify required` does.
        table.push_str(&format!(
            ", client_ca = {}, require_client_cert = true",
            toml_path(&tls.pki.ca)
        ));
    }
    format!("# TLS 1.3 from the clients.\ntls = {{ {table} }}\n")
}

/// ringway: the cluster's `tls` line. TLS 1.3 is the only version ringway
/// originates; `verify` is on by default.
pub(super) fn ringway_cluster(tls: &UpstreamTls) -> String {
    let mut table = format!("ca = {}, sni = \"{SERVER_NAME}\"", toml_path(&tls.pki.ca));
    if tls.client_cert {
        table.push_str(&format!(
            ", cert = {}, key = {}",
            toml_path(&tls.pki.outbound_cert),
            toml_path(&tls.pki.outbound_key)
        ));
    }
    format!(
        "# TLS 1.3 to the inbound half, its certificate verified against the run's CA\n\
         # and the name; upstream sessions are never resumed.\ntls = {{ {table} }}\n"
    )
}

/// nginx: the TLS directives of a `server` block that terminates TLS (HTTP
/// and stream use the same names), at `server` indentation.
pub(super) fn nginx_listener(tls: &ListenerTls) -> String {
    let mut text = format!(
        "        ssl_certificate {};
        ssl_certificate_key {};
        ssl_protocols TLSv1.3;
        # TLS 1.3 suites are not `ssl_ciphers`: they go to OpenSSL as they are.
        ssl_conf_command Ciphersuites {TLS13_SUITES};
        ssl_ecdh_curve {};
",
        quote(&tls.pki.server_cert),
        quote(&tls.pki.server_key),
        TLS_GROUPS.replace("P-256", "prime256v1"),
    );
    if tls.client_auth {
        text.push_str(&format!(
            "        ssl_client_certificate {};
        ssl_verify_client on;
        ssl_verify_depth {VERIFY_DEPTH};
",
            quote(&tls.pki.ca)
        ));
    }
    text
}

/// nginx: the `proxy_ssl*` directives that originate TLS (HTTP and stream
/// use the same names; the stream module also needs `proxy_ssl on`, the
/// HTTP one an `https://` in `proxy_pass`), at `indent`.
pub(super) fn nginx_upstream(tls: &UpstreamTls, mode: Mode, indent: &str) -> String {
    let mut lines = Vec::new();
    if mode == Mode::Tcp {
        lines.push("proxy_ssl on".to_owned());
    }
    lines.extend([
        "# TLS 1.3 to the inbound half, verified against the run's CA and the".to_owned(),
        "# name (also sent as SNI); `proxy_ssl_session_reuse` keeps its default (on).".to_owned(),
        "proxy_ssl_protocols TLSv1.3".to_owned(),
        format!("proxy_ssl_conf_command Ciphersuites {TLS13_SUITES}"),
        format!("proxy_ssl_trusted_certificate {}", quote(&tls.pki.ca)),
        "proxy_ssl_verify on".to_owned(),
        format!("proxy_ssl_verify_depth {VERIFY_DEPTH}"),
        format!("proxy_ssl_name {SERVER_NAME}"),
        "proxy_ssl_server_name on".to_owned(),
    ]);
    if tls.client_cert {
        lines.push(format!(
            "proxy_ssl_certificate {}",
            quote(&tls.pki.outbound_cert)
        ));
        lines.push(format!(
            "proxy_ssl_certificate_key {}",
            quote(&tls.pki.outbound_key)
        ));
    }
    lines
        .iter()
        .map(|l| {
            if l.starts_with('#') {
                format!("{indent}{l}\n")
            } else {
                format!("{indent}{l};\n")
            }
        })
        .collect()
}

/// HAProxy: the TLS words of a `bind` line (a leading space).
pub(super) fn haproxy_bind(tls: &ListenerTls, mode: Mode) -> String {
    let path = |p: &Path| haproxy_quote(&p.to_string_lossy());
    let mut words = format!(" ssl crt {}", path(&tls.pki.server_bundle));
    if mode == Mode::Http {
        words.push_str(" alpn http/1.1");
    }
    words.push_str(&format!(
        " ssl-min-ver TLSv1.3 ciphersuites {TLS13_SUITES} curves {TLS_GROUPS}"
    ));
    if tls.client_auth {
        // HAProxy has no depth setting: it verifies the chain the CA file
        // completes, the leaf and the CA here.
        words.push_str(&format!(" ca-file {} verify required", path(&tls.pki.ca)));
    }
    words
}

/// HAProxy: the TLS words of a `server` line (a leading space). HAProxy
/// checks the upstream's name against the SNI it sends; `verifyhost` says
/// the same for the reader. Sessions are reused as HAProxy does by
/// default.
pub(super) fn haproxy_server(tls: &UpstreamTls) -> String {
    let path = |p: &Path| haproxy_quote(&p.to_string_lossy());
    let mut words = format!(
        " ssl verify required ca-file {} sni str({SERVER_NAME}) verifyhost {SERVER_NAME} \
         ssl-min-ver TLSv1.3 ciphersuites {TLS13_SUITES}",
        path(&tls.pki.ca)
    );
    if tls.client_cert {
        words.push_str(&format!(" crt {}", path(&tls.pki.outbound_bundle)));
    }
    words
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn pki() -> Pki {
        let file = |name: &str| PathBuf::from("/tmp/run dir/tls").join(name);
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

    fn listener(client_auth: bool) -> ListenerTls {
        ListenerTls {
            pki: pki(),
            client_auth,
        }
    }

    fn upstream(client_cert: bool) -> UpstreamTls {
        UpstreamTls {
            pki: pki(),
            client_cert,
        }
    }

    #[test]
    fn ringway_requires_client_certificates_only_when_asked() {
        let plain = ringway_listener(&listener(false));
        assert!(plain.contains(
            "tls = { cert = \"/tmp/run dir/tls/server.pem\", key = \"/tmp/run dir/tls/server.key\" }"
        ));
        assert!(!plain.contains("client_ca"), "{plain}");
        let mtls = ringway_listener(&listener(true));
        assert!(
            mtls.contains(
                ", client_ca = \"/tmp/run dir/tls/ca.pem\", require_client_cert = true }"
            ),
            "{mtls}"
        );
    }

    #[test]
    fn ringway_originates_to_the_name_with_the_outbound_certificate() {
        let line = ringway_cluster(&upstream(true));
        assert!(
            line.contains(
                "tls = { ca = \"/tmp/run dir/tls/ca.pem\", sni = \"localhost\", \
                 cert = \"/tmp/run dir/tls/outbound.pem\", key = \"/tmp/run dir/tls/outbound.key\" }"
            ),
            "{line}"
        );
        let line = ringway_cluster(&upstream(false));
        assert!(!line.contains("cert ="), "{line}");
        // Every line but the comments is TOML ringway's parser takes.
        for l in line.lines().filter(|l| !l.starts_with('#')) {
            l.parse::<toml::Table>().expect("one TOML key");
        }
    }

    #[test]
    fn nginx_verifies_both_ways() {
        let text = nginx_listener(&listener(true));
        for line in [
            "ssl_protocols TLSv1.3;",
            "ssl_client_certificate \"/tmp/run dir/tls/ca.pem\";",
            "ssl_verify_client on;",
            "ssl_verify_depth 2;",
            "ssl_ecdh_curve X25519:prime256v1;",
        ] {
            assert!(text.lines().any(|l| l.trim() == line), "{line}:\n{text}");
        }
        let text = nginx_upstream(&upstream(true), Mode::Http, "    ");
        for line in [
            "proxy_ssl_protocols TLSv1.3;",
            "proxy_ssl_trusted_certificate \"/tmp/run dir/tls/ca.pem\";",
            "proxy_ssl_verify on;",
            "proxy_ssl_verify_depth 2;",
            "proxy_ssl_name localhost;",
            "proxy_ssl_server_name on;",
            "proxy_ssl_certificate \"/tmp/run dir/tls/outbound.pem\";",
            "proxy_ssl_certificate_key \"/tmp/run dir/tls/outbound.key\";",
        ] {
            assert!(text.lines().any(|l| l.trim() == line), "{line}:\n{text}");
        }
        assert!(
            !text.contains("proxy_ssl on;"),
            "HTTP says https://: {text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.trim().starts_with("proxy_ssl_session_reuse")),
            "its default: {text}"
        );
        let stream = nginx_upstream(&upstream(false), Mode::Tcp, "    ");
        assert!(stream.lines().any(|l| l.trim() == "proxy_ssl on;"));
        assert!(!stream.contains("proxy_ssl_certificate "), "{stream}");
    }

    #[test]
    fn haproxy_verifies_both_ways() {
        let bind = haproxy_bind(&listener(true), Mode::Http);
        assert!(bind.starts_with(" ssl crt \"/tmp/run dir/tls/server-bundle.pem\" alpn http/1.1"));
        assert!(bind.ends_with(" ca-file \"/tmp/run dir/tls/ca.pem\" verify required"));
        let bind = haproxy_bind(&listener(false), Mode::Tcp);
        assert!(!bind.contains("alpn") && !bind.contains("verify"), "{bind}");
        let server = haproxy_server(&upstream(true));
        assert!(server.starts_with(
            " ssl verify required ca-file \"/tmp/run dir/tls/ca.pem\" sni str(localhost) \
             verifyhost localhost ssl-min-ver TLSv1.3"
        ));
        assert!(server.ends_with(" crt \"/tmp/run dir/tls/outbound-bundle.pem\""));
        assert!(!haproxy_server(&upstream(false)).contains(" crt "));
    }
}
