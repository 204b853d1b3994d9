//! `ringway-bench http`: a closed-loop HTTP/1.1 keep-alive load generator.
//!
//! `--connections` connections each keep one request in flight for
//! `--duration`; every response is checked (status 200, framed by
//! `Content-Length`, nothing after it) and its latency recorded in an
//! HdrHistogram at microsecond resolution. The result is one JSON object on
//! stdout. scripts/bench-http.sh drives it against a direct origin, ringway,
//! nginx and HAProxy and measures the proxies' CPU around each run.

mod load;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use core_affinity::CoreId;
use serde_json::json;

use self::load::{ErrorKind, Outcome, Settings};

/// Options of `ringway-bench http`.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Address to send requests to (the proxy's listener, or the origin).
    #[arg(long)]
    target: SocketAddr,
    /// Connections, each with one request in flight (closed loop).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long requests are counted, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// `Host` header of the requests.
    #[arg(long, default_value = "bench")]
    host: String,
    /// Longest wait for a connection or a whole response, in seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Pin the generator's thread to this core.
    #[arg(long)]
    core: Option<usize>,
}

/// Runs the load and prints its JSON result: exit 0 when every request got
/// a well-framed 200, 1 when some failed or the run could not start, 2 for
/// bad options.
pub fn main(args: &HttpArgs) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("ringway-bench http: {msg}");
        ExitCode::from(2)
    };
    if args.connections == 0 {
        return fail("--connections must be at least 1".into());
    }
    let seconds = |what: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{what} {v}: a positive number of seconds"))
    };
    let (duration, timeout) = match (
        seconds("--duration", args.duration),
        seconds("--timeout", args.timeout),
    ) {
        (Ok(d), Ok(t)) => (d, t),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let valid_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !args.path.starts_with('/') || !valid_token(&args.path) {
        return fail(format!(
            "--path {:?}: an origin-form path like /x",
            args.path
        ));
    }
    if !valid_token(&args.host) {
        return fail(format!(
            "--host {:?}: no spaces or control bytes",
            args.host
        ));
    }
    if let Some(core) = args.core {
        if !core_affinity::set_for_current(CoreId { id: core }) {
            return fail(format!("cannot pin to core {core}"));
        }
    }
    let settings = Settings {
        target: args.target,
        connections: args.connections,
        duration,
        request: format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringway-bench\r\n\r\n",
            args.path, args.host
        )
        .into_bytes(),
        timeout,
    };
    match load::run(&settings) {
        Ok(outcome) => {
            let doc = result_json(args, &outcome);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            for e in &outcome.first_errors {
                eprintln!("ringway-bench http: first error of its kind: {e}");
            }
            if outcome.error_total() == 0 && outcome.requests > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ringway-bench http: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The result as JSON: counts, rate and latency percentiles in µs.
fn result_json(args: &HttpArgs, out: &Outcome) -> serde_json::Value {
    let secs = out.elapsed.as_secs_f64();
    let h = &out.latency;
    let pct = |q: f64| {
        if h.is_empty() {
            serde_json::Value::Null
        } else {
            json!(h.value_at_quantile(q))
        }
    };
    let kinds: serde_json::Map<String, serde_json::Value> = ErrorKind::ALL
        .iter()
        .map(|&k| (k.name().to_string(), json!(out.errors[k as usize])))
        .collect();
    json!({
        "target": args.target.to_string(),
        "path": args.path,
        "host": args.host,
        "connections": args.connections,
        "duration_s": secs,
        "requests": out.requests,
        "errors": out.error_total(),
        "error_kinds": kinds,
        "first_errors": out.first_errors,
        "drained": out.drained,
        "reconnects": out.reconnects,
        "rps": if secs > 0.0 { out.requests as f64 / secs } else { 0.0 },
        "latency_us": {
            "min": if h.is_empty() { serde_json::Value::Null } else { json!(h.min()) },
            "mean": if h.is_empty() { serde_json::Value::Null } else { json!(h.mean()) },
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "p99_9": pct(0.999),
            "max": if h.is_empty() { serde_json::Value::Null } else { json!(h.max()) },
        },
    })
}
