//! `ringway-bench load`: the load generator.
//!
//! Closed loop (`--connections` as fast as answers come) or open loop
//! (`--rate` requests/s on a fixed schedule, each latency counted from the
//! request's intended send time), HTTP/1.1 keep-alive or a new connection
//! per request, or a TCP stream; one pinned thread per `--cores` entry, each
//! on its own io_uring. The design is in docs/architecture.md ("The bench
//! harness"), the JSON schema in docs/benchmarks.md.

mod ctx;
mod http;
mod pace;
pub mod plan;
mod progress;
pub mod record;
pub mod report;
pub mod response;
mod tcp;
mod thread;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use self::plan::{Mode, Plan};
use self::progress::{Line, Show};
use self::record::Record;
use self::report::Outcome;
use self::thread::Shared;

/// Options of `ringway-bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Address to load (a proxy's listener, or the origin itself).
    #[arg(long)]
    pub target: SocketAddr,
    /// `http`: requests and responses; `tcp`: a byte stream per connection.
    #[arg(long, value_enum, default_value_t = ModeArg::Http)]
    pub mode: ModeArg,
    /// Open loop: requests per second in total, on a fixed schedule. Without
    /// it the run is a closed loop (each connection as fast as it can).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Connections in total, split between the threads.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// One generator thread per core, pinned: `0`, `0,1` or `2-3`. Without
    /// it one unpinned thread.
    #[arg(long)]
    pub cores: Option<String>,
    /// The measured window (`10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load sent before the measured window and not counted.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Longest wait for a connection or a whole response (or, streaming, for
    /// one write to make progress).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// HTTP: a new connection for every request (connect inside the
    /// latency) instead of keep-alive.
    #[arg(long)]
    pub new_connection: bool,
    /// HTTP: request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// HTTP: request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// HTTP: `Host` header.
    #[arg(long, default_value = "bench")]
    pub host: String,
    /// HTTP: an extra header line `name: value`; repeatable.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// HTTP: request body bytes (sent with `Content-Length`).
    #[arg(long, default_value_t = 0)]
    pub body_size: usize,
    /// TCP: bytes per write.
    #[arg(long, default_value_t = 64 * 1024)]
    pub chunk: usize,
    /// TLS 1.3 on every connection, the server's certificate verified
    /// against the CA certificates in this PEM file. Sessions are never
    /// resumed: every connection is a full handshake.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// TLS: the server name sent (SNI) and verified; default: the target's
    /// IP address (verified, not sent).
    #[arg(long, requires = "tls_ca")]
    pub tls_name: Option<String>,
    /// TLS: a client certificate chain (PEM) to present when the server
    /// asks for one; needs `--tls-key`.
    #[arg(long, requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the client certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Print the result as JSON on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// When to draw the progress line on stderr.
    #[arg(long, value_enum, default_value_t = Show::Auto)]
    pub progress: Show,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// HTTP/1.1 requests.
    Http,
    /// A TCP byte stream.
    Tcp,
}

/// Runs `load`: 0 when every request succeeded, 1 when some failed or the
/// run could not start, 2 for bad options, 130 when stopped by Ctrl-C.
pub fn main(args: &LoadArgs) -> ExitCode {
    let plan = match plan_of(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ringway-bench load: {e}");
            return ExitCode::from(2);
        }
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    // A second Ctrl-C ends the process at once; the first only sets the flag.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(sig, 130, interrupt.clone())
                .and_then(|_| signal_hook::flag::register(sig, interrupt.clone()));
        if let Err(e) = registered {
            eprintln!("ringway-bench load: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let out = run(&plan, args.progress, interrupt);
    let summary = report::human(&plan, &out);
    if args.json {
        eprint!("{summary}");
        let doc = report::json(&plan, &out);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{summary}");
    }
    if out.interrupted {
        ExitCode::from(130)
    } else if out.clean(&plan) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `plan` on its threads and merges what they measured.
pub fn run(plan: &Plan, show: Show, interrupt: Arc<AtomicBool>) -> Outcome {
    let plan = Arc::new(plan.clone());
    let threads = plan.threads();
    let (tx, rx) = mpsc::channel();
    let shared = Shared {
        plan: plan.clone(),
        ready: Arc::new(Barrier::new(threads)),
        interrupt: interrupt.clone(),
        progress: tx,
    };
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || thread::run(t, &shared))
        })
        .collect();
    drop(shared);
    let mut line = Line::new(show, threads, plan.warmup + plan.duration);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(p) => line.add(p.thread, &p),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        line.tick();
        let all_done = handles
            .iter()
            .all(|h| h.as_ref().map_or(true, |h| h.is_finished()));
        if all_done {
            break;
        }
    }
    line.finish();
    let mut out = Outcome {
        record: Record::new(),
        elapsed: Duration::ZERO,
        interrupted: interrupt.load(std::sync::atomic::Ordering::Relaxed),
        fatal: Vec::new(),
    };
    for h in handles {
        match h.map(|h| h.join()) {
            Ok(Ok(done)) => {
                out.record.merge(&done.record);
                out.elapsed = out.elapsed.max(done.elapsed);
                out.fatal.extend(done.fatal);
            }
            Ok(Err(_)) => out.fatal.push("a generator thread panicked".into()),
            Err(e) => out
                .fatal
                .push(format!("cannot start a generator thread: {e}")),
        }
    }
    out
}

/// Checks the options and builds the plan; errors name the option.
fn plan_of(a: &LoadArgs) -> Result<Plan, String> {
    let cores = match &a.cores {
        Some(list) => parse_cores(list)?,
        None => Vec::new(),
    };
    let available = core_affinity::get_core_ids().unwrap_or_default();
    for c in &cores {
        if !available.iter().any(|id| id.id == *c) {
            return Err(format!(
                "--cores: core {c} is not available to this process (it may use {:?})",
                available.iter().map(|id| id.id).collect::<Vec<_>>()
            ));
        }
    }
    let threads = cores.len().max(1);
    if a.connections < threads {
        return Err(format!(
            "--connections {}: at least one per generator thread ({threads})",
            a.connections
        ));
    }
    if a.duration.is_zero() {
        return Err("--duration: must be longer than zero".into());
    }
    if a.timeout.is_zero() {
        return Err("--timeout: must be longer than zero".into());
    }
    let mode = match a.mode {
        ModeArg::Http => Mode::Http,
        ModeArg::Tcp => Mode::Tcp,
    };
    if let Some(rate) = a.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "--rate {rate}: a positive number of requests per second"
            ));
        }
        if mode == Mode::Tcp {
            return Err("--rate: the TCP stream mode has no requests to pace".into());
        }
    }
    if mode == Mode::Tcp && a.chunk == 0 {
        return Err("--chunk: at least one byte".into());
    }
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(&a.method)
        || !a
            .method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-')
    {
        return Err(format!(
            "--method {:?}: an upper-case token like GET",
            a.method
        ));
    }
    if !a.path.starts_with('/') || !token(&a.path) {
        return Err(format!("--path {:?}: an origin-form path like /x", a.path));
    }
    if !token(&a.host) {
        return Err(format!("--host {:?}: no spaces or control bytes", a.host));
    }
    for h in &a.headers {
        let valid = h.split_once(':').is_some_and(|(name, value)| {
            token(name) && !value.bytes().any(|b| b.is_ascii_control() && b != b'\t')
        });
        if !valid {
            return Err(format!(
                "--header {h:?}: `name: value` without control bytes"
            ));
        }
    }
    let keep_alive = !a.new_connection;
    let tls = match &a.tls_ca {
        None => None,
        Some(ca) => {
            let client = a.tls_cert.as_deref().zip(a.tls_key.as_deref());
            let config = tls::client_config(ca, client).map_err(|e| format!("--tls-ca: {e}"))?;
            let name = match &a.tls_name {
                Some(n) => rustls::pki_types::ServerName::try_from(n.clone())
                    .map_err(|e| format!("--tls-name {n:?}: {e}"))?,
                None => rustls::pki_types::ServerName::IpAddress(a.target.ip().into()),
            };
            Some(tls::TlsPlan {
                config: Arc::new(config),
                name,
            })
        }
    };
    Ok(Plan {
        target: a.target,
        mode,
        rate: a.rate,
        connections: a.connections,
        cores,
        keep_alive,
        request: plan::http_request(
            &a.method,
            &a.path,
            &a.host,
            &a.headers,
            a.body_size,
            keep_alive,
        ),
        chunk: a.chunk,
        warmup: a.warmup,
        duration: a.duration,
        timeout: a.timeout,
        tls,
    })
}

/// Parses `0`, `0,1`, `2-3` or a mix into a list of distinct cores.
pub fn parse_cores(list: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("--cores {list:?}: a list like 0,1 or 2-3");
    let mut cores = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
        for c in lo..=hi {
            if cores.contains(&c) {
                return Err(format!("--cores {list:?}: core {c} is listed twice"));
            }
            cores.push(c);
        }
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_cores("0").unwrap(), vec![0]);
        assert_eq!(parse_cores("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cores("2-4, 7").unwrap(), vec![2, 3, 4, 7]);
        assert!(parse_cores("1,1").unwrap_err().contains("twice"));
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("a").is_err());
        assert!(parse_cores("").is_err());
    }
}
