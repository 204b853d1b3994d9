//! The echo origin behind ringway: a few listening ports on 127.0.0.1, a
//! fixed pool of threads per port. Each thread accepts a connection, reads
//! one request of a fixed size, writes it back and closes.
//!
//! Threads are made once, not per connection, so that the origin's own cost
//! stays flat and small next to the proxy's.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use core_affinity::CoreId;

/// A running echo origin.
#[derive(Debug)]
pub struct Origin {
    addrs: Vec<SocketAddr>,
    threads_per_port: usize,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

/// What the origin did.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginReport {
    /// Requests echoed completely.
    pub served: u64,
    /// Connections that failed before the echo was written (a reset, a
    /// timeout, a short request).
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    served: AtomicU64,
    errors: AtomicU64,
}

impl Origin {
    /// Listens on `ports` ephemeral ports of 127.0.0.1 with
    /// `threads_per_port` threads each, all pinned to `core`. Each
    /// connection carries one request of `request_size` bytes; a peer that
    /// stalls for `io_timeout` is dropped.
    pub fn start(
        ports: usize,
        threads_per_port: usize,
        request_size: usize,
        core: CoreId,
        io_timeout: Duration,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut addrs = Vec::with_capacity(ports);
        let mut threads = Vec::with_capacity(ports * threads_per_port);
        for port in 0..ports {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            addrs.push(listener.local_addr()?);
            for n in 0..threads_per_port {
                let listener = listener.try_clone()?;
                let stop = Arc::clone(&stop);
                let counters = Arc::clone(&counters);
                let thread = thread::Builder::new()
                    .name(format!("origin-{port}-{n}"))
                    .spawn(move || {
                        // Pinning can only fail for a core that does not
                        // exist, which the caller has checked.
                        core_affinity::set_for_current(core);
                        serve(&listener, &stop, &counters, request_size, io_timeout);
                    })?;
                threads.push(thread);
            }
        }
        Ok(Self {
            addrs,
            threads_per_port,
            stop,
            counters,
            threads,
        })
    }

    /// The listening addresses, one per port.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops every thread and reports what the origin did.
    pub fn stop(self) -> OriginReport {
        self.stop.store(true, Ordering::SeqCst);
        // Each thread is blocked in accept: one connection per thread wakes
        // it, and it sees the flag before serving.
        for addr in &self.addrs {
            for _ in 0..self.threads_per_port {
                let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
            }
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        OriginReport {
            served: self.counters.served.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
        }
    }
}

/// One origin thread: accept, echo one request, close; until `stop`.
fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    counters: &Counters,
    request_size: usize,
    io_timeout: Duration,
) {
    let mut buf = vec![0u8; request_size];
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(_) => {
                // Out of descriptors or similar: count it and do not spin.
                counters.errors.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match echo(stream, &mut buf, io_timeout) {
            Ok(()) => counters.served.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Reads `buf.len()` bytes from `stream` and writes them back; the stream is
/// closed when it is dropped on return.
fn echo(mut stream: TcpStream, buf: &mut [u8], io_timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    stream.set_nodelay(true)?;
    stream.read_exact(buf)?;
    stream.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_one_request_then_closes() {
        let origin = Origin::start(2, 1, 16, CoreId { id: 0 }, Duration::from_secs(2))
            .expect("the origin starts");
        for addr in origin.addrs() {
            let mut stream = TcpStream::connect(addr).expect("the origin listens");
            stream
                .write_all(b"0123456789abcdef")
                .expect("the request is sent");
            let mut back = Vec::new();
            stream
                .read_to_end(&mut back)
                .expect("the echo arrives, then EOF");
            assert_eq!(back, b"0123456789abcdef");
        }
        let report = origin.stop();
        assert_eq!(report.served, 2);
        assert_eq!(report.errors, 0);
    }
}
