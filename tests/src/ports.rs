//! Ports for the proxy's listeners, never handed out twice.
//!
//! Origins bind port 0 and keep their socket, so they need no help. The
//! proxy, though, binds its listeners itself from the config file, so a
//! test must name a port that is free *now* and stays free until the proxy
//! binds it. Ports are therefore taken below the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`): there no outgoing connection of a
//! parallel test, nor of the proxy itself, can grab one in between.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;

/// How many ports below the ephemeral range the tests may use.
const SPAN: u16 = 12_000;

/// Distance between the first ports of processes with consecutive pids:
/// far more than one test process takes.
const PID_STRIDE: u64 = 997;

/// Ports already handed out, and where to look next.
struct Allocator {
    given: HashSet<u16>,
    range: Option<(u16, u16)>,
    next: u16,
}

static PORTS: Mutex<Option<Allocator>> = Mutex::new(None);

/// A loopback TCP port that nothing listens on and that no other call in
/// this process returns. Binding it is left to the caller (usually the
/// proxy, from its config).
pub fn free_port() -> u16 {
    let mut guard = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let ports = guard.get_or_insert_with(Allocator::new);
    ports.take()
}

/// An address on loopback where nothing listens: connecting to it is
/// refused at once.
pub fn dead_endpoint() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

impl Allocator {
    fn new() -> Self {
        let range = ephemeral_start()
            .and_then(|start| start.checked_sub(SPAN).map(|low| (low.max(1024), start)))
            .filter(|(low, high)| low < high);
        // Start at a place that depends on the process, so that test
        // processes running at once (nextest runs one per test, with
        // neighbouring pids) start far apart and rarely probe the same ports.
        let next = range.map_or(0, |(low, high)| {
            let spread = u64::from(std::process::id()) * PID_STRIDE;
            low + (spread % u64::from(high - low)) as u16
        });
        Self {
            given: HashSet::new(),
            range,
            next,
        }
    }

    fn take(&mut self) -> u16 {
        let Some((low, high)) = self.range else {
            return self.take_from_kernel();
        };
        for _ in low..high {
            let port = self.next;
            self.next = if port + 1 >= high { low } else { port + 1 };
            if self.given.contains(&port) || !is_free(port) {
                continue;
            }
            self.given.insert(port);
            return port;
        }
        panic!("no free port left in {low}..{high}");
    }

    /// Fallback when the ephemeral range leaves no room below it.
    fn take_from_kernel(&mut self) -> u16 {
        loop {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
            let port = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("bound socket has no address: {e}"))
                .port();
            if self.given.insert(port) {
                return port;
            }
        }
    }
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// First port of the kernel's ephemeral range, if it can be read.
fn ephemeral_start() -> Option<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_repeated() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }
}
