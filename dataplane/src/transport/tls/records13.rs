//! TLS 1.3 records after the handshake, protected by ringway itself.
//!
//! rustls 0.23 copies every record twice on its way in or out and
//! allocates a vector for each (see [`super::session`]). Once a TLS 1.3
//! handshake is over, rustls hands over the traffic secrets and a
//! [`KernelConnection`] that derives the next ones on a key update (the
//! API meant for kTLS); from then on this module frames, opens and seals
//! the records: a record is opened in place where it arrived, and sealed
//! in place in the buffer it is sent from. rustls keeps the handshake, the
//! certificates, the key schedule; this keeps only what RFC 8446 §5 asks
//! of the record layer:
//!
//! - every record is `application_data` on the wire, at most 2^14 + 256
//!   bytes of ciphertext, its inner plaintext at most 2^14 + 1;
//! - the nonce is the write IV xored with the record's sequence number,
//!   the additional data its header; a sequence number is never reused
//!   under one key, and the keys are updated before the suite's
//!   confidentiality limit;
//! - inside: application data; alerts (a close_notify ends the stream,
//!   any other is the peer failing); handshake messages, of which only a
//!   KeyUpdate (answered before our next record when the peer asks) and,
//!   to a client, a NewSessionTicket (handed to rustls) are allowed, each
//!   whole in its record.
//!
//! Any failure is final: the connection is closed, never resynchronized.

use std::io;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, SupportedCipherSuite};

use super::records::HEADER;
use crate::buf::Tail;

/// The most plaintext a record carries.
const MAX_PLAINTEXT: usize = 1 << 14;
/// The most ciphertext a record carries after its header.
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// The AEAD tag of every TLS 1.3 suite.
const TAG: usize = 16;
/// Content types.
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Handshake message types allowed after the handshake.
const NEW_SESSION_TICKET: u8 = 4;
const KEY_UPDATE: u8 = 24;

/// rustls's side of the connection after the handshake: the key schedule.
pub(super) enum Kernel {
    Server(KernelConnection<ServerConnectionData>),
    Client(KernelConnection<ClientConnectionData>),
}

impl Kernel {
    fn next_tx(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_tx_secret(),
            Kernel::Client(k) => k.update_tx_secret(),
        }
    }

    fn next_rx(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        match self {
            Kernel::Server(k) => k.update_rx_secret(),
            Kernel::Client(k) => k.update_rx_secret(),
        }
    }

    fn suite(&self) -> SupportedCipherSuite {
        match self {
            Kernel::Server(k) => k.negotiated_cipher_suite(),
            Kernel::Client(k) => k.negotiated_cipher_suite(),
        }
    }
}

/// One direction's key, IV and sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> io::Result<Self> {
        let (algorithm, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(io::Error::other("a TLS 1.3 suite ringway does not protect")),
        };
        let key = UnboundKey::new(algorithm, key.as_ref())
            .map_err(|_| io::Error::other("a traffic key of the wrong length"))?;
        let iv: [u8; NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| io::Error::other("a traffic IV of the wrong length"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The nonce of the next record, and the sequence number moved on.
    fn next_nonce(&mut self) -> io::Result<Nonce> {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| io::Error::other("TLS record sequence numbers exhausted"))?;
        Ok(Nonce::assume_unique_for_key(nonce))
    }
}

/// What one record held.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opened {
    /// The record is not whole yet: more bytes are needed.
    Partial,
    /// Application data: `plain` is where it lies in the buffer given,
    /// `len` the bytes the record took from its front.
    Data {
        len: usize,
        plain: std::ops::Range<usize>,
    },
    /// A record with nothing for the reader (a key update, a ticket).
    Nothing { len: usize },
    /// The peer's close_notify.
    Closed { len: usize },
}

/// The record layer of one TLS 1.3 connection.
pub(super) struct Records13 {
    kernel: Kernel,
    tx: Direction,
    rx: Direction,
    /// The peer asked for our key update; it goes before our next record.
    update_asked: bool,
    /// Records sealed under one key before we update it ourselves.
    tx_limit: u64,
    /// A failure happened: nothing more is opened or sealed.
    failed: bool,
}

impl std::fmt::Debug for Records13 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records13")
            .field("tx_seq", &self.tx.seq)
            .field("rx_seq", &self.rx.seq)
            .finish_non_exhaustive()
    }
}

impl Records13 {
    /// The record layer for the secrets rustls extracted.
    pub(super) fn new(
        kernel: Kernel,
        tx: (u64, ConnectionTrafficSecrets),
        rx: (u64, ConnectionTrafficSecrets),
    ) -> io::Result<Self> {
        let limit = match kernel.suite() {
            SupportedCipherSuite::Tls13(suite) => suite.common.confidentiality_limit,
            SupportedCipherSuite::Tls12(_) => {
                return Err(io::Error::other("TLS 1.2 records stay with rustls"))
            }
        };
        Ok(Self {
            kernel,
            tx: Direction::new(tx)?,
            rx: Direction::new(rx)?,
            update_asked: false,
            // Well before the limit: the count is per record sealed.
            tx_limit: limit.saturating_sub(limit / 8).max(1),
            failed: false,
        })
    }

    /// Opens the record at the front of `bytes` in place.
    pub(super) fn open(&mut self, bytes: &mut [u8]) -> io::Result<Opened> {
        let result = self.open_inner(bytes);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn open_inner(&mut self, bytes: &mut [u8]) -> io::Result<Opened> {
        if self.failed {
            return Err(io::Error::other("the TLS connection failed before"));
        }
        if bytes.len() < HEADER {
            return Ok(Opened::Partial);
        }
        let body_len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        if body_len > MAX_CIPHERTEXT {
            return Err(bad("a TLS record longer than allowed (record_overflow)"));
        }
        let len = HEADER + body_len;
        if bytes.len() < len {
            return Ok(Opened::Partial);
        }
        if bytes[0] != APPLICATION_DATA {
            return Err(bad(
                "a TLS record that is not protected after the handshake",
            ));
        }
        if body_len < TAG + 1 {
            return Err(bad("a TLS record too short to hold its tag"));
        }
        let (header, rest) = bytes.split_at_mut(HEADER);
        let nonce = self.rx.next_nonce()?;
        let inner = self
            .rx
            .key
            .open_in_place(nonce, Aad::from(&header[..]), &mut rest[..body_len])
            .map_err(|_| bad("a TLS record that does not authenticate (bad_record_mac)"))?;
        // The content type is the last non-zero byte; zeros after it are
        // padding.
        let Some(end) = inner.iter().rposition(|&b| b != 0) else {
            return Err(bad("a TLS record with no content type"));
        };
        if end > MAX_PLAINTEXT {
            return Err(bad("a TLS record whose plaintext is too long"));
        }
        let kind = inner[end];
        let content = &inner[..end];
        match kind {
            APPLICATION_DATA => Ok(Opened::Data {
                len,
                plain: HEADER..HEADER + end,
            }),
            ALERT => match content {
                // close_notify, at warning or fatal level as sent.
                [_, 0] => Ok(Opened::Closed { len }),
                // user_canceled is followed by a close_notify.
                [_, 90] => Ok(Opened::Nothing { len }),
                [_, description] => {
                    Err(bad_owned(format!("the peer sent TLS alert {description}")))
                }
                _ => Err(bad("a malformed TLS alert")),
            },
            HANDSHAKE => {
                self.handshake_messages(content)?;
                Ok(Opened::Nothing { len })
            }
            _ => Err(bad("a TLS record of an unexpected content type")),
        }
    }

    /// Deals with the handshake messages of one record, each whole in it.
    fn handshake_messages(&mut self, mut content: &[u8]) -> io::Result<()> {
        if content.is_empty() {
            return Err(bad("an empty TLS handshake record"));
        }
        while !content.is_empty() {
            if content.len() < 4 {
                return Err(bad("a TLS handshake message split across records"));
            }
            let kind = content[0];
            let len = usize::from(content[1]) << 16
                | usize::from(content[2]) << 8
                | usize::from(content[3]);
            if content.len() < 4 + len {
                return Err(bad("a TLS handshake message split across records"));
            }
            let body = &content[4..4 + len];
            content = &content[4 + len..];
            match (kind, &mut self.kernel) {
                (KEY_UPDATE, _) => {
                    // A key update ends its record: what follows is under
                    // the new key.
                    if !content.is_empty() || body.len() != 1 || body[0] > 1 {
                        return Err(bad("a malformed TLS key update"));
                    }
                    let next = self.kernel.next_rx().map_err(tls_error)?;
                    self.rx = Direction::new(next)?;
                    if body[0] == 1 {
                        self.update_asked = true;
                    }
                }
                (NEW_SESSION_TICKET, Kernel::Client(kernel)) => {
                    // Read by rustls, and kept only where the config
                    // resumes sessions (ringway's clusters do not).
                    kernel.handle_new_session_ticket(body).map_err(tls_error)?;
                }
                _ => {
                    return Err(bad(
                        "a TLS handshake message not allowed after the handshake",
                    ))
                }
            }
        }
        Ok(())
    }

    /// Seals `parts`, in order, as records appended to `out`: as few as
    /// the bytes need (a head and the start of a body share one).
    pub(super) fn seal(&mut self, parts: [&[u8]; 2], out: &mut Tail<'_>) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("the TLS connection failed before"));
        }
        let result = self.seal_inner(parts, out);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn seal_inner(&mut self, parts: [&[u8]; 2], out: &mut Tail<'_>) -> io::Result<()> {
        self.update_if_due(out)?;
        let [mut first, mut second] = parts;
        while !first.is_empty() || !second.is_empty() {
            let a = first.len().min(MAX_PLAINTEXT);
            let b = second.len().min(MAX_PLAINTEXT - a);
            self.seal_record(APPLICATION_DATA, [&first[..a], &second[..b]], out)?;
            first = &first[a..];
            second = &second[b..];
            self.update_if_due(out)?;
        }
        Ok(())
    }

    /// Appends a close_notify.
    pub(super) fn close_notify(&mut self, out: &mut Tail<'_>) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.update_if_due(out)?;
        self.seal_record(ALERT, [&[1, 0], &[]], out)
    }

    /// Sends our key update first when the peer asked for one, or when
    /// this key has sealed as many records as it may.
    fn update_if_due(&mut self, out: &mut Tail<'_>) -> io::Result<()> {
        if !self.update_asked && self.tx.seq < self.tx_limit {
            return Ok(());
        }
        // KeyUpdate, update_not_requested.
        self.seal_record(HANDSHAKE, [&[KEY_UPDATE, 0, 0, 1, 0], &[]], out)?;
        let next = self.kernel.next_tx().map_err(tls_error)?;
        self.tx = Direction::new(next)?;
        self.update_asked = false;
        Ok(())
    }

    /// Appends one record of `kind` holding `parts`.
    fn seal_record(&mut self, kind: u8, parts: [&[u8]; 2], out: &mut Tail<'_>) -> io::Result<()> {
        let inner = parts[0].len() + parts[1].len() + 1;
        let body = inner + TAG;
        let len = HEADER + body;
        let header = [APPLICATION_DATA, 3, 3, (body >> 8) as u8, body as u8];
        let mut nonce = Some(self.tx.next_nonce()?);
        let key = &self.tx.key;
        out.write(
            len,
            |room| {
                let room = &mut room[..len];
                room[..HEADER].copy_from_slice(&header);
                let mut at = HEADER;
                for part in parts {
                    room[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                room[at] = kind;
                let (sealed, tag) = room[HEADER..].split_at_mut(inner);
                let nonce = nonce.take().ok_or(Sealing)?;
                let made = key
                    .seal_in_place_separate_tag(nonce, Aad::from(header), sealed)
                    .map_err(|_| Sealing)?;
                tag.copy_from_slice(made.as_ref());
                Ok(len)
            },
            |_: &Sealing| None,
        )
    }
}

/// Sealing failed (ring says no more than that).
#[derive(Debug)]
struct Sealing;

impl std::fmt::Display for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TLS record could not be sealed")
    }
}

fn bad(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn bad_owned(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    //! ringway's records against rustls's own on the other end, over
    //! memory: what one seals the other opens, and what must be refused is.

    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::UnbufferedServerConnection;
    use rustls::{ClientConfig, ClientConnection, ServerConfig};

    use super::*;
    use crate::identity::verify::UncheckedServer;
    use crate::transport::tls::session::{Ask, Reached, Session};

    fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        #[allow(deprecated, reason = "ring, the provider ringway runs with")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .expect("the cert and key");
        server.enable_secret_extraction = true;
        let algorithms = provider.signature_verification_algorithms;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UncheckedServer::new(algorithms)))
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// A server session handed over to [`Records13`] after a handshake with
    /// a rustls client, in memory.
    fn pair() -> (Records13, ClientConnection) {
        let (server, client) = configs();
        let mut server =
            Session::Server(UnbufferedServerConnection::new(server).expect("a server"));
        let mut client = ClientConnection::new(client, "localhost".try_into().expect("a name"))
            .expect("a client");
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        for _ in 0..16 {
            while client.wants_write() {
                client.write_tls(&mut to_server).expect("to memory");
            }
            let idle = loop {
                let (mut into, mut spill) = (None, None);
                let mut ask = Ask::Open {
                    into: &mut into,
                    spill: &mut spill,
                };
                let (discard, reached) =
                    server.advance(&mut to_server[..], &mut to_client, &mut ask);
                to_server.drain(..discard);
                match reached.expect("the server's handshake") {
                    Reached::Moved => {}
                    Reached::Idle => break true,
                    _ => break false,
                }
            };
            client.read_tls(&mut &to_client[..]).expect("from memory");
            to_client.clear();
            client
                .process_new_packets()
                .expect("the client's handshake");
            if idle && !client.is_handshaking() && !server.common().is_handshaking() {
                return (server.into_records().expect("handed over"), client);
            }
        }
        panic!("the handshake did not end");
    }

    /// Seals `plain` with `records`, in a fresh buffer.
    fn sealed(records: &mut Records13, parts: [&[u8]; 2]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut inited = 0;
        records
            .seal(parts, &mut Tail::new(&mut out, &mut inited))
            .expect("sealed");
        out
    }

    /// Gives `wire` to the client; returns the plaintext it read.
    fn client_reads(client: &mut ClientConnection, wire: &[u8]) -> Vec<u8> {
        let mut rest = wire;
        let mut plain = Vec::new();
        while !rest.is_empty() {
            client.read_tls(&mut rest).expect("from memory");
            client
                .process_new_packets()
                .expect("the client opens our records");
            let _ = std::io::Read::read_to_end(&mut client.reader(), &mut plain);
        }
        plain
    }

    /// What the client sends for `plain`.
    fn client_sends(client: &mut ClientConnection, plain: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut at = 0;
        loop {
            at += std::io::Write::write(&mut client.writer(), &plain[at..]).expect("to memory");
            while client.wants_write() {
                client.write_tls(&mut wire).expect("to memory");
            }
            if at == plain.len() {
                return wire;
            }
        }
    }

    /// Opens every record of `wire`: the plaintext, and whether a
    /// close_notify came.
    fn open_all(records: &mut Records13, mut wire: Vec<u8>) -> io::Result<(Vec<u8>, bool)> {
        let mut plain = Vec::new();
        let mut closed = false;
        while !wire.is_empty() {
            let len = match records.open(&mut wire)? {
                Opened::Partial => panic!("a whole record was cut"),
                Opened::Data { len, plain: range } => {
                    plain.extend_from_slice(&wire[range]);
                    len
                }
                Opened::Nothing { len } => len,
                Opened::Closed { len } => {
                    closed = true;
                    len
                }
            };
            wire.drain(..len);
        }
        Ok((plain, closed))
    }

    #[test]
    fn records_go_both_ways_with_rustls_at_the_other_end() {
        let (mut records, mut client) = pair();
        // A head and a body in one record; a body of several records.
        let wire = sealed(&mut records, [b"HTTP/1.1 200 OK\r\n\r\n", b"body"]);
        assert_eq!(
            client_reads(&mut client, &wire),
            b"HTTP/1.1 200 OK\r\n\r\nbody"
        );
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let wire = sealed(&mut records, [&big, &[]]);
        assert_eq!(client_reads(&mut client, &wire), big);
        let wire = client_sends(&mut client, &big);
        let (plain, closed) = open_all(&mut records, wire).expect("opened");
        assert_eq!(plain, big);
        assert!(!closed);
        // A partial record is told apart from a bad one.
        let mut wire = client_sends(&mut client, b"partial");
        let cut = wire.len() - 1;
        assert_eq!(
            records.open(&mut wire[..cut]).expect("partial"),
            Opened::Partial
        );
        assert_eq!(open_all(&mut records, wire).expect("whole").0, b"partial");
        // close_notify both ways.
        client.send_close_notify();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).expect("to memory");
        }
        assert!(open_all(&mut records, wire).expect("opened").1);
        let mut out = Vec::new();
        let mut inited = 0;
        records
            .close_notify(&mut Tail::new(&mut out, &mut inited))
            .expect("sealed");
        client_reads(&mut client, &out);
        assert!(client
            .process_new_packets()
            .expect("fine")
            .peer_has_closed());
    }

    #[test]
    fn key_updates_are_followed_and_answered() {
        let (mut records, mut client) = pair();
        for round in 0..3 {
            // The client updates its keys and asks for ours.
            client.refresh_traffic_keys().expect("a key update");
            let wire = client_sends(&mut client, b"after the update");
            let (plain, _) = open_all(&mut records, wire).expect("opened under the new key");
            assert_eq!(plain, b"after the update", "round {round}");
            // Our next records go under our new key, after our update.
            let wire = sealed(&mut records, [b"answer", &[]]);
            assert_eq!(client_reads(&mut client, &wire), b"answer", "round {round}");
        }
    }

    #[test]
    fn tampered_truncated_and_unprotected_records_are_refused_for_good() {
        let (mut records, mut client) = pair();
        let mut wire = client_sends(&mut client, b"some request");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let e = records.open(&mut wire).expect_err("a flipped tag bit");
        assert!(e.to_string().contains("bad_record_mac"), "{e}");
        // Failed once, failed for good: a good record is refused too.
        let mut good = client_sends(&mut client, b"next");
        assert!(records.open(&mut good).is_err());

        let (mut records, _client) = pair();
        // A record longer than any allowed, refused from its header.
        let mut long = vec![23, 3, 3, 0x50, 0x00];
        let e = records.open(&mut long).expect_err("record_overflow");
        assert!(e.to_string().contains("record_overflow"), "{e}");
        let (mut records, _client) = pair();
        // A plaintext handshake record after the handshake.
        let mut plain = vec![22, 3, 3, 0, 20];
        plain.resize(25, 0);
        assert!(records.open(&mut plain).is_err());
        let (mut records, _client) = pair();
        // Too short to hold a tag.
        let mut short = vec![23, 3, 3, 0, 4, 1, 2, 3, 4];
        assert!(records.open(&mut short).is_err());
    }
}
