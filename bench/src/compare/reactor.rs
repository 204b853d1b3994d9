//! Which reactor a ringway runs on (io_uring or epoll), as it says at
//! start-up: one log line that ends `running on io_uring` or `running on
//! epoll`, with why (`io_uring refused by seccomp (EPERM); running on
//! epoll`). A ringway started with `auto` on a machine that refuses
//! io_uring runs on epoll, and a comparison of the two reactors must say so.

use std::path::Path;

use super::scenario::IoBackend;

/// The reactor the log at `log` says ringway runs on (`io_uring` or
/// `epoll`), from its last such line; `None` if it says neither.
pub fn said(log: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(log).ok()?;
    said_in(&text)
}

/// As [`said`], in the text of a log.
pub fn said_in(text: &str) -> Option<&'static str> {
    text.lines().rev().find_map(|line| {
        ["io_uring", "epoll"]
            .into_iter()
            .find(|b| line.contains(&format!("running on {b}")))
    })
}

/// The reactor `asked` forces, if it forces one (`auto` does not).
pub fn forced(asked: IoBackend) -> Option<&'static str> {
    match asked {
        IoBackend::Auto => None,
        IoBackend::IoUring => Some("io_uring"),
        IoBackend::Epoll => Some("epoll"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reactor_from_the_start_up_line() {
        let log = "ringway: config ok\n\
                   ringway: io_uring refused by seccomp (EPERM); running on epoll\n\
                   ringway: listening on 127.0.0.1:8080\n";
        assert_eq!(said_in(log), Some("epoll"));
        assert_eq!(
            said_in("running on io_uring (runtime.io_backend = \"io_uring\")\n"),
            Some("io_uring")
        );
        // The last line that says it counts.
        assert_eq!(
            said_in("running on epoll\nrunning on io_uring\n"),
            Some("io_uring")
        );
        assert_eq!(said_in("ringway: listening\n"), None);
        assert_eq!(said(Path::new("/nonexistent/ringway.log")), None);
    }

    #[test]
    fn auto_forces_nothing() {
        assert_eq!(forced(IoBackend::Auto), None);
        assert_eq!(forced(IoBackend::Epoll), Some("epoll"));
        assert_eq!(forced(IoBackend::IoUring), Some("io_uring"));
    }
}
