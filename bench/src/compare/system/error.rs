//! Why a system could not be started, measured or stopped.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use ringway_kit::launcher::StopError;

use super::Kind;

/// Why a system could not be started, measured or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// [`missing`](super::missing) gives a reason.
    #[error("{kind} cannot run: {reason}")]
    Unavailable {
        /// The system.
        kind: Kind,
        /// Why, and what to do.
        reason: String,
    },
    /// The run directory's path is not UTF-8; the generated configs could
    /// not name files in it.
    #[error("run directory {0} is not valid UTF-8: pick a directory with a UTF-8 path")]
    DirNotUtf8(PathBuf),
    /// A file of the run directory could not be written.
    #[error("{kind}: cannot write {path}: {source}")]
    Write {
        /// The system.
        kind: Kind,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Something already accepts connections where the system must listen.
    #[error(
        "{kind}: {addr} already accepts connections: another process listens there \
         (a proxy left over from an earlier run?); stop it or pick other ports"
    )]
    AddressInUse {
        /// The system.
        kind: Kind,
        /// The address.
        addr: SocketAddr,
    },
    /// The open-file limit is too low for the connections asked for, and
    /// could not be raised.
    #[error(
        "{kind} needs {needed} open files for {connections} connections, but the limit is \
         {soft} (hard limit {hard}) and raising it failed ({source}): raise it before the \
         run (`ulimit -n {needed}`; above the hard limit only root can) or ask for fewer \
         connections"
    )]
    OpenFiles {
        /// The system.
        kind: Kind,
        /// Open files needed.
        needed: u64,
        /// Client connections asked for.
        connections: usize,
        /// The current soft limit.
        soft: u64,
        /// The current hard limit.
        hard: u64,
        /// Why raising failed.
        source: nix::Error,
    },
    /// The config checker could not be run.
    #[error("{kind}: cannot run `{command}`: {source}")]
    CheckRun {
        /// The system.
        kind: Kind,
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// The system's own checker rejects the generated configuration.
    #[error("{kind} rejects the generated config {config} (`{command}`):\n{output}")]
    Rejected {
        /// The system.
        kind: Kind,
        /// The config file.
        config: PathBuf,
        /// The check's command line.
        command: String,
        /// What the check printed.
        output: String,
    },
    /// The process could not be started.
    #[error("{kind}: cannot start `taskset -c {cores} {program}`: {source} (taskset comes with util-linux)")]
    Spawn {
        /// The system.
        kind: Kind,
        /// The cores, as taskset takes them.
        cores: String,
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process exited while starting.
    #[error("{kind} exited at start ({status}); its log {log} ends with:\n{tail}")]
    Exited {
        /// The system.
        kind: Kind,
        /// Its exit status.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// It did not become ready in time.
    #[error(
        "{kind} not ready after {waited:?} (last probe: {last}); its log {log} ends with:\n{tail}"
    )]
    NotReady {
        /// The system.
        kind: Kind,
        /// How long the runner waited.
        waited: Duration,
        /// What the last readiness probe saw.
        last: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// It could not be stopped cleanly (the signal could not be sent, or
    /// it did not exit in time): its process group was killed.
    #[error("{kind}: {source}")]
    Stop {
        /// The system.
        kind: Kind,
        /// What went wrong.
        source: StopError,
    },
    /// It exited with a failure when asked to stop.
    #[error("{kind} exited with {status} when stopped; its log {log} ends with:\n{tail}")]
    BadExit {
        /// The system.
        kind: Kind,
        /// Its exit status.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// One half of a sidecar pair failed; the other was stopped.
    #[error("the {half} half of the pair: {source}")]
    Half {
        /// `outbound` or `inbound`.
        half: &'static str,
        /// What went wrong with it.
        source: Box<SystemError>,
    },
}
