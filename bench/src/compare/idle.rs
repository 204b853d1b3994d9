//! The memory run: hold many idle connections on a system and read what
//! they cost it.
//!
//! Connections to one listener need one local port each; a loopback
//! address has about 28,000 ephemeral ports (32768-60999), so from the
//! [`PER_SOURCE`]th connection on each block of connections comes from its
//! own source address, 127.0.0.2, 127.0.0.3, ... (all of 127.0.0.0/8 is
//! loopback).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use socket2::{Domain, Socket, Type};

use crate::load::response::parse_head;

/// Longest wait for one connection's connect or answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per loopback source address, below the 28,232 ephemeral
/// ports Linux has by default.
const PER_SOURCE: usize = 25_000;
/// Source addresses available past 127.0.0.1.
const MAX_SOURCES: usize = 250;

/// Opens `n` connections to `target`; with a `request`, each carries it
/// and its whole answer first (so the system has set up whatever a served
/// connection keeps, and in TCP mode the pair is known to reach the
/// origin), then stays open and idle. Returns the connections and the first
/// failure, if one stopped the opening early.
pub fn hold(
    target: SocketAddr,
    n: usize,
    request: Option<&[u8]>,
) -> (Vec<TcpStream>, Option<String>) {
    let mut held = Vec::with_capacity(n);
    let mut buf = Vec::new();
    for i in 0..n {
        let opened = connect(target, source(target, i)).and_then(|mut s| {
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            if let Some(bytes) = request {
                s.write_all(bytes)?;
                read_answer(&mut s, &mut buf)?;
            }
            Ok(s)
        });
        match opened {
            Ok(s) => held.push(s),
            Err(e) => return (held, Some(format!("connection {}: {e}", i + 1))),
        }
    }
    (held, None)
}

/// The source address of connection `i` to `target`: the default one for
/// the first [`PER_SOURCE`], then 127.0.0.2, 127.0.0.3, ... for each next
/// block when `target` is on IPv4 loopback.
fn source(target: SocketAddr, i: usize) -> Option<SocketAddr> {
    let block = i / PER_SOURCE;
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && block > 0 => {
            let host = u8::try_from(1 + block.min(MAX_SOURCES)).unwrap_or(u8::MAX);
            Some(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        }
        _ => None,
    }
}

fn connect(target: SocketAddr, from: Option<SocketAddr>) -> io::Result<TcpStream> {
    let Some(from) = from else {
        return TcpStream::connect_timeout(&target, IO_TIMEOUT);
    };
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    socket.bind(&from.into())?;
    socket.connect_timeout(&target.into(), IO_TIMEOUT)?;
    Ok(socket.into())
}

fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed before the whole answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(buf) {
            Ok(Some(h)) if buf.len() >= h.total_len() => {
                return if (200..300).contains(&h.status) {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("status {}", h.status)))
                };
            }
            Ok(_) => {}
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
}

/// Raises this process's open-file limit toward `needed`, which the
/// systems and the origins inherit: soft and hard limit when allowed (as
/// root), else the soft limit up to the hard one. Returns the soft limit
/// in force afterwards.
pub fn raise_open_files(needed: u64) -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft >= needed {
        return soft;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, needed, hard.max(needed)).is_ok() {
        return needed;
    }
    // Not root: as far as the hard limit goes.
    if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    }
}

/// The largest count up to `asked` for which `files(count)`, increasing
/// with the count, stays within `limit`.
pub fn largest_within(asked: usize, limit: u64, files: impl Fn(usize) -> u64) -> usize {
    if files(asked) <= limit {
        return asked;
    }
    let (mut lo, mut hi) = (0, asked);
    // files(lo) fits (or lo is 0), files(hi) does not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if files(mid) <= limit {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn blocks_past_the_first_come_from_their_own_address() {
        let target: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(source(target, 0), None);
        assert_eq!(source(target, PER_SOURCE - 1), None);
        assert_eq!(
            source(target, PER_SOURCE),
            Some("127.0.0.2:0".parse().unwrap())
        );
        assert_eq!(
            source(target, 4 * PER_SOURCE + 7),
            Some("127.0.0.5:0".parse().unwrap())
        );
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(source(v6, 3 * PER_SOURCE), None);
    }

    #[test]
    fn a_second_source_address_reaches_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let conn = connect(target, source(target, PER_SOURCE)).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), conn.local_addr().unwrap().ip());
        assert_eq!(peer.ip().to_string(), "127.0.0.2");
    }

    #[test]
    fn the_largest_count_that_fits() {
        assert_eq!(largest_within(100, 1000, |n| n as u64), 100);
        assert_eq!(
            largest_within(100_000, 20_000, |n| 2 * n as u64 + 300),
            9_850
        );
        assert_eq!(largest_within(10, 5, |n| n as u64 + 100), 0);
    }
}
