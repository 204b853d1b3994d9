//! The client of ringway's admin API: a small blocking HTTP/1.1 client on
//! `std::net`, used by `ringway reload` and `ringway stats`, and by the
//! tests and benches through their kit.
//!
//! Three ways to send requests, one wire format:
//! - [`request`]: one request on a connection of its own, sent with
//!   `Connection: close`.
//! - [`Connection`]: several requests on one kept-alive connection, exactly
//!   as written (a test of keep-alive sees the server close it).
//! - [`AdminClient`]: a connection kept alive between requests and opened
//!   again when the server closed it while idle, so that a hundred PUTs a
//!   second cost one connection, not a hundred.
//!
//! Responses are read by [`read_response`].

mod response;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use response::{read_response, Response};

/// How long a connect to the admin API may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may take: more than the 10 s the agent waits
/// for the workers to acknowledge a table before answering `POST /config`
/// or `POST /reload`.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// `METHOD path` (with a body when given) on a fresh connection, sent with
/// `Connection: close`; returns the response or what went wrong.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<Response> {
    Connection::open(addr)?.send(method, path, body, true)
}

/// One connection to the admin API, for several requests in a row.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects within [`CONNECT_TIMEOUT`]; reads and writes may take
    /// [`IO_TIMEOUT`].
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        Self::open_with(addr, CONNECT_TIMEOUT, IO_TIMEOUT)
    }

    /// Connects within `connect`; every read or write may take `io`.
    pub fn open_with(addr: SocketAddr, connect: Duration, io: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, connect)?;
        stream.set_read_timeout(Some(io))?;
        stream.set_write_timeout(Some(io))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads its response; with `close`, asks the
    /// server to close the connection after it.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        close: bool,
    ) -> io::Result<Response> {
        self.exchange(method, path, body.map(str::as_bytes), close)
            .map_err(Failure::into_io)
    }

    /// Writes the request and reads the response, telling apart a failure
    /// before any byte of the response came (see [`Failure`]).
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        close: bool,
    ) -> Result<Response, Failure> {
        let message = encode_request(&self.addr, method, path, body, close);
        self.reader
            .get_mut()
            .write_all(&message)
            .map_err(Failure::of_io)?;
        // Past the first byte of the response, an error is a real one.
        match self.reader.fill_buf() {
            Ok([]) => {
                return Err(Failure::Stale(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the admin API closed the connection without answering",
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::of_io(e)),
        }
        read_response(&mut self.reader, method == "HEAD").map_err(Failure::Failed)
    }
}

/// A connection to the admin API kept alive between requests, opened on
/// first use and again when the server closed it.
#[derive(Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<Connection>,
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

    /// Sends one request (with a `Content-Length`, 0 for an empty `body`)
    /// and reads its response.
    ///
    /// When a reused connection turns out to be closed before any byte of
    /// the response came (the server dropped it while idle), the request is
    /// sent once more on a new connection: the server cannot have acted on
    /// it.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.exchange(method, path, body) {
            Err(Failure::Stale(_)) if reused => {
                self.exchange(method, path, body).map_err(Failure::into_io)
            }
            result => result.map_err(Failure::into_io),
        }
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Response, Failure> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with(self.addr, self.timeout, self.timeout)
                    .map_err(Failure::Failed)?;
                self.conn.insert(conn)
            }
        };
        let result = conn.exchange(method, path, Some(body), false);
        match &result {
            Ok(response) if response.keeps_alive() => {}
            // Closed by the server, or in an unknown state after an error.
            _ => self.conn = None,
        }
        result
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// Before any byte of the response came: on a reused connection this
    /// may mean the server had closed it, and the request can be sent
    /// again.
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

/// The request head and body as one buffer, so that a small request leaves
/// in one segment. `Host` names the address dialled: the admin API serves
/// every host name alike.
fn encode_request(
    host: &SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body.unwrap_or_default());
    message
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A loopback listener on a port the kernel picks.
    fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("a bound address");
        (listener, addr)
    }

    /// Reads one request (head, and a body by `Content-Length`) from
    /// `conn`; `None` at end of stream.
    fn read_request(conn: &mut BufReader<TcpStream>) -> Option<String> {
        let mut request = String::new();
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).expect("a request line") == 0 {
                return None;
            }
            request.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length = request
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.parse().expect("a length"));
        let mut body = vec![0; length];
        conn.read_exact(&mut body).expect("the request body");
        request.push_str(&String::from_utf8(body).expect("a text body"));
        Some(request)
    }

    /// Serves one connection: reads a request, sends `answer` as it is,
    /// then closes; returns the request.
    fn answer_once(answer: &'static [u8]) -> (SocketAddr, thread::JoinHandle<String>) {
        let (listener, addr) = listener();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            let mut conn = BufReader::new(stream);
            let request = read_request(&mut conn).expect("a request");
            conn.get_mut()
                .write_all(answer)
                .expect("the answer is sent");
            request
        });
        (addr, server)
    }

    #[test]
    fn writes_the_request_head_and_body() {
        let addr: SocketAddr = "127.0.0.1:9901".parse().expect("an address");
        let closing = encode_request(&addr, "POST", "/config", Some(b"a = 1\n"), true);
        assert_eq!(
            String::from_utf8(closing).expect("text"),
            "POST /config HTTP/1.1\r\nHost: 127.0.0.1:9901\r\nConnection: close\r\n\
             Content-Length: 6\r\n\r\na = 1\n"
        );
        let bare = encode_request(&addr, "GET", "/ready", None, false);
        assert_eq!(
            String::from_utf8(bare).expect("text"),
            "GET /ready HTTP/1.1\r\nHost: 127.0.0.1:9901\r\n\r\n"
        );
    }

    #[test]
    fn a_one_off_request_asks_to_close_and_reads_a_chunked_answer() {
        let (addr, server) = answer_once(
            b"HTTP/1.1 100 Continue\r\n\r\n\
              HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              4\r\nappl\r\n6\r\nied 1\n\r\n0\r\n\r\n",
        );
        let response = request(addr, "PUT", "/clusters/app/endpoints", Some("[]"))
            .expect("an answer after the interim one");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "applied 1\n");
        let sent = server.join().expect("the server thread ends");
        assert!(
            sent.starts_with("PUT /clusters/app/endpoints HTTP/1.1\r\n"),
            "{sent}"
        );
        assert!(sent.contains("\r\nConnection: close\r\n"), "{sent}");
        assert!(sent.ends_with("Content-Length: 2\r\n\r\n[]"), "{sent}");
    }

    #[test]
    fn a_connection_closed_mid_body_is_an_error() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"[..],
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nshort"[..],
        ] {
            let (listener, addr) = listener();
            let server = thread::spawn(move || {
                let (stream, _) = listener.accept().expect("a connection");
                let mut conn = BufReader::new(stream);
                assert!(read_request(&mut conn).is_some());
                conn.get_mut()
                    .write_all(answer)
                    .expect("the answer is sent");
                drop(conn);
                // A resend would come on a second connection: the probe
                // below ends this accept, sending nothing.
                let (stream, _) = listener.accept().expect("a second connection");
                read_request(&mut BufReader::new(stream))
            });
            let mut client = AdminClient::new(addr, Duration::from_secs(5));
            let err = client
                .request("GET", "/stats", b"")
                .expect_err("a body cut short");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
            // Part of an answer came, so the server got the request: it is
            // not sent again.
            drop(TcpStream::connect(addr).expect("the probe connects"));
            assert_eq!(server.join().expect("the server thread ends"), None);
        }
    }

    #[test]
    fn the_client_sends_a_length_and_keeps_the_connection() {
        let (listener, addr) = listener();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            let mut conn = BufReader::new(stream);
            let mut requests = Vec::new();
            for answer in ["one\n", "two\n"] {
                requests.push(read_request(&mut conn).expect("a request"));
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n{answer}");
                conn.get_mut()
                    .write_all(reply.as_bytes())
                    .expect("the answer is sent");
            }
            requests
        });
        let mut client = AdminClient::new(addr, Duration::from_secs(5));
        let first = client.request("GET", "/stats", b"").expect("answered");
        let second = client.request("POST", "/reload", b"").expect("answered");
        assert_eq!(
            (first.body.as_str(), second.body.as_str()),
            ("one\n", "two\n")
        );
        let requests = server.join().expect("the server thread ends");
        for request in &requests {
            assert!(request.contains("\r\nContent-Length: 0\r\n"), "{request}");
            assert!(!request.contains("Connection:"), "{request}");
        }
    }

    #[test]
    fn the_client_reconnects_when_the_server_closed_an_idle_connection() {
        let (listener, addr) = listener();
        let server = thread::spawn(move || {
            // Each connection: one answer, then closed while idle.
            for answer in ["first", "second"] {
                let (stream, _) = listener.accept().expect("a connection");
                let mut conn = BufReader::new(stream);
                assert!(read_request(&mut conn).is_some());
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

    #[test]
    fn a_connection_does_not_reconnect() {
        let (listener, addr) = listener();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            let mut conn = BufReader::new(stream);
            assert!(read_request(&mut conn).is_some());
            conn.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
                .expect("the answer is sent");
            // Closed while idle; a second connection would be accepted and
            // answered, which the client must not try.
            drop(conn);
            let (stream, _) = listener.accept().expect("the probe connection");
            read_request(&mut BufReader::new(stream))
        });
        let mut conn = Connection::open(addr).expect("connected");
        let first = conn.send("GET", "/healthz", None, false).expect("answered");
        assert_eq!(first.body, "ok\n");
        assert!(conn.send("GET", "/healthz", None, false).is_err());
        // Unblock the server's second accept with a connection that sends
        // nothing.
        drop(TcpStream::connect(addr).expect("the probe connects"));
        assert_eq!(server.join().expect("the server thread ends"), None);
    }
}
