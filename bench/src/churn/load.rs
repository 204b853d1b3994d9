//! Closed-loop client load: a fixed number of threads, each doing one
//! request per TCP connection as fast as it is answered.
//!
//! A request is: connect to ringway's listener, write the request bytes,
//! read exactly as many back and check them, then read the end of the
//! stream (the origin closes after its echo; waiting for it makes the client
//! the passive closer, so its ports do not pile up in TIME_WAIT) and close.
//!
//! Every thread keeps its own counts and latency histogram per phase, so
//! nothing is shared on the request path but a relaxed load of the current
//! phase number; the main thread switches phases and collects everything at
//! the end.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use hdrhistogram::Histogram;

/// The phase number while no phase is being measured (warm-up, gaps).
const NO_PHASE: usize = usize::MAX;
/// Highest latency recorded, in µs: far above any socket timeout.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Pause after a failed request, so that a dead proxy is not hammered in a
/// tight loop (the count of errors is what matters, not their rate).
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// The connection was reset or broken while in use.
    Reset,
    /// The stream ended before the whole answer arrived.
    Short,
    /// The answer differs from the request, or more bytes came than sent.
    Mismatch,
    /// A socket timeout expired.
    Timeout,
    /// Any other I/O error.
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Short,
        ErrorKind::Mismatch,
        ErrorKind::Timeout,
        ErrorKind::Other,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Short => "short read",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The kind of an I/O error met after the connection was made.
    fn of_io(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::UnexpectedEof => ErrorKind::Short,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Other,
        }
    }
}

/// Requests that succeeded and failed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests answered correctly.
    pub ok: u64,
    /// Failed requests, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; 6],
}

impl Counts {
    /// All failed requests.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Failed requests of one kind.
    pub fn of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.ok += other.ok;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
    }
}

/// What the clients saw during one phase.
#[derive(Debug, Clone)]
pub struct PhaseLoad {
    /// Requests by outcome.
    pub counts: Counts,
    /// Latency of the successful requests (connect to end of stream), µs.
    pub latency: Histogram<u64>,
}

impl PhaseLoad {
    fn new() -> Self {
        Self {
            counts: Counts::default(),
            latency: new_histogram(),
        }
    }

    fn add(&mut self, other: &PhaseLoad) {
        self.counts.add(&other.counts);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

/// Everything the clients saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// One entry per phase.
    pub phases: Vec<PhaseLoad>,
    /// Requests finished while no phase was measured (warm-up, gaps). Their
    /// errors still count against the run.
    pub outside: Counts,
}

/// The running client threads.
#[derive(Debug)]
pub struct Load {
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Requests finished, successful or not, whatever the phase: for
    /// progress checks only.
    finished: Arc<AtomicU64>,
    threads: Vec<JoinHandle<ClientReport>>,
}

/// What the client threads were asked to do.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Where to connect (ringway's listener).
    pub target: SocketAddr,
    /// Number of client threads.
    pub clients: usize,
    /// Number of measured phases.
    pub phases: usize,
    /// Bytes per request.
    pub request_size: usize,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// The core every client thread is pinned to.
    pub core: CoreId,
}

impl Load {
    /// Starts the client threads; they run until [`Load::stop`].
    pub fn start(settings: &LoadSettings) -> io::Result<Self> {
        let phase = Arc::new(AtomicUsize::new(NO_PHASE));
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(settings.clients);
        for id in 0..settings.clients {
            let client = Client {
                id: id as u64,
                settings: settings.clone(),
                phase: Arc::clone(&phase),
                stop: Arc::clone(&stop),
                finished: Arc::clone(&finished),
            };
            let thread = thread::Builder::new()
                .name(format!("client-{id}"))
                .spawn(move || client.run())?;
            threads.push(thread);
        }
        Ok(Self {
            phase,
            stop,
            finished,
            threads,
        })
    }

    /// From now on, finished requests count for phase `index` (`None`:
    /// for no phase).
    pub fn set_phase(&self, index: Option<usize>) {
        self.phase
            .store(index.unwrap_or(NO_PHASE), Ordering::SeqCst);
    }

    /// Requests finished so far, successful or not.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// Stops every client after its current request and sums what they saw.
    pub fn stop(self, phases: usize) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport {
            phases: (0..phases).map(|_| PhaseLoad::new()).collect(),
            outside: Counts::default(),
        };
        for thread in self.threads {
            // A client thread does not panic (no unwrap, no indexing past
            // its own vectors); if one did, its counts are lost and the
            // report says so through the missing requests.
            let Ok(client) = thread.join() else {
                eprintln!("ringway-bench: a client thread panicked; its counts are lost");
                continue;
            };
            for (sum, mine) in report.phases.iter_mut().zip(&client.phases) {
                sum.add(mine);
            }
            report.outside.add(&client.outside);
        }
        report
    }
}

/// One client thread's state.
struct Client {
    id: u64,
    settings: LoadSettings,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicU64>,
}

/// One client thread's results.
struct ClientReport {
    phases: Vec<PhaseLoad>,
    outside: Counts,
}

impl Client {
    fn run(self) -> ClientReport {
        // The caller checked that the core exists.
        core_affinity::set_for_current(self.settings.core);
        let mut report = ClientReport {
            phases: (0..self.settings.phases)
                .map(|_| PhaseLoad::new())
                .collect(),
            outside: Counts::default(),
        };
        let size = self.settings.request_size;
        let mut request = vec![0u8; size];
        let mut answer = vec![0u8; size];
        let mut seq: u64 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            fill(&mut request, self.id, seq);
            seq += 1;
            let started = Instant::now();
            let outcome = exchange(&self.settings, &request, &mut answer);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let phase = self.phase.load(Ordering::Relaxed);
            let slot = report.phases.get_mut(phase);
            match (outcome, slot) {
                (Ok(()), Some(slot)) => {
                    slot.counts.ok += 1;
                    let _ = slot.latency.record(micros.clamp(1, MAX_LATENCY_US));
                }
                (Ok(()), None) => report.outside.ok += 1,
                (Err(kind), Some(slot)) => slot.counts.errors[kind.index()] += 1,
                (Err(kind), None) => report.outside.errors[kind.index()] += 1,
            }
            self.finished.fetch_add(1, Ordering::Relaxed);
            if outcome.is_err() {
                thread::sleep(ERROR_PAUSE);
            }
        }
        report
    }
}

/// One request on a new connection.
fn exchange(settings: &LoadSettings, request: &[u8], answer: &mut [u8]) -> Result<(), ErrorKind> {
    let mut stream =
        TcpStream::connect_timeout(&settings.target, settings.timeout).map_err(|e| {
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
                _ => ErrorKind::Connect,
            }
        })?;
    let setup = stream
        .set_read_timeout(Some(settings.timeout))
        .and_then(|()| stream.set_write_timeout(Some(settings.timeout)))
        .and_then(|()| stream.set_nodelay(true));
    setup.map_err(|e| ErrorKind::of_io(&e))?;
    stream
        .write_all(request)
        .map_err(|e| ErrorKind::of_io(&e))?;
    stream
        .read_exact(answer)
        .map_err(|e| ErrorKind::of_io(&e))?;
    if answer != request {
        return Err(ErrorKind::Mismatch);
    }
    // The origin closes after its echo: expect the end of the stream, not
    // one more byte.
    let mut extra = [0u8; 1];
    match stream.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(_) => Err(ErrorKind::Mismatch),
        Err(e) => Err(ErrorKind::of_io(&e)),
    }
}

/// Fills `buf` with a pattern unique to (client, sequence number), so that
/// an answer meant for another request is caught.
fn fill(buf: &mut [u8], client: u64, seq: u64) {
    let tag = (client << 48) ^ seq;
    for (i, b) in buf.iter_mut().enumerate() {
        let shift = (i % 8) * 8;
        *b = ((tag >> shift) as u8).wrapping_add((i / 8) as u8);
    }
}

/// A latency histogram in µs, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn patterns_differ_between_requests() {
        let (mut a, mut b, mut c) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        fill(&mut a, 1, 7);
        fill(&mut b, 1, 8);
        fill(&mut c, 2, 7);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_refused_connection_is_a_connect_error() {
        // Bound but not listening: connecting is refused.
        let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let target = taken.local_addr().expect("a bound address");
        drop(taken);
        let settings = LoadSettings {
            target,
            clients: 1,
            phases: 1,
            request_size: 8,
            timeout: Duration::from_secs(1),
            core: CoreId { id: 0 },
        };
        let outcome = exchange(&settings, &[1; 8], &mut [0; 8]);
        assert_eq!(outcome, Err(ErrorKind::Connect));
    }

    #[test]
    fn counts_sum_by_kind() {
        let mut a = Counts {
            ok: 3,
            ..Counts::default()
        };
        a.errors[ErrorKind::Reset.index()] = 2;
        let mut b = a;
        b.add(&a);
        assert_eq!(b.ok, 6);
        assert_eq!(b.of(ErrorKind::Reset), 4);
        assert_eq!(b.error_total(), 4);
    }
}
