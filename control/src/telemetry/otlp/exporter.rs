//! The exporter thread: drains the workers' span queues, batches, sends,
//! retries, and keeps its figures in [`ExportStats`].
//!
//! Its only contact with a worker is `ArrayQueue::pop` on that worker's
//! queue: a slow or absent collector makes the exporter hold spans (up to
//! its bound, then drop the oldest), never a worker wait. Each turn it
//! drains every queue, seals a batch that is full or old enough, and sends
//! the sealed batches unless a backoff is running; then it sleeps for
//! `poll_every` (a turn with empty queues costs one `len()` per queue).
//! Between two requests it drains the queues again, so a run of slow
//! requests does not leave them full.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use dataplane::trace::span::Span;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::answer::Answer;
use super::batch::Batcher;
use super::encode::Encoder;
use super::post::{Client, PostError};
use super::retry::{judge, Backoff, Verdict};
use super::settings::{OtlpSettings, SettingsError};
use super::stats::{ExportCounts, ExportStats};

/// The name of the exporter thread.
pub const THREAD_NAME: &str = "ringway-otlp";

/// Least time between two log lines about the same kind of trouble.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Body bytes of a refusal quoted in its log line.
const QUOTED_BODY: usize = 200;

/// A running exporter; stops (sending what it holds, within the deadline)
/// when [`Exporter::stop`] is called or when dropped.
#[derive(Debug)]
pub struct Exporter {
    stats: Arc<ExportStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Why the exporter did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The settings do not make sense.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The thread could not be made.
    #[error("cannot start the span exporter thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Exporter {
    /// Starts the exporter thread on the worker queues `queues`, pinned to
    /// `core` when given (a core that cannot be had is logged, and the
    /// thread runs where the scheduler puts it).
    pub fn spawn(
        settings: OtlpSettings,
        queues: Vec<Arc<ArrayQueue<Span>>>,
        core: Option<usize>,
    ) -> Result<Self, SpawnError> {
        settings.check()?;
        let stats = Arc::new(ExportStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let run = Run::new(settings, queues, Arc::clone(&stats), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        eprintln!(
                            "ringway: traces: cannot pin the exporter thread to core {core}; \
                             it runs unpinned"
                        );
                    }
                }
                run.run();
            })
            .map_err(SpawnError::Thread)?;
        Ok(Self {
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// The exporter's figures, live.
    pub fn stats(&self) -> Arc<ExportStats> {
        Arc::clone(&self.stats)
    }

    /// Stops the thread: it drains the queues once more, sends what it
    /// holds until `stop_deadline` passes, counts the rest as abandoned, and
    /// ends. Returns the final figures.
    pub fn stop(mut self) -> ExportCounts {
        self.halt();
        self.stats.snapshot()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                eprintln!("ringway: traces: the exporter thread panicked");
            }
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The exporter thread's state.
struct Run {
    settings: OtlpSettings,
    queues: Vec<Arc<ArrayQueue<Span>>>,
    batcher: Batcher,
    client: Client,
    backoff: Backoff,
    /// No request before this, after a failure.
    retry_at: Option<Instant>,
    stats: Arc<ExportStats>,
    stop: Arc<AtomicBool>,
    /// Failed requests in a row.
    failures: u64,
    /// Log lines about refused batches, about dropped ones.
    refusals: LogGate,
    drops: LogGate,
}

impl Run {
    fn new(
        settings: OtlpSettings,
        queues: Vec<Arc<ArrayQueue<Span>>>,
        stats: Arc<ExportStats>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let encoder = Encoder::new(&settings.service_name, settings.instance_id.as_deref());
        Self {
            batcher: Batcher::new(
                encoder,
                settings.batch_spans,
                settings.batch_delay,
                settings.max_held_spans,
            ),
            client: Client::new(settings.endpoint.clone()),
            backoff: Backoff::new(settings.backoff_first, settings.backoff_max),
            retry_at: None,
            queues,
            stats,
            stop,
            failures: 0,
            refusals: LogGate::default(),
            drops: LogGate::default(),
            settings,
        }
    }

    fn run(mut self) {
        loop {
            self.drain();
            if self.stopping() {
                break;
            }
            self.batcher.seal_due(Instant::now());
            self.send_ready();
            if self.stopping() {
                break;
            }
            thread::park_timeout(self.settings.poll_every);
        }
        self.flush();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Takes what every queue holds now (not what is pushed meanwhile: a
    /// busy worker cannot keep the exporter here).
    fn drain(&mut self) {
        let now = Instant::now();
        let mut dropped = 0;
        for queue in &self.queues {
            for _ in 0..queue.len() {
                let Some(span) = queue.pop() else { break };
                dropped += self.batcher.push(span, now);
            }
        }
        if dropped > 0 {
            ExportStats::add(&self.stats.dropped_backlog, dropped as u64);
            if let Some(more) = self.drops.pass(now) {
                eprintln!(
                    "ringway: traces: {} unsent spans held already (the collector at {} is down \
                     or slow, or spans come faster than it takes them): dropping the oldest \
                     batches{}",
                    self.settings.max_held_spans,
                    self.settings.endpoint,
                    again(more),
                );
            }
        }
        self.stats.set_held(self.batcher.held());
    }

    /// Sends sealed batches, oldest first, while no backoff runs.
    fn send_ready(&mut self) {
        while let Some(batch) = self.batcher.front() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            let spans = batch.spans;
            let result = self.client.post(&batch.body, self.settings.timeout);
            self.settle(result, spans);
            self.drain();
            self.batcher.seal_due(Instant::now());
            if self.stopping() {
                return;
            }
        }
    }

    /// Acts on the outcome of sending the oldest batch, of `spans` spans.
    fn settle(&mut self, result: Result<Answer, PostError>, spans: usize) {
        let verdict = match &result {
            Ok(answer) => judge(answer.status, answer.retry_after),
            Err(_) => Verdict::Retry(None),
        };
        let now = Instant::now();
        if let Verdict::Retry(asked) = verdict {
            ExportStats::add(&self.stats.failed_posts, 1);
            let wait = self.backoff.wait(asked);
            self.retry_at = Some(now + wait);
            if self.failures == 0 {
                let why = match &result {
                    Ok(answer) => format!("it answered {}", answer.status),
                    Err(e) => e.to_string(),
                };
                eprintln!(
                    "ringway: traces: cannot export spans to {}: {why}; retrying with backoff, \
                     holding at most {} spans meanwhile",
                    self.settings.endpoint, self.settings.max_held_spans,
                );
            }
            self.failures += 1;
            return;
        }
        // The collector answered: whatever it said, it is there.
        if self.failures > 0 {
            eprintln!(
                "ringway: traces: the collector at {} answers again, after {} failed request(s)",
                self.settings.endpoint, self.failures,
            );
        }
        self.failures = 0;
        self.backoff.reset();
        self.retry_at = None;
        self.batcher.pop_front();
        self.stats.set_held(self.batcher.held());
        let Ok(answer) = result else { return };
        if verdict == Verdict::Accepted {
            let (rejected, message) = partial_rejection(&answer, spans);
            ExportStats::add(&self.stats.exported, (spans - rejected) as u64);
            ExportStats::add(&self.stats.batches, 1);
            if rejected > 0 {
                ExportStats::add(&self.stats.rejected, rejected as u64);
                if let Some(more) = self.refusals.pass(now) {
                    eprintln!(
                        "ringway: traces: the collector at {} rejected {rejected} of {spans} \
                         spans: {message}{}",
                        self.settings.endpoint,
                        again(more),
                    );
                }
            }
        } else {
            ExportStats::add(&self.stats.rejected, spans as u64);
            if let Some(more) = self.refusals.pass(now) {
                eprintln!(
                    "ringway: traces: the collector at {} refused {spans} spans with status {}{}; \
                     they are dropped{}",
                    self.settings.endpoint,
                    answer.status,
                    quote(&answer.body),
                    again(more),
                );
            }
        }
    }

    /// At stop: sends what is held (and queued) until the deadline.
    fn flush(&mut self) {
        let deadline = Instant::now() + self.settings.stop_deadline;
        self.batcher.seal();
        while let Some(batch) = self.batcher.front() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(at) = self.retry_at.filter(|&at| at > now) {
                if at >= deadline {
                    break;
                }
                thread::sleep(at - now);
                continue;
            }
            let spans = batch.spans;
            let timeout = self.settings.timeout.min(deadline - now);
            let result = self.client.post(&batch.body, timeout);
            self.settle(result, spans);
        }
        let left = self.batcher.held();
        if left > 0 {
            ExportStats::add(&self.stats.abandoned, left as u64);
            eprintln!(
                "ringway: traces: {left} span(s) not exported at shutdown: the collector at {} \
                 did not take them within {:?}",
                self.settings.endpoint, self.settings.stop_deadline,
            );
        }
        self.stats.held.store(0, Ordering::Relaxed);
        self.client.close();
    }
}

/// How many spans an accepted request's answer says were rejected (OTLP's
/// partial success), at most `spans`, with the collector's message.
fn partial_rejection(answer: &Answer, spans: usize) -> (usize, String) {
    if !answer.protobuf || answer.body.is_empty() {
        return (0, String::new());
    }
    let Ok(response) = ExportTraceServiceResponse::decode(answer.body.as_slice()) else {
        return (0, String::new());
    };
    match response.partial_success {
        Some(partial) if partial.rejected_spans > 0 => {
            let rejected = usize::try_from(partial.rejected_spans).unwrap_or(usize::MAX);
            (rejected.min(spans), partial.error_message)
        }
        _ => (0, String::new()),
    }
}

/// `: <the start of body>` when the body has text to show.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text:?}")
    }
}

/// ` (N more since the last line)` when lines were held back.
fn again(more: u64) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" ({more} more time(s) since the last such line)")
    }
}

/// Lets one log line through per [`LOG_EVERY`], counting those held back.
#[derive(Debug, Default)]
struct LogGate {
    last: Option<Instant>,
    held_back: u64,
}

impl LogGate {
    /// Whether to log now; if so, how many lines were held back since the
    /// last one.
    fn pass(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < LOG_EVERY => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest,
    };

    use super::*;
    use crate::telemetry::otlp::encode::tests::server_span;
    use crate::telemetry::otlp::post::tests::refusing_endpoint;
    use crate::telemetry::otlp::settings::Endpoint;

    const LONG: Duration = Duration::from_secs(60);

    /// A collector on a loopback port that answers every request with
    /// `answer(n)` (n from 0) and sends the number of spans of each request
    /// it read on the channel.
    fn collector(
        answer: impl Fn(usize) -> Vec<u8> + Send + 'static,
    ) -> (Endpoint, mpsc::Receiver<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("an address");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                stream.set_read_timeout(Some(LONG)).expect("a timeout");
                let mut reader = BufReader::new(stream);
                while let Some(body) = read_body(&mut reader) {
                    let request =
                        ExportTraceServiceRequest::decode(body.as_slice()).expect("protobuf");
                    let spans = request.resource_spans[0].scope_spans[0].spans.len();
                    if tx.send(spans).is_err() {
                        return;
                    }
                    let reply = answer(n);
                    n += 1;
                    if reader.get_mut().write_all(&reply).is_err() {
                        break;
                    }
                }
            }
        });
        let endpoint = Endpoint::parse(&format!("http://{addr}/v1/traces")).expect("a URL");
        (endpoint, rx)
    }

    fn read_body(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.trim().parse().ok()?;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(body)
    }

    fn http(status: &str, body: &[u8]) -> Vec<u8> {
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(body);
        reply
    }

    fn settings(endpoint: Endpoint) -> OtlpSettings {
        OtlpSettings {
            poll_every: Duration::from_millis(5),
            batch_spans: 10,
            max_held_spans: 40,
            timeout: Duration::from_secs(10),
            backoff_first: Duration::from_millis(1),
            backoff_max: Duration::from_millis(20),
            stop_deadline: Duration::from_secs(30),
            ..OtlpSettings::new(endpoint)
        }
    }

    fn queue_of(spans: usize) -> Arc<ArrayQueue<Span>> {
        let queue = Arc::new(ArrayQueue::new(1_024));
        for _ in 0..spans {
            queue.push(server_span()).expect("room in the queue");
        }
        queue
    }

    #[test]
    fn refuses_bad_settings() {
        let bad = OtlpSettings {
            batch_spans: 0,
            ..OtlpSettings::default()
        };
        let err = Exporter::spawn(bad, Vec::new(), None).expect_err("refused");
        assert!(matches!(err, SpawnError::Settings(_)), "{err}");
    }

    #[test]
    fn full_batches_go_at_once_and_stop_sends_the_rest() {
        let (endpoint, requests) = collector(|_| http("200 OK", b""));
        let queues = vec![queue_of(15), queue_of(10)];
        let exporter = Exporter::spawn(settings(endpoint), queues.clone(), None).expect("started");
        // Two full batches of 10 go without waiting for the 5 s delay.
        let first: Vec<usize> = requests.iter().take(2).collect();
        assert_eq!(first, [10, 10]);
        let counts = exporter.stop();
        assert_eq!(requests.recv().expect("the rest at stop"), 5);
        assert_eq!(counts.exported, 25);
        assert_eq!(counts.batches, 3);
        assert_eq!(counts.held, 0);
        assert_eq!(counts.accounted(), 25);
        assert!(queues.iter().all(|q| q.is_empty()));
    }

    #[test]
    fn retries_a_busy_collector_and_drops_refused_batches() {
        // 503 twice, then 400 (refused for good), then accepted with one
        // span reported rejected.
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "span too old".into(),
            }),
        }
        .encode_to_vec();
        let (endpoint, requests) = collector(move |n| match n {
            0 | 1 => http("503 Service Unavailable", b""),
            2 => http("400 Bad Request", b"bad span"),
            _ => http("200 OK", &partial),
        });
        let queues = vec![queue_of(20)];
        let exporter = Exporter::spawn(settings(endpoint), queues, None).expect("started");
        let sizes: Vec<usize> = requests.iter().take(4).collect();
        // The first batch three times (two retries, then refused), then the
        // second.
        assert_eq!(sizes, [10, 10, 10, 10]);
        let counts = exporter.stop();
        assert_eq!(counts.failed_posts, 2);
        assert_eq!(counts.rejected, 10 + 1);
        assert_eq!(counts.exported, 9);
        assert_eq!(counts.batches, 1);
        assert_eq!(counts.accounted(), 20);
    }

    #[test]
    fn stop_gives_up_on_a_dead_collector_at_its_deadline() {
        let (_held, endpoint) = refusing_endpoint();
        let settings = OtlpSettings {
            stop_deadline: Duration::from_millis(200),
            ..settings(endpoint)
        };
        let exporter = Exporter::spawn(settings, vec![queue_of(7)], None).expect("started");
        let counts = exporter.stop();
        assert_eq!(counts.exported, 0);
        assert_eq!(counts.abandoned, 7);
        assert_eq!(counts.accounted(), 7);
    }

    #[test]
    fn the_log_gate_lets_one_line_a_minute_through() {
        let mut gate = LogGate::default();
        let start = Instant::now();
        assert_eq!(gate.pass(start), Some(0));
        assert_eq!(gate.pass(start + Duration::from_secs(1)), None);
        assert_eq!(gate.pass(start + Duration::from_secs(59)), None);
        assert_eq!(gate.pass(start + Duration::from_secs(60)), Some(2));
        assert_eq!(gate.pass(start + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_refusal_quotes_the_start_of_its_body() {
        assert_eq!(quote(b""), "");
        assert_eq!(quote(b"  \n"), "");
        assert_eq!(quote(b"no such\n  path"), ": \"no such path\"");
        assert_eq!(quote(&[b'x'; 300]).len(), 2 + 2 + QUOTED_BODY);
    }
}
