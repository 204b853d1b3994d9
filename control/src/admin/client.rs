//! A minimal blocking HTTP/1.1 client for `ringway reload` and
//! `ringway stats`: one request per connection, on loopback.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer of the admin API.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// Sends one request and reads the whole answer.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    // A reload answers once every worker runs the new table (or after 10 s).
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("the answer has no complete head"))?;
    let head =
        std::str::from_utf8(&raw[..end]).map_err(|_| bad("the answer's head is not text"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("the answer has no status code"))?;
    let body = String::from_utf8_lossy(&raw[end + 4..]).into_owned();
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_status_and_body() {
        let reply = parse(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nno\n")
            .expect("a complete answer");
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body, "no\n");
    }

    #[test]
    fn refuses_a_truncated_head() {
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
