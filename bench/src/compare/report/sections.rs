//! The report's sections beyond the throughput and latency tables: faults,
//! CPU ratios, table churn, memory, profiles and the quiet-machine guard.

use std::fmt::Write as _;

use serde::Serialize;

use super::{rates, ratio, runs_of, show, spread, spread_over};
use crate::compare::measure::Measured;
use crate::compare::profile;
use crate::compare::results::{MemoryReading, Results};
use crate::spread::Spread;

/// The most a change may cost against the tree before it, as a ratio of
/// CPU per request (per GB in TCP mode).
pub const BASELINE_BAR: f64 = 1.02;

/// One system's cost against another's, run by run.
#[derive(Debug, Clone, Serialize)]
pub struct RatioTable {
    /// The numerator.
    pub system: String,
    /// The denominator.
    pub against: String,
    /// What is divided.
    pub figure: String,
    /// The largest ratio that passes, if there is one.
    pub bar: Option<f64>,
    /// Added to the denominator's figure: AES-128-GCM's own CPU per GB
    /// (`plus_aes`).
    pub plus: Option<f64>,
    /// One row per offered rate, then max throughput.
    pub rows: Vec<RatioRow>,
}

/// A ratio to compute: `system`'s figure over `against`'s (plus `plus`).
#[derive(Debug, Clone, PartialEq)]
pub struct RatioPair {
    /// The numerator.
    pub system: String,
    /// The denominator.
    pub against: String,
    /// The largest ratio that passes, if there is one.
    pub bar: Option<f64>,
    /// Added to the denominator's figure.
    pub plus: Option<f64>,
}

/// One run of a [`RatioTable`].
#[derive(Debug, Clone, Serialize)]
pub struct RatioRow {
    /// Offered rate, or `None` for max throughput.
    pub offered: Option<f64>,
    /// The numerator's median.
    pub system: Option<f64>,
    /// The denominator's median (with the table's `plus` added).
    pub against: Option<f64>,
    /// Ratio of the medians.
    pub ratio: Option<f64>,
    /// Median, min and max of the ratios within each round.
    pub per_round: Option<[f64; 3]>,
    /// Whether the ratio of the medians is within the bar.
    pub within_bar: Option<bool>,
}

/// The ratio tables of `pairs`.
pub fn ratio_tables(r: &Results, pairs: &[RatioPair]) -> Vec<RatioTable> {
    let tcp = r.mode == "tcp";
    let mut offered: Vec<Option<f64>> = super::rates(r).into_iter().map(Some).collect();
    if r.runs.iter().any(|m| m.offered.is_none()) {
        offered.push(None);
    }
    pairs
        .iter()
        .map(|pair| {
            let (a, b, bar) = (&pair.system, &pair.against, pair.bar);
            let plus = pair.plus.unwrap_or(0.0);
            // The denominator's cost, with what is added to it.
            let cost_b = |m: &Measured| m.cost(tcp).map(|c| c + plus);
            let rows = offered
                .iter()
                .map(|&at| {
                    let ra = runs_of(r, a, at);
                    let rb = runs_of(r, b, at);
                    let sa = spread(&ra, |m| m.cost(tcp));
                    let sb = spread(&rb, cost_b);
                    let ratio = match (sa, sb) {
                        (Some(x), Some(y)) if y.median > 0.0 => Some(x.median / y.median),
                        _ => None,
                    };
                    let rounds: Vec<f64> = ra
                        .iter()
                        .filter_map(|x| {
                            let y = rb.iter().find(|y| y.round == x.round)?;
                            Some(x.cost(tcp)? / cost_b(y).filter(|c| *c > 0.0)?)
                        })
                        .collect();
                    RatioRow {
                        offered: at,
                        system: sa.map(|s| s.median),
                        against: sb.map(|s| s.median),
                        ratio,
                        per_round: spread_over(rounds).map(|s| [s.median, s.min, s.max]),
                        within_bar: bar.zip(ratio).map(|(bar, x)| x <= bar),
                    }
                })
                .collect();
            RatioTable {
                system: a.clone(),
                against: b.clone(),
                figure: if tcp {
                    "CPU s/GB (process)".into()
                } else {
                    "CPU µs/request (process)".into()
                },
                bar,
                plus: pair.plus,
                rows,
            }
        })
        .collect()
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn run_name(offered: Option<f64>) -> String {
    offered.map_or_else(|| "max throughput".into(), |r| format!("{r:.0} req/s"))
}

/// `## CPU ratios`.
pub fn ratios(md: &mut String, r: &Results) {
    if r.ratios.is_empty() {
        return;
    }
    let _ = writeln!(md, "## CPU ratios\n");
    for t in &r.ratios {
        let bar = t
            .bar
            .map(|b| format!(" (bar: at most {b:.2}x)"))
            .unwrap_or_default();
        let against = match t.plus {
            Some(_) => format!("({} + AES-128-GCM)", t.against),
            None => t.against.clone(),
        };
        let _ = writeln!(md, "### {} / {against}{bar}\n", t.system);
        if let Some(plus) = t.plus {
            let _ = writeln!(
                md,
                "The denominator is {}'s figure plus what AES-128-GCM alone costs per GB on the proxy core with ring, the crypto of ringway's TLS ({plus:.3} s/GB, measured at the start of the run): what {}'s TLS costs beyond that cipher.\n",
                t.against, t.system
            );
        }
        let _ = writeln!(
            md,
            "| run | {a}: {f} | {against}: {f} | ratio of medians | per-round ratios | within the bar |\n|---|---|---|---|---|---|",
            a = t.system,
            f = t.figure
        );
        for row in &t.rows {
            let digits = if r.mode == "tcp" { 3 } else { 2 };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                run_name(row.offered),
                opt(row.system, digits),
                opt(row.against, digits),
                row.ratio
                    .map_or_else(|| "–".into(), |x| format!("**{x:.3}x**")),
                row.per_round.map_or_else(
                    || "–".into(),
                    |[m, lo, hi]| Spread {
                        median: m,
                        min: lo,
                        max: hi
                    }
                    .show_with(3, "x")
                ),
                match row.within_bar {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                }
            );
        }
        md.push('\n');
    }
}

/// `## Table churn`.
/// Answers at least this large make CPU per GB of answers the figure to
/// read, in a table of its own.
pub const PER_GB_FROM: usize = 16 * 1024;

/// HTTP scenarios with large answers: each system's CPU per GB of answers
/// the clients read (heads and bodies, warm-up included, as the CPU is), at
/// every offered rate and at max throughput.
pub fn per_gb(md: &mut String, r: &Results) {
    if r.mode != "http" || r.setup.response_size < PER_GB_FROM || r.runs.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## CPU per GB of answers
"
    );
    let mut offered: Vec<Option<f64>> = rates(r).into_iter().map(Some).collect();
    if r.runs.iter().any(|m| m.offered.is_none()) {
        offered.push(None);
    }
    md.push_str("| system | run | CPU s/GB (process) | vs ringway |\n|---|---|---|---|\n");
    for &at in &offered {
        let rw = spread(&runs_of(r, "ringway", at), Measured::cpu_s_per_gb_received);
        for sys in r.systems.iter().filter(|s| *s != "direct") {
            let cpu = spread(&runs_of(r, sys, at), Measured::cpu_s_per_gb_received);
            if cpu.is_none() {
                continue;
            }
            let _ = writeln!(
                md,
                "| {sys} | {} | {} | {} |",
                run_name(at),
                show(cpu, 3),
                ratio(cpu, rw)
            );
        }
    }
    md.push('\n');
}

pub fn churn(md: &mut String, r: &Results) {
    if r.churn.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Table churn\n");
    let _ = writeln!(
        md,
        "Each churning system got a new table through its admin API during every load run (`endpoints`: `PUT /clusters/origin/endpoints` with another subset of the origins; `routes`: `POST /config` with one route added, then removed), on an absolute schedule. Publish latency is ringway's own (`/stats`, from handing a table to the workers to the last worker's acknowledgement, over every table published since the start); the round trip is the poster's (parse, compile, publish, acknowledgement and HTTP).\n"
    );
    md.push_str("| system | round | mode | every | posted | applied | failed | late | generation | post round trip p50 / p99 / max µs | publish latency p50 / p99 / max µs (of) |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in &r.churn {
        let gen = match (c.generation_start, c.generation_end) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            _ => "–".into(),
        };
        let p = |x: Option<crate::compare::churn::Percentiles>, of: bool| {
            x.map_or_else(
                || "–".into(),
                |p| {
                    let tail = if of {
                        format!(" ({})", p.count)
                    } else {
                        String::new()
                    };
                    format!("{} / {} / {}{tail}", p.p50, p.p99, p.max)
                },
            )
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} ms | {} | {} | {} | {} | {gen} | {} | {} |",
            c.system,
            c.round + 1,
            c.mode.name(),
            c.interval_ms,
            c.posted,
            c.applied,
            c.failed,
            c.late,
            p(c.post_rtt_us, false),
            p(c.publish_latency_us, true),
        );
        for f in &c.failures {
            let _ = writeln!(md, "\n{}, round {}: {f}", c.system, c.round + 1);
        }
    }
    md.push('\n');
    // Tail latency and the worker's CPU, quiet and churning, side by side.
    let ringways: Vec<&String> = r
        .systems
        .iter()
        .filter(|s| {
            r.runs
                .iter()
                .any(|m| &m.system == *s && m.worker_cpu_s.is_some())
        })
        .collect();
    let mut offered: Vec<Option<f64>> = super::rates(r).into_iter().map(Some).collect();
    offered.push(None);
    md.push_str("| run | system | p50 µs | p99 µs | p99.9 µs | max µs | errors | worker CPU µs/req |\n|---|---|---|---|---|---|---|---|\n");
    for at in offered {
        for sys in &ringways {
            let runs = runs_of(r, sys, at);
            if runs.is_empty() {
                continue;
            }
            let lat = |f: fn(&super::super::measure::Latency) -> u64| {
                show(
                    spread(&runs, |m| m.latency.as_ref().map(|l| f(l) as f64)),
                    0,
                )
            };
            let _ = writeln!(
                md,
                "| {} | {sys} | {} | {} | {} | {} | {} | {} |",
                run_name(at),
                lat(|l| l.p50),
                lat(|l| l.p99),
                lat(|l| l.p99_9),
                lat(|l| l.max),
                runs.iter().map(|m| m.errors).sum::<u64>(),
                show(spread(&runs, Measured::worker_us_per_request), 2),
            );
        }
    }
    md.push('\n');
}

/// `## Faults`: what the clients saw and what the origins received, run by
/// run, when the scenario has a fault schedule.
pub fn faults(md: &mut String, r: &Results) {
    let runs: Vec<&Measured> = r.runs.iter().filter(|m| m.upstream.is_some()).collect();
    if r.faults.is_empty() && runs.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Faults\n");
    if r.faults.is_empty() {
        // A rollout scenario without faults: fresh origins all the same.
        let _ = writeln!(
            md,
            "Every run had origins of its own, started fresh, none of them misbehaving:\n"
        );
    } else {
        let _ = writeln!(
            md,
            "Every run had origins of its own, started fresh, misbehaving on this schedule:\n"
        );
    }
    for f in &r.faults {
        let _ = writeln!(md, "- {f}");
    }
    md.push_str("\n| system | round | offered req/s | sent | ok | client errors | unsent | success | errors by kind | p50 µs | p99 µs | p99.9 µs | max µs | upstream requests | amplification | 503s injected | received per origin |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for m in &runs {
        let Some(up) = &m.upstream else { continue };
        let lat = |f: fn(&crate::compare::measure::Latency) -> u64| {
            m.latency.as_ref().map_or("–".into(), |l| f(l).to_string())
        };
        // Every request due in the window: answered well, failed, or
        // never sent because every connection was still waiting.
        let due = m.ok + m.errors + m.unsent;
        let success = if due > 0 {
            format!("{:.3}%", m.ok as f64 * 100.0 / due as f64)
        } else {
            "–".into()
        };
        let kinds = if m.errors_by_kind.is_empty() {
            "–".to_owned()
        } else {
            m.errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let upstream = up.requests();
        let amplification = match upstream {
            Some(u) if m.sent > 0 => format!("{:.3}x", u as f64 / m.sent as f64),
            _ => "–".into(),
        };
        let per_origin = up
            .origins
            .iter()
            .map(|o| match o {
                Some(o) if o.killed => format!("{} (crashed)", o.received - o.checks),
                Some(o) => (o.received - o.checks).to_string(),
                None => "?".into(),
            })
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {success} | {kinds} | {} | {} | {} | {} | {} | {amplification} | {} | {per_origin} |",
            m.system,
            m.round.map_or(0, |x| x + 1),
            m.offered.map_or("max".into(), |o| format!("{o:.0}")),
            m.sent,
            m.ok,
            m.errors,
            m.unsent,
            lat(|l| l.p50),
            lat(|l| l.p99),
            lat(|l| l.p99_9),
            lat(|l| l.max),
            upstream.map_or("?".into(), |u| u.to_string()),
            up.faulted(),
        );
    }
    let checks: u64 = runs
        .iter()
        .filter_map(|m| m.upstream.as_ref())
        .map(|u| u.checks())
        .sum();
    let _ = writeln!(
        md,
        "\nClient errors, unsent (due in the open-loop schedule while every connection still waited for an answer), success (ok / (ok + errors + unsent)) and latency cover the measured window (latency: successful requests only, from their intended send time); sent and upstream requests cover the whole run, warm-up included, so amplification = upstream requests / sent is the extra load each system put on its origins (retries, and requests lost in a crash). Upstream requests are what the origins received whole, their own count, health checks (`{}`, {checks} in all) left out; a crashed origin counts up to its crash.\n",
        super::super::faults::CHECK_PATH
    );
}

/// `## Memory`.
pub fn memory(md: &mut String, r: &Results) {
    if r.memory.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Memory\n");
    md.push_str("| system | idle | RSS, no client (KiB) | RSS with them (KiB) | held | bytes each | peak RSS of the round (KiB) |\n|---|---|---|---|---|---|---|\n");
    for mode in ["http", "tcp"] {
        for sys in &r.systems {
            let ms: Vec<&MemoryReading> = r
                .memory
                .iter()
                .filter(|m| &m.system == sys && m.mode == mode)
                .collect();
            if ms.is_empty() {
                continue;
            }
            let sp = |f: &dyn Fn(&MemoryReading) -> Option<f64>| {
                spread_over(ms.iter().filter_map(|m| f(m)))
            };
            let what = if mode == "http" {
                "HTTP keep-alive connections"
            } else {
                "TCP pairs"
            };
            let _ = writeln!(
                md,
                "| {sys} | {what} | {} | {} | {} | {} | {} |",
                show(sp(&|m| Some(m.rss_before_kib as f64)), 0),
                show(sp(&|m| Some(m.rss_idle_kib as f64)), 0),
                show(sp(&|m| Some(m.held as f64)), 0),
                show(sp(&|m| m.bytes_per_connection()), 0),
                show(sp(&|m| Some(m.peak_rss_kib as f64)), 0),
            );
        }
    }
    for m in r.memory.iter().filter(|m| m.shortfall.is_some()) {
        let _ = writeln!(
            md,
            "\n{} ({}), round {}: held {} of {}: {}",
            m.system,
            m.mode,
            m.round + 1,
            m.held,
            m.asked,
            m.shortfall.as_deref().unwrap_or("")
        );
    }
    md.push_str("\nBytes each: (RSS with the idle connections − RSS before them) / connections held, all the system's processes; an HTTP connection carried one request first, a TCP pair is client → proxy → origin. Kernel socket memory is in neither figure.\n\n");
}

/// `## Profiles`.
pub fn profiles(md: &mut String, r: &Results) {
    if r.profiles.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Profiles\n\n`perf record -e cpu-clock -g -C {}` over {:.0}% of one more max-throughput run of each system in the last round (not one of the measured runs), in shares of the core's samples. The whole reports are in each system's `perf.txt`.\n",
        r.setup.proxy_core,
        100.0 * profile::SHARE
    );
    for p in &r.profiles {
        let _ = writeln!(md, "### {}\n", p.system);
        if let Some(why) = &p.problem {
            let _ = writeln!(md, "No profile: {why}\n");
            continue;
        }
        for (title, shares) in [
            ("by thread", &p.threads),
            ("by object", &p.objects),
            ("by object and symbol (self)", &p.symbols),
        ] {
            let _ = writeln!(md, "| {title} | share |\n|---|---|");
            for s in profile::top(shares) {
                let _ = writeln!(md, "| `{}` | {:.2}% |", s.what, s.pct);
            }
            md.push('\n');
        }
        let _ = writeln!(md, "Full report: `{}`\n", p.text);
    }
}

/// `## Quiet-machine guard`.
pub fn guard(md: &mut String, r: &Results) {
    if r.ceiling.is_none() && r.runs.is_empty() && r.discarded.is_empty() {
        return;
    }
    let g = &r.setup.guard;
    let all = || r.ceiling.iter().chain(&r.runs).chain(&r.discarded);
    let waited: f64 = all().filter_map(|m| m.quiet.map(|q| q.waited_s)).sum();
    let gave_up = all().filter(|m| m.quiet.is_some_and(|q| !q.quiet)).count();
    let flagged: Vec<&Measured> = r
        .ceiling
        .iter()
        .chain(&r.runs)
        .filter(|m| m.disturbed.is_some())
        .collect();
    let _ = writeln!(md, "## Quiet-machine guard\n");
    if g.quiet_wait_s > 0.0 {
        let _ = writeln!(
            md,
            "Before each run the cores of the run had to be under {:.0}% busy for a second (waited {waited:.0} s in all; {gave_up} runs started busy after {:.0} s of waiting).",
            g.quiet_pct, g.quiet_wait_s
        );
    } else {
        let _ = writeln!(md, "The wait for quiet cores before each run was off.");
    }
    let _ = writeln!(
        md,
        "A run is disturbed when other processes used more than {:.0}% of a core on the run's cores, or (max throughput) a core lost more than {:.0}% of its clock ticks; it is run again up to {} times. Discarded: {}; kept but disturbed: {}.\n",
        g.max_foreign_pct,
        g.max_lost_pct,
        g.retries,
        r.discarded.len(),
        flagged.len()
    );
    for m in r.discarded.iter().chain(flagged) {
        let _ = writeln!(
            md,
            "- `{}` (attempt {}{}): {}",
            m.raw,
            m.attempt,
            if r.discarded.iter().any(|d| std::ptr::eq(d, m)) {
                ", discarded"
            } else {
                ", kept"
            },
            m.disturbed.as_deref().unwrap_or("")
        );
    }
    md.push('\n');
}
