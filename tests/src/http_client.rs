//! A test client for HTTP listeners: requests built byte for byte
//! ([`Req`]), a kept-alive connection that sends them and reads responses
//! with their interim statuses, chunks and trailers ([`HttpConn`]), `curl`
//! runs, and readers of labelled `/metrics` samples.
//!
//! [`ringway_kit::admin`] has a client for the admin API's text answers; this one
//! keeps what the proxy tests look at and that one drops: body bytes,
//! chunk sizes, trailers, interim responses, raw heads, and how a connection
//! ended.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http_wire::{body_framing, parse_field, split_head, Framing, Piece, Wire, WireError};
use crate::net::{client, set_timeouts, try_client};
use crate::tls_client::ClientStream;
use ringway_kit::admin::{scalar, Metrics};

/// Longest response head the client reads.
const MAX_HEAD: usize = 1024 * 1024;

/// A request to send: method, target, version, fields in order, a body.
#[derive(Debug, Clone)]
pub struct Req {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: ReqBody,
}

#[derive(Debug, Clone)]
enum ReqBody {
    None,
    Length(Vec<u8>),
    Chunked {
        chunks: Vec<Vec<u8>>,
        trailers: Vec<(String, String)>,
    },
}

impl Req {
    /// `METHOD target HTTP/1.1` with `Host: example.test`.
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            version: "HTTP/1.1".to_owned(),
            headers: vec![("Host".to_owned(), "example.test".to_owned())],
            body: ReqBody::None,
        }
    }

    /// A GET.
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    /// A POST (give it a body).
    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }

    /// Replaces the `Host` field.
    pub fn host(mut self, host: &str) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        self.headers.insert(0, ("Host".to_owned(), host.to_owned()));
        self
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the version, e.g. `HTTP/1.0`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// A body sent with a `Content-Length`.
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = ReqBody::Length(body.to_vec());
        self
    }

    /// A chunked body, one chunk per element (none empty).
    pub fn chunked(mut self, chunks: &[&[u8]]) -> Self {
        self.body = ReqBody::Chunked {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            trailers: Vec::new(),
        };
        self
    }

    /// Adds a trailer field to a chunked body.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        match &mut self.body {
            ReqBody::Chunked { trailers, .. } => trailers.push((name.to_owned(), value.to_owned())),
            _ => panic!("a trailer on a request that is not chunked"),
        }
        self
    }

    /// Whether this is a HEAD request (its response has no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The request as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.body {
            ReqBody::None => out.extend_from_slice(b"\r\n"),
            ReqBody::Length(body) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            ReqBody::Chunked { chunks, trailers } => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for chunk in chunks {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                for (name, value) in trailers {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }
}

/// A response as the client read it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The status line as received.
    pub status_line: String,
    /// Header fields in order, as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How the body was delimited.
    pub framing: Framing,
    /// Chunk sizes, for a chunked body.
    pub chunks: Option<Vec<u64>>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// Statuses of the interim (1xx) responses before this one.
    pub interim: Vec<u16>,
    /// The head as received.
    pub raw_head: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http_wire::field(&self.headers, name)
    }

    /// Every value of header `name` (any case).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        crate::http_wire::fields_named(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics unless this is an error ringway wrote itself: `status`,
    /// `x-ringway-error: reason`, `content-type: text/plain;
    /// charset=utf-8`, a `content-length` matching a one-line body ending
    /// in a newline.
    pub fn assert_ringway_error(&self, status: u16, reason: &str) {
        let shown = || {
            format!(
                "{}{}",
                String::from_utf8_lossy(&self.raw_head),
                self.body_text()
            )
        };
        assert_eq!(self.status, status, "status of:\n{}", shown());
        assert_eq!(
            self.header("x-ringway-error"),
            Some(reason),
            "x-ringway-error of:\n{}",
            shown()
        );
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "content-type of:\n{}",
            shown()
        );
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str()),
            "content-length of:\n{}",
            shown()
        );
        let text = self.body_text();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1 && text.len() > 1,
            "the body is not one line ending in a newline:\n{}",
            shown()
        );
    }
}

/// One client connection, for any number of requests in a row, over plain
/// TCP or any other [`ClientStream`] (TLS).
#[derive(Debug)]
pub struct HttpConn<S = TcpStream> {
    wire: Wire<S>,
}

impl HttpConn {
    /// Connects to `addr` (with the harness's bounded socket timeouts).
    pub fn open(addr: SocketAddr) -> Self {
        Self {
            wire: Wire::new(client(addr)),
        }
    }

    /// A client on a socket the caller connected (bound to a source
    /// address of its choice, say); given the harness's timeouts.
    pub fn from_stream(stream: TcpStream) -> Self {
        crate::net::set_timeouts(&stream, Duration::from_secs(10));
        Self {
            wire: Wire::new(stream),
        }
    }

    /// Like [`HttpConn::open`], but returns a failed connect (a proxy that
    /// refuses connections may reset one before `connect` returns).
    pub fn try_open(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            wire: Wire::new(try_client(addr)?),
        })
    }
}

impl<S: ClientStream> HttpConn<S> {
    /// A client on a stream the caller set up (a TLS session, say).
    pub fn over(stream: S) -> Self {
        Self {
            wire: Wire::new(stream),
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        self.wire.get_ref().tcp()
    }

    /// The buffered reader over the socket, to read a body as a stream.
    pub fn wire(&mut self) -> &mut Wire<S> {
        &mut self.wire
    }

    /// Sets the socket's read and write timeouts.
    pub fn set_timeouts(&self, timeout: Duration) {
        set_timeouts(self.stream(), timeout);
    }

    /// Writes `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .unwrap_or_else(|e| panic!("sending {} bytes: {e}", bytes.len()));
    }

    /// Writes `bytes`, returning a failed write.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.wire.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Writes `request`.
    pub fn send(&mut self, request: &Req) {
        self.send_raw(&request.to_bytes());
    }

    /// Sends `request` and reads its response; panics on failure.
    pub fn exchange(&mut self, request: &Req) -> HttpResponse {
        self.send(request);
        self.try_read(request.is_head())
            .unwrap_or_else(|e| panic!("no response to {} {}: {e}", request.method, request.target))
    }

    /// Reads the next final response (not to a HEAD); panics on failure.
    pub fn read(&mut self) -> HttpResponse {
        self.try_read(false)
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }

    /// Reads the next final response, skipping and noting interim ones; with
    /// `head_only` (a HEAD request) the body is not read.
    pub fn try_read(&mut self, head_only: bool) -> Result<HttpResponse, WireError> {
        let mut interim = Vec::new();
        loop {
            let mut response = self.try_read_head()?;
            if (100..200).contains(&response.status) {
                interim.push(response.status);
                continue;
            }
            response.interim = interim;
            let no_body = head_only || response.status == 204 || response.status == 304;
            if !no_body {
                self.read_body_into(&mut response)?;
            }
            return Ok(response);
        }
    }

    /// Reads one head, interim or final, and no body; the framing is set
    /// from the fields (a HEAD answer's body must be skipped by the caller).
    pub fn try_read_head(&mut self) -> Result<HttpResponse, WireError> {
        let raw_head = self.wire.read_head(MAX_HEAD)?;
        let (line, lines) = split_head(&raw_head)?;
        let status_line = String::from_utf8_lossy(&line).into_owned();
        let status = parse_status(&status_line)?;
        let headers = lines
            .iter()
            .map(|l| parse_field(l))
            .collect::<Result<Vec<_>, _>>()?;
        let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::None
        } else {
            body_framing(&headers, Framing::Close)?
        };
        Ok(HttpResponse {
            status,
            status_line,
            headers,
            body: Vec::new(),
            framing,
            chunks: None,
            trailers: Vec::new(),
            interim: Vec::new(),
            raw_head,
        })
    }

    /// Reads one head (interim or final) and panics on failure.
    pub fn read_head_only(&mut self) -> HttpResponse {
        self.try_read_head()
            .unwrap_or_else(|e| panic!("no response head: {e}"))
    }

    /// Reads the body `response`'s head announces into it.
    pub fn read_body_into(&mut self, response: &mut HttpResponse) -> Result<(), WireError> {
        let mut body = Vec::new();
        let mut chunks = (response.framing == Framing::Chunked).then(Vec::new);
        let mut trailers = Vec::new();
        self.wire.read_body(response.framing, &mut |piece| {
            match piece {
                Piece::ChunkStart(n) => {
                    if let Some(c) = &mut chunks {
                        c.push(n);
                    }
                }
                Piece::Data(b) => body.extend_from_slice(b),
                Piece::End(t) => trailers = t.to_vec(),
            }
            Ok(())
        })?;
        response.body = body;
        response.chunks = chunks;
        response.trailers = trailers;
        Ok(())
    }

    /// Reads until the peer closes: returns the bytes that came first and
    /// whether it ended with a reset (`true`) or a FIN. Panics if the read
    /// fails otherwise (a timeout: the connection stayed open).
    pub fn read_until_closed(&mut self) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        match self.wire.read_to_end_with(&mut |b| {
            got.extend_from_slice(b);
            Ok(())
        }) {
            Ok(()) => (got, false),
            Err(WireError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => (got, true),
            Err(e) => panic!(
                "the connection did not close ({e}); {} bytes came: {:?}",
                got.len(),
                String::from_utf8_lossy(&got)
            ),
        }
    }

    /// Panics unless the peer closes the connection (FIN or reset) within
    /// `timeout` without sending anything more.
    pub fn assert_closed(&mut self, timeout: Duration) {
        self.set_timeouts(timeout);
        let (rest, _) = self.read_until_closed();
        assert!(
            rest.is_empty(),
            "bytes after the response instead of a close: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Sends `request` on a connection of its own and reads the response;
/// panics on failure.
pub fn fetch(addr: SocketAddr, request: &Req) -> HttpResponse {
    HttpConn::open(addr).exchange(request)
}

fn parse_status(line: &str) -> Result<u16, WireError> {
    let mut words = line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") || code.len() != 3 {
        return Err(WireError::Invalid(format!("bad status line {line:?}")));
    }
    code.parse()
        .map_err(|e| WireError::Invalid(format!("bad status code in {line:?}: {e}")))
}

/// What a `curl` run printed.
#[derive(Debug)]
pub struct CurlRun {
    /// Whether curl exited 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs the system `curl` with `args`, bounded by `--max-time 60`.
pub fn curl(args: &[&str]) -> CurlRun {
    let output = Command::new("curl")
        .args(["--max-time", "60"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl (is it installed?): {e}"));
    CurlRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Parses the heads curl dumps with `-D -` (one per response, interim ones
/// included) into (status, fields) pairs, in order.
pub fn curl_heads(dump: &str) -> Vec<(u16, Vec<(String, String)>)> {
    let mut heads = Vec::new();
    for block in dump.split("\r\n\r\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.trim_start().split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("curl dumped a bad status line {status_line:?}"));
        let fields = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        heads.push((status, fields));
    }
    heads
}

/// Reads a file curl wrote.
pub fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The sum of the samples of metric `name` whose labels include every
/// pair of `labels` (0 when none matches).
pub fn metric_sum(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .of(name)
        .into_iter()
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .filter_map(|s| scalar(&s.value))
        .sum()
}

/// Polls `/metrics` at `admin` until the sum of `name` over samples with
/// `labels` is `want`; panics after 10 s, showing the exposition. Workers
/// publish their counters on their own schedule, hence the wait.
pub fn wait_metric(admin: SocketAddr, name: &str, labels: &[(&str, &str)], want: f64) {
    let mut last = String::new();
    let reached = ringway_kit::wait::until(Duration::from_secs(10), || {
        let metrics = ringway_kit::admin::metrics(admin);
        let got = metric_sum(&metrics, name, labels);
        last = metrics.text;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got}"))
        }
    });
    if let Err(got) = reached {
        panic!("{name}{labels:?} is {got}, not {want}; /metrics:\n{last}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests_byte_for_byte() {
        let req = Req::post("/p")
            .host("a.test")
            .header("X-One", "1")
            .chunked(&[b"hi"])
            .trailer("T", "v");
        assert_eq!(
            req.to_bytes(),
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nX-One: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nhi\r\n0\r\nT: v\r\n\r\n"
        );
        assert_eq!(
            Req::get("/").version("HTTP/1.0").body(b"ab").to_bytes(),
            b"GET / HTTP/1.0\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nab"
        );
    }

    #[test]
    fn parses_curl_dumps() {
        let heads = curl_heads(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n",
        );
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[0].0, 100);
        assert_eq!(heads[1].1, vec![("location".to_owned(), "/x".to_owned())]);
    }
}
