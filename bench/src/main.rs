//! `ringway-bench`: the load generator and comparison runner.
//!
//! Its load generator and `compare` runner are the subject of their own
//! work item; until then the L4 comparison lives in `scripts/bench-tcp.sh`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!(
        "ringway-bench: the load generator is not built yet; \
         for the TCP comparison run scripts/bench-tcp.sh"
    );
    std::process::ExitCode::from(2)
}
