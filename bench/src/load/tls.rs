//! The generator's TLS 1.3 client: rustls driven sans-IO through its
//! unbuffered API over the thread's io_uring sockets.
//!
//! rustls never touches a socket here. Ciphertext is read by the ring into
//! the connection's own `incoming` buffer and handed to rustls as a slice;
//! what rustls has to send (handshake flights, sealed requests) is written
//! into the connection's own `outgoing` buffer and sent by the ring. Both
//! buffers, like the plaintext ones of [`super::http`], live as long as the
//! connection's task and keep their capacity, so a warm keep-alive
//! connection allocates nothing of its own per request. (rustls 0.23 itself
//! still copies each record it seals or opens through a buffer of its own.)
//!
//! Sessions never resume: the client config keeps no session, so every
//! connection is a full handshake, and every connection counts which kind
//! of handshake it made ([`Handshakes`]), so a run can show it.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::{Resumption, UnbufferedClientConnection};
use rustls::crypto::ring as provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio_uring::net::TcpStream;

use ringway_kit::ring_io::read_more;

/// Free room kept in the ciphertext buffer before each read: one whole
/// TLS record (16 KiB of plaintext and its 22 bytes of TLS 1.3 framing
/// with AES-GCM) and more.
pub const READ_ROOM: usize = 16 * 1024 + 1024;
/// Bytes a record adds to the plaintext it seals (TLS 1.3: a 5-byte header,
/// the content type and a 16-byte AEAD tag), and the plaintext of a full
/// record: how much room a sealed request needs.
const RECORD_OVERHEAD: usize = 5 + 1 + 16;
const RECORD_PLAINTEXT: usize = 16 * 1024;
/// Room for one handshake record to be encoded in; a larger one (a
/// certificate chain, when the client presents one) grows the buffer once.
const ENCODE_ROOM: usize = 4 * 1024;

/// What every TLS connection of a run uses: the client config (trust
/// anchors, client certificate, suites, groups) and the server name to ask
/// for and verify.
#[derive(Clone)]
pub struct TlsPlan {
    /// Shared by every connection of every thread.
    pub config: Arc<ClientConfig>,
    /// Sent as SNI when it is a DNS name, and verified against the
    /// server's certificate.
    pub name: ServerName<'static>,
}

impl fmt::Debug for TlsPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPlan")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The client side of every TLS scenario, the same against every system:
/// TLS 1.3 only; `TLS_AES_128_GCM_SHA256` first, then the other two TLS 1.3
/// suites; X25519 alone as the key share (every server under test accepts
/// it, so no handshake needs a HelloRetryRequest); ALPN `http/1.1`; no
/// session kept, so none is ever resumed.
///
/// `ca` is the PEM file of the trust anchors the server's certificate is
/// verified against; `client` the PEM files of a certificate chain and its
/// key, presented when a server asks for one.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a trust anchor: {e}", ca.display()))?;
    }
    let mut suites = provider::ALL_CIPHER_SUITES.to_vec();
    suites.retain(|s| s.version() == &rustls::version::TLS13);
    // AES-128-GCM first, whatever the provider's own order.
    suites.sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    // ring, as ringway's listeners use: deprecated in rustls 0.23.48 for
    // its lack of post-quantum key exchange, which no scenario offers.
    #[allow(deprecated)]
    let crypto = CryptoProvider {
        cipher_suites: suites,
        kx_groups: vec![provider::kx_group::X25519],
        ..provider::default_provider()
    };
    let builder = ClientConfig::builder_with_provider(Arc::new(crypto))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS 1.3 with the ring provider: {e}"))?
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: no private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert.display()))?
        }
    };
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

/// The ciphertext buffers of one connection's task, lent to the ring ops.
#[derive(Debug, Default)]
pub struct CipherBufs {
    /// Received and not yet taken by rustls, from the front.
    incoming: Vec<u8>,
    /// To be sent, in order.
    outgoing: Vec<u8>,
}

impl CipherBufs {
    /// Buffers for a connection whose requests are `request` bytes.
    pub fn new(request: usize) -> Self {
        Self {
            incoming: Vec::with_capacity(2 * READ_ROOM),
            outgoing: Vec::with_capacity(ENCODE_ROOM.max(sealed_len(request))),
        }
    }
}

/// How a TLS connection failed.
#[derive(Debug)]
pub enum TlsError {
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection (a `close_notify`, or the end of the
    /// stream) before what was asked of it.
    Closed,
    /// rustls refused what the peer sent (a bad certificate, a bad record).
    Tls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io(e) => write!(f, "{e}"),
            TlsError::Closed => f.write_str("the server closed the TLS connection"),
            TlsError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl From<io::Error> for TlsError {
    fn from(e: io::Error) -> Self {
        TlsError::Io(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Tls(e)
    }
}

/// Which kinds of handshake a thread's connections made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handshakes {
    /// Full handshakes.
    pub full: u64,
    /// Of those, the ones that needed a HelloRetryRequest (the server
    /// wanted another key share: two round trips, and a sign that the
    /// servers do not all do the same work).
    pub hello_retries: u64,
    /// Resumed sessions (never expected: the client keeps none).
    pub resumed: u64,
}

impl Handshakes {
    /// Counts one handshake of `kind`.
    pub fn count(&mut self, kind: HandshakeKind) {
        match kind {
            HandshakeKind::Resumed => self.resumed += 1,
            HandshakeKind::FullWithHelloRetryRequest => {
                self.full += 1;
                self.hello_retries += 1;
            }
            HandshakeKind::Full => self.full += 1,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Handshakes) {
        self.full += other.full;
        self.hello_retries += other.hello_retries;
        self.resumed += other.resumed;
    }
}

/// What the first handshake of a thread negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The cipher suite (`TLS13_AES_128_GCM_SHA256`).
    pub suite: String,
    /// The key exchange group (`X25519`).
    pub group: String,
    /// The ALPN protocol, if the server chose one.
    pub alpn: Option<String>,
}

/// A client connection over TLS: the socket, the rustls session and the
/// ciphertext buffers.
pub struct TlsConn {
    stream: TcpStream,
    session: UnbufferedClientConnection,
    bufs: CipherBufs,
}

impl fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn").finish_non_exhaustive()
    }
}

/// What the session waits for after it took what it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// More bytes from the peer (the handshake is not over).
    Read,
    /// Nothing: the handshake is over, and what was to be sealed is in
    /// `outgoing`.
    Idle,
    /// The peer sent its `close_notify`.
    Closed,
}

impl TlsConn {
    /// Runs the handshake on `stream`; with `first`, those plaintext bytes
    /// are sealed after the client's last flight and leave in the same
    /// write (a request on a connection used once). Returns the connection
    /// and what the handshake was.
    ///
    /// `bufs` become the connection's (those of a connection used before,
    /// back from [`TlsConn::into_bufs`], or new ones); `plain` receives
    /// application data the server would send before it was asked (none
    /// is expected).
    pub async fn handshake(
        stream: TcpStream,
        plan: &TlsPlan,
        mut bufs: CipherBufs,
        first: Option<&[u8]>,
        plain: &mut Vec<u8>,
    ) -> Result<(TlsConn, HandshakeKind), TlsError> {
        let session = UnbufferedClientConnection::new(plan.config.clone(), plan.name.clone())?;
        bufs.incoming.clear();
        bufs.outgoing.clear();
        let mut conn = TlsConn {
            stream,
            session,
            bufs,
        };
        let mut first = first;
        loop {
            let next = conn.advance(plain, &mut first)?;
            conn.flush().await?;
            match next {
                Next::Read => {
                    if conn.fill(0).await? == 0 {
                        return Err(TlsError::Closed);
                    }
                }
                Next::Idle => break,
                Next::Closed => return Err(TlsError::Closed),
            }
        }
        let kind = conn.session.handshake_kind().unwrap_or(HandshakeKind::Full);
        Ok((conn, kind))
    }

    /// What this connection negotiated.
    pub fn negotiated(&self) -> Negotiated {
        let s = &self.session;
        Negotiated {
            suite: s
                .negotiated_cipher_suite()
                .map_or_else(|| "-".into(), |c| format!("{:?}", c.suite())),
            group: s
                .negotiated_key_exchange_group()
                .map_or_else(|| "-".into(), |g| format!("{:?}", g.name())),
            alpn: s
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// The socket underneath.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The ciphertext buffers, for the next connection.
    pub fn into_bufs(self) -> CipherBufs {
        self.bufs
    }

    /// Seals `data` and sends it whole. Records received meanwhile are
    /// opened into `plain`.
    pub async fn send(&mut self, data: &[u8], plain: &mut Vec<u8>) -> Result<(), TlsError> {
        let mut data = Some(data);
        match self.advance(plain, &mut data)? {
            Next::Idle if data.is_none() => {}
            Next::Closed => return Err(TlsError::Closed),
            // After the handshake rustls may always seal: a session that
            // cannot is one that failed.
            _ => return Err(TlsError::Tls(rustls::Error::HandshakeNotComplete)),
        }
        self.flush().await
    }

    /// Reads until rustls opens more plaintext, appended to `plain`;
    /// returns how many bytes that was, 0 when the peer closed (with a
    /// `close_notify` or not) before sending any. `expect` is how many
    /// plaintext bytes are still to come, if known: the read makes room
    /// for their records.
    pub async fn recv(&mut self, plain: &mut Vec<u8>, expect: usize) -> Result<usize, TlsError> {
        let before = plain.len();
        loop {
            // Records already received (after a handshake, or past the end
            // of the last answer) first.
            let next = self.advance(plain, &mut None)?;
            // A key update, or an alert, rustls wants sent.
            self.flush().await?;
            if plain.len() > before {
                return Ok(plain.len() - before);
            }
            if next == Next::Closed || self.fill(expect).await? == 0 {
                return Ok(0);
            }
        }
    }

    /// Makes rustls take every whole record of `bufs.incoming`: opened
    /// plaintext goes to `plain`, what it has to send to `bufs.outgoing`,
    /// and `send`, once the session may seal, is sealed after it (and
    /// taken).
    fn advance(&mut self, plain: &mut Vec<u8>, send: &mut Option<&[u8]>) -> Result<Next, TlsError> {
        let TlsConn { session, bufs, .. } = self;
        let CipherBufs { incoming, outgoing } = bufs;
        loop {
            let UnbufferedStatus { mut discard, state } = session.process_tls_records(incoming);
            let next = match state? {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record?;
                        discard += record.discard;
                        plain.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    let at = outgoing.len();
                    outgoing.resize(at + ENCODE_ROOM, 0);
                    let n = match data.encode(&mut outgoing[at..]) {
                        Ok(n) => n,
                        Err(EncodeError::InsufficientSize(e)) => {
                            outgoing.resize(at + e.required_size, 0);
                            data.encode(&mut outgoing[at..])
                                .map_err(|e| TlsError::Io(io::Error::other(e.to_string())))?
                        }
                        Err(e) => return Err(TlsError::Io(io::Error::other(e.to_string()))),
                    };
                    outgoing.truncate(at + n);
                    None
                }
                // What was encoded is in `outgoing`, which the caller sends
                // before anything it seals later: marking it sent now keeps
                // the records in order.
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Next::Read),
                ConnectionState::WriteTraffic(mut traffic) => {
                    if let Some(data) = send.take() {
                        let at = outgoing.len();
                        outgoing.resize(at + sealed_len(data.len()), 0);
                        let n = match traffic.encrypt(data, &mut outgoing[at..]) {
                            Ok(n) => n,
                            Err(EncryptError::InsufficientSize(e)) => {
                                outgoing.resize(at + e.required_size, 0);
                                traffic
                                    .encrypt(data, &mut outgoing[at..])
                                    .map_err(|e| TlsError::Io(io::Error::other(e.to_string())))?
                            }
                            Err(e) => return Err(TlsError::Io(io::Error::other(e.to_string()))),
                        };
                        outgoing.truncate(at + n);
                    }
                    Some(Next::Idle)
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => Some(Next::Closed),
                // Early data is the server's side.
                _ => None,
            };
            incoming.drain(..discard);
            if let Some(next) = next {
                return Ok(next);
            }
        }
    }

    /// Sends what `outgoing` holds, whole, and empties it.
    async fn flush(&mut self) -> Result<(), TlsError> {
        if self.bufs.outgoing.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.bufs.outgoing);
        let (written, mut back) = self.stream.write_all(out).await;
        back.clear();
        self.bufs.outgoing = back;
        written.map_err(TlsError::Io)
    }

    /// Reads ciphertext after what `incoming` holds, with room for the
    /// records of `expect` plaintext bytes (and at least one whole record);
    /// returns how many bytes came, 0 at the end of the stream.
    async fn fill(&mut self, expect: usize) -> Result<usize, TlsError> {
        let incoming = &mut self.bufs.incoming;
        let want = sealed_len(expect).max(READ_ROOM);
        if incoming.capacity() - incoming.len() < want {
            incoming.reserve(want);
        }
        let (got, back) = read_more(&self.stream, std::mem::take(incoming)).await;
        self.bufs.incoming = back;
        got.map_err(TlsError::Io)
    }
}

/// Room the records sealing `plain` bytes take.
fn sealed_len(plain: usize) -> usize {
    plain + plain.div_ceil(RECORD_PLAINTEXT).max(1) * RECORD_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_request_fits_its_room() {
        assert_eq!(sealed_len(0), RECORD_OVERHEAD);
        assert_eq!(sealed_len(100), 100 + RECORD_OVERHEAD);
        assert_eq!(
            sealed_len(RECORD_PLAINTEXT),
            RECORD_PLAINTEXT + RECORD_OVERHEAD
        );
        assert_eq!(
            sealed_len(RECORD_PLAINTEXT + 1),
            RECORD_PLAINTEXT + 1 + 2 * RECORD_OVERHEAD
        );
    }
}
