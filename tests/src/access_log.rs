//! Reading what ringway's access log wrote: the lines of a log file (only
//! whole ones: the writer may be half-way through a write), JSON lines
//! parsed and checked field by field against what the client saw
//! ([`Sent`], [`Want`], [`check_line`]), text lines split into their
//! fields, the access log counters of `/metrics`, the size of a record,
//! and a named pipe to log into when a test wants the writer held still.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use control::access_log::format::FIELDS;
use dataplane::access::record::Entry;
use ringway_kit::admin;
use ringway_kit::wait::poll;
use serde_json::{json, Value};

use crate::http_client::{HttpConn, HttpResponse};
use crate::http_wire::Framing;

/// Bound on a wait for a worker to count a request's record.
const COUNTED: Duration = Duration::from_secs(30);

/// `ringway_access_log_records_total`: records the workers queued.
pub const RECORDS: &str = "ringway_access_log_records_total";
/// `ringway_access_log_dropped_total`: records the workers dropped, their
/// ring full.
pub const DROPPED: &str = "ringway_access_log_dropped_total";
/// `ringway_access_log_written_total`: records the writer wrote.
pub const WRITTEN: &str = "ringway_access_log_written_total";
/// `ringway_access_log_write_failures_total`: records the writer lost.
pub const FAILED: &str = "ringway_access_log_write_failures_total";

/// The access log counters of `/metrics`, each summed over its label sets
/// (the workers, for the first two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Queued by the workers.
    pub records: u64,
    /// Dropped by the workers.
    pub dropped: u64,
    /// Written by the writer.
    pub written: u64,
    /// Lost by the writer.
    pub failed: u64,
}

impl Counts {
    /// Reads them from the admin API at `admin`.
    pub fn read(admin: SocketAddr) -> Self {
        let metrics = admin::metrics(admin);
        // Counters are integers; the exposition writes them as such.
        let get = |name: &str| metrics.sum(name) as u64;
        Self {
            records: get(RECORDS),
            dropped: get(DROPPED),
            written: get(WRITTEN),
            failed: get(FAILED),
        }
    }

    /// Polls until `done` holds of the counters, and returns them; panics
    /// after `timeout` with `what` and the last reading.
    pub fn wait(
        admin: SocketAddr,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Counts) -> bool,
    ) -> Self {
        poll(what, timeout, || {
            let counts = Self::read(admin);
            if done(&counts) {
                Ok(counts)
            } else {
                Err(format!("{counts:?}"))
            }
        })
    }
}

/// One request as the client saw it: when it went, what it wrote, what it
/// read back.
#[derive(Debug)]
pub struct Sent {
    /// Wall clock just before the connect.
    pub before: SystemTime,
    /// Wall clock once the request was over: after its response was read
    /// (by [`send`]), or once its record was counted (by [`send_logged`]).
    pub after: SystemTime,
    /// Bytes the client wrote.
    pub wrote: usize,
    /// Bytes the client read: the response head and its body.
    pub read: usize,
    /// The response.
    pub response: HttpResponse,
}

/// Sends `raw` on a connection of its own and reads one response (see
/// [`send_on`]).
pub fn send(addr: SocketAddr, raw: &[u8]) -> Sent {
    let before = SystemTime::now();
    let mut conn = HttpConn::open(addr);
    Sent {
        before,
        ..send_on(&mut conn, raw)
    }
}

/// Sends `raw` on `conn` and reads one response, which must be framed by
/// a `Content-Length`, so that head plus body is every byte that came.
pub fn send_on(conn: &mut HttpConn, raw: &[u8]) -> Sent {
    let before = SystemTime::now();
    conn.send_raw(raw);
    let response = conn.read();
    let after = SystemTime::now();
    assert!(
        matches!(response.framing, Framing::Length(n) if n == response.body.len() as u64),
        "a response framed by its length: {response:?}"
    );
    assert!(
        conn.wire().buffered().is_empty(),
        "nothing came after the response"
    );
    Sent {
        before,
        after,
        wrote: raw.len(),
        read: response.raw_head.len() + response.body.len(),
        response,
    }
}

/// Like [`send`], then waits for the request's record (see
/// [`logged_by`]).
pub fn send_logged(addr: SocketAddr, admin: SocketAddr, raw: &[u8], logged: u64) -> Sent {
    let mut sent = send(addr, raw);
    sent.after = logged_by(admin, logged);
    sent
}

/// Waits until the workers have queued `logged` records in all
/// (`access_logged` in `/stats` of `admin`), and returns the wall clock
/// then: a request's [`Sent::after`] once its record is counted. A
/// record's start time is worked out before the record is queued, so it
/// lies before that time however the worker was scheduled (the client
/// may read the end of a response before the worker has noted the end of
/// the request).
pub fn logged_by(admin: SocketAddr, logged: u64) -> SystemTime {
    poll(
        &format!("{logged} records queued"),
        COUNTED,
        || match admin::stats(admin).sum("access_logged") {
            n if n >= logged => Ok(()),
            n => Err(format!("{n} records")),
        },
    );
    SystemTime::now()
}

/// What a line must say of a request besides what [`Sent`] tells: every
/// field of [`FIELDS`] is checked, either exactly (`exact`) or by
/// [`check_line`]'s rules for `start_time`, `duration_ms`, `upstream_ms`,
/// `bytes_received` and `bytes_sent`.
#[derive(Debug, Clone)]
pub struct Want {
    exact: Vec<(&'static str, Value)>,
    /// Whether the request got an upstream response head (`upstream_ms`
    /// is then a number, else null).
    upstream_timed: bool,
}

impl Want {
    /// A request on listener `web` from `127.0.0.1`, whose head was read:
    /// its method, path and version; the rest as when no upstream was
    /// reached (set what differs).
    pub fn head(method: &str, path: &str, protocol: &str, status: u16) -> Self {
        Self {
            exact: vec![
                ("method", json!(method)),
                ("authority", json!("example.test")),
                ("path", json!(path)),
                ("protocol", json!(protocol)),
                ("tls", json!(false)),
                ("status", json!(status)),
                ("error", Value::Null),
                ("upstream", Value::Null),
                ("attempts", json!(0)),
                ("listener", json!("web")),
                ("route", Value::Null),
                ("cluster", Value::Null),
                ("request_id", Value::Null),
                ("trace_id", Value::Null),
                ("client", json!("127.0.0.1")),
                ("peer_identity", Value::Null),
                ("fault", Value::Null),
            ],
            upstream_timed: false,
        }
    }

    /// A request whose head did not parse: nothing of it known.
    pub fn unparsed(status: u16) -> Self {
        Self::head("", "", "", status)
            .set("method", Value::Null)
            .set("authority", Value::Null)
            .set("path", Value::Null)
            .set("protocol", Value::Null)
    }

    /// Sets one exactly checked field.
    pub fn set(mut self, key: &'static str, value: Value) -> Self {
        let slot = self
            .exact
            .iter_mut()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no field {key} to set"));
        slot.1 = value;
        self
    }

    /// Proxied by route `route` to cluster `cluster`, answered by `origin`
    /// on the first attempt.
    pub fn proxied(self, route: &str, cluster: &str, origin: SocketAddr) -> Self {
        let mut want = self
            .set("route", json!(route))
            .set("cluster", json!(cluster))
            .set("upstream", json!(origin.to_string()))
            .set("attempts", json!(1));
        want.upstream_timed = true;
        want
    }
}

/// Checks the JSON `line` against the request `sent` and `want`: every
/// key of [`FIELDS`], in that order, and nothing else.
pub fn check_line(line: &str, sent: &Sent, want: &Want) {
    let got = json(line);
    let declared: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys_in_order(line),
        declared,
        "the line has every declared field, in order: {line}"
    );
    let ruled = [
        "start_time",
        "duration_ms",
        "upstream_ms",
        "bytes_received",
        "bytes_sent",
    ];
    let checked: BTreeSet<&str> = want.exact.iter().map(|(k, _)| *k).chain(ruled).collect();
    assert_eq!(
        checked,
        declared.iter().copied().collect::<BTreeSet<_>>(),
        "the test checks every declared field"
    );

    for (key, value) in &want.exact {
        assert_eq!(&got[*key], value, "field {key} of {line}");
    }

    let start = got["start_time"]
        .as_str()
        .unwrap_or_else(|| panic!("start_time is a string: {line}"));
    let start = rfc3339(start);
    assert!(
        to_millis(sent.before) <= start && start <= sent.after,
        "start_time {start:?} is not within the request's {:?}..{:?}: {line}",
        sent.before,
        sent.after
    );

    let duration = got["duration_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("duration_ms is a number: {line}"));
    assert!(duration >= 0.0, "{line}");
    match (&got["upstream_ms"], want.upstream_timed) {
        (Value::Number(n), true) => {
            let upstream = n.as_f64().expect("a number");
            assert!(
                upstream >= 0.0 && duration >= upstream,
                "duration_ms {duration} covers upstream_ms {upstream}: {line}"
            );
        }
        (Value::Null, false) => {}
        (other, timed) => panic!("upstream_ms is {other} (upstream reached: {timed}): {line}"),
    }

    assert_eq!(
        got["bytes_received"],
        json!(sent.wrote),
        "bytes_received counts what the client wrote, head and body: {line}"
    );
    assert_eq!(
        got["bytes_sent"],
        json!(sent.read),
        "bytes_sent counts what the client read, head and body: {line}"
    );
}

/// The one JSON line whose `key` is `value`; panics unless there is
/// exactly one.
pub fn line_where<'a>(lines: &'a [String], key: &str, value: &Value) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| &json(l)[key] == value).collect();
    assert_eq!(
        found.len(),
        1,
        "one line with {key} = {value}; lines:\n{}",
        lines.join("\n")
    );
    found[0]
}

/// The size in bytes of the record of a request with these texts
/// (listener, route, cluster, method, authority, path, request id, peer
/// identity), encoded as a worker does: the fixed part does not depend on
/// the values.
pub fn record_len(texts: [&[u8]; 8]) -> usize {
    let entry = Entry {
        output: 1,
        start_unix_ns: 0,
        duration_ns: 0,
        upstream_ns: None,
        status: Some(200),
        reason: None,
        minor: 1,
        tls: false,
        received: 0,
        sent: 0,
        attempts: 1,
        upstream: None,
        client: "127.0.0.1".parse().expect("an address"),
        trace_id: None,
        fault: None,
        texts,
    };
    let mut out = Vec::new();
    entry.encode(&mut out);
    out.len()
}

/// The whole lines of the file at `path` (without their newlines); none
/// when it does not exist. A last line without its newline yet is left
/// out.
pub fn lines(path: &Path) -> Vec<String> {
    match fs::read(path) {
        Ok(bytes) => whole_lines(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// The lines of `bytes` that end in a newline.
pub fn whole_lines(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls the file at `path` until it holds at least `n` whole lines, and
/// returns them; panics after `timeout`.
pub fn wait_lines(path: &Path, n: usize, timeout: Duration) -> Vec<String> {
    poll(
        &format!("{} holds {n} lines", path.display()),
        timeout,
        || {
            let got = lines(path);
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} lines: {got:#?}", got.len()))
            }
        },
    )
}

/// `line` parsed as one JSON object; panics, showing it, if it is not one.
pub fn json(line: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(other) => panic!("not a JSON object: {other} (line {line:?})"),
        Err(e) => panic!("not JSON ({e}): {line:?}"),
    }
}

/// The keys of the JSON object on `line`, in the order they are written.
pub fn keys_in_order(line: &str) -> Vec<String> {
    // serde_json's map sorts its keys: the order is read off the text.
    // Keys are plain identifiers, and a string value cannot hold `":` at a
    // key's place without its quote being escaped, so a key is a
    // `"name":` right after `{` or `,`.
    let mut keys = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(['{', ',']) {
        rest = &rest[start + 1..];
        let Some(body) = rest.strip_prefix('"') else {
            continue;
        };
        let Some(end) = body.find("\":") else {
            break;
        };
        let key = &body[..end];
        if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            keys.push(key.to_owned());
        }
        rest = &body[end + 2..];
    }
    keys
}

/// One field of a text line: a quoted string (read as JSON, escapes
/// undone) or a bare word (`-` for nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextField {
    /// `"..."`, unescaped.
    Quoted(String),
    /// A word without quotes.
    Bare(String),
}

impl TextField {
    /// Its text, unescaped, whether it was quoted or not.
    pub fn text(&self) -> &str {
        match self {
            TextField::Quoted(s) | TextField::Bare(s) => s,
        }
    }
}

/// The fields of a text line, split at the spaces outside quotes; panics
/// on a quote that does not close.
pub fn text_fields(line: &str) -> Vec<TextField> {
    let mut fields = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' => i += 1,
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                assert!(j < bytes.len(), "a quote does not close in {line:?}");
                let quoted = &line[i..=j];
                let text: String = serde_json::from_str(quoted)
                    .unwrap_or_else(|e| panic!("{quoted} is not a JSON string ({e}) in {line:?}"));
                fields.push(TextField::Quoted(text));
                i = j + 1;
            }
            _ => {
                let end = line[i..].find(' ').map_or(line.len(), |n| i + n);
                fields.push(TextField::Bare(line[i..end].to_owned()));
                i = end;
            }
        }
    }
    fields
}

/// An RFC 3339 time as the access log writes it; panics if it is not one.
pub fn rfc3339(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("start_time {text:?} is not RFC 3339: {e}"))
}

/// `time` cut to whole milliseconds, as the log writes times.
pub fn to_millis(time: SystemTime) -> SystemTime {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("a time after 1970");
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// A named pipe, made with `mkfifo`: an output nobody reads (ringway
/// opens it without blocking, and fails to while no reader is there).
#[derive(Debug)]
pub struct Pipe {
    path: PathBuf,
}

impl Pipe {
    /// Makes the pipe at `path`.
    pub fn make(path: &Path) -> Self {
        let status = Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mkfifo: {e}"));
        assert!(
            status.success(),
            "mkfifo {} failed: {status}",
            path.display()
        );
        Self {
            path: path.to_owned(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the reading end (which lets the writer's open return) and
    /// reads on a thread until every writer closed it; the thread returns
    /// the bytes.
    pub fn read_to_end(&self) -> JoinHandle<Vec<u8>> {
        let path = self.path.clone();
        thread::spawn(move || {
            let mut file = fs::File::open(&path)
                .unwrap_or_else(|e| panic!("cannot open {} to read: {e}", path.display()));
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            bytes
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_lines_at_spaces_outside_quotes() {
        let fields = text_fields(r#""2026-01-01T00:00:00.000Z" GET "/a b\"c" - 200 tls"#);
        assert_eq!(
            fields,
            vec![
                TextField::Quoted("2026-01-01T00:00:00.000Z".into()),
                TextField::Bare("GET".into()),
                TextField::Quoted("/a b\"c".into()),
                TextField::Bare("-".into()),
                TextField::Bare("200".into()),
                TextField::Bare("tls".into()),
            ]
        );
    }

    #[test]
    fn reads_keys_in_order_and_only_whole_lines() {
        let line = r#"{"b":1,"a":"x,\"c\":","c_d":null}"#;
        assert_eq!(keys_in_order(line), vec!["b", "a", "c_d"]);
        assert_eq!(whole_lines(b"one\ntwo\nthr"), vec!["one", "two"]);
        assert!(whole_lines(b"half").is_empty());
    }

    #[test]
    fn cuts_times_to_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_500_999_999);
        assert_eq!(
            to_millis(t),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)
        );
        assert_eq!(
            rfc3339("1970-01-01T00:00:01.500Z"),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)
        );
    }
}
