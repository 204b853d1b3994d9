//! Workload identities: the X509-SVID rules a peer's certificate must keep
//! to before its SPIFFE ID (checked by [`crate::spiffe`]) is believed.
//!
//! The chain is verified by webpki against the configured anchors; what a
//! mesh needs on top is stricter and lives here ([`svid`]): the leaf names
//! exactly one workload, cannot sign other certificates, and belongs to a
//! trust domain this side accepts. The verifiers ([`verify`]) run both in
//! rustls's handshake, on the worker, once per handshake.

pub mod svid;
pub mod verify;

pub use svid::{check_svid, spiffe_id_of};
