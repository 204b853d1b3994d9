//! What one generator thread saw: counts, errors by kind and latencies.
//!
//! Each thread owns one [`Record`] (no sharing while the run lasts); the
//! main thread merges them at the end with [`Record::merge`].

use hdrhistogram::Histogram;

use super::tls::{Handshakes, Negotiated};

/// Highest latency recorded, in µs (60 s); longer ones are recorded as this.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// How a request (or a streaming connection) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be made (refused, unreachable, timed out).
    Connect,
    /// No whole response within `--timeout`.
    Timeout,
    /// The connection was reset or broke (ECONNRESET, EPIPE, other I/O).
    Reset,
    /// The server closed the connection before the whole response came.
    Closed,
    /// A complete response whose status is not 2xx.
    Non2xx,
    /// A response that cannot be framed, or bytes nobody asked for.
    Protocol,
}

impl ErrorKind {
    /// Every kind, in report order; `kind as usize` indexes it.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Non2xx,
        ErrorKind::Protocol,
    ];

    /// The kind's name in the summary and the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Non2xx => "non_2xx",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// The kind an I/O error on an open connection belongs to.
    pub fn of_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            _ => ErrorKind::Reset,
        }
    }
}

/// Counts and latencies of one thread, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct Record {
    /// Requests answered with a well-framed 2xx inside the measured window.
    pub ok: u64,
    /// Requests written, warm-up and the tail after the window included:
    /// what the server saw.
    pub sent: u64,
    /// Open loop: requests due inside the window that no connection could
    /// send before the run ended (the target fell behind the offered rate).
    pub unsent: u64,
    /// Requests that completed after the window closed (closed loop) or
    /// were due during the warm-up: the server saw them, the figures don't.
    pub outside: u64,
    /// Failures inside the window, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; 6],
    /// Connections opened (the first of each connection included).
    pub connects: u64,
    /// Bytes written, warm-up and tail included (what the far end read).
    pub bytes_sent: u64,
    /// Bytes read, warm-up and tail included.
    pub bytes_received: u64,
    /// Bytes whose write completed inside the window: the throughput.
    pub window_bytes_sent: u64,
    /// Latency of each ok request, in µs, from its intended send time (open
    /// loop) or its send (closed loop) to its last byte.
    pub latency: Histogram<u64>,
    /// The first error of each kind, for the operator.
    pub first_errors: Vec<String>,
    /// TLS: the handshakes made, by kind.
    pub handshakes: Handshakes,
    /// TLS: what the first handshake negotiated.
    pub negotiated: Option<Negotiated>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Self {
            ok: 0,
            sent: 0,
            unsent: 0,
            outside: 0,
            errors: [0; 6],
            connects: 0,
            bytes_sent: 0,
            bytes_received: 0,
            window_bytes_sent: 0,
            latency: new_histogram(),
            first_errors: Vec::new(),
            handshakes: Handshakes::default(),
            negotiated: None,
        }
    }

    /// Every failure.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Counts a failure of `kind`; the first of each kind keeps its detail.
    pub fn fail(&mut self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let i = kind as usize;
        if self.errors[i] == 0 {
            self.first_errors
                .push(format!("{}: {}", kind.name(), detail()));
        }
        self.errors[i] += 1;
    }

    /// Records one ok request that took `us` microseconds.
    pub fn ok(&mut self, us: u64) {
        self.ok += 1;
        self.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Adds `other`'s counts and latencies to these.
    pub fn merge(&mut self, other: &Record) {
        self.ok += other.ok;
        self.sent += other.sent;
        self.unsent += other.unsent;
        self.outside += other.outside;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        self.connects += other.connects;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.window_bytes_sent += other.window_bytes_sent;
        self.handshakes.merge(&other.handshakes);
        if self.negotiated.is_none() {
            self.negotiated.clone_from(&other.negotiated);
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for e in &other.first_errors {
            let kind = e.split(':').next();
            if !self
                .first_errors
                .iter()
                .any(|m| m.split(':').next() == kind)
            {
                self.first_errors.push(e.clone());
            }
        }
    }
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram of latencies in µs, 1 µs to [`MAX_LATENCY_US`], 3
/// significant digits (a value is off by at most 0.1%).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_latencies_and_keeps_one_error_per_kind() {
        let mut a = Record::new();
        a.ok(10);
        a.sent = 2;
        a.fail(ErrorKind::Reset, || "first".into());
        let mut b = Record::new();
        b.ok(1_000);
        b.ok(0);
        b.sent = 3;
        b.fail(ErrorKind::Reset, || "second".into());
        b.fail(ErrorKind::Non2xx, || "status 503".into());
        a.merge(&b);
        assert_eq!((a.ok, a.sent), (3, 5));
        assert_eq!(a.errors[ErrorKind::Reset as usize], 2);
        assert_eq!(a.error_total(), 3);
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.latency.min(), 1, "0 µs is recorded as 1");
        assert_eq!(
            a.first_errors,
            vec![
                "reset: first".to_string(),
                "non_2xx: status 503".to_string()
            ]
        );
    }

    #[test]
    fn io_errors_map_to_kinds() {
        use std::io::{Error, ErrorKind as Io};
        assert_eq!(
            ErrorKind::of_io(&Error::from(Io::TimedOut)),
            ErrorKind::Timeout
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(Io::UnexpectedEof)),
            ErrorKind::Closed
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(Io::ConnectionReset)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of_io(&Error::from(Io::BrokenPipe)),
            ErrorKind::Reset
        );
    }
}
