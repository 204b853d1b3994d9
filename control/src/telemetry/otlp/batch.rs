//! Spans on their way to the collector: the batch being filled, and the
//! sealed batches waiting to be sent, oldest first, with a bound on the
//! spans held altogether.
//!
//! A batch is sealed (encoded once, so a retry costs no encoding) when it
//! holds `batch_spans` spans or when its oldest span has waited
//! `batch_delay`. While the collector is down the sealed batches pile up;
//! once a new span would take the total past `max_held_spans`, the oldest
//! sealed batches are dropped whole. Time is passed in, so the rules are
//! tested without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dataplane::trace::span::Span;

use super::encode::Encoder;

/// A batch encoded and ready to send.
#[derive(Debug)]
pub struct Sealed {
    /// The request body.
    pub body: Vec<u8>,
    /// How many spans it carries.
    pub spans: usize,
}

/// The batch being filled and the sealed ones.
#[derive(Debug)]
pub struct Batcher {
    encoder: Encoder,
    batch_spans: usize,
    batch_delay: Duration,
    max_held: usize,
    open: Vec<Span>,
    /// When the oldest span of `open` arrived.
    open_since: Option<Instant>,
    sealed: VecDeque<Sealed>,
    /// Spans in `sealed`.
    sealed_spans: usize,
}

impl Batcher {
    /// An empty batcher. `max_held` must be at least `batch_spans`
    /// ([`super::OtlpSettings::check`] makes sure): then there is always a
    /// sealed batch to drop when a span does not fit.
    pub fn new(
        encoder: Encoder,
        batch_spans: usize,
        batch_delay: Duration,
        max_held: usize,
    ) -> Self {
        Self {
            encoder,
            batch_spans,
            batch_delay,
            max_held,
            open: Vec::new(),
            open_since: None,
            sealed: VecDeque::new(),
            sealed_spans: 0,
        }
    }

    /// Adds a span that arrived at `now`; returns how many older spans
    /// were dropped to make room for it.
    pub fn push(&mut self, span: Span, now: Instant) -> usize {
        let mut dropped = 0;
        while self.held() >= self.max_held {
            match self.sealed.pop_front() {
                Some(oldest) => {
                    self.sealed_spans -= oldest.spans;
                    dropped += oldest.spans;
                }
                // Only with `max_held` below one batch; never lose the new
                // span's place for it.
                None => break,
            }
        }
        self.open_since.get_or_insert(now);
        self.open.push(span);
        if self.open.len() >= self.batch_spans {
            self.seal();
        }
        dropped
    }

    /// Seals the batch being filled when its oldest span has waited long
    /// enough at `now`.
    pub fn seal_due(&mut self, now: Instant) {
        if self
            .open_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.batch_delay)
        {
            self.seal();
        }
    }

    /// Seals the batch being filled, whatever its size (at shutdown).
    pub fn seal(&mut self) {
        self.open_since = None;
        if self.open.is_empty() {
            return;
        }
        let body = self.encoder.encode(&self.open);
        let spans = self.open.len();
        // A fresh vector: the full one's capacity is not kept while the
        // exporter idles.
        self.open = Vec::new();
        self.sealed_spans += spans;
        self.sealed.push_back(Sealed { body, spans });
    }

    /// The oldest sealed batch: the next to send.
    pub fn front(&self) -> Option<&Sealed> {
        self.sealed.front()
    }

    /// Removes the oldest sealed batch (sent, or refused for good).
    pub fn pop_front(&mut self) -> Option<Sealed> {
        let batch = self.sealed.pop_front()?;
        self.sealed_spans -= batch.spans;
        Some(batch)
    }

    /// Spans held: sealed and being filled.
    pub fn held(&self) -> usize {
        self.sealed_spans + self.open.len()
    }

    /// Sealed batches waiting.
    #[cfg(test)]
    pub fn sealed(&self) -> usize {
        self.sealed.len()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use super::*;
    use crate::telemetry::otlp::encode::tests::server_span;

    /// A span told apart by its span id.
    fn span(n: u64) -> Span {
        Span {
            span_id: (n + 1).to_be_bytes(),
            ..server_span()
        }
    }

    /// The span ids a sealed batch carries, as numbers.
    fn ids(batch: &Sealed) -> Vec<u64> {
        let request = ExportTraceServiceRequest::decode(batch.body.as_slice()).expect("protobuf");
        request.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().expect("8 bytes")) - 1)
            .collect()
    }

    fn batcher(batch: usize, max_held: usize) -> Batcher {
        Batcher::new(
            Encoder::new("ringway", None),
            batch,
            Duration::from_secs(5),
            max_held,
        )
    }

    #[test]
    fn a_batch_is_sealed_at_its_size() {
        let mut b = batcher(1_000, 10_000);
        let now = Instant::now();
        for n in 0..2_500 {
            assert_eq!(b.push(span(n), now), 0);
        }
        assert_eq!(b.sealed(), 2);
        assert_eq!(b.held(), 2_500);
        let first = b.pop_front().expect("a first batch");
        assert_eq!(first.spans, 1_000);
        assert_eq!(ids(&first), (0..1_000).collect::<Vec<_>>());
        let second = b.pop_front().expect("a second batch");
        assert_eq!(ids(&second), (1_000..2_000).collect::<Vec<_>>());
        assert!(b.front().is_none());
        assert_eq!(b.held(), 500, "the rest is still being filled");
    }

    #[test]
    fn a_batch_is_sealed_when_its_oldest_span_has_waited() {
        let mut b = batcher(1_000, 10_000);
        let start = Instant::now();
        b.seal_due(start + Duration::from_secs(60));
        assert_eq!(b.sealed(), 0, "nothing to seal");

        b.push(span(0), start);
        b.push(span(1), start + Duration::from_secs(3));
        b.seal_due(start + Duration::from_millis(4_999));
        assert_eq!(b.sealed(), 0, "the oldest span waited less than 5 s");
        b.seal_due(start + Duration::from_secs(5));
        assert_eq!(b.sealed(), 1);
        assert_eq!(ids(b.front().expect("a batch")), [0, 1]);

        // The next batch's clock starts at its own first span.
        b.push(span(2), start + Duration::from_secs(6));
        b.seal_due(start + Duration::from_secs(10));
        assert_eq!(b.sealed(), 1);
        b.seal_due(start + Duration::from_secs(11));
        assert_eq!(b.sealed(), 2);
    }

    #[test]
    fn the_backlog_drops_its_oldest_whole_batches() {
        let mut b = batcher(100, 1_000);
        let now = Instant::now();
        let mut dropped = 0;
        let mut peak = 0;
        for n in 0..1_250 {
            dropped += b.push(span(n), now);
            peak = peak.max(b.held());
        }
        assert!(peak <= 1_000, "held at most the bound, {peak}");
        // The 1,001st span found 1,000 held: the oldest batch went, and
        // again at the 1,101st and 1,201st.
        assert_eq!(dropped, 300);
        assert_eq!(b.held(), 950);
        assert_eq!(dropped + b.held(), 1_250, "every span is accounted for");
        let oldest = b.pop_front().expect("a batch");
        assert_eq!(ids(&oldest), (300..400).collect::<Vec<_>>());
    }

    #[test]
    fn sealing_by_hand_takes_a_partial_batch() {
        let mut b = batcher(1_000, 10_000);
        b.seal();
        assert_eq!(b.sealed(), 0, "no empty batch");
        b.push(span(7), Instant::now());
        b.seal();
        assert_eq!(b.pop_front().map(|s| s.spans), Some(1));
        assert_eq!(b.held(), 0);
    }
}
