//! A small blocking HTTP/1.1 client for ringway's admin API that keeps its
//! connection alive between requests, so that a hundred PUTs a second cost
//! one connection, not a hundred.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer head or body read, far above what the admin API sends.
const MAX_ANSWER: usize = 64 << 20;

/// An answer of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// A keep-alive connection to the admin API, opened on first use and again
/// when the server closed it.
#[derive(Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

impl AdminClient {
    /// A client of the admin API at `addr`; every connect, read and write
    /// gives up after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            conn: None,
        }
    }

    /// Sends one request and reads its answer.
    ///
    /// When a reused connection turns out to be closed before any byte of
    /// the answer came (the server dropped it while idle), the request is
    /// sent once more on a new connection: the server cannot have acted on
    /// it.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Reply> {
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        if !body.is_empty() {
            message.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(body);
        let reused = self.conn.is_some();
        match self.exchange(&message) {
            Err(Failure::Stale(_)) if reused => {
                self.conn = None;
                self.exchange(&message).map_err(Failure::into_io)
            }
            result => result.map_err(Failure::into_io),
        }
    }

    /// Writes `message` and reads the answer on the current connection
    /// (a new one if none is open).
    fn exchange(&mut self, message: &[u8]) -> Result<Reply, Failure> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                    .map_err(Failure::Failed)?;
                let setup = stream
                    .set_read_timeout(Some(self.timeout))
                    .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
                    .and_then(|()| stream.set_nodelay(true));
                setup.map_err(Failure::Failed)?;
                self.conn.insert(BufReader::new(stream))
            }
        };
        let result = conn
            .get_mut()
            .write_all(message)
            .map_err(Failure::of_io)
            .and_then(|()| read_reply(conn));
        match &result {
            Ok((_, keep_alive)) if *keep_alive => {}
            // Closed by the server, or in an unknown state after an error.
            _ => self.conn = None,
        }
        result.map(|(reply, _)| reply)
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// Before any byte of the answer came: on a reused connection this may
    /// mean the server had closed it, and the request can be sent again.
    Stale(io::Error),
    /// Anything else: never retried.
    Failed(io::Error),
}

impl Failure {
    /// A closed or reset connection is stale; a timeout is not (the server
    /// may be working on the request).
    fn of_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Failure::Stale(e),
            _ => Failure::Failed(e),
        }
    }

    fn into_io(self) -> io::Error {
        match self {
            Failure::Stale(e) | Failure::Failed(e) => e,
        }
    }
}

/// Reads one answer: its head, then a `Content-Length` body. Returns the
/// reply and whether the connection stays open.
fn read_reply(conn: &mut impl BufRead) -> Result<(Reply, bool), Failure> {
    let mut line = String::new();
    match conn.read_line(&mut line) {
        Ok(0) => {
            return Err(Failure::Stale(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the admin API closed the connection without answering",
            )))
        }
        Ok(_) => {}
        Err(e) if line.is_empty() => return Err(Failure::of_io(e)),
        Err(e) => return Err(Failure::Failed(e)),
    }
    // Past the first byte, an error is a real one: never retried.
    read_rest(conn, &line).map_err(Failure::Failed)
}

/// The rest of an answer whose status line is `status_line`.
fn read_rest(conn: &mut impl BufRead, status_line: &str) -> io::Result<(Reply, bool)> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("not an HTTP status line: {status_line:?}")))?;
    let mut length: Option<usize> = None;
    let mut keep_alive = status_line.starts_with("HTTP/1.1");
    let mut head_size = status_line.len();
    loop {
        let mut line = String::new();
        let n = conn.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the admin API closed the connection inside an answer's head",
            ));
        }
        head_size += n;
        if head_size > MAX_ANSWER {
            return Err(bad("the answer's head is too large".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("not a header line: {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| bad(format!("bad content-length: {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(format!(
                "transfer-encoding {value:?} is not supported by this client"
            )));
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) if n > MAX_ANSWER => return Err(bad(format!("answer of {n} bytes is too large"))),
        Some(n) => {
            body.resize(n, 0);
            conn.read_exact(&mut body)?;
        }
        // No length: the body runs until the connection closes.
        None => {
            conn.take(MAX_ANSWER as u64).read_to_end(&mut body)?;
            keep_alive = false;
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok((Reply { status, body }, keep_alive))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    #[test]
    fn reads_two_answers_from_one_stream() {
        let mut raw = Cursor::new(
            b"HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\napplied generation 42\n\n\
              HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno\n"
                .to_vec(),
        );
        let (first, alive) = read_reply(&mut raw).expect("a first answer");
        assert_eq!(first.status, 200);
        assert_eq!(first.body, "applied generation 42\n\n");
        assert!(alive);
        let (second, alive) = read_reply(&mut raw).expect("a second answer");
        assert_eq!(second.status, 404);
        assert_eq!(second.body, "no\n");
        assert!(!alive);
    }

    #[test]
    fn a_truncated_body_is_an_error() {
        let mut raw = Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec());
        assert!(read_reply(&mut raw).is_err());
    }

    #[test]
    fn reconnects_when_the_server_closed_an_idle_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let server = thread::spawn(move || {
            // First connection: one answer, then closed while idle.
            for answer in ["first", "second"] {
                let (stream, _) = listener.accept().expect("a connection");
                let mut conn = BufReader::new(stream);
                let mut line = String::new();
                while conn.read_line(&mut line).expect("a request line") > 2 {
                    line.clear();
                }
                let body = format!("{answer}\n");
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                conn.get_mut()
                    .write_all(format!("{head}{body}").as_bytes())
                    .expect("the answer is sent");
            }
        });
        let mut client = AdminClient::new(addr, Duration::from_secs(5));
        let first = client
            .request("GET", "/healthz", b"")
            .expect("a first answer");
        assert_eq!(first.body, "first\n");
        let second = client
            .request("GET", "/healthz", b"")
            .expect("a second answer");
        assert_eq!(second.body, "second\n");
        server.join().expect("the server thread ends");
    }
}
