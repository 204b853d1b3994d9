//! The control side of ringway: configuration, the agent that turns it into
//! routing tables, and the command line.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod agent;
pub mod ca;
pub mod cli;
pub mod config;
pub mod reload;
pub mod rollout;
pub mod run;
pub mod signals;
pub mod stats_table;
pub mod telemetry;
