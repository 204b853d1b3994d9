//! Shared harness of ringway's end-to-end tests.
//!
//! The tests drive the real `ringway` binary over real loopback sockets:
//! [`Ringway`] starts and stops the proxy and reads its exit report,
//! [`origin`] runs origin servers on plain `std::net` threads, [`data`]
//! produces and checks the byte streams, [`ports`] hands out listening ports,
//! [`probe`] looks at the running process through `/proc` and [`admin`]
//! talks to its admin API. For HTTP listeners, [`http_origin`] is a
//! recording origin, [`http_client`] a byte-exact client and
//! [`http_config`] builds their configs, on the shared wire reader
//! [`http_wire`]. [`bench`] runs the load generator, `ringway-bench load`,
//! against servers that count what it sends.
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

pub mod admin;
pub mod bench;
pub mod config;
pub mod data;
pub mod http_client;
pub mod http_config;
pub mod http_origin;
pub mod http_wire;
pub mod net;
pub mod origin;
pub mod ports;
pub mod probe;
pub mod proxy;
pub mod wait;

pub use config::{ConfigFile, ConfigMapVolume, ProxyConfig};
pub use data::{Digest, Transfer};
pub use net::{client, raise_fd_limit};
pub use origin::Origin;
pub use ports::{dead_endpoint, free_port};
pub use proxy::{Exit, Ringway, WorkerLine};
