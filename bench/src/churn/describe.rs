//! What the report says about the run itself: the machine, the binary, the
//! table, the layout, and the command that reproduces it.

use std::fs;
use std::process::Command;

use super::config::{TableShape, APP_CLUSTER, LISTENER};
use super::phase::WORKER_THREAD;
use super::{ChurnArgs, Cores};

/// When set, the command shown in the report (the wrapper script sets it to
/// its own command line).
const COMMAND_ENV: &str = "RINGWAY_BENCH_COMMAND";

/// The report's header lines.
pub fn header(
    args: &ChurnArgs,
    cores: Cores,
    clk_tck: u64,
    clk_measured: bool,
    shape: &TableShape,
) -> Vec<(String, String)> {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let version = Command::new(&args.ringway)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    vec![
        ("date".into(), date),
        (
            "machine".into(),
            format!("{} cores, kernel {kernel}, {cpu}", cores.available),
        ),
        (
            "ringway".into(),
            format!("{} ({version})", args.ringway.display()),
        ),
        (
            "table".into(),
            format!(
                "{} clusters (ringway has no HTTP routes yet; clusters are the route-sized \
                 entries of its L4 table): `{APP_CLUSTER}` with {} echo origins on 127.0.0.1 \
                 behind listener `{LISTENER}`, and {} more with {} endpoints each drawn from \
                 {} distinct addresses on 127.0.1.0/24 (never connected to)",
                shape.clusters,
                shape.origins.len(),
                shape.clusters.saturating_sub(1),
                shape.endpoints_per_cluster,
                shape.endpoint_pool
            ),
        ),
        (
            "layout".into(),
            format!(
                "ringway worker `{WORKER_THREAD}` on core {}, control agent on core {}; \
                 {} client threads and {}x{} origin threads on core {}{}; churn client on core {}",
                cores.worker,
                cores.control,
                args.clients,
                args.origins,
                args.origin_threads,
                cores.load,
                if args.load_nice == 0 {
                    String::new()
                } else {
                    format!(" at nice {}", args.load_nice)
                },
                cores.churn
            ),
        ),
        (
            "churn".into(),
            format!(
                "PUT /clusters/{APP_CLUSTER}/endpoints at {} tables/s on an absolute schedule, \
                 one keep-alive connection per phase; each PUT a different non-empty subset \
                 of the origins, each a new generation of the whole table",
                args.rate
            ),
        ),
        (
            "phases".into(),
            format!(
                "{} rounds of quiet + churn, {} s each, order alternating (Q C, C Q, ...); \
                 {} s warm-up, {} s gaps (load keeps running, not measured); a phase with \
                 other work above {}% of a core on these cores, or more than {}% of a core's \
                 clock ticks lost, is run again (up to {} times)",
                args.rounds,
                args.seconds,
                args.warmup,
                args.gap,
                args.max_disturbance,
                args.max_disturbance,
                args.retries
            ),
        ),
        (
            "requests".into(),
            format!(
                "{} bytes echoed, one request per TCP connection (connect, write, read it back \
                 and check it, read EOF, close); socket timeouts {} s",
                args.request_size, args.timeout
            ),
        ),
        (
            "CPU".into(),
            format!(
                "utime+stime from /proc/<pid>/task/<tid>/stat, CLK_TCK = {clk_tck}{}; worker \
                 CPU per request = worker thread CPU / successful requests; core busy = \
                 user+nice+system+irq+softirq from /proc/stat",
                if clk_measured {
                    " (getconf)"
                } else {
                    " (assumed)"
                }
            ),
        ),
    ]
}

/// The command that reproduces the run: the wrapper's, when it says so.
pub fn command_line() -> String {
    if let Ok(command) = std::env::var(COMMAND_ENV) {
        if !command.trim().is_empty() {
            return command;
        }
    }
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
