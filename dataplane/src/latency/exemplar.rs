//! The exemplar of a histogram: the trace id, duration and time of the
//! last traced request it counted, so a scraper can go from a bucket to a
//! trace that fell in it.
//!
//! One slot per worker per series, written by its worker alone and read
//! by the agent at any time: a sequence count around the fields (odd while
//! a write is under way) lets the reader tell a torn read and try again,
//! and the writer never waits. Only traced requests write it.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// The last traced request a histogram counted.
#[derive(Debug, Default)]
pub struct Exemplar {
    /// Even when the fields are whole; odd during a write.
    seq: AtomicU64,
    trace_high: AtomicU64,
    trace_low: AtomicU64,
    /// The duration in nanoseconds.
    value_ns: AtomicU64,
    /// The bucket (low 8 bits) and when, in milliseconds since the Unix
    /// epoch (the rest).
    bucket_and_ms: AtomicU64,
}

/// A copy of an [`Exemplar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExemplarCopy {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The duration, in nanoseconds.
    pub value_ns: u64,
    /// The bucket it fell in.
    pub bucket: usize,
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

impl Exemplar {
    /// Notes a traced request of `value_ns` in `bucket` at `unix_ms`. Only
    /// the owning worker calls this.
    #[inline]
    pub fn set(&self, trace_id: [u8; 16], value_ns: u64, bucket: usize, unix_ms: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let (high, low) = trace_id.split_at(8);
        let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        self.trace_high.store(word(high), Ordering::Relaxed);
        self.trace_low.store(word(low), Ordering::Relaxed);
        self.value_ns.store(value_ns, Ordering::Relaxed);
        self.bucket_and_ms
            .store((unix_ms << 8) | (bucket as u64 & 0xff), Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The last request noted, if any; `None` too when every try met a
    /// write under way (the next scrape will see it).
    pub fn get(&self) -> Option<ExemplarCopy> {
        for _ in 0..4 {
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let high = self.trace_high.load(Ordering::Relaxed);
            let low = self.trace_low.load(Ordering::Relaxed);
            let value_ns = self.value_ns.load(Ordering::Relaxed);
            let bucket_and_ms = self.bucket_and_ms.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            let mut trace_id = [0; 16];
            trace_id[..8].copy_from_slice(&high.to_be_bytes());
            trace_id[8..].copy_from_slice(&low.to_be_bytes());
            return Some(ExemplarCopy {
                trace_id,
                value_ns,
                bucket: (bucket_and_ms & 0xff) as usize,
                unix_ms: bucket_and_ms >> 8,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_last_request_noted_reads_back() {
        let e = Exemplar::default();
        assert_eq!(e.get(), None);
        e.set([1; 16], 5, 3, 1_700_000_000_000);
        e.set([2; 16], 7, 4, 1_700_000_000_001);
        let c = e.get().expect("an exemplar");
        assert_eq!(c.trace_id, [2; 16]);
        assert_eq!((c.value_ns, c.bucket, c.unix_ms), (7, 4, 1_700_000_000_001));
    }

    #[test]
    fn a_reader_never_sees_a_torn_exemplar() {
        let e = Arc::new(Exemplar::default());
        let writer = {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 1..200_000u64 {
                    let b = (i % 200) as u8;
                    e.set([b; 16], i, usize::from(b), i);
                }
            })
        };
        let mut seen = 0;
        while !writer.is_finished() {
            if let Some(c) = e.get() {
                let b = c.trace_id[0];
                assert!(c.trace_id.iter().all(|&x| x == b), "{c:?}");
                assert_eq!(c.bucket, usize::from(b));
                assert_eq!(c.value_ns, c.unix_ms);
                assert_eq!((c.value_ns % 200) as u8, b);
                seen += 1;
            }
        }
        writer.join().expect("the writer ends");
        assert!(e.get().is_some());
        let _ = seen;
    }
}
