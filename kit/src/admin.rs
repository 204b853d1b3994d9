//! The client of ringway's admin API (docs/admin.md): a small blocking
//! HTTP/1.1 client on `std::net`, a wait for `/ready`, and readers of
//! `/stats` (JSON) and `/metrics` (Prometheus text format).
//!
//! Three ways to send requests, one wire format:
//! - [`request`] (and [`get`], [`post`]): one request on a connection of its
//!   own, sent with `Connection: close`.
//! - [`Connection`]: several requests on one kept-alive connection, exactly
//!   as written (a test of keep-alive sees the server close it).
//! - [`AdminClient`]: a connection kept alive between requests and opened
//!   again when the server closed it while idle, so that a hundred PUTs a
//!   second cost one connection, not a hundred.
//!
//! Responses are read by `Content-Length`, by chunks, or to the end of the
//! stream, whichever the head announces; interim (1xx) responses are
//! skipped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use crate::wait::poll;

/// How long a connect to the admin API may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may take: more than the 10 s the agent waits
/// for the workers to acknowledge a table before answering `POST /config`.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read, far above what the admin API sends.
const MAX_BODY: usize = 64 << 20;

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order, names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (lossily decoded as UTF-8: the API answers text).
    pub body: String,
}

impl Response {
    /// The first header named `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server keeps the connection open after this response:
    /// no `Connection: close`, and a body whose end was not the stream's.
    fn keeps_alive(&self) -> bool {
        let closes = self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let framed = self.header("content-length").is_some()
            || self.header("transfer-encoding").is_some()
            || self.status == 204
            || self.status == 304;
        !closes && framed
    }
}

/// `GET path` on a connection of its own; panics if the request fails.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, None)
        .unwrap_or_else(|e| panic!("GET {path} from the admin API at {addr}: {e}"))
}

/// `POST path` with `body`; panics if the request fails.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(addr, "POST", path, Some(body))
        .unwrap_or_else(|e| panic!("POST {path} to the admin API at {addr}: {e}"))
}

/// `METHOD path` (with a body when given) on a fresh connection, sent with
/// `Connection: close`; returns the response or what went wrong.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<Response> {
    Connection::open(addr)?.send(method, path, body, true)
}

/// One connection to the admin API, for several requests in a row.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects within [`CONNECT_TIMEOUT`]; reads and writes may take
    /// [`IO_TIMEOUT`].
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        Self::open_with(addr, CONNECT_TIMEOUT, IO_TIMEOUT)
    }

    /// Connects within `connect`; every read or write may take `io`.
    pub fn open_with(addr: SocketAddr, connect: Duration, io: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, connect)?;
        stream.set_read_timeout(Some(io))?;
        stream.set_write_timeout(Some(io))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads its response; with `close`, asks the
    /// server to close the connection after it.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        close: bool,
    ) -> io::Result<Response> {
        self.exchange(method, path, body.map(str::as_bytes), close)
            .map_err(Failure::into_io)
    }

    /// Writes the request and reads the response, telling apart a failure
    /// before any byte of the response came (see [`Failure`]).
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        close: bool,
    ) -> Result<Response, Failure> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if close {
            head.push_str("Connection: close\r\n");
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body.unwrap_or_default());
        self.reader
            .get_mut()
            .write_all(&message)
            .map_err(Failure::of_io)?;
        // Past the first byte of the response, an error is a real one.
        match self.reader.fill_buf() {
            Ok([]) => {
                return Err(Failure::Stale(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the admin API closed the connection without answering",
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::of_io(e)),
        }
        read_response(&mut self.reader, method == "HEAD").map_err(Failure::Failed)
    }
}

/// A connection to the admin API kept alive between requests, opened on
/// first use and again when the server closed it.
#[derive(Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<Connection>,
}

impl AdminClient {
    /// A client of the admin API at `addr`; every connect, read and write
    /// gives up after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            conn: None,
        }
    }

    /// Sends one request (with a `Content-Length`, 0 for an empty `body`)
    /// and reads its response.
    ///
    /// When a reused connection turns out to be closed before any byte of
    /// the response came (the server dropped it while idle), the request is
    /// sent once more on a new connection: the server cannot have acted on
    /// it.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.exchange(method, path, body) {
            Err(Failure::Stale(_)) if reused => {
                self.exchange(method, path, body).map_err(Failure::into_io)
            }
            result => result.map_err(Failure::into_io),
        }
    }

    /// `GET /stats`, checked for a 200 and parsed.
    pub fn stats(&mut self) -> io::Result<serde_json::Value> {
        let response = self.request("GET", "/stats", b"")?;
        if response.status != 200 {
            return Err(io::Error::other(format!(
                "GET /stats answered {}: {}",
                response.status,
                response.body.trim_end()
            )));
        }
        serde_json::from_str(&response.body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Response, Failure> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with(self.addr, self.timeout, self.timeout)
                    .map_err(Failure::Failed)?;
                self.conn.insert(conn)
            }
        };
        let result = conn.exchange(method, path, Some(body), false);
        match &result {
            Ok(response) if response.keeps_alive() => {}
            // Closed by the server, or in an unknown state after an error.
            _ => self.conn = None,
        }
        result
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// Before any byte of the response came: on a reused connection this
    /// may mean the server had closed it, and the request can be sent
    /// again.
    Stale(io::Error),
    /// Anything else: never retried.
    Failed(io::Error),
}

impl Failure {
    /// A closed or reset connection is stale; a timeout is not (the server
    /// may be working on the request).
    fn of_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Failure::Stale(e),
            _ => Failure::Failed(e),
        }
    }

    fn into_io(self) -> io::Error {
        match self {
            Failure::Stale(e) | Failure::Failed(e) => e,
        }
    }
}

/// Reads one response: skips interim (1xx) ones, then reads the head and a
/// body delimited by `Transfer-Encoding: chunked`, `Content-Length` or the
/// end of the stream.
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> io::Result<Response> {
    loop {
        let status_line = read_line(reader)?;
        let status = parse_status_line(&status_line)?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let no_body = head_only || status == 204 || status == 304;
        let body = if no_body {
            Vec::new()
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            read_chunked(reader)?
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|e| invalid(format!("bad content-length {length:?}: {e}")))?;
            if length > MAX_BODY {
                return Err(invalid(format!("a body of {length} bytes is too large")));
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
            body
        };
        response.body = String::from_utf8_lossy(&body).into_owned();
        return Ok(response);
    }
}

/// Polls `GET /ready` until it answers 200 and returns that response.
/// Refused connections and other answers are retried: the API may not be up
/// yet. Panics after `timeout`, with the last outcome.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> Response {
    poll(
        &format!("GET /ready at {addr} answers 200"),
        timeout,
        || match request(addr, "GET", "/ready", None) {
            Ok(response) if response.status == 200 => Ok(response),
            Ok(response) => Err(format!("{} {:?}", response.status, response.body)),
            Err(e) => Err(e.to_string()),
        },
    )
}

/// Polls `/stats` until `generation` is the newest published one and every
/// worker runs it, and returns those stats; panics after `timeout`.
pub fn wait_generation(addr: SocketAddr, generation: u64, timeout: Duration) -> Stats {
    poll(
        &format!("every worker runs generation {generation}"),
        timeout,
        || {
            let stats = stats(addr);
            let workers = stats.worker_generations();
            if stats.generation() == generation && workers.iter().all(|&g| g == generation) {
                Ok(stats)
            } else {
                Err(stats.json.to_string())
            }
        },
    )
}

/// `GET /stats`, checked for a 200 and parsed.
pub fn stats(addr: SocketAddr) -> Stats {
    let response = get(addr, "/stats");
    assert_eq!(response.status, 200, "GET /stats: {response:?}");
    let json = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("GET /stats is not JSON ({e}): {}", response.body));
    Stats { json }
}

/// The JSON of `GET /stats`, with readers that panic, showing the whole
/// document, when a field is missing.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The parsed document.
    pub json: serde_json::Value,
}

impl Stats {
    /// The unsigned integer at JSON pointer `pointer`, e.g.
    /// `/workers/0/generation`.
    pub fn u64(&self, pointer: &str) -> u64 {
        self.json
            .pointer(pointer)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("/stats has no unsigned integer at {pointer}: {}", self.json))
    }

    /// The newest published generation.
    pub fn generation(&self) -> u64 {
        self.u64("/generation")
    }

    /// The worker entries.
    pub fn workers(&self) -> &[serde_json::Value] {
        self.json
            .get("workers")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("/stats has no `workers` array: {}", self.json))
    }

    /// The generation each worker runs, in worker order.
    pub fn worker_generations(&self) -> Vec<u64> {
        (0..self.workers().len())
            .map(|i| self.u64(&format!("/workers/{i}/generation")))
            .collect()
    }

    /// A worker counter summed over the workers.
    pub fn sum(&self, counter: &str) -> u64 {
        (0..self.workers().len())
            .map(|i| self.u64(&format!("/workers/{i}/{counter}")))
            .sum()
    }
}

/// `GET /metrics`, checked for a 200 and parsed with `prometheus-parse`.
pub fn metrics(addr: SocketAddr) -> Metrics {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200, "GET /metrics: {response:?}");
    let lines = response.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("GET /metrics does not parse ({e}):\n{}", response.body));
    Metrics {
        text: response.body,
        samples: scrape.samples,
    }
}

/// A parsed `/metrics` exposition, and its text.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The exposition as served.
    pub text: String,
    /// Its samples (a summary's quantiles are one sample; its `_sum` and
    /// `_count` are samples of their own).
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// The samples of metric `name`.
    pub fn of(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.metric == name).collect()
    }

    /// The sum of metric `name` over all its label sets; `None` when there
    /// is no such sample.
    pub fn try_sum(&self, name: &str) -> Option<f64> {
        let samples = self.of(name);
        (!samples.is_empty()).then(|| samples.iter().filter_map(|s| scalar(&s.value)).sum())
    }

    /// Like [`Metrics::try_sum`], but panics, showing the exposition, when
    /// the metric is missing.
    pub fn sum(&self, name: &str) -> f64 {
        self.try_sum(name)
            .unwrap_or_else(|| panic!("no metric {name} in /metrics:\n{}", self.text))
    }
}

/// The value of a counter, gauge or untyped sample.
pub fn scalar(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection ended inside a response head",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut words = line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(invalid(format!("bad status line {line:?}")));
    }
    code.parse()
        .map_err(|e| invalid(format!("bad status code in {line:?}: {e}")))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|e| invalid(format!("bad chunk size line {line:?}: {e}")))?;
        if size == 0 {
            // Trailer fields, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("a chunked body too large".to_owned()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".to_owned()));
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    fn parse(raw: &str) -> Response {
        read_response(&mut raw.as_bytes(), false).expect("a valid response")
    }

    #[test]
    fn reads_a_response_by_content_length() {
        let response = parse(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 3\r\n\r\nok\nextra",
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.body, "ok\n");
        assert!(response.keeps_alive());
    }

    #[test]
    fn reads_a_chunked_response_and_skips_interim_ones() {
        let response = parse(
            "HTTP/1.1 100 Continue\r\n\r\n\
             HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n\
             6;ext=1\r\nerror:\r\n7\r\n x: bad\r\n0\r\nTrailer: t\r\n\r\n",
        );
        assert_eq!(response.status, 400);
        assert_eq!(response.body, "error: x: bad");
    }

    #[test]
    fn reads_to_the_end_without_a_length() {
        let response = parse("HTTP/1.0 404 Not Found\r\n\r\nnot found\n");
        assert_eq!(response.status, 404);
        assert_eq!(response.body, "not found\n");
        assert!(!response.keeps_alive());
    }

    #[test]
    fn reads_two_responses_from_one_stream() {
        let mut raw = "HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\napplied generation 42\n\n\
                       HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno\n"
            .as_bytes();
        let first = read_response(&mut raw, false).expect("a first response");
        assert_eq!(first.status, 200);
        assert_eq!(first.body, "applied generation 42\n\n");
        assert!(first.keeps_alive());
        let second = read_response(&mut raw, false).expect("a second response");
        assert_eq!(second.status, 404);
        assert_eq!(second.body, "no\n");
        assert!(!second.keeps_alive());
    }

    #[test]
    fn refuses_a_garbled_or_truncated_response() {
        let err =
            read_response(&mut "SSH-2.0-OpenSSH\r\n\r\n".as_bytes(), false).expect_err("not HTTP");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_response(&mut "HTTP/1.1 200 OK\r\nX: 1\r\n".as_bytes(), false)
            .expect_err("cut short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_response(
            &mut "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".as_bytes(),
            false,
        )
        .expect_err("a truncated body");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn sums_metrics_over_labels() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\n\
                    a_total{worker=\"0\"} 3\na_total{worker=\"1\"} 4\n\
                    # HELP g A gauge.\n# TYPE g gauge\ng 1\n";
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
        let metrics = Metrics {
            text: text.to_owned(),
            samples: scrape.samples,
        };
        assert_eq!(metrics.sum("a_total"), 7.0);
        assert_eq!(metrics.sum("g"), 1.0);
        assert_eq!(metrics.try_sum("missing"), None);
    }

    /// Reads one request head from `conn`; false at end of stream.
    fn read_request(conn: &mut BufReader<TcpStream>) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            match conn.read_line(&mut line).expect("a request line") {
                0 => return false,
                1..=2 => return true,
                _ => {}
            }
        }
    }

    #[test]
    fn the_client_reconnects_when_the_server_closed_an_idle_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("a bound address");
        let server = thread::spawn(move || {
            // Each connection: one answer, then closed while idle.
            for answer in ["first", "second"] {
                let (stream, _) = listener.accept().expect("a connection");
                let mut conn = BufReader::new(stream);
                assert!(read_request(&mut conn));
                let body = format!("{answer}\n");
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                conn.get_mut()
                    .write_all(format!("{head}{body}").as_bytes())
                    .expect("the answer is sent");
            }
        });
        let mut client = AdminClient::new(addr, Duration::from_secs(5));
        let first = client
            .request("GET", "/healthz", b"")
            .expect("a first answer");
        assert_eq!(first.body, "first\n");
        let second = client
            .request("GET", "/healthz", b"")
            .expect("a second answer");
        assert_eq!(second.body, "second\n");
        server.join().expect("the server thread ends");
    }

    #[test]
    fn a_connection_does_not_reconnect() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("a bound address");
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            let mut conn = BufReader::new(stream);
            assert!(read_request(&mut conn));
            conn.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
                .expect("the answer is sent");
            // Closed while idle; a second connection would be accepted and
            // answered, which the client must not try.
            drop(conn);
            let (stream, _) = listener.accept().expect("the probe connection");
            let mut conn = BufReader::new(stream);
            read_request(&mut conn)
        });
        let mut conn = Connection::open(addr).expect("connected");
        let first = conn.send("GET", "/healthz", None, false).expect("answered");
        assert_eq!(first.body, "ok\n");
        assert!(conn.send("GET", "/healthz", None, false).is_err());
        // Unblock the server's second accept with a connection that sends
        // nothing.
        drop(TcpStream::connect(addr).expect("the probe connects"));
        assert!(!server.join().expect("the server thread ends"));
    }
}
