//! The strict line scanner: judges a message head byte by byte, in order.
//!
//! `httparse` is fast and well fuzzed but lenient where a proxy must not be
//! (it takes a bare LF as a line end), and its errors do not say which rule
//! broke. This scanner runs first and enforces every byte-level rule of the
//! head; `httparse` then only splits a head already known to be clean.
//!
//! Each verdict depends only on the bytes before the point where it is
//! made, and a verdict that needs a byte not yet received waits for it.
//! So a head fed in pieces is refused at the same byte, for the same
//! reason, as the head fed whole: the property the split tests check.

use std::ops::Range;

use super::chars::{is_tchar, is_value_byte};

/// A broken rule, before the caller picks the status it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// The request line did not end within its limit.
    LineTooLong,
    /// The head is over a size or count limit.
    TooLarge(&'static str),
    /// The head breaks the grammar.
    Bad(&'static str),
}

/// The first line of a scanned head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum First {
    /// A request line.
    Request {
        method: Range<usize>,
        target: Range<usize>,
        minor: u8,
    },
    /// A status line.
    Response {
        minor: u8,
        status: u16,
        reason: Range<usize>,
    },
}

/// A complete, clean head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scanned {
    /// Bytes of the head, the final CRLF CRLF included.
    pub(super) len: usize,
    /// The start line.
    pub(super) first: First,
}

/// Which start line to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Request,
    Response,
}

/// Limits on one head.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Longest start line, its CRLF not counted.
    pub(super) line: usize,
    /// Largest head.
    pub(super) bytes: usize,
    /// Most header fields.
    pub(super) fields: usize,
}

/// Scans the head at the start of `buf`: `Ok(None)` while it is incomplete
/// and within the limits.
pub(super) fn scan(buf: &[u8], kind: Kind, bounds: Bounds) -> Result<Option<Scanned>, Fault> {
    // Ranges are stored as u32; a head can never be larger than that.
    let max_bytes = bounds.bytes.min(u32::MAX as usize);
    let window = &buf[..buf.len().min(max_bytes)];
    let mut c = Cursor {
        buf: window,
        pos: 0,
        end: window.len(),
        line_end: None,
    };
    match head(&mut c, kind, bounds) {
        Ok(s) => Ok(Some(s)),
        Err(Stop::Fault(f)) => Err(f),
        Err(Stop::More) if c.line_end.is_some() => Err(Fault::LineTooLong),
        // Out of bytes with the window full: the head cannot end within
        // the limit, however many more bytes arrive.
        Err(Stop::More) if buf.len() >= max_bytes => {
            Err(Fault::TooLarge("header block larger than the limit"))
        }
        Err(Stop::More) => Ok(None),
    }
}

/// Why scanning stopped early.
enum Stop {
    /// The verdict needs bytes not received yet.
    More,
    /// A rule is broken.
    Fault(Fault),
}

fn bad<T>(detail: &'static str) -> Result<T, Stop> {
    Err(Stop::Fault(Fault::Bad(detail)))
}

/// A read position with an end that may be the start line's limit rather
/// than the end of the received bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    /// Set while the end is the start-line limit, so running out of bytes
    /// there means the line is too long rather than incomplete.
    line_end: Option<usize>,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        if self.pos < self.end {
            self.buf.get(self.pos).copied().ok_or(Stop::More)
        } else {
            Err(Stop::More)
        }
    }

    fn next(&mut self) -> Result<u8, Stop> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// After a CR: the LF that must follow it; anything else is the fault
    /// `detail` names.
    fn lf(&mut self, detail: &'static str) -> Result<(), Stop> {
        if self.next()? != b'\n' {
            return bad(detail);
        }
        Ok(())
    }
}

fn head(c: &mut Cursor<'_>, kind: Kind, bounds: Bounds) -> Result<Scanned, Stop> {
    // RFC 9112 §2.2: empty lines before the start line are ignored (a client
    // may send a stray CRLF after a body). They count toward the head size.
    loop {
        match c.peek()? {
            b'\r' => {
                c.pos += 1;
                c.lf("bare CR in the head")?;
            }
            b'\n' => return bad("bare LF line ending"),
            _ => break,
        }
    }
    let line_start = c.pos;
    // The limit is on the line itself; its CRLF may follow it.
    let limit = line_start.saturating_add(bounds.line).saturating_add(2);
    if limit <= c.end {
        c.end = limit;
        c.line_end = Some(limit);
    }
    let first = match kind {
        Kind::Request => request_line(c)?,
        Kind::Response => status_line(c)?,
    };
    c.end = c.buf.len();
    c.line_end = None;
    fields(c, bounds.fields)?;
    Ok(Scanned { len: c.pos, first })
}

fn request_line(c: &mut Cursor<'_>) -> Result<First, Stop> {
    let m0 = c.pos;
    loop {
        let b = c.next()?;
        if b == b' ' {
            break;
        }
        if !is_tchar(b) {
            return bad("invalid character in the method");
        }
    }
    let method = m0..c.pos - 1;
    if method.is_empty() {
        return bad("empty method");
    }
    let t0 = c.pos;
    loop {
        match c.next()? {
            b' ' => break,
            b'\r' | b'\n' => return bad("request line without an HTTP version"),
            // A fragment stays with the client (RFC 9112 §3.2, RFC 9110
            // §7.1): one in a target is a broken client or a probe for a
            // server that reads it differently, so it is refused, not
            // forwarded or cut off.
            b'#' => return bad("fragment ('#') in the request target; a fragment is never sent"),
            b if (0x21..=0x7e).contains(&b) || b >= 0x80 => {}
            _ => return bad("invalid character in the request target"),
        }
    }
    let target = t0..c.pos - 1;
    if target.is_empty() {
        return bad("empty request target");
    }
    if std::str::from_utf8(&c.buf[target.clone()]).is_err() {
        return bad("request target is not valid UTF-8");
    }
    let minor = version(c)?;
    line_end(c, "unsupported HTTP version")?;
    Ok(First::Request {
        method,
        target,
        minor,
    })
}

fn status_line(c: &mut Cursor<'_>) -> Result<First, Stop> {
    let minor = version(c)?;
    if c.next()? != b' ' {
        return bad("unsupported HTTP version");
    }
    let mut status = 0u16;
    for _ in 0..3 {
        let b = c.next()?;
        if !b.is_ascii_digit() {
            return bad("status code is not three digits");
        }
        status = status * 10 + u16::from(b - b'0');
    }
    if !(100..=599).contains(&status) {
        return bad("status code outside 100-599");
    }
    let r0;
    match c.next()? {
        b' ' => {
            r0 = c.pos;
            loop {
                match c.next()? {
                    b'\r' => break,
                    b'\n' => return bad("bare LF line ending"),
                    b if is_value_byte(b) => {}
                    _ => return bad("invalid character in the reason phrase"),
                }
            }
        }
        // A status line without the SP and reason is common enough to take.
        b'\r' => r0 = c.pos,
        b'\n' => return bad("bare LF line ending"),
        _ => return bad("status code is not three digits"),
    }
    let reason = r0..c.pos - 1;
    c.lf("bare CR in the head")?;
    Ok(First::Response {
        minor,
        status,
        reason,
    })
}

/// "HTTP/1.0" or "HTTP/1.1"; the minor digit.
fn version(c: &mut Cursor<'_>) -> Result<u8, Stop> {
    for &want in b"HTTP/1." {
        if c.next()? != want {
            return bad("unsupported HTTP version");
        }
    }
    match c.next()? {
        b'0' => Ok(0),
        b'1' => Ok(1),
        _ => bad("unsupported HTTP version"),
    }
}

/// CRLF; `other` names the fault when something else follows the line.
fn line_end(c: &mut Cursor<'_>, other: &'static str) -> Result<(), Stop> {
    match c.next()? {
        b'\r' => c.lf("bare CR in the head"),
        b'\n' => bad("bare LF line ending"),
        _ => bad(other),
    }
}

/// The field lines and the empty line that ends the head.
fn fields(c: &mut Cursor<'_>, max: usize) -> Result<(), Stop> {
    let mut count = 0usize;
    loop {
        match c.peek()? {
            b'\r' => {
                c.pos += 1;
                return c.lf("bare CR in the head");
            }
            b'\n' => return bad("bare LF line ending"),
            // A line starting with whitespace continues the previous one
            // (obs-fold, RFC 9112 §5.2); peers disagree on how to join it.
            b' ' | b'\t' => return bad("obsolete line folding"),
            _ => {}
        }
        if count == max {
            return Err(Stop::Fault(Fault::TooLarge(
                "more header fields than the limit",
            )));
        }
        field_line(c)?;
        count += 1;
    }
}

fn field_line(c: &mut Cursor<'_>) -> Result<(), Stop> {
    match c.next()? {
        b':' => return bad("empty header name"),
        b if is_tchar(b) => {}
        _ => return bad("invalid character in a header name"),
    }
    loop {
        match c.next()? {
            b':' => break,
            b if is_tchar(b) => {}
            b' ' | b'\t' => {
                // Whitespace before the colon (RFC 9112 §5.1 says reject) or
                // inside the name: which one waits for the next other byte.
                loop {
                    match c.next()? {
                        b' ' | b'\t' => {}
                        b':' => return bad("whitespace before the colon"),
                        _ => return bad("invalid character in a header name"),
                    }
                }
            }
            b'\r' | b'\n' => return bad("header line without a colon"),
            _ => return bad("invalid character in a header name"),
        }
    }
    loop {
        match c.next()? {
            b'\r' => return c.lf("bare CR in a header value"),
            b'\n' => return bad("bare LF line ending"),
            0 => return bad("NUL in a header value"),
            b if is_value_byte(b) => {}
            _ => return bad("invalid character in a header value"),
        }
    }
}
