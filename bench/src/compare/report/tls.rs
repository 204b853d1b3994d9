//! The report's TLS section: what spoke TLS to whom, which listeners
//! required client certificates and whether each let in whom it should,
//! and the handshakes the clients made.

use std::fmt::Write as _;

use crate::compare::measure::Measured;
use crate::compare::results::Results;

/// `## TLS`, for a TLS scenario.
pub fn section(md: &mut String, r: &Results) {
    let Some(tls) = &r.setup.tls else {
        return;
    };
    let _ = writeln!(md, "## TLS\n");
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let verifying = if tls.client_auth.is_empty() {
        "none".to_owned()
    } else {
        format!(
            "{} (the generator presents the run's client certificate to them)",
            tls.client_auth.join(", ")
        )
    };
    let _ = writeln!(
        md,
        "Clients speak TLS 1.3 to every proxy, which presents the certificate minted for this run (`{}`: an ECDSA P-256 CA and leaf) and forwards in plaintext to the origin. In plaintext: {}. Client certificates required and verified by: {verifying}. The clients keep no session, so every connection is a full handshake.",
        tls.dir,
        list(&tls.plaintext),
    );
    if r.setup.new_connection {
        let _ = writeln!(
            md,
            "Each request is a new connection: req/s are handshakes per second, and CPU µs/req is the CPU per handshake (and its one request)."
        );
    }
    admissions(md, r);
    md.push_str(
        "
| system | runs | full handshakes | after a HelloRetryRequest | resumed | negotiated |
|---|---|---|---|---|---|
",
    );
    for sys in &r.systems {
        let runs: Vec<&Measured> = r.runs.iter().filter(|m| &m.system == sys).collect();
        let seen: Vec<_> = runs.iter().filter_map(|m| m.tls.as_ref()).collect();
        if seen.is_empty() {
            continue;
        }
        let mut negotiated: Vec<&str> = seen.iter().map(|t| t.negotiated.as_str()).collect();
        negotiated.sort_unstable();
        negotiated.dedup();
        let _ = writeln!(
            md,
            "| {sys} | {} | {} | {} | {} | {} |",
            runs.len(),
            seen.iter().map(|t| t.full).sum::<u64>(),
            seen.iter().map(|t| t.hello_retries).sum::<u64>(),
            seen.iter().map(|t| t.resumed).sum::<u64>(),
            negotiated.join("; ")
        );
    }
    md.push('\n');
}

/// The admission checks of the first round, one row per TLS listener.
pub fn admissions(md: &mut String, r: &Results) {
    if r.admissions.is_empty() {
        return;
    }
    md.push_str(
        "
Before its first load run each TLS listener was tried twice, presenting the generator's client certificate and presenting none (over TCP, admitted means the server sent its session ticket, then neither an alert nor a close for a second):

| system | listener | client certificates | with one | without | as configured |
|---|---|---|---|---|---|
",
    );
    for a in &r.admissions {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            a.system,
            a.listener,
            if a.requires {
                "required"
            } else {
                "not asked for"
            },
            a.with_certificate.describe(),
            a.without_certificate.describe(),
            if a.as_configured() { "yes" } else { "**no**" }
        );
    }
}
