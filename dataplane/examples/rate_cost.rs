//! What a rate limit check costs: the time per [`RateLimit::check`] of an
//! unkeyed limit (one shared `AtomicU64`, one CAS per request) and of a
//! keyed one (a keyed hash of the client address, a set scan, one CAS),
//! on one thread, and on two threads sharing the limit (the cache line
//! then moves between their cores on every request). The clock is read
//! once per 64 checks, as a worker reads it once per loop turn. Figures
//! only: nothing is asserted.
//!
//! `cargo run --release -p ringway-dataplane --example rate_cost`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use dataplane::table::rate::{Key, RateKey, RateLimit, RateSettings};

/// Checks per thread and measurement.
const CHECKS: u64 = 20_000_000;

fn main() {
    for (name, key) in [
        ("unkeyed", RateKey::Route),
        ("keyed by client address", RateKey::ClientAddress),
    ] {
        let settings = RateSettings {
            // High enough that most checks conform and move the TAT, as
            // under a limit that is not reached (the costlier case: a
            // refusal does not write).
            per_second: 10_000_000,
            burst: 1_000_000,
            key,
            max_keys: 16_384,
        };
        for threads in [1, 2] {
            let limit = Arc::new(RateLimit::new(settings.clone(), None));
            let started = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let limit = Arc::clone(&limit);
                    thread::spawn(move || {
                        let ip = IpAddr::from(Ipv4Addr::new(10, 0, 0, t as u8));
                        let mut now = Instant::now();
                        let mut ok = 0u64;
                        for i in 0..CHECKS {
                            if i % 64 == 0 {
                                now = Instant::now();
                            }
                            ok += u64::from(limit.check(Key::Address(ip), now).is_ok());
                        }
                        black_box(ok)
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            let per = started.elapsed().as_nanos() as f64 / CHECKS as f64;
            println!("{name}, {threads} thread(s): {per:.1} ns per check per thread");
        }
    }
}
