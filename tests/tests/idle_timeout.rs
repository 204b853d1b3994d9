//! The listener's idle timeout: a quiet connection is closed, a busy one is
//! left alone, and one holding bytes for a client that stopped reading is
//! reset.

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use ringway_kit::origin::CountingOrigin;
use ringway_kit::{admin, wait, Ringway};
use ringway_tests::net::{ping, read_until_closed, set_timeouts, Ended};
use ringway_tests::origin::{self, Origin};
use ringway_tests::{client, ProxyConfig};

/// "Within a few seconds", for a 500 ms idle timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

#[test]
fn idle_connection_is_closed() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).idle_timeout("500ms");
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    // One exchange, so the connection is surely established end to end.
    stream.write_all(b"ping").expect("sending");
    let mut pong = [0u8; 4];
    stream.read_exact(&mut pong).expect("reading the echo");
    set_timeouts(&stream, PROMPTLY);
    let started = Instant::now();
    let ended = read_until_closed(&mut stream);
    let waited = started.elapsed();

    let exit = proxy.stop();
    assert!(
        matches!(ended, Ok(Ended::Eof(0))),
        "an idle connection ends with a FIN within {PROMPTLY:?}; got {ended:?} after {waited:?}; \
         ringway's report:\n{}",
        exit.stderr
    );
    exit.assert_clean();
    assert_eq!(exit.total("idle_timeouts"), 1);
}

#[test]
fn busy_connection_is_not_closed() {
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]).idle_timeout("500ms");
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    set_timeouts(&stream, PROMPTLY);
    // Every 100 ms for 2 s: never 500 ms without traffic.
    for i in 0..20 {
        ping(&mut stream, format!("tick {i:02}").as_bytes());
        thread::sleep(Duration::from_millis(100));
    }
    drop(stream);
    let received = origin.next_ok(PROMPTLY);
    assert_eq!(received.bytes, 20 * 7);

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("idle_timeouts"), 0);
}

/// A connection whose client stopped reading while the upstream still had
/// bytes for it sits idle too, but closing it with a FIN would let the
/// client, once it reads again, take the part it got for the whole
/// stream: the idle close then resets both sides.
#[test]
fn idle_connection_holding_unsent_bytes_is_reset() {
    let origin = Origin::start(origin::source(1 << 30));
    let config = ProxyConfig::new(&[origin.addr()]).idle_timeout("500ms");
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    // The client reads nothing until the proxy has given up on it.
    wait::poll("the idle close", PROMPTLY, || {
        match admin::stats(config.admin).sum("idle_timeouts") {
            0 => Err("no idle timeout yet".to_owned()),
            _ => Ok(()),
        }
    });
    set_timeouts(&stream, PROMPTLY);
    let ended = read_until_closed(&mut stream);
    let upstream = origin.next_result(PROMPTLY);

    let exit = proxy.stop();
    assert!(
        matches!(ended, Ok(Ended::Reset(n)) if n > 0),
        "a stream cut with bytes still to go ended with {ended:?}, not a reset; ringway's report:\n{}",
        exit.stderr
    );
    assert!(
        upstream.is_err(),
        "the upstream's stream ended without an error: {upstream:?}"
    );
    exit.assert_clean();
    assert_eq!(exit.total("idle_timeouts"), 1);
}
