//! The memory run: hold many idle keep-alive connections on a system and
//! read what they cost it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::load::response::parse_head;

/// Longest wait for one connection's connect or answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `n` connections to `target`; over HTTP each carries one request
/// and its whole answer first (so the system has set up whatever a served
/// connection keeps), then stays open and idle. Returns the connections and
/// the first failure, if one stopped the opening early.
pub fn hold(target: SocketAddr, n: usize, http: bool) -> (Vec<TcpStream>, Option<String>) {
    let mut held = Vec::with_capacity(n);
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: ringway-bench\r\n\r\n";
    let mut buf = Vec::new();
    for i in 0..n {
        let opened = TcpStream::connect_timeout(&target, IO_TIMEOUT).and_then(|mut s| {
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            if http {
                s.write_all(request)?;
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

fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the whole answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(buf) {
            Ok(Some(h)) if buf.len() >= h.total_len() => {
                return if (200..300).contains(&h.status) {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!("status {}", h.status)))
                };
            }
            Ok(_) => {}
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
}
