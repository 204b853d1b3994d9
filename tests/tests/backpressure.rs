//! A slow reader: the proxy holds at most a few buffers per direction and
//! pushes back on the sender instead of buffering without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ringway_kit::procfs::rss_bytes;
use ringway_kit::Ringway;
use ringway_tests::data::StreamReader;
use ringway_tests::origin::{self, Origin};
use ringway_tests::{client, ProxyConfig};

const MIB: u64 = 1024 * 1024;
/// Long enough for hundreds of MiB through a debug build on two cores.
const BULK_TIMEOUT: Duration = Duration::from_secs(240);

#[test]
fn slow_reader_holds_back_the_origin_and_memory_stays_bounded() {
    let len = 256 * MIB;
    let written = Arc::new(AtomicU64::new(0));
    let origin = Origin::start(origin::source_counted(len, Arc::clone(&written)));
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());
    let rss_at_start = rss_bytes(proxy.pid());

    let mut stream = client(config.listen);
    let mut reader = StreamReader::default();
    let first = reader
        .read(&mut stream, MIB)
        .expect("reading the first MiB");
    assert_eq!(first, MIB);

    // Stop reading for two seconds (the scenario, not a wait for an event)
    // and watch the proxy's memory and how far the origin got.
    let mut max_rss = 0;
    let mut max_ahead = 0;
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(100));
        max_rss = max_rss.max(rss_bytes(proxy.pid()));
        max_ahead = max_ahead.max(written.load(Ordering::SeqCst) - reader.total());
    }
    let origin_written = written.load(Ordering::SeqCst);
    eprintln!(
        "slow reader: ringway RSS {} KiB at start, at most {} KiB during the pause; \
         the origin at most {} KiB ahead of the client",
        rss_at_start / 1024,
        max_rss / 1024,
        max_ahead / 1024
    );
    assert!(
        origin_written < len,
        "the origin wrote all {len} bytes to a client that stopped reading"
    );
    assert!(
        max_rss < 64 * MIB,
        "ringway's RSS reached {} MiB (at start: {} MiB)",
        max_rss / MIB,
        rss_at_start / MIB
    );
    assert!(
        max_ahead < 32 * MIB,
        "the origin got {} MiB ahead of the client (kernel buffers + 256 KiB expected)",
        max_ahead / MIB
    );

    reader
        .read(&mut stream, u64::MAX)
        .expect("reading the rest");
    let received = reader.finish();
    // Our FIN lets the origin finish.
    drop(stream);
    let sent = origin.next_ok(BULK_TIMEOUT);
    assert_eq!(sent.bytes, len);
    assert_eq!(received, sent, "what the client got after the pause");

    proxy.stop().assert_clean();
}
