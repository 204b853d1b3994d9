//! Whom a TLS listener lets in: before a system's first load run, its TLS
//! listener (the one the clients use, or the inbound half of a sidecar
//! pair) is tried twice with a TLS 1.3 client like the generator's, once
//! presenting the generator's client certificate and once presenting none.
//! A listener configured to require client certificates must refuse the
//! second and admit the first; any other must admit both.
//!
//! The verdict goes into the results and the report, and a listener that
//! did otherwise is a problem of the run: the figures of a system that does
//! not verify what it was configured to verify are not the figures asked
//! for. It also shows that the configurations are alike where it matters:
//! nginx refuses with a `400` after the handshake, HAProxy and ringway with
//! a TLS alert, and all of them refuse.
//!
//! Admitted means, over HTTP, a 2xx answer to the scenario's request. Over
//! TCP, where the origin is a sink that never answers, it means that the
//! server finished the handshake and kept the connection: a session
//! ticket came (every system under test sends its tickets once it has
//! read the client's certificate and `Finished`), and no alert or close
//! followed within [`SETTLE`]. The ticket is not enough alone: ringway and
//! HAProxy refuse with an alert instead of tickets, but nginx's stream
//! module sends its tickets, then closes a client that sent no
//! certificate, in the same turn of its event loop; so the wait that
//! decides starts only once the server has answered, however long the
//! machine took to get there. (A server that sends no ticket is judged by
//! the connection staying open until [`WAIT`].)

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use serde::Serialize;

use super::configs::{ListenerTls, Mode};
use super::pki::SERVER_NAME;
use crate::load::tls::client_config;

/// Longest wait for the connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the server's next bytes: a guard against a server that
/// neither answers nor refuses. Refusals and answers come within a round
/// trip of the client's last handshake flight.
const WAIT: Duration = Duration::from_secs(10);
/// TCP: how long a connection must stay open after the server's session
/// ticket to count as admitted; a refusal that follows a ticket is written
/// right after it.
const SETTLE: Duration = Duration::from_secs(1);
/// The longest status line read.
const MAX_STATUS_LINE: usize = 1024;

/// What one try saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Outcome {
    /// HTTP: an answer with this status.
    Answered(u16),
    /// TCP: the server finished the handshake (a session ticket came) and
    /// sent no alert and no close for [`SETTLE`] after it.
    Open,
    /// No way in: the connect or the handshake failed, or the server sent
    /// an alert, closed or reset instead of answering; what the client saw.
    Refused(String),
}

impl Outcome {
    /// Whether the client got through to the upstream side.
    pub fn admitted(&self) -> bool {
        matches!(self, Outcome::Answered(200..=299) | Outcome::Open)
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Answered(status) => format!("answered {status}"),
            Outcome::Open => "admitted".to_owned(),
            Outcome::Refused(why) => format!("refused ({why})"),
        }
    }
}

/// One listener's two tries.
#[derive(Debug, Clone, Serialize)]
pub struct Admission {
    /// The system, as the results name it.
    pub system: String,
    /// `listener` (the one the clients use) or `inbound` (a pair's
    /// inbound half).
    pub listener: String,
    /// Whether its configuration requires client certificates.
    pub requires: bool,
    /// Presenting the generator's client certificate.
    pub with_certificate: Outcome,
    /// Presenting none.
    pub without_certificate: Outcome,
}

impl Admission {
    /// Whether the listener let in whom its configuration says.
    pub fn as_configured(&self) -> bool {
        self.with_certificate.admitted() && self.without_certificate.admitted() != self.requires
    }

    /// HTTP requests the tries carried through to the origin (their 2xx
    /// answers), which the origin counts among those it served.
    pub fn reached_origin(&self) -> u64 {
        [&self.with_certificate, &self.without_certificate]
            .into_iter()
            .filter(|o| matches!(o, Outcome::Answered(200..=299)))
            .count() as u64
    }
}

/// Tries the TLS listener at `addr` of `system` with and without a client
/// certificate; `request` is what the client sends once the handshake is
/// done (the scenario's HTTP request, or a few bytes in TCP mode).
pub fn check(
    system: &str,
    listener: &str,
    addr: SocketAddr,
    tls: &ListenerTls,
    mode: Mode,
    request: &[u8],
) -> Result<Admission, String> {
    let pki = &tls.pki;
    let with = client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)))?;
    let without = client_config(&pki.ca, None)?;
    Ok(Admission {
        system: system.to_owned(),
        listener: listener.to_owned(),
        requires: tls.client_auth,
        with_certificate: try_once(addr, Arc::new(with), mode, request),
        without_certificate: try_once(addr, Arc::new(without), mode, request),
    })
}

/// One connection: handshake, `request`, then what the server does.
fn try_once(addr: SocketAddr, config: Arc<ClientConfig>, mode: Mode, request: &[u8]) -> Outcome {
    let refused = |what: &str, e: &dyn std::fmt::Display| Outcome::Refused(format!("{what}: {e}"));
    let mut sock = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => return refused("connect", &e),
    };
    if let Err(e) = sock.set_read_timeout(Some(WAIT)) {
        return refused("socket", &e);
    }
    let name = match ServerName::try_from(SERVER_NAME) {
        Ok(n) => n,
        Err(e) => return refused("server name", &e),
    };
    let mut conn = match ClientConnection::new(config, name) {
        Ok(c) => c,
        Err(e) => return refused("client", &e),
    };
    // Buffered until the handshake is done, then sealed after the
    // client's `Finished`.
    if let Err(e) = conn.writer().write_all(request) {
        return refused("write", &e);
    }
    let mut plaintext = Vec::new();
    let mut ticketed: Option<Instant> = None;
    loop {
        while conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return refused("send", &e),
                Ok(_) => {}
            }
        }
        if let Some(outcome) = judge(mode, &plaintext) {
            return outcome;
        }
        if mode == Mode::Tcp && conn.tls13_tickets_received() > 0 {
            let since = *ticketed.get_or_insert_with(Instant::now);
            let left = SETTLE.saturating_sub(since.elapsed());
            if left.is_zero() {
                return Outcome::Open;
            }
            if let Err(e) = sock.set_read_timeout(Some(left)) {
                return refused("socket", &e);
            }
        }
        match conn.read_tls(&mut sock) {
            Ok(0) => return Outcome::Refused("closed by the server".to_owned()),
            Ok(_) => {}
            // A signal to this process, not an answer: read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                return match mode {
                    Mode::Tcp if !conn.is_handshaking() => Outcome::Open,
                    _ => Outcome::Refused(format!("nothing within {WAIT:?}")),
                }
            }
            Err(e) => return refused("receive", &e),
        }
        // A TLS alert (a refused or missing certificate) shows here.
        if let Err(e) = conn.process_new_packets() {
            return refused("TLS", &e);
        }
        match drain(&mut conn, &mut plaintext) {
            Ok(false) => {}
            Ok(true) => {
                return judge(mode, &plaintext)
                    .unwrap_or_else(|| Outcome::Refused("closed by the server".to_owned()))
            }
            Err(e) => return refused("read", &e),
        }
    }
}

/// The outcome, once what came so far decides it: over HTTP, the answer's
/// status line (over TCP only time decides).
fn judge(mode: Mode, plaintext: &[u8]) -> Option<Outcome> {
    match mode {
        Mode::Http => status(plaintext).or_else(|| {
            (plaintext.len() >= MAX_STATUS_LINE)
                .then(|| Outcome::Refused("no HTTP status line".to_owned()))
        }),
        Mode::Tcp => None,
    }
}

/// Moves the plaintext that came into `plaintext` (up to
/// [`MAX_STATUS_LINE`] bytes, the rest dropped); `true` once the server
/// closed the TLS session.
fn drain(conn: &mut ClientConnection, plaintext: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0; 512];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                let room = MAX_STATUS_LINE.saturating_sub(plaintext.len());
                plaintext.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// The answer's status once its status line is in.
fn status(plaintext: &[u8]) -> Option<Outcome> {
    let end = plaintext.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&plaintext[..end]);
    let code = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok());
    Some(match code {
        Some(code) => Outcome::Answered(code),
        None => Outcome::Refused(format!("not an HTTP answer: {line:?}")),
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    #[allow(deprecated)]
    use rustls::crypto::ring::default_provider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{RootCertStore, ServerConfig, ServerConnection};

    use super::*;
    use crate::compare::pki::Pki;

    /// A TLS 1.3 server on loopback for `tries` connections, requiring
    /// client certificates or not, answering `200` to an HTTP request (or
    /// reading a TCP stream until the client goes).
    fn server(pki: &Pki, requires: bool, mode: Mode, tries: usize) -> SocketAddr {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
            .expect("the server chain")
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("the server key");
        // ring, as the generator and ringway use.
        #[allow(deprecated)]
        let provider = Arc::new(default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3");
        let builder = if requires {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(&pki.ca).expect("the CA") {
                roots.add(ca.expect("a PEM CA")).expect("an anchor");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = Arc::new(builder.with_single_cert(chain, key).expect("a config"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("its address");
        thread::spawn(move || {
            for _ in 0..tries {
                let (mut sock, _) = listener.accept().expect("a client");
                let mut conn = ServerConnection::new(config.clone()).expect("a connection");
                serve(&mut conn, &mut sock, mode);
            }
        });
        addr
    }

    fn serve(conn: &mut ServerConnection, sock: &mut TcpStream, mode: Mode) {
        let mut request = Vec::new();
        loop {
            while conn.wants_write() {
                if conn.write_tls(sock).is_err() {
                    return;
                }
            }
            match conn.read_tls(sock) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if conn.process_new_packets().is_err() {
                // The alert rustls queued.
                let _ = conn.write_tls(sock);
                return;
            }
            let mut buf = [0; 512];
            while let Ok(n) = conn.reader().read(&mut buf) {
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
            }
            if mode == Mode::Http && request.windows(4).any(|w| w == b"\r\n\r\n") {
                let _ = conn.writer().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                conn.send_close_notify();
                while conn.wants_write() {
                    if conn.write_tls(sock).is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n";

    fn try_both(requires: bool, configured: bool, mode: Mode) -> Admission {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = Pki::mint(dir.path()).expect("minted");
        let addr = server(&pki, requires, mode, 2);
        let tls = ListenerTls {
            pki,
            client_auth: configured,
        };
        check("sys", "listener", addr, &tls, mode, REQUEST).expect("both tries")
    }

    #[test]
    fn a_listener_that_requires_certificates_refuses_a_client_without_one() {
        let a = try_both(true, true, Mode::Http);
        assert_eq!(a.with_certificate, Outcome::Answered(200));
        assert!(
            matches!(&a.without_certificate, Outcome::Refused(why) if why.contains("CertificateRequired")),
            "{a:?}"
        );
        assert!(a.as_configured(), "{a:?}");
        assert_eq!(a.reached_origin(), 1);
    }

    #[test]
    fn a_listener_that_does_not_is_caught_when_it_was_meant_to() {
        // Configured to require, but lets everyone in: the check fails.
        let a = try_both(false, true, Mode::Http);
        assert_eq!(a.with_certificate, Outcome::Answered(200));
        assert_eq!(a.without_certificate, Outcome::Answered(200));
        assert!(!a.as_configured(), "{a:?}");
        assert_eq!(a.reached_origin(), 2);
        // The other way round too.
        let a = try_both(true, false, Mode::Http);
        assert!(!a.as_configured(), "{a:?}");
        assert!(try_both(false, false, Mode::Http).as_configured());
    }

    #[test]
    fn over_tcp_a_connection_left_open_is_admitted() {
        let a = try_both(true, true, Mode::Tcp);
        assert_eq!(a.with_certificate, Outcome::Open, "{a:?}");
        assert!(!a.without_certificate.admitted(), "{a:?}");
        assert!(a.as_configured());
        assert_eq!(a.reached_origin(), 0);
    }

    #[test]
    fn nothing_listening_is_no_admission() {
        let addr = ringway_kit::ports::free_addr();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = Pki::mint(dir.path()).expect("minted");
        let config = client_config(&pki.ca, None).expect("a client config");
        let outcome = try_once(addr, Arc::new(config), Mode::Http, REQUEST);
        assert!(matches!(&outcome, Outcome::Refused(why) if why.starts_with("connect")));
        assert!(!outcome.admitted());
    }
}
