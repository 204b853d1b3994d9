//! The access log writer: a thread on the control core that drains every
//! worker's ring, formats the records and writes them to their outputs,
//! each buffered and written at 64 KiB or once a second.
//!
//! It is the only reader of the rings and the only writer of the files.
//! A worker never waits for it: when it falls behind, the rings fill and
//! the workers drop (and count) what does not fit. A file that cannot be
//! opened or written costs its records (counted), never the others'.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dataplane::access::AccessReader;
use dataplane::table::access::{LogFormat, LogOutput};
use dataplane::table::{Service, Table};

use super::format;

/// An output's buffer is written once it holds this much.
pub const FLUSH_BYTES: usize = 64 * 1024;
/// ... or once its oldest line is this old.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer rests when a pass found nothing.
const IDLE: Duration = Duration::from_millis(10);
/// How long after a failed open the writer tries again.
const RETRY_OPEN: Duration = Duration::from_secs(5);
/// How long a stop waits for the writer to write what is left: an output
/// that takes nothing (standard output into a pipe nobody reads) must not
/// hold up the exit.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// What the writer has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records written to their outputs.
    pub written: AtomicU64,
    /// Records lost because their output could not be opened or written.
    pub failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    reopen: AtomicBool,
    stats: WriterStats,
}

/// The running writer.
#[derive(Debug)]
pub struct AccessWriter {
    shared: Arc<Shared>,
    /// Outputs the agent names, by number, in the order it names them
    /// (each is sent once; numbers are never reused).
    outputs: Sender<(u32, LogOutput)>,
    /// The numbers sent so far.
    named: std::cell::RefCell<std::collections::HashSet<u32>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected (or sent on) when the writer thread ends: what
    /// [`AccessWriter::stop`] waits on, with its bound.
    finished: Receiver<()>,
}

impl AccessWriter {
    /// Starts the writer on the rings of `readers` (pinned to `core`,
    /// the control core, when given), with the outputs of `table`.
    pub fn spawn(
        readers: Vec<AccessReader>,
        core: Option<usize>,
        table: &Table,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let (outputs, named) = mpsc::channel();
        let (ended, finished) = mpsc::channel();
        let mut writer = Self {
            shared: Arc::clone(&shared),
            outputs,
            named: Default::default(),
            thread: None,
            finished,
        };
        writer.learn(table);
        writer.thread = Some(
            thread::Builder::new()
                .name("ringway-access-log".into())
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    Pass::new(readers, named).run(&shared);
                    let _ = ended.send(());
                })?,
        );
        Ok(writer)
    }

    /// Learns the outputs `table` names, before the workers get it.
    pub fn learn(&self, table: &Table) {
        let mut named = self.named.borrow_mut();
        for l in &table.listeners {
            if let Service::Http(http) = &l.service {
                if let Some(log) = &http.access_log {
                    if named.insert(log.id) {
                        let _ = self.outputs.send((log.id, log.output.clone()));
                    }
                }
            }
        }
    }

    /// Closes and reopens every file (after logrotate moved them).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
    }

    /// What it has done.
    pub fn stats(&self) -> (u64, u64) {
        let s = &self.shared.stats;
        (
            s.written.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
        )
    }

    /// Drains what the workers left, writes everything and ends the
    /// thread. Call once the workers have stopped.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let Some(t) = self.thread.take() else {
            return;
        };
        // Sent when the thread ends; disconnected if it died instead.
        if self.finished.recv_timeout(STOP_WAIT) != Err(RecvTimeoutError::Timeout) {
            let _ = t.join();
        } else {
            // Left behind, blocked on an output: the process exits anyway.
            eprintln!(
                "ringway: the access log writer did not finish within {STOP_WAIT:?} (an output takes nothing); what it holds is lost"
            );
        }
    }
}

impl Drop for AccessWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One output as the writer holds it.
struct Output {
    spec: LogOutput,
    /// `None` for standard output, or while the file could not be opened.
    file: Option<File>,
    /// When an open failed last.
    failed_at: Option<Instant>,
    buf: Vec<u8>,
    /// Records in `buf`.
    records: u64,
    /// When `buf` got its oldest line.
    since: Option<Instant>,
}

impl Output {
    fn new(spec: LogOutput) -> Self {
        let mut out = Self {
            spec,
            file: None,
            failed_at: None,
            buf: Vec::with_capacity(FLUSH_BYTES * 2),
            records: 0,
            since: None,
        };
        out.open();
        out
    }

    fn open(&mut self) {
        if self.spec.is_stdout() {
            return;
        }
        // Non-blocking: a FIFO nobody reads fails to open, and one that
        // stops reading fails a write, rather than stall every output.
        match OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&*self.spec.path)
        {
            Ok(f) => {
                self.file = Some(f);
                self.failed_at = None;
            }
            Err(e) => {
                if self.failed_at.is_none() {
                    eprintln!(
                        "ringway: access log {}: cannot open: {e}; its records are dropped until it can be",
                        self.spec.path
                    );
                }
                self.file = None;
                self.failed_at = Some(Instant::now());
            }
        }
    }

    fn push(&mut self, record: &dataplane::access::record::Record<'_>) {
        match self.spec.format {
            LogFormat::Json => format::json(&mut self.buf, record),
            LogFormat::Text => format::text(&mut self.buf, record),
        }
        self.records += 1;
        self.since.get_or_insert_with(Instant::now);
    }

    /// Writes the buffer if it is due (or `force`).
    fn flush(&mut self, now: Instant, force: bool, stats: &WriterStats) {
        if self.buf.is_empty() {
            return;
        }
        let due = self.buf.len() >= FLUSH_BYTES
            || self
                .since
                .is_some_and(|s| now.duration_since(s) >= FLUSH_EVERY);
        if !due && !force {
            return;
        }
        if !self.spec.is_stdout()
            && self.file.is_none()
            && self
                .failed_at
                .is_none_or(|at| now.duration_since(at) >= RETRY_OPEN)
        {
            self.open();
        }
        let result = if self.spec.is_stdout() {
            io::stdout().lock().write_all(&self.buf)
        } else if let Some(f) = &mut self.file {
            f.write_all(&self.buf)
        } else {
            Err(io::Error::other("not open"))
        };
        let counter = match result {
            Ok(()) => &stats.written,
            Err(e) => {
                if self.file.is_some() {
                    eprintln!("ringway: access log {}: write failed: {e}", self.spec.path);
                    self.file = None;
                    self.failed_at = Some(now);
                }
                &stats.failed
            }
        };
        counter.fetch_add(self.records, Ordering::Relaxed);
        self.buf.clear();
        self.records = 0;
        self.since = None;
    }
}

/// The writer thread's state.
struct Pass {
    readers: Vec<AccessReader>,
    named: Receiver<(u32, LogOutput)>,
    outputs: HashMap<u32, Output>,
}

impl Pass {
    fn new(readers: Vec<AccessReader>, named: Receiver<(u32, LogOutput)>) -> Self {
        Self {
            readers,
            named,
            outputs: HashMap::new(),
        }
    }

    fn run(mut self, shared: &Shared) {
        loop {
            let stopping = shared.stop.load(Ordering::Acquire);
            self.learn();
            if shared.reopen.swap(false, Ordering::AcqRel) {
                let now = Instant::now();
                for out in self.outputs.values_mut() {
                    out.flush(now, true, &shared.stats);
                    out.file = None;
                    out.failed_at = None;
                    out.open();
                }
            }
            let taken = self.drain(&shared.stats);
            let now = Instant::now();
            for out in self.outputs.values_mut() {
                out.flush(now, stopping, &shared.stats);
            }
            if stopping {
                // The workers are gone: what they left was taken above.
                return;
            }
            if taken == 0 {
                thread::sleep(IDLE);
            }
        }
    }

    /// Opens the outputs the agent named since the last pass.
    fn learn(&mut self) {
        while let Ok((id, spec)) = self.named.try_recv() {
            self.outputs.entry(id).or_insert_with(|| Output::new(spec));
        }
    }

    /// Takes every record the workers committed; returns how many.
    fn drain(&mut self, stats: &WriterStats) -> usize {
        let mut taken = 0;
        let outputs = &mut self.outputs;
        for reader in &mut self.readers {
            let (n, _) = reader.drain(|record| match outputs.get_mut(&record.output) {
                Some(out) => out.push(record),
                // Cannot happen: the agent names an output before any
                // table that uses it reaches a worker.
                None => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            });
            taken += n;
        }
        taken
    }
}
