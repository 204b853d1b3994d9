//! The receiving half of a TLS connection: ciphertext from the ring in,
//! plaintext blocks out (see the module above for where bytes live).

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::records;
use super::records13::Opened;
use super::session::{keep, Ask, Reached};
use super::spare;
use super::{Engine, State, TlsShared};
use crate::buf::{BufHandle, Filling};
use crate::rt::net::{Heard, RecvStream};

/// The most ciphertext the stage may hold: a handshake message of rustls's
/// largest (64 KiB) and the record it ends in. Past it the peer is
/// refused, whatever it claims to be sending.
const MAX_STAGE: usize = 64 * 1024 + 2 * (16 * 1024 + 256 + records::HEADER);

/// What one step did.
enum Step {
    /// Something: plaintext opened, bytes to send encoded, ciphertext
    /// moved. Step again.
    Moved,
    /// Nothing more can be done without more ciphertext.
    Starved,
}

/// The receiving half: plaintext, one block at a time.
#[derive(Debug)]
pub struct TlsReceiver {
    shared: Rc<TlsShared>,
    recv: RecvStream,
    /// A ring buffer received, not done with from this offset on.
    pending: Option<(BufHandle, usize)>,
    /// Plaintext opened and not handed out yet.
    ready: Option<Filling>,
    /// What of a record did not fit in `ready`: handed out next.
    spill: Option<Filling>,
    /// The peer closed its sending direction.
    eof: bool,
    /// rustls's last state was idle: the handshake (if over) left it
    /// nothing to send or to read.
    idle: bool,
    /// rustls took nothing more from a stage of whole records (it is
    /// joining a handshake message across them): the next record must be
    /// gathered behind them.
    stuck: bool,
}

impl TlsReceiver {
    /// The receiving half of `shared`, receiving through `recv`.
    pub fn new(shared: Rc<TlsShared>, recv: RecvStream) -> Self {
        Self {
            shared,
            recv,
            pending: None,
            ready: None,
            spill: None,
            eof: false,
            idle: false,
            stuck: false,
        }
    }

    /// Drives the handshake to its end: `Ready(Ok)` once it is over (at
    /// once if it was), an error if it failed or the peer left first.
    /// Application data that came with the handshake's last flight waits
    /// for [`TlsReceiver::poll_next`].
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let done = match &self.shared.state.borrow().engine {
                Engine::Rustls(session) => !session.common().is_handshaking(),
                Engine::Own(_) | Engine::Spent => return Poll::Ready(Ok(())),
            };
            {
                let mut state = self.shared.state.borrow_mut();
                let flushed = self.shared.flush_now(&mut state);
                if done {
                    // The handshake succeeded. What follows it (session
                    // tickets going out, a peer that closes at once) is
                    // the connection's, and fails its first read or send,
                    // not the handshake.
                    if flushed.is_ok() && self.idle {
                        self.shared.hand_over(&mut state)?;
                    }
                    if flushed.is_err() || self.idle {
                        drop(state);
                        self.note_unread();
                        return Poll::Ready(Ok(()));
                    }
                } else {
                    flushed?;
                }
            }
            match self.step() {
                Ok(Step::Moved) => continue,
                Ok(Step::Starved) => {}
                Err(_) if done => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(e)),
            }
            if done {
                if self.idle {
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            if self.eof || self.shared.state.borrow().peer_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
            match self.recv.poll_next(cx) {
                Poll::Ready(Ok(Some(buf))) => self.pending = Some((buf, 0)),
                Poll::Ready(Ok(None)) => self.eof = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next block of plaintext; `Ok(None)` at the end (a close_notify,
    /// or the peer's close: HTTP's own framing tells a cut message).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<BufHandle>>> {
        loop {
            if self.spill.is_some() {
                return Poll::Ready(Ok(self.hand_out()));
            }
            match self.step() {
                Ok(Step::Moved) => {
                    if !self.next_fits() {
                        return Poll::Ready(Ok(self.hand_out()));
                    }
                    continue;
                }
                Ok(Step::Starved) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.room_for_more() {
                // A block with room for another record: what the kernel
                // has already received goes into it too, rather than each
                // ring buffer's plaintext going on in a send of its own.
                match self.recv.poll_next(cx) {
                    Poll::Ready(Ok(Some(buf))) => {
                        self.pending = Some((buf, 0));
                        continue;
                    }
                    Poll::Ready(Ok(None)) => self.eof = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if let Some(block) = self.hand_out() {
                return Poll::Ready(Ok(Some(block)));
            }
            {
                let mut state = self.shared.state.borrow_mut();
                if state.peer_closed {
                    return Poll::Ready(Ok(None));
                }
                if let Err(e) = self.shared.flush_now(&mut state) {
                    return Poll::Ready(Err(e));
                }
            }
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            match self.recv.poll_next(cx) {
                Poll::Ready(Ok(Some(buf))) => self.pending = Some((buf, 0)),
                Poll::Ready(Ok(None)) => self.eof = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.note_unread();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Hands the ciphertext in hand to whoever protects the records, once.
    fn step(&mut self) -> io::Result<Step> {
        if matches!(self.shared.state.borrow().engine, Engine::Own(_)) {
            return self.step_own();
        }
        self.step_rustls()
    }

    /// Opens the next record with ringway's own record layer.
    fn step_own(&mut self) -> io::Result<Step> {
        let Self {
            shared,
            pending,
            ready,
            spill,
            ..
        } = self;
        let mut state = shared.state.borrow_mut();
        let State {
            engine,
            stage,
            peer_closed,
            ..
        } = &mut *state;
        let Engine::Own(records) = engine else {
            return Ok(Step::Starved);
        };
        if *peer_closed {
            return Ok(Step::Starved);
        }
        if !stage.is_empty() {
            top_up(stage, pending, false, false)?;
        }
        let from_stage = !stage.is_empty();
        let bytes: &mut [u8] = if from_stage {
            &mut stage[..]
        } else if let Some((buf, at)) = pending.as_mut() {
            &mut buf.as_mut_slice()[*at..]
        } else {
            return Ok(Step::Starved);
        };
        let len = match records.open(bytes)? {
            Opened::Partial => {
                if from_stage {
                    // The stage's record needs more than the ring buffer
                    // in hand had (or none is in hand).
                    return Ok(if pending.is_some() {
                        Step::Moved
                    } else {
                        Step::Starved
                    });
                }
                // A record split at the ring buffer's end: its start waits
                // in the stage for the rest.
                if let Some((buf, at)) = pending.take() {
                    if stage.capacity() == 0 {
                        *stage = spare::stage();
                    }
                    stage.extend_from_slice(&buf.as_slice()[at..]);
                }
                return Ok(Step::Starved);
            }
            Opened::Data { len, plain } => {
                keep(ready, spill, &bytes[plain])?;
                len
            }
            Opened::Nothing { len } => len,
            Opened::Closed { len } => {
                *peer_closed = true;
                len
            }
        };
        if from_stage {
            stage.drain(..len);
            if stage.is_empty() {
                spare::give_back_stage(std::mem::take(stage));
            }
        } else if let Some((buf, at)) = pending.as_mut() {
            *at += len;
            if *at == buf.len() {
                *pending = None;
            }
        }
        Ok(Step::Moved)
    }

    /// Hands rustls the ciphertext in hand once and deals with what it
    /// reached.
    fn step_rustls(&mut self) -> io::Result<Step> {
        let Self {
            shared,
            pending,
            ready,
            spill,
            idle,
            stuck,
            ..
        } = self;
        let mut state = shared.state.borrow_mut();
        let State {
            engine,
            control,
            stage,
            peer_closed,
        } = &mut *state;
        let Engine::Rustls(session) = engine else {
            return Err(io::Error::other("the TLS session failed"));
        };
        let handshaking = session.common().is_handshaking();
        if !stage.is_empty() || (handshaking && pending.is_some()) {
            top_up(stage, pending, handshaking, *stuck)?;
        }
        let mut ask = Ask::Open { into: ready, spill };
        let from_stage = !stage.is_empty();
        let (discard, reached) = if from_stage {
            session.advance(&mut stage[..], control, &mut ask)
        } else if let Some((buf, at)) = pending.as_mut() {
            session.advance(&mut buf.as_mut_slice()[*at..], control, &mut ask)
        } else {
            session.advance(&mut [], control, &mut ask)
        };
        if from_stage {
            stage.drain(..discard);
        } else if let Some((buf, at)) = pending.as_mut() {
            *at += discard;
            if *at == buf.len() {
                *pending = None;
            }
        }
        *idle = matches!(reached, Ok(Reached::Idle));
        *stuck = from_stage
            && !stage.is_empty()
            && matches!(
                reached,
                Ok(Reached::Idle | Reached::Blocked | Reached::Closed)
            );
        let reached = match reached {
            Ok(r) => r,
            Err(e) => {
                // The alert rustls queued for the peer goes before the
                // close: when one is queued, it is the first thing the
                // next call hands out, before rustls looks at any record
                // again. Then rustls is never called again: a failed
                // session does not fail twice.
                if session.common().wants_write() {
                    let (_, _) = session.advance(&mut stage[..], control, &mut ask);
                }
                *engine = Engine::Spent;
                let _ = shared.flush_now(&mut state);
                return Err(e);
            }
        };
        let step = match reached {
            Reached::Moved => Step::Moved,
            Reached::PeerClosed => {
                *peer_closed = true;
                Step::Moved
            }
            Reached::Idle | Reached::Blocked | Reached::Closed => {
                if from_stage {
                    // The stage's records are done with; more of the ring
                    // buffer in hand may complete the next.
                    if pending.is_some() {
                        Step::Moved
                    } else {
                        Step::Starved
                    }
                } else if let Some((buf, at)) = pending.take() {
                    // A record split at the ring buffer's end: its start
                    // waits in the stage for the rest.
                    if stage.capacity() == 0 {
                        *stage = spare::stage();
                    }
                    stage.extend_from_slice(&buf.as_slice()[at..]);
                    Step::Starved
                } else {
                    Step::Starved
                }
            }
        };
        if stage.is_empty() && stage.capacity() > 0 {
            spare::give_back_stage(std::mem::take(stage));
        }
        Ok(step)
    }

    /// Whether the next record in hand surely fits in the block being
    /// filled (its ciphertext is longer than its plaintext); a record not
    /// in hand yet waits for the next read anyway.
    fn next_fits(&self) -> bool {
        let Some(ready) = &self.ready else {
            return true;
        };
        let state = self.shared.state.borrow();
        let next = if state.stage.is_empty() {
            self.pending
                .as_ref()
                .and_then(|(buf, at)| records::first_len(&buf.as_slice()[*at..]))
        } else {
            records::first_len(&state.stage)
        };
        match next {
            Some(len) => len <= ready.room(),
            None => self.pending.is_some() || !state.stage.is_empty(),
        }
    }

    /// Whether the block being filled has plaintext and room for another
    /// whole record, and the stream may bring one.
    fn room_for_more(&self) -> bool {
        self.ready
            .as_ref()
            .is_some_and(|r| !r.is_empty() && r.room() >= records::MAX_RECORD)
            && self.spill.is_none()
            && !self.eof
            && !self.shared.state.borrow().peer_closed
    }

    /// The plaintext opened so far, if any.
    fn hand_out(&mut self) -> Option<BufHandle> {
        let ready = self.ready.take()?;
        self.ready = self.spill.take();
        self.note_unread();
        (!ready.is_empty()).then(|| ready.into_handle())
    }

    /// Tells the sending half whether this half holds bytes no one has
    /// read (see [`super::bytes_waiting`]).
    fn note_unread(&self) {
        self.shared.unread.set(self.holds_bytes());
    }

    /// Whether ciphertext or plaintext is in hand that no one has read.
    fn holds_bytes(&self) -> bool {
        self.pending.is_some()
            || !self.shared.state.borrow().stage.is_empty()
            || self.ready.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// What the connection heard while idle: leftover ciphertext or
    /// plaintext are bytes no request asked for.
    pub fn heard(&mut self) -> Heard {
        if self.holds_bytes() {
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

/// Moves ciphertext from the ring buffer in hand to the stage: during the
/// handshake all of it (rustls may join a handshake message across many
/// records, and needs them all in one slice); after it, only what
/// completes the record split between them, so that the records after it
/// are opened in the ring buffer itself. A stage of whole records takes
/// nothing more (it is opened first, then the ring buffer in place),
/// unless rustls is `stuck` on it, joining a message: then the next record.
fn top_up(
    stage: &mut Vec<u8>,
    pending: &mut Option<(BufHandle, usize)>,
    handshaking: bool,
    stuck: bool,
) -> io::Result<()> {
    let Some((buf, at)) = pending.as_mut() else {
        return Ok(());
    };
    let next = &buf.as_slice()[*at..];
    let take = if handshaking {
        next.len()
    } else if !stuck && records::whole(stage) {
        0
    } else {
        records::to_complete(stage, next)
    };
    if stage.len() + take > MAX_STAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "TLS record or handshake message larger than any allowed",
        ));
    }
    if stage.capacity() == 0 {
        *stage = spare::stage();
    }
    stage.extend_from_slice(&next[..take]);
    *at += take;
    if *at == buf.len() {
        *pending = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: u16) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&len.to_be_bytes());
        r.resize(records::HEADER + usize::from(len), 0xaa);
        r
    }

    fn in_hand(bytes: &[u8]) -> Option<(BufHandle, usize)> {
        Some((BufHandle::owned(bytes.into()), 0))
    }

    #[test]
    fn a_stage_of_whole_records_takes_nothing_more_unless_stuck() {
        // Whole records staged (what a handshake's last flight left):
        // they are opened from the stage, the next ones in place.
        let mut stage: Vec<u8> = record(10).into_iter().chain(record(20)).collect();
        let before = stage.len();
        let mut pending = in_hand(&record(30));
        top_up(&mut stage, &mut pending, false, false).expect("fine");
        assert_eq!(stage.len(), before);
        assert_eq!(pending.as_ref().map(|(_, at)| *at), Some(0));
        // rustls joining a message across them: the next record comes in.
        top_up(&mut stage, &mut pending, false, true).expect("fine");
        assert_eq!(stage.len(), before + record(30).len());
        assert!(pending.is_none());
    }

    #[test]
    fn a_split_record_is_completed_and_no_more() {
        let next = record(40);
        let mut stage = record(100)[..60].to_vec();
        let rest_of_first = record(100).len() - 60;
        let mut hand: Vec<u8> = record(100)[60..].to_vec();
        hand.extend_from_slice(&next);
        let mut pending = in_hand(&hand);
        top_up(&mut stage, &mut pending, false, false).expect("fine");
        assert_eq!(stage.len(), record(100).len());
        assert_eq!(pending.as_ref().map(|(_, at)| *at), Some(rest_of_first));
        // During the handshake, everything.
        let mut stage = Vec::new();
        let mut pending = in_hand(&hand);
        top_up(&mut stage, &mut pending, true, false).expect("fine");
        assert_eq!(stage.len(), hand.len());
    }

    #[test]
    fn a_stage_past_any_allowed_size_is_refused() {
        let mut stage = vec![22, 3, 3, 0xff, 0xff];
        let big = vec![0u8; MAX_STAGE];
        let mut pending = in_hand(&big);
        assert!(top_up(&mut stage, &mut pending, true, false).is_err());
    }
}
