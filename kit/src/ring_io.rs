//! Reads on tokio-uring sockets that keep what a buffer already holds.

use std::io;

use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

/// Reads into the free capacity of `buf`, after the bytes it holds, and
/// gives it back longer by what arrived. A plain `read` lends the ring the
/// whole buffer and the kernel writes at its start, over what an earlier
/// read brought (an answer or a request head that came in pieces).
pub async fn read_more(stream: &TcpStream, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    let from = buf.len();
    let (got, slice) = stream.read(buf.slice(from..)).await;
    (got, slice.into_inner())
}
