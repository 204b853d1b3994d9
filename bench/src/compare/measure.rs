//! One measured load run against a running system: the `load` child's
//! result, and what the system, the origins, the generator and the cores
//! spent meanwhile (which also tells the guard whether anything else ran).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};
use serde::Serialize;
use serde_json::Value;

use super::guard::{self, Counters, Disturbance, Quiet};
use super::origins::{OriginReport, Origins};
use super::pki;
use super::scenario::{Scenario, ScenarioMode};
use super::system::Running;
use ringway_kit::procfs;

/// One load run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The system under test.
    pub system: String,
    /// The round (0-based); `None` for the load-side ceiling run.
    pub round: Option<usize>,
    /// Offered rate (open loop), or `None` for a max-throughput run.
    pub offered: Option<f64>,
    /// Requests answered well inside the window.
    pub ok: u64,
    /// Requests written, warm-up included: what the system handled while
    /// its CPU was counted.
    pub sent: u64,
    /// Open loop: requests due that no connection could send.
    pub unsent: u64,
    /// Failed requests.
    pub errors: u64,
    /// Ok requests per second.
    pub rps: f64,
    /// Bytes written per second of the window (TCP mode).
    pub bytes_per_s: f64,
    /// Bytes written during the whole run, warm-up included (TCP mode).
    pub bytes_total: u64,
    /// Latency percentiles in µs (HTTP mode).
    pub latency: Option<Latency>,
    /// (quantile, µs) pairs for the spectrum plot.
    pub spectrum: Vec<(f64, u64)>,
    /// utime + stime of every process of the system, in seconds.
    pub cpu_s: f64,
    /// Busy time of the proxy's core (softirq included), in seconds.
    pub proxy_core_busy_s: f64,
    /// Busy share of the proxy's core during the run (0..1).
    pub proxy_core_util: f64,
    /// Busy share of the load cores during the run (0..1, the busiest).
    pub load_core_util: f64,
    /// CPU time of ringway's worker thread alone, seconds (`None` for the
    /// other systems).
    pub worker_cpu_s: Option<f64>,
    /// CPU time of the origins, seconds.
    pub origin_cpu_s: f64,
    /// CPU time of the `load` process, seconds.
    pub generator_cpu_s: f64,
    /// Wall time of the run, warm-up included, seconds.
    pub wall_s: f64,
    /// Which attempt this was (1 unless the guard ran it again).
    pub attempt: usize,
    /// What the guard's wait before the run found (`None`: not checked).
    pub quiet: Option<Quiet>,
    /// Other work during the run, as its counters show it.
    pub disturbance: Disturbance,
    /// Why the guard found the run disturbed, if it did.
    pub disturbed: Option<String>,
    /// The raw `load --json` file, relative to the results directory.
    pub raw: String,
    /// Failed requests by kind (`connect`, `timeout`, `reset`, `closed`,
    /// `non_2xx`, `protocol`), the kinds that occurred.
    pub errors_by_kind: Vec<(String, u64)>,
    /// Fault scenarios: what the run's own origins received.
    pub upstream: Option<Upstream>,
    /// Bytes read by the clients during the whole run, warm-up included
    /// (HTTP: the answers, heads and bodies, as plaintext).
    pub received_total: u64,
    /// TLS runs: the handshakes the clients made and what they negotiated.
    pub tls: Option<TlsSeen>,
    /// A sidecar pair: each half's share of `cpu_s`.
    pub halves: Option<Halves>,
}

/// A sidecar pair's CPU time by half (utime + stime of each half's
/// processes), seconds; their sum is the run's `cpu_s`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Halves {
    /// The outbound half: the one the clients talk to.
    pub outbound_cpu_s: f64,
    /// The inbound half: the one in front of the origins.
    pub inbound_cpu_s: f64,
}

/// What the clients of a TLS run saw of their handshakes.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSeen {
    /// Full handshakes (every connection, warm-up included).
    pub full: u64,
    /// Of those, the ones after a HelloRetryRequest.
    pub hello_retries: u64,
    /// Resumed sessions (the clients keep none: 0).
    pub resumed: u64,
    /// Suite, group and ALPN of the first handshake of a thread.
    pub negotiated: String,
}

/// What the origins of one fault-scenario run received, against what the
/// clients sent.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// Each origin's report, in order (`None`: it did not report).
    pub origins: Vec<Option<OriginReport>>,
}

impl Upstream {
    /// Requests the origins received, their health checks left out; `None`
    /// when one did not report.
    pub fn requests(&self) -> Option<u64> {
        self.origins
            .iter()
            .map(|o| o.map(|o| o.received.saturating_sub(o.checks)))
            .sum()
    }

    /// Answers the fault schedules made a `503`.
    pub fn faulted(&self) -> u64 {
        self.origins.iter().flatten().map(|o| o.faulted).sum()
    }

    /// Health-check requests.
    pub fn checks(&self) -> u64 {
        self.origins.iter().flatten().map(|o| o.checks).sum()
    }
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p99_9: u64,
    /// 99.99th.
    pub p99_99: u64,
    /// Largest.
    pub max: u64,
}

impl Measured {
    /// The system's CPU per request, µs (process time / requests sent).
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        (self.sent > 0 && self.cpu_s > 0.0).then(|| self.cpu_s * 1e6 / self.sent as f64)
    }

    /// The proxy core's busy time per request, µs (softirq included: the
    /// kernel's TCP work on that core counts).
    pub fn core_us_per_request(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.proxy_core_busy_s * 1e6 / self.sent as f64)
    }

    /// The system's CPU per GB streamed, seconds (TCP mode).
    pub fn cpu_s_per_gb(&self) -> Option<f64> {
        (self.bytes_total > 0 && self.cpu_s > 0.0)
            .then(|| self.cpu_s / (self.bytes_total as f64 / 1e9))
    }

    /// The system's cost per unit of work: CPU µs per request (HTTP) or
    /// CPU s per GB (TCP).
    pub fn cost(&self, tcp: bool) -> Option<f64> {
        if tcp {
            self.cpu_s_per_gb()
        } else {
            self.cpu_us_per_request()
        }
    }

    /// The system's CPU per GB of answers the clients read, seconds
    /// (HTTP: bodies and heads, warm-up included, as the CPU is).
    pub fn cpu_s_per_gb_received(&self) -> Option<f64> {
        (self.received_total > 0 && self.cpu_s > 0.0)
            .then(|| self.cpu_s / (self.received_total as f64 / 1e9))
    }

    /// A pair's CPU per unit of work by half (outbound, inbound): µs per
    /// request (HTTP) or s per GB (TCP), as [`Measured::cost`].
    pub fn half_costs(&self, tcp: bool) -> Option<[f64; 2]> {
        let h = self.halves?;
        let per = |cpu_s: f64| {
            if tcp {
                (self.bytes_total > 0).then(|| cpu_s / (self.bytes_total as f64 / 1e9))
            } else {
                (self.sent > 0).then(|| cpu_s * 1e6 / self.sent as f64)
            }
        };
        Some([per(h.outbound_cpu_s)?, per(h.inbound_cpu_s)?])
    }

    /// ringway's worker thread's CPU per request, µs.
    pub fn worker_us_per_request(&self) -> Option<f64> {
        let w = self.worker_cpu_s?;
        (self.sent > 0).then(|| w * 1e6 / self.sent as f64)
    }
}

/// Where the load runs and what it looks like.
#[derive(Debug)]
pub struct Runner<'a> {
    /// The `ringway-bench` binary (this one).
    pub bench: &'a Path,
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The load generator's cores.
    pub load_cores: &'a [usize],
    /// Every core of the run (load, origin, proxy, control), once each.
    pub run_cores: &'a [usize],
    /// The origins, whose CPU counts as the run's own.
    pub origins: &'a Origins,
    /// Clock ticks per second of `/proc`.
    pub clk_tck: u64,
    /// The results directory.
    pub dir: &'a Path,
    /// Start the origins' fault schedules as each load run starts.
    pub faults: bool,
}

impl Runner<'_> {
    /// The `ringway-bench load` command of a run against `system` (open
    /// loop at `rate`, or closed loop), printing JSON on stdout.
    pub fn load_command(&self, system: &Running, rate: Option<f64>) -> Command {
        let s = self.scenario;
        let mut cmd = Command::new(self.bench);
        cmd.arg("load")
            .arg("--target")
            .arg(system.target().to_string())
            .args(["--json", "--progress", "never"])
            .arg("--cores")
            .arg(&s.cores.load)
            .arg("--connections")
            .arg(s.load.connections.to_string())
            .arg("--duration")
            .arg(humantime::format_duration(s.load.duration).to_string())
            .arg("--warmup")
            .arg(humantime::format_duration(s.load.warmup).to_string())
            .arg("--timeout")
            .arg(humantime::format_duration(s.load.timeout).to_string());
        if let Some(tls) = system.tls() {
            cmd.arg("--tls-ca")
                .arg(&tls.pki.ca)
                .args(["--tls-name", pki::SERVER_NAME]);
            if tls.client_auth {
                cmd.arg("--tls-cert")
                    .arg(&tls.pki.client_cert)
                    .arg("--tls-key")
                    .arg(&tls.pki.client_key);
            }
        }
        match s.mode {
            ScenarioMode::Tcp => {
                cmd.args(["--mode", "tcp", "--chunk"])
                    .arg(s.load.chunk.to_string());
            }
            ScenarioMode::Http => {
                cmd.arg("--method")
                    .arg(&s.load.method)
                    .arg("--path")
                    .arg(&s.load.path)
                    .arg("--host")
                    .arg(&s.load.host)
                    .arg("--body-size")
                    .arg(s.load.body_size.to_string());
                for h in &s.load.headers {
                    cmd.arg("--header").arg(h);
                }
                if s.load.new_connection {
                    cmd.arg("--new-connection");
                }
                if let Some(r) = rate {
                    cmd.arg("--rate").arg(format!("{r}"));
                }
            }
        }
        cmd
    }

    /// Runs `load` against `system` (open loop at `rate`, or closed loop)
    /// while sampling the CPU of everything involved; `name` is the
    /// system's name in the results, `label` names the raw file.
    pub fn measure(
        &self,
        system: &Running,
        name: &str,
        label: &str,
        round: Option<usize>,
        rate: Option<f64>,
    ) -> Result<Measured, String> {
        let cmd = self.load_command(system, rate);
        self.measure_command(cmd, system, name, label, round, rate)
    }

    /// As [`Runner::measure`], running `cmd`: the load command, or a
    /// program that runs it and passes its output and exit status through
    /// (`perf stat -- load ...`).
    pub fn measure_command(
        &self,
        mut cmd: Command,
        system: &Running,
        name: &str,
        label: &str,
        round: Option<usize>,
        rate: Option<f64>,
    ) -> Result<Measured, String> {
        let proxy_core = self.scenario.cores.proxy;
        let before = self.sample(system);
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bench.display()))?;
        if self.faults {
            // The schedules count from the load's start, warm-up included.
            self.origins.start_faults();
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("cannot run {}: {e}", self.bench.display()))?;
        let after = self.sample(system);
        let raw = format!("raw/{label}.json");
        std::fs::write(self.dir.join(&raw), &out.stdout)
            .map_err(|e| format!("cannot write {raw}: {e}"))?;
        // Exit 1 means some requests failed: the figures still stand and
        // the errors are counted in them.
        if !matches!(out.status.code(), Some(0 | 1)) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "load run {label} failed ({}): {}",
                out.status,
                stderr.trim()
            ));
        }
        let doc: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("load run {label}: unreadable JSON: {e}"))?;
        if let Some(fatal) = doc
            .get("fatal")
            .and_then(Value::as_array)
            .filter(|f| !f.is_empty())
        {
            return Err(format!("load run {label} could not run: {fatal:?}"));
        }
        let tck = self.clk_tck as f64;
        let core = |c: usize, s: &Sample| s.core(c);
        let (pb, pt) = core(proxy_core, &after).delta(core(proxy_core, &before));
        let load_util = self
            .load_cores
            .iter()
            .map(|&c| {
                let (busy, total) = core(c, &after).delta(core(c, &before));
                ratio(busy, total)
            })
            .fold(0.0, f64::max);
        let wall_s = after.at.duration_since(before.at).as_secs_f64();
        let ticks = |a: u64, b: u64| a.saturating_sub(b) as f64 / tck;
        let cpu_s = ticks(after.cpu, before.cpu);
        let origin_cpu_s = ticks(after.origins, before.origins);
        let generator_cpu_s = (after.children_s - before.children_s).max(0.0);
        let own_s = ticks(after.own, before.own);
        let mut cores_busy_s = 0.0;
        let mut most_lost_s: f64 = 0.0;
        for (&(_, a), &(_, b)) in after.cores.iter().zip(&before.cores) {
            let (busy, total) = a.delta(b);
            cores_busy_s += busy as f64 / tck;
            most_lost_s = most_lost_s.max(wall_s - total as f64 / tck);
        }
        let disturbance = guard::judge(Counters {
            wall_s,
            cores_busy_s,
            own_s: cpu_s + origin_cpu_s + generator_cpu_s + own_s,
            most_lost_s,
        });
        let u = |pointer: &str| doc.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        let f = |pointer: &str| doc.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0);
        let latency = doc
            .get("latency_us")
            .filter(|v| !v.is_null())
            .map(|_| Latency {
                p50: u("/latency_us/p50"),
                p90: u("/latency_us/p90"),
                p99: u("/latency_us/p99"),
                p99_9: u("/latency_us/p99_9"),
                p99_99: u("/latency_us/p99_99"),
                max: u("/latency_us/max"),
            });
        let spectrum = doc
            .get("spectrum")
            .and_then(Value::as_array)
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| {
                        Some((p.get("quantile")?.as_f64()?, p.get("latency_us")?.as_u64()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Every byte written, warm-up included, as the CPU covers the
        // warm-up too.
        let bytes_total = u("/bytes/sent");
        Ok(Measured {
            system: name.to_string(),
            round,
            offered: rate,
            ok: u("/requests/ok"),
            sent: u("/requests/sent"),
            unsent: u("/requests/unsent"),
            errors: u("/errors/total"),
            rps: f("/requests/per_second"),
            bytes_per_s: f("/bytes/sent_per_second"),
            bytes_total,
            latency,
            spectrum,
            cpu_s,
            proxy_core_busy_s: pb as f64 / tck,
            proxy_core_util: ratio(pb, pt),
            load_core_util: load_util,
            worker_cpu_s: after.worker.zip(before.worker).map(|(a, b)| ticks(a, b)),
            halves: after.halves.zip(before.halves).map(|(a, b)| Halves {
                outbound_cpu_s: ticks(a[0], b[0]),
                inbound_cpu_s: ticks(a[1], b[1]),
            }),
            origin_cpu_s,
            generator_cpu_s,
            wall_s,
            attempt: 1,
            quiet: None,
            disturbance,
            disturbed: None,
            raw,
            errors_by_kind: doc
                .get("errors")
                .and_then(Value::as_object)
                .map(|kinds| {
                    kinds
                        .iter()
                        .filter(|(k, _)| *k != "total")
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .filter(|(_, n)| *n > 0)
                        .collect()
                })
                .unwrap_or_default(),
            upstream: None,
            received_total: u("/bytes/received"),
            tls: doc.get("tls").filter(|v| !v.is_null()).map(|_| {
                let text = |pointer: &str| {
                    doc.pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                        .to_owned()
                };
                TlsSeen {
                    full: u("/tls/handshakes/full"),
                    hello_retries: u("/tls/handshakes/hello_retries"),
                    resumed: u("/tls/handshakes/resumed"),
                    negotiated: format!(
                        "{} {} {}",
                        text("/tls/suite"),
                        text("/tls/group"),
                        text("/tls/alpn")
                    ),
                }
            }),
        })
    }

    /// The counters of everything the run involves, now.
    fn sample(&self, system: &Running) -> Sample {
        let children_s = getrusage(UsageWho::RUSAGE_CHILDREN)
            .map(|u| {
                let secs =
                    |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
                secs(u.user_time()) + secs(u.system_time())
            })
            .unwrap_or(0.0);
        let halves = system.half_ticks();
        Sample {
            at: Instant::now(),
            // A pair's processes read once, so that the halves add up.
            cpu: halves.map_or_else(|| system.cpu_ticks(), |[a, b]| a + b),
            halves,
            worker: system.worker_ticks(),
            origins: self.origins.cpu_ticks(),
            own: procfs::process_ticks(std::process::id()).unwrap_or(0),
            children_s,
            cores: self
                .run_cores
                .iter()
                .map(|&c| (c, CoreTicks::read(c)))
                .collect(),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Busy and total ticks of one core.
#[derive(Debug, Clone, Copy, Default)]
struct CoreTicks {
    busy: u64,
    total: u64,
}

impl CoreTicks {
    fn read(core: usize) -> Self {
        // A core that cannot be read counts as idle; the report shows 0%.
        // Busy is user + nice + system + irq + softirq (the kernel's
        // loopback work); time the hypervisor stole is not the system's.
        let t = procfs::core_times(core).unwrap_or_default();
        Self {
            busy: t.busy,
            total: t.total,
        }
    }

    fn delta(self, before: CoreTicks) -> (u64, u64) {
        (
            self.busy.saturating_sub(before.busy),
            self.total.saturating_sub(before.total),
        )
    }
}

/// CPU counters at one instant.
#[derive(Debug)]
struct Sample {
    at: Instant,
    /// The system's processes, ticks.
    cpu: u64,
    /// A pair's halves, ticks (outbound, inbound).
    halves: Option<[u64; 2]>,
    /// ringway's worker thread, ticks.
    worker: Option<u64>,
    /// The origins, ticks.
    origins: u64,
    /// This runner, ticks.
    own: u64,
    /// Children of this runner that were waited for (the `load` runs),
    /// seconds.
    children_s: f64,
    /// Every core of the run.
    cores: Vec<(usize, CoreTicks)>,
}

impl Sample {
    fn core(&self, core: usize) -> CoreTicks {
        self.cores
            .iter()
            .find(|(c, _)| *c == core)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}
