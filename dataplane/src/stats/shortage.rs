//! Shortages of this host's own resources: file descriptors, kernel
//! memory, local ports.
//!
//! A connect or an accept that fails for one of these says nothing about
//! the peer: the caller counts it apart (never as an endpoint's failure,
//! never holding an endpoint out) and notes it here, in the worker's
//! counters ([`note`]): how many, and the last one's errno and what it
//! was doing. A worker never writes the line itself (stderr is a lock and
//! a write that can block). The control agent reads the counters once a
//! second and writes, per worker, at most one line per [`REPORT_EVERY`]
//! ([`Reporter`]), carrying the number met since the last line: a burst of
//! thousands costs one line.

use std::io;
use std::time::{Duration, Instant};

use super::{Counters, WorkerStats};

/// Least time between two lines about one worker's shortages: a burst of
/// thousands costs one line, and a shortage that lasts still shows up
/// every few seconds.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Whether `e` is a shortage of a local resource rather than anything the
/// peer did: out of descriptors for the process (`EMFILE`) or the system
/// (`ENFILE`), out of kernel memory (`ENOBUFS`, `ENOMEM`), or out of local
/// ports for a connect (`EADDRNOTAVAIL`).
pub fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// What a worker was doing when it met a shortage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Doing {
    /// Connecting upstream.
    Connecting = 1,
    /// Accepting a client.
    Accepting = 2,
}

/// Records shortage `e`, met while `doing`, in the worker's counters (for
/// the agent's [`Reporter`]). Plain stores: nothing formatted, no syscall.
pub(crate) fn note(counters: &Counters, doing: Doing, e: &io::Error) {
    let errno = e.raw_os_error().map_or(0, |n| u64::from(n.unsigned_abs()));
    counters.shortages.add(1);
    counters.last_shortage.set(((doing as u64) << 32) | errno);
}

/// The agent's side: what it last said about each worker.
#[derive(Debug, Default)]
pub struct Reporter {
    said: Vec<Said>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Said {
    /// When the last line about this worker was written.
    at: Option<Instant>,
    /// The worker's shortage count then.
    count: u64,
}

impl Reporter {
    /// The line to write about worker `index` whose counters are `stats`,
    /// if it met shortages since the last line and the last line is at
    /// least [`REPORT_EVERY`] old.
    pub fn line(&mut self, index: usize, stats: &WorkerStats, now: Instant) -> Option<String> {
        if self.said.len() <= index {
            self.said.resize(index + 1, Said::default());
        }
        let said = &mut self.said[index];
        let new = stats.shortages.saturating_sub(said.count);
        if new == 0
            || said
                .at
                .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            return None;
        }
        *said = Said {
            at: Some(now),
            count: stats.shortages,
        };
        let errno = (stats.last_shortage & 0xffff_ffff) as i32;
        let doing = match stats.last_shortage >> 32 {
            2 => "accepting a client",
            _ => "connecting upstream",
        };
        let e = io::Error::from_raw_os_error(errno);
        Some(format!(
            "ringway: worker {index}: out of a local resource {new} time(s) since the last \
             report, the last while {doing}: {e}; {}; no peer is blamed for it",
            advice(errno)
        ))
    }
}

/// What an operator can do about a shortage of `errno`.
fn advice(errno: i32) -> &'static str {
    match errno {
        libc::EMFILE => {
            "raise the open-file limit (ulimit -n, systemd LimitNOFILE) or lower runtime.max_connections"
        }
        libc::ENFILE => "the system's file table is full (sysctl fs.file-max)",
        libc::EADDRNOTAVAIL => {
            "no local port is free for a connect (sysctl net.ipv4.ip_local_port_range)"
        }
        _ => "the kernel is short of memory",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_local_shortages_from_peer_failures() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(is_local(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::ECONNRESET,
        ] {
            assert!(!is_local(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        assert!(!is_local(&io::Error::other("no errno")));
    }

    #[test]
    fn a_burst_is_one_line_then_counted() {
        let counters = Counters::default();
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let mut reporter = Reporter::default();
        let start = Instant::now();
        assert_eq!(reporter.line(0, &counters.snapshot(), start), None);
        for _ in 0..3 {
            note(&counters, Doing::Connecting, &e);
        }
        let first = reporter
            .line(0, &counters.snapshot(), start)
            .expect("a first line");
        assert!(first.contains("3 time(s)"), "{first}");
        assert!(first.contains("connecting upstream"), "{first}");
        assert!(first.contains("ulimit -n"), "{first}");
        for _ in 0..5 {
            note(&counters, Doing::Accepting, &e);
        }
        let soon = start + REPORT_EVERY / 2;
        assert_eq!(reporter.line(0, &counters.snapshot(), soon), None);
        let later = start + REPORT_EVERY;
        let second = reporter
            .line(0, &counters.snapshot(), later)
            .expect("a second line once the period passed");
        assert!(second.contains("5 time(s)"), "{second}");
        assert!(second.contains("accepting a client"), "{second}");
        assert_eq!(
            reporter.line(0, &counters.snapshot(), later + REPORT_EVERY),
            None
        );
    }
}
