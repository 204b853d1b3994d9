//! The access log record of one request: the head's fields noted while
//! the head is there ([`HeadNote`]), and the record built from them and
//! the request's outcome once it is over ([`log`]), pushed into the
//! worker's ring. Nothing is formatted here; the writer on the control
//! core does that.

use super::ctx::Ctx;
use super::digits;
use super::exchange;
use crate::access::record::{Entry, CAPS, NO_VERSION};
use crate::latency::{nanos, unix_ns};
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::{Known, Version};
use crate::request::Outcome;
use crate::transport::{Scheme, Sender};

/// The request head's fields a record needs, copied (capped) before the
/// head is consumed: a request with a body gives its head up once the body
/// starts to flow. Kept in the request's parts, so it allocates only until
/// it has grown.
#[derive(Debug)]
pub(super) struct HeadNote {
    bytes: Vec<u8>,
    /// Where method, authority, target and request id end in `bytes`.
    ends: [usize; 4],
    /// The request's HTTP minor version; [`NO_VERSION`] when no head was
    /// noted.
    minor: u8,
}

impl Default for HeadNote {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            ends: [0; 4],
            minor: NO_VERSION,
        }
    }
}

impl HeadNote {
    /// Nothing noted: a request whose head never parsed.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.ends = [0; 4];
        self.minor = NO_VERSION;
    }

    /// Notes the fields of `req`, parsed from `buf`.
    pub(super) fn note(&mut self, req: &RequestHead, buf: &[u8]) {
        self.clear();
        let field = |r: &std::ops::Range<u32>| buf.get(r.start as usize..r.end as usize);
        let request_id = req
            .headers
            .iter()
            .find(|h| h.kind == Known::XRequestId)
            .map(|h| h.value(buf));
        let texts = [
            field(&req.method),
            req.host.as_ref().and_then(field),
            field(&req.target),
            request_id,
        ];
        // Caps of method, authority, path and request id in the record.
        let caps = [CAPS[3], CAPS[4], CAPS[5], CAPS[6]];
        for (i, (text, cap)) in texts.into_iter().zip(caps).enumerate() {
            let text = text.unwrap_or(&[]);
            self.bytes.extend_from_slice(&text[..text.len().min(cap)]);
            self.ends[i] = self.bytes.len();
        }
        self.minor = match req.version {
            Version::Http10 => 0,
            Version::Http11 => 1,
        };
    }

    /// Method, authority, target and request id.
    pub(super) fn texts(&self) -> [&[u8]; 4] {
        let mut start = 0;
        self.ends.map(|end| {
            let text = self.bytes.get(start..end).unwrap_or(&[]);
            start = end;
            text
        })
    }
}

/// Logs the request of `outcome` (over) on the listener's access log, if
/// it has one and wants this request: a record into the worker's ring, or
/// one more dropped when the ring is full.
pub(super) fn log(ctx: &Ctx<'_>, outcome: &Outcome, note: &HeadNote, client: &Sender) {
    let Some(log) = &ctx.service.access_log else {
        return;
    };
    if !log.wants(outcome.status, outcome.reason.is_some(), || {
        ctx.http.random()
    }) {
        return;
    }
    let duration = outcome.duration();
    let now = unix_ns();
    let route = outcome.route.and_then(|r| ctx.service.routes.get(r));
    let cluster = exchange::picked(ctx, outcome).map(|t| ctx.table.cluster(t.cluster));
    let upstream_ns = outcome
        .timings
        .connected
        .zip(outcome.timings.first_byte)
        .map(|(ready, first)| nanos(first.saturating_duration_since(ready)));
    let [method, authority, target, given_id] = note.texts();
    // The id ringway made is written as the upstream got it.
    let made_id = outcome.request_id.map(digits::hex_u128);
    let request_id = match (given_id, &made_id) {
        (given, _) if !given.is_empty() => given,
        (_, Some(made)) => &made[..],
        _ => &[],
    };
    let entry = Entry {
        output: log.id,
        start_unix_ns: now.saturating_sub(nanos(duration)),
        duration_ns: nanos(duration),
        upstream_ns,
        status: outcome.status,
        reason: outcome.reason,
        minor: note.minor,
        tls: client.scheme() == Scheme::Https,
        received: outcome.received,
        sent: outcome.sent,
        attempts: outcome.attempts,
        upstream: outcome.upstream,
        client: ctx.peer,
        trace_id: outcome.trace_id,
        fault: outcome.fault,
        texts: [
            ctx.listener_name.as_bytes(),
            route.map_or(&[][..], |r| r.name.as_bytes()),
            cluster.map_or(&[][..], |c| c.name.as_bytes()),
            method,
            authority,
            target,
            request_id,
            client.peer_identity().unwrap_or("").as_bytes(),
        ],
    };
    let pushed = match ctx.http.access.try_borrow_mut() {
        Ok(mut ring) => ring.push(&entry),
        Err(_) => false,
    };
    if pushed {
        ctx.counters.access_logged.add(1);
    } else {
        ctx.counters.access_log_dropped.add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h1::path::PathRules;
    use crate::proto::h1::Limits;

    #[test]
    fn a_note_keeps_the_fields_after_the_head_is_gone() {
        let raw = b"POST /a?b=1 HTTP/1.0\r\nHost: example.com\r\nX-Request-Id: r-1\r\ncontent-length: 2\r\n\r\n";
        let limits = Limits {
            max_request_line: 8192,
            max_header_bytes: 65536,
            max_headers: 100,
            path_rules: PathRules::DEFAULT,
        };
        let mut head = RequestHead::new();
        head.parse(raw, &limits).expect("a valid head");
        let mut note = HeadNote::default();
        note.note(&head, raw);
        let texts = note.texts();
        assert_eq!(texts[0], b"POST");
        assert_eq!(texts[1], b"example.com");
        assert_eq!(texts[2], b"/a?b=1");
        assert_eq!(texts[3], b"r-1");
        assert_eq!(note.minor, 0);
        note.clear();
        assert_eq!(note.texts(), [&[][..]; 4]);
        assert_eq!(note.minor, NO_VERSION);
    }

    #[test]
    fn a_made_id_is_written_as_the_upstream_got_it() {
        assert_eq!(
            &digits::hex_u128(0xabc),
            b"00000000000000000000000000000abc"
        );
    }
}
