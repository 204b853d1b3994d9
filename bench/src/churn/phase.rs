//! One measured phase: CPU counters read at both ends, the clients counting
//! for it, and in a churn phase the churn client publishing on its core.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;

use super::config::APP_CLUSTER;
use super::load::{Load, PhaseLoad};
use super::publish::{self, ChurnPlan, ChurnReport};
use super::report::{CoreBusy, PhaseKind, PhaseResult};
use super::{ctx, ChurnError, Cores};
use crate::procfs::{self, CoreTimes};

/// The name of the one worker thread the run measures.
pub const WORKER_THREAD: &str = "ringway-w0";
/// How long a PUT may take: the agent answers once every worker runs the
/// table, or after 10 s; wait a little longer than that.
const PUT_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a phase needs.
#[derive(Debug)]
pub struct Bench<'a> {
    /// The run's cores.
    pub cores: Cores,
    /// Phase length.
    pub length: Duration,
    /// Tables per second in churn phases.
    pub rate: f64,
    /// ringway's process id; its main thread runs the control agent.
    pub pid: u32,
    /// The thread id of [`WORKER_THREAD`].
    pub worker_tid: u32,
    /// The running clients.
    pub load: &'a Load,
    /// ringway's admin API.
    pub admin: SocketAddr,
    /// The endpoints the churn rotates through.
    pub origins: Vec<SocketAddr>,
}

/// What one phase measured apart from the clients' own figures.
#[derive(Debug)]
pub struct PhaseMeasure {
    /// Round number, from 1.
    pub round: usize,
    /// Quiet or churn.
    pub kind: PhaseKind,
    /// Attempt number, from 1 (a disturbed phase is run again).
    pub attempt: usize,
    /// Measured length.
    pub seconds: f64,
    before: Sample,
    after: Sample,
    /// What the churn client did, in a churn phase.
    pub churn: Option<ChurnReport>,
}

/// CPU counters read at a phase boundary.
#[derive(Debug, Clone)]
struct Sample {
    worker: u64,
    control: u64,
    process: u64,
    bench: u64,
    cores: Vec<(usize, CoreTimes)>,
}

impl Sample {
    fn take(bench: &Bench<'_>) -> Result<Self, ChurnError> {
        let cores = bench
            .cores
            .distinct()
            .into_iter()
            .map(|c| ctx("cannot read /proc/stat", procfs::core_times(c)).map(|t| (c, t)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            worker: ctx(
                format!("cannot read the CPU time of {WORKER_THREAD}"),
                procfs::thread_ticks(bench.pid, bench.worker_tid),
            )?,
            // The control agent runs on ringway's main thread.
            control: ctx(
                "cannot read the CPU time of ringway's main thread",
                procfs::thread_ticks(bench.pid, bench.pid),
            )?,
            process: ctx(
                "cannot read the CPU time of ringway",
                procfs::process_ticks(bench.pid),
            )?,
            bench: ctx(
                "cannot read the bench's own CPU time",
                procfs::process_ticks(std::process::id()),
            )?,
            cores,
        })
    }
}

/// Runs phase `slot` (the clients' counting slot) of `round`; `seq` is the
/// churn's running PUT number, carried from phase to phase.
pub fn run_phase(
    bench: &Bench<'_>,
    slot: usize,
    (round, kind, attempt): (usize, PhaseKind, usize),
    seq: &mut u64,
) -> Result<PhaseMeasure, ChurnError> {
    let before = Sample::take(bench)?;
    bench.load.set_phase(Some(slot));
    let start = Instant::now();
    let until = start + bench.length;
    let churn = match kind {
        PhaseKind::Quiet => None,
        PhaseKind::Churn => {
            let plan = ChurnPlan {
                admin: bench.admin,
                cluster: APP_CLUSTER.to_owned(),
                origins: bench.origins.clone(),
                rate: bench.rate,
                start,
                until,
                first_seq: *seq,
                timeout: PUT_TIMEOUT,
            };
            let core = CoreId {
                id: bench.cores.churn,
            };
            let thread = thread::Builder::new().name("churn".into()).spawn(move || {
                // The caller checked that the core exists.
                core_affinity::set_for_current(core);
                publish::run(&plan)
            });
            Some(ctx("cannot start the churn thread", thread)?)
        }
    };
    let now = Instant::now();
    if now < until {
        thread::sleep(until - now);
    }
    bench.load.set_phase(None);
    let seconds = start.elapsed().as_secs_f64();
    let after = Sample::take(bench)?;
    let churn = match churn {
        None => None,
        Some(thread) => {
            let report = thread
                .join()
                .map_err(|_| ChurnError::Run("the churn thread panicked".into()))?;
            *seq = report.next_seq;
            Some(report)
        }
    };
    Ok(PhaseMeasure {
        round,
        kind,
        attempt,
        seconds,
        before,
        after,
        churn,
    })
}

impl PhaseMeasure {
    /// CPU time that neither ringway nor the bench spent on the run's cores
    /// (other processes, and kernel work charged to nobody of ours), in
    /// percent of one core.
    pub fn foreign_pct(&self, clk_tck: u64) -> f64 {
        let busy: u64 = self
            .after
            .cores
            .iter()
            .zip(&self.before.cores)
            .map(|((_, a), (_, b))| a.busy.saturating_sub(b.busy))
            .sum();
        let ours = (self.after.process - self.before.process.min(self.after.process))
            + (self.after.bench - self.before.bench.min(self.after.bench));
        100.0 * (busy as f64 - ours as f64).max(0.0) / clk_tck as f64 / self.seconds
    }

    /// The largest share of clock ticks a core of the run did not receive
    /// during the phase (the hypervisor ran something else on it), percent.
    pub fn lost_pct(&self, clk_tck: u64) -> f64 {
        let expected = self.seconds * clk_tck as f64;
        self.after
            .cores
            .iter()
            .zip(&self.before.cores)
            .map(|((_, a), (_, b))| {
                let got = a.total.saturating_sub(b.total) as f64;
                (100.0 * (1.0 - got / expected)).max(0.0)
            })
            .fold(0.0, f64::max)
    }

    /// The phase's figures, with the clients' share of it.
    pub fn result(&self, client: &PhaseLoad, clk_tck: u64, disturbed: bool) -> PhaseResult {
        let churn = self.churn.as_ref();
        PhaseResult {
            round: self.round,
            kind: self.kind,
            attempt: self.attempt,
            seconds: self.seconds,
            counts: client.counts,
            p50_us: client.latency.value_at_quantile(0.5),
            p99_us: client.latency.value_at_quantile(0.99),
            worker_ticks: self.after.worker.saturating_sub(self.before.worker),
            control_ticks: self.after.control.saturating_sub(self.before.control),
            process_ticks: self.after.process.saturating_sub(self.before.process),
            bench_ticks: self.after.bench.saturating_sub(self.before.bench),
            cores: self
                .after
                .cores
                .iter()
                .zip(&self.before.cores)
                .map(|(&(core, after), &(_, before))| CoreBusy {
                    core,
                    pct: after.busy_pct_since(before),
                })
                .collect(),
            foreign_pct: self.foreign_pct(clk_tck),
            lost_pct: self.lost_pct(clk_tck),
            disturbed,
            published: churn.map_or(0, |c| c.published),
            put_failed: churn.map_or(0, |c| c.failed),
            late: churn.map_or(0, |c| c.late),
            skipped: churn.map_or(0, |c| c.skipped),
        }
    }

    /// Worker CPU per finished request, µs, from a request count taken
    /// outside the clients' own books (for progress lines).
    pub fn rough_worker_us(&self, requests: u64, clk_tck: u64) -> f64 {
        let ticks = self.after.worker.saturating_sub(self.before.worker);
        ticks as f64 * 1e6 / clk_tck as f64 / requests.max(1) as f64
    }
}
