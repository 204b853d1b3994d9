//! Shared harness of ringway's end-to-end tests.
//!
//! The tests drive the real `ringway` binary over real loopback sockets.
//! What they share with the benches lives in the kit, `ringway_kit`: the
//! launcher ([`ringway_kit::Ringway`]), the admin API client
//! ([`ringway_kit::admin`]), the `/proc` readers ([`ringway_kit::procfs`]),
//! the counting origin ([`ringway_kit::origin`], the echo and sink behind
//! most TCP tests) and the test ports ([`ringway_kit::ports`]). What is
//! particular to the tests lives here: [`config`] and [`http_config`] build
//! their configs, [`origin`] runs scripted TCP peers on plain `std::net`
//! threads, [`http_origin`] is a recording HTTP/1.1 origin that misbehaves
//! on purpose for the error tests, and [`http_client`] a byte-exact client,
//! on the shared wire reader [`http_wire`]; [`data`] produces and checks the
//! byte streams, [`net`] holds client sockets, the scripted peers' accept
//! loop and socket tricks. [`mod@bench`] runs the load generator,
//! `ringway-bench load`, against the kit's counting origin. [`histograms`]
//! reads histogram series out of `/metrics`, and [`prometheus`] runs
//! Prometheus's own `promtool` and server against it. [`mod@access_log`]
//! reads what the access log wrote and its counters. [`otlp_receiver`] is
//! a real OTLP/HTTP trace receiver, [`trace`] builds the `[tracing]`
//! section and reads trace headers and spans back, and [`otel_python`]
//! runs the OpenTelemetry Python SDK's scripts that check both. [`paced`]
//! offers HTTP load at a fixed rate, each connection on its own schedule,
//! and counts what comes back (the rate limit tests).
//!
//! Every blocking call the harness makes is bounded: sockets get timeouts,
//! waits on the proxy take a deadline. A test that goes wrong fails; it does
//! not hang.
#![forbid(unsafe_code)]
#![allow(
    clippy::disallowed_types,
    reason = "the workspace bans std::sync::Mutex to keep locks off worker cores; \
              the harness runs on test threads, where a lock is the simple tool"
)]

pub mod access_log;
pub mod bench;
pub mod config;
pub mod data;
pub mod histograms;
pub mod http_client;
pub mod http_config;
pub mod http_origin;
pub mod http_wire;
pub mod net;
pub mod origin;
pub mod otel_python;
pub mod otlp_receiver;
pub mod paced;
pub mod pki;
pub mod prometheus;
pub mod rollout;
pub mod tls_client;
pub mod trace;
pub mod xml;

pub use config::{up_to_two_cores, ConfigFile, ConfigMapVolume, ProxyConfig};
pub use data::{Digest, Transfer};
pub use net::client;
pub use origin::Origin;
/// The kit's address where nothing listens, under the name the bench tests
/// import it by.
pub use ringway_kit::ports::dead_endpoint;

/// The kit's launcher functions under the path [`mod@bench`] and the bench
/// tests use.
pub mod proxy {
    pub use ringway_kit::launcher::{binary, run_program_to_exit, sibling_binary, Program};
}
