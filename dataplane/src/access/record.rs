//! The compact binary record of one logged request: what a worker writes
//! into its ring ([`Entry::encode`]) and the writer reads back
//! ([`Record::decode`]).
//!
//! Layout, little-endian: the record's length (`u16`, itself included),
//! the fixed fields in declaration order, then each text as a `u16`
//! length and its bytes. Texts are cut at their caps, so a record is at
//! most a few KiB whatever the request; a cut text ends in `...`
//! only in the writer's output, never in the bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::request::{Fault, Reason};

/// Caps on the texts, in bytes: listener, route, cluster, method,
/// authority, path, request id, peer identity.
pub const CAPS: [usize; TEXTS] = [255, 255, 255, 32, 255, 2048, 128, 255];

/// The minor version of a request whose request line was not read.
pub const NO_VERSION: u8 = 0x7f;

/// Texts a record carries.
pub const TEXTS: usize = 8;

/// The largest record, in bytes.
pub const MAX_RECORD: usize = FIXED + TEXTS * 2 + {
    let mut sum = 0;
    let mut i = 0;
    while i < TEXTS {
        sum += CAPS[i];
        i += 1;
    }
    sum
};

/// Bytes of the fixed part, the length included.
const FIXED: usize = 2 + 4 + 8 + 8 + 8 + 2 + 1 + 1 + 8 + 8 + 4 + 19 + 17 + 16 + 1 + 1;

/// One request, as the worker knows it when it is over.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The output's number.
    pub output: u32,
    /// When the request began, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// How long it took, in nanoseconds.
    pub duration_ns: u64,
    /// From the upstream connection ready to the response head, in
    /// nanoseconds, when a response head came.
    pub upstream_ns: Option<u64>,
    /// The final status sent, if any.
    pub status: Option<u16>,
    /// Why it did not get an ordinary proxied answer, if it did not.
    pub reason: Option<Reason>,
    /// The HTTP minor version (0 or 1), or [`NO_VERSION`] when no request
    /// line was read.
    pub minor: u8,
    /// Whether the client spoke TLS.
    pub tls: bool,
    /// Bytes the client sent.
    pub received: u64,
    /// Bytes sent to the client.
    pub sent: u64,
    /// Upstream attempts.
    pub attempts: u32,
    /// The endpoint of the last attempt.
    pub upstream: Option<SocketAddr>,
    /// The client's address.
    pub client: IpAddr,
    /// The request's trace, when it was traced.
    pub trace_id: Option<[u8; 16]>,
    /// The fault injected into the request, if one was.
    pub fault: Option<Fault>,
    /// Listener, route, cluster, method, authority, path (with query),
    /// request id, peer identity (see [`CAPS`]; empty: none).
    pub texts: [&'a [u8]; TEXTS],
}

impl Entry<'_> {
    /// Appends the record to `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.output.to_le_bytes());
        out.extend_from_slice(&self.start_unix_ns.to_le_bytes());
        out.extend_from_slice(&self.duration_ns.to_le_bytes());
        out.extend_from_slice(&self.upstream_ns.unwrap_or(u64::MAX).to_le_bytes());
        out.extend_from_slice(&self.status.unwrap_or(0).to_le_bytes());
        out.push(self.reason.map_or(u8::MAX, |r| r as u8));
        out.push(self.minor.min(NO_VERSION) | if self.tls { 0x80 } else { 0 });
        out.extend_from_slice(&self.received.to_le_bytes());
        out.extend_from_slice(&self.sent.to_le_bytes());
        out.extend_from_slice(&self.attempts.to_le_bytes());
        put_socket(out, self.upstream);
        put_ip(out, Some(self.client));
        out.extend_from_slice(&self.trace_id.unwrap_or([0; 16]));
        out.push(u8::from(self.trace_id.is_some()));
        out.push(Fault::byte(self.fault));
        for (text, cap) in self.texts.iter().zip(CAPS) {
            let text = &text[..text.len().min(cap)];
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text);
        }
        let len = out.len() as u16;
        out[..2].copy_from_slice(&len.to_le_bytes());
    }
}

/// A record read back: the same fields as an [`Entry`], borrowed from the
/// bytes.
pub type Record<'a> = Entry<'a>;

/// The length a record announces at the start of `bytes`, if two bytes
/// are there.
pub fn announced(bytes: &[u8]) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes([
        *bytes.first()?,
        *bytes.get(1)?,
    ])))
}

impl<'a> Record<'a> {
    /// Reads the record that `bytes` holds exactly; `None` if it is not
    /// one (a writer bug, never the client's doing: every text is length
    /// prefixed).
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let mut r = Reader { bytes, at: 2 };
        if announced(bytes)? != bytes.len() {
            return None;
        }
        let output = u32::from_le_bytes(r.take()?);
        let start_unix_ns = u64::from_le_bytes(r.take()?);
        let duration_ns = u64::from_le_bytes(r.take()?);
        let upstream_ns = Some(u64::from_le_bytes(r.take()?)).filter(|&n| n != u64::MAX);
        let status = Some(u16::from_le_bytes(r.take()?)).filter(|&s| s != 0);
        let [reason] = r.take()?;
        let reason = Reason::ALL.get(usize::from(reason)).copied();
        let [flags] = r.take()?;
        let received = u64::from_le_bytes(r.take()?);
        let sent = u64::from_le_bytes(r.take()?);
        let attempts = u32::from_le_bytes(r.take()?);
        let upstream = get_socket(r.take()?);
        let client = get_ip(r.take()?)?;
        let trace: [u8; 16] = r.take()?;
        let [traced] = r.take()?;
        let [fault] = r.take()?;
        let mut texts: [&[u8]; TEXTS] = [&[]; TEXTS];
        for text in &mut texts {
            let len = usize::from(u16::from_le_bytes(r.take()?));
            *text = r.slice(len)?;
        }
        Some(Self {
            output,
            start_unix_ns,
            duration_ns,
            upstream_ns,
            status,
            reason,
            minor: flags & 0x7f,
            tls: flags & 0x80 != 0,
            received,
            sent,
            attempts,
            upstream,
            client,
            trace_id: (traced == 1).then_some(trace),
            fault: Fault::from_byte(fault),
            texts,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn slice(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.slice(N)?.try_into().ok()
    }
}

/// An address as 17 bytes: family (0 none, 4, 6), then 16 bytes.
fn put_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    match ip {
        None => out.extend_from_slice(&[0; 17]),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
            out.extend_from_slice(&[0; 12]);
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

fn get_ip(b: [u8; 17]) -> Option<IpAddr> {
    match b[0] {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4]))),
        6 => {
            let octets: [u8; 16] = b[1..].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// A socket address as 19 bytes: the address, then the port.
fn put_socket(out: &mut Vec<u8>, addr: Option<SocketAddr>) {
    put_ip(out, addr.map(|a| a.ip()));
    out.extend_from_slice(&addr.map_or(0, |a| a.port()).to_le_bytes());
}

fn get_socket(b: [u8; 19]) -> Option<SocketAddr> {
    let ip: [u8; 17] = b[..17].try_into().ok()?;
    let port = u16::from_le_bytes([b[17], b[18]]);
    Some(SocketAddr::new(get_ip(ip)?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &[u8]) -> Entry<'_> {
        Entry {
            output: 7,
            start_unix_ns: 1_765_000_000_123_456_789,
            duration_ns: 1_500_000,
            upstream_ns: Some(900_000),
            status: Some(502),
            reason: Some(Reason::UpstreamReset),
            minor: 1,
            tls: true,
            received: 120,
            sent: 345,
            attempts: 2,
            upstream: Some("[::1]:8080".parse().expect("addr")),
            client: "10.1.2.3".parse().expect("ip"),
            trace_id: Some([9; 16]),
            fault: Some(Fault::Delay),
            texts: [
                b"web",
                b"api",
                b"v1",
                b"GET",
                b"example.com",
                path,
                b"abc",
                b"",
            ],
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut buf = Vec::new();
        let e = entry(b"/a?b=1");
        e.encode(&mut buf);
        assert_eq!(announced(&buf), Some(buf.len()));
        let r = Record::decode(&buf).expect("a record");
        assert_eq!(r.output, 7);
        assert_eq!(r.start_unix_ns, e.start_unix_ns);
        assert_eq!(r.duration_ns, e.duration_ns);
        assert_eq!(r.upstream_ns, e.upstream_ns);
        assert_eq!(r.status, Some(502));
        assert_eq!(r.reason, Some(Reason::UpstreamReset));
        assert_eq!((r.minor, r.tls), (1, true));
        assert_eq!((r.received, r.sent, r.attempts), (120, 345, 2));
        assert_eq!(r.upstream, e.upstream);
        assert_eq!(r.client, e.client);
        assert_eq!(r.trace_id, Some([9; 16]));
        assert_eq!(r.fault, Some(Fault::Delay));
        assert_eq!(r.texts, e.texts);
    }

    #[test]
    fn nothing_known_reads_back_as_nothing() {
        let mut buf = Vec::new();
        let mut e = entry(b"");
        e.upstream_ns = None;
        e.status = None;
        e.reason = None;
        e.upstream = None;
        e.trace_id = None;
        e.fault = None;
        e.minor = NO_VERSION;
        e.tls = false;
        e.encode(&mut buf);
        let r = Record::decode(&buf).expect("a record");
        assert_eq!(r.upstream_ns, None);
        assert_eq!(r.status, None);
        assert_eq!(r.reason, None);
        assert_eq!(r.upstream, None);
        assert_eq!(r.trace_id, None);
        assert_eq!(r.fault, None);
        assert_eq!(r.minor, NO_VERSION);
        assert!(!r.tls);
    }

    #[test]
    fn texts_are_cut_at_their_caps_and_the_largest_fits() {
        let long = vec![b'a'; 10_000];
        let mut e = entry(&long);
        e.texts = [&long; TEXTS];
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(buf.len(), MAX_RECORD);
        assert!(MAX_RECORD < usize::from(u16::MAX));
        let r = Record::decode(&buf).expect("a record");
        for (text, cap) in r.texts.iter().zip(CAPS) {
            assert_eq!(text.len(), cap);
        }
    }

    #[test]
    fn a_short_or_long_buffer_is_not_a_record() {
        let mut buf = Vec::new();
        entry(b"/").encode(&mut buf);
        assert!(Record::decode(&buf[..buf.len() - 1]).is_none());
        buf.push(0);
        assert!(Record::decode(&buf).is_none());
    }
}
