//! The control agent: owns the effective configuration, compiles each new one
//! into a table, publishes it to the workers and keeps the figures the admin
//! API shows.
//!
//! It lives on the control thread, inside a single-threaded tokio runtime:
//! the state is behind a `RefCell` and no borrow is held across an `.await`.

pub mod balance;
pub mod cert_expiry;
mod checks;
pub mod endpoint_series;
pub mod endpoints;
pub mod exposition;
pub mod families;
pub mod rate_limits;
pub mod timings;
mod tracing;
pub mod worker_log;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use dataplane::link::log::bind_reason;
use dataplane::link::log::WorkerLogs;
use dataplane::link::{clock_ns, WorkerLink};
use dataplane::rt::net::TcpListener;
use dataplane::rt::IoBackend;
use dataplane::table::checks::Verdicts;
use dataplane::table::lb::{Balance, Policy};
use dataplane::table::outlier::EndpointEvents;
use dataplane::table::route::TlsCert;
use dataplane::table::Table;
use dataplane::worker::{WorkerReport, Workers};
use hdrhistogram::Histogram;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use self::cert_expiry::{Certificate, Owner};
use self::worker_log::LogTail;
use crate::access_log::AccessWriter;
use crate::config::{self, AdminSettings, Config, ConfigErrors};
use crate::rollout::{Action, ActionError, Event, RolloutFigures, Rollouts};

/// How long a caller of [`Agent::apply`] waits for the workers to take a
/// table before answering anyway.
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// The control agent.
#[derive(Debug)]
pub struct Agent {
    /// Taken when the agent stops them.
    workers: RefCell<Option<Workers>>,
    /// The reactor every worker runs on, fixed at start-up.
    backend: IoBackend,
    links: Vec<Arc<WorkerLink>>,
    /// Shutdown has begun: not ready any more.
    draining: Cell<bool>,
    /// The oldest generation any worker runs, fed by [`Agent::collect_acks`]:
    /// the one task that waits on the workers' ack wakers. Everyone else
    /// waits on this.
    acks: watch::Sender<u64>,
    /// The workers' ack pipe, until [`Agent::collect_acks`] takes it.
    ack_fd: RefCell<Option<OwnedFd>>,
    /// Publications whose last acknowledgement has not been seen yet:
    /// generation and when it was handed over ([`clock_ns`]).
    pending: RefCell<VecDeque<(u64, u64)>>,
    /// The file `ringway run --config` was given, if any.
    path: Option<PathBuf>,
    /// The cores the process may use, read before the control thread was
    /// pinned.
    cores: Option<Vec<usize>>,
    /// The workers' log queues, read only here.
    logs: WorkerLogs,
    /// What was said about them so far.
    log_tail: RefCell<LogTail>,
    /// What the endpoint log said last.
    endpoint_log: RefCell<endpoints::EndpointLog>,
    /// The last seconds of the workers' load, for their balance.
    balance: RefCell<balance::BalanceWindow>,
    /// The access log writer; `None` if its thread could not start (the
    /// workers then drop and count every record).
    access: RefCell<Option<AccessWriter>>,
    /// Span export, when `[tracing]` is set.
    traces: tracing::Traces,
    /// The endpoints whose series `/metrics` writes, departed ones
    /// included until they expire.
    endpoint_series: RefCell<endpoint_series::EndpointSeries>,
    state: RefCell<State>,
    /// The active health checks of the running table.
    checkers: checks::Checkers,
    /// The files the newest compiled table read TLS material from, with
    /// what they held, for the watch that follows them
    /// ([`crate::reload::follow`]).
    tls_files: watch::Sender<FilesRead>,
    /// The progressive rollouts of the running table.
    rollouts: RefCell<Rollouts>,
    /// Wakes the rollout timer when a rollout starts or resumes.
    rollout_wake: tokio::sync::Notify,
}

/// Files a table read, each with what it held just after the table was
/// compiled (`None`: it could not be read again).
pub type FilesRead = Arc<[(PathBuf, Option<Vec<u8>>)]>;

#[derive(Debug)]
struct State {
    /// The running configuration and the text it came from.
    config: Config,
    /// `None` once an endpoint update made the running configuration
    /// differ from every text.
    source: Option<String>,
    /// Where that text came from, as errors name it.
    origin: String,
    /// The newest table handed to the workers.
    table: Arc<Table>,
    /// Older tables that a worker or a connection may still hold. The agent
    /// keeps a reference to each until it is the last holder, so that the
    /// free (thousands of allocations for a large table) happens here, on
    /// the control core, never on a worker.
    retired: Vec<Arc<Table>>,
    /// Reloads applied and refused.
    reloads: u64,
    reload_failures: u64,
    /// From handing a table over until the last worker acknowledged it, in
    /// microseconds.
    publish_latency: Histogram<u64>,
    /// Sum of every recorded publish latency, in microseconds.
    publish_sum_us: u64,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new table was published with this generation.
    Published(u64),
    /// The text was the running configuration's: nothing to do.
    Unchanged(u64),
}

impl Applied {
    /// The generation running (or about to run) after the reload.
    pub fn generation(self) -> u64 {
        match self {
            Applied::Published(g) | Applied::Unchanged(g) => g,
        }
    }
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration is invalid or changes what cannot change.
    #[error("configuration refused:\n{0}")]
    Refused(ConfigErrors),
    /// `ringway run` got no file; there is nothing to re-read.
    #[error("ringway runs on the embedded default configuration; there is no file to reload")]
    NoFile,
    /// An endpoint update named a cluster the running table does not have.
    #[error("no cluster named `{0}` in the running configuration")]
    UnknownCluster(String),
    /// An endpoint update's list is not valid.
    #[error("endpoints refused: {}", .0.join("; "))]
    BadEndpoints(Vec<String>),
    /// Shutdown has begun: no new configuration is taken.
    #[error("ringway is shutting down; the configuration is no longer changed")]
    ShuttingDown,
    /// Generation `generation` was handed over, but a worker's eventfd could
    /// not be written: that worker runs it at its next wake-up.
    #[error(
        "generation {generation} was published, but worker {worker} could not be woken: {error}"
    )]
    Wake {
        /// The generation published.
        generation: u64,
        /// The worker not woken.
        worker: usize,
        /// Why.
        error: io::Error,
    },
}

impl Agent {
    /// An agent for `workers`, which run `table`, compiled from `config`
    /// read from `source` (the file at `path`, if any), and queue their log
    /// lines in `logs`.
    pub fn new(
        mut workers: Workers,
        logs: WorkerLogs,
        mut config: Config,
        table: Arc<Table>,
        source: String,
        path: Option<PathBuf>,
        cores: Option<Vec<usize>>,
    ) -> Self {
        let ack_fd = workers.take_acks();
        let traces = tracing::Traces::new(workers.span_queues(), config.control_core);
        traces.reconcile(config.tracing.as_ref());
        let access = match AccessWriter::spawn(
            workers.take_access_readers(),
            config.control_core,
            &table,
        ) {
            Ok(writer) => Some(writer),
            Err(e) => {
                eprintln!("ringway: cannot start the access log writer: {e}; access log records are dropped");
                None
            }
        };
        // The first table runs every rollout's configured weights: this
        // changes none of them, it only starts the rollouts.
        let mut rollouts = Rollouts::default();
        for line in rollouts.reconcile(&mut config.table, std::time::Instant::now(), unix_ms()) {
            eprintln!("{line}");
        }
        let origin = path.as_ref().map_or_else(
            || "<embedded default>".to_owned(),
            |p| p.display().to_string(),
        );
        Self {
            cores,
            logs,
            log_tail: RefCell::new(LogTail::default()),
            endpoint_log: RefCell::default(),
            balance: RefCell::default(),
            access: RefCell::new(access),
            traces,
            endpoint_series: RefCell::new({
                let mut series =
                    endpoint_series::EndpointSeries::new(config.metrics.endpoint_expiry);
                series.reconcile(&table, std::time::Instant::now());
                series
            }),
            checkers: checks::Checkers::default(),
            links: workers.links().to_vec(),
            backend: workers.backend(),
            workers: RefCell::new(Some(workers)),
            draining: Cell::new(false),
            acks: watch::Sender::new(0),
            ack_fd: RefCell::new(ack_fd),
            pending: RefCell::new(VecDeque::new()),
            path,
            tls_files: watch::Sender::new(read_files(&table)),
            rollouts: RefCell::new(rollouts),
            rollout_wake: tokio::sync::Notify::new(),
            state: RefCell::new(State {
                config,
                source: Some(source),
                origin,
                table,
                retired: Vec::new(),
                reloads: 0,
                reload_failures: 0,
                // 1 µs to 1 hour, 3 significant digits.
                publish_latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("static histogram bounds are valid"),
                publish_sum_us: 0,
            }),
        }
    }

    /// Stops every worker and waits (off the event loop, so the admin API
    /// keeps answering) until each has drained; returns their reports.
    pub async fn stop(&self) -> Vec<WorkerReport> {
        self.draining.set(true);
        self.checkers.stop();
        let Some(workers) = self.workers.borrow_mut().take() else {
            return Vec::new();
        };
        // `join` asks every worker to stop, then waits.
        let reports = tokio::task::spawn_blocking(move || workers.join())
            .await
            .unwrap_or_default();
        // The workers are gone: the writer takes what they left, writes
        // it out and ends.
        if let Some(mut writer) = self.access.borrow_mut().take() {
            writer.stop();
        }
        // So does the exporter, with the spans of the last requests.
        if let Some(exporter) = self.traces.take() {
            let _ = tokio::task::spawn_blocking(move || exporter.stop()).await;
        }
        reports
    }

    /// Reopens the access log files (SIGUSR1, after logrotate moved them).
    pub fn reopen_access_logs(&self) {
        if let Some(writer) = &*self.access.borrow() {
            writer.reopen();
        }
    }

    /// The span exporter's figures, every exporter this process ran
    /// summed, for `/metrics`; `None` when tracing was never configured.
    pub fn trace_export(&self) -> Option<crate::telemetry::otlp::ExportCounts> {
        self.traces.counts()
    }

    /// The per-endpoint series to write now: the newest table's endpoints
    /// and those that left it within the expiry.
    pub fn endpoint_series(&self) -> Vec<endpoint_series::EndpointSeriesFigures> {
        let now = std::time::Instant::now();
        let mut series = self.endpoint_series.borrow_mut();
        series.reconcile(&self.state.borrow().table, now);
        series.figures(now)
    }

    /// Records the access log writer wrote and lost, for `/metrics`.
    pub fn access_log_stats(&self) -> (u64, u64) {
        self.access
            .borrow()
            .as_ref()
            .map_or((0, 0), AccessWriter::stats)
    }

    /// Writes the lines the workers queued since the last call to stderr
    /// (see [`LogTail`]): once a second, and once more after they stopped.
    pub fn write_worker_logs(&self) {
        let dropped: Vec<u64> = self.links.iter().map(|l| l.stats().log_dropped).collect();
        let mut stderr = io::stderr().lock();
        // Nowhere else to say that stderr failed.
        let _ = self
            .log_tail
            .borrow_mut()
            .write(&self.logs, &dropped, &mut stderr);
    }

    /// Writes a line for each endpoint ejected, back or spared since the
    /// last call (once a second).
    pub fn write_endpoint_log(&self) {
        let figures = endpoints::EndpointFigures::read(&self.state.borrow().table);
        self.endpoint_log
            .borrow_mut()
            .write(&figures, &mut io::stderr().lock());
    }

    /// What the agent shares with each worker.
    pub fn links(&self) -> &[Arc<WorkerLink>] {
        &self.links
    }

    /// The config file, if ringway was started with one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The running configuration as TOML, every default filled in, and its
    /// generation.
    pub fn effective_config(&self) -> (String, u64) {
        let state = self.state.borrow();
        (state.config.to_toml(), state.table.generation)
    }

    /// The admin endpoint's settings in the running configuration (its
    /// timeouts may change on reload; its address may not).
    pub fn admin_settings(&self) -> AdminSettings {
        self.state.borrow().config.admin
    }

    /// The generation of the first table: workers running it or a later one
    /// make the proxy ready.
    pub fn ready(&self) -> bool {
        !self.draining.get() && self.links().iter().all(|l| !l.exited() && l.acked() >= 1)
    }

    /// Shutdown has begun.
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    /// Validates `text` (named `origin` in errors) as the next configuration,
    /// compiles and publishes it. On error nothing changes but the failure
    /// count.
    pub fn apply(self: &Rc<Self>, text: &str, origin: &str) -> Result<Applied, ReloadError> {
        let mut state = self.state.borrow_mut();
        if self.draining.get() {
            return Err(ReloadError::ShuttingDown);
        }
        // The same text is the same configuration, unless it names
        // certificate files: a reload is how their new contents are read.
        if state.source.as_deref() == Some(text) && !reads_files(&state.table) {
            return Ok(Applied::Unchanged(state.table.generation));
        }
        let probe = |addr: SocketAddr| TcpListener::probe(addr).map_err(|e| bind_reason(&e));
        let next =
            match config::parse_update(text, origin, &state.config, self.cores.as_deref(), probe) {
                Ok(next) => next,
                Err(errors) => {
                    state.reload_failures += 1;
                    return Err(ReloadError::Refused(errors));
                }
            };
        state.origin = origin.to_owned();
        // What the files hold now is, all but certainly, what the compile
        // just read: the watch compares later changes with this.
        let files = read_files(&next.table);
        let result = self.publish(&mut state, next, Some(text.to_owned()));
        self.tls_files.send_replace(files);
        result
    }

    /// Applies the running configuration again, which reads its TLS files
    /// anew: what a reload of an unchanged config file does, without
    /// reading the file (which may hold edits not meant to apply yet).
    /// After an endpoint update, the running configuration is the
    /// effective one, endpoints included.
    pub fn reread_files(self: &Rc<Self>) -> Result<Applied, ReloadError> {
        let (text, origin) = {
            let state = self.state.borrow();
            match &state.source {
                Some(text) => (text.clone(), state.origin.clone()),
                None => (state.config.to_toml(), "<running configuration>".to_owned()),
            }
        };
        self.apply(&text, &origin)
    }

    /// Replaces the endpoints of cluster `name` (service discovery's usual
    /// update) and publishes the result as a new generation.
    pub fn set_endpoints(
        self: &Rc<Self>,
        name: &str,
        endpoints: &[config::EndpointSpec],
    ) -> Result<Applied, ReloadError> {
        if self.draining.get() {
            return Err(ReloadError::ShuttingDown);
        }
        let mut state = self.state.borrow_mut();
        let Some(index) = state
            .config
            .table
            .clusters
            .iter()
            .position(|c| &*c.name == name)
        else {
            state.reload_failures += 1;
            return Err(ReloadError::UnknownCluster(name.to_owned()));
        };
        let policy = state.config.table.clusters[index].balance.policy.clone();
        let parsed = config::parse_endpoints(endpoints).and_then(|(endpoints, weights)| {
            let weighted = weights.iter().any(|&w| w != 1);
            if weighted && policy == Policy::RoundRobin {
                return Err(vec![format!(
                    "endpoints: weights need a policy that reads them; cluster `{name}` has lb = \"round_robin\" (set lb = \"weighted_round_robin\" in the configuration)"
                )]);
            }
            Balance::check(&policy, &weights).map_err(|e| vec![format!("endpoints: {e}")])?;
            Ok((endpoints, weights))
        });
        let (endpoints, weights) = match parsed {
            Ok(parsed) => parsed,
            Err(errors) => {
                state.reload_failures += 1;
                return Err(ReloadError::BadEndpoints(errors));
            }
        };
        // The clone shares every listener's service, HTTP tallies included,
        // so counters carry on into the new generation.
        let mut next = state.config.clone();
        let mut cluster = (*next.table.clusters[index]).clone();
        // The policy's lookup (cycle, ring, table) is rebuilt for the new
        // list here, on the control core, before any worker sees it.
        cluster.balance = Balance::new(policy, &endpoints, &weights);
        // The checks' verdicts, carried over by address: their checker is
        // replaced by one on the new cells when this is published.
        if let Some(checks) = cluster.checks.as_mut() {
            checks.verdicts = Arc::new(Verdicts::new(&endpoints, Some(&checks.verdicts)));
        }
        // So are the ejection counts.
        cluster.events = EndpointEvents::new(&endpoints, Some(&cluster.events));
        cluster.endpoint_tallies = dataplane::table::tally::EndpointTallies::new(
            &endpoints,
            self.links.len(),
            Some(&cluster.endpoint_tallies),
        );
        cluster.endpoints = endpoints;
        next.table.clusters[index] = Arc::new(cluster);
        // The running configuration no longer matches any text: the next
        // reload of the file applies whatever it says.
        self.publish(&mut state, next, None)
    }

    /// Compiles `next` into the next generation, hands it to every worker
    /// and makes it the running configuration.
    fn publish(
        self: &Rc<Self>,
        state: &mut State,
        mut next: Config,
        source: Option<String>,
    ) -> Result<Applied, ReloadError> {
        let generation = state.table.generation + 1;
        next.table.generation = generation;
        // Live rollouts keep their weights; new ones start.
        let lines = self.rollouts.borrow_mut().reconcile(
            &mut next.table,
            std::time::Instant::now(),
            unix_ms(),
        );
        for line in lines {
            eprintln!("{line}");
        }
        // A rollout may have started: its first evaluation is due.
        self.rollout_wake.notify_one();
        let table = Arc::new(next.table.clone());
        // The writer knows every output before a worker can log to it.
        if let Some(writer) = &*self.access.borrow() {
            writer.learn(&table);
        }
        self.traces.reconcile(next.tracing.as_ref());
        {
            let mut series = self.endpoint_series.borrow_mut();
            series.set_expiry(next.metrics.endpoint_expiry);
            series.reconcile(&table, std::time::Instant::now());
        }
        let published = clock_ns();
        // Every slot gets the table before any worker is woken, and the
        // agent's state follows whatever happens next: a worker that takes
        // the table must never run a generation the agent does not know.
        let mut wake_failure = None;
        for link in self.links() {
            if let Err(e) = link.publish(Arc::clone(&table)) {
                wake_failure.get_or_insert((link.index(), e));
            }
        }
        state.config = next;
        state.source = source;
        self.checkers.reconcile(&table);
        let previous = std::mem::replace(&mut state.table, table);
        state.retired.push(previous);
        sweep(&mut state.retired);
        state.reloads += 1;
        self.pending.borrow_mut().push_back((generation, published));
        match wake_failure {
            None => Ok(Applied::Published(generation)),
            Some((worker, error)) => Err(ReloadError::Wake {
                generation,
                worker,
                error,
            }),
        }
    }

    /// Evaluates the rollouts whose interval is over, for as long as the
    /// agent runs (a task of the control thread's runtime).
    pub async fn run_rollouts(self: Rc<Self>) {
        loop {
            // Asleep until the soonest evaluation is due, or a publication
            // or a resume may have made one due sooner (with no rollout
            // progressing, until then only).
            let due = self.rollouts.borrow().next_due();
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = self.rollout_wake.notified() => {}
            }
            if self.draining.get() {
                return;
            }
            self.evaluate_rollouts();
        }
    }

    /// Evaluates every rollout that is due; publishes the weights they
    /// changed as a new generation and logs each decision that changed
    /// something.
    fn evaluate_rollouts(self: &Rc<Self>) {
        let now = std::time::Instant::now();
        let (events, changed) = {
            let state = self.state.borrow();
            self.rollouts
                .borrow_mut()
                .evaluate(&state.table, now, unix_ms())
        };
        let generation = if changed {
            self.publish_rollouts()
        } else {
            None
        };
        self.note_events(&events, generation);
    }

    /// Publishes the running configuration again with the rollouts' weights;
    /// returns the generation.
    fn publish_rollouts(self: &Rc<Self>) -> Option<u64> {
        let mut state = self.state.borrow_mut();
        if self.draining.get() {
            return None;
        }
        let next = state.config.clone();
        let source = state.source.clone();
        match self.publish(&mut state, next, source) {
            Ok(applied) => Some(applied.generation()),
            Err(e) => {
                eprintln!("ringway: rollout: {e}");
                match e {
                    ReloadError::Wake { generation, .. } => Some(generation),
                    _ => None,
                }
            }
        }
    }

    /// Logs `events` (holds are only counted) and notes the generation
    /// that carries their weights.
    fn note_events(&self, events: &[Event], generation: Option<u64>) {
        if let Some(g) = generation {
            self.rollouts.borrow_mut().published(events, g);
        }
        for event in events {
            if event.decision.kind != crate::rollout::machine::Kind::Hold {
                eprintln!("{}", event.line(generation));
            }
        }
    }

    /// Takes an operator's action on rollout `key`; returns the generation
    /// that carries the new weights, if they changed.
    pub fn rollout_action(
        self: &Rc<Self>,
        key: &str,
        action: Action,
    ) -> Result<Option<u64>, ActionError> {
        if self.draining.get() {
            return Err(ActionError::ShuttingDown);
        }
        let event = {
            let state = self.state.borrow();
            self.rollouts.borrow_mut().act(
                key,
                action,
                &state.table,
                std::time::Instant::now(),
                unix_ms(),
            )?
        };
        let generation = match action {
            Action::Promote | Action::Abort => self.publish_rollouts(),
            Action::Pause | Action::Resume => None,
        };
        self.rollout_wake.notify_one();
        self.note_events(std::slice::from_ref(&event), generation);
        Ok(generation)
    }

    /// Every rollout, for `/stats` and `GET /rollouts`.
    pub fn rollouts_json(&self) -> serde_json::Value {
        self.rollouts.borrow().json()
    }

    /// Rollout `key`, for `GET /rollouts/KEY`.
    pub fn rollout_json(&self, key: &str) -> Result<serde_json::Value, ActionError> {
        self.rollouts.borrow().json_of(key)
    }

    /// The rollouts' figures, for `/metrics`.
    pub fn rollout_figures(&self) -> Vec<RolloutFigures> {
        self.rollouts.borrow().figures()
    }

    /// Starts the active health checks of the running table (once the
    /// control thread's runtime runs).
    pub fn start_checks(&self) {
        self.checkers.reconcile(&self.state.borrow().table);
    }

    /// Frees the retired tables nobody else holds any more.
    pub fn sweep_retired(&self) {
        sweep(&mut self.state.borrow_mut().retired);
    }

    /// Re-reads the config file and applies it.
    pub fn reload_file(self: &Rc<Self>) -> Result<Applied, ReloadError> {
        if self.draining.get() {
            return Err(ReloadError::ShuttingDown);
        }
        let Some(path) = &self.path else {
            return Err(ReloadError::NoFile);
        };
        match config::read(path) {
            Ok(text) => self.apply(&text, &path.display().to_string()),
            Err(errors) => {
                self.state.borrow_mut().reload_failures += 1;
                Err(ReloadError::Refused(errors))
            }
        }
    }

    /// Waits until every worker runs `generation` or a later one, up to
    /// `timeout`; returns whether they do.
    pub async fn acked(&self, generation: u64, timeout: Duration) -> bool {
        let mut acks = self.acks.subscribe();
        let wait = async move { acks.wait_for(|&oldest| oldest >= generation).await.is_ok() };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Follows the workers' acknowledgements (and exits) and publishes the
    /// oldest generation a live worker runs. The workers notify one pipe;
    /// this task, spawned once, is its only reader.
    pub async fn collect_acks(self: Rc<Self>) {
        let Some(fd) = self.ack_fd.borrow_mut().take() else {
            return;
        };
        let pipe = match pipe::Receiver::from_owned_fd(fd) {
            Ok(pipe) => pipe,
            Err(e) => {
                eprintln!("ringway: cannot follow the workers' acknowledgements: {e}");
                return;
            }
        };
        let mut drained = [0u8; 512];
        loop {
            // Empty the pipe first, then read the links: an ack that lands
            // after the read writes to the pipe again and wakes us.
            loop {
                match pipe.try_read(&mut drained) {
                    Ok(0) => return, // every worker's end is closed
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        eprintln!("ringway: reading the workers' ack pipe failed: {e}");
                        return;
                    }
                }
            }
            self.take_acks();
            if pipe.readable().await.is_err() {
                return;
            }
        }
    }

    /// Reads every link and publishes the oldest generation a live worker
    /// runs; records the latencies this completes.
    fn take_acks(&self) {
        let oldest = self
            .links()
            .iter()
            .filter(|l| !l.exited())
            .map(|l| l.acked())
            .min()
            .unwrap_or(0);
        self.record_latencies(oldest);
        self.acks.send_if_modified(|current| {
            let changed = *current != oldest;
            *current = oldest;
            changed
        });
    }

    /// Records the publish latency of every pending publication that all
    /// workers now run: from handing it over until the last worker's
    /// acknowledgement, as the workers stamped it. A worker that skipped a
    /// generation (a newer one arrived first) is counted at its later
    /// acknowledgement: the figure errs long, never short.
    fn record_latencies(&self, oldest: u64) {
        let mut pending = self.pending.borrow_mut();
        while let Some(&(generation, published)) = pending.front() {
            if generation > oldest {
                break;
            }
            pending.pop_front();
            let last_ack = self
                .links()
                .iter()
                .filter(|l| !l.exited())
                .map(|l| l.acked_at_ns())
                .max();
            let micros = last_ack.unwrap_or(published).saturating_sub(published) / 1_000;
            let micros = micros.clamp(1, 3_600_000_000);
            let mut state = self.state.borrow_mut();
            if state.publish_latency.record(micros).is_ok() {
                state.publish_sum_us += micros;
            }
        }
    }

    /// Copies every worker's counters now.
    pub fn worker_figures(&self) -> Vec<exposition::WorkerFigures> {
        self.links
            .iter()
            .map(|l| exposition::WorkerFigures::read(l))
            .collect()
    }

    /// Samples the workers' load into the balance window (once a second).
    pub fn sample_balance(&self) {
        let workers = self.worker_figures();
        self.balance
            .borrow_mut()
            .sample(std::time::Instant::now(), &workers);
    }

    /// How evenly the workers share the load, over the balance window,
    /// with the connections open in `workers` now.
    pub fn balance(&self, workers: &[exposition::WorkerFigures]) -> balance::BalanceFigures {
        self.balance.borrow().figures(workers)
    }

    /// The HTTP counters of the newest table, for `/stats` and `/metrics`.
    /// Tallies are carried from table to table (see `config::parse_update`),
    /// so these are cumulative across reloads for every label set kept.
    pub fn http_figures(&self) -> exposition::HttpFigures {
        exposition::HttpFigures::read(&self.state.borrow().table)
    }

    /// The certificates the newest table presents, for `/stats` and
    /// `/metrics`.
    pub fn certificates(&self) -> Vec<Certificate> {
        cert_expiry::running(&self.state.borrow().table)
    }

    /// The certificate `owner` `name` presents by default (a listener's
    /// default certificate, a cluster's client certificate), and the
    /// SPIFFE ID it proves (`Some(None)`: none; `None`: not known), for a
    /// replacement pushed through the admin API.
    pub fn replaceable(
        &self,
        owner: Owner,
        name: &str,
    ) -> Result<(TlsCert, Option<Option<String>>), NoCertificate> {
        let state = self.state.borrow();
        let table = &state.table;
        let cert = match owner {
            Owner::Listener => {
                let listener = table
                    .listeners
                    .iter()
                    .find(|l| &*l.name == name)
                    .ok_or(NoCertificate::Unknown(owner))?;
                listener.tls().and_then(|t| t.certs.first())
            }
            Owner::Cluster => {
                let cluster = table
                    .clusters
                    .iter()
                    .find(|c| &*c.name == name)
                    .ok_or(NoCertificate::Unknown(owner))?;
                cluster.tls.as_ref().and_then(|t| t.cert.as_ref())
            }
        };
        let cert = cert.ok_or(NoCertificate::None(owner))?;
        let identity = Some(cert.identity.as_deref().map(str::to_owned));
        Ok((cert.clone(), identity))
    }

    /// Follows the files the newest compiled table read TLS material
    /// from, with what they held (sent at every compile, even of the same
    /// files: their content is news to the watch).
    pub fn tls_files(&self) -> watch::Receiver<FilesRead> {
        self.tls_files.subscribe()
    }

    /// The agent's own figures, for `/stats` and `/metrics`.
    pub fn figures(&self) -> exposition::AgentFigures {
        let state = self.state.borrow();
        let h = &state.publish_latency;
        exposition::AgentFigures {
            io_backend: self.backend,
            generation: state.table.generation,
            ready: self.ready(),
            reloads: state.reloads,
            reload_failures: state.reload_failures,
            publish_count: h.len(),
            publish_p50_us: h.value_at_quantile(0.5),
            publish_p99_us: h.value_at_quantile(0.99),
            publish_max_us: h.max(),
            publish_sum_us: state.publish_sum_us,
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    dataplane::latency::unix_ns() / 1_000_000
}

/// Drops every table of `retired` that only the agent still holds.
fn sweep(retired: &mut Vec<Arc<Table>>) {
    // A count of 1 is the agent's own reference: no worker, handoff slot or
    // connection has it, and none can get it any more.
    retired.retain(|t| Arc::strong_count(t) > 1);
}

/// Why there is no certificate to replace.
#[derive(Debug, thiserror::Error)]
pub enum NoCertificate {
    /// No listener or cluster of that name.
    #[error("no {} of that name in the running configuration", .0.name())]
    Unknown(Owner),
    /// It presents no certificate of its own.
    #[error("{}", match .0 {
        Owner::Listener => "the listener has no tls: a certificate is pushed over the files its tls = { cert, key } names",
        Owner::Cluster => "the cluster presents no client certificate: a certificate is pushed over the files its tls = { cert, key } names",
    })]
    None(Owner),
}

/// Whether `table` holds material read from files other than the
/// configuration (TLS certificates, keys and anchors).
fn reads_files(table: &Table) -> bool {
    !tls_files(table).is_empty()
}

/// Every file `table` read TLS material from, with what it holds now.
fn read_files(table: &Table) -> FilesRead {
    tls_files(table)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).ok();
            (path, bytes)
        })
        .collect()
}

/// Every file `table` read TLS material from, each once, in table order:
/// listeners' certificates, keys and client anchors, then clusters'
/// anchors, certificates and keys.
pub fn tls_files(table: &Table) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut add = |path: &str| {
        let path = PathBuf::from(path);
        if !files.contains(&path) {
            files.push(path);
        }
    };
    for l in &table.listeners {
        let Some(tls) = l.tls() else {
            continue;
        };
        for cert in &tls.certs {
            add(&cert.cert);
            add(&cert.key);
        }
        if let Some(clients) = &tls.clients {
            add(&clients.ca);
        }
    }
    for c in &table.clusters {
        let Some(tls) = &c.tls else {
            continue;
        };
        if let Some(ca) = &tls.ca {
            add(ca);
        }
        if let Some(cert) = &tls.cert {
            add(&cert.cert);
            add(&cert.key);
        }
    }
    files
}
