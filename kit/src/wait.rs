//! Bounded waits for conditions the proxy reaches soon but signals to no
//! one: poll, sleep a little, poll again, give up at a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// Pause between two polls of a condition.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `probe` every 20 ms until it returns `Ok`, and returns that value;
/// after `timeout`, returns the last `Err` the probe gave.
pub fn until<T>(
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        thread::sleep(POLL_EVERY);
    }
}

/// [`until`], panicking after `timeout` with `what` and the last `Err`.
pub fn poll<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Result<T, String>) -> T {
    until(timeout, probe)
        .unwrap_or_else(|last| panic!("{what}: not reached within {timeout:?}; last: {last}"))
}
