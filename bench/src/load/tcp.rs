//! TCP streaming: each connection writes `--chunk`-byte buffers back to back
//! for the whole run; the figure is bytes per second.
//!
//! Writes are never abandoned at the end of the window (only on Ctrl-C or
//! after `--timeout` without progress): every byte the generator counts was
//! accepted by the kernel, so the count (warm-up included) matches what the
//! far end reads. The throughput counts the writes that completed inside the
//! window.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::Instant;

use tokio_uring::net::TcpStream;

use super::ctx::Ctx;
use super::record::ErrorKind;

/// One streaming connection's loop, `stream` opened before the run began.
/// Returns when the window ends; the connection is shut down for writing
/// and closed, so the far end sees every byte then the end of the stream.
pub async fn stream(ctx: Rc<Ctx>, stream: TcpStream) {
    let mut chunk = vec![b'x'; ctx.plan.chunk];
    let mut last = Instant::now();
    loop {
        let now = Instant::now();
        if now >= ctx.window.end || ctx.stopping() {
            break;
        }
        let write = stream.write(chunk).submit();
        let outcome = tokio::select! {
            r = tokio::time::timeout(ctx.plan.timeout, write) => r,
            () = ctx.until_stopped() => return,
        };
        let done = Instant::now();
        match outcome {
            Ok((Ok(n), back)) => {
                chunk = back;
                ctx.wrote(n, done);
                last = done;
            }
            Ok((Err(e), _)) => {
                ctx.fail(now, ErrorKind::of_io(&e), || e.to_string());
                return;
            }
            Err(_) => {
                ctx.fail(now, ErrorKind::Timeout, || {
                    format!(
                        "a {}-byte write made no progress in {:?} (last at {:?} into the run)",
                        ctx.plan.chunk,
                        ctx.plan.timeout,
                        last.saturating_duration_since(ctx.window.start)
                    )
                });
                return;
            }
        }
    }
    // The far end reads to the end of the stream; a shutdown that fails
    // means the connection is already gone, which the next close reports
    // to nobody: there is nothing left to count. Dropping closes it.
    let _ = stream.shutdown(Shutdown::Write);
}
