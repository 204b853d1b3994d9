//! Distributed tracing on the worker: reading and writing the trace
//! context a request carries ([`context`]) and the span records a worker
//! hands to the control core's exporter ([`span`]).

pub mod context;
pub mod span;
