//! POSTing export requests to the collector: a blocking HTTP/1.1 client on
//! `std::net`, one connection kept alive between requests and opened again
//! when it fails. The exporter thread does nothing else, so blocking is
//! what it should do; every connect, write and read is bounded by the
//! request's deadline.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::answer::{is_closed, read_answer, Answer, AnswerError};
use super::settings::Endpoint;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The collector's name did not resolve.
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// The name resolved to nothing.
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The deadline passed (connecting, sending or waiting for the answer).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Sending the request failed.
    #[error("sending the request failed: {0}")]
    Send(#[source] io::Error),
    /// The answer could not be read.
    #[error(transparent)]
    Answer(AnswerError),
}

impl From<AnswerError> for PostError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Timeout(t) => PostError::Timeout(t),
            other => PostError::Answer(other),
        }
    }
}

/// The exporter's connection to the collector.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    /// The head of every request, made once.
    head: String,
    conn: Option<TcpStream>,
    /// Connections opened so far (what tests of reuse look at).
    connects: u64,
}

impl Client {
    /// A client of the collector at `endpoint`; it connects on first use.
    pub fn new(endpoint: Endpoint) -> Self {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
             User-Agent: ringway/{}\r\n",
            endpoint.path(),
            endpoint.authority(),
            env!("CARGO_PKG_VERSION"),
        );
        Self {
            endpoint,
            head,
            conn: None,
            connects: 0,
        }
    }

    /// Sends `body` and reads the answer, all within `timeout`.
    ///
    /// When a kept-alive connection turns out to be closed before any byte
    /// of the answer came (the collector closed it while idle), the request
    /// goes once more on a new connection.
    pub fn post(&mut self, body: &[u8], timeout: Duration) -> Result<Answer, PostError> {
        let deadline = Instant::now() + timeout;
        let reused = self.conn.is_some();
        match self.exchange(body, deadline, timeout) {
            Err(Failure { stale: true, .. }) if reused => {
                self.exchange(body, deadline, timeout).map_err(|f| f.error)
            }
            result => result.map_err(|f| f.error),
        }
    }

    /// Connections opened so far.
    #[cfg(test)]
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Closes the kept-alive connection, if any.
    pub fn close(&mut self) {
        self.conn = None;
    }

    fn exchange(
        &mut self,
        body: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let mut stream = match self.conn.take() {
            Some(stream) => stream,
            None => {
                let stream = connect(&self.endpoint, deadline, timeout).map_err(Failure::fatal)?;
                self.connects += 1;
                stream
            }
        };
        // One buffer, so that a small request leaves in one segment.
        let mut message = Vec::with_capacity(self.head.len() + 32 + body.len());
        message.extend_from_slice(self.head.as_bytes());
        message.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        message.extend_from_slice(body);
        let left = left(deadline, timeout).map_err(Failure::fatal)?;
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| Failure::fatal(PostError::Send(e)))?;
        if let Err(e) = stream.write_all(&message) {
            return Err(Failure {
                stale: is_closed(&e),
                error: match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        PostError::Timeout(timeout)
                    }
                    _ => PostError::Send(e),
                },
            });
        }
        match read_answer(&mut stream, deadline, timeout) {
            Ok(answer) => {
                if answer.reusable {
                    self.conn = Some(stream);
                }
                Ok(answer)
            }
            Err(e) => Err(Failure {
                stale: e.before_any_byte(),
                error: e.into(),
            }),
        }
    }
}

/// A failed exchange, and whether it failed the way a connection the
/// collector closed while idle does.
#[derive(Debug)]
struct Failure {
    error: PostError,
    stale: bool,
}

impl Failure {
    fn fatal(error: PostError) -> Self {
        Self {
            error,
            stale: false,
        }
    }
}

/// Time left before `deadline`, or the timeout error.
fn left(deadline: Instant, timeout: Duration) -> Result<Duration, PostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(PostError::Timeout(timeout))
    } else {
        Ok(left)
    }
}

/// Resolves the collector's host (again on every connection: it may move)
/// and connects to the first address that answers.
fn connect(
    endpoint: &Endpoint,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, PostError> {
    let addrs: Vec<SocketAddr> = (endpoint.host(), endpoint.port())
        .to_socket_addrs()
        .map_err(|source| PostError::Resolve {
            host: endpoint.host().to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        let left = left(deadline, timeout)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                // Requests are written whole; there is nothing to coalesce.
                stream
                    .set_nodelay(true)
                    .map_err(|source| PostError::Connect { addr, source })?;
                return Ok(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(PostError::Timeout(timeout))
            }
            Err(source) => last = Some(PostError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| PostError::NoAddress(endpoint.host().to_owned())))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    /// An endpoint where a connect is refused: its port is bound (so no
    /// other test gets it) but not listening, for as long as the returned
    /// socket lives.
    pub(crate) fn refusing_endpoint() -> (socket2::Socket, Endpoint) {
        use socket2::{Domain, Socket, Type};

        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("a loopback port");
        let addr = socket
            .local_addr()
            .expect("an address")
            .as_socket()
            .expect("an IP address");
        let endpoint = Endpoint::parse(&format!("http://{addr}/")).expect("a URL");
        (socket, endpoint)
    }

    /// A request as the test server read it.
    #[derive(Debug)]
    struct Seen {
        conn: usize,
        head: String,
        body: Vec<u8>,
    }

    /// A server on a loopback port the kernel picks that answers each
    /// request with the next of `answers` (`None`: close the connection
    /// instead), reporting every request it reads.
    fn server(answers: Vec<Option<&'static str>>) -> (Endpoint, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("an address");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut answers = answers.into_iter();
            for conn in 0.. {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream.set_read_timeout(Some(LONG)).expect("a timeout");
                let mut reader = BufReader::new(stream);
                while let Some(seen) = read_request(&mut reader, conn) {
                    let _ = tx.send(seen);
                    match answers.next() {
                        Some(Some(answer)) => {
                            reader
                                .get_mut()
                                .write_all(answer.as_bytes())
                                .expect("the answer is sent");
                        }
                        Some(None) => break,
                        None => return,
                    }
                }
            }
        });
        let endpoint = Endpoint::parse(&format!("http://{addr}/v1/traces")).expect("a URL");
        (endpoint, rx)
    }

    fn read_request(reader: &mut BufReader<TcpStream>, conn: usize) -> Option<Seen> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut fields);
        assert!(request
            .parse(head.as_bytes())
            .expect("a valid head")
            .is_complete());
        let length: usize = request
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("content-length"))
            .map(|f| {
                std::str::from_utf8(f.value)
                    .expect("text")
                    .parse()
                    .expect("a number")
            })
            .expect("a content-length");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(Seen { conn, head, body })
    }

    const OK: &str =
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn sends_a_protobuf_post_with_its_length_and_host() {
        let (endpoint, seen) = server(vec![Some(OK)]);
        let authority = endpoint.authority();
        let mut client = Client::new(endpoint);
        let answer = client.post(b"\x0a\x00", LONG).expect("answered");
        assert_eq!(answer.status, 200);
        let request = seen.recv().expect("a request");
        assert!(
            request.head.starts_with("POST /v1/traces HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert!(
            request.head.contains(&format!("\r\nHost: {authority}\r\n")),
            "{}",
            request.head
        );
        assert!(
            request
                .head
                .contains("\r\nContent-Type: application/x-protobuf\r\n"),
            "{}",
            request.head
        );
        assert!(
            request.head.contains("\r\nContent-Length: 2\r\n"),
            "{}",
            request.head
        );
        assert_eq!(request.body, b"\x0a\x00");
    }

    #[test]
    fn keeps_the_connection_between_requests() {
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\x0a\x00\r\n0\r\n\r\n";
        let (endpoint, seen) = server(vec![Some(OK), Some(chunked), Some(OK)]);
        let mut client = Client::new(endpoint);
        for n in 0..3u8 {
            let answer = client.post(&[n], LONG).expect("answered");
            assert_eq!(answer.status, 200);
        }
        assert_eq!(client.connects(), 1);
        let conns: Vec<usize> = seen.iter().take(3).map(|s| s.conn).collect();
        assert_eq!(conns, [0, 0, 0]);
    }

    #[test]
    fn reconnects_after_the_collector_closed_an_idle_connection() {
        // The first connection answers once, then is closed as the second
        // request arrives: that request is sent again on a new one.
        let (endpoint, seen) = server(vec![Some(OK), None, Some(OK)]);
        let mut client = Client::new(endpoint);
        assert_eq!(client.post(b"one", LONG).expect("answered").status, 200);
        assert_eq!(client.post(b"two", LONG).expect("answered").status, 200);
        assert_eq!(client.connects(), 2);
        let seen: Vec<(usize, Vec<u8>)> = seen.iter().take(3).map(|s| (s.conn, s.body)).collect();
        assert_eq!(
            seen,
            [
                (0, b"one".to_vec()),
                (0, b"two".to_vec()),
                (1, b"two".to_vec())
            ]
        );
    }

    #[test]
    fn a_closing_answer_opens_a_new_connection_next_time() {
        let closing = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 4\r\n\r\ndown";
        let (endpoint, _seen) = server(vec![Some(closing), Some(OK)]);
        let mut client = Client::new(endpoint);
        let answer = client.post(b"x", LONG).expect("answered");
        assert_eq!(answer.status, 503);
        assert_eq!(answer.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(answer.body, b"down");
        assert_eq!(client.post(b"x", LONG).expect("answered").status, 200);
        assert_eq!(client.connects(), 2);
    }

    #[test]
    fn a_fresh_connection_closed_without_an_answer_is_an_error() {
        let (endpoint, seen) = server(vec![None, Some(OK)]);
        let mut client = Client::new(endpoint);
        let err = client.post(b"x", LONG).expect_err("no answer");
        assert!(
            matches!(err, PostError::Answer(AnswerError::Closed)),
            "{err:?}"
        );
        assert_eq!(seen.iter().take(1).count(), 1);
        // Not sent twice: the connection was new, so its end was no sign
        // of a stale one.
        assert_eq!(client.connects(), 1);
    }

    #[test]
    fn a_silent_collector_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let addr = listener.local_addr().expect("an address");
        // Accepted by the kernel and never read or answered.
        let endpoint = Endpoint::parse(&format!("http://{addr}/")).expect("a URL");
        let mut client = Client::new(endpoint);
        let err = client
            .post(b"x", Duration::from_millis(200))
            .expect_err("no answer");
        assert!(matches!(err, PostError::Timeout(_)), "{err:?}");
        drop(listener);
    }

    #[test]
    fn a_refused_connection_says_where() {
        let (_held, endpoint) = refusing_endpoint();
        let addr = endpoint.authority();
        let err = Client::new(endpoint)
            .post(b"x", LONG)
            .expect_err("nothing listens");
        assert!(matches!(err, PostError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[test]
    fn an_unknown_name_is_a_resolve_error() {
        let endpoint = Endpoint::parse("http://collector.invalid:4318/").expect("a URL");
        let err = Client::new(endpoint)
            .post(b"x", LONG)
            .expect_err("no such name");
        assert!(
            matches!(err, PostError::Resolve { .. } | PostError::NoAddress(_)),
            "{err:?}"
        );
        assert!(err.to_string().contains("collector.invalid"), "{err}");
    }
}
