//! The span exporter as the agent runs it: started when the configuration
//! has `[tracing]`, replaced when a reload changes it, stopped when a
//! reload removes it and at exit. Its figures carry over replacements.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use dataplane::trace::span::Span;

use crate::config::TracingSettings;
use crate::telemetry::otlp::{ExportCounts, ExportStats, Exporter, OtlpSettings};

/// The running exporter, if any, and the figures of those before it.
#[derive(Debug)]
pub(super) struct Traces {
    queues: Vec<Arc<ArrayQueue<Span>>>,
    core: Option<usize>,
    running: RefCell<Option<(OtlpSettings, Exporter)>>,
    /// What the exporters stopped so far did, added up as each stops.
    retired: Arc<ExportStats>,
    /// Whether an exporter ever ran.
    ever: std::cell::Cell<bool>,
}

impl Traces {
    /// Nothing running yet; exporters drain `queues` and run on `core`.
    pub(super) fn new(queues: Vec<Arc<ArrayQueue<Span>>>, core: Option<usize>) -> Self {
        Self {
            queues,
            core,
            running: RefCell::new(None),
            retired: Arc::default(),
            ever: std::cell::Cell::new(false),
        }
    }

    /// Runs an exporter for `tracing`, or none: a changed configuration
    /// replaces the running one (which sends what it holds on a thread of
    /// its own, so the control thread does not wait for the collector).
    pub(super) fn reconcile(&self, tracing: Option<&TracingSettings>) {
        let mut running = self.running.borrow_mut();
        if running.as_ref().map(|(s, _)| s) == tracing.map(|t| &t.otlp) {
            return;
        }
        if let Some((_, old)) = running.take() {
            let retired = Arc::clone(&self.retired);
            let stopped = std::thread::Builder::new()
                .name("ringway-otlp-stop".into())
                .spawn(move || add(&retired, &old.stop()));
            if let Err(e) = stopped {
                eprintln!("ringway: traces: cannot stop the old exporter on a thread: {e}");
            }
        }
        let Some(t) = tracing else {
            return;
        };
        match Exporter::spawn(t.otlp.clone(), self.queues.clone(), self.core) {
            Ok(exporter) => {
                self.ever.set(true);
                *running = Some((t.otlp.clone(), exporter));
            }
            Err(e) => eprintln!(
                "ringway: traces: cannot start the exporter: {e}; spans are dropped at the workers"
            ),
        }
    }

    /// Takes the running exporter, to stop it at exit.
    pub(super) fn take(&self) -> Option<Exporter> {
        self.running.borrow_mut().take().map(|(_, e)| e)
    }

    /// Every exporter's figures added up; `None` if none ever ran.
    pub(super) fn counts(&self) -> Option<ExportCounts> {
        if !self.ever.get() {
            return None;
        }
        let mut c = self.retired.snapshot();
        if let Some((_, e)) = &*self.running.borrow() {
            let now = e.stats().snapshot();
            c.exported += now.exported;
            c.batches += now.batches;
            c.rejected += now.rejected;
            c.dropped_backlog += now.dropped_backlog;
            c.abandoned += now.abandoned;
            c.failed_posts += now.failed_posts;
            c.held += now.held;
            c.held_peak = c.held_peak.max(now.held_peak);
        }
        Some(c)
    }
}

/// Adds a stopped exporter's figures to `to`.
fn add(to: &ExportStats, c: &ExportCounts) {
    let f = |a: &std::sync::atomic::AtomicU64, v: u64| {
        a.fetch_add(v, Ordering::Relaxed);
    };
    f(&to.exported, c.exported);
    f(&to.batches, c.batches);
    f(&to.rejected, c.rejected);
    f(&to.dropped_backlog, c.dropped_backlog);
    f(&to.abandoned, c.abandoned);
    f(&to.failed_posts, c.failed_posts);
    to.held_peak.fetch_max(c.held_peak, Ordering::Relaxed);
}
