//! A listener removed by a reload while clients keep connecting to it: the
//! connections the kernel accepted before it stopped run on the table that
//! had the listener, never on the new one (where its index means another
//! listener, or none: a worker that looked it up there would panic).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::ProxyConfig;

/// Longest wait for a reload to reach the worker.
const WAIT: Duration = Duration::from_secs(20);
/// Reloads that remove the listener (each followed by one adding it back).
const CYCLES: u64 = 25;

fn apply(admin_addr: std::net::SocketAddr, config: &str, generation: u64) {
    let response = admin::post(admin_addr, "/config", config);
    assert_eq!(response.status, 200, "POST /config: {response:?}");
    poll(
        &format!("the worker runs generation {generation}"),
        WAIT,
        || {
            let stats = admin::stats(admin_addr);
            if stats.worker_generations().iter().all(|&g| g == generation) {
                Ok(())
            } else {
                Err(stats.json.to_string())
            }
        },
    );
}

#[test]
fn removing_the_last_listener_under_connects_keeps_the_worker_running() {
    let origin = CountingOrigin::echo();
    // `extra` is the last listener: once removed, its index is past the end
    // of the new table's listeners.
    let with = ProxyConfig::new(&[origin.addr()]).listener("extra", &[origin.addr()]);
    let without = with.clone().without_listener("extra");
    let proxy = Ringway::start(&with.to_toml());
    let target = with.listener_addr("extra");

    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicU64::new(0));
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, connected) = (Arc::clone(&stop), Arc::clone(&connected));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Refused while the listener is gone; either way the
                    // connection is dropped at once.
                    if TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_ok() {
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let mut generation = 1;
    for _ in 0..CYCLES {
        generation += 1;
        apply(with.admin, &without.to_toml(), generation);
        generation += 1;
        apply(with.admin, &with.to_toml(), generation);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().expect("a connecting thread panicked");
    }
    eprintln!(
        "{} connects during {CYCLES} removals",
        connected.load(Ordering::Relaxed)
    );
    let ready = admin::get(with.admin, "/ready");
    assert_eq!(ready.status, 200, "the worker is gone: {ready:?}");
    assert!(
        !proxy.stderr().contains("panicked"),
        "a worker panicked:\n{}",
        proxy.stderr()
    );
    proxy.stop().assert_clean();
}
