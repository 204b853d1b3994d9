//! `ringway-bench compare`: ringway side by side with nginx and HAProxy.
//!
//! [`configs`] writes equivalent configurations of the proxies, [`system`]
//! starts, measures and stops each system under test, [`procfs`] reads CPU
//! time and memory from `/proc`. See docs/architecture.md, "The bench
//! harness".

pub mod configs;
pub mod procfs;
pub mod system;
