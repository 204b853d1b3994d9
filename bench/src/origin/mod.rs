//! `ringway-bench origin`: the built-in origin that `compare` puts behind
//! every system under test, in a process of its own.
//!
//! It is the kit's counting origin ([`ringway_kit::origin`]): one pinned
//! tokio-uring thread per `--cores` entry, each with its own `SO_REUSEPORT`
//! listener; HTTP/1.1 keep-alive answering every request with the same
//! preformatted `200` of `--response-size` body bytes, or, in TCP mode, a
//! sink that reads and counts. On SIGTERM or SIGINT it prints what it
//! served as one JSON line and exits 0.
//!
//! For the fault scenarios it follows a schedule (`--phase`, `--kill-at`)
//! whose clock starts on SIGUSR1, which the runner sends as its load run
//! starts. `--kill-at` is a crash, not a drain: the origin prints what it
//! served so far and exits at once, and the kernel closes its listener and
//! resets its open connections (they carry `SO_LINGER` 0).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringway_kit::origin::{self, CountingOrigin, Faults, Phase, Served, Settings};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::load::parse_cores;

/// How often the main thread looks for signals, the kill time and a failed
/// serving thread: the precision of `--kill-at`.
const TICK: Duration = Duration::from_millis(2);

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
    /// HTTP: a window of misbehaviour after SIGUSR1, as
    /// `from=5s,until=15s,delay=200ms,fail=0.3` (every key but `from`
    /// optional: no `until` lasts to the end); repeatable.
    #[arg(long = "phase", value_parser = parse_phase)]
    pub phases: Vec<Phase>,
    /// Crash this long after SIGUSR1: print what was served and exit at
    /// once, resetting every open connection.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub kill_at: Option<Duration>,
    /// HTTP: requests for this path are a proxy's health checks, counted
    /// apart (`checks`).
    #[arg(long)]
    pub check_path: Option<String>,
}

/// Runs the origin until SIGTERM/SIGINT (or its `--kill-at`); 0 then, 1
/// when it cannot listen or a thread fails, 2 for bad options.
pub fn main(args: &OriginArgs) -> ExitCode {
    let cores = match args.cores.as_deref().map(parse_cores).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("ringway-bench origin: {e}");
            return ExitCode::from(2);
        }
    };
    let tcp = matches!(args.mode, crate::load::ModeArg::Tcp);
    if tcp && (!args.phases.is_empty() || args.check_path.is_some()) {
        eprintln!("ringway-bench origin: --phase and --check-path need --mode http");
        return ExitCode::from(2);
    }
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringway-bench origin: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    raise_fd_limit();
    let mut settings = if tcp {
        Settings::sink()
    } else {
        Settings::http(args.response_size)
    };
    if !args.phases.is_empty() {
        settings = settings.with_faults(Faults::new(args.phases.clone()).leak());
    }
    if let Some(path) = &args.check_path {
        settings = settings.checked_at(path.clone().leak());
    }
    let origin = origin::bind(args.listen, cores.len())
        .and_then(|listeners| {
            if args.kill_at.is_some() {
                // Inherited by every accepted connection: the crash resets
                // them instead of closing them in order.
                for l in &listeners {
                    socket2::SockRef::from(l).set_linger(Some(Duration::ZERO))?;
                }
            }
            Ok(listeners)
        })
        .and_then(|listeners| CountingOrigin::serve(listeners, settings, &cores));
    let origin = match origin {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ringway-bench origin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut kill_at: Option<Instant> = None;
    loop {
        for sig in signals.pending() {
            if sig == SIGUSR1 {
                origin.start_faults();
                if let (None, Some(after)) = (kill_at, args.kill_at) {
                    kill_at = Some(Instant::now() + after);
                }
            } else {
                return finish(origin.stop(), false);
            }
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) {
            // What it served up to now is all it ever serves: the exit
            // below ends every thread before another answer goes out.
            report(&origin.served(), true);
            std::process::exit(0);
        }
        if !origin.running() {
            return finish(origin.stop(), false);
        }
        std::thread::sleep(TICK);
    }
}

fn finish(served: std::io::Result<Served>, killed: bool) -> ExitCode {
    match served {
        Ok(served) => {
            report(&served, killed);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway-bench origin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What was served, as the one JSON line `compare` reads.
fn report(served: &Served, killed: bool) {
    let line = serde_json::json!({
        "requests": served.requests,
        "received": served.received,
        "faulted": served.faulted,
        "delayed": served.delayed,
        "checks": served.checks,
        "bytes_received": served.bytes_received,
        "connections": served.connections,
        "killed": killed,
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `from=5s,until=15s,delay=200ms,fail=0.3`.
fn parse_phase(text: &str) -> Result<Phase, String> {
    let mut phase = Phase {
        from: Duration::ZERO,
        until: None,
        delay: Duration::ZERO,
        fail_ratio: 0.0,
    };
    let mut from = false;
    for item in text.split(',') {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: key=value"))?;
        let duration = || {
            humantime::parse_duration(value.trim())
                .map_err(|e| format!("{key}: {value:?} is not a duration: {e}"))
        };
        match key.trim() {
            "from" => {
                phase.from = duration()?;
                from = true;
            }
            "until" => phase.until = Some(duration()?),
            "delay" => phase.delay = duration()?,
            "fail" => {
                phase.fail_ratio = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|r: &f64| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("fail: {value:?} is not a ratio from 0 to 1"))?;
            }
            other => return Err(format!("unknown key {other:?} (from, until, delay, fail)")),
        }
    }
    if !from {
        return Err("from= is required".into());
    }
    if phase.until.is_some_and(|u| u <= phase.from) {
        return Err("until must come after from".into());
    }
    Ok(phase)
}

/// A phase as `--phase` spells it.
pub fn phase_arg(p: &Phase) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut text = format!("from={}", ms(p.from));
    if let Some(u) = p.until {
        text.push_str(&format!(",until={}", ms(u)));
    }
    if !p.delay.is_zero() {
        text.push_str(&format!(",delay={}", ms(p.delay)));
    }
    if p.fail_ratio > 0.0 {
        text.push_str(&format!(",fail={}", p.fail_ratio));
    }
    text
}

/// Lifts the open-file soft limit to the hard limit: the memory run holds
/// thousands of connections, some of which reach the origin. Best effort:
/// the default limit only caps the memory run.
pub fn raise_fd_limit() {
    let _ = ringway_kit::limits::try_raise_fd_limit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_back_what_they_write() {
        let p = parse_phase("from=5s,until=15s,delay=200ms,fail=0.3").unwrap();
        assert_eq!(p.from, Duration::from_secs(5));
        assert_eq!(p.until, Some(Duration::from_secs(15)));
        assert_eq!(p.delay, Duration::from_millis(200));
        assert_eq!(p.fail_ratio, 0.3);
        assert_eq!(parse_phase(&phase_arg(&p)).unwrap(), p);
        let open = parse_phase("from=0s,fail=1").unwrap();
        assert_eq!((open.until, open.delay), (None, Duration::ZERO));
        assert_eq!(parse_phase(&phase_arg(&open)).unwrap(), open);
        for bad in [
            "until=3s",
            "from=1s,fail=1.5",
            "from=2s,until=1s",
            "from=1s,x=2",
            "from",
        ] {
            assert!(parse_phase(bad).is_err(), "{bad}");
        }
    }
}
