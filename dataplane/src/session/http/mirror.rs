//! Mirroring (shadow traffic): a copy of a route's request sent to the
//! route's mirror cluster, whose answer is read and dropped.
//!
//! A request is mirrored once its head has gone upstream on the primary's
//! first connection ([`launch`], called by the exchange), and only then: a
//! request that never reached its own cluster is not copied. The copy is
//! that head byte for byte (the route's header edits and ringway's
//! forwarding headers included) with `connection: close`, and, with the
//! mirror's `host_suffix`, `-shadow` after its host name. A body goes with
//! it only when it is framed by a `Content-Length` no larger than the
//! mirror's `max_body` and came in the same receive as the head: ringway
//! never holds the primary back to wait for body bytes, so any other body
//! (chunked, longer, or still on its way) is not mirrored and is counted
//! `skipped_body`.
//!
//! The copy is written into a buffer from the worker's spares and handed,
//! with a handle on the worker and on the table, to a task of its own (the
//! shadow exchange): it connects through the one connect loop to an
//! endpoint of the mirror cluster on a new connection, sends, reads the
//! response to its end and drops it, all within the route's request
//! timeout. The task holds nothing of the client connection or of the
//! primary's exchange, so a shadow that is down, slow or silent changes
//! nothing the client sees; a worker runs at most the mirror's
//! `max_in_flight` shadow exchanges of a route at once, and a copy past
//! that is dropped (and counted) instead of queued.
//!
//! What the shadow does is counted on the route's mirror tally only: never
//! in the primary's cluster, endpoint or retry figures, and never in the
//! access log. The mirror cluster's own endpoint health hears of connect
//! failures (the connect loop holds an endpoint that refused out, as it
//! does for every connect), but not of the shadow's answers: a cluster
//! under test that answers badly is not ejected for it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use super::ctx::Ctx;
use super::exchange;
use super::send::send_all;
use super::state::Home;
use crate::proto::h1::request::{RequestBody, RequestHead};
use crate::rt;
use crate::rt::net::Outgoing;
use crate::rt::select::{select, Either};
use crate::session::ResetIfCut;
use crate::table::mirror::{Mirror, MirrorOutcome};
use crate::table::route::RouteAction;
use crate::table::{ClusterId, Service};
use crate::transport::Transport;
use crate::upstream::{self, LocalTable};

/// Spare copy buffers a worker keeps: a burst of mirrored requests grows
/// the list to its peak in flight, capped here.
const MAX_SPARE: usize = 64;
/// The largest buffer kept as a spare: a head with a small body. A copy
/// with a larger body (up to `max_body`) uses a buffer once, then frees
/// it, so that 64 spares hold at most 1 MiB.
const MAX_SPARE_ROOM: usize = 16 * 1024;
/// A new buffer's room: a typical rewritten head fits.
const NEW_ROOM: usize = 1024;
/// The field the copy ends its head with.
const CLOSE: &[u8] = b"connection: close\r\n";
/// What the copy's host name gets after it, with `host_suffix`.
const SUFFIX: &[u8] = b"-shadow";

/// A worker's spare buffers for copies. (How many copies are under way is
/// counted per route, on its mirror's tally.)
#[derive(Debug, Default)]
pub(super) struct Shadows {
    spare: RefCell<Vec<Outgoing>>,
}

impl Shadows {
    /// A spare buffer, emptied, or a new one.
    fn take(&self) -> Outgoing {
        let spare = self.spare.borrow_mut().pop();
        let mut out = spare.unwrap_or_else(|| Outgoing::with_capacity(NEW_ROOM));
        out.bytes_mut().clear();
        out
    }

    /// Keeps `out` as a spare, unless it grew large or there are enough.
    fn give_back(&self, mut out: Outgoing) {
        if out.bytes_mut().capacity() > MAX_SPARE_ROOM {
            return;
        }
        let mut spare = self.spare.borrow_mut();
        if spare.len() < MAX_SPARE {
            spare.push(out);
        }
    }
}

/// Where a mirror is in its table: listener and route index.
#[derive(Debug, Clone, Copy)]
struct At {
    listener: usize,
    route: usize,
}

/// Mirrors the request `req` of route `route` (its index), if the mirror's
/// roll picks it: `head` is the head the primary sent upstream, `received`
/// the client's bytes from the first of the request head on (the head and
/// whatever came with it). Counts a copy skipped or dropped; starts the
/// shadow exchange of one that goes.
pub(super) fn launch(
    ctx: &Ctx<'_>,
    mirror: &Mirror,
    route: Option<usize>,
    req: &RequestHead,
    head: &[u8],
    received: &[u8],
) {
    let http = ctx.http;
    let Some(route) = route else { return };
    if !mirror.chosen(http.random()) {
        return;
    }
    let Some(body) = body(mirror, req, received) else {
        mirror.tally.count(http.worker, MirrorOutcome::SkippedBody);
        return;
    };
    if mirror.tally.in_flight(http.worker) >= u64::from(mirror.max_in_flight) {
        mirror.tally.count(http.worker, MirrorOutcome::Dropped);
        return;
    }
    // Gone only while the worker itself is being torn down.
    let Some(home) = http.home() else { return };
    let mut out = http.shadows().take();
    shadow_head(out.bytes_mut(), head, mirror.host_suffix);
    out.bytes_mut().extend_from_slice(body);
    // A copy in userspace, counted as every one is.
    ctx.counters.copied_bytes.add(out.bytes().len() as u64);
    // Taken off by the task, however it ends.
    mirror.tally.start(http.worker);
    let at = At {
        listener: ctx.listener_index,
        route,
    };
    let local = Rc::clone(ctx.upstream);
    let timeout = ctx.service.timeouts.request;
    rt::spawn(shadow(home, local, at, mirror.cluster, out, timeout));
}

/// The body to copy with `req`: none for a request without one, the whole
/// `Content-Length` body when it is no longer than the mirror's `max_body`
/// and all of it is in `received` behind the head; `None` when the body
/// is not to be mirrored.
fn body<'a>(mirror: &Mirror, req: &RequestHead, received: &'a [u8]) -> Option<&'a [u8]> {
    match req.body {
        RequestBody::None => Some(&[]),
        RequestBody::Length(n) if n <= mirror.max_body => {
            let n = usize::try_from(n).ok()?;
            received.get(req.len..)?.get(..n)
        }
        RequestBody::Length(_) | RequestBody::Chunked => None,
    }
}

/// One shadow exchange, as a task of its own: sends `out` to an endpoint
/// of cluster `cluster` and reads the answer to its end, within `timeout`;
/// counts how it went on the mirror's tally.
async fn shadow(
    home: Rc<dyn Home>,
    local: Rc<LocalTable>,
    at: At,
    cluster: ClusterId,
    out: Outgoing,
    timeout: Duration,
) {
    let worker = home.http().worker;
    // The table is the one `launch` found the mirror in, and never
    // changes: it is there.
    let Some(mirror) = mirror_at(&local, at) else {
        return;
    };
    // Taken off the route's count however the task ends (a worker that
    // stops drops it).
    let under_way = UnderWay { mirror, worker };
    let run = exchange_copy(&*home, &local, cluster, out);
    let outcome = match select(run, rt::time::sleep(timeout)).await {
        Either::Left(true) => MirrorOutcome::Answered,
        Either::Left(false) | Either::Right(_) => MirrorOutcome::Failed,
    };
    // Off the count first: whoever sees the outcome counted sees the copy
    // over.
    drop(under_way);
    mirror.tally.count(worker, outcome);
}

/// Takes a copy off its route's count of copies under way when it ends.
struct UnderWay<'a> {
    mirror: &'a Mirror,
    worker: usize,
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.mirror.tally.end(self.worker);
    }
}

/// Sends `out` on a new connection to an endpoint of cluster `id` and reads
/// the response to the end of the connection (the copy asked for
/// `connection: close`). Whether a response came whole: its first bytes
/// are an HTTP status line's, and the shadow ended the connection cleanly.
async fn exchange_copy(home: &dyn Home, local: &LocalTable, id: ClusterId, out: Outgoing) -> bool {
    let cluster = local.table.cluster(id);
    let counters = home.counters();
    let pick = local.pick(id, rt::now(), None);
    let Ok((stream, addr)) = upstream::connect::connect(pick, cluster, counters).await else {
        return false;
    };
    let health = &local.upstreams.health;
    let Ok(transport) = exchange::transport(counters, health, cluster, stream, addr).await else {
        return false;
    };
    let Transport { mut rx, tx } = transport;
    // Cut by the timeout (or a stopping worker), the copy leaves the
    // shadow with a reset: it was abandoned.
    let cut = ResetIfCut::new(tx.stream());
    match send_all(&tx, out, 0, None, None).await {
        Ok((out, _)) => home.http().shadows().give_back(out),
        Err(_) => return false,
    }
    let mut read = 0usize;
    let mut status_line = true;
    loop {
        match poll_fn(|cx| rx.poll_next(cx)).await {
            Ok(Some(buf)) => {
                let bytes = buf.as_slice();
                if let Some(want) = b"HTTP/".get(read..) {
                    let n = want.len().min(bytes.len());
                    status_line &= bytes[..n] == want[..n];
                }
                read = read.saturating_add(bytes.len());
            }
            Ok(None) => {
                cut.disarm();
                return status_line && read > 0;
            }
            Err(_) => {
                cut.disarm();
                return false;
            }
        }
    }
}

/// The mirror of route `at` in `local`'s table.
fn mirror_at(local: &LocalTable, at: At) -> Option<&Mirror> {
    let Service::Http(http) = &local.table.listeners.get(at.listener)?.service else {
        return None;
    };
    match &http.routes.get(at.route)?.action {
        RouteAction::Forward(forward) => forward.mirror.as_ref(),
        RouteAction::Redirect(_) | RouteAction::Direct(_) => None,
    }
}

/// Writes the copy of `head` (a request head as ringway wrote it upstream,
/// up to its empty line) into `out`: the same lines, then
/// `connection: close`; with `suffix`, its `host` gets `-shadow` after the
/// host name, before any port (`a.example:8080` becomes
/// `a.example-shadow:8080`; a bracketed IPv6 literal gets it after the
/// bracket).
fn shadow_head(out: &mut Vec<u8>, head: &[u8], suffix: bool) {
    // Every line with its CRLF, the empty line left out.
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |i| i + 2);
    let mut lines = head[..end].split_inclusive(|&b| b == b'\n');
    if let Some(request_line) = lines.next() {
        out.extend_from_slice(request_line);
    }
    for line in lines {
        if !(suffix && suffix_host(out, line)) {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(CLOSE);
    out.extend_from_slice(b"\r\n");
}

/// Writes `line` with `-shadow` after its host name if it is the `host`
/// field; returns whether it was.
fn suffix_host(out: &mut Vec<u8>, line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    if !line[..colon].eq_ignore_ascii_case(b"host") {
        return false;
    }
    let value = line[colon + 1..].trim_ascii();
    let port = if value.starts_with(b"[") {
        value
            .iter()
            .position(|&b| b == b']')
            .map_or(value.len(), |i| i + 1)
    } else {
        value
            .iter()
            .rposition(|&b| b == b':')
            .unwrap_or(value.len())
    };
    out.extend_from_slice(&line[..colon]);
    out.extend_from_slice(b": ");
    out.extend_from_slice(&value[..port]);
    out.extend_from_slice(SUFFIX);
    out.extend_from_slice(&value[port..]);
    out.extend_from_slice(b"\r\n");
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proto::h1::path::PathRules;
    use crate::proto::h1::{Limits, Status};
    use crate::table::mirror::MirrorTally;

    fn copied(head: &[u8], suffix: bool) -> String {
        let mut out = Vec::new();
        shadow_head(&mut out, head, suffix);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn the_copy_keeps_the_head_and_closes() {
        let head = b"GET /a?q=1 HTTP/1.1\r\nhost: a.example:8080\r\nx-request-id: 7\r\n\r\n";
        assert_eq!(
            copied(head, false),
            "GET /a?q=1 HTTP/1.1\r\nhost: a.example:8080\r\nx-request-id: 7\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            copied(head, true),
            "GET /a?q=1 HTTP/1.1\r\nhost: a.example-shadow:8080\r\nx-request-id: 7\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn the_suffix_goes_after_the_host_name_only() {
        let cases: [(&[u8], &str); 4] = [
            (b"host: a.example", "host: a.example-shadow"),
            (b"Host: b", "Host: b-shadow"),
            (b"host: [::1]:80", "host: [::1]-shadow:80"),
            (b"host: 10.0.0.1:8080", "host: 10.0.0.1-shadow:8080"),
        ];
        for (field, want) in cases {
            let mut head = b"POST / HTTP/1.1\r\n".to_vec();
            head.extend_from_slice(field);
            head.extend_from_slice(b"\r\nx-forwarded-host: a.example\r\n\r\n");
            let text = copied(&head, true);
            assert!(text.contains(&format!("\r\n{want}\r\n")), "{text}");
            assert!(
                text.contains("\r\nx-forwarded-host: a.example\r\n"),
                "{text}"
            );
        }
    }

    fn mirror(max_body: u64) -> Mirror {
        Mirror {
            cluster: ClusterId(0),
            ppm: crate::table::mirror::MILLION,
            host_suffix: false,
            max_body,
            max_in_flight: 1,
            tally: Arc::new(MirrorTally::new(1)),
        }
    }

    fn parsed(raw: &[u8]) -> RequestHead {
        let limits = Limits {
            max_request_line: 8192,
            max_header_bytes: 65536,
            max_headers: 100,
            path_rules: PathRules::DEFAULT,
        };
        let mut head = RequestHead::new();
        assert!(matches!(head.parse(raw, &limits), Ok(Status::Complete)));
        head
    }

    #[test]
    fn only_a_whole_small_length_body_at_hand_is_copied() {
        let raw = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello";
        let req = parsed(raw);
        assert_eq!(body(&mirror(5), &req, raw), Some(&b"hello"[..]));
        // Longer than max_body.
        assert_eq!(body(&mirror(4), &req, raw), None);
        // Not all of it received yet.
        assert_eq!(body(&mirror(5), &req, &raw[..raw.len() - 1]), None);
        // What came after the body (a pipelined request) is not copied.
        let mut more = raw.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(body(&mirror(5), &req, &more), Some(&b"hello"[..]));
        let raw = b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(body(&mirror(1 << 20), &parsed(raw), raw), None);
        let raw = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
        assert_eq!(body(&mirror(0), &parsed(raw), raw), Some(&b""[..]));
    }

    #[test]
    fn spare_buffers_are_reused_and_bounded() {
        let shadows = Shadows::default();
        let mut out = shadows.take();
        out.bytes_mut().extend_from_slice(b"abc");
        shadows.give_back(out);
        let again = shadows.take();
        assert!(again.bytes().is_empty(), "a spare comes back empty");
        let mut big = Outgoing::with_capacity(MAX_SPARE_ROOM + 1);
        big.bytes_mut().push(0);
        shadows.give_back(big);
        assert_eq!(shadows.spare.borrow().len(), 0, "a large buffer is freed");
        for _ in 0..MAX_SPARE + 5 {
            shadows.give_back(Outgoing::with_capacity(16));
        }
        assert_eq!(shadows.spare.borrow().len(), MAX_SPARE);
    }
}
