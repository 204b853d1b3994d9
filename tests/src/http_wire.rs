//! HTTP/1.1 on the wire, shared by the test origin ([`crate::http_origin`])
//! and the test client ([`crate::http_client`]): a buffered reader that can
//! tap every byte it takes in, heads split into lines, header fields parsed
//! strictly, and bodies read by length or by chunks without holding them.
//!
//! Strict means: a line that does not end in CRLF, a folded line, a space
//! before a colon, a control character in a value, a chunk size that is not
//! 1 to 16 hex digits: each is an error, never guessed around. What the proxy
//! forwards must pass this; a lenient reader would hide its mistakes.

use std::fmt;
use std::io::{self, Read};

/// Bytes asked for by one read of the socket.
const READ_SIZE: usize = 64 * 1024;

/// Why reading a message failed.
#[derive(Debug)]
pub enum WireError {
    /// The stream ended where no message had begun.
    Eof,
    /// The stream ended inside a message.
    Truncated(&'static str),
    /// The bytes are not valid HTTP/1.1 framing.
    Invalid(String),
    /// The socket failed (a reset, a timeout).
    Io(io::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Eof => write!(f, "end of stream before a message"),
            WireError::Truncated(inside) => write!(f, "end of stream inside {inside}"),
            WireError::Invalid(why) => write!(f, "invalid HTTP/1.1: {why}"),
            WireError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

/// Shorthand for an [`WireError::Invalid`].
pub fn invalid<T>(why: impl Into<String>) -> Result<T, WireError> {
    Err(WireError::Invalid(why.into()))
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Up to the end of the stream (responses only).
    Close,
}

/// A piece of a body as it is read.
#[derive(Debug)]
pub enum Piece<'a> {
    /// A chunk of this size begins (chunked bodies only).
    ChunkStart(u64),
    /// Body bytes.
    Data(&'a [u8]),
    /// The body ended; the trailer fields of a chunked body, if any.
    End(&'a [(String, String)]),
}

/// What a [`Wire`] shows every byte it reads to.
pub type Tap = dyn FnMut(&[u8]) + Send;

/// A reader over `R` with its own buffer, handing every byte it reads from
/// `R` to a tap first (the origin's record of raw bytes).
pub struct Wire<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    tap: Box<Tap>,
}

impl<R> fmt::Debug for Wire<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("buffered", &(self.buf.len() - self.start))
            .finish()
    }
}

impl<R: Read> Wire<R> {
    /// A reader without a tap.
    pub fn new(inner: R) -> Self {
        Self::tapped(inner, |_| {})
    }

    /// A reader that shows every byte read to `tap`, in order.
    pub fn tapped(inner: R, tap: impl FnMut(&[u8]) + Send + 'static) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(READ_SIZE),
            start: 0,
            tap: Box::new(tap),
        }
    }

    /// The reader underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The reader underneath, to write to it.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes read but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads once more into the buffer; returns how many bytes came (0 at
    /// end of stream).
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_SIZE {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_SIZE, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        (self.tap)(&self.buf[old..]);
        Ok(n)
    }

    /// Reads a head: everything up to and including the first empty line
    /// (`CRLF CRLF`), at most `max` bytes. Returns the raw head.
    pub fn read_head(&mut self, max: usize) -> Result<Vec<u8>, WireError> {
        let mut searched: usize = 0;
        loop {
            let avail = &self.buf[self.start..];
            if let Some(at) = find(&avail[searched.saturating_sub(3)..], b"\r\n\r\n") {
                let end = searched.saturating_sub(3) + at + 4;
                if end > max {
                    return invalid(format!("head longer than {max} bytes"));
                }
                let head = avail[..end].to_vec();
                self.start += end;
                return Ok(head);
            }
            searched = avail.len();
            if searched > max {
                return invalid(format!("head longer than {max} bytes"));
            }
            if self.fill()? == 0 {
                return Err(if self.buf.len() == self.start {
                    WireError::Eof
                } else {
                    WireError::Truncated("a head")
                });
            }
        }
    }

    /// Reads one line ending in CRLF (at most `max` bytes); returns it
    /// without the CRLF. A bare LF is an error.
    pub fn read_line(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, WireError> {
        loop {
            let avail = &self.buf[self.start..];
            if let Some(at) = avail.iter().position(|&b| b == b'\n') {
                if at == 0 || avail[at - 1] != b'\r' {
                    return invalid(format!("{what} ends in a bare LF"));
                }
                let line = avail[..at - 1].to_vec();
                self.start += at + 1;
                return Ok(line);
            }
            if avail.len() > max {
                return invalid(format!("{what} longer than {max} bytes"));
            }
            if self.fill()? == 0 {
                return Err(WireError::Truncated(what));
            }
        }
    }

    /// Reads exactly `len` bytes, handing them to `sink` as they come.
    pub fn read_exact_with(
        &mut self,
        mut len: u64,
        what: &'static str,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), WireError> {
        while len > 0 {
            if self.start == self.buf.len() && self.fill()? == 0 {
                return Err(WireError::Truncated(what));
            }
            let avail = &self.buf[self.start..];
            let n = avail.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            sink(&avail[..n])?;
            self.start += n;
            len -= n as u64;
        }
        Ok(())
    }

    /// Reads to the end of the stream, handing the bytes to `sink`.
    pub fn read_to_end_with(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), WireError> {
        loop {
            if self.start < self.buf.len() {
                sink(&self.buf[self.start..])?;
                self.start = self.buf.len();
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }

    /// Reads a body framed by `framing`, handing it to `sink` piece by
    /// piece, ending with [`Piece::End`].
    pub fn read_body(
        &mut self,
        framing: Framing,
        sink: &mut dyn FnMut(Piece<'_>) -> io::Result<()>,
    ) -> Result<(), WireError> {
        match framing {
            Framing::None => {}
            Framing::Length(len) => {
                self.read_exact_with(len, "a body", &mut |b| sink(Piece::Data(b)))?;
            }
            Framing::Close => self.read_to_end_with(&mut |b| sink(Piece::Data(b)))?,
            Framing::Chunked => return self.read_chunks(sink),
        }
        sink(Piece::End(&[]))?;
        Ok(())
    }

    fn read_chunks(
        &mut self,
        sink: &mut dyn FnMut(Piece<'_>) -> io::Result<()>,
    ) -> Result<(), WireError> {
        loop {
            let line = self.read_line(4096, "a chunk size line")?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let line = self.read_line(64 * 1024, "the trailer section")?;
                    if line.is_empty() {
                        break;
                    }
                    trailers.push(parse_field(&line)?);
                }
                sink(Piece::End(&trailers))?;
                return Ok(());
            }
            sink(Piece::ChunkStart(size))?;
            self.read_exact_with(size, "chunk data", &mut |b| sink(Piece::Data(b)))?;
            if !self.read_line(2, "the CRLF after chunk data")?.is_empty() {
                return invalid("chunk data not followed by CRLF");
            }
        }
    }
}

impl<R: Read> Read for Wire<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.buf.len() && self.fill()? == 0 {
            return Ok(0);
        }
        let avail = &self.buf[self.start..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.start += n;
        Ok(n)
    }
}

/// A chunk size line: 1 to 16 hex digits, then optionally `;extensions`.
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return invalid(format!(
            "bad chunk size line {:?}",
            String::from_utf8_lossy(line)
        ));
    }
    let text = std::str::from_utf8(digits).unwrap_or_default();
    u64::from_str_radix(text, 16).or_else(|e| invalid(format!("chunk size {text:?}: {e}")))
}

/// Splits a head into its first line and its field lines, every line ending
/// in CRLF (a bare CR or LF anywhere is an error).
pub fn split_head(head: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), WireError> {
    let body = head
        .strip_suffix(b"\r\n\r\n")
        .ok_or_else(|| WireError::Invalid("head does not end in CRLF CRLF".to_owned()))?;
    let mut lines = Vec::new();
    let mut rest = body;
    loop {
        match find(rest, b"\r\n") {
            Some(at) => {
                lines.push(rest[..at].to_vec());
                rest = &rest[at + 2..];
            }
            None => {
                lines.push(rest.to_vec());
                break;
            }
        }
    }
    for line in &lines {
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return invalid(format!(
                "bare CR or LF in head line {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    let first = lines.remove(0);
    Ok((first, lines))
}

/// Parses `name: value`: a token name, the colon right after it, a value of
/// visible characters, spaces and tabs (trimmed). Folded lines are errors.
pub fn parse_field(line: &[u8]) -> Result<(String, String), WireError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| WireError::Invalid(format!("field line without a colon: {:?}", shown())))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return invalid(format!("bad field name in {:?}", shown()));
    }
    let value = trim(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return invalid(format!("control character in field value: {:?}", shown()));
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// Whether `b` may appear in a token (RFC 9110 `tchar`).
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The first value of field `name` (any case) among `fields`.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of field `name` (any case), in order.
pub fn fields_named<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether a comma-separated field `name` lists `token` (any case).
pub fn lists_token(fields: &[(String, String)], name: &str, token: &str) -> bool {
    fields_named(fields, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The framing fields `fields` declare for a message that may have a body:
/// exactly one `Transfer-Encoding: chunked`, or one `Content-Length` of
/// digits, or neither (`default`). Both, two lengths, or another coding are
/// errors.
pub fn body_framing(fields: &[(String, String)], default: Framing) -> Result<Framing, WireError> {
    let te = fields_named(fields, "transfer-encoding");
    let cl = fields_named(fields, "content-length");
    match (te.as_slice(), cl.as_slice()) {
        ([], []) => Ok(default),
        ([te], []) if te.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        ([], [cl])
            if !cl.is_empty() && cl.len() <= 19 && cl.bytes().all(|b| b.is_ascii_digit()) =>
        {
            cl.parse()
                .map(Framing::Length)
                .or_else(|e| invalid(format!("content-length {cl:?}: {e}")))
        }
        _ => invalid(format!(
            "ambiguous framing: transfer-encoding {te:?}, content-length {cl:?}"
        )),
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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

    fn wire(bytes: &'static [u8]) -> Wire<&'static [u8]> {
        Wire::new(bytes)
    }

    fn body(bytes: &'static [u8], framing: Framing) -> Result<(Vec<u8>, Vec<u64>), WireError> {
        let mut w = wire(bytes);
        let mut data = Vec::new();
        let mut chunks = Vec::new();
        w.read_body(framing, &mut |p| {
            match p {
                Piece::ChunkStart(n) => chunks.push(n),
                Piece::Data(b) => data.extend_from_slice(b),
                Piece::End(_) => {}
            }
            Ok(())
        })?;
        Ok((data, chunks))
    }

    #[test]
    fn reads_heads_and_pipelined_rest() {
        let mut w = wire(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
        let head = w.read_head(1024).expect("a head");
        assert_eq!(head, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(w.buffered(), b"GET /2 HTTP/1.1\r\n\r\n");
        let (first, fields) = split_head(&head).expect("splits");
        assert_eq!(first, b"GET / HTTP/1.1");
        assert_eq!(
            parse_field(&fields[0]).expect("a field"),
            ("Host".into(), "a".into())
        );
        assert!(w.read_head(1024).is_ok());
        assert!(matches!(w.read_head(1024), Err(WireError::Eof)));
        assert!(matches!(
            wire(b"GET / HT").read_head(1024),
            Err(WireError::Truncated(_))
        ));
    }

    #[test]
    fn refuses_lax_field_lines() {
        for bad in [
            &b"Host : x"[..],
            b" folded",
            b"X: a\0b",
            b"X: a\rb",
            b"X y: 1",
            b"novalue",
        ] {
            assert!(
                parse_field(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(split_head(b"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n").is_err());
    }

    #[test]
    fn reads_chunked_bodies_strictly() {
        let (data, chunks) = body(
            b"5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n",
            Framing::Chunked,
        )
        .expect("ok");
        assert_eq!(data, b"hello!");
        assert_eq!(chunks, [5, 1]);
        for bad in [
            &b"zz\r\n"[..],
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
        ] {
            let bytes: &'static [u8] = bad;
            assert!(
                matches!(body(bytes, Framing::Chunked), Err(WireError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn framing_is_unambiguous() {
        let f = |pairs: &[(&str, &str)]| {
            let fields: Vec<(String, String)> = pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            body_framing(&fields, Framing::None)
        };
        assert_eq!(
            f(&[("Content-Length", "12")]).ok(),
            Some(Framing::Length(12))
        );
        assert_eq!(
            f(&[("transfer-encoding", "Chunked")]).ok(),
            Some(Framing::Chunked)
        );
        assert_eq!(f(&[]).ok(), Some(Framing::None));
        for bad in [
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")][..],
            &[("Content-Length", "5"), ("Content-Length", "5")],
            &[("Content-Length", "+5")],
            &[("Content-Length", "5, 5")],
            &[("Transfer-Encoding", "gzip, chunked")],
        ] {
            assert!(f(bad).is_err(), "{bad:?}");
        }
    }
}
