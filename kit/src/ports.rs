//! Ports for test and bench servers, handed out so that no two users can
//! pick the same one.
//!
//! A port found free and used later is a race: between the look and the
//! bind, a parallel test may bind it (a listener on port 0 gets any port of
//! the kernel's ephemeral range, free ones included) or use it as the local
//! port of an outgoing connection. Two ways avoid it:
//!
//! 1. **Bind and hand over.** A server in this process binds `127.0.0.1:0`
//!    itself ([`loopback_listener`]) and keeps the socket, or a server
//!    binds port 0 and reports the port it got. The kernel never gives the
//!    port to anyone else while the socket lives. Use this whenever the
//!    server can take a socket.
//! 2. **A port block of this process.** A separate process (ringway, nginx,
//!    HAProxy) binds its listeners by number, from its config, so the
//!    number must stay free from the moment it is chosen until that process
//!    binds it. [`free_port`] takes it from a block of [`BLOCK`] ports that
//!    this process owns, below the ephemeral range (32768-60999 here): no
//!    outgoing connection and no port-0 listener of anyone can land there.
//!    The block is owned across processes by a *marker*: its first port,
//!    bound (without `SO_REUSEADDR`) by this process for its whole life. A
//!    process that finds a block's marker taken (`EADDRINUSE`) moves on to
//!    the next block, so parallel test processes, which all start their
//!    search at a place that depends on their pid, never share a block. The
//!    kernel frees the markers when the process exits, however it exits.
//!
//! Within its block, a process hands each port out once, and skips a port
//! that something outside this scheme already binds. Nothing else retries:
//! if a bind by number still fails, the failure is real and is reported.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::Mutex;

use socket2::{Domain, Socket, Type};

/// Ports per block, its marker included. A test binary uses a few dozen
/// ports; a process that needs more takes another block.
pub const BLOCK: u16 = 64;

/// How many ports below the ephemeral range the blocks may use.
const SPAN: u16 = 12_000;

/// The lowest port handed out: below are the well-known and registered
/// ports that services on the machine tend to use.
const LOWEST: u16 = 10_000;

/// The range that stays out of bounds whatever the kernel's setting says:
/// Linux's default ephemeral range.
const EPHEMERAL_DEFAULT: (u16, u16) = (32_768, 60_999);

/// Where this process's ports come from.
#[derive(Debug)]
struct Blocks {
    /// The ports blocks may use, `low..high`.
    low: u16,
    high: u16,
    /// The block to try first when a new one is needed.
    next_block: usize,
    /// The block ports come from now, and the next offset in it.
    current: Option<(u16, u16)>,
    /// The marker sockets of every block this process owns.
    markers: Vec<Socket>,
}

static BLOCKS: Mutex<Option<Blocks>> = Mutex::new(None);

/// A loopback TCP port that nothing binds and that no other call, in this
/// process or another one using this module, returns. Binding it is left
/// to the caller (usually a proxy, from its config).
///
/// Panics when no block is left (every block of the range taken).
pub fn free_port() -> u16 {
    let mut guard = BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = guard.get_or_insert_with(|| {
        Blocks::new(ephemeral_range()).unwrap_or_else(|e| panic!("test ports: {e}"))
    });
    blocks.take()
}

/// `127.0.0.1` with a port of [`free_port`].
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// An address on loopback where nothing listens, and nothing will: a
/// connect to it is refused at once.
pub fn dead_endpoint() -> SocketAddr {
    free_addr()
}

/// A listener on `127.0.0.1:0` with an accept queue of `backlog`: the
/// kernel picks the port, and it stays this socket's while it lives (bind
/// and hand over).
pub fn loopback_listener(backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Blocks {
    /// The blocks of the ports below the ephemeral range `(start, end)`,
    /// or, when the range starts too low to leave room below it, above it.
    fn new((start, end): (u16, u16)) -> Result<Self, String> {
        let below_high = start.min(EPHEMERAL_DEFAULT.0);
        let below_low = below_high.saturating_sub(SPAN).max(LOWEST);
        let above_low = end.max(EPHEMERAL_DEFAULT.1).saturating_add(1);
        let (low, high) = if below_high >= below_low.saturating_add(4 * BLOCK) {
            (below_low, below_high)
        } else if above_low <= u16::MAX - 4 * BLOCK {
            (above_low, u16::MAX)
        } else {
            return Err(format!(
                "the ephemeral port range {start}-{end} leaves no room for test ports"
            ));
        };
        let count = usize::from((high - low) / BLOCK);
        // Processes started one after the other have neighbouring pids; a
        // stride spreads their first tries over the range.
        let next_block = (std::process::id() as usize).wrapping_mul(37) % count;
        Ok(Self {
            low,
            high,
            next_block,
            current: None,
            markers: Vec::new(),
        })
    }

    fn count(&self) -> usize {
        usize::from((self.high - self.low) / BLOCK)
    }

    fn take(&mut self) -> u16 {
        loop {
            if let Some((base, offset)) = &mut self.current {
                while *offset < BLOCK {
                    let port = *base + *offset;
                    *offset += 1;
                    if nothing_binds(port) {
                        return port;
                    }
                }
            }
            let base = self.claim().unwrap_or_else(|e| panic!("test ports: {e}"));
            self.current = Some((base, 1));
        }
    }

    /// Takes the next block whose marker this process can bind, and keeps
    /// the marker bound; returns the block's first port.
    fn claim(&mut self) -> Result<u16, String> {
        let count = self.count();
        for _ in 0..count {
            let index = self.next_block;
            self.next_block = (index + 1) % count;
            // `index < count`, and `count * BLOCK <= high - low`.
            let base = self.low + BLOCK * u16::try_from(index).unwrap_or(0);
            match marker(base) {
                Ok(socket) => {
                    self.markers.push(socket);
                    return Ok(base);
                }
                // Another process owns the block, or something else binds
                // its first port: either way, not ours.
                Err(_) => continue,
            }
        }
        Err(format!(
            "all {count} blocks of {BLOCK} ports in {}..{} are taken",
            self.low, self.high
        ))
    }
}

/// Binds the marker of the block at `base`. Without `SO_REUSEADDR` (and
/// without `SO_REUSEPORT`), no other socket can bind the port while it
/// lives, whatever options that socket sets.
fn marker(base: u16) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, base).into())?;
    Ok(socket)
}

/// Whether nothing binds `port` on loopback now (std sets `SO_REUSEADDR`,
/// as servers do, so connections of an earlier user lingering in
/// TIME_WAIT do not count).
fn nothing_binds(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The kernel's ephemeral port range, or Linux's default if unreadable.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(EPHEMERAL_DEFAULT)
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut words = text.split_whitespace();
    let start = words.next()?.parse().ok()?;
    let end = words.next()?.parse().ok()?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn ports_are_never_repeated_and_stay_off_the_ephemeral_range() {
        let (start, end) = ephemeral_range();
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        for port in ports {
            assert!(!(start..=end).contains(&port), "{port} is ephemeral");
            assert!(!(32_768..=60_999).contains(&port), "{port} is ephemeral");
        }
    }

    #[test]
    fn a_block_with_a_taken_marker_is_skipped() {
        let mut first = Blocks::new(EPHEMERAL_DEFAULT).expect("room below 32768");
        let mut second = Blocks::new(EPHEMERAL_DEFAULT).expect("room below 32768");
        // Both start at the same block, as two processes whose pids collide
        // in the stride would.
        second.next_block = first.next_block;
        let a = first.take();
        let b = second.take();
        assert_ne!(a / BLOCK, b / BLOCK, "{a} and {b} share a block");
        // The marker is bound: nothing else can take the block's first
        // port, whatever options it sets.
        let (base, _) = first.current.expect("a block");
        assert!(!nothing_binds(base));
    }

    #[test]
    fn a_dead_endpoint_refuses() {
        let err = TcpStream::connect(dead_endpoint()).expect_err("nothing listens");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn ranges_move_above_a_low_ephemeral_range() {
        let blocks = Blocks::new((1024, 60_999)).expect("room above");
        assert_eq!((blocks.low, blocks.high), (61_000, u16::MAX));
        let blocks = Blocks::new((40_000, 60_999)).expect("room below");
        assert_eq!((blocks.low, blocks.high), (20_768, 32_768));
        assert!(Blocks::new((1024, 65_535)).is_err());
        assert_eq!(parse_range("32768\t60999\n"), Some((32_768, 60_999)));
    }
}
