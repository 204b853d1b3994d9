//! The report's section on a sidecar-pair scenario: how the halves spoke
//! to each other, whether each inbound half let in whom it should, and
//! each pair's CPU by half.

use std::fmt::Write as _;

use super::{rates, runs_of, show, spread};
use crate::compare::pki::OUTBOUND_ID;
use crate::compare::results::Results;

/// `## Sidecar pairs`, for a pair scenario.
pub fn section(md: &mut String, r: &Results) {
    let Some(pair) = &r.setup.pair else {
        return;
    };
    let tcp = r.mode == "tcp";
    let _ = writeln!(md, "## Sidecar pairs\n");
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let _ = writeln!(
        md,
        "Every proxy ran as two processes of its kind, both on core {core}: the clients speak plaintext {what} to the outbound half, which forwards to the inbound half, which forwards in plaintext to the origin. Between the halves, TLS 1.3 (the outbound half verifying the inbound half's certificate against the run's CA{dir} and the name `localhost`, sent as SNI): {tls}; of those, mutual (the outbound half presenting `{OUTBOUND_ID}`, the inbound half requiring and verifying it): {mutual}; plaintext: {plain}. A pair's CPU is both halves' sum{latency}; `direct` is the origin alone.",
        core = r.setup.proxy_core,
        what = if tcp { "TCP" } else { "HTTP/1.1 keep-alive" },
        dir = pair
            .dir
            .as_ref()
            .map(|d| format!(" (`{d}`)"))
            .unwrap_or_default(),
        tls = list(&pair.tls),
        mutual = list(&pair.client_auth),
        plain = list(&pair.plaintext),
        latency = if tcp {
            ""
        } else {
            ", and its added latency is through both"
        },
    );
    super::tls::admissions(md, r);
    let unit = if tcp { "CPU s/GB" } else { "CPU µs/req" };
    let _ = writeln!(
        md,
        "\n| system | run | {unit} (pair) | outbound half | inbound half | outbound share |\n|---|---|---|---|---|---|"
    );
    let mut offered: Vec<Option<f64>> = rates(r).into_iter().map(Some).collect();
    if r.runs.iter().any(|m| m.offered.is_none()) {
        offered.push(None);
    }
    let digits = if tcp { 3 } else { 2 };
    for sys in r.systems.iter().filter(|s| *s != "direct") {
        for &at in &offered {
            let runs = runs_of(r, sys, at);
            let half = |i: usize| spread(&runs, |m| m.half_costs(tcp).map(|h| h[i]));
            let (out, inb) = (half(0), half(1));
            if out.is_none() && inb.is_none() {
                continue;
            }
            let share = spread(&runs, |m| {
                let h = m.halves?;
                let sum = h.outbound_cpu_s + h.inbound_cpu_s;
                (sum > 0.0).then(|| 100.0 * h.outbound_cpu_s / sum)
            });
            let _ = writeln!(
                md,
                "| {sys} | {} | {} | {} | {} | {}% |",
                at.map_or_else(|| "max throughput".to_owned(), |x| format!("{x:.0} req/s")),
                show(spread(&runs, |m| m.cost(tcp)), digits),
                show(out, digits),
                show(inb, digits),
                show(share, 0),
            );
        }
    }
    md.push('\n');
}
