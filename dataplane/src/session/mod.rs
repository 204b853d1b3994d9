//! Per-connection flows.

pub mod tcp;
