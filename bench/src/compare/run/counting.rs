//! The system-call round (`[syscalls]`): after the measured rounds, every
//! system but `direct` once more, started fresh with the configuration of
//! its measured rounds, run at each offered rate and at max throughput
//! under `perf stat` (see [`crate::compare::syscalls`]).

use std::path::Path;

use super::{Ctx, Entry};
use crate::compare::guard;
use crate::compare::measure::Runner;
use crate::compare::results::Results;
use crate::compare::syscalls::{self, Counter, SyscallCount};
use crate::compare::system::{Kind, Running};

/// Counts the system calls of every entry but `direct` at each of `rates`
/// (`None`: max throughput); `runner` runs the round's shorter window.
/// Returns the requests the counted runs sent (they reach the origins, but
/// are not measured runs). A count that fails is reported as missing, with
/// why: the measured figures stand without it.
pub(super) fn syscall_round(
    ctx: &Ctx<'_>,
    runner: &Runner<'_>,
    counter: &Counter,
    entries: &[Entry],
    rates: &[Option<f64>],
    results: &mut Results,
) -> u64 {
    let mut sent = 0;
    let tcp = ctx.s.mode == crate::compare::scenario::ScenarioMode::Tcp;
    for entry in entries.iter().filter(|e| e.kind != Kind::Direct) {
        eprintln!("compare: system calls of {}", entry.name);
        let layout = ctx.layout(entry, ctx.mode, ctx.idle);
        let started = match ctx.inbound_layout(entry, layout.mode, 0) {
            Some(inbound) => Running::start_pair(entry.kind, &layout, &inbound, &ctx.bins),
            None => Running::start(entry.kind, &layout, &ctx.bins),
        };
        let system = match started {
            Ok(system) => system,
            Err(e) => {
                results.problems.push(format!(
                    "system-call round: {} did not start: {e}",
                    entry.name
                ));
                continue;
            }
        };
        for &rate in rates {
            let (count, carried) = counted_run(ctx, runner, counter, &system, entry, rate, tcp);
            sent += carried;
            results.syscalls.push(count);
        }
        if let Err(e) = system.stop() {
            results
                .problems
                .push(format!("system-call round: stopping {}: {e}", entry.name));
        }
    }
    sent
}

/// One counted run: its count, and the requests it sent.
fn counted_run(
    ctx: &Ctx<'_>,
    runner: &Runner<'_>,
    counter: &Counter,
    system: &Running,
    entry: &Entry,
    rate: Option<f64>,
    tcp: bool,
) -> (SyscallCount, u64) {
    let name = &entry.name;
    let what = rate.map_or_else(|| "max".to_string(), |r| format!("rate{r}"));
    let label = format!("syscalls-{name}-{what}");
    let perf_out = ctx
        .dir
        .join("systems")
        .join(name)
        .join(format!("{label}.txt"));
    let rel = |p: &Path| p.strip_prefix(&ctx.dir).unwrap_or(p).display().to_string();
    let raw = format!("raw/{label}.json");
    let mut count = SyscallCount::new(name, rate, raw.clone(), rel(&perf_out));
    let _ = guard::wait_quiet(&ctx.run_cores, &ctx.opts.guard);
    let cmd = counter.wrap(
        &runner.load_command(system, rate),
        &system.pids(),
        &perf_out,
    );
    let measured = runner.measure_command(cmd, system, name, &label, None, rate);
    // The requests reached the origins even when the run failed part way.
    let carried = super::requests_sent(&ctx.dir.join(&raw));
    let m = match measured {
        Ok(m) => m,
        Err(e) => {
            count.problem = Some(e);
            return (count, carried);
        }
    };
    count.sent = m.sent;
    count.bytes_total = m.bytes_total;
    count.cpu_while_counted = m.cost(tcp);
    match std::fs::read_to_string(&perf_out)
        .map_err(|e| format!("cannot read {}: {e}", perf_out.display()))
        .and_then(|text| syscalls::parse(&text))
    {
        Ok(counts) => count.fill(&counts, ctx.s.syscalls.top, tcp),
        Err(e) => count.problem = Some(e),
    }
    (count, carried)
}
