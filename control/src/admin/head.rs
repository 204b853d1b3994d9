//! The request heads of one admin connection as the client sent them,
//! checked for what hyper would quietly smooth over.
//!
//! hyper takes a request with both `Content-Length` and `Transfer-Encoding`
//! by dropping the length and reading chunks (RFC 9112 allows it), so the
//! request it hands over no longer shows the conflict. Such a request is the
//! classic smuggling vector, and the admin API refuses it. [`Heads`] sees
//! the bytes hyper reads, finds where each head begins and ends, and tells
//! what it holds. It is sans-IO: bytes in, verdicts out.
//!
//! To find where the next head begins it must know where a body ends: a
//! `Content-Length` body is counted out, and after a chunked body (rare on
//! the admin API) it stops looking; the connection is closed after that
//! request's answer, so no head follows unchecked.

/// hyper's largest read buffer (its default `max_buf_size`, 8 KiB + 100
/// times 4 KiB): hyper refuses a head that does not fit, so the bytes of a
/// longer one are never needed.
const MAX_HEAD: usize = 8192 + 4096 * 100;

/// The most header fields hyper accepts in a request (its default); a head
/// with more never reaches the service.
const MAX_FIELDS: usize = 100;

/// The bytes of the next request head(s), as read.
#[derive(Debug, Default)]
pub(super) struct Heads {
    /// From the start of the next head on.
    buf: Vec<u8>,
    /// Body bytes still to come before the next head.
    skip: u64,
    /// A chunked body came: heads can no longer be found.
    blind: bool,
    /// Bytes were left out for want of room: the heads after the one at the
    /// front can no longer be found.
    lost: bool,
}

/// What the head of the request hyper just handed over holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Check {
    /// Nothing wrong; the connection may serve another request.
    Clean,
    /// Nothing wrong, but the body is chunked: close after answering.
    CloseAfter,
    /// `Content-Length` and `Transfer-Encoding` together.
    Conflict,
    /// The head could not be found or read again (hyper read it, so this
    /// means the two parsers disagree): answer 400 and close.
    Unreadable(String),
}

impl Heads {
    /// Takes in bytes read from the client, in order.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if self.blind {
            return;
        }
        let skipped = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
        self.skip -= skipped as u64;
        let rest = &bytes[skipped..];
        let room = MAX_HEAD.saturating_sub(self.buf.len());
        self.lost |= rest.len() > room;
        self.buf.extend_from_slice(&rest[..rest.len().min(room)]);
    }

    /// Whether bytes of a next request have come (blank lines before a
    /// request line do not count, as HTTP/1.1 says to ignore them).
    pub(super) fn started(&self) -> bool {
        !self.blind && self.buf.iter().any(|&b| b != b'\r' && b != b'\n')
    }

    /// Checks the head at the front, the one hyper has just parsed, and
    /// moves past it and its body.
    pub(super) fn next(&mut self) -> Check {
        if self.blind {
            return Check::Unreadable("a request followed a chunked body".to_owned());
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut request = httparse::Request::new(&mut fields);
        let end = match request.parse(&self.buf) {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) => {
                return Check::Unreadable("the request head is not complete".to_owned())
            }
            Err(e) => return Check::Unreadable(format!("the request head does not parse: {e}")),
        };
        let mut length: Option<&[u8]> = None;
        let mut chunked = false;
        for field in request.headers.iter() {
            if field.name.eq_ignore_ascii_case("content-length") {
                length.get_or_insert(field.value);
            } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            }
        }
        let mut check = match (length, chunked) {
            (Some(_), true) => {
                self.blind = true;
                Check::Conflict
            }
            (None, true) => {
                self.blind = true;
                Check::CloseAfter
            }
            (Some(value), false) => match parse_length(value) {
                Some(length) => {
                    self.skip = length;
                    Check::Clean
                }
                None => {
                    self.blind = true;
                    Check::Unreadable("its Content-Length is not a number".to_owned())
                }
            },
            (None, false) => Check::Clean,
        };
        if self.lost && check == Check::Clean {
            // Only pipelined requests fill the buffer; answer this one and
            // close rather than check the next against a gap.
            self.blind = true;
            check = Check::CloseAfter;
        }
        self.buf.drain(..end);
        if !self.blind {
            let rest = std::mem::take(&mut self.buf);
            self.feed(&rest);
        } else {
            self.buf.clear();
        }
        check
    }
}

/// A `Content-Length` value: decimal digits only, as hyper requires.
fn parse_length(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(bytes: &[u8]) -> Heads {
        let mut heads = Heads::default();
        heads.feed(bytes);
        heads
    }

    #[test]
    fn length_and_chunked_together_conflict_in_either_order() {
        for head in [
            "POST /config HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /config HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
        ] {
            assert_eq!(fed(head.as_bytes()).next(), Check::Conflict, "{head:?}");
        }
    }

    #[test]
    fn heads_are_found_after_length_bodies_split_anyhow() {
        let stream = b"\r\nGET /healthz HTTP/1.1\r\n\r\n\
            POST /config HTTP/1.1\r\nContent-Length: 11\r\n\r\nGET / HTTP/\
            GET /ready HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        for split in [1, 7, 30, 64, stream.len()] {
            let mut heads = Heads::default();
            let mut checks = Vec::new();
            for piece in stream.chunks(split) {
                heads.feed(piece);
            }
            for _ in 0..3 {
                checks.push(heads.next());
            }
            assert_eq!(
                checks,
                [Check::Clean, Check::Clean, Check::Conflict],
                "pieces of {split}"
            );
        }
    }

    #[test]
    fn body_bytes_that_arrive_later_are_skipped() {
        let mut heads = fed(b"PUT /clusters/a/endpoints HTTP/1.1\r\nContent-Length: 4\r\n\r\n[");
        assert_eq!(heads.next(), Check::Clean);
        assert!(!heads.started(), "only body bytes so far");
        heads.feed(b"\"\"]");
        assert!(!heads.started());
        heads.feed(b"GET /ready HTTP/1.1\r\n");
        assert!(heads.started());
    }

    #[test]
    fn a_chunked_body_ends_the_checks() {
        let mut heads =
            fed(b"POST /config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(heads.next(), Check::CloseAfter);
        heads.feed(b"GET /ready HTTP/1.1\r\n\r\n");
        assert!(!heads.started());
        assert!(matches!(heads.next(), Check::Unreadable(_)));
    }

    #[test]
    fn a_flood_of_pipelined_bytes_closes_after_the_first_request() {
        let mut heads = fed(b"GET /healthz HTTP/1.1\r\n\r\n");
        heads.feed(&vec![b'G'; MAX_HEAD]);
        assert_eq!(heads.next(), Check::CloseAfter);
        assert!(matches!(heads.next(), Check::Unreadable(_)));
    }

    #[test]
    fn blank_lines_do_not_start_a_request() {
        assert!(!fed(b"\r\n\r\n").started());
        assert!(fed(b"G").started());
    }

    #[test]
    fn a_head_that_is_not_there_is_unreadable() {
        assert!(matches!(
            fed(b"GET / HTTP/1.1\r\n").next(),
            Check::Unreadable(_)
        ));
        assert!(matches!(
            fed(b"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n").next(),
            Check::Unreadable(_)
        ));
    }
}
