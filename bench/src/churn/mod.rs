//! `ringway-bench churn`: routing-table churn while traffic flows.
//!
//! The run starts an echo origin, writes a configuration with a large table
//! ([`config`]), starts ringway on it, and keeps closed-loop TCP load going
//! through it ([`load`]) for a series of phases: quiet ones, and churn ones
//! during which a new table is published at a fixed rate through the admin
//! API ([`publish`]). Phases alternate (Q C, C Q, Q C ...) so that slow drift
//! of the machine hits both kinds alike. Each phase records throughput,
//! request errors, client latency and the CPU time of ringway's threads and
//! of the cores ([`crate::procfs`], [`phase`]); a phase during which other
//! processes used the run's cores, or the hypervisor withheld them, is run
//! again. The end reads ringway's own publish latency from `/stats` and
//! prints the comparison ([`report`]).
//!
//! On a small machine the control agent shares a core with the clients and
//! the origin; those run at nice 19 by default so that the agent gets the
//! core whenever it has work, as it would on a core of its own.
//!
//! Everything is blocking std threads: the bench's cost is flat and easy to
//! reason about, and no runtime of its own competes with ringway's.

mod config;
mod describe;
mod load;
mod origin;
mod phase;
mod publish;
mod report;
pub(crate) mod ringway;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use hdrhistogram::Histogram;

use self::config::{TableShape, MAX_POOL};
use self::load::{Load, LoadSettings};
use self::origin::Origin;
use self::phase::{Bench, PhaseMeasure, WORKER_THREAD};
use self::report::{PhaseKind, PublishLatency, RunReport};
use self::ringway::{Ringway, RingwayError};
use crate::procfs;

/// How long ringway may take to become ready with a large table.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long ringway may take to exit after SIGTERM: its drain timeout (5 s,
/// set in the generated config) plus a margin.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// At most this many distinct PUT failures are shown.
const KEPT_FAILURES: usize = 5;

/// Options of `ringway-bench churn`.
#[derive(Debug, clap::Args)]
pub struct ChurnArgs {
    /// The ringway binary to run.
    #[arg(long, default_value = "target/release/ringway")]
    ringway: PathBuf,
    /// Tables published per second during churn phases.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Rounds; each has one quiet and one churn phase, in alternating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Client threads (closed loop, one request per connection).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// The core of ringway's one worker (`runtime.worker_cores = [W]`).
    #[arg(long, default_value_t = 1)]
    worker_core: usize,
    /// ringway's control core (`runtime.control_core`).
    #[arg(long, default_value_t = 0)]
    control_core: usize,
    /// The core of the client threads and the echo origin.
    #[arg(long, default_value_t = 0)]
    load_core: usize,
    /// The core of the churn client that sends the PUTs [default: the
    /// control core].
    #[arg(long)]
    churn_core: Option<usize>,
    /// Clusters in the table, `app` included.
    #[arg(long, default_value_t = 10_000)]
    clusters: usize,
    /// Distinct addresses the other clusters' endpoints are drawn from.
    #[arg(long, default_value_t = 1_000)]
    endpoint_pool: usize,
    /// Endpoints of each cluster other than `app`.
    #[arg(long, default_value_t = 3)]
    endpoints_per_cluster: usize,
    /// Echo origin ports (the endpoints of `app`).
    #[arg(long, default_value_t = 4)]
    origins: usize,
    /// Origin threads per port.
    #[arg(long, default_value_t = 4)]
    origin_threads: usize,
    /// Bytes per request (echoed back).
    #[arg(long, default_value_t = 1024)]
    request_size: usize,
    /// Socket timeouts of clients, origin and PUTs, in seconds.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Unmeasured load before the first phase, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Unmeasured pause between phases, in seconds (load keeps running).
    #[arg(long, default_value_t = 1.0)]
    gap: f64,
    /// Nice value of the client and origin threads. On a machine too small
    /// to give the control agent a core of its own, it shares the load's
    /// core; the lowest priority (19) for the load lets the agent run as
    /// soon as it has work, as it would on its own core, and leaves the load
    /// what is left. 0: same priority as ringway.
    #[arg(long, default_value_t = 19, allow_negative_numbers = true)]
    load_nice: i32,
    /// A phase during which other processes used more than this share of
    /// the run's cores (percent of one core), or the hypervisor withheld
    /// more than this share of a core's clock ticks, is disturbed: it is
    /// kept aside and run again.
    #[arg(long, default_value_t = 10.0)]
    max_disturbance: f64,
    /// How many times a disturbed phase is run again before it is kept
    /// anyway (and flagged in the report).
    #[arg(long, default_value_t = 2)]
    retries: usize,
    /// Keep the config, ringway's log, report.md and result.json here
    /// [default: a temporary directory, removed at the end].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the result as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    /// An option is out of range.
    #[error("{0}")]
    Usage(String),
    /// Setting something up failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// ringway could not be started, measured or stopped.
    #[error(transparent)]
    Ringway(#[from] RingwayError),
    /// Something the run depends on did not hold.
    #[error("{0}")]
    Run(String),
}

/// `what` as the context of an I/O error.
fn ctx<T>(what: impl Into<String>, result: io::Result<T>) -> Result<T, ChurnError> {
    result.map_err(|source| ChurnError::Io {
        what: what.into(),
        source,
    })
}

/// Runs the benchmark and prints its report: exit 0 when it passed, 1 when
/// it failed or could not run, 2 for bad options.
pub fn main(args: &ChurnArgs) -> ExitCode {
    match run(args) {
        Ok((report, out)) => {
            let markdown = report.markdown();
            let json = report.json();
            if let Some(dir) = out.kept() {
                let saved = fs::write(dir.join("report.md"), &markdown).and_then(|()| {
                    fs::write(
                        dir.join("result.json"),
                        serde_json::to_string_pretty(&json).unwrap_or_default(),
                    )
                });
                if let Err(e) = saved {
                    eprintln!(
                        "ringway-bench churn: cannot save the report in {}: {e}",
                        dir.display()
                    );
                }
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print!("{markdown}");
            }
            let failures = report.failures();
            if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                for why in failures {
                    eprintln!("ringway-bench churn: FAIL: {why}");
                }
                ExitCode::from(1)
            }
        }
        Err(ChurnError::Usage(why)) => {
            eprintln!("ringway-bench churn: {why}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ringway-bench churn: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the run's files go.
#[derive(Debug)]
struct OutDir {
    path: PathBuf,
    /// Removed on drop when the user gave no `--out`.
    _temp: Option<tempfile::TempDir>,
}

impl OutDir {
    fn new(out: Option<&Path>) -> Result<Self, ChurnError> {
        match out {
            Some(path) => {
                ctx(
                    format!("cannot create {}", path.display()),
                    fs::create_dir_all(path),
                )?;
                Ok(Self {
                    path: path.to_owned(),
                    _temp: None,
                })
            }
            None => {
                let temp = ctx(
                    "cannot create a temporary directory",
                    tempfile::Builder::new().prefix("ringway-churn-").tempdir(),
                )?;
                Ok(Self {
                    path: temp.path().to_owned(),
                    _temp: Some(temp),
                })
            }
        }
    }

    /// The directory, if it outlives the run.
    fn kept(&self) -> Option<&Path> {
        self._temp.is_none().then_some(self.path.as_path())
    }
}

/// The cores of the run.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// Cores this process may run on at start (ringway sees the same).
    pub available: usize,
    /// ringway's one worker.
    pub worker: usize,
    /// ringway's control agent.
    pub control: usize,
    /// Clients and origin.
    pub load: usize,
    /// The churn client.
    pub churn: usize,
}

impl Cores {
    /// Each core of the layout once, in order.
    pub fn distinct(&self) -> Vec<usize> {
        let mut all = vec![self.worker, self.control, self.load, self.churn];
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Checks the options; returns the run's cores.
fn check(args: &ChurnArgs) -> Result<Cores, ChurnError> {
    let usage = |why: String| Err(ChurnError::Usage(why));
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return usage(format!(
            "--rate {}: must be a positive number of tables per second",
            args.rate
        ));
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        return usage(format!("--seconds {}: must be positive", args.seconds));
    }
    for (name, value) in [
        ("--timeout", args.timeout),
        ("--warmup", args.warmup),
        ("--gap", args.gap),
        ("--max-disturbance", args.max_disturbance),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return usage(format!("{name} {value}: must be a number, zero or more"));
        }
    }
    if args.timeout <= 0.0 {
        return usage("--timeout must be more than 0 seconds".into());
    }
    if args.rounds == 0 || args.clients == 0 || args.request_size == 0 || args.origin_threads == 0 {
        return usage(
            "--rounds, --clients, --request-size and --origin-threads must be at least 1".into(),
        );
    }
    if args.clusters == 0 {
        return usage("--clusters must be at least 1 (the cluster `app`)".into());
    }
    if !(1..=16).contains(&args.origins) {
        return usage(format!("--origins {}: between 1 and 16", args.origins));
    }
    if args.origins == 1 {
        eprintln!(
            "ringway-bench churn: warning: with one origin every PUT sends the same endpoint list"
        );
    }
    if !(1..=MAX_POOL).contains(&args.endpoint_pool) {
        return usage(format!(
            "--endpoint-pool {}: between 1 and {MAX_POOL}",
            args.endpoint_pool
        ));
    }
    if !(1..=args.endpoint_pool).contains(&args.endpoints_per_cluster) {
        return usage(format!(
            "--endpoints-per-cluster {}: between 1 and --endpoint-pool ({})",
            args.endpoints_per_cluster, args.endpoint_pool
        ));
    }
    let available: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let cores = Cores {
        available: available.len(),
        worker: args.worker_core,
        control: args.control_core,
        load: args.load_core,
        churn: args.churn_core.unwrap_or(args.control_core),
    };
    for core in cores.distinct() {
        if !available.contains(&core) {
            return usage(format!(
                "core {core} is not available (cores: {available:?})"
            ));
        }
    }
    if cores.worker == cores.load || cores.worker == cores.control || cores.worker == cores.churn {
        eprintln!(
            "ringway-bench churn: warning: the worker core {} is shared with other work; \
             its CPU figures will include that work's interference",
            cores.worker
        );
    }
    Ok(cores)
}

fn run(args: &ChurnArgs) -> Result<(RunReport, OutDir), ChurnError> {
    let cores = check(args)?;
    let (clk_tck, clk_measured) = procfs::clock_ticks();
    if !clk_measured {
        eprintln!("ringway-bench churn: warning: `getconf CLK_TCK` did not answer; assuming 100");
    }
    let out = OutDir::new(args.out.as_deref())?;
    let timeout = Duration::from_secs_f64(args.timeout);

    let origin = ctx(
        "cannot start the echo origin",
        Origin::start(
            args.origins,
            args.origin_threads,
            args.request_size,
            CoreId { id: cores.load },
            timeout,
        ),
    )?;
    let origins = origin.addrs().to_vec();
    let admin = ctx("cannot find a free port", config::free_port())?;
    let mut listener = ctx("cannot find a free port", config::free_port())?;
    while listener == admin {
        listener = ctx("cannot find a free port", config::free_port())?;
    }
    let shape = TableShape {
        worker_cores: vec![cores.worker],
        control_core: cores.control,
        admin,
        listener,
        origins: origins.clone(),
        clusters: args.clusters,
        endpoint_pool: args.endpoint_pool,
        endpoints_per_cluster: args.endpoints_per_cluster,
    };
    let config_path = out.path.join("ringway.toml");
    let text = shape.render();
    ctx(
        format!("cannot write {}", config_path.display()),
        fs::write(&config_path, &text),
    )?;
    let log_path = out.path.join("ringway.log");
    progress(&format!(
        "starting {} with {} clusters ({} KiB of config) in {}",
        args.ringway.display(),
        args.clusters,
        text.len() / 1024,
        out.path.display()
    ));
    let started = Instant::now();
    let ringway = Ringway::start(&args.ringway, &config_path, &log_path, admin, READY_TIMEOUT)?;
    progress(&format!(
        "ready after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // The main thread mostly sleeps; keep it off the worker core too. Not
    // before ringway is started: a child inherits the affinity, and ringway
    // would then see only this core.
    core_affinity::set_for_current(CoreId { id: cores.load });
    let pid = ringway.pid();
    let worker_tid = ctx(
        "cannot list ringway's threads",
        procfs::find_thread(pid, WORKER_THREAD),
    )?
    .ok_or_else(|| {
        ChurnError::Run(format!(
            "ringway (pid {pid}) has no thread named {WORKER_THREAD}"
        ))
    })?;
    let stats = ctx("cannot read /stats", ringway.stats())?;
    let generation_start = stats["generation"].as_u64().unwrap_or(0);

    let plan: Vec<(usize, PhaseKind)> = (1..=args.rounds)
        .flat_map(|round| {
            let order = if round % 2 == 1 {
                [PhaseKind::Quiet, PhaseKind::Churn]
            } else {
                [PhaseKind::Churn, PhaseKind::Quiet]
            };
            order.map(|kind| (round, kind))
        })
        .collect();
    // One counting slot per attempt of every phase.
    let slots = plan.len() * (1 + args.retries);
    let load = ctx(
        "cannot start the client threads",
        Load::start(&LoadSettings {
            target: listener,
            clients: args.clients,
            phases: slots,
            request_size: args.request_size,
            timeout,
            core: CoreId { id: cores.load },
        }),
    )?;
    if args.load_nice != 0 {
        let tids = ctx(
            "cannot list the bench's threads",
            procfs::threads_named(std::process::id(), &["client-", "origin-"]),
        )?;
        ctx(
            format!("cannot renice the load threads to {}", args.load_nice),
            procfs::renice(&tids, args.load_nice),
        )?;
    }
    let bench = Bench {
        cores,
        length: Duration::from_secs_f64(args.seconds),
        rate: args.rate,
        pid,
        worker_tid,
        load: &load,
        admin: ringway.admin(),
        origins,
    };
    progress(&format!(
        "warm-up {} s, then {} phases of {} s ({} clients, {} tables/s in churn phases)",
        args.warmup,
        plan.len(),
        args.seconds,
        args.clients,
        args.rate
    ));
    thread::sleep(Duration::from_secs_f64(args.warmup));
    let mut seq = 0;
    // (measure, counting slot, kept)
    let mut measures: Vec<(PhaseMeasure, usize, bool)> = Vec::with_capacity(slots);
    let mut slot = 0;
    for &(round, kind) in &plan {
        for attempt in 1..=1 + args.retries {
            let finished = load.finished();
            let m = phase::run_phase(&bench, slot, (round, kind, attempt), &mut seq)?;
            let requests = load.finished() - finished;
            let (foreign, lost) = (m.foreign_pct(clk_tck), m.lost_pct(clk_tck));
            let disturbed = foreign > args.max_disturbance || lost > args.max_disturbance;
            progress(&format!(
                "round {round} {:5}: ~{:.0} requests/s, worker {:.1} µs CPU/request, {} tables; \
                 other work {foreign:.1}%, ticks lost {lost:.1}%",
                kind.name(),
                requests as f64 / m.seconds,
                m.rough_worker_us(requests, clk_tck),
                m.churn.as_ref().map_or(0, |c| c.published),
            ));
            let again = disturbed && attempt <= args.retries;
            if again {
                progress("  disturbed: kept aside, running this phase again");
            }
            measures.push((m, slot, !again));
            slot += 1;
            thread::sleep(Duration::from_secs_f64(args.gap));
            if !again {
                break;
            }
        }
    }
    let load_report = load.stop(slots);
    let end_stats = ringway.stats();
    if let Err(e) = &end_stats {
        eprintln!("ringway-bench churn: cannot read /stats at the end: {e}");
    }
    let end_stats = end_stats.ok();
    let ringway_exit = match ringway.stop(STOP_TIMEOUT) {
        Ok(status) => status
            .code()
            .ok_or_else(|| format!("ended by a signal ({status})")),
        Err(e) => Err(e.to_string()),
    };
    let origin_report = origin.stop();

    let mut put_rtt: Histogram<u64> = load::new_histogram();
    let mut put_failures = Vec::new();
    let mut out_of_order = 0;
    let mut phases = Vec::with_capacity(plan.len());
    let mut discarded = Vec::new();
    for (m, slot, kept) in &measures {
        if let Some(c) = &m.churn {
            let _ = put_rtt.add(&c.rtt);
            out_of_order += c.out_of_order;
            for f in &c.failures {
                if put_failures.len() < KEPT_FAILURES && !put_failures.contains(f) {
                    put_failures.push(f.clone());
                }
            }
        }
        let Some(client) = load_report.phases.get(*slot) else {
            continue;
        };
        let disturbed = m.foreign_pct(clk_tck) > args.max_disturbance
            || m.lost_pct(clk_tck) > args.max_disturbance;
        let result = m.result(client, clk_tck, disturbed);
        if *kept {
            phases.push(result);
        } else {
            discarded.push(result);
        }
    }
    let publish = end_stats.as_ref().and_then(|s| {
        let p = &s["publish_latency_us"];
        Some(PublishLatency {
            count: p["count"].as_u64()?,
            p50: p["p50"].as_u64()?,
            p99: p["p99"].as_u64()?,
            max: p["max"].as_u64()?,
        })
    });
    let report = RunReport {
        header: describe::header(args, cores, clk_tck, clk_measured, &shape),
        command: describe::command_line(),
        clk_tck,
        max_disturbance: args.max_disturbance,
        phases,
        discarded,
        outside: load_report.outside,
        put_rtt,
        put_failures,
        out_of_order,
        publish,
        generations: (
            generation_start,
            end_stats.as_ref().and_then(|s| s["generation"].as_u64()),
        ),
        ringway_totals: end_stats.as_ref().map(|s| s["totals"].clone()),
        origin: (origin_report.served, origin_report.errors),
        ringway_exit,
    };
    Ok((report, out))
}

/// A progress line on stderr.
fn progress(line: &str) {
    eprintln!("ringway-bench churn: {line}");
}
