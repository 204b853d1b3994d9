//! `ringway-bench compare`: the one bench harness. ringway side by side
//! with nginx, HAProxy, variants of itself and a baseline build, against a
//! direct baseline, from a scenario file.
//!
//! [`scenario`] reads the file; [`run`] orders the work (origins, load-side
//! ceiling, interleaved rounds); [`system`] starts, measures and stops each
//! system under test with the configs [`configs`] writes on ports from
//! [`ringway_kit::ports`]; [`measure`] runs one `load` child and samples `/proc` around
//! it; [`guard`] waits for a quiet machine and judges each run; [`churn`]
//! posts tables to a churning ringway; [`idle`] holds the idle connections
//! of the memory run; [`faults`] runs the fault scenarios, each run with
//! origins of its own that misbehave on schedule (and the rollout
//! scenarios, whose runs [`rollout`] follows through ringway's admin API);
//! [`policy`] checks that a route policy meant to stay idle refused
//! nothing; [`profile`] runs `perf`; [`syscalls`] counts system calls;
//! [`reactor`] reads which reactor a ringway says it runs on;
//! [`pki`] mints a TLS scenario's certificates and [`admission`] checks
//! whom each TLS listener lets in; [`sidecar`] lays out the two halves of
//! each system in a pair scenario; [`observe`] serves the collector sink
//! of tracing systems and checks the access logs and span counts each turn
//! left; [`report`] and [`plot`] write the results. See docs/benchmarks.md.

mod admission;
mod aes;
mod churn;
pub mod configs;
mod faults;
mod guard;
mod idle;
mod measure;
mod observe;
mod origins;
pub mod pki;
pub mod plot;
mod policy;
mod profile;
mod reactor;
mod report;
mod results;
mod rollout;
mod run;
pub mod scenario;
mod sidecar;
mod syscalls;
pub mod system;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use self::results::GuardSettings;

/// Options of `ringway-bench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The scenario file (see bench/scenarios/).
    pub scenario: PathBuf,
    /// Interleaved rounds, instead of the scenario's `runs`.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Systems to run, comma-separated, instead of the scenario's.
    #[arg(long)]
    pub systems: Option<String>,
    /// Measured window of each load run (the system-call round's too),
    /// instead of the scenario's.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up of each load run, instead of the scenario's.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Offered rates, comma-separated, instead of the scenario's.
    #[arg(long)]
    pub rates: Option<String>,
    /// Idle connections of the memory run, instead of the scenario's.
    #[arg(long)]
    pub idle_connections: Option<usize>,
    /// Idle TCP pairs of the memory run, instead of the scenario's.
    #[arg(long)]
    pub idle_tcp_pairs: Option<usize>,
    /// Results go in a new `<name>-<timestamp>` directory under this one.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// The ringway binary (default: beside this one).
    #[arg(long)]
    pub ringway: Option<PathBuf>,
    /// A second ringway binary (say, the tree before a change, built into
    /// another target directory), run as system `baseline` with the same
    /// configs in the same rounds; the report gives ringway / baseline.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Profile each proxy with `perf` during one more max-throughput run in
    /// the last round; the report sums the samples by thread, object and
    /// symbol.
    #[arg(long)]
    pub profile: bool,
    /// Count each proxy's system calls per request (per GB) with `perf
    /// stat`, in a round of their own after the measured ones (as the
    /// scenario's `[syscalls] count = true`).
    #[arg(long)]
    pub syscalls: bool,
    /// Before each run, wait until every core of the run is less busy than
    /// this (percent), instead of the scenario's `guard.quiet_pct`.
    #[arg(long)]
    pub quiet_pct: Option<f64>,
    /// Longest wait for quiet cores before a run (`0s`: do not look),
    /// instead of the scenario's `guard.quiet_wait`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub quiet_wait: Option<Duration>,
    /// Times a run the guard finds disturbed is run again, instead of the
    /// scenario's `guard.retries`.
    #[arg(long)]
    pub retries: Option<usize>,
}

/// Runs the comparison: 0 when every system that could run was measured,
/// 1 when something failed on the way (the report says what), 2 for a bad
/// scenario or options.
pub fn main(args: &CompareArgs) -> ExitCode {
    let bad = |e: String| {
        eprintln!("ringway-bench compare: {e}");
        ExitCode::from(2)
    };
    let mut s = match scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if let Some(n) = args.runs {
        s.runs = n;
    }
    if let Some(list) = &args.systems {
        s.systems = list.split(',').map(|x| x.trim().to_string()).collect();
    }
    if args.baseline.is_some() && !s.systems.iter().any(|x| x == "baseline") {
        // Right after ringway, so that the two meet the machine in the
        // same state in every round.
        let at = s
            .systems
            .iter()
            .position(|x| x == "ringway")
            .map_or(s.systems.len(), |i| i + 1);
        s.systems.insert(at, "baseline".into());
    }
    if let Some(d) = args.duration {
        s.load.duration = d;
        s.syscalls.duration = None;
    }
    if let Some(d) = args.warmup {
        s.load.warmup = d;
    }
    if let Some(list) = &args.rates {
        let parsed: Result<Vec<f64>, _> = list.split(',').map(|r| r.trim().parse()).collect();
        match parsed {
            Ok(v) => s.sweep.rates = v,
            Err(e) => return bad(format!("--rates {list:?}: {e}")),
        }
    }
    if let Some(n) = args.idle_connections {
        s.memory.idle_connections = n;
    }
    if let Some(n) = args.idle_tcp_pairs {
        s.memory.idle_tcp_pairs = n;
    }
    if args.syscalls {
        s.syscalls.count = true;
    }
    if let Some(p) = args.quiet_pct {
        s.guard.quiet_pct = p;
    }
    if let Some(d) = args.quiet_wait {
        s.guard.quiet_wait = d;
    }
    if let Some(n) = args.retries {
        s.guard.retries = n;
    }
    // The overrides go through the same checks as the file.
    if let Err(e) = scenario::check(&s) {
        return bad(format!("with the command-line overrides: {e}"));
    }
    let perf = match args.profile.then(profile::find_perf).transpose() {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let ringway = args.ringway.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("ringway")))
            .unwrap_or_else(|| PathBuf::from("ringway"))
    });
    let opts = run::Options {
        out: args.out.clone(),
        ringway,
        baseline: args.baseline.clone(),
        perf,
        guard: GuardSettings {
            quiet_pct: s.guard.quiet_pct,
            quiet_wait_s: s.guard.quiet_wait.as_secs_f64(),
            max_foreign_pct: s.guard.max_foreign_pct,
            max_lost_pct: s.guard.max_lost_pct,
            retries: s.guard.retries,
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let (results, dir) = match run::run(&s, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringway-bench compare: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = report::write(&results, &dir) {
        eprintln!("ringway-bench compare: {e}");
        return ExitCode::FAILURE;
    }
    println!("{}", dir.join("report.md").display());
    if results.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        for p in &results.problems {
            eprintln!("ringway-bench compare: {p}");
        }
        ExitCode::FAILURE
    }
}
