//! The chunked decoder never panics, never consumes past the body, and
//! feeding the input in pieces gives the same payload, end and error as
//! feeding it whole.
#![no_main]

use dataplane::proto::h1::chunked::{ChunkError, ChunkedDecoder};
use libfuzzer_sys::fuzz_target;

mod split;

struct Outcome {
    payload: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<ChunkError>,
}

fn run(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut out = Outcome {
        payload: Vec::new(),
        consumed: 0,
        done: false,
        error: None,
    };
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let mut piece = &input[start..end.max(start)];
        start = end.max(start);
        loop {
            match d.feed(piece) {
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
                Ok(step) => {
                    assert!(step.consumed <= piece.len());
                    if let Some(r) = step.data {
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

fuzz_target!(|data: &[u8]| {
    let whole = run(data, &[]);
    let seed = split::seed(data);
    let split = run(data, &split::points(seed, data.len()));
    assert_eq!(split.payload, whole.payload);
    assert_eq!(split.done, whole.done);
    assert_eq!(split.error, whole.error);
    if whole.error.is_none() {
        assert_eq!(split.consumed, whole.consumed);
    }
    // Byte by byte on short inputs: the most state carried between calls.
    if data.len() <= 512 {
        let cuts: Vec<usize> = (1..data.len()).collect();
        let bytewise = run(data, &cuts);
        assert_eq!(bytewise.payload, whole.payload);
        assert_eq!((bytewise.done, bytewise.error), (whole.done, whole.error));
    }
});
