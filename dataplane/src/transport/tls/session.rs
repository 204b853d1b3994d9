//! One rustls session driven through its unbuffered API, server or client
//! alike: each call hands it the ciphertext in hand and deals with the one
//! state it reaches.
//!
//! rustls's unbuffered API never owns a byte of ciphertext: records are
//! framed and opened in the slice they arrived in (for us, the worker's
//! ring buffer itself), and what it has to send is encoded into memory of
//! ours. rustls 0.23 still copies each opened record's plaintext into a
//! vector of its own before handing it over (`ReadTraffic`), and seals
//! each record in a vector of its own before copying it out (`encrypt`):
//! those two copies are its, not ours.

use std::io;

use rustls::server::ServerConnectionData;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus,
};
use rustls::{
    client::ClientConnectionData, client::UnbufferedClientConnection,
    server::UnbufferedServerConnection, CommonState,
};

use super::records13::{Kernel, Records13};
use crate::buf::{Filling, Tail};

/// The session, of either side.
pub(super) enum Session {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// What the caller wants of the state the session reaches.
pub(super) enum Ask<'a> {
    /// Opened plaintext goes to `into`; what does not fit there, to
    /// `spill` (a record never exceeds an empty block).
    Open {
        into: &'a mut Option<Filling>,
        spill: &'a mut Option<Filling>,
    },
    /// Seal `parts`, in order, appending the records to `out`.
    Seal { parts: [&'a [u8]; 2], out: Tail<'a> },
    /// Append a close_notify to `out`.
    CloseNotify { out: Tail<'a> },
}

/// The state one call reached, once dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reached {
    /// A record's plaintext was taken, or bytes to send were encoded:
    /// call again.
    Moved,
    /// The handshake waits for the peer's next flight.
    Blocked,
    /// Nothing left to do with the bytes in hand: the handshake is over
    /// (and for [`Ask::Seal`] or [`Ask::CloseNotify`], done as asked).
    Idle,
    /// The peer's close_notify arrived (reported once).
    PeerClosed,
    /// Both close_notify alerts have gone.
    Closed,
}

impl Session {
    /// Hands `incoming` to rustls and deals with the state it reaches:
    /// bytes it wants sent are appended to `control` (to the seal's own
    /// buffer when sealing). Returns how many
    /// bytes from the front of `incoming` are done with (to be dropped
    /// before the next call) and the state.
    pub(super) fn advance(
        &mut self,
        incoming: &mut [u8],
        control: &mut Vec<u8>,
        ask: &mut Ask<'_>,
    ) -> (usize, io::Result<Reached>) {
        match self {
            Session::Server(s) => deal(s.process_tls_records(incoming), control, ask),
            Session::Client(c) => deal(c.process_tls_records(incoming), control, ask),
        }
    }

    /// The record layer of ringway's own for a finished TLS 1.3 session
    /// (see [`super::records13`]); the session is spent either way.
    pub(super) fn into_records(self) -> io::Result<Records13> {
        let (secrets, kernel) = match self {
            Session::Server(s) => {
                let (secrets, k) = s.dangerous_into_kernel_connection().map_err(tls_error)?;
                (secrets, Kernel::Server(k))
            }
            Session::Client(c) => {
                let (secrets, k) = c.dangerous_into_kernel_connection().map_err(tls_error)?;
                (secrets, Kernel::Client(k))
            }
        };
        Records13::new(kernel, secrets.tx, secrets.rx)
    }

    /// What both sides share: handshake status, the peer's certificates.
    pub(super) fn common(&self) -> &CommonState {
        match self {
            Session::Server(s) => s,
            Session::Client(c) => c,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Session::Server(_) => "Session::Server",
            Session::Client(_) => "Session::Client",
        })
    }
}

/// Marks the two sides' data for [`deal`] (the states are generic in it).
trait Side {}
impl Side for ServerConnectionData {}
impl Side for ClientConnectionData {}

fn deal<Data: Side>(
    status: UnbufferedStatus<'_, '_, Data>,
    control: &mut Vec<u8>,
    ask: &mut Ask<'_>,
) -> (usize, io::Result<Reached>) {
    let UnbufferedStatus { discard, state } = status;
    let state = match state {
        Ok(state) => state,
        Err(e) => return (discard, Err(io::Error::new(io::ErrorKind::InvalidData, e))),
    };
    let reached = match state {
        ConnectionState::ReadTraffic(mut records) => {
            let Ask::Open { into, spill } = ask else {
                // The receiver takes every record's plaintext in the call
                // that opened it, so no one else ever meets this state.
                return (
                    discard,
                    Err(io::Error::other(
                        "TLS plaintext left unread by the receiver",
                    )),
                );
            };
            while let Some(record) = records.next_record() {
                let record = match record {
                    Ok(r) => r,
                    Err(e) => return (discard, Err(io::Error::new(io::ErrorKind::InvalidData, e))),
                };
                if let Err(e) = keep(into, spill, record.payload) {
                    return (discard, Err(e));
                }
            }
            Ok(Reached::Moved)
        }
        ConnectionState::EncodeTlsData(mut data) => {
            // Records rustls writes of its own go ahead of whatever is
            // sealed now: into the same buffer, first, when sealing.
            let encoded = match ask {
                Ask::Seal { out, .. } | Ask::CloseNotify { out } => encode(out, &mut data),
                Ask::Open { .. } => {
                    let mut written = 0;
                    encode(&mut Tail::new(control, &mut written), &mut data)
                }
            };
            encoded.map(|()| Reached::Moved)
        }
        // What was encoded sits in `control`, which goes out before any
        // record sealed later: it counts as sent from here on.
        ConnectionState::TransmitTlsData(data) => {
            data.done();
            Ok(Reached::Moved)
        }
        ConnectionState::BlockedHandshake => Ok(Reached::Blocked),
        ConnectionState::WriteTraffic(mut traffic) => match ask {
            Ask::Open { .. } => Ok(Reached::Idle),
            Ask::Seal { parts, out } => {
                let mut sealed = Ok(());
                for part in parts.iter().filter(|p| !p.is_empty()) {
                    sealed = out.write(
                        super::records::sealed_len(part.len()),
                        |room| traffic.encrypt(part, room),
                        encrypt_needs,
                    );
                    if sealed.is_err() {
                        break;
                    }
                }
                sealed.map(|()| Reached::Idle)
            }
            Ask::CloseNotify { out } => out
                .write(64, |room| traffic.queue_close_notify(room), encrypt_needs)
                .map(|()| Reached::Idle),
        },
        ConnectionState::PeerClosed => Ok(Reached::PeerClosed),
        ConnectionState::Closed => Ok(Reached::Closed),
        // Early data is never accepted (no server config enables it), and
        // a state rustls adds later is one this code does not know.
        _ => Err(io::Error::other("unexpected TLS session state")),
    };
    (discard, reached)
}

/// Writes what rustls has to send of its own at `tail`'s end.
fn encode<Data>(tail: &mut Tail<'_>, data: &mut EncodeTlsData<'_, Data>) -> io::Result<()> {
    // Handshake flights are a few KiB; a larger one says so.
    tail.write(
        4096,
        |room| data.encode(room),
        |e| match e {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            EncodeError::AlreadyEncoded => None,
        },
    )
}

/// The room an encryption said it lacked.
fn encrypt_needs(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

/// Puts `plain` in `into`, what does not fit in `spill` (a record never
/// exceeds an empty block).
pub(super) fn keep(
    into: &mut Option<Filling>,
    spill: &mut Option<Filling>,
    plain: &[u8],
) -> io::Result<()> {
    let taken = into.get_or_insert_with(Filling::new).push(plain);
    if taken < plain.len() {
        let rest = spill.get_or_insert_with(Filling::new);
        if rest.push(&plain[taken..]) < plain.len() - taken {
            return Err(io::Error::other("TLS plaintext overflow"));
        }
    }
    Ok(())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
