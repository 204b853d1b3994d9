//! Access logs, off the hot path: a worker encodes each logged request as
//! a compact binary [`record`] into its own bounded ring, and the writer
//! on the control core reads, formats and writes them.
//!
//! The ring is a single-producer single-consumer byte ring: the worker
//! appends whole records (a record is committed at once or not at all),
//! the writer takes everything committed so far. Neither end waits for the
//! other, and neither takes a lock. A record that does not fit is dropped
//! by the worker, which counts it; it never waits for room.

pub mod record;

use rtrb::{Consumer, Producer, RingBuffer};

use self::record::{announced, Entry, Record, MAX_RECORD};

/// The smallest ring: room for a few of the largest records.
pub const MIN_RING: usize = 4 * MAX_RECORD;

/// The worker's end of its ring.
#[derive(Debug)]
pub struct AccessRing {
    producer: Producer<u8>,
    /// Where a record is encoded before it is copied in whole (kept, so
    /// encoding allocates only until it has grown to the largest record).
    scratch: Vec<u8>,
}

impl AccessRing {
    /// Appends the record of `entry`; `false` when the ring had no room
    /// for it (the record is dropped).
    pub fn push(&mut self, entry: &Entry<'_>) -> bool {
        entry.encode(&mut self.scratch);
        self.producer.push_entire_slice(&self.scratch).is_ok()
    }
}

/// The writer's end of one worker's ring.
#[derive(Debug)]
pub struct AccessReader {
    consumer: Consumer<u8>,
    /// The records taken in one drain, made contiguous.
    taken: Vec<u8>,
}

impl AccessReader {
    /// Takes every record committed so far and hands each to `each`, in
    /// the order the worker wrote them. Returns how many there were and
    /// how many bytes did not read as a record (0 unless a bug broke the
    /// layout; the rest of that drain is then skipped).
    pub fn drain(&mut self, mut each: impl FnMut(&Record<'_>)) -> (usize, usize) {
        let available = self.consumer.slots();
        if available == 0 {
            return (0, 0);
        }
        let Ok(chunk) = self.consumer.read_chunk(available) else {
            return (0, 0);
        };
        let (first, second) = chunk.as_slices();
        self.taken.clear();
        self.taken.extend_from_slice(first);
        self.taken.extend_from_slice(second);
        chunk.commit_all();
        let mut rest = &self.taken[..];
        let mut records = 0;
        while !rest.is_empty() {
            let len = announced(rest).filter(|&n| n > 2 && n <= rest.len());
            let Some(record) = len.and_then(|n| Record::decode(&rest[..n])) else {
                return (records, rest.len());
            };
            each(&record);
            records += 1;
            rest = &rest[len.unwrap_or(rest.len())..];
        }
        (records, 0)
    }
}

/// A ring of `bytes` (at least [`MIN_RING`]) for one worker.
pub fn ring(bytes: usize) -> (AccessRing, AccessReader) {
    let (producer, consumer) = RingBuffer::new(bytes.max(MIN_RING));
    (
        AccessRing {
            producer,
            scratch: Vec::with_capacity(MAX_RECORD),
        },
        AccessReader {
            consumer,
            taken: Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Reason;

    fn entry(n: u64, path: &[u8]) -> Entry<'_> {
        Entry {
            output: 1,
            start_unix_ns: n,
            duration_ns: n,
            upstream_ns: None,
            status: Some(200),
            reason: None::<Reason>,
            minor: 1,
            tls: false,
            received: 0,
            sent: 0,
            attempts: 1,
            upstream: None,
            client: "127.0.0.1".parse().expect("ip"),
            trace_id: None,
            fault: None,
            texts: [b"l", b"r", b"c", b"GET", b"h", path, b"", b""],
        }
    }

    #[test]
    fn records_come_out_in_order_across_the_wrap_and_a_full_ring_drops() {
        let (mut tx, mut rx) = ring(MIN_RING);
        let path = vec![b'p'; 1000];
        let mut next = 0u64;
        let mut seen = Vec::new();
        for _round in 0..20 {
            // Fill until a record is refused: nothing is waited for.
            let mut pushed = 0;
            while tx.push(&entry(next, &path)) {
                next += 1;
                pushed += 1;
            }
            assert!(pushed > 0);
            let (n, bad) = rx.drain(|r| seen.push(r.start_unix_ns));
            assert_eq!((n, bad), (pushed, 0));
        }
        assert_eq!(seen, (0..next).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_ring_drains_nothing() {
        let (_tx, mut rx) = ring(0);
        assert_eq!(rx.drain(|_| panic!("no record")), (0, 0));
    }
}
