//! Ports for the systems under test, from a block this process owns, off
//! the kernel's ephemeral range.
//!
//! nginx and HAProxy bind their listeners themselves, so the runner cannot
//! bind a socket and hand it over: it must name a port in their config, and
//! nothing may take that port between the choice and the bind. A port the
//! kernel once picked as free (`bind(:0)`, then closed) is in the ephemeral
//! range, where any outgoing connection of any process, or another
//! `bind(:0)`, may get it next: that is how a parallel test once found its
//! listener's port "already accepting connections".
//!
//! So ports come from `20000..32768`, below the ephemeral range Linux uses
//! by default (`32768..61000`), where the kernel never picks a port on its
//! own. That range is cut into [`SLOTS`] blocks of [`BLOCK`] ports. A
//! process claims one block by listening on the block's first port (the
//! sentinel, held until it exits); a block whose sentinel is taken belongs
//! to another process and is skipped. Inside its block a process hands out
//! each port once, in turn, from an atomic counter, so its own threads (the
//! tests of one binary run in parallel) never get the same port; each port
//! is also test-bound before it is handed out, to step over anything else
//! that listens there.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;

/// The first port of the first block.
const FIRST: u16 = 20_000;
/// Ports per block, the sentinel included: a comparison needs two per
/// system plus its origins, a test binary a few per test.
const BLOCK: u16 = 128;
/// Blocks between [`FIRST`] and 32768, where the ephemeral range starts.
const SLOTS: u16 = (32_768 - FIRST) / BLOCK;

/// The block this process claimed: its sentinel listener and first port.
static CLAIM: OnceLock<(TcpListener, u16)> = OnceLock::new();
/// How many ports of the block were handed out.
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A loopback address whose port no other holder of this allocator gets,
/// and that nothing listened on a moment ago.
pub fn next() -> io::Result<SocketAddr> {
    let base = claim()?;
    // Every port of the block once; the sentinel is not among them.
    for _ in 1..BLOCK {
        let offset = 1 + NEXT.fetch_add(1, Ordering::Relaxed) % (BLOCK - 1);
        let addr = loopback(base + offset);
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("every port of the block {base}..{} is in use", base + BLOCK),
    ))
}

/// The first port of this process's block, claiming one on first use.
fn claim() -> io::Result<u16> {
    if let Some((_, base)) = CLAIM.get() {
        return Ok(*base);
    }
    // Start where the process id points, so that processes started
    // together rarely probe the same blocks first.
    let start = u16::try_from(std::process::id() % u32::from(SLOTS)).unwrap_or(0);
    for i in 0..SLOTS {
        let base = FIRST + ((start + i) % SLOTS) * BLOCK;
        if let Ok(sentinel) = TcpListener::bind(loopback(base)) {
            // Another thread may have claimed a block meanwhile: the first
            // claim stands, and this sentinel is dropped.
            return Ok(CLAIM.get_or_init(|| (sentinel, base)).1);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "no free block of {BLOCK} ports between {FIRST} and 32768: \
             every block's first port is taken"
        ),
    ))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ports_are_distinct_and_off_the_ephemeral_range() {
        let ports: Vec<u16> = (0..40).map(|_| next().unwrap().port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        let base = claim().unwrap();
        for p in ports {
            assert!((FIRST..32_768).contains(&p), "{p}");
            assert!(p > base && p < base + BLOCK, "{p} outside {base}+{BLOCK}");
        }
        // The sentinel holds the block: nobody else can listen there.
        assert!(TcpListener::bind(loopback(base)).is_err());
    }

    #[test]
    fn a_port_in_use_is_stepped_over() {
        let base = claim().unwrap();
        // Whatever port comes next, occupy the one after it first.
        let probe = NEXT.load(Ordering::Relaxed);
        let taken = base + 1 + (probe + 1) % (BLOCK - 1);
        let Ok(_holder) = TcpListener::bind(loopback(taken)) else {
            return; // a parallel test got there first; nothing to check
        };
        for _ in 0..3 {
            assert_ne!(next().unwrap().port(), taken);
        }
    }
}
