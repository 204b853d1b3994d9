//! Per-connection flows.

pub mod http;
pub mod relay;
pub mod tcp;
pub mod tls_relay;

use crate::rt::net::TcpStream;

/// Makes a socket close with a reset if the session holding it is dropped
/// before it ended by itself: a task aborted at the drain deadline (or when
/// a removed listener's connections are cut) must not close its sockets
/// with a FIN, which would pass a cut stream or a close-delimited body off
/// as complete. A session that ends on its own disarms it; the guard costs
/// nothing until it fires.
#[derive(Debug)]
pub(crate) struct ResetIfCut<'a> {
    socket: Option<&'a TcpStream>,
}

impl<'a> ResetIfCut<'a> {
    /// Guards `socket`.
    pub(crate) fn new(socket: &'a TcpStream) -> Self {
        Self {
            socket: Some(socket),
        }
    }

    /// The session ended by itself: its closes are its own business.
    pub(crate) fn disarm(mut self) {
        self.socket = None;
    }
}

impl Drop for ResetIfCut<'_> {
    fn drop(&mut self) {
        if let Some(socket) = self.socket {
            let _ = socket.reset_on_close();
        }
    }
}
