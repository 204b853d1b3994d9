//! Tracing as the end-to-end tests see it: the `[tracing]` section of a
//! config ([`Tracing`]), the trace headers an origin received read back
//! strictly ([`Traceparent`], [`B3Single`]), and the spans a receiver got,
//! picked out by trace ([`spans_of`], [`wait_trace`]).
//!
//! The header readers here are the tests' own, written from the W3C Trace
//! Context and B3 texts rather than from ringway's parser, so that a
//! mistake in one is not repeated in the other.

use std::fmt::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::otlp_receiver::{hex, OtlpReceiver, ReceivedSpan};

/// The `[tracing]` section of a config; [`Tracing::to_toml`] renders it.
#[derive(Debug, Clone)]
pub struct Tracing {
    collector: String,
    sample: Option<f64>,
    service_name: Option<String>,
    batch_delay: Option<String>,
    max_held_spans: Option<u64>,
}

impl Tracing {
    /// Spans go to `collector` (an OTLP/HTTP URL), batches wait at most
    /// 200 ms (the default 5 s would only make tests wait), every other
    /// key is left to its default.
    pub fn to(collector: &str) -> Self {
        Self {
            collector: collector.to_owned(),
            sample: None,
            service_name: None,
            batch_delay: Some("200ms".to_owned()),
            max_held_spans: None,
        }
    }

    /// Spans go to `receiver`.
    pub fn to_receiver(receiver: &OtlpReceiver) -> Self {
        Self::to(&receiver.url())
    }

    /// `sample`: the share of requests without a decision that are traced.
    pub fn sample(mut self, ratio: f64) -> Self {
        self.sample = Some(ratio);
        self
    }

    /// `service_name`.
    pub fn service_name(mut self, name: &str) -> Self {
        self.service_name = Some(name.to_owned());
        self
    }

    /// `batch_delay`, e.g. `"200ms"`; `None` leaves it to the default.
    pub fn batch_delay(mut self, delay: Option<&str>) -> Self {
        self.batch_delay = delay.map(str::to_owned);
        self
    }

    /// `max_held_spans`.
    pub fn max_held_spans(mut self, spans: u64) -> Self {
        self.max_held_spans = Some(spans);
        self
    }

    /// The section as TOML, `[tracing]` header included.
    pub fn to_toml(&self) -> String {
        let mut text = format!(
            "[tracing]\ncollector = {}\n",
            crate::http_config::quote(&self.collector)
        );
        if let Some(ratio) = self.sample {
            // `{:?}` always writes a TOML float (`1.0`, not `1`).
            let _ = writeln!(text, "sample = {ratio:?}");
        }
        if let Some(name) = &self.service_name {
            let _ = writeln!(text, "service_name = {}", crate::http_config::quote(name));
        }
        if let Some(delay) = &self.batch_delay {
            let _ = writeln!(text, "batch_delay = {}", crate::http_config::quote(delay));
        }
        if let Some(held) = self.max_held_spans {
            let _ = writeln!(text, "max_held_spans = {held}");
        }
        text
    }
}

/// A version `00` `traceparent`, read strictly: lowercase hex of the right
/// widths, ids not all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits: the span the receiver of the header is a child of.
    pub parent_id: String,
    /// 2 hex digits.
    pub flags: String,
}

impl Traceparent {
    /// Reads `value`, or says what is wrong with it.
    pub fn parse(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return Err(format!("{value:?} does not have four fields"));
        };
        if *version != "00" {
            return Err(format!("{value:?} is not version 00"));
        }
        check_id(trace_id, 32).map_err(|e| format!("{value:?}: trace id {e}"))?;
        check_id(parent_id, 16).map_err(|e| format!("{value:?}: parent id {e}"))?;
        if flags.len() != 2 || !is_lower_hex(flags) {
            return Err(format!("{value:?}: flags are not two lowercase hex digits"));
        }
        Ok(Self {
            trace_id: (*trace_id).to_owned(),
            parent_id: (*parent_id).to_owned(),
            flags: (*flags).to_owned(),
        })
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|f| f & 1 == 1)
    }
}

/// A single `b3` header with ids: `{trace}-{span}-{state}[-{parent}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B3Single {
    /// 32 or 16 hex digits, as written.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// `0`, `1` or `d`, when present.
    pub state: Option<String>,
    /// 16 hex digits, when present.
    pub parent_id: Option<String>,
}

impl B3Single {
    /// Reads `value`, or says what is wrong with it.
    pub fn parse(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.split('-').collect();
        if !(2..=4).contains(&parts.len()) {
            return Err(format!("{value:?} is not a b3 header with ids"));
        }
        let trace_width = parts[0].len();
        if trace_width != 32 && trace_width != 16 {
            return Err(format!("{value:?}: the trace id is {trace_width} digits"));
        }
        check_id(parts[0], trace_width).map_err(|e| format!("{value:?}: trace id {e}"))?;
        check_id(parts[1], 16).map_err(|e| format!("{value:?}: span id {e}"))?;
        let state = parts.get(2).map(|s| (*s).to_owned());
        if let Some(s) = &state {
            if !matches!(s.as_str(), "0" | "1" | "d") {
                return Err(format!("{value:?}: sampling state {s:?}"));
            }
        }
        let parent_id = parts.get(3).map(|p| (*p).to_owned());
        if let Some(p) = &parent_id {
            check_id(p, 16).map_err(|e| format!("{value:?}: parent id {e}"))?;
        }
        Ok(Self {
            trace_id: parts[0].to_owned(),
            span_id: parts[1].to_owned(),
            state,
            parent_id,
        })
    }
}

/// Checks that `id` is `width` lowercase hex digits, not all zero.
pub fn check_id(id: &str, width: usize) -> Result<(), String> {
    if id.len() != width {
        return Err(format!("{id:?} is not {width} digits"));
    }
    if !is_lower_hex(id) {
        return Err(format!("{id:?} is not lowercase hex"));
    }
    if id.bytes().all(|b| b == b'0') {
        return Err(format!("{id:?} is all zero"));
    }
    Ok(())
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 16-byte trace id of a B3 trace id written in 16 or 32 hex digits
/// (a 16-digit one fills the low half), as lowercase hex.
pub fn full_trace_id(b3_trace_id: &str) -> String {
    format!("{b3_trace_id:0>32}")
}

/// Whether the span is a server span.
pub fn is_server(span: &ReceivedSpan) -> bool {
    span.span.kind == SpanKind::Server as i32
}

/// Whether the span is a client span.
pub fn is_client(span: &ReceivedSpan) -> bool {
    span.span.kind == SpanKind::Client as i32
}

/// The span's id as hex.
pub fn span_id(span: &ReceivedSpan) -> String {
    hex(&span.span.span_id)
}

/// The span's parent id as hex (empty for a root span).
pub fn parent_id(span: &ReceivedSpan) -> String {
    hex(&span.span.parent_span_id)
}

/// The spans of `spans` in trace `trace_id` (hex), in the order received.
pub fn spans_of(spans: &[ReceivedSpan], trace_id: &str) -> Vec<ReceivedSpan> {
    spans
        .iter()
        .filter(|s| hex(&s.span.trace_id) == trace_id)
        .cloned()
        .collect()
}

/// Waits until `receiver` holds at least `n` spans of trace `trace_id`
/// and returns them; panics after `timeout`.
pub fn wait_trace(
    receiver: &OtlpReceiver,
    trace_id: &str,
    n: usize,
    timeout: Duration,
) -> Vec<ReceivedSpan> {
    ringway_kit::wait::poll(&format!("{n} spans of trace {trace_id}"), timeout, || {
        let all = receiver.spans();
        let mine = spans_of(&all, trace_id);
        if mine.len() >= n {
            Ok(mine)
        } else {
            Err(format!(
                "{} of them among {} spans; {:?}",
                mine.len(),
                all.len(),
                receiver.tally()
            ))
        }
    })
}

/// The one server span and the client spans of a trace's spans; panics
/// unless there is exactly one server span.
pub fn split_trace(spans: &[ReceivedSpan]) -> (ReceivedSpan, Vec<ReceivedSpan>) {
    let servers: Vec<&ReceivedSpan> = spans.iter().filter(|s| is_server(s)).collect();
    assert_eq!(servers.len(), 1, "one server span per trace: {spans:#?}");
    let clients = spans.iter().filter(|s| is_client(s)).cloned().collect();
    (servers[0].clone(), clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_traceparents_strictly() {
        let tp = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id, "00f067aa0ba902b7");
        assert!(tp.sampled());
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(Traceparent::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_b3_single_headers() {
        let b3 = B3Single::parse("a3ce929d0e0e4736-00f067aa0ba902b7-d").expect("valid");
        assert_eq!(b3.trace_id.len(), 16);
        assert_eq!(b3.state.as_deref(), Some("d"));
        assert_eq!(b3.parent_id, None);
        assert!(B3Single::parse("0").is_err());
        assert!(B3Single::parse("a3ce929d0e0e4736-00f067aa0ba902b7-x").is_err());
        assert_eq!(
            full_trace_id("a3ce929d0e0e4736"),
            "0000000000000000a3ce929d0e0e4736"
        );
    }

    #[test]
    fn renders_the_section() {
        let text = Tracing::to("http://127.0.0.1:9/v1/traces")
            .sample(1.0)
            .max_held_spans(1_000)
            .to_toml();
        assert_eq!(
            text,
            "[tracing]\ncollector = \"http://127.0.0.1:9/v1/traces\"\nsample = 1.0\n\
             batch_delay = \"200ms\"\nmax_held_spans = 1000\n"
        );
    }
}
