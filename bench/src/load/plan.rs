//! A validated load run: what to send, where, how fast and for how long.

use std::net::SocketAddr;
use std::time::Duration;

use super::tls::TlsPlan;

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 requests, each answered before the next is sent.
    Http,
    /// A byte stream written for the whole run (throughput in bytes/s).
    Tcp,
}

impl Mode {
    /// The mode's name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        }
    }
}

/// A run's whole plan, shared read-only by every generator thread.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub target: SocketAddr,
    /// HTTP requests or a TCP stream.
    pub mode: Mode,
    /// Open loop: requests per second offered in total (all threads).
    /// `None`: closed loop, each connection as fast as answers come.
    pub rate: Option<f64>,
    /// Connections in total (split between threads).
    pub connections: usize,
    /// One pinned generator thread per core; empty: one unpinned thread.
    pub cores: Vec<usize>,
    /// HTTP: keep connections open between requests (`false`: a new
    /// connection per request, its connect inside the latency).
    pub keep_alive: bool,
    /// HTTP: the request's bytes, sent as they are.
    pub request: Vec<u8>,
    /// TCP: bytes per write.
    pub chunk: usize,
    /// Load sent before the measured window, not counted.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Longest wait for a connection or a whole response.
    pub timeout: Duration,
    /// TLS 1.3 on every connection (`--tls-ca`); `None`: plaintext.
    pub tls: Option<TlsPlan>,
}

impl Plan {
    /// Generator threads.
    pub fn threads(&self) -> usize {
        self.cores.len().max(1)
    }

    /// Connections of thread `t` (the remainder goes to the first threads).
    pub fn connections_of(&self, t: usize) -> usize {
        let n = self.threads();
        self.connections / n + usize::from(t < self.connections % n)
    }

    /// Requests per second offered by thread `t` (open loop), in proportion
    /// to its connections.
    pub fn rate_of(&self, t: usize) -> Option<f64> {
        self.rate
            .map(|r| r * self.connections_of(t) as f64 / self.connections as f64)
    }

    /// A one-line description for the summary.
    pub fn describe(&self) -> String {
        let shape = match (self.mode, self.keep_alive) {
            (Mode::Tcp, _) => format!("tcp stream, {} B writes", self.chunk),
            (Mode::Http, true) => "http keep-alive".to_string(),
            (Mode::Http, false) => "http, new connection per request".to_string(),
        };
        let pace = match self.rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".to_string(),
        };
        let cores = if self.cores.is_empty() {
            "1 unpinned thread".to_string()
        } else {
            format!("cores {:?}", self.cores)
        };
        let tls = if self.tls.is_some() { " over TLS" } else { "" };
        format!(
            "{}, {shape}{tls}, {pace}, {} connections, {cores}, {:.2} s",
            self.target,
            self.connections,
            self.duration.as_secs_f64()
        )
    }
}

/// Builds an HTTP/1.1 request: `method path`, `Host`, extra header lines,
/// and `body_size` bytes of body (with its `Content-Length`). A request on a
/// connection used once says `Connection: close`, so the server closes
/// first and keeps the TIME_WAIT (the generator's ports stay free).
pub fn http_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[String],
    body_size: usize,
    keep_alive: bool,
) -> Vec<u8> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-bench\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if body_size > 0 || !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        head.push_str(&format!("Content-Length: {body_size}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.resize(bytes.len() + body_size, b'x');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, cores: Vec<usize>, rate: Option<f64>) -> Plan {
        Plan {
            target: "127.0.0.1:1".parse().unwrap(),
            mode: Mode::Http,
            rate,
            connections,
            cores,
            keep_alive: true,
            request: Vec::new(),
            chunk: 0,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            tls: None,
        }
    }

    #[test]
    fn connections_and_rate_split_between_threads() {
        let p = plan(5, vec![0, 1], Some(1000.0));
        assert_eq!((p.connections_of(0), p.connections_of(1)), (3, 2));
        assert_eq!(p.rate_of(0), Some(600.0));
        assert_eq!(p.rate_of(1), Some(400.0));
        let one = plan(4, vec![], None);
        assert_eq!(
            (one.threads(), one.connections_of(0), one.rate_of(0)),
            (1, 4, None)
        );
    }

    #[test]
    fn requests_are_framed() {
        let get = http_request("GET", "/a", "h", &["X-A: 1".into()], 0, true);
        assert_eq!(
            get,
            b"GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: ringway-bench\r\nX-A: 1\r\n\r\n"
        );
        let post = http_request("POST", "/", "h", &[], 3, false);
        assert!(post.ends_with(b"Content-Length: 3\r\nConnection: close\r\n\r\nxxx"));
        let empty_post = http_request("POST", "/", "h", &[], 0, true);
        assert!(empty_post.ends_with(b"Content-Length: 0\r\n\r\n"));
    }
}
