//! A hash that every worker and every process computes alike.
//!
//! Consistent hashing needs the same answer on every worker and across
//! restarts, so the std `RandomState` (seeded per process) will not do.
//! This is FNV-1a over the bytes, finished with a 64-bit avalanche mixer so
//! that keys differing in one byte land far apart on a ring.

/// The hash of `bytes`.
pub fn stable(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// Spreads the bits of `x` over the whole word (each input bit flips about
/// half the output bits).
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of an endpoint: of its address as text (`ip:port`), so that it
/// does not depend on where the endpoint sits in the list.
pub fn endpoint(addr: std::net::SocketAddr) -> u64 {
    use std::io::Write as _;
    let mut text = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    // An address's text is at most 47 bytes (`[v6%scope]:port`).
    let _ = write!(cursor, "{addr}");
    let len = cursor.position() as usize;
    stable(&text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_hash_the_same_and_neighbours_far_apart() {
        assert_eq!(stable(b"user-1"), stable(b"user-1"));
        let (a, b) = (stable(b"user-1"), stable(b"user-2"));
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
        // Pinned: a change of the function would move every hashed key
        // after an upgrade; it must be a deliberate one.
        assert_eq!(stable(b""), mix(0xcbf2_9ce4_8422_2325));
    }

    #[test]
    fn an_endpoint_hashes_by_its_text() {
        let addr: std::net::SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert_eq!(endpoint(addr), stable(b"10.0.0.1:8080"));
        let v6: std::net::SocketAddr = "[fe80::1:2:3:4]:65535".parse().unwrap();
        assert_eq!(endpoint(v6), stable(b"[fe80::1:2:3:4]:65535"));
    }
}
