//! TCP streaming: each connection writes `--chunk`-byte buffers back to back
//! for the whole run; the figure is bytes per second.
//!
//! Writes are never abandoned at the end of the window (only on Ctrl-C or
//! after `--timeout` without progress): every byte the generator counts was
//! accepted by the kernel, so the count (warm-up included) matches what the
//! far end reads. The throughput counts the writes that completed inside the
//! window. Over TLS each chunk is sealed and its records written whole;
//! the count is of plaintext bytes, as the far end reads them.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::Instant;

use super::ctx::Ctx;
use super::http::Conn;
use super::record::ErrorKind;

/// One streaming connection's loop, `stream` opened before the run began.
/// Returns when the window ends; the connection is shut down for writing
/// and closed, so the far end sees every byte then the end of the stream.
pub async fn stream(ctx: Rc<Ctx>, mut conn: Conn) {
    let mut chunk = vec![b'x'; ctx.plan.chunk];
    // Over TLS: plaintext the far end would send (a sink sends none).
    let mut unasked = Vec::new();
    let mut last = Instant::now();
    loop {
        let now = Instant::now();
        if now >= ctx.window.end || ctx.stopping() {
            break;
        }
        let write = async {
            match &mut conn {
                Conn::Plain(stream) => {
                    let (n, back) = stream.write(chunk).submit().await;
                    (n.map_err(|e| (ErrorKind::of_io(&e), e.to_string())), back)
                }
                Conn::Tls(tls) => {
                    let sent = tls.send(&chunk, &mut unasked).await;
                    let n = chunk.len();
                    (
                        sent.map(|()| n)
                            .map_err(|e| (ErrorKind::Reset, e.to_string())),
                        chunk,
                    )
                }
            }
        };
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
            Ok((Err((kind, detail)), _)) => {
                ctx.fail(now, kind, || detail);
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
    let stream = match &conn {
        Conn::Plain(stream) => stream,
        Conn::Tls(tls) => tls.stream(),
    };
    let _ = stream.shutdown(Shutdown::Write);
}
