//! `ringway-bench compare`: ringway side by side with nginx and HAProxy,
//! against a direct baseline, from a scenario file.
//!
//! [`scenario`] reads the file; [`run`] orders the work (origin, load-side
//! ceiling, interleaved rounds); [`system`] starts, measures and stops each
//! system under test with the configs [`configs`] writes; [`measure`] runs
//! one `load` child and samples `/proc` around it; [`idle`]
//! holds the idle connections of the memory run; [`report`] and [`plot`]
//! write the results. See docs/architecture.md, "The bench harness".

pub mod configs;
mod idle;
mod measure;
pub mod plot;
mod report;
mod run;
pub mod scenario;
pub mod system;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Measured window of each load run, instead of the scenario's.
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
    /// Results go in a new `<name>-<timestamp>` directory under this one.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// The ringway binary (default: beside this one).
    #[arg(long)]
    pub ringway: Option<PathBuf>,
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
    if let Some(d) = args.duration {
        s.load.duration = d;
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
    // The overrides go through the same checks as the file.
    if let Err(e) = scenario::check(&s) {
        return bad(format!("with the command-line overrides: {e}"));
    }
    let ringway = args.ringway.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("ringway")))
            .unwrap_or_else(|| PathBuf::from("ringway"))
    });
    let opts = run::Options {
        out: args.out.clone(),
        ringway,
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
