//! Timers as ring ops.

use std::io;
use std::time::Duration;

use io_uring::{opcode, types};

use super::op::Op;

/// Completes after `duration`.
pub async fn sleep(duration: Duration) -> io::Result<()> {
    let ts = Box::new(
        types::Timespec::new()
            .sec(duration.as_secs())
            .nsec(duration.subsec_nanos()),
    );
    let entry = opcode::Timeout::new(&*ts).build();
    // SAFETY: the SQE points at the boxed timespec, owned by the op (a move
    // of the box does not move the timespec).
    let (completion, _ts) = unsafe { Op::submit(entry, ts)? }.await;
    match completion.result {
        r if r == -libc::ETIME => Ok(()),
        r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
        _ => Ok(()),
    }
}
