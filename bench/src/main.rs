//! `ringway-bench`: benchmarks of ringway that anyone can run on their own
//! machine.
//!
//! `load` is the load generator (open and closed loop, HTTP/1.1 and TCP
//! streaming, on io_uring; `scripts/bench-http.sh` drives it in closed
//! loop); `churn` measures routing-table churn while traffic flows. See
//! docs/benchmarks.md.
#![forbid(unsafe_code)]

mod admin;
mod churn;
mod compare;
mod load;
mod logfile;
mod origin;
mod procfs;
mod ring_io;
mod spread;

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
    /// Load generator: closed loop or open loop at a fixed rate (latency
    /// from each request's intended send time), HTTP/1.1 keep-alive or a new
    /// connection per request, or TCP streaming; one pinned io_uring thread
    /// per core; summary or `--json`.
    Load(load::LoadArgs),
    /// The built-in origin `compare` runs behind every system: HTTP/1.1
    /// keep-alive answers of a fixed size, or a TCP sink; prints what it
    /// served as JSON when stopped.
    Origin(origin::OriginArgs),
    /// Runs a scenario file: ringway, nginx and HAProxy side by side against
    /// a direct baseline (offered-rate sweep, max throughput, CPU per
    /// request, memory per idle connection); writes report.md,
    /// results.json and SVG plots under bench/results/.
    Compare(compare::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Churn(args) => churn::main(&args),
        Command::Load(args) => load::main(&args),
        Command::Origin(args) => origin::main(&args),
        Command::Compare(args) => compare::main(&args),
    }
}
