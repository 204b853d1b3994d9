//! One request's trace: the context it came with, the sampling decision,
//! ringway's server span and a client span per upstream attempt, and the
//! spans handed to the exporter when they end.
//!
//! Only a sampled request costs more than reading its trace headers: ids
//! are drawn, the wall clock is read and spans are queued only then.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use super::ctx::Ctx;
use crate::latency::{nanos, unix_ns};
use crate::proto::h1::request::RequestHead;
use crate::request::{Outcome, Reason};
use crate::trace::context::{
    new_span_id, new_trace_id, Format, Header, Incoming, Outgoing, Reader, Report, Threshold,
};
use crate::trace::span::{Span, SpanId, SpanKind, Text, TraceId};
use crate::transport::{Scheme, Sender};

/// A request's trace, read from its head.
#[derive(Debug, Clone, Copy)]
pub(super) struct Trace {
    /// What each arriving trace header becomes upstream.
    pub(super) report: Report,
    /// The context the caller sent, if a valid one came.
    incoming: Option<Incoming>,
    /// The trace: the caller's, or a new one.
    pub(super) trace_id: TraceId,
    /// Whether this request is recorded.
    pub(super) sampled: bool,
    /// ringway's server span when sampled; otherwise the caller's span,
    /// passed on as the upstream request's parent unchanged.
    span_id: SpanId,
    /// The caller's span (the server span's parent), if any.
    parent_id: Option<SpanId>,
    /// The format the context goes upstream in: the caller's, or W3C.
    format: Format,
}

impl Trace {
    /// Reads the trace headers of `req` (parsed from `buf`) and decides
    /// whether to record the request: the caller's decision if it sent
    /// one, else head sampling at `threshold`.
    pub(super) fn read(
        req: &RequestHead,
        buf: &[u8],
        threshold: Threshold,
        random: impl Fn() -> u64,
    ) -> Self {
        let mut reader = Reader::new();
        for h in &req.headers {
            let name = h.name(buf);
            if let Some(header) = Header::classify(name) {
                reader.header(header, h.value(buf));
            }
        }
        let extracted = reader.finish();
        let incoming = extracted.incoming;
        let sampled = incoming.map_or_else(
            || crate::trace::context::head_sample(threshold, random()),
            |i| i.sampled.decide(threshold, &random),
        );
        let ids = incoming.and_then(|i| i.ids);
        let trace_id = ids.map_or_else(|| new_trace_id(&random), |ids| ids.trace_id);
        let parent_id = ids.map(|ids| ids.parent_id);
        let span_id = match (sampled, parent_id) {
            (false, Some(caller)) => caller,
            _ => new_span_id(&random),
        };
        Self {
            report: extracted.report,
            incoming,
            trace_id,
            sampled,
            span_id,
            parent_id,
            format: incoming.map_or(Format::W3c, |i| i.format),
        }
    }

    /// The context an upstream request carries: for a sampled request,
    /// the attempt's client span `attempt` as the parent (itself a child
    /// of the server span). A request the caller decided not to sample
    /// keeps the caller's headers exactly as they came (ringway made no
    /// span to put in them); one that came without a context and was not
    /// sampled gets a new, unrecorded one, so the decision travels on.
    pub(super) fn outgoing(&self, attempt: Option<SpanId>) -> UpTrace {
        // The span the upstream request is a child of, and its parent.
        let (span, parent) = match attempt {
            Some(a) => (a, Some(self.span_id)),
            None => (self.span_id, self.parent_id),
        };
        let context = match (self.sampled, self.incoming) {
            (false, Some(_)) => None,
            (true, _) => Some(Outgoing::new(
                self.trace_id,
                span,
                parent,
                true,
                self.incoming.as_ref(),
            )),
            (false, None) => Some(Outgoing::new(
                self.trace_id,
                self.span_id,
                None,
                false,
                None,
            )),
        };
        UpTrace {
            context,
            format: self.format,
            report: self.report,
        }
    }
}

/// What the upstream request head carries of the trace: the context to
/// write, in which format, and what becomes of the arriving headers.
#[derive(Debug, Clone, Copy)]
pub(super) struct UpTrace {
    /// The context written in place of the caller's; `None` to pass the
    /// caller's valid headers on as they came.
    pub(super) context: Option<Outgoing>,
    /// Its format.
    pub(super) format: Format,
    /// The fate of each arriving trace header.
    pub(super) report: Report,
}

/// One upstream attempt's client span, while it runs.
#[derive(Debug)]
pub(super) struct Attempt {
    span_id: Cell<Option<SpanId>>,
    start_unix_ns: Cell<u64>,
    number: Cell<u32>,
}

impl Attempt {
    /// No attempt yet.
    pub(super) fn new() -> Self {
        Self {
            span_id: Cell::new(None),
            start_unix_ns: Cell::new(0),
            number: Cell::new(0),
        }
    }

    /// Begins the next attempt of a sampled request: a new client span
    /// from now. Returns its id (`None` when the request is not sampled).
    pub(super) fn begin(&self, trace: Option<&Trace>, random: impl Fn() -> u64) -> Option<SpanId> {
        if !trace.is_some_and(|t| t.sampled) {
            return None;
        }
        let id = new_span_id(random);
        self.span_id.set(Some(id));
        self.start_unix_ns.set(unix_ns());
        self.number.set(self.number.get() + 1);
        Some(id)
    }

    /// Ends the running attempt, if one runs: its client span is queued
    /// with what the upstream at `endpoint` answered (`status`) or why
    /// the attempt failed (`error`).
    pub(super) fn end(
        &self,
        ctx: &Ctx<'_>,
        trace: &Trace,
        meta: &SpanMeta<'_>,
        endpoint: Option<SocketAddr>,
        status: Option<u16>,
        error: Option<Reason>,
    ) {
        let Some(span_id) = self.span_id.take() else {
            return;
        };
        let span = meta.span(
            trace,
            span_id,
            Some(trace.span_id),
            SpanKind::Client,
            self.start_unix_ns.get(),
            unix_ns(),
            (status, error, endpoint, self.number.get()),
        );
        queue(ctx, span);
    }
}

/// What every span of a request names: the head's fields and where the
/// request went.
#[derive(Debug)]
pub(super) struct SpanMeta<'a> {
    /// Method, host and target.
    pub(super) method: &'a [u8],
    pub(super) host: &'a [u8],
    pub(super) target: &'a [u8],
    /// The client's transport.
    pub(super) tls: bool,
    /// Listener, route and cluster names.
    pub(super) listener: &'a Arc<str>,
    pub(super) route: Option<&'a Arc<str>>,
    pub(super) cluster: Option<&'a Arc<str>>,
    /// The client's address.
    pub(super) client: std::net::IpAddr,
    /// The fault the route injected, named on the server span.
    pub(super) fault: Option<crate::request::Fault>,
}

impl SpanMeta<'_> {
    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        trace: &Trace,
        span_id: SpanId,
        parent_id: Option<SpanId>,
        kind: SpanKind,
        start_unix_ns: u64,
        end_unix_ns: u64,
        (status, error, endpoint, attempt): (Option<u16>, Option<Reason>, Option<SocketAddr>, u32),
    ) -> Span {
        Span {
            trace_id: trace.trace_id,
            span_id,
            parent_id,
            kind,
            start_unix_ns,
            end_unix_ns,
            method: Text::new(self.method),
            target: Text::new(self.target),
            host: Text::new(self.host),
            tls: self.tls,
            status,
            error,
            listener: Arc::clone(self.listener),
            route: self.route.map(Arc::clone),
            cluster: self.cluster.map(Arc::clone),
            endpoint,
            client: self.client,
            attempt,
            fault: self.fault.filter(|_| kind == SpanKind::Server),
        }
    }
}

/// Queues the server span of a sampled request that is over.
pub(super) fn end_request(ctx: &Ctx<'_>, trace: &Trace, meta: &SpanMeta<'_>, outcome: &Outcome) {
    let end = unix_ns();
    let start = end.saturating_sub(nanos(outcome.duration()));
    let span = meta.span(
        trace,
        trace.span_id,
        trace.parent_id,
        SpanKind::Server,
        start,
        end,
        (
            outcome.status,
            outcome.reason,
            outcome.upstream,
            outcome.attempts,
        ),
    );
    ctx.counters.traced.add(1);
    queue(ctx, span);
}

/// Hands `span` to the exporter, or counts it dropped when the worker's
/// queue is full.
fn queue(ctx: &Ctx<'_>, span: Span) {
    if ctx.http.spans.push(span).is_err() {
        ctx.counters.spans_dropped.add(1);
    }
}

/// Whether the client reached ringway over TLS.
pub(super) fn over_tls(client: &Sender) -> bool {
    client.scheme() == Scheme::Https
}
