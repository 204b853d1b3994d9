//! Reading a collector's answer off a blocking socket: the head parsed by
//! `httparse` (interim 1xx answers skipped), then the body framed by
//! `Transfer-Encoding: chunked`, `Content-Length` or the end of the
//! connection, and read whole so the connection can carry the next
//! request; every read bounded by the request's deadline.
//!
//! The exporter needs the status, `Retry-After`, and a little of the body
//! (a partial-success message or an error text). A body beyond
//! [`MAX_DRAIN`] is not read to its end: the connection is closed instead.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use httparse::Status;

use super::retry::parse_retry_after;

/// Longest answer head read.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in a head.
const MAX_FIELDS: usize = 64;
/// Body bytes kept for the exporter: enough for a partial-success message
/// or an error page's first lines.
pub const MAX_KEEP: usize = 64 * 1024;
/// Most body bytes read to keep a connection for the next request; past
/// this the connection is closed rather than drained.
pub const MAX_DRAIN: u64 = 1024 * 1024;
/// Longest chunk size line (with extensions) or trailer section.
const MAX_LINE: usize = 4 * 1024;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 * 1024;

/// A collector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code of the final answer.
    pub status: u16,
    /// `Retry-After` in seconds, when given so.
    pub retry_after: Option<Duration>,
    /// The first [`MAX_KEEP`] bytes of the body.
    pub body: Vec<u8>,
    /// Whether the body is protobuf (`Content-Type:
    /// application/x-protobuf`), as an OTLP export response is.
    pub protobuf: bool,
    /// Whether the connection can carry another request.
    pub reusable: bool,
}

/// Why no answer could be read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The deadline passed.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The connection ended before a byte of the answer came.
    #[error("the collector closed the connection without answering")]
    Closed,
    /// The connection ended in the middle of the answer.
    #[error("the collector closed the connection in the middle of its answer")]
    Truncated,
    /// The bytes are not an HTTP/1.x answer.
    #[error("the answer is not valid HTTP/1.1: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("reading the answer failed: {0}")]
    Io(#[source] io::Error),
}

impl AnswerError {
    /// Whether it happened before any byte of the answer came, on a
    /// connection the peer closed or reset: the mark of a kept-alive
    /// connection the collector had closed while idle.
    pub fn before_any_byte(&self) -> bool {
        match self {
            AnswerError::Closed => true,
            AnswerError::Io(e) => is_closed(e),
            _ => false,
        }
    }
}

/// Whether `e` says the peer closed or reset the connection.
pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    Close,
}

/// The parts of a head the reader acts on.
#[derive(Debug)]
struct Head {
    status: u16,
    retry_after: Option<Duration>,
    framing: Framing,
    /// The collector keeps the connection open after this answer.
    keep_alive: bool,
    protobuf: bool,
}

/// Reads one answer from `stream` by `deadline`; `timeout` is the request's
/// whole allowance, for the error message.
pub fn read_answer<S: Read + Deadline>(
    stream: &mut S,
    deadline: Instant,
    timeout: Duration,
) -> Result<Answer, AnswerError> {
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        deadline,
        timeout,
        started: false,
    };
    let head = reader.head()?;
    let (body, complete) = match head.framing {
        Framing::Empty => (Vec::new(), true),
        Framing::Length(length) => reader.sized(length)?,
        Framing::Chunked => reader.chunked()?,
        Framing::Close => reader.until_close()?,
    };
    Ok(Answer {
        status: head.status,
        retry_after: head.retry_after,
        body,
        protobuf: head.protobuf,
        // Bytes after the answer were never asked for: do not trust the
        // connection with another request.
        reusable: head.keep_alive && complete && reader.buf.is_empty(),
    })
}

/// A stream whose reads can be bounded in time (a `TcpStream`; tests use
/// byte slices).
pub trait Deadline {
    /// Bounds the next reads to `timeout` (never zero).
    fn set_read_limit(&mut self, timeout: Duration) -> io::Result<()>;
}

impl Deadline for std::net::TcpStream {
    fn set_read_limit(&mut self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

impl Deadline for &[u8] {
    fn set_read_limit(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

struct Reader<'a, S> {
    stream: &'a mut S,
    /// Bytes read and not consumed yet.
    buf: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
    /// A byte of the answer came.
    started: bool,
}

impl<S: Read + Deadline> Reader<'_, S> {
    /// Reads once more into the buffer; returns how many bytes came (0 at
    /// the end of the stream).
    fn fill(&mut self) -> Result<usize, AnswerError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AnswerError::Timeout(self.timeout));
        }
        self.stream.set_read_limit(left).map_err(AnswerError::Io)?;
        let old = self.buf.len();
        self.buf.resize(old + READ_SIZE, 0);
        let read = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        AnswerError::Timeout(self.timeout)
                    }
                    _ => AnswerError::Io(e),
                });
            }
        };
        self.buf.truncate(old + n);
        self.started |= n > 0;
        Ok(n)
    }

    /// Like [`Self::fill`], but the end of the stream is an error.
    fn more(&mut self) -> Result<(), AnswerError> {
        match self.fill()? {
            0 if !self.started => Err(AnswerError::Closed),
            0 => Err(AnswerError::Truncated),
            _ => Ok(()),
        }
    }

    /// The head of the final answer.
    fn head(&mut self) -> Result<Head, AnswerError> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
            let mut response = httparse::Response::new(&mut fields);
            let parsed = response
                .parse(&self.buf)
                .map_err(|e| AnswerError::Malformed(format!("bad head: {e}")))?;
            let too_long = || AnswerError::Malformed(format!("head longer than {MAX_HEAD} bytes"));
            let Status::Complete(length) = parsed else {
                if self.buf.len() >= MAX_HEAD {
                    return Err(too_long());
                }
                self.more()?;
                continue;
            };
            if length > MAX_HEAD {
                return Err(too_long());
            }
            let head = read_head(&response)?;
            self.buf.drain(..length);
            // Interim answers (100 Continue, 103 Early Hints) precede the
            // final one.
            if (100..200).contains(&head.status) {
                continue;
            }
            return Ok(head);
        }
    }

    /// A body of `length` bytes; `false` when it was too long to drain.
    fn sized(&mut self, length: u64) -> Result<(Vec<u8>, bool), AnswerError> {
        if length > MAX_DRAIN {
            return Ok((Vec::new(), false));
        }
        let mut body = Vec::new();
        self.take(length, &mut body)?;
        Ok((body, true))
    }

    /// A chunked body; `false` when it was too long to drain.
    fn chunked(&mut self) -> Result<(Vec<u8>, bool), AnswerError> {
        let mut body = Vec::new();
        let mut drained: u64 = 0;
        loop {
            let (used, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(Status::Complete(found)) => break found,
                    Ok(Status::Partial) if self.buf.len() <= MAX_LINE => self.more()?,
                    Ok(Status::Partial) => {
                        return Err(AnswerError::Malformed("chunk size line too long".into()))
                    }
                    Err(_) => return Err(AnswerError::Malformed("bad chunk size line".into())),
                }
            };
            self.buf.drain(..used);
            if size == 0 {
                self.trailers()?;
                return Ok((body, true));
            }
            drained = drained.saturating_add(size);
            if drained > MAX_DRAIN {
                return Ok((body, false));
            }
            self.take(size, &mut body)?;
            while self.buf.len() < 2 {
                self.more()?;
            }
            if &self.buf[..2] != b"\r\n" {
                return Err(AnswerError::Malformed(
                    "chunk data not followed by CRLF".into(),
                ));
            }
            self.buf.drain(..2);
        }
    }

    /// Skips the trailer section, up to its empty line.
    fn trailers(&mut self) -> Result<(), AnswerError> {
        let mut skipped = 0;
        loop {
            match self.buf.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buf.drain(..2);
                    return Ok(());
                }
                Some(at) => {
                    skipped += at + 2;
                    self.buf.drain(..at + 2);
                }
                None => self.more()?,
            }
            if skipped > MAX_LINE {
                return Err(AnswerError::Malformed("trailer section too long".into()));
            }
        }
    }

    /// A body up to the end of the connection; `false` when it was too
    /// long to drain.
    fn until_close(&mut self) -> Result<(Vec<u8>, bool), AnswerError> {
        let mut body = Vec::new();
        let mut drained = 0u64;
        loop {
            keep(&mut body, &self.buf);
            drained += self.buf.len() as u64;
            self.buf.clear();
            if drained > MAX_DRAIN {
                return Ok((body, false));
            }
            if self.fill()? == 0 {
                return Ok((body, true));
            }
        }
    }

    /// Consumes `length` body bytes, keeping the first [`MAX_KEEP`].
    fn take(&mut self, mut length: u64, body: &mut Vec<u8>) -> Result<(), AnswerError> {
        while length > 0 {
            if self.buf.is_empty() {
                self.more()?;
            }
            let n = self
                .buf
                .len()
                .min(usize::try_from(length).unwrap_or(usize::MAX));
            keep(body, &self.buf[..n]);
            self.buf.drain(..n);
            length -= n as u64;
        }
        Ok(())
    }
}

/// Appends what fits of `bytes` under [`MAX_KEEP`].
fn keep(body: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_KEEP.saturating_sub(body.len());
    body.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// What the reader needs of a parsed head.
fn read_head(response: &httparse::Response<'_, '_>) -> Result<Head, AnswerError> {
    let malformed = |why: String| AnswerError::Malformed(why);
    let status = response
        .code
        .ok_or_else(|| malformed("no status code".into()))?;
    if status == 101 {
        return Err(malformed("a protocol switch was never asked for".into()));
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = response.version == Some(0);
    let mut retry_after = None;
    let mut protobuf = false;
    for field in response.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(field.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    malformed(format!(
                        "bad content-length {:?}",
                        String::from_utf8_lossy(field.value)
                    ))
                })?;
            if length.is_some_and(|l| l != value) {
                return Err(malformed("two different content-lengths".into()));
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides whether the body is chunked.
            let last = field
                .value
                .rsplit(|&b| b == b',')
                .next()
                .map(trim)
                .unwrap_or_default();
            chunked = last.eq_ignore_ascii_case(b"chunked");
            other_coding |= !chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            let tokens = || field.value.split(|&b| b == b',').map(trim);
            if tokens().any(|t| t.eq_ignore_ascii_case(b"close")) {
                close = true;
            } else if tokens().any(|t| t.eq_ignore_ascii_case(b"keep-alive")) {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = parse_retry_after(field.value);
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = field.value.split(|&b| b == b';').next().map(trim);
            protobuf = media.is_some_and(|m| m.eq_ignore_ascii_case(b"application/x-protobuf"));
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked && !other_coding {
        Framing::Chunked
    } else if other_coding {
        // A coding that does not end in chunked: the body runs to the
        // close (RFC 9112, section 6.3).
        Framing::Close
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::Close
    };
    Ok(Head {
        status,
        retry_after,
        framing,
        keep_alive: !close && framing != Framing::Close,
        protobuf,
    })
}

fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8]) -> Result<Answer, AnswerError> {
        let mut stream = raw;
        read_answer(
            &mut stream,
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(60),
        )
    }

    fn answer(raw: &str) -> Answer {
        read(raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    #[test]
    fn reads_a_sized_answer_and_keeps_the_connection() {
        let a = answer("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(
            a,
            Answer {
                status: 200,
                retry_after: None,
                body: b"abc".to_vec(),
                protobuf: true,
                reusable: true,
            }
        );
    }

    #[test]
    fn reads_a_chunked_answer_with_extensions_and_trailers() {
        let a = answer(
            "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
             5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        );
        // gzip then chunked: the body is framed by chunks (and kept as it
        // came; the exporter only logs it).
        assert_eq!((a.status, a.body.as_slice()), (400, &b"hello world"[..]));
        assert!(a.reusable);
    }

    #[test]
    fn reads_to_the_close_without_framing_and_does_not_reuse() {
        let a = answer("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\r\ndown for a bit");
        assert_eq!(a.status, 503);
        assert_eq!(a.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(a.body, b"down for a bit");
        assert!(!a.reusable);
        assert!(!a.protobuf);
        let coded = answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz");
        assert_eq!(coded.body, b"zz");
        assert!(!coded.reusable);
    }

    #[test]
    fn connection_close_and_http_1_0_end_the_connection() {
        let a = answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!a.reusable);
        let a = answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!a.reusable);
        let a = answer("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert!(a.reusable);
        // Bytes nobody asked for after the answer.
        let a = answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n");
        assert!(!a.reusable);
    }

    #[test]
    fn skips_interim_answers_and_reads_no_body_where_there_is_none() {
        let a = answer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
             HTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!((a.status, a.body.len(), a.reusable), (204, 0, true));
    }

    #[test]
    fn keeps_only_the_start_of_a_long_body() {
        let body = "x".repeat(MAX_KEEP + 10);
        let a = answer(&format!(
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(a.body.len(), MAX_KEEP);
        assert!(a.reusable, "drained, so reusable");
        let huge = answer(&format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_DRAIN + 1
        ));
        assert!(!huge.reusable, "not drained: closed instead");
    }

    #[test]
    fn refuses_what_is_not_an_http_answer() {
        for raw in [
            "SSH-2.0-OpenSSH_9.2\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            match read(raw.as_bytes()) {
                Err(AnswerError::Malformed(_)) => {}
                other => panic!("{raw:?}: {other:?}"),
            }
        }
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "y".repeat(MAX_HEAD));
        assert!(matches!(
            read(long.as_bytes()),
            Err(AnswerError::Malformed(_))
        ));
    }

    #[test]
    fn an_answer_cut_short_is_told_from_no_answer() {
        let none = read(b"").expect_err("nothing came");
        assert!(matches!(none, AnswerError::Closed));
        assert!(none.before_any_byte());
        for raw in [
            "HTTP/1.1 200 OK\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        ] {
            let err = read(raw.as_bytes()).expect_err(raw);
            assert!(matches!(err, AnswerError::Truncated), "{raw:?}: {err:?}");
            assert!(!err.before_any_byte());
        }
    }
}
