//! What AES-128-GCM alone costs per GB on the proxy core: the cipher every
//! TLS run of the bench negotiates, with ring (the provider ringway's TLS
//! and the generator's use), on whole 16 KiB records, the largest TLS
//! allows. A TLS proxy carrying bulk data opens (or seals) each record
//! once; GCM costs the same both ways, so sealing stands for either.
//!
//! It is the floor under the price of TLS per byte: a proxy's CPU per GB
//! over TLS against its own plaintext CPU per GB plus this shows what its
//! TLS costs beyond the cipher (the ratio tables' `plus_aes`).

use std::thread;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};

/// Plaintext of one record.
const RECORD: usize = 16 * 1024;
/// Bytes sealed: long enough that the thread's CPU clock (nanoseconds)
/// and the first records' cold caches weigh nothing, short enough to take
/// a fraction of a second.
const TOTAL: usize = 1 << 30;

/// CPU seconds per GB (10^9 bytes) of AES-128-GCM sealing on one thread
/// pinned to `core`.
pub fn seconds_per_gb(core: usize) -> Result<f64, String> {
    let worker = thread::Builder::new()
        .name("aes-gcm-cost".into())
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                return Err(format!("cannot pin a thread to core {core}"));
            }
            seal_all()
        })
        .map_err(|e| format!("cannot start the AES-GCM thread: {e}"))?;
    let cpu = worker
        .join()
        .map_err(|_| "the AES-GCM thread panicked".to_owned())??;
    Ok(cpu.as_secs_f64() / (TOTAL as f64 / 1e9))
}

/// Seals [`TOTAL`] bytes in [`RECORD`]s; returns the thread's CPU time.
fn seal_all() -> Result<Duration, String> {
    let key =
        UnboundKey::new(&AES_128_GCM, &[0x42; 16]).map_err(|_| "an AES-128 key".to_owned())?;
    let key = LessSafeKey::new(key);
    let mut record = vec![0x5a_u8; RECORD];
    let start = thread_cpu()?;
    for seq in 0..(TOTAL / RECORD) as u64 {
        // A nonce per record, as TLS derives them from the sequence.
        let mut nonce = [0; 12];
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([23, 3, 3, 64, 17]),
                &mut record,
            )
            .map_err(|_| "AES-GCM sealing failed".to_owned())?;
        // The tag is written after the record in TLS; keep it observable.
        let _ = std::hint::black_box(tag);
    }
    Ok(thread_cpu()?.saturating_sub(start))
}

/// This thread's CPU time.
fn thread_cpu() -> Result<Duration, String> {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .map_err(|e| format!("cannot read the thread's CPU clock: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_a_gigabyte_is_measured() {
        let s = seconds_per_gb(0).expect("measured");
        assert!(s.is_finite() && s > 0.0, "{s} s/GB");
    }
}
