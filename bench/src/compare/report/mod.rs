//! `report.md`, `results.json` and the plots of a comparison (a rollout
//! scenario's too: [`policy`]).
//!
//! Each figure is the median over the rounds with the min and max beside
//! it; ratios divide medians, and the ratio tables also give the median of
//! the per-round ratios (the rounds interleave the systems, so a ratio
//! within one round cancels slow drift of the machine). Proxy-added latency
//! is the system's median minus `direct`'s at the same offered rate.

mod observe;
mod pair;
mod policy;
mod sections;
mod syscalls;
mod tls;

use std::fmt::Write as _;
use std::path::Path;

use super::measure::Measured;
use super::plot::{self, Series};
use super::results::Results;
use crate::spread::Spread;

pub use self::sections::{ratio_tables, RatioPair, RatioTable, BASELINE_BAR};

/// Writes `results.json`, the plots and `report.md` into `dir`.
pub fn write(results: &Results, dir: &Path) -> Result<(), String> {
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), json)
        .map_err(|e| format!("cannot write results.json: {e}"))?;
    let plots = plots(results, dir)?;
    std::fs::write(dir.join("report.md"), markdown(results, &plots))
        .map_err(|e| format!("cannot write report.md: {e}"))
}

/// The spread of some values; `None` when there are none.
fn spread_over(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    let s = Spread::new(&v);
    (!s.median.is_nan()).then_some(s)
}

fn show(s: Option<Spread>, digits: usize) -> String {
    s.map_or_else(|| "–".into(), |s| s.show(digits))
}

fn ratio(a: Option<Spread>, b: Option<Spread>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}x", a.median / b.median),
        _ => "–".into(),
    }
}

/// The proxy core's busy time per request, except for `direct`, where no
/// proxy runs on that core and the figure would only show other work.
fn core_cpu(system: &str, runs: &[&Measured]) -> String {
    if system == "direct" {
        "–".into()
    } else {
        show(spread(runs, Measured::core_us_per_request), 2)
    }
}

/// The runs of `system` at `offered` (None: max throughput).
fn runs_of<'a>(r: &'a Results, system: &str, offered: Option<f64>) -> Vec<&'a Measured> {
    r.runs
        .iter()
        .filter(|m| m.system == system && m.offered == offered)
        .collect()
}

fn spread(runs: &[&Measured], f: impl Fn(&Measured) -> Option<f64>) -> Option<Spread> {
    spread_over(runs.iter().filter_map(|m| f(m)))
}

/// Offered rates present, in order.
fn rates(r: &Results) -> Vec<f64> {
    let mut v: Vec<f64> = r.runs.iter().filter_map(|m| m.offered).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// Whether a max-throughput run was held back by the load side rather than
/// the system: the load core saturated while the proxy core was not, or
/// the proxied rate reached what `direct` alone reached.
pub fn load_bound(m: &Measured, ceiling: Option<&Measured>) -> bool {
    let saturated = m.load_core_util >= 0.95 && m.proxy_core_util < 0.90;
    let at_ceiling =
        m.system != "direct" && ceiling.is_some_and(|c| c.rps > 0.0 && m.rps >= 0.9 * c.rps);
    saturated || at_ceiling
}

/// Names of the plot files written.
#[derive(Debug, Default)]
pub struct Plots {
    latency: Option<String>,
    spectrum: Option<(String, f64)>,
    rollouts: policy::RolloutPlots,
}

fn plots(r: &Results, dir: &Path) -> Result<Plots, String> {
    let mut out = Plots {
        rollouts: policy::plots(r, dir)?,
        ..Plots::default()
    };
    let rates = rates(r);
    if rates.is_empty() {
        return Ok(out);
    }
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for sys in &r.systems {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for &rate in &rates {
            let runs = runs_of(r, sys, Some(rate));
            if let Some(s) = spread(&runs, |m| m.latency.map(|l| l.p50 as f64)) {
                a.push((rate, s.median));
            }
            if let Some(s) = spread(&runs, |m| m.latency.map(|l| l.p99 as f64)) {
                b.push((rate, s.median));
            }
        }
        p50.push(Series {
            system: sys.clone(),
            points: a,
        });
        p99.push(Series {
            system: sys.clone(),
            points: b,
        });
    }
    let name = "latency-vs-load.svg";
    plot::latency_vs_load(
        &dir.join(name),
        &format!(
            "{}: latency against offered load (medians of rounds)",
            r.scenario
        ),
        &p50,
        &p99,
    )
    .map_err(|e| e.to_string())?;
    out.latency = Some(name.into());
    // The spectrum at the highest rate every system kept up with (nothing
    // unsent, no error), else the lowest rate.
    let kept_up = |rate: f64| {
        r.systems.iter().all(|s| {
            runs_of(r, s, Some(rate))
                .iter()
                .all(|m| m.unsent == 0 && m.errors == 0)
        })
    };
    let at = rates
        .iter()
        .copied()
        .rfind(|&x| kept_up(x))
        .unwrap_or(rates[0]);
    let series: Vec<Series> = r
        .systems
        .iter()
        .map(|sys| {
            // The round whose p99 is the median one stands for the system.
            let mut runs = runs_of(r, sys, Some(at));
            runs.sort_by_key(|m| m.latency.map_or(0, |l| l.p99));
            let points = runs
                .get(runs.len() / 2)
                .map(|m| m.spectrum.iter().map(|&(q, us)| (q, us as f64)).collect())
                .unwrap_or_default();
            Series {
                system: sys.clone(),
                points,
            }
        })
        .collect();
    let name = "spectrum.svg";
    plot::spectrum(
        &dir.join(name),
        &format!("{}: latency spectrum at {at:.0} req/s offered", r.scenario),
        &series,
    )
    .map_err(|e| e.to_string())?;
    out.spectrum = Some((name.into(), at));
    Ok(out)
}

/// The report in Markdown.
pub fn markdown(r: &Results, plots: &Plots) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {} ({})\n", r.scenario, r.started);
    if !r.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.description);
    }
    let st = &r.setup;
    let _ = writeln!(
        md,
        "- command: `{}`\n- machine: {} CPUs, Linux {}\n- versions: {}\n- layout: load generator on cores {}, origin on cores {}, system under test on core {}; {}, {} interleaved rounds (the systems after `direct` in an order that rotates each round); origin answers {} body bytes",
        r.command,
        st.cpus,
        st.kernel,
        if st.versions.is_empty() { "-".into() } else { st.versions.join("; ") },
        st.load_cores,
        st.origin_cores,
        st.proxy_core,
        if r.runs.is_empty() && r.ceiling.is_none() {
            "no load runs".to_owned()
        } else {
            format!(
                "{} connections, {} s measured after {} s warm-up",
                st.connections, st.duration_s, st.warmup_s
            )
        },
        st.runs,
        st.response_size
    );
    if !st.files.is_empty() {
        let _ = writeln!(
            md,
            "- configs and logs: {}",
            st.files
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(md, "- tree: {}", st.tree);
    if !st.reactors.is_empty() {
        let seen: Vec<String> = st
            .reactors
            .iter()
            .map(|x| {
                let said = x.said.as_deref().map_or_else(
                    || format!("{}: not said in its log", x.system),
                    |said| format!("{} on {said}", x.system),
                );
                match &x.asked {
                    Some(a) => format!("{said} (`--io-backend {a}`)"),
                    None => said,
                }
            })
            .collect();
        let _ = writeln!(md, "- reactors: {}", seen.join("; "));
    }
    if let Some(c) = st.control_core {
        let _ = writeln!(md, "- ringway's control agent on core {c}");
    }
    if st.origins > 1 {
        let _ = writeln!(
            md,
            "- {} origins, every system forwarding to all of them",
            st.origins
        );
    }
    for (sys, why) in &r.skipped {
        let _ = writeln!(md, "- **skipped {sys}**: {why}");
    }
    for note in &r.notes {
        let _ = writeln!(md, "- **note**: {note}");
    }
    md.push('\n');
    let tcp = r.mode == "tcp";
    if let Some(c) = &r.ceiling {
        if tcp {
            let _ = writeln!(
                md,
                "Load-side ceiling (`direct`, no proxy): {:.1} MB/s with the load core {:.0}% busy.\n",
                c.bytes_per_s / 1e6,
                c.load_core_util * 100.0
            );
        } else {
            let _ = writeln!(
                md,
                "Load-side ceiling (`direct`, no proxy, closed loop): {:.0} req/s with the load core {:.0}% busy.\n",
                c.rps,
                c.load_core_util * 100.0
            );
        }
    }
    let ringway = |offered| runs_of(r, "ringway", offered);
    let direct = |offered| runs_of(r, "direct", offered);

    // Max throughput.
    if r.runs.iter().any(|m| m.offered.is_none()) {
        let _ = writeln!(md, "## Max throughput (closed loop)\n");
        if tcp {
            md.push_str("| system | MB/s | vs ringway | vs direct | CPU s/GB | vs ringway | proxy core busy | load core busy | limited by |\n|---|---|---|---|---|---|---|---|---|\n");
        } else {
            md.push_str("| system | req/s | vs ringway | vs direct | CPU µs/req (process) | vs ringway | CPU µs/req (core) | proxy core busy | load core busy | errors | limited by |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        }
        let rw = ringway(None);
        let di = direct(None);
        let mut any_bound = false;
        for sys in &r.systems {
            let runs = runs_of(r, sys, None);
            if runs.is_empty() {
                continue;
            }
            let bound = runs.iter().any(|m| load_bound(m, r.ceiling.as_ref()));
            any_bound |= bound && sys != "direct";
            let limit = if sys == "direct" {
                "load side (no proxy)"
            } else if bound {
                "**load side**"
            } else {
                "system"
            };
            let util =
                |f: fn(&Measured) -> f64| show(spread(&runs, |m| Some(f(m) * 100.0)), 0) + "%";
            if tcp {
                let thr = spread(&runs, |m| Some(m.bytes_per_s / 1e6));
                let cpu = spread(&runs, Measured::cpu_s_per_gb);
                let _ = writeln!(
                    md,
                    "| {sys} | {} | {} | {} | {} | {} | {} | {} | {limit} |",
                    show(thr, 1),
                    ratio(thr, spread(&rw, |m| Some(m.bytes_per_s / 1e6))),
                    ratio(thr, spread(&di, |m| Some(m.bytes_per_s / 1e6))),
                    show(cpu, 3),
                    ratio(cpu, spread(&rw, Measured::cpu_s_per_gb)),
                    util(|m| m.proxy_core_util),
                    util(|m| m.load_core_util),
                );
            } else {
                let thr = spread(&runs, |m| Some(m.rps));
                let cpu = spread(&runs, Measured::cpu_us_per_request);
                let _ = writeln!(
                    md,
                    "| {sys} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {limit} |",
                    show(thr, 0),
                    ratio(thr, spread(&rw, |m| Some(m.rps))),
                    ratio(thr, spread(&di, |m| Some(m.rps))),
                    show(cpu, 2),
                    ratio(cpu, spread(&rw, Measured::cpu_us_per_request)),
                    core_cpu(sys, &runs),
                    util(|m| m.proxy_core_util),
                    util(|m| m.load_core_util),
                    runs.iter().map(|m| m.errors).sum::<u64>(),
                );
            }
        }
        if any_bound {
            let instead = if tcp {
                "read CPU per GB instead, which does not depend on the rate reached"
            } else {
                "read CPU per request at the offered rates below instead"
            };
            let _ = writeln!(
                md,
                "\n**The load side is the bottleneck** in the runs marked so: the load core was saturated while the proxy core was not, or the proxied rate reached what `direct` alone reached. Their max-throughput figures compare the load generator, not the proxies; {instead}."
            );
        }
        md.push('\n');
    }

    sections::faults(&mut md, r);
    policy::rollouts(&mut md, r, &plots.rollouts);
    tls::section(&mut md, r);
    pair::section(&mut md, r);

    // The sweep.
    for rate in rates(r) {
        let _ = writeln!(md, "## Offered {rate:.0} req/s (open loop)\n");
        md.push_str("| system | achieved req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | CPU µs/req (process) | vs ringway | CPU µs/req (core) | unsent | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let rw = ringway(Some(rate));
        let di = direct(Some(rate));
        let d50 = spread(&di, |m| m.latency.map(|l| l.p50 as f64));
        let d99 = spread(&di, |m| m.latency.map(|l| l.p99 as f64));
        for sys in &r.systems {
            let runs = runs_of(r, sys, Some(rate));
            if runs.is_empty() {
                continue;
            }
            let p50 = spread(&runs, |m| m.latency.map(|l| l.p50 as f64));
            let p99 = spread(&runs, |m| m.latency.map(|l| l.p99 as f64));
            let added = |a: Option<Spread>, d: Option<Spread>| match (a, d) {
                (Some(a), Some(d)) if sys != "direct" => format!("{:+.0}", a.median - d.median),
                _ => "–".into(),
            };
            let cpu = spread(&runs, Measured::cpu_us_per_request);
            let _ = writeln!(
                md,
                "| {sys} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                show(spread(&runs, |m| Some(m.rps)), 0),
                show(p50, 0),
                show(p99, 0),
                show(spread(&runs, |m| m.latency.map(|l| l.p99_9 as f64)), 0),
                added(p50, d50),
                added(p99, d99),
                show(cpu, 2),
                ratio(cpu, spread(&rw, Measured::cpu_us_per_request)),
                core_cpu(sys, &runs),
                runs.iter().map(|m| m.unsent).sum::<u64>(),
                runs.iter().map(|m| m.errors).sum::<u64>(),
            );
        }
        md.push('\n');
    }
    if let Some(name) = &plots.latency {
        let _ = writeln!(md, "![latency against offered load]({name})\n");
    }
    if let Some((name, at)) = &plots.spectrum {
        let _ = writeln!(
            md,
            "![latency spectrum at {at:.0} req/s]({name})\n\nThe spectrum is the round with the median p99 of each system, at the highest offered rate every system kept up with.\n"
        );
    }

    sections::per_gb(&mut md, r);
    sections::ratios(&mut md, r);
    syscalls::section(&mut md, r);
    policy::refusals(&mut md, r);
    observe::section(&mut md, r);
    sections::churn(&mut md, r);
    sections::memory(&mut md, r);
    sections::profiles(&mut md, r);
    sections::guard(&mut md, r);
    if let Some(c) = &r.origin_check {
        let verdict = if c.served == c.sent {
            "every request reached it exactly once".to_string()
        } else {
            format!(
                "**{} more than were sent**: requests were repeated or lost on the way",
                c.served as i64 - c.sent as i64
            )
        };
        let _ = writeln!(
            md,
            "The origin answered {} requests; the load runs, the memory runs and the admission checks sent {}: {verdict}.\n",
            c.served, c.sent
        );
    }
    if !r.problems.is_empty() {
        let _ = writeln!(md, "## Problems\n");
        for p in &r.problems {
            let _ = writeln!(md, "- {p}");
        }
        md.push('\n');
    }
    md.push_str("CPU µs/req (process): utime+stime of every process of the system over the run, divided by the requests it carried (warm-up included). CPU µs/req (core): busy time of the system's core from /proc/stat (softirq included) over the same requests; the kernel fills /proc/stat by sampling at timer ticks, which misses most of the work on a core that is mostly idle, so at low offered rates read the process column. Ratios divide medians; min–max in brackets. Raw `load` outputs are in `raw/`, generated configs and logs in `systems/`.\n");
    md
}
