//! Per-connection flows.

pub mod http;
pub mod tcp;
