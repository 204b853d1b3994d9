//! An access log record as a line: JSON (one object per line) or text
//! (space-separated fields, in the order of the JSON keys, `-` for what
//! is absent). The field list is [`FIELDS`]; docs/configuration.md lists
//! the same.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use dataplane::access::record::Record;

/// Every field of a line, in order, with what it holds (the docs' table).
pub const FIELDS: &[(&str, &str)] = &[
    (
        "start_time",
        "when the request head was read, RFC 3339 UTC, milliseconds",
    ),
    ("method", "the request method"),
    (
        "authority",
        "the host the client named (Host, or an absolute-form target's)",
    ),
    ("path", "the request target as sent: path and query"),
    (
        "protocol",
        "HTTP/1.0 or HTTP/1.1 (null when no request line was read)",
    ),
    ("tls", "whether the client spoke TLS"),
    ("status", "the final status sent (null if none was)"),
    (
        "error",
        "the x-ringway-error reason, when ringway answered or cut the request (null otherwise)",
    ),
    (
        "bytes_received",
        "bytes the client sent for the request, head and body",
    ),
    (
        "bytes_sent",
        "bytes sent to the client for the request, heads and body",
    ),
    ("duration_ms", "from the head read to the end of the answer"),
    (
        "upstream_ms",
        "from the upstream connection ready to the response head (null without one)",
    ),
    (
        "upstream",
        "the endpoint of the last attempt (null if none)",
    ),
    ("attempts", "upstream connections the request was sent on"),
    ("listener", "the listener's name"),
    ("route", "the route that matched (null if none)"),
    ("cluster", "the cluster the route sent it to (null if none)"),
    (
        "request_id",
        "x-request-id: the client's, or the one ringway gave the upstream",
    ),
    ("trace_id", "the request's trace id, when it was traced"),
    ("client", "the client's address"),
    (
        "peer_identity",
        "the client's verified SPIFFE ID, on mTLS listeners",
    ),
    (
        "fault",
        "the fault the route's fault injection put in: abort or delay (null if none)",
    ),
];

/// Appends `r` as one JSON line to `out`.
pub fn json(out: &mut Vec<u8>, r: &Record<'_>) {
    let mut line = String::with_capacity(512);
    line.push('{');
    let mut first = true;
    let mut key = |line: &mut String, k: &str| {
        if !first {
            line.push(',');
        }
        first = false;
        line.push('"');
        line.push_str(k);
        line.push_str("\":");
    };
    for (k, v) in values(r) {
        key(&mut line, k);
        match v {
            Value::Text(bytes) if k == "listener" || !bytes.is_empty() => string(&mut line, bytes),
            Value::Text(_) | Value::Null => line.push_str("null"),
            Value::Number(n) => line.push_str(&n),
            Value::Bool(b) => line.push_str(if b { "true" } else { "false" }),
        }
    }
    line.push_str("}\n");
    out.extend_from_slice(line.as_bytes());
}

/// Appends `r` as one text line to `out`: the JSON fields in order,
/// texts that can hold spaces quoted, `-` for what is absent.
pub fn text(out: &mut Vec<u8>, r: &Record<'_>) {
    let mut line = String::with_capacity(256);
    for (i, (k, v)) in values(r).into_iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        match v {
            Value::Text(b"") => line.push('-'),
            Value::Text(bytes) if matches!(k, "path" | "authority" | "peer_identity") => {
                string(&mut line, bytes)
            }
            Value::Text(bytes) => push_clean(&mut line, bytes),
            Value::Null => line.push('-'),
            Value::Number(n) => line.push_str(&n),
            Value::Bool(b) => line.push_str(if b { "tls" } else { "-" }),
        }
    }
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}

enum Value<'a> {
    Text(&'a [u8]),
    Number(String),
    Bool(bool),
    Null,
}

/// Every field of `r`, in [`FIELDS`] order.
fn values<'a>(r: &Record<'a>) -> [(&'static str, Value<'a>); 22] {
    let [listener, route, cluster, method, authority, path, request_id, identity] = r.texts;
    let ms = |ns: u64| Value::Number(format!("{}.{:03}", ns / 1_000_000, ns / 1_000 % 1_000));
    let start = UNIX_EPOCH + Duration::from_nanos(r.start_unix_ns);
    let start = humantime::format_rfc3339_millis(start).to_string();
    let trace = r.trace_id.map(|t| {
        let mut s = String::with_capacity(32);
        for b in t {
            let _ = write!(s, "{b:02x}");
        }
        s
    });
    [
        ("start_time", Value::Number(format!("\"{start}\""))),
        ("method", Value::Text(method)),
        ("authority", Value::Text(authority)),
        ("path", Value::Text(path)),
        (
            "protocol",
            match r.minor {
                0 => Value::Number("\"HTTP/1.0\"".into()),
                1 => Value::Number("\"HTTP/1.1\"".into()),
                _ => Value::Null,
            },
        ),
        ("tls", Value::Bool(r.tls)),
        (
            "status",
            r.status
                .map_or(Value::Null, |s| Value::Number(s.to_string())),
        ),
        (
            "error",
            r.reason.map_or(Value::Null, |reason| {
                Value::Number(format!("\"{}\"", reason.name()))
            }),
        ),
        ("bytes_received", Value::Number(r.received.to_string())),
        ("bytes_sent", Value::Number(r.sent.to_string())),
        ("duration_ms", ms(r.duration_ns)),
        ("upstream_ms", r.upstream_ns.map_or(Value::Null, ms)),
        (
            "upstream",
            r.upstream
                .map_or(Value::Null, |a| Value::Number(format!("\"{a}\""))),
        ),
        ("attempts", Value::Number(r.attempts.to_string())),
        ("listener", Value::Text(listener)),
        ("route", Value::Text(route)),
        ("cluster", Value::Text(cluster)),
        ("request_id", Value::Text(request_id)),
        (
            "trace_id",
            trace.map_or(Value::Null, |t| Value::Number(format!("\"{t}\""))),
        ),
        ("client", Value::Number(format!("\"{}\"", r.client))),
        ("peer_identity", Value::Text(identity)),
        (
            "fault",
            r.fault
                .map_or(Value::Null, |f| Value::Number(format!("\"{}\"", f.name()))),
        ),
    ]
}

/// `bytes` as a JSON string: quotes, backslashes and control characters
/// escaped, bytes that are not UTF-8 replaced.
fn string(line: &mut String, bytes: &[u8]) {
    line.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// A name or id in a text line: anything but a visible character becomes
/// `_`, so a field never splits.
fn push_clean(line: &mut String, bytes: &[u8]) {
    for &b in bytes {
        line.push(if b.is_ascii_graphic() { b as char } else { '_' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::access::record::Entry;
    use dataplane::request::Reason;

    fn entry<'a>(texts: [&'a [u8]; 8]) -> Entry<'a> {
        Entry {
            output: 1,
            start_unix_ns: 1_796_601_600_123_456_789,
            duration_ns: 12_345_678,
            upstream_ns: Some(2_000_000),
            status: Some(503),
            reason: Some(Reason::NoEndpoint),
            minor: 1,
            tls: true,
            received: 80,
            sent: 200,
            attempts: 1,
            upstream: Some("127.0.0.1:9000".parse().expect("addr")),
            client: "10.0.0.9".parse().expect("ip"),
            trace_id: Some([0xab; 16]),
            fault: None,
            texts,
        }
    }

    #[test]
    fn a_json_line_has_every_field_in_order() {
        let mut out = Vec::new();
        let texts: [&[u8]; 8] = [
            b"web",
            b"api",
            b"v1",
            b"GET",
            b"h.example",
            b"/a\"b?c=\x01",
            b"id-1",
            b"",
        ];
        json(&mut out, &entry(texts));
        let line = String::from_utf8(out).expect("utf-8");
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["start_time"], "2026-12-07T00:00:00.123Z");
        assert_eq!(v["path"], "/a\"b?c=\u{1}");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 503);
        assert_eq!(v["error"], "no_endpoint");
        assert_eq!(v["duration_ms"], 12.345);
        assert_eq!(v["upstream_ms"], 2.0);
        assert_eq!(v["upstream"], "127.0.0.1:9000");
        assert_eq!(v["trace_id"], "ab".repeat(16));
        assert_eq!(v["client"], "10.0.0.9");
        assert_eq!(v["peer_identity"], serde_json::Value::Null);
        assert_eq!(v["fault"], serde_json::Value::Null);
        assert_eq!(v["tls"], true);
    }

    #[test]
    fn an_injected_fault_is_named_in_both_formats() {
        let texts: [&[u8]; 8] = [b"web", b"api", b"", b"GET", b"h", b"/", b"", b""];
        let mut e = entry(texts);
        e.reason = None;
        e.fault = Some(dataplane::request::Fault::Abort);
        let mut out = Vec::new();
        json(&mut out, &e);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("a JSON object");
        assert_eq!(v["fault"], "abort");
        assert_eq!(v["error"], serde_json::Value::Null);
        let mut out = Vec::new();
        text(&mut out, &e);
        let line = String::from_utf8(out).expect("utf-8");
        assert!(line.ends_with(" \"abort\"\n"), "{line}");
    }

    #[test]
    fn a_text_line_has_one_field_per_column() {
        let mut out = Vec::new();
        let texts: [&[u8]; 8] = [b"web", b"", b"", b"GET", b"h", b"/a b", b"", b""];
        let mut e = entry(texts);
        e.upstream = None;
        e.upstream_ns = None;
        e.trace_id = None;
        text(&mut out, &e);
        let line = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            line,
            "\"2026-12-07T00:00:00.123Z\" GET \"h\" \"/a b\" \"HTTP/1.1\" tls 503 \"no_endpoint\" 80 200 12.345 - - 1 web - - - - \"10.0.0.9\" - -\n"
        );
    }
}
