//! The order of a comparison: origin, the load-side ceiling (`direct` at
//! max throughput), then interleaved rounds of every system, each started
//! fresh, swept over the offered rates, run at max throughput, loaded with
//! idle connections for the memory reading, and stopped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::configs::{self, Layout, Mode};
use super::idle;
use super::measure::{Measured, Runner};
use super::scenario::{Scenario, ScenarioMode};
use super::system::{missing, Binaries, Kind, Running};
use crate::admin::AdminClient;

/// Longest wait for the origin to accept connections.
const ORIGIN_READY: Duration = Duration::from_secs(10);

/// Everything measured, as `results.json` holds it.
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
    /// Memory readings, one per system per round.
    pub memory: Vec<MemoryReading>,
    /// Routing-table churn during ringway's rounds: configs posted and
    /// refused.
    pub churn: Vec<ChurnTally>,
    /// Requests the origin answered in all (its own count, read when it
    /// stopped), against what the load runs and the memory runs sent.
    pub origin_check: Option<OriginCheck>,
    /// What went wrong along the way (a system that would not start, a
    /// load run that failed).
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
    /// The load generator's cores.
    pub load_cores: String,
    /// The origin's cores.
    pub origin_cores: String,
    /// The system under test's core.
    pub proxy_core: usize,
    /// Origin answer body size.
    pub response_size: usize,
    /// Connections of each load run.
    pub connections: usize,
    /// Each measured window, seconds.
    pub duration_s: f64,
    /// Warm-up before each, seconds.
    pub warmup_s: f64,
    /// Rounds.
    pub runs: usize,
    /// Each system's generated config and log, relative to the results
    /// directory.
    pub files: Vec<String>,
}

/// Resident memory of a system around the idle connections.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReading {
    /// The system.
    pub system: String,
    /// The round.
    pub round: usize,
    /// Connections actually held.
    pub held: usize,
    /// RSS with no client connection (after the load runs), KiB.
    pub rss_before_kib: u64,
    /// RSS with `held` idle connections, KiB.
    pub rss_idle_kib: u64,
    /// Peak RSS of the round (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Why fewer connections than asked were held, if so.
    pub shortfall: Option<String>,
}

impl MemoryReading {
    /// Bytes per idle connection.
    pub fn bytes_per_connection(&self) -> Option<f64> {
        (self.held > 0).then(|| {
            (self.rss_idle_kib as f64 - self.rss_before_kib as f64) * 1024.0 / self.held as f64
        })
    }
}

/// The origin's count of requests against the generator's.
#[derive(Debug, Clone, Serialize)]
pub struct OriginCheck {
    /// Requests the origin answered.
    pub served: u64,
    /// Requests written by every load run plus one per idle connection.
    pub sent: u64,
}

/// Routing-table churn of one ringway round.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnTally {
    /// The round.
    pub round: usize,
    /// Configs accepted.
    pub applied: u64,
    /// Configs refused or not answered.
    pub failed: u64,
    /// The first failure.
    pub first_failure: Option<String>,
}

/// Options from the command line that reach the run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Results go in a new directory under this one.
    pub out: PathBuf,
    /// The ringway binary.
    pub ringway: PathBuf,
    /// The command line, for the report.
    pub command: String,
}

/// Runs `s`; returns the results and the directory they were written to.
pub fn run(s: &Scenario, opts: &Options) -> Result<(Results, PathBuf), String> {
    let load_cores =
        crate::load::parse_cores(&s.cores.load).map_err(|e| format!("cores.load: {e}"))?;
    crate::load::parse_cores(&s.cores.origin).map_err(|e| format!("cores.origin: {e}"))?;
    let started = command_line("date", &["-u", "+%Y%m%d-%H%M%S"]);
    let dir = opts.out.join(format!("{}-{}", s.name, started));
    for sub in ["raw", "systems"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    // Absolute: the systems get paths inside it, and nginx reads a relative
    // one against its own prefix.
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let mode = match s.mode {
        ScenarioMode::Http => Mode::Http,
        ScenarioMode::Tcp => Mode::Tcp,
    };
    let bins = Binaries::find(opts.ringway.clone());
    let mut kinds = Vec::new();
    let mut skipped = Vec::new();
    for name in &s.systems {
        let kind = Kind::from_str(name).map_err(|e| format!("systems: {e:?}"))?;
        if kinds.contains(&kind) {
            continue;
        }
        match missing(kind, &bins, mode) {
            Some(why) => {
                eprintln!("compare: skipping {name}: {why}");
                skipped.push((name.clone(), why));
            }
            None => kinds.push(kind),
        }
    }
    // `direct` first: every other figure is read against it.
    kinds.sort_by_key(|k| *k != Kind::Direct);
    let bench = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    crate::origin::raise_fd_limit();

    let origin_addr = free_port()?;
    let mut origin = Origin::start(&bench, s, origin_addr, &dir)?;
    let runner = Runner {
        bench: &bench,
        scenario: s,
        load_cores: &load_cores,
        dir: &dir,
    };
    let layout_of = |kind: Kind, listen: SocketAddr, admin: SocketAddr| Layout {
        mode,
        proxy_core: s.cores.proxy,
        listen,
        origin: origin_addr,
        admin,
        max_connections: s.memory.idle_connections + s.load.connections,
        dir: dir.join("systems").join(kind.name()),
    };
    // What a round runs: each system once, and with churn ringway twice,
    // quiet then churning, so the report sets the two side by side.
    let mut entries = Vec::new();
    for &kind in &kinds {
        let with_churn = s.churn.is_some() && kind == Kind::Ringway;
        for churning in [false, true].into_iter().take(1 + usize::from(with_churn)) {
            entries.push(Entry {
                kind,
                churning,
                listen: free_port()?,
                admin: free_port()?,
            });
        }
    }
    let mut results = Results {
        scenario: s.name.clone(),
        description: s.description.clone(),
        mode: mode.name().into(),
        started: started.clone(),
        command: opts.command.clone(),
        setup: Setup {
            cpus: thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: command_line("uname", &["-r"]),
            versions: versions(&bins, &kinds),
            load_cores: s.cores.load.clone(),
            origin_cores: s.cores.origin.clone(),
            proxy_core: s.cores.proxy,
            response_size: s.origin.response_size,
            connections: s.load.connections,
            duration_s: s.load.duration.as_secs_f64(),
            warmup_s: s.load.warmup.as_secs_f64(),
            runs: s.runs,
            files: Vec::new(),
        },
        systems: entries.iter().map(Entry::name).collect(),
        skipped,
        ceiling: None,
        runs: Vec::new(),
        memory: Vec::new(),
        churn: Vec::new(),
        origin_check: None,
        problems: Vec::new(),
    };

    // The load side alone: origin and generator at full speed.
    if kinds.contains(&Kind::Direct) {
        eprintln!("compare: load-side ceiling (direct, max throughput)");
        let layout = layout_of(Kind::Direct, origin_addr, origin_addr);
        match Running::start(Kind::Direct, &layout, &bins) {
            Ok(direct) => {
                match runner.measure(&direct, "direct", "ceiling-direct", None, None) {
                    Ok(m) => results.ceiling = Some(m),
                    Err(e) => results.problems.push(format!("ceiling: {e}")),
                }
                let _ = direct.stop();
            }
            Err(e) => results.problems.push(format!("direct: {e}")),
        }
    }

    for round in 0..s.runs {
        for entry in &entries {
            let kind = &entry.kind;
            let name = entry.name();
            let layout = layout_of(*kind, entry.listen, entry.admin);
            eprintln!("compare: round {}/{}: {name}", round + 1, s.runs);
            let system = match Running::start(*kind, &layout, &bins) {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("round {}: {name} did not start: {e}", round + 1);
                    eprintln!("compare: {msg}");
                    results.problems.push(msg);
                    continue;
                }
            };
            if round == 0 && !entry.churning {
                for path in [system.config_path(), system.log_path()]
                    .into_iter()
                    .flatten()
                {
                    let shown = path.strip_prefix(&dir).unwrap_or(path);
                    results.setup.files.push(shown.display().to_string());
                }
            }
            let churn = match &s.churn {
                Some(c) if entry.churning => Some(Churner::start(&layout, c.interval)),
                _ => None,
            };
            // The sweep's open-loop runs, then the closed-loop max run.
            let max = s.sweep.max_throughput.then_some(None);
            for rate in s.sweep.rates.iter().copied().map(Some).chain(max) {
                let what = rate.map_or_else(|| "max".to_string(), |r| format!("rate{r}"));
                let label = format!("r{}-{name}-{what}", round + 1);
                match runner.measure(&system, &name, &label, Some(round), rate) {
                    Ok(m) => results.runs.push(m),
                    Err(e) => results.problems.push(e),
                }
            }
            if let Some(c) = churn {
                results.churn.push(c.stop(round));
            }
            // The memory run once per system: a churning ringway is the
            // same process as the quiet one.
            if s.memory.idle_connections > 0 && *kind != Kind::Direct && !entry.churning {
                let before = system.rss_kib();
                let (held, shortfall) = idle::hold(
                    system.target(),
                    s.memory.idle_connections,
                    mode == Mode::Http,
                );
                let rss_idle_kib = system.rss_kib();
                let n = held.len();
                drop(held);
                results.memory.push(MemoryReading {
                    system: kind.name().into(),
                    round,
                    held: n,
                    rss_before_kib: before,
                    rss_idle_kib,
                    peak_rss_kib: system.peak_rss_kib(),
                    shortfall,
                });
            }
            if let Err(e) = system.stop() {
                results
                    .problems
                    .push(format!("round {}: stopping {name}: {e}", round + 1));
            }
        }
    }
    origin.stop();
    if mode == Mode::Http {
        let served = std::fs::read_to_string(dir.join("origin.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("requests").and_then(serde_json::Value::as_u64));
        let sent = results
            .ceiling
            .iter()
            .chain(&results.runs)
            .map(|m| m.sent)
            .sum::<u64>()
            + results.memory.iter().map(|m| m.held as u64).sum::<u64>();
        match served {
            Some(served) => results.origin_check = Some(OriginCheck { served, sent }),
            None => results
                .problems
                .push("the origin did not report what it served".into()),
        }
    }
    Ok((results, dir))
}

/// One system of a round.
#[derive(Debug)]
struct Entry {
    kind: Kind,
    /// A new routing table is posted while it runs (ringway only).
    churning: bool,
    listen: SocketAddr,
    admin: SocketAddr,
}

impl Entry {
    /// Its name in the results: the system's, or `ringway-churn`.
    fn name(&self) -> String {
        if self.churning {
            format!("{}-churn", self.kind.name())
        } else {
            self.kind.name().to_string()
        }
    }
}

/// The built-in origin, a child process.
struct Origin {
    child: Child,
}

impl Origin {
    fn start(bench: &Path, s: &Scenario, addr: SocketAddr, dir: &Path) -> Result<Self, String> {
        let file = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map_err(|e| format!("cannot create {}: {e}", dir.join(name).display()))
        };
        let mode = match s.mode {
            ScenarioMode::Http => "http",
            ScenarioMode::Tcp => "tcp",
        };
        let child = Command::new(bench)
            .arg("origin")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--mode", mode, "--response-size"])
            .arg(s.origin.response_size.to_string())
            .arg("--cores")
            .arg(&s.cores.origin)
            .stdin(Stdio::null())
            .stdout(file("origin.json")?)
            .stderr(file("origin.log")?)
            .spawn()
            .map_err(|e| format!("cannot start the origin: {e}"))?;
        let mut origin = Self { child };
        let since = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if let Ok(Some(status)) = origin.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("origin.log")).unwrap_or_default();
                return Err(format!("the origin exited ({status}): {}", log.trim()));
            }
            if since.elapsed() > ORIGIN_READY {
                origin.stop();
                return Err(format!(
                    "the origin did not listen on {addr} in {ORIGIN_READY:?}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(origin)
    }

    /// SIGTERM, then its report is in `origin.json`.
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Posts a new ringway config every `interval` (a route added or removed
/// in turn, so every post compiles and publishes a new table) until stopped.
struct Churner {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, u64, Option<String>)>,
}

impl Churner {
    fn start(layout: &Layout, interval: Duration) -> Self {
        let base = configs::ringway(layout);
        let admin = layout.admin;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut client = AdminClient::new(admin, Duration::from_secs(5));
            let (mut applied, mut failed, mut first) = (0u64, 0u64, None);
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let mut text = base.clone();
                if n % 2 == 1 {
                    text.push_str(&format!(
                        "\n[[listeners.routes]]\nname = \"churn\"\npath = \"/churn/{n}\"\ndirect = {{ status = 200, body = \"churn\\n\" }}\n"
                    ));
                }
                match client.request("POST", "/config", text.as_bytes()) {
                    Ok(r) if r.status == 200 => applied += 1,
                    Ok(r) => {
                        failed += 1;
                        first.get_or_insert_with(|| format!("{}: {}", r.status, r.body.trim()));
                    }
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
                thread::sleep(interval);
            }
            (applied, failed, first)
        });
        Self { stop, thread }
    }

    fn stop(self, round: usize) -> ChurnTally {
        self.stop.store(true, Ordering::Relaxed);
        let (applied, failed, first_failure) =
            self.thread
                .join()
                .unwrap_or((0, 0, Some("the churn thread panicked".into())));
        ChurnTally {
            round,
            applied,
            failed,
            first_failure,
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// The first line a command prints, or `?`.
fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `--version` lines of the binaries in the run.
fn versions(bins: &Binaries, kinds: &[Kind]) -> Vec<String> {
    let mut v = Vec::new();
    for kind in kinds {
        let line = match kind {
            Kind::Direct => continue,
            Kind::Ringway => first_line(Command::new(&bins.ringway).arg("--version")),
            Kind::Nginx => bins
                .nginx
                .as_ref()
                .map(|p| first_line(Command::new(p).arg("-v")))
                .unwrap_or_default(),
            Kind::Haproxy => bins
                .haproxy
                .as_ref()
                .map(|p| first_line(Command::new(p).arg("-v")))
                .unwrap_or_default(),
        };
        v.push(line);
    }
    v
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            // nginx prints its version on stderr.
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
