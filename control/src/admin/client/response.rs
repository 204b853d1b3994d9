//! Reading an HTTP/1.1 response off a blocking stream: interim (1xx)
//! responses skipped, then the head, then a body framed by
//! `Transfer-Encoding: chunked`, `Content-Length` or the end of the stream.

use std::io::{self, BufRead, Read};

/// Largest response body read, far above what the admin API sends (its
/// biggest answers, `/metrics` and `/config`, are a few MiB at most).
const MAX_BODY: usize = 64 << 20;

/// An answer of the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order, names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (lossily decoded as UTF-8: the API answers text).
    pub body: String,
}

impl Response {
    /// The first header named `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server keeps the connection open after this response:
    /// no `Connection: close`, and a body whose end was not the stream's.
    pub fn keeps_alive(&self) -> bool {
        let closes = self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let framed = self.header("content-length").is_some()
            || self.header("transfer-encoding").is_some()
            || self.status == 204
            || self.status == 304;
        !closes && framed
    }
}

/// Reads one response: skips interim (1xx) ones, then reads the head and,
/// unless `head_only` (the answer to a `HEAD`), the body.
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> io::Result<Response> {
    loop {
        let status = parse_status_line(&read_line(reader)?)?;
        let headers = read_fields(reader)?;
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        if !(head_only || status == 204 || status == 304) {
            let body = read_body(reader, &response)?;
            response.body = String::from_utf8_lossy(&body).into_owned();
        }
        return Ok(response);
    }
}

/// The header fields up to the empty line that ends the head.
fn read_fields(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(fields);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// The body as the head frames it: chunked wins over a length, as RFC 9112
/// says; with neither, the body runs to the end of the stream.
fn read_body(reader: &mut impl BufRead, head: &Response) -> io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader);
    }
    if let Some(length) = head.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|e| invalid(format!("bad content-length {length:?}: {e}")))?;
        if length > MAX_BODY {
            return Err(invalid(format!("a body of {length} bytes is too large")));
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|e| invalid(format!("bad chunk size line {line:?}: {e}")))?;
        if size == 0 {
            // Trailer fields, up to the empty line; the API sends none, and
            // nothing here needs them.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if size > MAX_BODY - body.len() {
            return Err(invalid("a chunked body too large".to_owned()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk data not followed by CRLF".to_owned()));
        }
    }
}

/// One line without its CRLF (or bare LF); the end of the stream here is an
/// error, since every caller is inside a response.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection ended inside a response",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut words = line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(invalid(format!("bad status line {line:?}")));
    }
    code.parse()
        .map_err(|e| invalid(format!("bad status code in {line:?}: {e}")))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Response {
        read_response(&mut raw.as_bytes(), false).expect("a valid response")
    }

    fn refuse(raw: &str) -> io::Error {
        read_response(&mut raw.as_bytes(), false).expect_err("not a valid response")
    }

    #[test]
    fn reads_a_response_by_content_length() {
        let response = parse(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 3\r\n\r\nok\nextra",
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("Content-Type"), Some("text/plain"));
        assert_eq!(response.body, "ok\n");
        assert!(response.keeps_alive());
    }

    #[test]
    fn reads_a_chunked_body_with_extensions_and_trailers() {
        let response = parse(
            "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n\
             6;ext=1\r\nerror:\r\n7\r\n x: bad\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n",
        );
        assert_eq!(response.status, 400);
        assert_eq!(response.body, "error: x: bad0123456789");
        assert!(response.keeps_alive());
    }

    #[test]
    fn chunked_framing_wins_over_a_length() {
        let response = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
             2\r\nok\r\n0\r\n\r\n",
        );
        assert_eq!(response.body, "ok");
    }

    #[test]
    fn skips_interim_responses_with_their_fields() {
        let response = parse(
            "HTTP/1.1 100 Continue\r\n\r\n\
             HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
             HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nmade\n",
        );
        assert_eq!(response.status, 201);
        assert_eq!(
            response.header("link"),
            None,
            "fields of a 103 are not kept"
        );
        assert_eq!(response.body, "made\n");
    }

    #[test]
    fn reads_to_the_end_without_a_length() {
        let response = parse("HTTP/1.0 404 Not Found\r\n\r\nnot found\n");
        assert_eq!(response.status, 404);
        assert_eq!(response.body, "not found\n");
        assert!(!response.keeps_alive());
    }

    #[test]
    fn reads_no_body_after_head_204_or_304() {
        let mut raw = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\
                       HTTP/1.1 204 No Content\r\n\r\n\
                       HTTP/1.1 304 Not Modified\r\n\r\n\
                       HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            .as_bytes();
        let head = read_response(&mut raw, true).expect("the answer to a HEAD");
        assert_eq!((head.status, head.body.as_str()), (200, ""));
        let empty = read_response(&mut raw, false).expect("a 204");
        assert_eq!((empty.status, empty.body.as_str()), (204, ""));
        assert!(empty.keeps_alive());
        let unchanged = read_response(&mut raw, false).expect("a 304");
        assert_eq!((unchanged.status, unchanged.body.as_str()), (304, ""));
        let last = read_response(&mut raw, false).expect("the last answer");
        assert_eq!((last.status, last.body.as_str()), (200, "ok"));
    }

    #[test]
    fn reads_two_responses_from_one_stream() {
        let mut raw = "HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\napplied generation 42\n\n\
                       HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno\n"
            .as_bytes();
        let first = read_response(&mut raw, false).expect("a first response");
        assert_eq!(first.status, 200);
        assert_eq!(first.body, "applied generation 42\n\n");
        assert!(first.keeps_alive());
        let second = read_response(&mut raw, false).expect("a second response");
        assert_eq!(second.status, 404);
        assert_eq!(second.body, "no\n");
        assert!(!second.keeps_alive());
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert_eq!(
            refuse("SSH-2.0-OpenSSH\r\n\r\n").kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            refuse("HTTP/1.1 2000 OK\r\n\r\n").kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            refuse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            refuse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn refuses_bad_chunk_framing() {
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let err = refuse(&format!("{chunked}zz\r\nab\r\n0\r\n\r\n"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let err = refuse(&format!("{chunked}2\r\nabc\r\n0\r\n\r\n"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn refuses_a_body_larger_than_the_cap() {
        let err = refuse(&format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        ));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let err = refuse(&format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        ));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn a_stream_cut_short_is_an_error() {
        for (raw, what) in [
            ("HTTP/1.1 200 OK\r\nX: 1\r\n", "inside the head"),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                "inside a sized body",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "inside a chunk",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
                "before the last chunk",
            ),
            ("HTTP/1.1 100 Continue\r\n\r\n", "after an interim response"),
        ] {
            let err = refuse(raw);
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{what}: {err}");
        }
    }
}
