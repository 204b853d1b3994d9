//! Requests whose framing is malformed or ambiguous, and requests over the
//! listener's limits: ringway answers with the status of the fault, closes
//! the connection, and nothing (or, for faults inside a chunked body, no
//! complete request and no smuggled one) reaches the origin. One test per
//! vector and transport, so that a failure names both: every vector runs
//! against a plain listener (the tests at the top level) and against a TLS
//! listener (the same names under `tls::`), where TLS must change nothing
//! of what is refused or what reaches the origin.

use std::time::Duration;

use ringway_kit::Ringway;
use ringway_tests::http_client::{wait_metric, HttpConn};
use ringway_tests::http_config::{quote, HttpConfig};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::pki::Ca;
use ringway_tests::tls_client::{AnyStream, TlsClient, Transport};
use tempfile::TempDir;

/// Declares one `#[test]` per vector of [`vector`], named for it, sending
/// it over `$over`. The one list of the vectors: a vector left out of it
/// is dead code, which the lints refuse.
macro_rules! vector_tests {
    ($over:expr) => {
        vector_tests!(@each $over;
            content_length_with_transfer_encoding_is_400,
            transfer_encoding_with_content_length_is_400,
            two_differing_content_lengths_are_400,
            two_equal_content_length_fields_are_400,
            a_content_length_list_is_400,
            content_length_with_a_plus_sign_is_400,
            content_length_in_hex_is_400,
            content_length_with_an_underscore_is_400,
            content_length_with_inner_space_is_400,
            negative_content_length_is_400,
            transfer_encoding_gzip_is_400,
            transfer_encoding_chunked_then_gzip_is_400,
            transfer_encoding_gzip_then_chunked_is_400,
            transfer_encoding_in_an_http_1_0_request_is_400,
            a_chunk_size_that_is_not_hex_is_400,
            a_chunk_size_of_17_hex_digits_is_400,
            a_chunk_size_line_ending_in_a_bare_lf_is_400,
            an_obs_folded_field_is_400,
            whitespace_before_the_colon_is_400,
            a_nul_in_a_field_value_is_400,
            a_bare_cr_in_a_field_value_is_400,
            a_missing_host_is_400,
            two_host_fields_are_400,
            a_70_kib_header_block_is_431,
            a_header_block_split_over_many_writes_still_hits_the_limit,
            one_hundred_and_one_fields_are_431,
            one_hundred_fields_are_accepted,
            a_9_kib_request_target_is_414,
            half_a_head_is_408_after_the_header_timeout,
            a_content_length_over_max_body_is_413_without_reading_the_body,
            a_chunked_body_growing_past_max_body_is_413,
            connection_cannot_strip_the_content_length,
        );
    };
    (@each $over:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                crate::vector::$name($over);
            }
        )+
    };
}

vector_tests!(Over::Plain);

/// Every vector again, on a listener that terminates TLS: the bytes go in
/// TLS records, the answer comes back in them.
mod tls {
    use super::Over;

    vector_tests!(Over::Tls);
}

/// "Soon", for things that happen at once.
const SOON: Duration = Duration::from_secs(10);
/// The request a smuggling attempt hides behind the framing of another.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// The listener a vector is sent to.
#[derive(Debug, Clone, Copy)]
enum Over {
    /// Plain HTTP.
    Plain,
    /// HTTPS, with a certificate the client trusts.
    Tls,
}

/// A proxy forwarding everything to an origin that would answer anything,
/// and the client transport its listener takes.
struct Setup {
    origin: HttpOrigin,
    config: HttpConfig,
    transport: Transport,
    _proxy: Ringway,
    /// The TLS listener's certificate files, kept while the proxy runs.
    _pki: Option<TempDir>,
}

impl Setup {
    fn new(over: Over, tweak: impl FnOnce(HttpConfig) -> HttpConfig) -> Self {
        let origin = HttpOrigin::ok("served");
        let config = tweak(HttpConfig::forward_all(&[origin.addr()]));
        let (config, transport, pki) = match over {
            Over::Plain => (config, Transport::Plain, None),
            Over::Tls => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let ca = Ca::new(dir.path(), "smuggling");
                let server = ca.server("server", &["localhost"]);
                let tls = format!(
                    "{{ cert = {}, key = {} }}",
                    quote(&server.cert_str()),
                    quote(&server.key_str())
                );
                let client = TlsClient::new(&[&ca.pem]);
                (
                    config.listener_key("tls", &tls),
                    Transport::Tls(client),
                    Some(dir),
                )
            }
        };
        let proxy = Ringway::start(&config.to_toml());
        Self {
            origin,
            config,
            transport,
            _proxy: proxy,
            _pki: pki,
        }
    }

    /// A client connection to the listener (handshake done, over TLS).
    fn open(&self) -> HttpConn<AnyStream> {
        self.transport.open(self.config.listen)
    }

    /// Sends `bytes` in one write, expects ringway's own `status` answer
    /// with `reason`, then the connection closed.
    fn expect_refusal(&self, bytes: &[u8], status: u16, reason: &str) {
        let mut conn = self.open();
        conn.set_timeouts(SOON);
        // The proxy may close before taking everything in; what it
        // answered is still there to read.
        let _ = conn.try_send_raw(bytes);
        self.expect_answer(&mut conn, status, reason);
    }

    fn expect_answer(&self, conn: &mut HttpConn<AnyStream>, status: u16, reason: &str) {
        let response = conn.try_read(false).unwrap_or_else(|e| {
            panic!("no {status} answer: {e}; origin: {}", self.origin.summary())
        });
        response.assert_ringway_error(status, reason);
        conn.assert_closed(SOON);
        wait_metric(
            self.config.admin,
            "ringway_http_errors_total",
            &[("listener", "web"), ("reason", reason)],
            1.0,
        );
    }

    /// Nothing at all reached the origin.
    fn assert_origin_untouched(&self) {
        assert!(
            self.origin.requests().is_empty(),
            "requests reached the origin: {}",
            self.origin.summary()
        );
        assert_eq!(
            self.origin.raw_total(),
            0,
            "bytes reached the origin: {}",
            self.origin.summary()
        );
    }

    /// No complete request, and no trace of the smuggled one, reached the
    /// origin (the head before a bad chunk may have).
    fn assert_nothing_smuggled(&self) {
        assert!(
            self.origin.requests().is_empty(),
            "a complete request reached the origin: {}",
            self.origin.summary()
        );
        assert!(
            !self.origin.raw_contains(b"/smuggled"),
            "the smuggled request reached the origin: {}",
            self.origin.summary()
        );
    }
}

/// The vectors, each run over the listener `over` says.
mod vector {
    use super::*;

    /// A request head with `fields` between `Host` and the empty line, then
    /// `body`.
    fn request(line: &str, fields: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("{line}\r\nHost: x\r\n{fields}\r\n").into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// A body that ends a chunked message early and hides a request after it.
    fn smuggling_body() -> Vec<u8> {
        let mut body = b"0\r\n\r\n".to_vec();
        body.extend_from_slice(SMUGGLED);
        body
    }

    /// A POST with framing fields `fields` and the smuggling body is refused
    /// with 400 before anything goes upstream.
    fn bad_framing(over: Over, fields: &str) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(
            &request("POST / HTTP/1.1", fields, &smuggling_body()),
            400,
            "bad_request",
        );
        setup.assert_origin_untouched();
    }

    /// A GET whose head holds `fields` (after `Host`) is refused with 400.
    fn bad_head(over: Over, line: &str, fields: &str) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(&request(line, fields, b""), 400, "bad_request");
        setup.assert_origin_untouched();
    }

    /// A chunked POST whose body is `body` (bad somewhere) is refused with 400,
    /// and neither a complete request nor the smuggled one reaches the origin.
    fn bad_chunks(over: Over, body: &[u8]) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(
            &request("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\n", body),
            400,
            "bad_request",
        );
        setup.assert_nothing_smuggled();
    }

    fn then_smuggled(prefix: &[u8]) -> Vec<u8> {
        let mut body = prefix.to_vec();
        body.extend_from_slice(b"0\r\n\r\n");
        body.extend_from_slice(SMUGGLED);
        body
    }

    pub fn content_length_with_transfer_encoding_is_400(over: Over) {
        bad_framing(over, "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n");
    }

    pub fn transfer_encoding_with_content_length_is_400(over: Over) {
        bad_framing(over, "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n");
    }

    pub fn two_differing_content_lengths_are_400(over: Over) {
        bad_framing(over, "Content-Length: 5\r\nContent-Length: 40\r\n");
    }

    pub fn two_equal_content_length_fields_are_400(over: Over) {
        bad_framing(over, "Content-Length: 40\r\nContent-Length: 40\r\n");
    }

    pub fn a_content_length_list_is_400(over: Over) {
        bad_framing(over, "Content-Length: 5, 5\r\n");
    }

    pub fn content_length_with_a_plus_sign_is_400(over: Over) {
        bad_framing(over, "Content-Length: +5\r\n");
    }

    pub fn content_length_in_hex_is_400(over: Over) {
        bad_framing(over, "Content-Length: 0x10\r\n");
    }

    pub fn content_length_with_an_underscore_is_400(over: Over) {
        bad_framing(over, "Content-Length: 1_0\r\n");
    }

    pub fn content_length_with_inner_space_is_400(over: Over) {
        bad_framing(over, "Content-Length: 1 0\r\n");
    }

    pub fn negative_content_length_is_400(over: Over) {
        bad_framing(over, "Content-Length: -1\r\n");
    }

    pub fn transfer_encoding_gzip_is_400(over: Over) {
        bad_framing(over, "Transfer-Encoding: gzip\r\n");
    }

    pub fn transfer_encoding_chunked_then_gzip_is_400(over: Over) {
        bad_framing(over, "Transfer-Encoding: chunked, gzip\r\n");
    }

    pub fn transfer_encoding_gzip_then_chunked_is_400(over: Over) {
        bad_framing(over, "Transfer-Encoding: gzip, chunked\r\n");
    }

    pub fn transfer_encoding_in_an_http_1_0_request_is_400(over: Over) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(
            &request(
                "POST / HTTP/1.0",
                "Transfer-Encoding: chunked\r\n",
                &smuggling_body(),
            ),
            400,
            "bad_request",
        );
        setup.assert_origin_untouched();
    }

    pub fn a_chunk_size_that_is_not_hex_is_400(over: Over) {
        bad_chunks(over, &then_smuggled(b"zz\r\n"));
    }

    pub fn a_chunk_size_of_17_hex_digits_is_400(over: Over) {
        // A parser that wraps at 64 bits reads this as 5.
        bad_chunks(over, &then_smuggled(b"10000000000000005\r\nhello\r\n"));
    }

    pub fn a_chunk_size_line_ending_in_a_bare_lf_is_400(over: Over) {
        bad_chunks(over, &then_smuggled(b"5\nhello\r\n"));
    }

    pub fn an_obs_folded_field_is_400(over: Over) {
        bad_head(over, "GET / HTTP/1.1", "X-Folded: one\r\n two\r\n");
    }

    pub fn whitespace_before_the_colon_is_400(over: Over) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request");
        setup.assert_origin_untouched();
    }

    pub fn a_nul_in_a_field_value_is_400(over: Over) {
        bad_head(over, "GET / HTTP/1.1", "X-Value: a\0b\r\n");
    }

    pub fn a_bare_cr_in_a_field_value_is_400(over: Over) {
        bad_head(over, "GET / HTTP/1.1", "X-Value: a\rb\r\n");
    }

    pub fn a_missing_host_is_400(over: Over) {
        let setup = Setup::new(over, |c| c);
        setup.expect_refusal(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "bad_request");
        setup.assert_origin_untouched();
    }

    pub fn two_host_fields_are_400(over: Over) {
        bad_head(over, "GET / HTTP/1.1", "Host: y\r\n");
    }

    /// Header fields of `each` bytes (line included) adding up to `total`.
    fn big_fields(total: usize, each: usize) -> Vec<Vec<u8>> {
        (0..total / each)
            .map(|i| {
                let name = format!("X-Filler-{i:04}: ");
                let mut line = name.into_bytes();
                line.resize(each - 2, b'a');
                line.extend_from_slice(b"\r\n");
                line
            })
            .collect()
    }

    pub fn a_70_kib_header_block_is_431(over: Over) {
        let setup = Setup::new(over, |c| c);
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for field in big_fields(70 * 1024, 1024) {
            bytes.extend_from_slice(&field);
        }
        bytes.extend_from_slice(b"\r\n");
        setup.expect_refusal(&bytes, 431, "header_too_large");
        setup.assert_origin_untouched();
    }

    pub fn a_header_block_split_over_many_writes_still_hits_the_limit(over: Over) {
        let setup = Setup::new(over, |c| c);
        let mut conn = setup.open();
        conn.set_timeouts(SOON);
        let mut pieces = vec![b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec()];
        pieces.extend(big_fields(70 * 1024, 1024));
        pieces.push(b"\r\n".to_vec());
        for piece in &pieces {
            // Once ringway answered it may close; the rest is not needed.
            if conn.try_send_raw(piece).is_err() {
                break;
            }
        }
        setup.expect_answer(&mut conn, 431, "header_too_large");
        setup.assert_origin_untouched();
    }

    pub fn one_hundred_and_one_fields_are_431(over: Over) {
        let setup = Setup::new(over, |c| c);
        // `Host` and 100 more: 101 fields, one over the limit of 100.
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..100 {
            bytes.extend_from_slice(format!("X-F{i}: {i}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        setup.expect_refusal(&bytes, 431, "header_too_large");
        setup.assert_origin_untouched();
    }

    pub fn one_hundred_fields_are_accepted(over: Over) {
        let setup = Setup::new(over, |c| c);
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..99 {
            bytes.extend_from_slice(format!("X-F{i}: {i}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        let mut conn = setup.open();
        conn.send_raw(&bytes);
        let response = conn.read();
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, b"served");
    }

    pub fn a_9_kib_request_target_is_414(over: Over) {
        let setup = Setup::new(over, |c| c);
        let target = format!("/{}", "t".repeat(9 * 1024));
        setup.expect_refusal(
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            414,
            "uri_too_long",
        );
        setup.assert_origin_untouched();
    }

    pub fn half_a_head_is_408_after_the_header_timeout(over: Over) {
        let setup = Setup::new(over, |c| c.header_timeout("1s"));
        let mut conn = setup.open();
        conn.set_timeouts(SOON);
        conn.send_raw(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Half: ");
        setup.expect_answer(&mut conn, 408, "header_timeout");
        setup.assert_origin_untouched();
    }

    pub fn a_content_length_over_max_body_is_413_without_reading_the_body(over: Over) {
        let setup = Setup::new(over, |c| c.max_body(1024 * 1024));
        let mut conn = setup.open();
        conn.set_timeouts(SOON);
        // Only the head: the answer must not wait for the body.
        conn.send_raw(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n");
        setup.expect_answer(&mut conn, 413, "body_too_large");
        setup.assert_origin_untouched();
    }

    pub fn a_chunked_body_growing_past_max_body_is_413(over: Over) {
        let setup = Setup::new(over, |c| c.max_body(1024));
        let mut conn = setup.open();
        conn.set_timeouts(SOON);
        let mut bytes =
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..2 {
            bytes.extend_from_slice(b"258\r\n");
            bytes.extend_from_slice(&[b'b'; 600]);
            bytes.extend_from_slice(b"\r\n");
        }
        let _ = conn.try_send_raw(&bytes);
        setup.expect_answer(&mut conn, 413, "body_too_large");
        // The head may have gone upstream before the body grew too large; the
        // request must never have been completed there.
        assert!(
            setup.origin.requests().is_empty(),
            "{}",
            setup.origin.summary()
        );
    }

    /// `Connection` may name fields as hop-by-hop, but never the ones that frame
    /// the body: if naming `Content-Length` dropped it on the way upstream, the
    /// body (a whole request here) would reach the origin as a request of its
    /// own. ringway writes the framing from what it parsed instead.
    pub fn connection_cannot_strip_the_content_length(over: Over) {
        let setup = Setup::new(over, |c| c);
        let mut conn = setup.open();
        conn.set_timeouts(SOON);
        let head = format!(
        "POST /outer HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: {}\r\n\r\n",
        SMUGGLED.len()
    );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(SMUGGLED);
        conn.send_raw(&bytes);
        let response = conn.read();
        assert_eq!(response.status, 200, "{}", setup.origin.summary());
        let requests = setup.origin.requests();
        assert_eq!(requests.len(), 1, "{}", setup.origin.summary());
        assert_eq!(requests[0].target, "/outer");
        assert_eq!(requests[0].body, SMUGGLED, "{}", setup.origin.summary());
    }
}
