//! The fault scenarios (`[[faults]]`): origins that turn slow, fail a share
//! of their requests or crash while the load runs, and what each system
//! made of it.
//!
//! A rollout scenario (`[rollout]`) runs here too, faults or none: each
//! run's ringway starts its rollout over, and a sampler follows it while
//! the load runs ([`super::rollout`]).
//!
//! Every run starts fresh origins, each given its part of the schedule
//! ([`schedule`]), so that a crashed origin is back for the next system and
//! every system meets the same faults at the same moment of its run. The
//! origins' clocks start with the load ([`super::measure::Runner`] signals
//! them once the `load` child is spawned); the scenario's times count from
//! the measured window, so the warm-up is added here. Once the load is over
//! the system stops first (nothing it still holds reaches an origin
//! afterwards), then the origins, whose reports say what they received: the
//! run's upstream requests, against the requests the clients sent.

use std::path::Path;
use std::time::Duration;

use ringway_kit::origin::Phase;
use ringway_kit::ports::free_addr;

use super::guard;
use super::measure::{Runner, Upstream};
use super::origins::Origins;
use super::results::Results;
use super::rollout::{Plan, Sampler};
use super::run::{round_order, start, stop, Ctx, Entry};
use super::scenario::Scenario;

/// The path the origins count as health checks: a system checking its
/// endpoints actively is configured to ask for this one, so that its
/// checks do not pass for client traffic.
pub const CHECK_PATH: &str = "/healthz";

/// Origin `i`'s part of the scenario's faults, on the origin's clock (the
/// load's start, warm-up included): its windows of misbehaviour, and when
/// it crashes, if it does (the earliest kill).
pub fn schedule(s: &Scenario, i: usize) -> (Vec<Phase>, Option<Duration>) {
    let warmup = s.load.warmup;
    let mut phases = Vec::new();
    let mut kill: Option<Duration> = None;
    for f in s.faults.iter().filter(|f| f.hits(i)) {
        let from = warmup + f.at;
        if f.kill {
            kill = Some(kill.map_or(from, |k| k.min(from)));
        } else {
            phases.push(Phase {
                from,
                until: f.lasting.map(|d| from + d),
                delay: f.delay,
                fail_ratio: f.fail_ratio,
            });
        }
    }
    (phases, kill)
}

/// The `ringway-bench origin` arguments of origin `i`.
pub fn origin_args(s: &Scenario, i: usize) -> Vec<String> {
    let (phases, kill) = schedule(s, i);
    let mut args = vec!["--check-path".to_owned(), CHECK_PATH.to_owned()];
    for p in &phases {
        args.push("--phase".into());
        args.push(crate::origin::phase_arg(p));
    }
    if let Some(k) = kill {
        args.push("--kill-at".into());
        args.push(format!("{}ms", k.as_millis()));
    }
    args
}

/// One `[[faults]]` entry in words, for the report.
pub fn describe(f: &super::scenario::Fault) -> String {
    let who = if f.origins.is_empty() {
        "every origin".to_owned()
    } else {
        let list: Vec<String> = f.origins.iter().map(usize::to_string).collect();
        format!("origin {}", list.join(", "))
    };
    let at = humantime::format_duration(f.at);
    if f.kill {
        return format!(
            "{who}: crashes {at} into the measured window (listener closed, connections reset)"
        );
    }
    let mut what = Vec::new();
    if !f.delay.is_zero() {
        what.push(format!(
            "+{} per answer",
            humantime::format_duration(f.delay)
        ));
    }
    if f.fail_ratio > 0.0 {
        what.push(format!("{:.0}% of answers a 503", f.fail_ratio * 100.0));
    }
    let lasting = f.lasting.map_or_else(
        || "to the end".to_owned(),
        |d| format!("for {}", humantime::format_duration(d)),
    );
    format!(
        "{who}: {} from {at} into the measured window, {lasting}",
        what.join(", ")
    )
}

/// Every round of a fault scenario: each system, at each offered rate,
/// with its own origins.
pub(super) fn rounds(
    ctx: &Ctx<'_>,
    entries: &[Entry],
    bench: &Path,
    clk_tck: u64,
    results: &mut Results,
) {
    let s = ctx.s;
    for round in 0..s.runs {
        for entry in round_order(entries, round) {
            eprintln!("compare: round {}/{}: {}", round + 1, s.runs, entry.name);
            for &rate in &s.sweep.rates {
                one_rate(ctx, entry, bench, clk_tck, round, rate, results);
            }
        }
    }
}

/// One system at one rate under the guard: a disturbed run is run again,
/// each time with fresh origins and a fresh system.
fn one_rate(
    ctx: &Ctx<'_>,
    entry: &Entry,
    bench: &Path,
    clk_tck: u64,
    round: usize,
    rate: f64,
    results: &mut Results,
) {
    let s = ctx.s;
    let g = &ctx.opts.guard;
    let name = &entry.name;
    for attempt in 1..=1 + g.retries {
        let mut label = format!("r{}-{name}-rate{rate}", round + 1);
        if attempt > 1 {
            label.push_str(&format!("-retry{}", attempt - 1));
        }
        let origin_dir = ctx.dir.join("origins").join(&label);
        if let Err(e) = std::fs::create_dir_all(&origin_dir) {
            results
                .problems
                .push(format!("cannot create {}: {e}", origin_dir.display()));
            return;
        }
        let addrs = (0..s.origin.count).map(|_| free_addr()).collect();
        let args: Vec<Vec<String>> = (0..s.origin.count).map(|i| origin_args(s, i)).collect();
        let mut origins = match Origins::start(bench, s, addrs, &origin_dir, &args) {
            Ok(o) => o,
            Err(e) => {
                results.problems.push(format!("{label}: {e}"));
                return;
            }
        };
        let mut layout = ctx.layout(entry, ctx.mode, 0);
        layout.origins = origins.addrs().to_vec();
        let Some(system) = start(ctx, entry, &layout, round, results) else {
            origins.stop_each();
            return;
        };
        let quiet = guard::wait_quiet(&ctx.run_cores, g);
        let runner = Runner {
            bench,
            scenario: s,
            load_cores: &ctx.load_cores,
            run_cores: &ctx.run_cores,
            origins: &origins,
            clk_tck,
            dir: &ctx.dir,
            faults: true,
        };
        let sampler = s
            .rollout
            .as_ref()
            .filter(|_| entry.kind.is_ringway())
            .map(|r| {
                Sampler::start(Plan {
                    admin: entry.admin,
                    every: r.sample_every,
                    core: ctx.load_cores.first().copied(),
                })
            });
        let measured = runner.measure(&system, name, &label, Some(round), Some(rate));
        let trace = sampler.map(|x| x.finish(s, name, round, rate, &label));
        stop(system, name, round, results);
        let reports = origins.stop_each();
        let mut m = match measured {
            Ok(m) => m,
            Err(e) => {
                results.problems.push(e);
                return;
            }
        };
        if reports.iter().any(Option::is_none) {
            results.problems.push(format!(
                "{label}: an origin did not report what it received"
            ));
        }
        m.upstream = Some(Upstream { origins: reports });
        m.attempt = attempt;
        m.quiet = quiet;
        m.disturbed = guard::verdict(m.disturbance, g, false);
        match &m.disturbed {
            Some(why) if attempt <= g.retries => {
                eprintln!("compare: {label} disturbed ({why}): running it again");
                results.discarded.push(m);
            }
            _ => {
                results.runs.push(m);
                if let Some(trace) = trace {
                    results.problems.extend(trace.problems());
                    results.rollouts.push(trace);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::scenario::parse;

    const SCENARIO: &str = "name = \"f\"\nsystems = [\"ringway\"]\n\
        [origin]\ncount = 3\n[load]\nwarmup = \"1s\"\nduration = \"20s\"\n\
        [sweep]\nrates = [100]\nmax_throughput = false\n[memory]\nidle_connections = 0\n";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn each_origin_gets_its_windows_on_the_load_clock() {
        let s = parse(&format!(
            "{SCENARIO}[[faults]]\norigins = [2]\nat = \"4s\"\nkill = true\n\
             [[faults]]\norigins = [1, 2]\nat = \"2s\"\nfor = \"10s\"\ndelay = \"200ms\"\n\
             [[faults]]\nfail_ratio = 0.3\n"
        ))
        .unwrap();
        let brown = Phase {
            from: ms(1000),
            until: None,
            delay: Duration::ZERO,
            fail_ratio: 0.3,
        };
        let slow = Phase {
            from: ms(3000),
            until: Some(ms(13_000)),
            delay: ms(200),
            fail_ratio: 0.0,
        };
        assert_eq!(schedule(&s, 0), (vec![brown], None));
        assert_eq!(schedule(&s, 1), (vec![slow, brown], None));
        assert_eq!(schedule(&s, 2), (vec![slow, brown], Some(ms(5000))));
        assert_eq!(
            origin_args(&s, 2),
            [
                "--check-path",
                CHECK_PATH,
                "--phase",
                "from=3000ms,until=13000ms,delay=200ms",
                "--phase",
                "from=1000ms,fail=0.3",
                "--kill-at",
                "5000ms"
            ]
        );
        assert_eq!(origin_args(&s, 0)[..2], ["--check-path", CHECK_PATH]);
    }

    #[test]
    fn fault_keys_are_checked() {
        let bad = |body: &str, needle: &str| {
            let e = parse(&format!("{SCENARIO}{body}")).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e}");
        };
        bad(
            "[[faults]]\norigins = [3]\nkill = true\n",
            "3 is not an origin",
        );
        bad("[[faults]]\nat = \"20s\"\nkill = true\n", "measured window");
        bad("[[faults]]\nfail_ratio = 1.5\n", "from 0 to 1");
        bad("[[faults]]\nkill = true\ndelay = \"1s\"\n", "a crash lasts");
        bad("[[faults]]\nat = \"1s\"\n", "nothing happens");
        bad(
            "[[faults]]\nfail_ratio = 0.5\nfor = \"0s\"\n",
            "longer than zero",
        );
        let e = parse("name = \"x\"\n[[faults]]\nkill = true\n").unwrap_err();
        assert!(e.contains("max_throughput = false"), "{e}");
        let line = format!("line {}", SCENARIO.lines().count() + 2);
        let e = parse(&format!("{SCENARIO}[[faults]]\nkil = true\n")).unwrap_err();
        assert!(e.contains("kil") && e.contains(&line), "{e}");
        let e = parse(&format!("{SCENARIO}[[faults]]\nfor = \"soon\"\n")).unwrap_err();
        assert!(e.contains("soon") && e.contains(&line), "{e}");
    }
}
