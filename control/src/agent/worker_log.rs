//! Writing what the workers queued (see [`dataplane::link::log`]): each
//! line as `ringway: worker N: ...`, and one line for each worker whose
//! queue overflowed since the last time, with how many lines it lost.

use std::io::{self, Write};

use dataplane::link::log::WorkerLogs;

/// What the agent has said about the workers' dropped lines so far.
#[derive(Debug, Default)]
pub struct LogTail {
    /// Each worker's `log_dropped` at the last write.
    said_dropped: Vec<u64>,
}

impl LogTail {
    /// Writes every line queued in `logs` to `out`, then a line for each
    /// worker whose `log_dropped` (`dropped[index]`, the counters now) grew
    /// since the last call.
    pub fn write(
        &mut self,
        logs: &WorkerLogs,
        dropped: &[u64],
        out: &mut impl Write,
    ) -> io::Result<()> {
        let mut written = Ok(());
        logs.drain(|index, line| {
            if written.is_ok() {
                written = writeln!(out, "ringway: worker {index}: {line}");
            }
        });
        written?;
        if self.said_dropped.len() < dropped.len() {
            self.said_dropped.resize(dropped.len(), 0);
        }
        for (index, (&now, said)) in dropped.iter().zip(&mut self.said_dropped).enumerate() {
            let new = now.saturating_sub(*said);
            *said = now;
            if new > 0 {
                writeln!(
                    out,
                    "ringway: worker {index}: {new} log line(s) dropped, its log queue was full \
                     (log_dropped in /stats)"
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use dataplane::link::log::Line;

    use super::*;

    #[test]
    fn writes_what_the_workers_queued_then_what_they_dropped() {
        let mut logs = WorkerLogs::default();
        let first = logs.open();
        let second = logs.open();
        second
            .push(Line::BindFailed {
                listener: Arc::from("ingress"),
                address: SocketAddr::from(([127, 0, 0, 1], 8080)),
                error: io::Error::from_raw_os_error(nix::errno::Errno::EADDRINUSE as i32),
            })
            .expect("room in the queue");
        first
            .push(Line::WakeupFailed(io::Error::other("gone")))
            .expect("room in the queue");

        let mut tail = LogTail::default();
        let mut out = Vec::new();
        tail.write(&logs, &[0, 5], &mut out)
            .expect("writing to memory");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ringway: worker 0: control eventfd failed: gone\n\
             ringway: worker 1: listener `ingress`: cannot bind 127.0.0.1:8080: \
             the address is in use by another process\n\
             ringway: worker 1: 5 log line(s) dropped, its log queue was full (log_dropped in /stats)\n"
        );

        // Nothing new: nothing written. More dropped: only the new ones.
        out.clear();
        tail.write(&logs, &[0, 5], &mut out)
            .expect("writing to memory");
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        tail.write(&logs, &[2, 5], &mut out)
            .expect("writing to memory");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ringway: worker 0: 2 log line(s) dropped, its log queue was full (log_dropped in /stats)\n"
        );
    }
}
