//! `ringway-bench`: benchmarks of ringway that anyone can run on their own
//! machine.
//!
//! `compare` is the one harness: it runs a scenario file (ringway beside
//! nginx, HAProxy, variants of itself and a baseline build, table churn,
//! memory per idle connection, profiles); `load` is its load generator
//! (open and closed loop, HTTP/1.1 and TCP streaming, on io_uring) and
//! `origin` the origin it puts behind every system. See
//! docs/benchmarks.md.
#![forbid(unsafe_code)]

mod compare;
mod load;
mod origin;
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
    /// Load generator: closed loop or open loop at a fixed rate (latency
    /// from each request's intended send time), HTTP/1.1 keep-alive or a new
    /// connection per request, or TCP streaming; one pinned io_uring thread
    /// per core; summary or `--json`.
    Load(load::LoadArgs),
    /// The built-in origin `compare` runs behind every system: HTTP/1.1
    /// keep-alive answers of a fixed size, or a TCP sink; prints what it
    /// served as JSON when stopped.
    Origin(origin::OriginArgs),
    /// Runs a scenario file: ringway, nginx, HAProxy, variants of ringway
    /// (large tables, table churn) and a baseline build side by side
    /// against a direct baseline (offered-rate sweep, max throughput, CPU
    /// per request or per GB and their ratios, memory per idle connection,
    /// perf profiles), on a quiet machine; writes report.md, results.json
    /// and SVG plots under bench/results/.
    Compare(compare::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => load::main(&args),
        Command::Origin(args) => origin::main(&args),
        Command::Compare(args) => compare::main(&args),
    }
}
