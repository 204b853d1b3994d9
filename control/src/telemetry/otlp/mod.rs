//! Span export over OTLP/HTTP (protobuf) to an OpenTelemetry collector.
//!
//! The workers push finished [`Span`](dataplane::trace::span::Span)
//! records into bounded per-worker queues; one thread on the control core,
//! the [`Exporter`], drains them, encodes batches with
//! `opentelemetry-proto`'s types and POSTs them to the collector, retrying
//! with backoff while it is down and holding a bounded number of spans
//! meanwhile. Its figures are in [`ExportStats`].
//!
//! - [`settings`]: the collector URL and the batching and retry settings.
//! - [`encode`]: a span as OTLP has it, with the semantic conventions.
//! - `batch`: batches being filled and waiting, and the bound on them.
//! - `post` and `answer`: the blocking HTTP/1.1 client.
//! - `retry`: which answers are retried, and the backoff.
//! - [`exporter`]: the thread.
//! - [`stats`]: its counters.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use control::telemetry::otlp::{Endpoint, Exporter, OtlpSettings};
//! use crossbeam::queue::ArrayQueue;
//!
//! let endpoint = Endpoint::parse("http://127.0.0.1:4318/v1/traces")?;
//! let queues = vec![Arc::new(ArrayQueue::new(4_096)), Arc::new(ArrayQueue::new(4_096))];
//! let exporter = Exporter::spawn(OtlpSettings::new(endpoint), queues.clone(), Some(0))?;
//! // ... the workers push into `queues`; /metrics reads `exporter.stats()` ...
//! let last = exporter.stop();
//! println!("{} spans exported", last.exported);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod answer;
mod batch;
pub mod encode;
pub mod exporter;
mod post;
mod retry;
pub mod settings;
pub mod stats;

pub use encode::Encoder;
pub use exporter::{Exporter, SpawnError};
pub use settings::{Endpoint, EndpointError, OtlpSettings, SettingsError};
pub use stats::{ExportCounts, ExportStats};
