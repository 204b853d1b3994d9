//! What a comparison measured, as `results.json` holds it.

use serde::Serialize;

use super::admission::Admission;
use super::churn::ChurnRound;
use super::measure::Measured;
use super::observe::Observed;
use super::policy::Refusals;
use super::profile::Profile;
use super::report::RatioTable;
use super::rollout::RolloutTrace;
use super::syscalls::SyscallCount;

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// `http` or `tcp`.
    pub mode: String,
    /// When the run started (UTC, `date -u`).
    pub started: String,
    /// The command line that ran it.
    pub command: String,
    /// Machine, versions and layout.
    pub setup: Setup,
    /// Systems measured, in round order.
    pub systems: Vec<String>,
    /// Systems skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// `direct` at max throughput before the rounds: what the load side
    /// can take alone.
    pub ceiling: Option<Measured>,
    /// Every measured load run of the rounds.
    pub runs: Vec<Measured>,
    /// Runs the quiet-machine guard found disturbed and ran again.
    pub discarded: Vec<Measured>,
    /// Memory readings, one per system, mode and round.
    pub memory: Vec<MemoryReading>,
    /// Table churn of each churning system in each round.
    pub churn: Vec<ChurnRound>,
    /// `perf` profiles (`--profile`).
    pub profiles: Vec<Profile>,
    /// System calls of each system at each offered rate and at max
    /// throughput, counted in a round of their own (`[syscalls]`).
    pub syscalls: Vec<SyscallCount>,
    /// The CPU ratios of the scenario's `[[ratios]]` (and ringway against
    /// the baseline).
    pub ratios: Vec<RatioTable>,
    /// The origins' fault schedule, one line per `[[faults]]` entry.
    pub faults: Vec<String>,
    /// Requests the origins answered in all (their own count, read when
    /// they stopped), against what the load runs, the memory runs and the
    /// admission checks sent.
    pub origin_check: Option<OriginCheck>,
    /// Each TLS listener tried with and without a client certificate, in
    /// the first round.
    pub admissions: Vec<Admission>,
    /// What each turn of a system that logs or traces left behind: log
    /// lines against requests, ringway's record and span counters, what
    /// the collector sink received.
    pub observed: Vec<Observed>,
    /// What the route policy of each ringway system with one refused, at
    /// the end of each of its rounds: nothing, for an idle policy.
    pub refusals: Vec<Refusals>,
    /// The rollout of each run of a rollout scenario, as the sampler
    /// followed it.
    pub rollouts: Vec<RolloutTrace>,
    /// Things the reader must know about how the run went (a limit that
    /// capped the idle connections, the guard giving up waiting).
    pub notes: Vec<String>,
    /// What went wrong along the way (a system that would not start, a
    /// load run that failed, a table post that was refused).
    pub problems: Vec<String>,
}

/// Where things ran.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Online CPUs.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// Version lines of the systems' binaries.
    pub versions: Vec<String>,
    /// The commit of the tree the bench was run from, if it is a git tree.
    pub tree: String,
    /// The load generator's cores.
    pub load_cores: String,
    /// The origin's cores.
    pub origin_cores: String,
    /// The system under test's core.
    pub proxy_core: usize,
    /// ringway's control core, when it has its own.
    pub control_core: Option<usize>,
    /// Origin answer body size.
    pub response_size: usize,
    /// Origin processes.
    pub origins: usize,
    /// Connections of each load run.
    pub connections: usize,
    /// Each measured window, seconds.
    pub duration_s: f64,
    /// Warm-up before each, seconds.
    pub warmup_s: f64,
    /// Rounds.
    pub runs: usize,
    /// Clock ticks per second of the CPU figures.
    pub clk_tck: u64,
    /// The quiet-machine guard's settings.
    pub guard: GuardSettings,
    /// Each system's generated config and log, relative to the results
    /// directory.
    pub files: Vec<String>,
    /// A new connection per request (`load.new_connection`).
    pub new_connection: bool,
    /// TLS between the clients and the proxies, if the scenario has it
    /// (not in a pair scenario: its clients speak plaintext).
    pub tls: Option<TlsSetup>,
    /// A sidecar-pair scenario: how the halves spoke to each other.
    pub pair: Option<PairSetup>,
    /// CPU seconds per GB of AES-128-GCM alone on the proxy core, measured
    /// at the start of the run when a ratio adds it (`plus_aes`).
    pub aes_s_per_gb: Option<f64>,
    /// Which systems logged every request and which traced, if any did.
    pub observe: Option<ObserveSetup>,
    /// How system calls were counted, if the scenario counts them.
    pub syscalls: Option<SyscallSetup>,
    /// The reactor each ringway system ran on, as its log said the first
    /// time it started.
    pub reactors: Vec<Reactor>,
}

/// The reactor of one ringway system.
#[derive(Debug, Clone, Serialize)]
pub struct Reactor {
    /// The system.
    pub system: String,
    /// `--io-backend` it was given, if any.
    pub asked: Option<String>,
    /// `io_uring` or `epoll`, as its log said; `None` when it did not say
    /// (a ringway from before the epoll backend).
    pub said: Option<String>,
}

/// How the system-call round ran.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallSetup {
    /// The calls counted by name (the rest is "other").
    pub counted: Vec<String>,
    /// The measured window of each counted run, seconds.
    pub duration_s: f64,
    /// Calls named per system in the report.
    pub top: usize,
    /// Why nothing was counted, if nothing was.
    pub unavailable: Option<String>,
}

/// Which systems logged and traced.
#[derive(Debug, Clone, Serialize)]
pub struct ObserveSetup {
    /// Systems writing a JSON access log line per request.
    pub access_log: Vec<String>,
    /// ringway systems tracing, with their share of requests.
    pub tracing: Vec<(String, f64)>,
    /// The collector sink's address, when a system traced.
    pub collector: Option<String>,
}

/// How the halves of the pairs of a pair scenario spoke to each other.
#[derive(Debug, Clone, Serialize)]
pub struct PairSetup {
    /// The minted certificates, relative to the results directory, if the
    /// scenario has TLS.
    pub dir: Option<String>,
    /// Pairs whose halves spoke TLS 1.3.
    pub tls: Vec<String>,
    /// Of those, the ones whose inbound half required the outbound half's
    /// client certificate (mutual TLS).
    pub client_auth: Vec<String>,
    /// Pairs whose halves spoke plaintext.
    pub plaintext: Vec<String>,
}

/// How a TLS scenario ran.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSetup {
    /// The minted certificates, relative to the results directory.
    pub dir: String,
    /// Systems that required client certificates (the generator presented
    /// one to them).
    pub client_auth: Vec<String>,
    /// Systems measured in plaintext (`direct`, and variants with
    /// `tls = false`).
    pub plaintext: Vec<String>,
}

/// The guard as it ran (the scenario's `[guard]` with the command line's
/// overrides).
#[derive(Debug, Clone, Serialize)]
pub struct GuardSettings {
    /// Busy share under which a core counts as quiet, percent.
    pub quiet_pct: f64,
    /// Longest wait for quiet before a run, seconds (0: not checked).
    pub quiet_wait_s: f64,
    /// Other processes' share of the run's cores that disturbs a run.
    pub max_foreign_pct: f64,
    /// Lost clock ticks that disturb a max-throughput run.
    pub max_lost_pct: f64,
    /// Times a disturbed run is run again.
    pub retries: usize,
}

/// Resident memory of a system around the idle connections.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReading {
    /// The system.
    pub system: String,
    /// `http` (idle keep-alive connections after one request each) or
    /// `tcp` (idle client -> proxy -> origin pairs).
    pub mode: String,
    /// The round.
    pub round: usize,
    /// Connections asked for.
    pub asked: usize,
    /// Connections actually held.
    pub held: usize,
    /// RSS with no client connection, KiB.
    pub rss_before_kib: u64,
    /// RSS with `held` idle connections, KiB.
    pub rss_idle_kib: u64,
    /// Peak RSS of the round (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Why fewer connections than asked were held, if so.
    pub shortfall: Option<String>,
}

impl MemoryReading {
    /// Bytes per idle connection (per pair in TCP mode).
    pub fn bytes_per_connection(&self) -> Option<f64> {
        (self.held > 0).then(|| {
            (self.rss_idle_kib as f64 - self.rss_before_kib as f64) * 1024.0 / self.held as f64
        })
    }
}

/// The origins' count of requests against the generator's.
#[derive(Debug, Clone, Serialize)]
pub struct OriginCheck {
    /// Requests the origins answered.
    pub served: u64,
    /// Requests written by every load run, plus one per idle connection
    /// that carried one and per admission check the origin answered.
    pub sent: u64,
}
