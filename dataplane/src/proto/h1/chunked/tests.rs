use super::*;

/// What feeding a body produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) payload: Vec<u8>,
    pub(crate) consumed: usize,
    pub(crate) done: bool,
    pub(crate) error: Option<ChunkError>,
}

/// Feeds `input` in pieces cut at `cuts` (ascending), as a session would:
/// each piece until it is used up, the body is done, or an error.
pub(crate) fn run(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut out = Outcome {
        payload: Vec::new(),
        consumed: 0,
        done: false,
        error: None,
    };
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let end = end.clamp(start, input.len());
        let mut piece = &input[start..end];
        start = end;
        loop {
            match d.feed(piece) {
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
                Ok(step) => {
                    assert!(step.consumed <= piece.len());
                    if let Some(r) = step.data.clone() {
                        assert_eq!(r, 0..step.consumed);
                        out.payload.extend_from_slice(&piece[r]);
                    }
                    out.consumed += step.consumed;
                    piece = &piece[step.consumed..];
                    if step.done {
                        assert!(d.is_done());
                        out.done = true;
                        return out;
                    }
                    if piece.is_empty() {
                        break;
                    }
                    assert!(step.consumed > 0, "no progress");
                }
            }
        }
    }
    assert_eq!(d.payload_bytes(), out.payload.len() as u64);
    out
}

fn whole(input: &[u8]) -> Outcome {
    run(input, &[])
}

fn byte_by_byte(input: &[u8]) -> Outcome {
    let cuts: Vec<usize> = (1..input.len()).collect();
    run(input, &cuts)
}

/// Whole, byte by byte, and cut once at every position agree (on the
/// consumed total too unless the body was refused: the failing call does
/// not report what it consumed).
pub(crate) fn agree(input: &[u8]) -> Outcome {
    let w = whole(input);
    let same = |o: &Outcome| {
        assert_eq!(o.payload, w.payload);
        assert_eq!(o.done, w.done);
        assert_eq!(o.error, w.error);
        if w.error.is_none() {
            assert_eq!(o.consumed, w.consumed);
        }
    };
    same(&byte_by_byte(input));
    for k in 0..=input.len() {
        same(&run(input, &[k]));
    }
    w
}

const BODY: &[u8] =
    b"5\r\nhello\r\n1A;name=value;q=\"a \\\" b\" ; flag\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";

#[test]
fn whole_split_and_bytewise_agree() {
    let o = agree(BODY);
    assert_eq!(o.payload, b"helloabcdefghijklmnopqrstuvwxyz");
    assert!(o.done);
    assert_eq!(o.consumed, BODY.len());
    assert_eq!(o.error, None);
}

#[test]
fn bytes_after_the_body_are_not_consumed() {
    let mut input = BODY.to_vec();
    input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let o = agree(&input);
    assert!(o.done);
    assert_eq!(o.consumed, BODY.len());
    // A done decoder consumes nothing more.
    let mut d = ChunkedDecoder::new();
    let mut at = 0;
    while !d.is_done() {
        at += d.feed(&input[at..]).unwrap().consumed;
    }
    assert_eq!(
        d.feed(b"more").unwrap(),
        Step {
            consumed: 0,
            data: None,
            done: true
        }
    );
}

#[test]
fn steps_are_segments() {
    let mut d = ChunkedDecoder::default();
    let input = b"3\r\nabc\r\n0\r\n\r\nX";
    assert_eq!(
        d.feed(input).unwrap(),
        Step {
            consumed: 3,
            data: None,
            done: false
        }
    );
    assert_eq!(
        d.feed(&input[3..]).unwrap(),
        Step {
            consumed: 3,
            data: Some(0..3),
            done: false
        }
    );
    assert_eq!(
        d.feed(&input[6..]).unwrap(),
        Step {
            consumed: 7,
            data: None,
            done: true
        }
    );
    assert_eq!(d.payload_bytes(), 3);
    assert!(d.is_done());
    assert_eq!(
        ChunkedDecoder::new().feed(b"").unwrap(),
        Step {
            consumed: 0,
            data: None,
            done: false
        }
    );
}

#[test]
fn trailers() {
    let input = b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\nnext";
    let o = agree(input);
    assert!(o.done);
    assert_eq!(o.payload, b"hi");
    assert_eq!(o.consumed, input.len() - 4);
}

#[test]
fn empty_body_and_uppercase_hex_and_leading_zeros() {
    assert!(agree(b"0\r\n\r\n").done);
    let o = agree(b"000A\r\n0123456789\r\n0000\r\n\r\n");
    assert_eq!(o.payload, b"0123456789");
    assert!(o.done);
}

#[test]
fn sixteen_digit_size_does_not_overflow() {
    let mut d = ChunkedDecoder::new();
    let step = d.feed(b"ffffffffffffffff\r\n").unwrap();
    assert_eq!(step.consumed, 18);
    let step = d.feed(&[7u8; 100]).unwrap();
    assert_eq!(step.data, Some(0..100));
    assert_eq!(d.payload_bytes(), 100);
    assert!(!d.is_done());
}

fn fails(input: &[u8], e: ChunkError) {
    let o = agree(input);
    assert_eq!(o.error, Some(e), "{:?}", String::from_utf8_lossy(input));
    assert!(!o.done);
}

#[test]
fn size_errors() {
    fails(b"\r\n", ChunkError::SizeNotHex);
    fails(b"g\r\n", ChunkError::SizeNotHex);
    fails(b"1g\r\n", ChunkError::SizeNotHex);
    fails(b"-1\r\n", ChunkError::SizeNotHex);
    fails(b"+1\r\n", ChunkError::SizeNotHex);
    fails(b"0x5\r\n", ChunkError::SizeNotHex);
    fails(b" 5\r\n", ChunkError::SizeNotHex);
    fails(b"00000000000000001\r\n", ChunkError::SizeTooBig);
    fails(b"10000000000000000\r\n", ChunkError::SizeTooBig);
}

#[test]
fn line_ending_errors() {
    fails(b"5\nhello\r\n0\r\n\r\n", ChunkError::BadLineEnding);
    fails(b"5\rhello\r\n", ChunkError::BadLineEnding);
    fails(b"5;a\nhello", ChunkError::BadLineEnding);
    fails(b"0\r\n\n", ChunkError::BadLineEnding);
    fails(b"0\r\n\rX", ChunkError::BadLineEnding);
    fails(b"0\r\nA: b\n\r\n", ChunkError::BadLineEnding);
    fails(b"0\r\nA: b\rX", ChunkError::BadLineEnding);
}

#[test]
fn extension_errors() {
    for input in [
        &b"5 \r\n"[..],
        b"5;\r\n",
        b"5;=x\r\n",
        b"5;a=\r\n",
        b"5;a b\r\n",
        b"5;a=\"x\r\n",
        b"5;a=\"x\"y\r\n",
        b"5;a=b c\r\n",
        b"5;a=b \r\n",
        b"5;a\x01\r\n",
        b"5;a=\"\x01\"\r\n",
        b"5;a=\"\\\x01\"\r\n",
        b"5;a=(\r\n",
    ] {
        fails(input, ChunkError::BadExtension);
    }
    // Accepted shapes: BWS around ';' and '=', quoted with escapes.
    let o = agree(b"1 ; a = b ;c=\"\\\"x\\\\\";d\r\nZ\r\n0\r\n\r\n");
    assert!(o.done, "{o:?}");
}

#[test]
fn size_line_length_limit() {
    let mut line = b"1;a=".to_vec();
    line.resize(MAX_SIZE_LINE, b'b');
    line.extend_from_slice(b"\r\nZ\r\n0\r\n\r\n");
    assert!(agree(&line).done);
    let mut line = b"1;a=".to_vec();
    line.resize(MAX_SIZE_LINE + 1, b'b');
    line.extend_from_slice(b"\r\n");
    fails(&line, ChunkError::LineTooLong);
}

#[test]
fn data_must_end_in_crlf() {
    fails(b"5\r\nhelloX\r\n", ChunkError::MissingDataCrlf);
    fails(b"5\r\nhello\rX", ChunkError::MissingDataCrlf);
    fails(b"5\r\nhello\n0\r\n\r\n", ChunkError::MissingDataCrlf);
    fails(b"5\r\nhello world\r\n", ChunkError::MissingDataCrlf);
}

#[test]
fn trailer_errors() {
    let t = |s: &[u8], d: &'static str| {
        let input = [&b"0\r\n"[..], s].concat();
        fails(&input, ChunkError::BadTrailer(d));
    };
    t(b"A: 1\r\n 2\r\n\r\n", "obsolete line folding");
    t(b"A : 1\r\n\r\n", "whitespace in or after a field name");
    t(b"A: a\0b\r\n\r\n", "NUL in a field value");
    t(b"A: a\x01b\r\n\r\n", "invalid character in a field value");
    t(b": 1\r\n\r\n", "empty field name");
    t(b"A(B): 1\r\n\r\n", "invalid character in a field name");
    t(b"NoColon\r\n\r\n", "field line without a colon");
}

#[test]
fn trailer_size_limit() {
    // The trailer section is everything after "0\r\n": exactly the limit.
    let mut input = b"0\r\nA: ".to_vec();
    input.resize(MAX_TRAILER_BYTES - 1, b'v');
    input.extend_from_slice(b"\r\n\r\n");
    assert!(whole(&input).done);
    let mut input = b"0\r\nA: ".to_vec();
    input.resize(MAX_TRAILER_BYTES, b'v');
    input.extend_from_slice(b"\r\n\r\n");
    assert_eq!(whole(&input).error, Some(ChunkError::TrailerTooLarge));
}

#[test]
fn errors_are_sticky_and_readable() {
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.feed(b"z"), Err(ChunkError::SizeNotHex));
    assert_eq!(d.feed(b"0\r\n\r\n"), Err(ChunkError::SizeNotHex));
    assert!(!d.is_done());
    assert_eq!(
        ChunkError::BadTrailer("NUL in a field value").to_string(),
        "malformed trailer field: NUL in a field value"
    );
    assert_eq!(
        ChunkError::SizeTooBig.to_string(),
        "chunk size has more than 16 hex digits"
    );
}
