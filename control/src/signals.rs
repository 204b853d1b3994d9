//! The signals `ringway run` answers (docs/admin.md, "Signals"): SIGTERM and
//! SIGINT drain and stop, SIGHUP reloads the file, SIGUSR1 reopens the
//! access log files, and SIGUSR2, which would otherwise end the process on
//! the spot, is logged and ignored.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a received signal asks of `ringway run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Drain and exit; the signal's name.
    Stop(&'static str),
    /// Re-read the config file.
    Reload,
    /// Reopen the access log files (after logrotate moved them).
    Reopen,
    /// Nothing: the signal has no meaning to ringway; its name.
    Ignore(&'static str),
}

/// The handlers of every signal ringway takes over, registered together.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    /// Takes over the signals. Until this runs, each still has its default
    /// action (for SIGUSR1, ending the process), so it runs first thing.
    pub fn register() -> io::Result<Self> {
        let take = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| io::Error::new(e.kind(), format!("cannot handle {name}: {e}")))
        };
        Ok(Self {
            term: take(SignalKind::terminate(), "SIGTERM")?,
            int: take(SignalKind::interrupt(), "SIGINT")?,
            hup: take(SignalKind::hangup(), "SIGHUP")?,
            usr1: take(SignalKind::user_defined1(), "SIGUSR1")?,
            usr2: take(SignalKind::user_defined2(), "SIGUSR2")?,
        })
    }

    /// Waits for the next signal and says what it asks for.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop("SIGTERM"),
            _ = self.int.recv() => Request::Stop("SIGINT"),
            _ = self.hup.recv() => Request::Reload,
            _ = self.usr1.recv() => Request::Reopen,
            _ = self.usr2.recv() => Request::Ignore("SIGUSR2"),
        }
    }
}
