//! The TLS variant of the transport: one TLS session shared by the two
//! halves of a connection on its worker. rustls runs the handshake through
//! its unbuffered API ([`session`]); once a TLS 1.3 handshake is over, the
//! records are ringway's own to protect ([`records13`]), and TLS 1.2
//! sessions stay with rustls throughout.
//!
//! **Receiving** ([`TlsReceiver`]). Ciphertext arrives as the plain
//! transport's bytes do, in the worker's ring buffers, and each record is
//! framed and opened where it lies: a record wholly inside one ring buffer
//! is never copied before it is decrypted. A record split between two
//! ring buffers (bulk streams split most records somewhere) is gathered
//! into the connection's stage first, the one copy ciphertext may take;
//! the stage holds at most one record once the handshake is over, and
//! goes back to the worker's free list when empty. Plaintext goes into
//! blocks of the worker's own free list ([`crate::buf::spare`]), several
//! small records into one block, and on as [`BufHandle`]s: no allocation
//! per record of ours.
//!
//! **Sending.** Application data is sealed into an `Outgoing` from the
//! worker's free list of sealing buffers and sent by the ring like any
//! send. What rustls writes of its own (the handshake's flights, alerts,
//! session tickets) is written at once with a non-blocking send when no
//! application send is under way, and otherwise goes out in front of the
//! next one, so records never leave out of order.
//!
//! Both ends use it: a listener's connections are server sessions, a
//! cluster's upstream connections with `tls` are client sessions. The
//! handshake is driven on its own ([`TlsReceiver::poll_handshake`]) before
//! any byte of a request, under its own deadline, so a failed or slow one
//! is told apart and counted.

use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ServerConfig};

use crate::buf::BufHandle;
use crate::rt::net::{Outgoing, TcpStream};

mod receiver;
mod records;
mod records13;
mod session;
mod spare;

use crate::buf::Tail;
pub use receiver::TlsReceiver;
use records13::Records13;
use session::{Ask, Reached, Session};

/// The rustls session and the socket, shared by both halves.
#[derive(Debug)]
pub struct TlsShared {
    state: RefCell<State>,
    stream: TcpStream,
    /// An application send is under way on the ring: what rustls writes
    /// meanwhile waits for the next send, to keep the records in order.
    sending: Cell<bool>,
    /// The receiver holds bytes it has not handed out yet (ciphertext in
    /// hand, or plaintext opened).
    unread: Cell<bool>,
    /// A TLS 1.3 session goes over to ringway's own record layer once its
    /// handshake is over (its config lets rustls hand the secrets over).
    own: bool,
    /// The peer's SPIFFE ID, read once from its verified certificate.
    identity: OnceCell<Option<Box<str>>>,
}

/// Who protects the records.
#[derive(Debug)]
enum Engine {
    /// rustls: the handshake, and TLS 1.2 sessions throughout. Boxed: it
    /// is freed at the hand-over, so an established TLS 1.3 connection
    /// keeps only the record layer.
    Rustls(Box<Session>),
    /// ringway's own record layer, once a TLS 1.3 handshake is over (see
    /// [`records13`]).
    Own(Box<Records13>),
    /// Between the two, or after a failed hand-over: nothing more passes.
    Spent,
}

/// What both halves change.
#[derive(Debug)]
struct State {
    engine: Engine,
    /// Records rustls wrote of its own that have not gone yet.
    control: Vec<u8>,
    /// Ciphertext the receiver carries from one ring buffer to the next
    /// (see [`TlsReceiver`]). Shared because every call into rustls must
    /// see it: a handshake message joined across records lives there, and
    /// rustls keeps offsets into it between calls.
    stage: Vec<u8>,
    /// The peer's close_notify arrived (rustls reports it once, to
    /// whichever half asks first).
    peer_closed: bool,
}

impl TlsShared {
    /// A server session on `stream` with `config`.
    pub fn server(stream: TcpStream, config: &Arc<ServerConfig>) -> io::Result<Rc<Self>> {
        let own = config.enable_secret_extraction;
        let session = UnbufferedServerConnection::new(Arc::clone(config))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::new(stream, Session::Server(session), own))
    }

    /// A client session on `stream` with `config`, naming `name` to the
    /// server (and verifying it, unless `config` verifies otherwise).
    pub fn client(
        stream: TcpStream,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Rc<Self>> {
        let own = config.enable_secret_extraction;
        let session = UnbufferedClientConnection::new(Arc::clone(config), name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::new(stream, Session::Client(session), own))
    }

    fn new(stream: TcpStream, session: Session, own: bool) -> Rc<Self> {
        Rc::new(Self {
            state: RefCell::new(State {
                engine: Engine::Rustls(Box::new(session)),
                control: Vec::new(),
                stage: Vec::new(),
                peer_closed: false,
            }),
            stream,
            sending: Cell::new(false),
            unread: Cell::new(false),
            own,
            identity: OnceCell::new(),
        })
    }

    /// The SPIFFE ID of the peer's certificate, once the handshake has
    /// verified it: `None` without a certificate (a client that sent none
    /// where none was required) or without a `spiffe://` URI in it. Read
    /// from the certificate once per connection.
    pub fn peer_identity(&self) -> Option<&str> {
        if let Some(known) = self.identity.get() {
            return known.as_deref();
        }
        let state = self.state.borrow();
        let Engine::Rustls(session) = &state.engine else {
            // Read when the session was handed over, if it was.
            return None;
        };
        if session.common().is_handshaking() {
            return None;
        }
        let found = identity_of(session);
        drop(state);
        self.identity.get_or_init(|| found).as_deref()
    }

    /// Hands a finished TLS 1.3 session over to ringway's own record layer
    /// (when the config allows it), having read what is needed of it
    /// first. The caller has driven rustls to where it holds nothing to
    /// send or to read.
    fn hand_over(&self, state: &mut State) -> io::Result<()> {
        let Engine::Rustls(session) = &state.engine else {
            return Ok(());
        };
        let common = session.common();
        if !self.own
            || common.is_handshaking()
            || common.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
        {
            return Ok(());
        }
        let found = identity_of(session);
        let _ = self.identity.set(found);
        let Engine::Rustls(session) = std::mem::replace(&mut state.engine, Engine::Spent) else {
            return Ok(());
        };
        state.engine = Engine::Own(Box::new(session.into_records()?));
        Ok(())
    }

    /// The socket underneath.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes what rustls has to send, now, with non-blocking sends, unless
    /// an application send is under way. The handshake's flights are a few
    /// KiB against a send buffer of at least 16 KiB: a full send buffer
    /// here is a peer that does not read its handshake, and an error.
    fn flush_now(&self, state: &mut State) -> io::Result<()> {
        if self.sending.get() {
            return Ok(());
        }
        let control = &mut state.control;
        let mut at = 0;
        let sent = loop {
            if at == control.len() {
                break Ok(());
            }
            match self
                .stream
                .socket()
                .send_with_flags(&control[at..], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => at += n,
                Err(e) => break Err(e),
            }
        };
        control.drain(..at);
        if control.is_empty() && control.capacity() > 16 * 1024 {
            // A certificate chain's flight was large; an idle connection
            // keeps none of it.
            *control = Vec::new();
        }
        sent
    }
}

/// The SPIFFE ID in the verified certificate of `session`'s peer.
fn identity_of(session: &Session) -> Option<Box<str>> {
    let leaf = session.common().peer_certificates()?.first()?;
    crate::identity::spiffe_id_of(leaf).map(Into::into)
}

/// Seals `parts` and sends the records whole; returns how many plaintext
/// bytes that was (all of them).
async fn seal_and_send(
    shared: &TlsShared,
    parts: [&[u8]; 2],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let (mut sealed, mut inited) = spare::take();
    {
        let mut state = shared.state.borrow_mut();
        let State {
            engine,
            control,
            stage,
            peer_closed,
        } = &mut *state;
        let out = sealed.bytes_mut();
        out.clear();
        let mut out = Tail::new(out, &mut inited);
        // What rustls wrote of its own and has not gone yet goes first.
        out.extend(control);
        control.clear();
        let failed = match engine {
            Engine::Own(records) => records.seal(parts, &mut out).err(),
            Engine::Rustls(session) => {
                let failed = seal_with_rustls(session, control, stage, peer_closed, parts, out);
                if failed.is_some() {
                    // A failed session is never called again.
                    *engine = Engine::Spent;
                }
                failed
            }
            Engine::Spent => Some(io::Error::other("the TLS session failed")),
        };
        if let Some(e) = failed {
            spare::give_back(sealed, inited);
            return Err(e);
        }
    }
    let len = parts[0].len() + parts[1].len();
    shared.sending.set(true);
    let mut at = 0;
    let result = loop {
        if at == sealed.bytes().len() {
            break Ok(len);
        }
        match shared.stream.send_outgoing(sealed, at, None, timeout).await {
            Ok((0, back, _)) => {
                sealed = back;
                break Err(io::ErrorKind::WriteZero.into());
            }
            Ok((n, back, _)) => {
                at += n;
                sealed = back;
            }
            Err(e) => return finish_send(shared, Err(e)),
        }
    };
    spare::give_back(sealed, inited);
    finish_send(shared, result)
}

/// Seals `parts` with rustls into `out`; the error, if it failed.
fn seal_with_rustls(
    session: &mut Session,
    control: &mut Vec<u8>,
    stage: &mut Vec<u8>,
    peer_closed: &mut bool,
    parts: [&[u8]; 2],
    out: Tail<'_>,
) -> Option<io::Error> {
    let mut ask = Ask::Seal { parts, out };
    loop {
        let (discard, reached) = session.advance(&mut stage[..], control, &mut ask);
        stage.drain(..discard);
        match reached {
            Ok(Reached::Moved) => {}
            Ok(Reached::PeerClosed) => *peer_closed = true,
            Ok(Reached::Idle) => return None,
            Ok(Reached::Blocked) => {
                return Some(io::Error::other("TLS send before the handshake's end"))
            }
            Ok(Reached::Closed) => {
                return Some(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the TLS session is closed",
                ))
            }
            Err(e) => return Some(e),
        }
    }
}

/// Ends an application send: what rustls wrote of its own meanwhile goes
/// now.
fn finish_send(shared: &TlsShared, result: io::Result<usize>) -> io::Result<usize> {
    shared.sending.set(false);
    if result.is_ok() {
        shared.flush_now(&mut shared.state.borrow_mut())?;
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
        let mut state = shared.state.borrow_mut();
        let State {
            engine,
            control,
            stage,
            peer_closed,
        } = &mut *state;
        let mut notify = Vec::new();
        let mut written = 0;
        let mut out = Tail::new(&mut notify, &mut written);
        match engine {
            Engine::Own(records) => records.close_notify(&mut out)?,
            Engine::Rustls(session) => {
                let mut ask = Ask::CloseNotify { out };
                loop {
                    let (discard, reached) = session.advance(&mut stage[..], control, &mut ask);
                    stage.drain(..discard);
                    let Ok(reached) = reached else {
                        // Failed: never called again; the FIN says the rest.
                        *engine = Engine::Spent;
                        break;
                    };
                    match reached {
                        Reached::Moved => {}
                        Reached::PeerClosed => *peer_closed = true,
                        // Before the handshake's end (or after both closed)
                        // there is no close_notify to send: the FIN says it
                        // all.
                        Reached::Idle | Reached::Blocked | Reached::Closed => break,
                    }
                }
            }
            Engine::Spent => {}
        }
        control.append(&mut notify);
        shared.flush_now(&mut state)?;
    }
    shared.stream.shutdown_write()
}

/// Whether plaintext or ciphertext is waiting.
pub fn bytes_waiting(shared: &TlsShared) -> bool {
    if shared.unread.get() {
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
