//! A paced HTTP/1.1 load generator for the rate limit tests: `connections`
//! keep-alive connections, each sending `GET` requests at its share of a
//! total rate against its own schedule, and counting what came back.
//!
//! Each connection has a writer thread and a reader thread: the writer
//! sends request `i` at `start + i / share` whether or not the answers
//! to the earlier ones have come (HTTP/1.1 pipelining), so the rate
//! offered does not depend on the proxy's latency; the reader parses every
//! response in order. A writer that falls behind its schedule (a busy
//! machine) sends at once what is due, so the requests of a second are
//! still that second's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// How long a reader waits for the next byte before calling the run
/// broken: far beyond any answer's time, even on a loaded machine.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    /// Where.
    pub addr: SocketAddr,
    /// The request target.
    pub path: String,
    /// Extra header fields, `name: value` each.
    pub headers: Vec<String>,
    /// Requests per second over all connections.
    pub rate: u32,
    /// How long to send.
    pub duration: Duration,
    /// Connections, each sending `rate / connections` per second.
    pub connections: usize,
}

/// What came back, over all connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// 200 answers.
    pub ok: u64,
    /// 429 answers.
    pub limited: u64,
    /// Any other status.
    pub other: u64,
    /// 429s whose `retry-after` was not an integer of at least 1, or
    /// whose `x-ringway-error` was not `rate_limited`.
    pub malformed_429: u64,
    /// From the first request written to the last answer read, over all
    /// connections.
    pub elapsed: Duration,
}

impl Tally {
    /// Answers read.
    pub fn answered(&self) -> u64 {
        self.ok + self.limited + self.other
    }

    /// 200s per second of `elapsed`.
    pub fn accepted_rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.limited += other.limited;
        self.other += other.other;
        self.malformed_429 += other.malformed_429;
    }
}

/// Runs `load` and sums what its connections got. Panics if a connection
/// breaks (every request must get an answer).
pub fn run(load: &Load) -> Tally {
    let connections = load.connections.max(1);
    let per_connection = f64::from(load.rate) / connections as f64;
    let count = (per_connection * load.duration.as_secs_f64()).round() as u64;
    let request = request_bytes(&load.path, &load.headers);
    // Every connection is open before the clock starts.
    let streams: Vec<TcpStream> = (0..connections)
        .map(|_| {
            let stream = TcpStream::connect(load.addr)
                .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", load.addr));
            stream.set_nodelay(true).expect("TCP_NODELAY");
            stream
                .set_read_timeout(Some(READ_TIMEOUT))
                .expect("a read timeout");
            stream
        })
        .collect();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / per_connection);
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, stream)| {
            let request = request.clone();
            // The connections' schedules are staggered over one interval.
            let offset = interval.mul_f64(c as f64 / connections as f64);
            thread::spawn(move || connection(stream, &request, start + offset, interval, count))
        })
        .collect();
    let mut total = Tally::default();
    let mut last = start;
    for h in handles {
        let (tally, ended) = h.join().expect("a load connection panicked");
        total.add(&tally);
        last = last.max(ended);
    }
    total.elapsed = last - start;
    total
}

/// One connection: `count` requests, the first at `first`, then one per
/// `interval`. Returns its tally and when its last answer was read.
fn connection(
    stream: TcpStream,
    request: &[u8],
    first: Instant,
    interval: Duration,
    count: u64,
) -> (Tally, Instant) {
    let mut writer = stream.try_clone().expect("a second handle on the socket");
    let request = request.to_vec();
    let sender = thread::spawn(move || {
        for i in 0..count {
            let due = first + interval.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                // The schedule itself, not a wait for the proxy.
                thread::sleep(due - now);
            }
            writer
                .write_all(&request)
                .unwrap_or_else(|e| panic!("request {i} could not be sent: {e}"));
        }
    });
    let mut reader = BufReader::new(stream);
    let mut tally = Tally {
        sent: count,
        ..Tally::default()
    };
    for i in 0..count {
        let answer = read_answer(&mut reader)
            .unwrap_or_else(|e| panic!("answer {i} of {count} did not come whole: {e}"));
        match answer.status {
            200 => tally.ok += 1,
            429 => {
                tally.limited += 1;
                let retry_ok = answer
                    .retry_after
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|s| s >= 1);
                if !retry_ok || answer.error.as_deref() != Some("rate_limited") {
                    tally.malformed_429 += 1;
                }
            }
            _ => tally.other += 1,
        }
    }
    let ended = Instant::now();
    sender.join().expect("the sender panicked");
    (tally, ended)
}

/// The bytes of one request.
pub fn request_bytes(path: &str, headers: &[String]) -> Vec<u8> {
    let mut text = format!("GET {path} HTTP/1.1\r\nhost: ratelimit.test\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// What the rate limit tests read of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its `retry-after`.
    pub retry_after: Option<String>,
    /// Its `x-ringway-error`.
    pub error: Option<String>,
}

/// Reads one answer (head and a `content-length` body) from `reader`.
pub fn read_answer<R: Read>(reader: &mut BufReader<R>) -> Result<Answer, String> {
    let mut line = String::new();
    let mut read_line = |line: &mut String| -> Result<(), String> {
        line.clear();
        match reader.read_line(line) {
            Ok(0) => Err("the connection closed".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    };
    read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not a status line: {line:?}"))?;
    let mut answer = Answer {
        status,
        retry_after: None,
        error: None,
    };
    let mut length = 0usize;
    loop {
        read_line(&mut line)?;
        let field = line.trim_end();
        if field.is_empty() {
            break;
        }
        let Some((name, value)) = field.split_once(':') else {
            return Err(format!("not a header field: {field:?}"));
        };
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = value
                    .parse()
                    .map_err(|_| format!("bad content-length {value:?}"))?
            }
            "retry-after" => answer.retry_after = Some(value),
            "x-ringway-error" => answer.error = Some(value),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(answer)
}

/// Sends `requests` on one keep-alive connection to `addr` as fast as the
/// connection takes them (pipelined, a writer thread beside the reader),
/// and returns the answers in order. Panics if one does not come whole.
pub fn pipeline(addr: SocketAddr, requests: Vec<Vec<u8>>) -> Vec<Answer> {
    let stream =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("a read timeout");
    let count = requests.len();
    let mut writer = stream.try_clone().expect("a second handle on the socket");
    let sender = thread::spawn(move || {
        for (i, r) in requests.iter().enumerate() {
            writer
                .write_all(r)
                .unwrap_or_else(|e| panic!("request {i} could not be sent: {e}"));
        }
    });
    let mut reader = BufReader::new(stream);
    let answers = (0..count)
        .map(|i| {
            read_answer(&mut reader)
                .unwrap_or_else(|e| panic!("answer {i} of {count} did not come whole: {e}"))
        })
        .collect();
    sender.join().expect("the sender panicked");
    answers
}
