//! The L4 proxy path: bytes arrive intact and in order, many connections
//! at once, half-close in both directions, resets in both directions.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use ringway_kit::limits::raise_fd_limit;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::{Exit, Ringway};
use ringway_tests::data::{self, read_to_end_hashed};
use ringway_tests::net::{read_until_closed, reset, try_client, Ended};
use ringway_tests::origin::{self, Origin};
use ringway_tests::{client, ProxyConfig};

const MIB: u64 = 1024 * 1024;
/// Long enough for hundreds of MiB through a debug build on two cores.
const BULK_TIMEOUT: Duration = Duration::from_secs(240);
/// "Promptly", for things the proxy must do at once.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Sends 256 MiB through the proxy to an echoing origin and checks both the
/// stream the origin got and the one echoed back.
fn echo_256_mib(args: &[&str]) -> Exit {
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start_with(&config.to_toml(), args);

    let len = 256 * MIB;
    let stream = client(config.listen);
    let (sent, echoed) = data::round_trip(&stream, len);
    let sent = sent.expect("sending 256 MiB");
    let echoed = echoed.expect("reading the echo");
    let received = origin.next_ok(BULK_TIMEOUT);

    assert_eq!(sent.bytes, len);
    assert_eq!(received, sent, "what the origin received");
    assert_eq!(echoed, sent, "what came back to the client");

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("bytes_from_clients"), len);
    assert_eq!(exit.total("bytes_from_upstreams"), len);
    exit
}

#[test]
fn transfers_256_mib_both_ways_intact() {
    echo_256_mib(&[]);
}

#[test]
fn transfers_256_mib_both_ways_intact_with_basic_io_uring() {
    let exit = echo_256_mib(&["--io-uring", "basic"]);
    // The fallback paths were the ones exercised.
    for worker in &exit.workers {
        for feature in ["multishot_accept", "multishot_recv", "defer_taskrun"] {
            assert_eq!(
                worker.fields.get(feature).map(String::as_str),
                Some("false"),
                "{feature} with --io-uring basic: {}",
                exit.stderr
            );
        }
    }
}

/// Opens 1,000 connections first, then sends a distinct message on each
/// and checks each echo; stops the proxy and checks it served them all.
fn thousand_connections(proxy: Ringway, config: &ProxyConfig) -> Exit {
    const CONNECTIONS: usize = 1000;
    let outcome = (|| -> Result<(), String> {
        let mut streams = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let stream = try_client(config.listen)
                .map_err(|e| format!("connection {i}: connecting: {e}"))?;
            streams.push(stream);
        }
        for (i, stream) in streams.iter_mut().enumerate() {
            stream
                .write_all(message(i).as_bytes())
                .map_err(|e| format!("connection {i}: sending: {e}"))?;
        }
        for (i, stream) in streams.iter_mut().enumerate() {
            let want = message(i);
            let mut got = vec![0u8; want.len()];
            stream
                .read_exact(&mut got)
                .map_err(|e| format!("connection {i}: no full echo: {e}"))?;
            if got != want.as_bytes() {
                return Err(format!(
                    "connection {i}: echo {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
        }
        Ok(())
    })();
    let exit = proxy.stop();
    if let Err(failure) = outcome {
        panic!("{failure}; ringway's report:\n{}", exit.stderr);
    }
    exit
}

fn message(i: usize) -> String {
    format!("connection #{i:04}: {}\n", "x".repeat(i % 97))
}

#[test]
fn serves_1000_concurrent_connections() {
    raise_fd_limit();
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());
    let exit = thousand_connections(proxy, &config);
    exit.assert_clean();
    assert_eq!(exit.total("accepted"), 1000);
    assert_eq!(exit.total("accept_errors"), 0);
    assert_eq!(exit.total("no_upstream"), 0);
}

/// The same, with the proxy started under the soft limit of open files most
/// systems give a service (1024): 1,000 proxied connections need about
/// 2,000 descriptors, so the proxy has to raise its own limit.
#[test]
fn serves_1000_concurrent_connections_from_a_1024_fd_soft_limit() {
    raise_fd_limit();
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start_with_fd_limit(&config.to_toml(), 1024);
    let exit = thousand_connections(proxy, &config);
    exit.assert_clean();
    assert_eq!(exit.total("accept_errors"), 0);
    assert_eq!(exit.total("no_upstream"), 0);
}

/// The client sends and closes its side; the origin sees the end of the
/// request and only then answers, in full.
#[test]
fn half_close_from_client_still_delivers_the_reply() {
    let reply_len = 3 * MIB;
    let origin = Origin::start(origin::reply_after_eof(reply_len));
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    let request = b"GET /everything HTTP/1.0\r\n\r\n".repeat(1000);
    stream.write_all(&request).expect("sending the request");
    stream
        .shutdown(Shutdown::Write)
        .expect("shutting down our side");
    let reply = read_to_end_hashed(&mut stream).expect("reading the reply");

    let (got, sent) = origin.next_ok(PROMPTLY);
    assert_eq!(got, request, "the origin got the whole request");
    assert_eq!(reply, sent, "the client got the whole reply");
    assert_eq!(sent.bytes, reply_len);
    proxy.stop().assert_clean();
}

/// The origin sends and closes its side; the client sees the end and then
/// still sends, and the origin receives it.
#[test]
fn half_close_from_origin_still_delivers_the_client_data() {
    let greeting_len = MIB + 17;
    let origin = Origin::start(origin::half_closing(greeting_len));
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    let greeting = read_to_end_hashed(&mut stream).expect("reading to the origin's FIN");
    let late = b"sent after the origin closed its side\n".repeat(5000);
    stream
        .write_all(&late)
        .expect("sending after the origin's FIN");
    stream
        .shutdown(Shutdown::Write)
        .expect("shutting down our side");

    let (sent, got) = origin.next_ok(PROMPTLY);
    assert_eq!(greeting, sent, "the client got the whole greeting");
    assert_eq!(got, late, "the origin got what was sent after its FIN");
    proxy.stop().assert_clean();
}

/// An origin that resets the connection: the client sees the reset.
#[test]
fn origin_reset_reaches_the_client() {
    let origin = Origin::start(|mut stream| {
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello)?;
        reset(stream);
        Ok(hello)
    });
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    ringway_tests::net::set_timeouts(&stream, PROMPTLY);
    stream.write_all(b"hello").expect("sending");
    assert_eq!(&origin.next_ok(PROMPTLY), b"hello");
    let started = Instant::now();
    let ended = read_until_closed(&mut stream);
    let waited = started.elapsed();

    let exit = proxy.stop();
    assert!(
        matches!(ended, Ok(Ended::Reset(0))),
        "the origin's reset reaches the client within {PROMPTLY:?}; got {ended:?} after \
         {waited:?}; ringway's report:\n{}",
        exit.stderr
    );
    exit.assert_clean();
    assert_eq!(exit.total("resets"), 1);
}

/// A client that resets the connection: the origin sees the reset.
#[test]
fn client_reset_reaches_the_origin() {
    let origin = Origin::start(|mut stream| {
        ringway_tests::net::set_timeouts(&stream, PROMPTLY);
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello)?;
        stream.write_all(b"olleh")?;
        let started = Instant::now();
        let ended = read_until_closed(&mut stream);
        Ok((ended, started.elapsed()))
    });
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    stream.write_all(b"hello").expect("sending");
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).expect("reading the reply");
    assert_eq!(&reply, b"olleh");
    reset(stream);

    // The origin gives up reading after PROMPTLY, so this returns.
    let (ended, waited) = origin.next_ok(2 * PROMPTLY);

    let exit = proxy.stop();
    assert!(
        matches!(ended, Ok(Ended::Reset(0))),
        "the client's reset reaches the origin within {PROMPTLY:?}; got {ended:?} after \
         {waited:?}; ringway's report:\n{}",
        exit.stderr
    );
    exit.assert_clean();
    assert_eq!(exit.total("resets"), 1);
}
