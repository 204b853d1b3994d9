//! The certificates the running table presents, and how long each has
//! left: `ringway_tls_certificate_expiry_seconds` in `/metrics`,
//! `tls_certificates` in `/stats`, the `tls certificates:` lines of
//! `ringway stats`.
//!
//! The table holds each leaf's notAfter; the time left is computed when
//! asked (at scrape), so it runs down between reloads and turns negative
//! once a certificate expires while in service (a reload refuses an
//! expired one, so that is the only way to see it negative).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dataplane::table::route::TlsCert;
use dataplane::table::Table;
use serde_json::{json, Value};

/// The gauge's name.
pub const METRIC: &str = "ringway_tls_certificate_expiry_seconds";

/// Who presents a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A listener, to its clients.
    Listener,
    /// A cluster, to its endpoints (mTLS).
    Cluster,
}

impl Owner {
    /// The `owner` label value.
    pub fn name(self) -> &'static str {
        match self {
            Owner::Listener => "listener",
            Owner::Cluster => "cluster",
        }
    }
}

/// One certificate the running table presents.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Who presents it.
    pub owner: Owner,
    /// The listener's or cluster's name.
    pub name: Arc<str>,
    /// The certificate as the table holds it (files, notAfter).
    pub cert: TlsCert,
}

/// Every certificate `table` presents, in table order: each listener's
/// default then its SNI certificates, then each cluster's client
/// certificate. A file listed twice under one owner is listed once.
pub fn running(table: &Table) -> Vec<Certificate> {
    let mut out: Vec<Certificate> = Vec::new();
    let mut add = |owner: Owner, name: &Arc<str>, cert: &TlsCert| {
        let listed = out
            .iter()
            .any(|c| c.owner == owner && c.name == *name && c.cert.cert == cert.cert);
        if !listed {
            out.push(Certificate {
                owner,
                name: Arc::clone(name),
                cert: cert.clone(),
            });
        }
    };
    for l in &table.listeners {
        for cert in l.tls().iter().flat_map(|t| &t.certs) {
            add(Owner::Listener, &l.name, cert);
        }
    }
    for c in &table.clusters {
        if let Some(cert) = c.tls.as_ref().and_then(|t| t.cert.as_ref()) {
            add(Owner::Cluster, &c.name, cert);
        }
    }
    out
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Appends the gauge's family to `out` (its `# HELP` and `# TYPE` even
/// with no certificate, as every family is declared), each label value
/// passed through `escape`.
pub fn metrics(out: &mut String, certs: &[Certificate], now: i64, escape: fn(&str) -> String) {
    super::families::header(out, METRIC);
    for c in certs {
        let _ = writeln!(
            out,
            "{METRIC}{{owner=\"{}\",name=\"{}\",cert=\"{}\"}} {}",
            c.owner.name(),
            escape(&c.name),
            escape(&c.cert.cert),
            c.cert.not_after.saturating_sub(now)
        );
    }
}

/// The `tls_certificates` list of `/stats`.
pub fn json(certs: &[Certificate], now: i64) -> Value {
    Value::Array(
        certs
            .iter()
            .map(|c| {
                json!({
                    "owner": c.owner.name(),
                    "name": &*c.name,
                    "cert": &*c.cert.cert,
                    "key": &*c.cert.key,
                    "not_after": c.cert.not_after,
                    "expiry_seconds": c.cert.not_after.saturating_sub(now),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(owner: Owner, name: &str, path: &str, not_after: i64) -> Certificate {
        Certificate {
            owner,
            name: name.into(),
            cert: TlsCert {
                names: Vec::new(),
                cert: path.into(),
                key: format!("{path}.key").into(),
                not_after,
                identity: None,
            },
        }
    }

    #[test]
    fn seconds_left_run_down_and_go_negative() {
        let certs = [
            cert(Owner::Listener, "web", "/etc/web.pem", 1_000_000),
            cert(Owner::Cluster, "api", "/etc/api \"x\".pem", 1_000_000),
        ];
        let mut out = String::new();
        metrics(&mut out, &certs, 999_000, |s| s.replace('"', "\\\""));
        assert_eq!(
            out.matches(&format!("# TYPE {METRIC} gauge\n")).count(),
            1,
            "{out}"
        );
        assert!(out.contains(&format!(
            "{METRIC}{{owner=\"listener\",name=\"web\",cert=\"/etc/web.pem\"}} 1000\n"
        )));
        assert!(out.contains(&format!(
            "{METRIC}{{owner=\"cluster\",name=\"api\",cert=\"/etc/api \\\"x\\\".pem\"}} 1000\n"
        )));
        let later = json(&certs, 1_000_042);
        assert_eq!(later[0]["expiry_seconds"], -42);
        assert_eq!(later[0]["not_after"], 1_000_000);
        assert_eq!(later[1]["owner"], "cluster");
        assert_eq!(later[1]["key"], "/etc/api \"x\".pem.key");
    }

    #[test]
    fn the_family_is_declared_without_certificates() {
        let mut out = String::new();
        metrics(&mut out, &[], 0, str::to_owned);
        assert!(out.contains(&format!("# TYPE {METRIC} gauge\n")));
        assert!(!out.contains(&format!("{METRIC}{{")));
        assert_eq!(json(&[], 0), json!([]));
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now() > 1_700_000_000);
    }
}
