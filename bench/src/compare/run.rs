//! The order of a comparison: origins, the load-side ceiling (`direct` at
//! max throughput), then interleaved rounds of every system (`direct`
//! first, the others in an order that rotates by one each round, see
//! [`round_order`]), each started fresh, swept over the offered rates, run at max throughput (and once
//! more under `perf` in the last round with `--profile`), loaded with idle
//! connections for the memory reading, and stopped. Before every load run
//! the quiet-machine guard waits for quiet cores, and a run it finds
//! disturbed is run again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

use ringway_kit::ports::free_addr;

use self::counting::syscall_round;
use self::observing::Turn;
use self::profiling::profile_run;
use self::tls::{admissions, pair_setup};
use super::aes;
use super::churn::{ChurnBook, ChurnPlan};
use super::configs::{self, Layout, ListenerTls, Mode, Observe, Split, Table, Tracing, Tuning};
use super::faults;
use super::guard;
use super::idle;
use super::measure::{Measured, Runner};
use super::observe::Collector;
use super::origins::Origins;
use super::pki::Pki;
use super::policy::Refusals;
use super::reactor;
use super::report::{self, RatioPair};
use super::results::{
    GuardSettings, MemoryReading, ObserveSetup, OriginCheck, Reactor, Results, Setup, SyscallSetup,
    TlsSetup,
};
use super::scenario::{Churn, Scenario, ScenarioMode};
use super::sidecar::{self, Ends};
use super::syscalls::Counter;
use super::system::{missing, Binaries, Kind, Running};

/// Open files this process needs besides the idle connections it holds:
/// the admin clients, logs, pipes to its children.
const OWN_SPARE_FILES: u64 = 256;

/// Options from the command line that reach the run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Results go in a new directory under this one.
    pub out: PathBuf,
    /// The ringway binary.
    pub ringway: PathBuf,
    /// The baseline's ringway binary.
    pub baseline: Option<PathBuf>,
    /// `perf`, when `--profile` was given.
    pub perf: Option<PathBuf>,
    /// The quiet-machine guard.
    pub guard: GuardSettings,
    /// The command line, for the report.
    pub command: String,
}

/// One system of a round.
#[derive(Debug)]
pub(super) struct Entry {
    /// Its name in the results: a base system's, or a variant's.
    pub(super) name: String,
    pub(super) kind: Kind,
    table: Table,
    splice: bool,
    churn: Option<Churn>,
    tuning: Tuning,
    /// Clients speak TLS to it.
    tls: bool,
    /// With `tls`: it requires client certificates, and the generator
    /// presents one.
    client_auth: bool,
    listen: SocketAddr,
    pub(super) admin: SocketAddr,
    /// A sidecar pair's inbound half (`pair = true`).
    inbound: Option<Ends>,
    /// It writes a JSON access log line per request.
    access_log: bool,
    /// ringway: the share of requests it traces, spans going to the
    /// collector sink.
    tracing: Option<f64>,
}

impl Entry {
    /// Whether its turns leave something for [`observe`] to check.
    fn observed(&self) -> bool {
        self.access_log || self.tracing.is_some()
    }
}

/// What every step of the run reads.
pub(super) struct Ctx<'a> {
    pub(super) s: &'a Scenario,
    pub(super) opts: &'a Options,
    bins: Binaries,
    pub(super) mode: Mode,
    pub(super) dir: PathBuf,
    origins: Vec<SocketAddr>,
    pub(super) run_cores: Vec<usize>,
    pub(super) load_cores: Vec<usize>,
    /// Idle connections of the memory run in the scenario's mode, and idle
    /// TCP pairs, after the open-file limit had its say.
    idle: usize,
    pairs: usize,
    /// The request each idle connection carries first: the scenario's host
    /// and path, so that it matches the route the load runs use.
    request: Vec<u8>,
    /// A TLS scenario's certificates, minted for this run.
    pki: Option<Pki>,
    /// The OTLP/HTTP collector sink, when a system traces.
    collector: Option<Collector>,
}

/// Runs `s`; returns the results and the directory they were written to.
pub fn run(s: &Scenario, opts: &Options) -> Result<(Results, PathBuf), String> {
    let load_cores =
        crate::load::parse_cores(&s.cores.load).map_err(|e| format!("cores.load: {e}"))?;
    let origin_cores =
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
    let bins = Binaries::find(opts.ringway.clone(), opts.baseline.clone());
    let (entries, skipped) = entries(s, &bins, mode)?;
    let bench = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let origin_addrs = (0..s.origin.count).map(|_| free_addr()).collect();
    let mut run_cores: Vec<usize> = load_cores.iter().chain(&origin_cores).copied().collect();
    run_cores.push(s.cores.proxy);
    run_cores.extend(s.cores.control);
    run_cores.sort_unstable();
    run_cores.dedup();

    let mut notes = Vec::new();
    let (idle, pairs) = open_file_budget(s, mode, &mut notes);
    let (counter, syscalls) = syscall_counter(s, &entries, &mut notes);
    let collector = entries
        .iter()
        .any(|e| e.tracing.is_some())
        .then(|| Collector::start(origin_cores.first().copied()))
        .transpose()?;
    if let Some(sample) = s.tracing_sample {
        let untraced: Vec<&str> = entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Nginx | Kind::Haproxy))
            .map(|e| e.name.as_str())
            .collect();
        if !untraced.is_empty() {
            notes.push(format!(
                "{} ran without tracing: the scenario traces {sample} of the requests, but \
                 nginx (no OpenTelemetry module in Debian's packages) and HAProxy 2.6 (an \
                 OpenTracing filter with no OTLP tracer plugin) export no spans here",
                untraced.join(", ")
            ));
        }
    }
    let pki = s.tls.then(|| Pki::mint(&dir.join("tls"))).transpose()?;
    // On the proxy core, before anything else runs there.
    let aes = s.ratios.iter().any(|r| r.plus_aes).then(|| {
        eprintln!(
            "compare: what AES-128-GCM alone costs on core {}",
            s.cores.proxy
        );
        aes::seconds_per_gb(s.cores.proxy)
    });
    // A fault scenario starts fresh origins for each run instead, and so
    // does a rollout (with a fresh ringway, whose rollout starts over).
    let faulty = !s.faults.is_empty() || s.rollout.is_some();
    let origins = if faulty {
        None
    } else {
        Some(Origins::start(&bench, s, origin_addrs, &dir, &[])?)
    };
    let ctx = Ctx {
        s,
        opts,
        mode,
        dir: dir.clone(),
        origins: origins
            .as_ref()
            .map(|o| o.addrs().to_vec())
            .unwrap_or_default(),
        run_cores,
        load_cores,
        idle,
        pairs,
        request: crate::load::plan::http_request("GET", &s.load.path, &s.load.host, &[], 0, true),
        bins,
        pki,
        collector,
    };
    let clk_tck = ringway_kit::procfs::clock_ticks().0;
    let mut results = Results {
        scenario: s.name.clone(),
        description: s.description.clone(),
        mode: mode.name().into(),
        started: started.clone(),
        command: opts.command.clone(),
        setup: Setup {
            cpus: thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: command_line("uname", &["-r"]),
            versions: versions(&ctx.bins, &entries),
            tree: tree(),
            load_cores: s.cores.load.clone(),
            origin_cores: s.cores.origin.clone(),
            proxy_core: s.cores.proxy,
            control_core: s.cores.control,
            response_size: s.origin.response_size,
            origins: s.origin.count,
            connections: s.load.connections,
            duration_s: s.load.duration.as_secs_f64(),
            warmup_s: s.load.warmup.as_secs_f64(),
            runs: s.runs,
            clk_tck,
            guard: opts.guard.clone(),
            files: Vec::new(),
            new_connection: s.load.new_connection,
            pair: s.pair.then(|| pair_setup(s, &entries)),
            aes_s_per_gb: aes.as_ref().and_then(|a| a.as_ref().ok().copied()),
            syscalls,
            reactors: Vec::new(),
            observe: entries.iter().any(Entry::observed).then(|| ObserveSetup {
                access_log: entries
                    .iter()
                    .filter(|e| e.access_log)
                    .map(|e| e.name.clone())
                    .collect(),
                tracing: entries
                    .iter()
                    .filter_map(|e| Some((e.name.clone(), e.tracing?)))
                    .collect(),
                collector: ctx.collector.as_ref().map(|c| c.addr().to_string()),
            }),
            tls: (s.tls && !s.pair).then(|| TlsSetup {
                dir: "tls/".into(),
                client_auth: entries
                    .iter()
                    .filter(|e| e.client_auth)
                    .map(|e| e.name.clone())
                    .collect(),
                plaintext: entries
                    .iter()
                    .filter(|e| !e.tls)
                    .map(|e| e.name.clone())
                    .collect(),
            }),
        },
        systems: entries.iter().map(|e| e.name.clone()).collect(),
        skipped,
        ceiling: None,
        runs: Vec::new(),
        discarded: Vec::new(),
        memory: Vec::new(),
        churn: Vec::new(),
        profiles: Vec::new(),
        syscalls: Vec::new(),
        ratios: Vec::new(),
        origin_check: None,
        admissions: Vec::new(),
        observed: Vec::new(),
        refusals: Vec::new(),
        rollouts: Vec::new(),
        faults: s.faults.iter().map(faults::describe).collect(),
        notes,
        problems: aes
            .and_then(Result::err)
            .map(|e| format!("no AES-GCM figure, so no ratio that adds it: {e}"))
            .into_iter()
            .collect(),
    };
    let Some(mut origins) = origins else {
        faults::rounds(&ctx, &entries, &bench, clk_tck, &mut results);
        return Ok((results, dir));
    };
    let runner = Runner {
        bench: &bench,
        scenario: s,
        load_cores: &ctx.load_cores,
        run_cores: &ctx.run_cores,
        origins: &origins,
        clk_tck,
        dir: &dir,
        faults: false,
    };
    // Requests of runs that are not in the results (the profile runs).
    let mut unmeasured_sent = 0;

    // The load side alone: origins and generator at full speed.
    if s.sweep.max_throughput && entries.iter().any(|e| e.kind == Kind::Direct) {
        eprintln!("compare: load-side ceiling (direct, max throughput)");
        let layout = ctx.layout(&entries[0], mode, 0);
        match Running::start(Kind::Direct, &layout, &ctx.bins) {
            Ok(direct) => {
                let run = Run {
                    name: "direct",
                    label: "ceiling-direct",
                    round: None,
                    rate: None,
                };
                results.ceiling = guarded(&ctx, &runner, &direct, &run, None, &mut results);
                let _ = direct.stop();
            }
            Err(e) => results.problems.push(format!("direct: {e}")),
        }
    }

    let rates: Vec<Option<f64>> = s
        .sweep
        .rates
        .iter()
        .copied()
        .map(Some)
        .chain(s.sweep.max_throughput.then_some(None))
        .collect();
    for round in 0..s.runs {
        for entry in round_order(&entries, round) {
            eprintln!("compare: round {}/{}: {}", round + 1, s.runs, entry.name);
            if !rates.is_empty() || (ctx.idle > 0 && entry.kind != Kind::Direct) {
                unmeasured_sent += round_of(&ctx, &runner, entry, round, &rates, &mut results);
            }
            if ctx.pairs > 0 && entry.kind != Kind::Direct && entry.churn.is_none() {
                tcp_pairs(&ctx, entry, round, &mut results);
            }
        }
    }
    if let Some(counter) = &counter {
        // The same runs, in a round of their own: counting slows every
        // system call on the machine, so no measured run carries it.
        let mut short = s.clone();
        short.load.duration = s.syscalls.duration.unwrap_or(s.load.duration);
        let counting = Runner {
            scenario: &short,
            ..runner
        };
        unmeasured_sent += syscall_round(&ctx, &counting, counter, &entries, &rates, &mut results);
    }
    let served = origins.stop();
    if mode == Mode::Http {
        let sent = results
            .ceiling
            .iter()
            .chain(&results.runs)
            .chain(&results.discarded)
            .map(|m| m.sent)
            .sum::<u64>()
            + unmeasured_sent
            + results.memory.iter().map(|m| m.held as u64).sum::<u64>();
        match served {
            Some(served) => results.origin_check = Some(OriginCheck { served, sent }),
            None => results
                .problems
                .push("an origin did not report what it served".into()),
        }
    }
    results.ratios = report::ratio_tables(&results, &ratio_pairs(s, &results));
    Ok((results, dir))
}

/// One system's turn in a round, in the scenario's mode: started, swept,
/// run at max throughput (and profiled in the last round), its table
/// churned during each run if it churns, its memory read, stopped. Returns
/// the requests of runs that are not in the results (the profile run).
fn round_of(
    ctx: &Ctx<'_>,
    runner: &Runner<'_>,
    entry: &Entry,
    round: usize,
    rates: &[Option<f64>],
    results: &mut Results,
) -> u64 {
    let name = &entry.name;
    let mode = ctx.mode;
    let layout = ctx.layout(entry, mode, ctx.idle);
    let Some(system) = start(ctx, entry, &layout, round, results) else {
        return 0;
    };
    let turn = Turn::begin(ctx, results);
    let mut unmeasured_sent = 0;
    if round == 0 {
        unmeasured_sent += admissions(ctx, entry, &system, results);
    }
    let mut book = entry.churn.as_ref().map(|c| {
        let plan = ChurnPlan {
            admin: entry.admin,
            mode: c.mode,
            interval: c.interval,
            config: configs::ringway(&layout),
            origins: ctx.origins.clone(),
            core: ctx.load_cores.first().copied(),
        };
        ChurnBook::new(plan, name, round)
    });
    let errors_before: u64 = results.runs.iter().map(|m| m.errors).sum();
    for &rate in rates {
        let what = rate.map_or_else(|| "max".to_string(), |r| format!("rate{r}"));
        let label = format!("r{}-{name}-{what}", round + 1);
        let run = Run {
            name,
            label: &label,
            round: Some(round),
            rate,
        };
        if let Some(m) = guarded(ctx, runner, &system, &run, book.as_mut(), results) {
            results.runs.push(m);
        }
    }
    if let (Some(perf), true) = (&ctx.opts.perf, round + 1 == ctx.s.runs) {
        if entry.kind != Kind::Direct && ctx.s.sweep.max_throughput {
            let (p, sent) = profile_run(ctx, runner, &system, entry, perf, book.as_mut());
            unmeasured_sent += sent;
            results.profiles.push(p);
        }
    }
    if let Some(book) = book {
        let churn = book.finish();
        results.problems.extend(churn.problems());
        let errors: u64 = results.runs.iter().map(|m| m.errors).sum::<u64>() - errors_before;
        if errors > 0 {
            results.problems.push(format!(
                "round {}: {name}: {errors} request errors while its table churned",
                round + 1
            ));
        }
        results.churn.push(churn);
    }
    // The memory run, except for churning systems: the same process as
    // their quiet counterpart.
    if ctx.idle > 0 && entry.kind != Kind::Direct && entry.churn.is_none() {
        // Over HTTP each connection carries one request first; a TCP
        // scenario's origin is a sink that never answers.
        let request = (mode == Mode::Http).then_some(ctx.request.as_slice());
        results.memory.push(memory_reading(
            &system, name, mode, round, ctx.idle, request,
        ));
    }
    // A route policy that acted turns the round's figures into those of
    // its refusals.
    if entry.kind.is_ringway() && !entry.tuning.route.is_empty() {
        let refusals = Refusals::read(entry.admin, name, round);
        results.problems.extend(refusals.problem());
        results.refusals.push(refusals);
    }
    if entry.observed() {
        turn.observe(ctx, entry, system, round, unmeasured_sent, results);
    } else {
        stop(system, name, round, results);
    }
    unmeasured_sent
}

/// What names a load run.
struct Run<'a> {
    /// The system's name in the results.
    name: &'a str,
    /// The raw file's name.
    label: &'a str,
    /// The round, or `None` for the ceiling run.
    round: Option<usize>,
    /// Offered rate, or `None` for max throughput.
    rate: Option<f64>,
}

impl Ctx<'_> {
    /// The layout of `entry` in `mode`, holding `idle` idle connections (a
    /// pair's outbound half's: the one the load goes to).
    pub(super) fn layout(&self, entry: &Entry, mode: Mode, idle: usize) -> Layout {
        let single = self.single_layout(entry, mode, idle);
        match entry.inbound {
            Some(ends) => sidecar::split(single, ends).0,
            None => single,
        }
    }

    /// The layout of a pair's inbound half; `None` for a single system.
    fn inbound_layout(&self, entry: &Entry, mode: Mode, idle: usize) -> Option<Layout> {
        let ends = entry.inbound?;
        Some(sidecar::split(self.single_layout(entry, mode, idle), ends).1)
    }

    /// The layout `entry` has as one process.
    fn single_layout(&self, entry: &Entry, mode: Mode, idle: usize) -> Layout {
        Layout {
            mode,
            proxy_core: self.s.cores.proxy,
            control_core: self.s.cores.control,
            listen: entry.listen,
            origins: self.origins.clone(),
            admin: entry.admin,
            max_connections: idle + self.s.load.connections,
            concurrent: self.s.load.connections,
            dir: self.dir.join("systems").join(&entry.name),
            table: entry.table,
            splice: entry.splice,
            tuning: entry.tuning.clone(),
            tls: match (&self.pki, entry.tls) {
                (Some(pki), true) => Some(ListenerTls {
                    pki: pki.clone(),
                    client_auth: entry.client_auth,
                }),
                _ => None,
            },
            upstream_tls: None,
            observe: Observe {
                access_log: entry.access_log,
                tracing: entry
                    .tracing
                    .zip(self.collector.as_ref())
                    .map(|(sample, c)| Tracing {
                        collector: c.addr(),
                        sample,
                    }),
            },
        }
    }
}

/// The system-call counter, when the scenario counts and a system other
/// than `direct` runs, and what the results say of it; without `perf` (or
/// when it cannot count here) a note says why and the report shows n/a.
fn syscall_counter(
    s: &Scenario,
    entries: &[Entry],
    notes: &mut Vec<String>,
) -> (Option<Counter>, Option<SyscallSetup>) {
    if !s.syscalls.count || entries.iter().all(|e| e.kind == Kind::Direct) {
        return (None, None);
    }
    let mut setup = SyscallSetup {
        counted: Vec::new(),
        duration_s: s.syscalls.duration.unwrap_or(s.load.duration).as_secs_f64(),
        top: s.syscalls.top,
        unavailable: None,
    };
    match Counter::find() {
        Ok(counter) => {
            setup.counted = counter.named().iter().map(|n| n.to_string()).collect();
            (Some(counter), Some(setup))
        }
        Err(why) => {
            notes.push(format!(
                "system calls were not counted (n/a in the report): {why}"
            ));
            setup.unavailable = Some(why);
            (None, Some(setup))
        }
    }
}

/// The systems of a round, `direct` first, and the ones skipped with why.
#[allow(clippy::type_complexity)]
fn entries(
    s: &Scenario,
    bins: &Binaries,
    mode: Mode,
) -> Result<(Vec<Entry>, Vec<(String, String)>), String> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut skipped = Vec::new();
    for name in &s.systems {
        if entries.iter().any(|e| &e.name == name) {
            continue;
        }
        let variant = s.variant(name);
        let base = variant.map_or(name.as_str(), |v| v.of.as_str());
        let kind: Kind = base.parse().map_err(|e| format!("systems: {e}"))?;
        if let Some(why) = missing(kind, bins, mode) {
            eprintln!("compare: skipping {name}: {why}");
            skipped.push((name.clone(), why));
            continue;
        }
        // `direct` is the origin, which is plaintext.
        let tls = s.tls && kind != Kind::Direct && variant.and_then(|v| v.tls) != Some(false);
        entries.push(Entry {
            name: name.clone(),
            kind,
            table: Table {
                routes: variant.map_or(0, |v| v.routes),
                clusters: variant.map_or(0, |v| v.clusters),
            },
            splice: variant.is_some_and(|v| v.splice),
            churn: variant.and_then(|v| v.churn.clone()),
            tuning: Tuning {
                split: s.rollout.as_ref().filter(|_| kind.is_ringway()).map(split),
                ..variant.map(tuning).unwrap_or_default()
            },
            tls,
            client_auth: tls && variant.and_then(|v| v.client_auth).unwrap_or(s.client_auth),
            listen: free_addr(),
            admin: free_addr(),
            inbound: (s.pair && kind != Kind::Direct).then(|| Ends {
                listen: free_addr(),
                admin: free_addr(),
            }),
            access_log: kind != Kind::Direct
                && variant.and_then(|v| v.access_log).unwrap_or(s.access_log),
            tracing: kind
                .is_ringway()
                .then(|| variant.and_then(|v| v.tracing_sample).or(s.tracing_sample))
                .flatten(),
        });
    }
    // `direct` first: every other figure is read against it.
    entries.sort_by_key(|e| e.kind != Kind::Direct);
    Ok((entries, skipped))
}

/// A variant's own settings, as the generated configs take them.
fn tuning(v: &super::scenario::Variant) -> Tuning {
    let haproxy = v.haproxy.clone().unwrap_or_default();
    let nginx = v.nginx.clone().unwrap_or_default();
    Tuning {
        cluster: v
            .cluster
            .as_ref()
            .map(Tuning::cluster_lines)
            .unwrap_or_default(),
        route: v
            .route
            .as_ref()
            .map(Tuning::cluster_lines)
            .unwrap_or_default(),
        split: None,
        haproxy_backend: haproxy.backend,
        haproxy_server: haproxy.server.trim().to_owned(),
        nginx_upstream: nginx.upstream,
        nginx_server: nginx.server.trim().to_owned(),
        nginx_location: nginx.location,
        io_backend: v.io_backend,
    }
}

/// ringway's split for the scenario's `[rollout]`: its route's `rollout`
/// table names the two clusters the bench writes.
fn split(r: &super::scenario::Rollout) -> Split {
    let mut table = r.settings.clone();
    table.insert("canary".into(), configs::CANARY.into());
    table.insert("stable".into(), configs::STABLE.into());
    Split {
        stable: r.stable_origin,
        canary: r.canary_origin,
        canary_weight: r.canary_weight,
        rollout: Tuning::inline(&table),
    }
}

/// The systems of round `round`: `direct` first (every other figure is
/// read against it), then the others rotated by `round` places.
///
/// A fixed order would put whatever the place in a round does to a run (the
/// previous system's sockets still closing, caches the previous run warmed,
/// the host's load drifting over the round) on the same side of every
/// ratio. Rotating gives every system every place equally often over a
/// multiple of their number of rounds, so such an effect spreads over both
/// sides of a ratio instead.
pub(super) fn round_order(entries: &[Entry], round: usize) -> Vec<&Entry> {
    let (direct, others): (Vec<&Entry>, Vec<&Entry>) =
        entries.iter().partition(|e| e.kind == Kind::Direct);
    let mut others = others;
    if !others.is_empty() {
        let by = round % others.len();
        others.rotate_left(by);
    }
    direct.into_iter().chain(others).collect()
}

/// The ratio tables to compute: the scenario's (those that add AES to the
/// denominator only when it was measured), and ringway against the
/// baseline when both ran (at most 1.02x: a change may cost that much).
fn ratio_pairs(s: &Scenario, r: &Results) -> Vec<RatioPair> {
    let mut pairs: Vec<RatioPair> = s
        .ratios
        .iter()
        .filter(|x| !x.plus_aes || r.setup.aes_s_per_gb.is_some())
        .map(|x| RatioPair {
            system: x.system.clone(),
            against: x.against.clone(),
            bar: x.bar,
            plus: x.plus_aes.then_some(r.setup.aes_s_per_gb).flatten(),
        })
        .collect();
    let ran = |n: &str| r.systems.iter().any(|x| x == n);
    if ran("ringway")
        && ran("baseline")
        && !pairs
            .iter()
            .any(|p| p.system == "ringway" && p.against == "baseline" && p.plus.is_none())
    {
        pairs.push(RatioPair {
            system: "ringway".into(),
            against: "baseline".into(),
            bar: Some(report::BASELINE_BAR),
            plus: None,
        });
    }
    pairs
}

/// Raises the open-file limit for the memory runs and returns how many
/// idle connections and TCP pairs fit within it (a note says so when fewer
/// than asked).
fn open_file_budget(s: &Scenario, mode: Mode, notes: &mut Vec<String>) -> (usize, usize) {
    let conns = s.load.connections;
    let layout = |mode: Mode, n: usize| Layout {
        mode,
        proxy_core: 0,
        control_core: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        origins: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_connections: n + conns,
        concurrent: conns,
        dir: PathBuf::new(),
        table: Table::default(),
        splice: false,
        tuning: Tuning::default(),
        tls: None,
        upstream_tls: None,
        observe: Observe::default(),
    };
    // The system's files, and this process's: one per idle connection.
    let files = |mode: Mode| {
        move |n: usize| {
            configs::open_files(&layout(mode, n)).max((n + conns) as u64 + OWN_SPARE_FILES)
        }
    };
    let (idle, pairs) = (s.memory.idle_connections, s.memory.idle_tcp_pairs);
    let needed = files(mode)(idle).max(files(Mode::Tcp)(pairs));
    let limit = idle::raise_open_files(needed);
    let mut fit = |asked: usize, mode: Mode, what: &str| {
        let n = idle::largest_within(asked, limit, files(mode));
        if n < asked {
            notes.push(format!(
                "{asked} {what} were asked for, but the open-file limit is {limit} (the hard \
                 RLIMIT_NOFILE, which only a process with CAP_SYS_RESOURCE may raise) and each \
                 system needs {} files for them: the memory run held at most {n}",
                files(mode)(asked)
            ));
        }
        n
    };
    let what = match mode {
        Mode::Http => "idle HTTP connections",
        Mode::Tcp => "idle TCP pairs",
    };
    (
        fit(idle, mode, what),
        fit(pairs, Mode::Tcp, "idle TCP pairs"),
    )
}

/// Starts `entry`; a failure is a problem of the round.
pub(super) fn start(
    ctx: &Ctx<'_>,
    entry: &Entry,
    layout: &Layout,
    round: usize,
    results: &mut Results,
) -> Option<Running> {
    let started = match ctx.inbound_layout(entry, layout.mode, 0) {
        Some(inbound) => Running::start_pair(entry.kind, layout, &inbound, &ctx.bins),
        None => Running::start(entry.kind, layout, &ctx.bins),
    };
    match started {
        Ok(system) => {
            if round == 0 && entry.kind.is_ringway() {
                reactor_seen(entry, &system, results);
            }
            if round == 0 {
                for path in system.files() {
                    let shown = path.strip_prefix(&ctx.dir).unwrap_or(path);
                    let shown = shown.display().to_string();
                    if !results.setup.files.contains(&shown) {
                        results.setup.files.push(shown);
                    }
                }
            }
            Some(system)
        }
        Err(e) => {
            let msg = format!("round {}: {} did not start: {e}", round + 1, entry.name);
            eprintln!("compare: {msg}");
            results.problems.push(msg);
            None
        }
    }
}

/// Which reactor a ringway system says it runs on, the first time it is
/// started; a variant that asked for one and runs on the other is a
/// problem (its figures would be the other reactor's).
fn reactor_seen(entry: &Entry, system: &Running, results: &mut Results) {
    if results
        .setup
        .reactors
        .iter()
        .any(|r| r.system == entry.name)
    {
        return;
    }
    let said = system.log().and_then(reactor::said);
    let asked = entry.tuning.io_backend;
    match (asked.and_then(reactor::forced), said) {
        (Some(asked), Some(said)) if asked != said => results.problems.push(format!(
            "{} was started with --io-backend {asked} but says it runs on {said}",
            entry.name
        )),
        // ringway's own choice fell back: whatever it is set against as
        // io_uring is epoll too.
        (None, Some("epoll")) => results.notes.push(format!(
            "{} runs on epoll, not io_uring: this machine refuses io_uring (its log says why)",
            entry.name
        )),
        _ => {}
    }
    results.setup.reactors.push(Reactor {
        system: entry.name.clone(),
        asked: asked.map(|b| b.name().to_owned()),
        said: said.map(str::to_owned),
    });
}

pub(super) fn stop(system: Running, name: &str, round: usize, results: &mut Results) {
    if let Err(e) = system.stop() {
        results
            .problems
            .push(format!("round {}: stopping {name}: {e}", round + 1));
    }
}

/// One load run under the guard: waits for quiet cores, runs (with the
/// table churning, for a churning system), and runs again while the guard
/// finds the run disturbed and retries are left.
fn guarded(
    ctx: &Ctx<'_>,
    runner: &Runner<'_>,
    system: &Running,
    run: &Run<'_>,
    mut book: Option<&mut ChurnBook>,
    results: &mut Results,
) -> Option<Measured> {
    let Run {
        name,
        label,
        round,
        rate,
    } = *run;
    let g = &ctx.opts.guard;
    for attempt in 1..=1 + g.retries {
        let quiet = guard::wait_quiet(&ctx.run_cores, g);
        let label = if attempt == 1 {
            label.to_owned()
        } else {
            format!("{label}-retry{}", attempt - 1)
        };
        let churner = book.as_mut().map(|b| b.start());
        let measured = runner.measure(system, name, &label, round, rate);
        if let (Some(b), Some(c)) = (book.as_mut(), churner) {
            b.resume(c);
        }
        let mut m = match measured {
            Ok(m) => m,
            Err(e) => {
                results.problems.push(e);
                return None;
            }
        };
        m.attempt = attempt;
        m.quiet = quiet;
        m.disturbed = guard::verdict(m.disturbance, g, rate.is_none());
        match &m.disturbed {
            Some(why) if attempt <= g.retries => {
                eprintln!("compare: {label} disturbed ({why}): running it again");
                results.discarded.push(m);
            }
            _ => return Some(m),
        }
    }
    None
}

/// The memory reading of a running system in `mode`.
fn memory_reading(
    system: &Running,
    name: &str,
    mode: Mode,
    round: usize,
    asked: usize,
    request: Option<&[u8]>,
) -> MemoryReading {
    let before = system.rss_kib();
    let (held, shortfall) = idle::hold(system.target(), asked, request);
    let rss_idle_kib = system.rss_kib();
    let n = held.len();
    drop(held);
    MemoryReading {
        system: name.to_owned(),
        mode: mode.name().into(),
        round,
        asked,
        held: n,
        rss_before_kib: before,
        rss_idle_kib,
        peak_rss_kib: system.peak_rss_kib(),
        shortfall,
    }
}

/// The idle TCP pairs of an HTTP scenario: the system started once more as
/// an L4 proxy in front of the same origins; each pair carries one request
/// through to the origin before it idles.
fn tcp_pairs(ctx: &Ctx<'_>, entry: &Entry, round: usize, results: &mut Results) {
    if let Some(why) = missing(entry.kind, &ctx.bins, Mode::Tcp) {
        if round == 0 {
            results
                .notes
                .push(format!("{}: no idle TCP pairs: {why}", entry.name));
        }
        return;
    }
    let mut layout = ctx.layout(entry, Mode::Tcp, ctx.pairs);
    layout.dir = ctx.dir.join("systems").join(format!("{}-tcp", entry.name));
    let Some(system) = start(ctx, entry, &layout, round, results) else {
        return;
    };
    results.memory.push(memory_reading(
        &system,
        &entry.name,
        Mode::Tcp,
        round,
        ctx.pairs,
        Some(&ctx.request),
    ));
    stop(system, &entry.name, round, results);
}

/// The requests a load run's raw output says it sent (0 if it wrote none):
/// they reached the origins even when the run failed part way.
fn requests_sent(raw: &std::path::Path) -> u64 {
    std::fs::read_to_string(raw)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.pointer("/requests/sent")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(0)
}

/// The first line a command prints, or `?`.
fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The commit the bench runs from, and whether tracked files changed.
fn tree() -> String {
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    }
}

/// `--version` lines of the binaries in the run.
fn versions(bins: &Binaries, entries: &[Entry]) -> Vec<String> {
    let kinds: Vec<Kind> = entries.iter().map(|e| e.kind).collect();
    let mut v = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| kinds.contains(k)) {
        let line = match kind {
            Kind::Direct => continue,
            Kind::Ringway => first_line(Command::new(&bins.ringway).arg("--version")),
            Kind::Baseline => bins
                .baseline
                .as_ref()
                .map(|p| {
                    format!(
                        "baseline {} ({})",
                        p.display(),
                        first_line(Command::new(p).arg("--version"))
                    )
                })
                .unwrap_or_default(),
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

mod counting;
mod observing;
mod profiling;
#[cfg(test)]
mod tests;
mod tls;
