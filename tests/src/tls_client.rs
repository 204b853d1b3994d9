//! A blocking TLS client for the tests (rustls over `std` sockets), and the
//! transports a test client speaks over: plain TCP or TLS.
//!
//! Both kinds of stream are a [`ClientStream`], so [`HttpConn`] writes the
//! same raw bytes over either and reads the answer with the same wire
//! reader; [`Transport`] lets one test body run over both. A
//! [`TlsClient`] trusts the test's own CAs (one or several, for rotation
//! between CAs), may present a client certificate, and can show which
//! certificate the server presented on each connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::http_client::HttpConn;
use crate::net::try_client;
use crate::pki::Leaf;

/// A byte stream a test client speaks HTTP over.
pub trait ClientStream: Read + Write {
    /// The TCP socket underneath: for timeouts, shutdowns and looking at
    /// how the connection ended.
    fn tcp(&self) -> &TcpStream;
}

impl ClientStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// How a client reaches a listener.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS, as this client makes it.
    Tls(TlsClient),
}

impl Transport {
    /// A connection to `addr`, with the handshake done for TLS; the socket
    /// has the harness's bounded timeouts.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<AnyStream> {
        Ok(match self {
            Transport::Plain => AnyStream::Plain(try_client(addr)?),
            Transport::Tls(client) => AnyStream::Tls(Box::new(client.connect(addr)?)),
        })
    }

    /// An HTTP client connection to `addr`; panics when it cannot be made.
    pub fn open(&self, addr: SocketAddr) -> HttpConn<AnyStream> {
        let stream = self
            .connect(addr)
            .unwrap_or_else(|e| panic!("cannot open a {} connection to {addr}: {e}", self.name()));
        HttpConn::over(stream)
    }

    /// `plain` or `tls`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls(_) => "tls",
        }
    }
}

/// A plain or a TLS stream, as [`Transport::connect`] made it.
#[derive(Debug)]
pub enum AnyStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

impl Read for AnyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            AnyStream::Plain(s) => s.read(buf),
            AnyStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for AnyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            AnyStream::Plain(s) => s.write(buf),
            AnyStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            AnyStream::Plain(s) => s.flush(),
            AnyStream::Tls(s) => s.flush(),
        }
    }
}

impl ClientStream for AnyStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            AnyStream::Plain(s) => s,
            AnyStream::Tls(s) => s.tcp(),
        }
    }
}

/// What TLS connections are made with: the trusted CAs, the server name
/// sent and verified, and the client certificate, if any. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// A client trusting the CA certificates in the PEM files `cas`,
    /// offering ALPN `http/1.1`, expecting the server to be `localhost`.
    pub fn new(cas: &[&Path]) -> Self {
        Self::build(cas, None)
    }

    /// Like [`TlsClient::new`], presenting `leaf` as its certificate.
    pub fn with_certificate(cas: &[&Path], leaf: &Leaf) -> Self {
        Self::build(cas, Some(leaf))
    }

    fn build(cas: &[&Path], leaf: Option<&Leaf>) -> Self {
        let mut roots = RootCertStore::empty();
        for ca in cas {
            for cert in certificates(ca) {
                roots
                    .add(cert)
                    .unwrap_or_else(|e| panic!("{} is not a CA certificate: {e}", ca.display()));
            }
        }
        #[allow(
            deprecated,
            reason = "ring, as ringway uses it: its provider lacks the post-quantum \
                      key exchange that rustls now warns about, which is not tested here"
        )]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .with_root_certificates(roots);
        let mut config = match leaf {
            None => builder.with_no_client_auth(),
            Some(leaf) => {
                let key = PrivateKeyDer::from_pem_file(&leaf.key)
                    .unwrap_or_else(|e| panic!("cannot read the key {}: {e}", leaf.key.display()));
                builder
                    .with_client_auth_cert(certificates(&leaf.cert), key)
                    .unwrap_or_else(|e| panic!("a bad client certificate: {e}"))
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            config: Arc::new(config),
            server_name: ServerName::try_from("localhost").expect("a valid name"),
        }
    }

    /// Connects to `addr` and completes the handshake; the socket has the
    /// harness's bounded timeouts. A refused handshake is an error.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<TlsStream> {
        let socket = try_client(addr)?;
        let mut stream = TlsStream {
            inner: StreamOwned::new(self.session()?, socket),
        };
        stream.handshake()?;
        Ok(stream)
    }

    /// The first bytes this client sends on a new connection: a whole
    /// ClientHello record, to send some other way (slowly, say).
    pub fn client_hello(&self) -> Vec<u8> {
        let mut session = self.session().expect("a client session");
        let mut hello = Vec::new();
        while session.wants_write() {
            session.write_tls(&mut hello).expect("writing to memory");
        }
        hello
    }

    fn session(&self) -> io::Result<ClientConnection> {
        ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(io::Error::other)
    }
}

/// A TLS session over a TCP connection, handshake done.
#[derive(Debug)]
pub struct TlsStream {
    inner: StreamOwned<ClientConnection, TcpStream>,
}

impl TlsStream {
    fn handshake(&mut self) -> io::Result<()> {
        let StreamOwned { conn, sock } = &mut self.inner;
        while conn.is_handshaking() {
            let (read, written) = conn.complete_io(sock)?;
            if read == 0 && written == 0 && conn.is_handshaking() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed during the handshake",
                ));
            }
        }
        Ok(())
    }

    /// The certificate the server presented (its leaf), as DER.
    pub fn peer_certificate(&self) -> &[u8] {
        self.inner
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref())
            .expect("a completed handshake has the server's certificate")
    }

    /// The issuer of the certificate the server presented, as its
    /// distinguished name reads (`CN=...`).
    pub fn peer_issuer(&self) -> String {
        let (_, cert) = x509_parser::parse_x509_certificate(self.peer_certificate())
            .unwrap_or_else(|e| panic!("the server's certificate does not parse: {e}"));
        cert.issuer().to_string()
    }

    /// The application protocol the server chose, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.inner.conn.alpn_protocol()
    }

    /// Sends a TLS 1.3 key update that asks the server to update its own
    /// keys too: its next records must come under new keys, after its own
    /// key update.
    pub fn refresh_keys(&mut self) -> io::Result<()> {
        let StreamOwned { conn, sock } = &mut self.inner;
        conn.refresh_traffic_keys().map_err(io::Error::other)?;
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        Ok(())
    }
}

impl Read for TlsStream {
    /// Reads plaintext, and nothing else: unlike rustls's own stream, it
    /// never writes first, so TLS output left over from a write the server
    /// refused (it answered and closed) cannot hide the answer behind a
    /// broken pipe. `Ok(0)` is the server's close_notify; a TCP end
    /// without one is rustls's `UnexpectedEof`, a reset is a reset.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let StreamOwned { conn, sock } = &mut self.inner;
        loop {
            match conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            conn.read_tls(sock)?;
            conn.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ClientStream for TlsStream {
    fn tcp(&self) -> &TcpStream {
        self.inner.get_ref()
    }
}

/// The certificates in the PEM file at `path`, in order.
fn certificates(path: &Path) -> Vec<CertificateDer<'static>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("cannot read certificates from {}: {e}", path.display()));
    assert!(!certs.is_empty(), "no certificate in {}", path.display());
    certs
}
