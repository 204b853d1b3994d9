//! `ringway-bench`: benchmarks of ringway that anyone can run on their own
//! machine.
//!
//! Built so far: `churn`, routing-table churn while traffic flows, and
//! `http`, a closed-loop HTTP/1.1 keep-alive load generator that
//! `scripts/bench-http.sh` drives against ringway, nginx and HAProxy (see
//! docs/benchmarks.md). The open-loop load generator (`load`) and the
//! side-by-side runner (`compare`) are the subject of their own work item;
//! until then the L4 comparison lives in `scripts/bench-tcp.sh`.
#![forbid(unsafe_code)]

mod churn;
// The `compare` runner uses it next; until then only its tests do.
#[allow(dead_code)]
mod compare;
mod http;

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
    /// Open-loop and closed-loop load generator (not built yet).
    Load(NotBuilt),
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
        Command::Load(_) => not_built("load"),
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
