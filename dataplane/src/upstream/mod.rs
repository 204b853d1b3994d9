//! Choosing and reaching upstream endpoints.

pub mod balance;
pub mod connect;
pub mod pool;
