//! `ringway-bench origin`: the built-in origin that `compare` puts behind
//! every system under test, in a process of its own.
//!
//! It is the kit's counting origin ([`ringway_kit::origin`]): one pinned
//! tokio-uring thread per `--cores` entry, each with its own `SO_REUSEPORT`
//! listener; HTTP/1.1 keep-alive answering every request with the same
//! preformatted `200` of `--response-size` body bytes, or, in TCP mode, a
//! sink that reads and counts. On SIGTERM or SIGINT it prints what it
//! served as one JSON line and exits 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ringway_kit::origin::{self, Settings};

use crate::load::parse_cores;

/// Options of `ringway-bench origin`.
#[derive(Debug, clap::Args)]
pub struct OriginArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// `http`: answer requests; `tcp`: read and count a byte stream.
    #[arg(long, value_enum, default_value_t = crate::load::ModeArg::Http)]
    pub mode: crate::load::ModeArg,
    /// Body bytes of every answer.
    #[arg(long, default_value_t = 2)]
    pub response_size: usize,
    /// One thread per core, pinned (`0`, `0,1`, `2-3`); without it one
    /// unpinned thread.
    #[arg(long)]
    pub cores: Option<String>,
}

/// Runs the origin until SIGTERM/SIGINT; 0 then, 1 when it cannot listen
/// or a thread fails, 2 for bad options.
pub fn main(args: &OriginArgs) -> ExitCode {
    let cores = match args.cores.as_deref().map(parse_cores).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("ringway-bench origin: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("ringway-bench origin: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    raise_fd_limit();
    let settings = match args.mode {
        crate::load::ModeArg::Http => Settings::http(args.response_size),
        crate::load::ModeArg::Tcp => Settings::sink(),
    };
    let served = origin::bind(args.listen, cores.len())
        .and_then(|listeners| origin::run(listeners, settings, &cores, stop));
    match served {
        Ok(served) => {
            println!(
                "{}",
                serde_json::json!({
                    "requests": served.requests,
                    "bytes_received": served.bytes_received,
                    "connections": served.connections,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway-bench origin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lifts the open-file soft limit to the hard limit: the memory run holds
/// thousands of connections, some of which reach the origin. Best effort:
/// the default limit only caps the memory run.
pub fn raise_fd_limit() {
    let _ = ringway_kit::limits::try_raise_fd_limit();
}
