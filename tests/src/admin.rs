//! A client of the proxy's admin API (docs/admin.md): a small blocking
//! HTTP/1.1 client on `std::net`, a wait for `/ready`, and readers of
//! `/stats` (JSON) and `/metrics` (Prometheus text format).
//!
//! The client is deliberately tiny: one request per connection with
//! `Connection: close` ([`request`]), or several on one kept-alive
//! connection ([`Connection`]). Responses are read by `Content-Length`,
//! by chunks, or to end of stream, whichever the head announces.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::wait::poll;

use prometheus_parse::{Sample, Scrape, Value};

/// How long a connect to the admin API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may take: more than the 10 s the agent waits
/// for the workers to acknowledge a table before answering `POST /config`.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// Connects, with bounded connect, read and write times.
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
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
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if close {
            head.push_str("Connection: close\r\n");
        }
        if let Some(body) = body {
            head.push_str("Content-Type: application/toml\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body.unwrap_or_default().as_bytes());
        self.reader.get_mut().write_all(&message)?;
        read_response(&mut self.reader, method == "HEAD")
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
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
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
    }

    #[test]
    fn refuses_a_garbled_head() {
        let err =
            read_response(&mut "SSH-2.0-OpenSSH\r\n\r\n".as_bytes(), false).expect_err("not HTTP");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_response(&mut "HTTP/1.1 200 OK\r\nX: 1\r\n".as_bytes(), false)
            .expect_err("cut short");
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
}
