//! The chunked body decoder (RFC 9112 §7.1), without copying.
//!
//! The session forwards a chunked body verbatim; it only needs to know where
//! the body ends, which bytes were payload (to count them against its body
//! limit), and that the framing is sound, so that a peer cannot end the body
//! early or late in the eyes of one side only. The decoder therefore walks
//! the framing byte by byte and hands payload back as ranges of the input.

use std::ops::Range;

use super::chars::{is_ows, is_qdtext, is_tchar, is_value_byte};

#[cfg(test)]
pub(super) mod tests;

/// Longest chunk-size line, extensions included, CRLF excluded. Real
/// extensions are rare and short; the cap bounds the work a peer can force
/// without payload.
pub const MAX_SIZE_LINE: usize = 4096;

/// Largest trailer section, final CRLF included. Trailers are rare; 64 KiB
/// matches the usual head limits.
pub const MAX_TRAILER_BYTES: usize = 65536;

/// Most hex digits of a chunk size: 16 digits fill a u64, so the size never
/// overflows.
pub const MAX_SIZE_DIGITS: u8 = 16;

/// The state of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Payload bytes seen so far.
    payload: u64,
    /// Bytes of the current size line, or of the trailer section.
    count: usize,
}

/// What one call to [`ChunkedDecoder::feed`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input consumed (a prefix of it).
    pub consumed: usize,
    /// The range of the input that is payload, when this step consumed
    /// payload (then it is `0..consumed`).
    pub data: Option<Range<usize>>,
    /// The body's final CRLF was consumed.
    pub done: bool,
}

/// Why a chunked body was refused. After an error the decoder keeps
/// returning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A size line that does not start with a hex digit, or has a stray
    /// byte after the digits.
    #[error("chunk size is not a hexadecimal number")]
    SizeNotHex,
    /// More hex digits than fit a 64-bit size.
    #[error("chunk size has more than 16 hex digits")]
    SizeTooBig,
    /// A chunk extension that is not `;name[=token|"quoted"]`.
    #[error("malformed chunk extension")]
    BadExtension,
    /// A size line over [`MAX_SIZE_LINE`] bytes.
    #[error("chunk size line longer than 4096 bytes")]
    LineTooLong,
    /// A bare LF, or a CR not followed by LF, in the framing.
    #[error("chunk framing line does not end in CRLF")]
    BadLineEnding,
    /// Chunk data not followed by exactly CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingDataCrlf,
    /// A malformed trailer field line; the text says how.
    #[error("malformed trailer field: {0}")]
    BadTrailer(&'static str),
    /// A trailer section over [`MAX_TRAILER_BYTES`].
    #[error("trailer section larger than 65536 bytes")]
    TrailerTooLarge,
}

/// Where in the body the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line.
    Size { at: SizeAt, digits: u8, size: u64 },
    /// Inside chunk data, with this much left.
    Data(u64),
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// In the trailer section.
    Trailer(TrailerAt),
    /// The body is over.
    Done,
    /// The body was refused.
    Failed(ChunkError),
}

/// Position inside a size line: chunk-size [ chunk-ext ] CRLF, with
/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeAt {
    Digits,
    /// Whitespace after the digits: only more of it or ';' may follow.
    SizeBws,
    NameStart,
    Name,
    NameBws,
    ValueStart,
    Token,
    Quoted,
    QuotedEscape,
    /// Right after a closing quote.
    Closed,
    ValueBws,
    /// Saw CR, expecting LF.
    Lf,
}

/// Position inside the trailer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrailerAt {
    LineStart,
    Name,
    Value,
    ValueLf,
    /// Saw the CR of the empty line that ends the body.
    EndLf,
}

const NEW_LINE: State = State::Size {
    at: SizeAt::Digits,
    digits: 0,
    size: 0,
};

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self {
            state: NEW_LINE,
            payload: 0,
            count: 0,
        }
    }

    /// Consumes a prefix of `input`: either payload bytes (then `data` is
    /// their range) or framing (size lines, the CRLF after a chunk,
    /// trailers) up to the next payload or the end of the input. `done` once
    /// the body's final CRLF was consumed; a byte past the end of the body is
    /// never consumed (it belongs to the next message). Partial lines are
    /// kept in the state, so bytes are never resent. Call repeatedly until
    /// the input is used up or `done`.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut i = 0;
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => {
                    return Ok(Step {
                        consumed: i,
                        data: None,
                        done: true,
                    })
                }
                State::Data(left) => {
                    // Payload gets a step of its own so `data` is one range.
                    if i > 0 || input.is_empty() {
                        return Ok(Step {
                            consumed: i,
                            data: None,
                            done: false,
                        });
                    }
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    let n64 = n as u64;
                    self.payload = self.payload.saturating_add(n64);
                    self.state = if left == n64 {
                        State::DataCr
                    } else {
                        State::Data(left - n64)
                    };
                    return Ok(Step {
                        consumed: n,
                        data: Some(0..n),
                        done: false,
                    });
                }
                _ => {
                    let Some(&b) = input.get(i) else {
                        return Ok(Step {
                            consumed: i,
                            data: None,
                            done: false,
                        });
                    };
                    i += 1;
                    if let Err(e) = self.framing(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Payload bytes seen so far (the session counts them against its body
    /// limit).
    pub fn payload_bytes(&self) -> u64 {
        self.payload
    }

    /// Whether the whole body went by.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes one framing byte.
    fn framing(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { at, digits, size } => return self.size_line(b, at, digits, size),
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => NEW_LINE,
            State::DataCr | State::DataLf => return Err(ChunkError::MissingDataCrlf),
            State::Trailer(at) => {
                self.count += 1;
                if self.count > MAX_TRAILER_BYTES {
                    return Err(ChunkError::TrailerTooLarge);
                }
                trailer(b, at)?
            }
            // `feed` handles these without calling here.
            s @ (State::Data(_) | State::Done | State::Failed(_)) => s,
        };
        Ok(())
    }

    fn size_line(&mut self, b: u8, at: SizeAt, digits: u8, size: u64) -> Result<(), ChunkError> {
        use SizeAt::*;
        if at != Lf && b != b'\r' {
            self.count += 1;
            if self.count > MAX_SIZE_LINE {
                return Err(ChunkError::LineTooLong);
            }
        }
        if b == b'\n' && at != Lf {
            return Err(ChunkError::BadLineEnding);
        }
        let next = match (at, b) {
            (Digits, _) if b.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(ChunkError::SizeTooBig);
                }
                let d = (b as char).to_digit(16).unwrap_or(0);
                self.state = State::Size {
                    at,
                    digits: digits + 1,
                    size: size << 4 | u64::from(d),
                };
                return Ok(());
            }
            (Digits, _) if digits == 0 => return Err(ChunkError::SizeNotHex),
            (Digits | SizeBws, b' ' | b'\t') => SizeBws,
            (Digits | SizeBws | Name | NameBws | Token | Closed | ValueBws, b';') => NameStart,
            (NameStart, _) if is_ows(b) => NameStart,
            (NameStart | Name, _) if is_tchar(b) => Name,
            (Name | NameBws, _) if is_ows(b) => NameBws,
            (Name | NameBws, b'=') => ValueStart,
            (ValueStart, _) if is_ows(b) => ValueStart,
            (ValueStart, b'"') => Quoted,
            (ValueStart | Token, _) if is_tchar(b) => Token,
            (Token | Closed | ValueBws, _) if is_ows(b) => ValueBws,
            (Quoted, b'"') => Closed,
            (Quoted, b'\\') => QuotedEscape,
            (Quoted, _) if is_qdtext(b) => Quoted,
            (QuotedEscape, _)
                if b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80 =>
            {
                Quoted
            }
            (Digits | Name | Token | Closed, b'\r') => Lf,
            (Lf, b'\n') => {
                self.count = 0;
                self.state = if size == 0 {
                    State::Trailer(TrailerAt::LineStart)
                } else {
                    State::Data(size)
                };
                return Ok(());
            }
            (Lf, _) => return Err(ChunkError::BadLineEnding),
            (Digits, _) => return Err(ChunkError::SizeNotHex),
            _ => return Err(ChunkError::BadExtension),
        };
        self.state = State::Size {
            at: next,
            digits,
            size,
        };
        Ok(())
    }
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// One byte of the trailer section: field lines as in a head, then CRLF.
fn trailer(b: u8, at: TrailerAt) -> Result<State, ChunkError> {
    use TrailerAt::*;
    let bad = |d| Err(ChunkError::BadTrailer(d));
    let next = match (at, b) {
        (LineStart, b'\r') => EndLf,
        (EndLf | ValueLf, b'\n') if at == EndLf => return Ok(State::Done),
        (ValueLf, b'\n') => LineStart,
        (EndLf | ValueLf, _) | (_, b'\n') => return Err(ChunkError::BadLineEnding),
        (LineStart, b' ' | b'\t') => return bad("obsolete line folding"),
        (LineStart, b':') => return bad("empty field name"),
        (LineStart | Name, _) if is_tchar(b) => Name,
        (Name, b':') => Value,
        (Name, b' ' | b'\t') => return bad("whitespace in or after a field name"),
        (Name, b'\r') => return bad("field line without a colon"),
        (LineStart | Name, _) => return bad("invalid character in a field name"),
        (Value, b'\r') => ValueLf,
        (Value, 0) => return bad("NUL in a field value"),
        (Value, _) if is_value_byte(b) => Value,
        (Value, _) => return bad("invalid character in a field value"),
    };
    Ok(State::Trailer(next))
}
