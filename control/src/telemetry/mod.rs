//! What the control core sends out of the process about the traffic the
//! workers carry: for now the spans of sampled requests, exported to an
//! OpenTelemetry collector ([`otlp`]).

pub mod otlp;
