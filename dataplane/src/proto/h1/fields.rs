//! Rules on field values shared by requests and responses: which field is
//! which, message framing (Content-Length, Transfer-Encoding), Connection
//! options and the hop-by-hop set, and the host[:port] syntax.

use std::ops::Range;

use super::chars::{is_ows, is_tchar, is_token, trim_ows};
use super::{slice, Header, Known};

/// Most distinct options one head's `Connection` fields may list. Real
/// clients list one or two; a fixed cap keeps the hop-by-hop marking
/// allocation-free and linear instead of fields x options.
pub(super) const MAX_CONNECTION_OPTIONS: usize = 16;

/// The kind of field `name` is, compared case-insensitively.
pub(super) fn classify(name: &[u8]) -> Known {
    const TABLE: [(&[u8], Known); 15] = [
        (b"host", Known::Host),
        (b"content-length", Known::ContentLength),
        (b"transfer-encoding", Known::TransferEncoding),
        (b"connection", Known::Connection),
        (b"keep-alive", Known::KeepAlive),
        (b"proxy-connection", Known::ProxyConnection),
        (b"te", Known::Te),
        (b"upgrade", Known::Upgrade),
        (b"expect", Known::Expect),
        (b"x-forwarded-for", Known::XForwardedFor),
        (b"x-forwarded-proto", Known::XForwardedProto),
        (b"x-forwarded-host", Known::XForwardedHost),
        (b"x-request-id", Known::XRequestId),
        (b"x-ringway-attempt", Known::XRingwayAttempt),
        (b"x-ringway-peer-identity", Known::XRingwayPeerIdentity),
    ];
    TABLE
        .iter()
        .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
        .map_or(Known::Other, |&(_, k)| k)
}

/// What the fields of one head say, read once.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// The Content-Length value, if the field was present.
    pub(super) content_length: Option<u64>,
    /// The Transfer-Encoding list, if the field was present.
    pub(super) codings: Option<Codings>,
    /// `Connection: close`.
    pub(super) close: bool,
    /// `Connection: keep-alive`.
    pub(super) keep_alive: bool,
    /// `Expect: 100-continue`.
    pub(super) expect_continue: bool,
    /// An `Upgrade` field was present.
    pub(super) upgrade: bool,
    /// How many `Host` fields there were.
    pub(super) hosts: usize,
    /// The value of the first `Host` field.
    pub(super) host: Option<Range<u32>>,
}

/// The shape of a Transfer-Encoding list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Codings {
    /// The list is exactly `chunked`.
    pub(super) only_chunked: bool,
    /// The final coding is `chunked`, so the body is self-delimiting.
    pub(super) final_chunked: bool,
}

/// Reads the framing and connection fields of a head, refuses ambiguous
/// framing, and marks the hop-by-hop fields.
pub(super) fn summarize(buf: &[u8], headers: &mut [Header]) -> Result<Summary, &'static str> {
    let mut s = Summary::default();
    let mut lengths = 0usize;
    let mut te = TeList::default();
    let mut options = Options::default();
    for h in headers.iter() {
        let value = h.value(buf);
        match h.kind {
            Known::ContentLength => {
                // Several fields, even equal ones, are refused: some peers
                // take the first and some the last, and a list "5, 5" is
                // the same trick in one field.
                lengths += 1;
                if lengths > 1 {
                    return Err("more than one Content-Length");
                }
                s.content_length = Some(content_length(value)?);
            }
            Known::TransferEncoding => te.add(value)?,
            Known::Connection => options.add(value, h.value.start)?,
            Known::Expect if value.eq_ignore_ascii_case(b"100-continue") => {
                s.expect_continue = true;
            }
            Known::Upgrade => s.upgrade = true,
            Known::Host => {
                s.hosts += 1;
                if s.host.is_none() {
                    s.host = Some(h.value.clone());
                }
            }
            _ => {}
        }
    }
    if lengths > 0 && te.seen {
        return Err("both Content-Length and Transfer-Encoding");
    }
    if te.seen {
        s.codings = Some(te.finish()?);
    }
    s.close = options.close;
    s.keep_alive = options.keep_alive;
    for h in headers.iter_mut() {
        h.hop = matches!(
            h.kind,
            Known::Connection
                | Known::KeepAlive
                | Known::ProxyConnection
                | Known::Te
                | Known::TransferEncoding
                | Known::Upgrade
        ) || options.lists(buf, slice(buf, &h.name));
    }
    Ok(s)
}

/// Turns httparse's fields into ranges of `buf`, classified, values trimmed.
pub(super) fn collect(buf: &[u8], parsed: &[httparse::Header<'_>], out: &mut Vec<Header>) {
    out.clear();
    let base = buf.as_ptr() as usize;
    for h in parsed {
        // httparse hands out subslices of `buf`, so the address difference
        // is the offset.
        let name = (h.name.as_ptr() as usize).wrapping_sub(base);
        let name = name..name.saturating_add(h.name.len());
        let raw = (h.value.as_ptr() as usize).wrapping_sub(base);
        let lead = h.value.iter().take_while(|&&b| is_ows(b)).count();
        let value_len = trim_ows(h.value).len();
        let start = raw.saturating_add(lead);
        let value = start..start.saturating_add(value_len);
        out.push(Header {
            kind: classify(h.name.as_bytes()),
            name: super::range(name),
            value: super::range(value),
            hop: false,
        });
    }
}

/// A Content-Length value: 1*DIGIT and nothing else (no sign, no spaces, no
/// list), at most 19 digits so it always fits a u64.
pub(super) fn content_length(v: &[u8]) -> Result<u64, &'static str> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err("Content-Length is not a plain number");
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or("Content-Length is not a plain number")
    })
}

/// The Transfer-Encoding list, gathered over every field in order.
#[derive(Debug, Default)]
struct TeList {
    seen: bool,
    codings: usize,
    last_chunked: bool,
}

impl TeList {
    fn add(&mut self, value: &[u8]) -> Result<(), &'static str> {
        self.seen = true;
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            // Empty elements are legal list syntax, but a proxy has no use
            // for them and peers disagree on "chunked," versus "chunked".
            if coding.is_empty() {
                return Err("empty element in Transfer-Encoding");
            }
            if coding.contains(&b';') {
                return Err("unsupported transfer coding parameters");
            }
            if !is_token(coding) {
                return Err("invalid transfer coding");
            }
            if self.last_chunked {
                return Err("final transfer coding is not chunked");
            }
            self.codings += 1;
            self.last_chunked = coding.eq_ignore_ascii_case(b"chunked");
        }
        Ok(())
    }

    fn finish(&self) -> Result<Codings, &'static str> {
        if self.codings == 0 {
            return Err("empty Transfer-Encoding");
        }
        Ok(Codings {
            only_chunked: self.codings == 1 && self.last_chunked,
            final_chunked: self.last_chunked,
        })
    }
}

/// The options the `Connection` fields list.
#[derive(Debug, Default)]
struct Options {
    names: [Range<u32>; MAX_CONNECTION_OPTIONS],
    len: usize,
    close: bool,
    keep_alive: bool,
}

impl Options {
    /// Adds the options of one field value that starts at `at` in the buffer.
    fn add(&mut self, value: &[u8], at: u32) -> Result<(), &'static str> {
        let mut start = 0usize;
        for part in value.split(|&b| b == b',') {
            let lead = part.iter().take_while(|&&b| is_ows(b)).count();
            let name = trim_ows(part);
            let name_at = start + lead;
            start += part.len() + 1;
            // RFC 9110 §5.6.1: empty list elements are ignored.
            if name.is_empty() {
                continue;
            }
            if !name.iter().all(|&b| is_tchar(b)) {
                return Err("invalid Connection option");
            }
            if name.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if name.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
            let Some(slot) = self.names.get_mut(self.len) else {
                return Err("too many Connection options");
            };
            let from = at.saturating_add(super::off(name_at));
            *slot = from..from.saturating_add(super::off(name.len()));
            self.len += 1;
        }
        Ok(())
    }

    /// Whether `name` is one of the listed options.
    fn lists(&self, buf: &[u8], name: &[u8]) -> bool {
        self.names[..self.len]
            .iter()
            .any(|r| slice(buf, r).eq_ignore_ascii_case(name))
    }
}

/// A `host [ ":" port ]` (RFC 3986 authority without userinfo): an IP
/// literal in brackets or a reg-name, and a port of 1 to 5 digits up to
/// 65535. `need_port` for CONNECT's authority-form.
pub(super) fn valid_authority(v: &[u8], need_port: bool) -> bool {
    let (host_ok, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let inside = &rest[..close];
        let ok = !inside.is_empty()
            && inside
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match &rest[close + 1..] {
            [] => (ok, None),
            [b':', port @ ..] => (ok, Some(port)),
            _ => return false,
        }
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (reg_name(&v[..i]), Some(&v[i + 1..])),
            None => (reg_name(v), None),
        }
    };
    let port_ok = match port {
        None => !need_port,
        Some(p) => {
            !p.is_empty()
                && p.len() <= 5
                && p.iter().all(u8::is_ascii_digit)
                && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
        }
    };
    host_ok && port_ok
}

/// RFC 3986 reg-name: unreserved, sub-delims and %HH escapes; not empty.
fn reg_name(h: &[u8]) -> bool {
    if h.is_empty() {
        return false;
    }
    let mut i = 0;
    while let Some(&b) = h.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| h.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_digits_only() {
        assert_eq!(content_length(b"0"), Ok(0));
        assert_eq!(content_length(b"0012"), Ok(12));
        assert_eq!(
            content_length(b"9999999999999999999"),
            Ok(9_999_999_999_999_999_999)
        );
        for v in [
            &b"+5"[..],
            b"0x10",
            b"1_0",
            b"1 0",
            b"",
            b"-1",
            b"12345678901234567890",
            b"5,5",
        ] {
            assert!(
                content_length(v).is_err(),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn authorities() {
        for ok in [
            &b"example.com"[..],
            b"a:80",
            b"[::1]",
            b"[::1]:8080",
            b"10.0.0.1:65535",
            b"x%41y",
        ] {
            assert!(
                valid_authority(ok, false),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b""[..],
            b"a b",
            b"a/b",
            b"u@h",
            b"a:",
            b"a:65536",
            b"a:123456",
            b"[::1",
            b"[]",
            b"a\x01",
            b"a:b:c",
            b"%4",
            b"[::1]x",
            b":80",
        ] {
            assert!(
                !valid_authority(bad, false),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(valid_authority(b"h:443", true));
        assert!(!valid_authority(b"h", true));
    }

    #[test]
    fn classify_is_case_insensitive() {
        assert_eq!(classify(b"HOST"), Known::Host);
        assert_eq!(classify(b"Content-length"), Known::ContentLength);
        assert_eq!(classify(b"x-request-id"), Known::XRequestId);
        assert_eq!(classify(b"X-Ringway-Attempt"), Known::XRingwayAttempt);
        assert_eq!(
            classify(b"X-Ringway-Peer-Identity"),
            Known::XRingwayPeerIdentity
        );
        assert_eq!(classify(b"hosts"), Known::Other);
    }
}
