//! `ringway-bench`: benchmarks of ringway that anyone can run on their own
//! machine.
//!
//! `load` is the load generator (open and closed loop, HTTP/1.1 and TCP
//! streaming, on io_uring); `churn` measures routing-table churn while
//! traffic flows; `http` is the older closed-loop generator that
//! `scripts/bench-http.sh` drives. See docs/benchmarks.md.
#![forbid(unsafe_code)]

mod churn;
// The `compare` runner uses it next; until then only its tests do.
#[allow(dead_code)]
mod compare;
mod http;
mod load;
mod origin;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks of ringway.
#[derive(Debug, Parser)]
#[command(name = "ringway-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish routing tables at a fixed rate while TCP traffic flows through
    /// ringway; compare the worker's throughput and CPU per request with and
    /// without churn, and report publish latency and request errors.
    Churn(churn::ChurnArgs),
    /// Closed-loop HTTP/1.1 keep-alive load: N connections with one request
    /// in flight each; checks every response, prints counts, rate and
    /// latency percentiles as JSON.
    Http(http::HttpArgs),
    /// Load generator: closed loop or open loop at a fixed rate (latency
    /// from each request's intended send time), HTTP/1.1 keep-alive or a new
    /// connection per request, or TCP streaming; one pinned io_uring thread
    /// per core; summary or `--json`.
    Load(load::LoadArgs),
    /// The built-in origin `compare` runs behind every system: HTTP/1.1
    /// keep-alive answers of a fixed size, or a TCP sink; prints what it
    /// served as JSON when stopped.
    Origin(origin::OriginArgs),
    /// Side-by-side comparison with nginx and HAProxy (not built yet).
    Compare(NotBuilt),
}

/// Whatever was passed to a subcommand that does not exist yet.
#[derive(Debug, clap::Args)]
struct NotBuilt {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Churn(args) => churn::main(&args),
        Command::Http(args) => http::main(&args),
        Command::Load(args) => load::main(&args),
        Command::Origin(args) => origin::main(&args),
        Command::Compare(_) => not_built("compare"),
    }
}

/// Says that `name` is not built yet, and what to use meanwhile.
fn not_built(name: &str) -> ExitCode {
    eprintln!(
        "ringway-bench {name}: not built yet (issue 5); \
         for the TCP comparison run scripts/bench-tcp.sh, \
         for table churn run `ringway-bench churn`"
    );
    ExitCode::from(2)
}
