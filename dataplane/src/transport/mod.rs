//! What carries a connection's bytes: plain TCP or TLS.
//!
//! Sessions read and write through a [`Transport`] and never touch the
//! socket's kind. It comes in two halves, so that one task can receive on
//! one side while it sends on the same connection (a request body flowing
//! up while the response flows down):
//!
//! - [`Receiver`]: the received bytes, one buffer at a time;
//! - [`Sender`]: sends (a head written fresh followed by part of a received
//!   buffer, or part of a received buffer alone), the closing moves, and
//!   what the transport says about the connection ([`Sender::scheme`]).
//!
//! **Plain** keeps the zero-copy path: a multishot receive into the
//! worker's provided buffer ring for its [`Group`], and sends straight from
//! those buffers. **TLS** is one more variant of each half, sharing one
//! rustls connection between them (a server's on listeners, a client's to
//! clusters): its receiver has rustls open records where they arrived
//! and hands the plaintext on in blocks of the worker's own (a
//! [`BufHandle`] need not hold a ring buffer), and its sender seals what
//! it is given into buffers from the worker's free list. Enums rather than trait objects: a match on one
//! variant compiles to nothing, where a `dyn` call per buffer would not.

use std::io;
use std::ops::Range;
use std::task::{Context, Poll};
use std::time::Duration;

pub mod tls;

use std::rc::Rc;
use std::sync::Arc;

use crate::buf::{BufHandle, Group};
use crate::rt::net::{Heard, Outgoing, RecvStream, TcpStream};
use tls::{TlsReceiver, TlsShared};

/// The scheme a connection's requests arrived with: what `x-forwarded-proto`
/// says upstream, and what a redirect keeps when its route names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The scheme as written in URLs and `x-forwarded-proto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A connection, as its two halves.
#[derive(Debug)]
pub struct Transport {
    /// What it receives.
    pub rx: Receiver,
    /// Where it sends, and how it closes.
    pub tx: Sender,
}

impl Transport {
    /// A plain TCP connection whose received bytes go into the buffer ring
    /// of `group`, at most about `high_water` buffers held unread (see
    /// [`TcpStream::recv_stream`]).
    pub fn plain(stream: TcpStream, group: Group, high_water: usize) -> Self {
        Self {
            rx: Receiver::Plain(stream.recv_stream(group, high_water)),
            tx: Sender::Plain(stream),
        }
    }

    /// A TLS server connection on `stream` with `config`; its ciphertext
    /// goes into the buffer ring of `group` as a plain connection's bytes
    /// would. The handshake runs as the first plaintext is asked for.
    pub fn tls_server(
        stream: TcpStream,
        config: &Arc<rustls::ServerConfig>,
        group: Group,
        high_water: usize,
    ) -> io::Result<Self> {
        let recv = stream.recv_stream(group, high_water);
        let shared = TlsShared::server(stream, config)?;
        Ok(Self {
            rx: Receiver::Tls(Box::new(TlsReceiver::new(Rc::clone(&shared), recv))),
            tx: Sender::Tls(shared),
        })
    }

    /// A TLS client connection on `stream` (an upstream connection) with
    /// `config`, naming `name` to the server; the handshake runs when
    /// [`Receiver::handshake`] is awaited.
    pub fn tls_client(
        stream: TcpStream,
        config: &Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        recv: RecvStream,
    ) -> io::Result<Self> {
        let shared = TlsShared::client(stream, config, name)?;
        Ok(Self {
            rx: Receiver::Tls(Box::new(TlsReceiver::new(Rc::clone(&shared), recv))),
            tx: Sender::Tls(shared),
        })
    }

    /// A plain connection from a stream and its armed receive.
    pub fn from_plain(stream: TcpStream, recv: RecvStream) -> Self {
        Self {
            rx: Receiver::Plain(recv),
            tx: Sender::Plain(stream),
        }
    }
}

/// The receiving half of a [`Transport`].
#[derive(Debug)]
pub enum Receiver {
    /// Plain TCP: buffers as the kernel filled them.
    Plain(RecvStream),
    /// TLS: plaintext rustls decrypted. Boxed, so that a plain
    /// connection's receiver stays the size it was.
    Tls(Box<TlsReceiver>),
}

impl Receiver {
    /// The next buffer of received bytes; `Ok(None)` at the end of the
    /// stream.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<BufHandle>>> {
        match self {
            Receiver::Plain(recv) => recv.poll_next(cx),
            Receiver::Tls(recv) => recv.poll_next(cx),
        }
    }

    /// Completes the TLS handshake (at once for a plain connection, or one
    /// whose handshake is over).
    pub async fn handshake(&mut self) -> io::Result<()> {
        match self {
            Receiver::Plain(_) => Ok(()),
            Receiver::Tls(recv) => std::future::poll_fn(|cx| recv.poll_handshake(cx)).await,
        }
    }

    /// What an idle connection heard since its last receive (see
    /// [`RecvStream::heard`]); for TLS, ciphertext or plaintext left over
    /// counts as bytes.
    pub fn heard(&mut self) -> Heard {
        match self {
            Receiver::Plain(recv) => recv.heard(),
            Receiver::Tls(recv) => recv.heard(),
        }
    }

    /// Sets how many received buffers may wait unread before receiving
    /// pauses (see [`RecvStream::set_high_water`]).
    pub fn set_high_water(&mut self, high_water: usize) {
        match self {
            Receiver::Plain(recv) => recv.set_high_water(high_water),
            Receiver::Tls(recv) => recv.set_high_water(high_water),
        }
    }
}

/// The sending half of a [`Transport`]; clones send on the same connection.
#[derive(Debug, Clone)]
pub enum Sender {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, sharing its connection with the receiver.
    Tls(Rc<TlsShared>),
}

impl Sender {
    /// The scheme of requests that arrive on this connection.
    pub fn scheme(&self) -> Scheme {
        match self {
            Sender::Plain(_) => Scheme::Http,
            Sender::Tls(_) => Scheme::Https,
        }
    }

    /// The peer's verified SPIFFE ID: a TLS peer whose certificate was
    /// verified as an X509-SVID (see [`crate::identity`]).
    pub fn peer_identity(&self) -> Option<&str> {
        match self {
            Sender::Plain(_) => None,
            Sender::Tls(t) => t.peer_identity(),
        }
    }

    /// Sends `out`'s bytes from `from`, then `body`'s range of a received
    /// buffer, as one send where the transport can; returns how many bytes
    /// went (possibly fewer than offered) and both buffers back (see
    /// [`TcpStream::send_outgoing`]).
    pub async fn send_outgoing(
        &self,
        out: Outgoing,
        from: usize,
        body: Option<(BufHandle, Range<usize>)>,
        timeout: Option<Duration>,
    ) -> io::Result<(usize, Outgoing, Option<BufHandle>)> {
        match self {
            Sender::Plain(s) => s.send_outgoing(out, from, body, timeout).await,
            // Boxed: the plain arm's future stays the size it was, so a
            // plain send pays nothing for TLS being possible.
            Sender::Tls(t) => Box::pin(tls::send_outgoing(t, out, from, body, timeout)).await,
        }
    }

    /// Sends `buf[range]`; returns how many bytes went, and the buffer (see
    /// [`TcpStream::send_range`]).
    pub async fn send_range(
        &self,
        buf: BufHandle,
        range: Range<usize>,
        timeout: Option<Duration>,
    ) -> io::Result<(usize, BufHandle)> {
        match self {
            Sender::Plain(s) => s.send_range(buf, range, timeout).await,
            Sender::Tls(t) => Box::pin(tls::send_range(t, buf, range, timeout)).await,
        }
    }

    /// Ends our sending direction (a FIN; TLS will send its close_notify
    /// first); the other direction stays open.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Sender::Plain(s) => s.shutdown_write(),
            Sender::Tls(t) => tls::shutdown_write(t),
        }
    }

    /// Makes the close of the connection a reset instead of an orderly end.
    pub fn reset_on_close(&self) -> io::Result<()> {
        match self {
            Sender::Plain(s) => s.reset_on_close(),
            Sender::Tls(t) => t.stream().reset_on_close(),
        }
    }

    /// Whether the peer sent bytes that no receive has taken yet (a
    /// non-blocking peek, one syscall).
    pub fn bytes_waiting(&self) -> bool {
        match self {
            Sender::Plain(s) => {
                let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
                matches!(
                    s.socket()
                        .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT),
                    Ok(n) if n > 0
                )
            }
            Sender::Tls(t) => tls::bytes_waiting(t),
        }
    }

    /// The plain TCP stream underneath, for what only a socket can do.
    pub fn stream(&self) -> &TcpStream {
        match self {
            Sender::Plain(s) => s,
            Sender::Tls(t) => t.stream(),
        }
    }
}
