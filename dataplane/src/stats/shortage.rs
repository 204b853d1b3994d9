//! Shortages of this host's own resources: file descriptors, kernel
//! memory, local ports.
//!
//! A connect or an accept that fails for one of these says nothing about
//! the peer: the caller counts it apart (never as an endpoint's failure,
//! never holding an endpoint out) and reports it here. They come in bursts
//! (every request of a busy worker meets the same empty descriptor table),
//! so a worker writes at most one line per [`REPORT_EVERY`], carrying the
//! number of those it kept quiet since the last line.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// Least time between two lines about shortages from one worker: a burst
/// of thousands costs one line, and a shortage that lasts still shows up
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

/// What a worker thread has said lately.
#[derive(Clone, Copy)]
struct Said {
    /// When it last wrote a line.
    at: Option<Instant>,
    /// Shortages since then that it kept quiet.
    held: u64,
}

thread_local! {
    // Per thread, so per worker: no lock, and each worker speaks for itself.
    static SAID: Cell<Said> = const { Cell::new(Said { at: None, held: 0 }) };
}

/// Reports a shortage `e` met while `doing` something ("connecting to
/// 10.0.0.1:80"): writes a line on stderr unless this thread wrote one in
/// the last [`REPORT_EVERY`], in which case it only counts it for the next
/// line. Nothing is formatted when the line is held back.
pub fn report(doing: fmt::Arguments<'_>, e: &io::Error) {
    let now = Instant::now();
    let said = SAID.get();
    if said
        .at
        .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
    {
        SAID.set(Said {
            held: said.held + 1,
            ..said
        });
        return;
    }
    SAID.set(Said {
        at: Some(now),
        held: 0,
    });
    let thread = std::thread::current();
    let who = thread.name().unwrap_or("worker");
    let more = if said.held > 0 {
        format!(" ({} more since the last report)", said.held)
    } else {
        String::new()
    };
    eprintln!(
        "ringway: {who}: out of a local resource while {doing}: {e}{more}; {}; \
         no peer is blamed for it",
        advice(e)
    );
}

/// What an operator can do about shortage `e`.
fn advice(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            "raise the open-file limit (ulimit -n, systemd LimitNOFILE) or lower runtime.max_connections"
        }
        Some(libc::ENFILE) => "the system's file table is full (sysctl fs.file-max)",
        Some(libc::EADDRNOTAVAIL) => {
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
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        std::thread::spawn(move || {
            report(format_args!("testing"), &e);
            let first = SAID.get();
            assert!(first.at.is_some());
            for _ in 0..5 {
                report(format_args!("testing"), &e);
            }
            let later = SAID.get();
            assert_eq!(later.at, first.at, "no second line within the period");
            assert_eq!(later.held, 5);
        })
        .join()
        .expect("the reporting thread panicked");
    }
}
