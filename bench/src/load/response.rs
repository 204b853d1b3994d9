//! Framing of the HTTP/1.1 responses that `load` and `compare`'s memory run read.
//!
//! Only what a benchmark needs: the status, where the response ends (a
//! `Content-Length` body; the servers under test answer fixed-size bodies,
//! so chunked or close-delimited bodies are refused as errors, never guessed
//! at), and whether the server means to close the connection.

/// Header lines a response may carry; the proxies under test add a handful.
const MAX_HEADERS: usize = 32;

/// The head of one complete response, and its length on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Bytes of the status line and header lines, the blank line included.
    pub head_len: usize,
    /// Bytes of the body, from `Content-Length`.
    pub body_len: usize,
    /// The server will close the connection after this response.
    pub close: bool,
}

impl Head {
    /// Bytes of the whole response.
    pub fn total_len(&self) -> usize {
        self.head_len + self.body_len
    }
}

/// Why a response cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The head is not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Malformed(String),
    /// The head is larger than [`MAX_HEADERS`] header lines.
    #[error("response has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// No `Content-Length`, or a `Transfer-Encoding`: the bench only reads
    /// fixed-length bodies.
    #[error("response is not framed by Content-Length")]
    NoLength,
    /// `Content-Length` is not a number, or two of them disagree.
    #[error("invalid Content-Length")]
    BadLength,
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, FramingError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(FramingError::TooManyHeaders),
        Err(e) => return Err(FramingError::Malformed(e.to_string())),
    };
    // httparse leaves these unset only on a partial parse.
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Err(FramingError::Malformed("no status line".into()));
    };
    let mut body_len: Option<usize> = None;
    // HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 keeps unless close.
    let mut close = version == 0;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or(FramingError::BadLength)?;
            if body_len.is_some_and(|seen| seen != len) {
                return Err(FramingError::BadLength);
            }
            body_len = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(FramingError::NoLength);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    close = false;
                }
            }
        }
    }
    // 1xx, 204 and 304 have no body by definition; the bench expects a 200
    // and will count anything else as an error, but frames it first so the
    // connection can go on.
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let body_len = match body_len {
        Some(len) => len,
        None if bodiless => 0,
        None => return Err(FramingError::NoLength),
    };
    Ok(Some(Head {
        status,
        head_len,
        body_len,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 3\r\n\r\nok\n";

    #[test]
    fn frames_a_keep_alive_response() {
        let head = parse_head(OK).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.body_len, 3);
        assert_eq!(head.total_len(), OK.len());
        assert!(!head.close);
    }

    #[test]
    fn waits_for_the_whole_head() {
        for cut in 0..OK.len() - 3 {
            assert_eq!(parse_head(&OK[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn sees_connection_close() {
        let r = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_head(r).unwrap().unwrap().close);
        let r10 = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_head(r10).unwrap().unwrap().close);
        let r10ka = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_head(r10ka).unwrap().unwrap().close);
    }

    #[test]
    fn frames_other_statuses() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nbusy\n";
        let head = parse_head(r).unwrap().unwrap();
        assert_eq!((head.status, head.body_len), (503, 5));
        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_head(r).unwrap().unwrap().body_len, 0);
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked), Err(FramingError::NoLength));
        let none = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
        assert_eq!(parse_head(none), Err(FramingError::NoLength));
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n";
        assert_eq!(parse_head(bad), Err(FramingError::BadLength));
        let signed = b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n";
        assert_eq!(parse_head(signed), Err(FramingError::BadLength));
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(parse_head(two), Err(FramingError::BadLength));
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(parse_head(same).unwrap().unwrap().body_len, 3);
        assert!(matches!(
            parse_head(b"HTTP/2 200\r\n\r\n"),
            Err(FramingError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(FramingError::Malformed(_))
        ));
    }
}
