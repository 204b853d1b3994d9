//! The TLS variant of the transport: one rustls connection shared by the
//! two halves of a connection on its worker, driven sans-IO.
//!
//! Ciphertext arrives as the plain transport's does, in the worker's ring
//! buffers; each is given to rustls from its own slice and handed back as
//! soon as rustls has taken its bytes, so a TLS connection holds at most
//! one ring buffer, as a plain one may. Plaintext comes out of rustls into
//! a buffer the handle owns. Application data is sealed into an
//! `Outgoing` and sent by the ring like any send; what rustls writes on
//! its own (the handshake's flights, alerts, session tickets) is written
//! at once with a non-blocking send when no application send is under
//! way, and otherwise goes out in front of the next one, so records never
//! leave out of order.
//!
//! Both ends use it: a listener's connections are server connections, a
//! cluster's upstream connections with `tls` are client connections. The
//! handshake is driven on its own ([`TlsReceiver::poll_handshake`]) before
//! any byte of a request, under its own deadline, so a failed or slow one
//! is told apart and counted.

use std::cell::{Cell, OnceCell, RefCell};
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::buf::BufHandle;
use crate::rt::net::{Heard, Outgoing, RecvStream, TcpStream};

/// The rustls connection and the socket, shared by both halves.
#[derive(Debug)]
pub struct TlsShared {
    conn: RefCell<Connection>,
    stream: TcpStream,
    /// An application send is under way on the ring: what rustls writes
    /// meanwhile waits for the next send, to keep the records in order.
    sending: Cell<bool>,
    /// The peer's SPIFFE ID, read once from its verified certificate.
    identity: OnceCell<Option<Box<str>>>,
}

impl TlsShared {
    /// A server connection on `stream` with `config`.
    pub fn server(stream: TcpStream, config: &Arc<ServerConfig>) -> io::Result<Rc<Self>> {
        let conn = ServerConnection::new(Arc::clone(config))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::new(stream, conn.into()))
    }

    /// A client connection on `stream` with `config`, naming `name` to the
    /// server (and verifying it, unless `config` verifies otherwise).
    pub fn client(
        stream: TcpStream,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Rc<Self>> {
        let conn = ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::new(stream, conn.into()))
    }

    fn new(stream: TcpStream, mut conn: Connection) -> Rc<Self> {
        // Whatever the session hands a send is sealed at once: it bounds
        // what it hands over itself.
        conn.set_buffer_limit(None);
        Rc::new(Self {
            conn: RefCell::new(conn),
            stream,
            sending: Cell::new(false),
            identity: OnceCell::new(),
        })
    }

    /// The SPIFFE ID of the peer's certificate, once the handshake has
    /// verified it: `None` without a certificate (a client that sent none
    /// where none was required) or without a `spiffe://` URI in it. Read
    /// from the certificate once per connection.
    pub fn peer_identity(&self) -> Option<&str> {
        self.identity
            .get_or_init(|| {
                let conn = self.conn.borrow();
                if conn.is_handshaking() {
                    return None;
                }
                let leaf = conn.peer_certificates()?.first()?;
                crate::identity::spiffe_id_of(leaf).map(Into::into)
            })
            .as_deref()
    }

    /// The socket underneath.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes what rustls has to send, now, with non-blocking sends, unless
    /// an application send is under way. The handshake's flights are a few
    /// KiB against a send buffer of at least 16 KiB: a full send buffer
    /// here is a peer that does not read its handshake, and an error.
    fn flush_now(&self, conn: &mut Connection) -> io::Result<()> {
        if self.sending.get() {
            return Ok(());
        }
        while conn.wants_write() {
            let mut out = Vec::new();
            conn.write_tls(&mut out)?;
            let mut at = 0;
            while at < out.len() {
                let n = self
                    .stream
                    .socket()
                    .send_with_flags(&out[at..], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                at += n;
            }
        }
        Ok(())
    }
}

/// The receiving half: plaintext, one owned buffer at a time.
#[derive(Debug)]
pub struct TlsReceiver {
    shared: Rc<TlsShared>,
    recv: RecvStream,
    /// Ciphertext received and not yet taken by rustls, from this offset.
    pending: Option<(BufHandle, usize)>,
    /// The peer closed its sending direction.
    eof: bool,
}

impl TlsReceiver {
    /// The receiving half of `shared`, receiving through `recv`.
    pub fn new(shared: Rc<TlsShared>, recv: RecvStream) -> Self {
        Self {
            shared,
            recv,
            pending: None,
            eof: false,
        }
    }

    /// Drives the handshake to its end: `Ready(Ok)` once it is over (at
    /// once if it was), an error if it failed or the peer left first.
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut conn = self.shared.conn.borrow_mut();
                self.shared.flush_now(&mut conn)?;
                if !conn.is_handshaking() {
                    return Poll::Ready(Ok(()));
                }
            }
            match self.poll_ciphertext(cx) {
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    )))
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next buffer of plaintext; `Ok(None)` at the end (a close_notify,
    /// or the peer's close: HTTP's own framing tells a cut message).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<BufHandle>>> {
        loop {
            {
                let mut conn = self.shared.conn.borrow_mut();
                let mut reader = conn.reader();
                match reader.fill_buf() {
                    Ok([]) => return Poll::Ready(Ok(None)),
                    Ok(plain) => {
                        let bytes: Box<[u8]> = plain.into();
                        reader.consume(bytes.len());
                        return Poll::Ready(Ok(Some(BufHandle::owned(bytes))));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                if let Err(e) = self.shared.flush_now(&mut conn) {
                    return Poll::Ready(Err(e));
                }
            }
            match self.poll_ciphertext(cx) {
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Gives rustls the next ciphertext it can take (what is left of the
    /// buffer in hand, else the next one received) and processes it;
    /// `Ok(false)` when the peer closed and nothing is left.
    fn poll_ciphertext(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if let Some((buf, at)) = self.pending.take() {
                let mut conn = self.shared.conn.borrow_mut();
                let mut rest = &buf.as_slice()[at..];
                let taken = match conn.read_tls(&mut rest) {
                    Ok(0) => {
                        // rustls takes bytes or says why not; taking none
                        // of a non-empty slice would loop here for good.
                        return Poll::Ready(Err(io::ErrorKind::InvalidData.into()));
                    }
                    Ok(n) => n,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                if let Err(e) = conn.process_new_packets() {
                    // The alert rustls queued goes out before the close.
                    let _ = self.shared.flush_now(&mut conn);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
                if at + taken < buf.len() {
                    self.pending = Some((buf, at + taken));
                }
                return Poll::Ready(Ok(true));
            }
            if self.eof {
                return Poll::Ready(Ok(false));
            }
            match self.recv.poll_next(cx) {
                Poll::Ready(Ok(Some(buf))) => self.pending = Some((buf, 0)),
                Poll::Ready(Ok(None)) => self.eof = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// What the connection heard while idle: leftover ciphertext or
    /// plaintext are bytes no request asked for.
    pub fn heard(&mut self) -> Heard {
        if self.pending.is_some()
            || self
                .shared
                .conn
                .borrow_mut()
                .reader()
                .fill_buf()
                .is_ok_and(|b| !b.is_empty())
        {
            return Heard::Bytes;
        }
        if self.eof {
            return Heard::Closed;
        }
        self.recv.heard()
    }

    /// See [`RecvStream::set_high_water`].
    pub fn set_high_water(&mut self, high_water: usize) {
        self.recv.set_high_water(high_water);
    }
}

/// Seals `parts` and sends the records whole; returns how many plaintext
/// bytes that was (all of them).
async fn seal_and_send(
    shared: &TlsShared,
    parts: [&[u8]; 2],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let mut sealed = Outgoing::with_capacity(parts[0].len() + parts[1].len() + 64);
    let len = {
        let mut conn = shared.conn.borrow_mut();
        let mut len = 0;
        for part in parts {
            conn.writer().write_all(part)?;
            len += part.len();
        }
        while conn.wants_write() {
            conn.write_tls(sealed.bytes_mut())?;
        }
        len
    };
    shared.sending.set(true);
    let mut at = 0;
    let result = loop {
        if at == sealed.bytes().len() {
            break Ok(len);
        }
        match shared.stream.send_outgoing(sealed, at, None, timeout).await {
            Ok((0, _, _)) => break Err(io::ErrorKind::WriteZero.into()),
            Ok((n, back, _)) => {
                at += n;
                sealed = back;
            }
            Err(e) => break Err(e),
        }
    };
    shared.sending.set(false);
    // What rustls wrote of its own meanwhile goes now.
    if result.is_ok() {
        shared.flush_now(&mut shared.conn.borrow_mut())?;
    }
    result
}

/// Sends `out`'s bytes from `from` and then `body`'s range, sealed.
pub async fn send_outgoing(
    shared: &TlsShared,
    out: Outgoing,
    from: usize,
    body: Option<(BufHandle, Range<usize>)>,
    timeout: Option<Duration>,
) -> io::Result<(usize, Outgoing, Option<BufHandle>)> {
    let n = {
        let body_bytes = body
            .as_ref()
            .map_or(&[][..], |(b, r)| &b.as_slice()[r.clone()]);
        seal_and_send(shared, [&out.bytes()[from..], body_bytes], timeout).await?
    };
    Ok((n, out, body.map(|(b, _)| b)))
}

/// Sends `buf[range]`, sealed.
pub async fn send_range(
    shared: &TlsShared,
    buf: BufHandle,
    range: Range<usize>,
    timeout: Option<Duration>,
) -> io::Result<(usize, BufHandle)> {
    let n = seal_and_send(shared, [&buf.as_slice()[range], &[]], timeout).await?;
    Ok((n, buf))
}

/// Sends a close_notify, then ends the sending direction.
pub fn shutdown_write(shared: &TlsShared) -> io::Result<()> {
    {
        let mut conn = shared.conn.borrow_mut();
        conn.send_close_notify();
        shared.flush_now(&mut conn)?;
    }
    shared.stream.shutdown_write()
}

/// Whether plaintext or ciphertext is waiting.
pub fn bytes_waiting(shared: &TlsShared) -> bool {
    if shared
        .conn
        .borrow_mut()
        .reader()
        .fill_buf()
        .is_ok_and(|b| !b.is_empty())
    {
        return true;
    }
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    matches!(
        shared
            .stream
            .socket()
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT),
        Ok(n) if n > 0
    )
}
