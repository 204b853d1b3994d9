//! Numbers and addresses written into heads without `core::fmt`.
//!
//! Every proxied request writes a client address, a request id and often
//! a length, and every response a status: through `write!` that is a
//! formatter with its dynamic dispatch, padding logic and per-piece
//! `write_str` calls, about 1% of a small request's CPU in a profile. These
//! write the same bytes straight into the head buffer.

use std::net::IpAddr;

/// Appends `n` in decimal.
pub(super) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` as 32 lower-case hex digits, zeros in front.
pub(super) fn push_hex_u128(out: &mut Vec<u8>, n: u128) {
    out.extend_from_slice(&hex_u128(n));
}

/// `n` as 32 lowercase hex digits, zero-padded.
pub(super) fn hex_u128(n: u128) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    digits
}

/// Appends `addr` as `Display` writes it (IPv6 through the formatter: rare
/// enough not to matter, and its text rules are intricate).
pub(super) fn push_ip(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"x".to_vec();
        f(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn decimal_matches_display() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            65_535,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(written(|o| push_u64(o, n)), format!("x{n}"));
        }
    }

    #[test]
    fn hex_matches_the_formatter() {
        for n in [
            0,
            1,
            0xabc,
            u128::from(u64::MAX),
            u128::MAX,
            1 << 127,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(written(|o| push_hex_u128(o, n)), format!("x{n:032x}"));
        }
    }

    #[test]
    fn addresses_match_display() {
        let cases = [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 255, 10, 200)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        ];
        for a in cases {
            assert_eq!(written(|o| push_ip(o, a)), format!("x{a}"));
        }
    }
}
