//! What the transport reads of TLS records without opening them: their
//! headers (where one ends), and how much room sealing takes.

/// A record header: content type, version, length.
pub(super) const HEADER: usize = 5;

/// The most plaintext one record carries.
const MAX_PLAINTEXT: usize = 16 * 1024;

/// The longest record, header included (TLS 1.3's most ciphertext).
pub(super) const MAX_RECORD: usize = HEADER + MAX_PLAINTEXT + 256;

/// The most a record adds to its plaintext: the header, then (TLS 1.2
/// AES-GCM, the largest) an explicit nonce and a tag; TLS 1.3 adds a
/// content type byte and a tag.
const MAX_OVERHEAD: usize = HEADER + 8 + 16;

/// Room the records sealing `plain` bytes take, at most.
pub(super) fn sealed_len(plain: usize) -> usize {
    plain + plain.div_ceil(MAX_PLAINTEXT).max(1) * MAX_OVERHEAD
}

/// How many bytes of `next`, appended to `held`, complete the first record
/// that ends past `held`'s end (all of `next` if they do not reach its
/// end). Records are walked from `held`'s start, which is a record's.
pub(super) fn to_complete(held: &[u8], next: &[u8]) -> usize {
    let byte = |i: usize| {
        if i < held.len() {
            held[i]
        } else {
            next[i - held.len()]
        }
    };
    let total = held.len() + next.len();
    let mut at = 0;
    loop {
        if at + HEADER > total {
            return next.len();
        }
        let end = at + HEADER + usize::from(u16::from_be_bytes([byte(at + 3), byte(at + 4)]));
        if end > held.len() {
            return (end - held.len()).min(next.len());
        }
        at = end;
    }
}

/// Whether `bytes` (from a record's start) ends where a record does.
pub(super) fn whole(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(len) = first_len(&bytes[at..]) {
        at += len;
        if at >= bytes.len() {
            return at == bytes.len();
        }
    }
    at == bytes.len()
}

/// The length of the record starting `bytes`, header included, once its
/// header is there.
pub(super) fn first_len(bytes: &[u8]) -> Option<usize> {
    (bytes.len() >= HEADER).then(|| HEADER + usize::from(u16::from_be_bytes([bytes[3], bytes[4]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: u16) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&len.to_be_bytes());
        r.resize(HEADER + usize::from(len), 0xaa);
        r
    }

    #[test]
    fn to_complete_takes_what_ends_the_split_record() {
        let one = record(100);
        let two = record(300);
        let stream: Vec<u8> = one.iter().chain(&two).copied().collect();
        // Split inside the first record: the rest of it.
        assert_eq!(to_complete(&stream[..50], &stream[50..]), one.len() - 50);
        // Split inside a header: the rest of the header and its record.
        assert_eq!(to_complete(&stream[..2], &stream[2..]), one.len() - 2);
        let at = one.len() + 3;
        assert_eq!(to_complete(&stream[..at], &stream[at..]), two.len() - 3);
        // Held ends on a boundary: the whole next record.
        assert_eq!(to_complete(&one, &two), two.len());
        // Not enough to end it: all there is.
        assert_eq!(to_complete(&stream[..10], &stream[10..60]), 50);
        assert_eq!(to_complete(&one, &two[..3]), 3);
        assert_eq!(first_len(&stream), Some(one.len()));
        assert!(whole(&[]));
        assert!(whole(&one));
        assert!(whole(&stream));
        assert!(!whole(&stream[..stream.len() - 1]));
        assert!(!whole(&stream[..one.len() + 2]), "a header cut short");
        assert_eq!(first_len(&stream[..4]), None);
    }

    #[test]
    fn sealing_room_covers_every_record() {
        assert_eq!(sealed_len(0), MAX_OVERHEAD);
        assert_eq!(sealed_len(100), 100 + MAX_OVERHEAD);
        assert_eq!(
            sealed_len(MAX_PLAINTEXT + 1),
            MAX_PLAINTEXT + 1 + 2 * MAX_OVERHEAD
        );
    }
}
