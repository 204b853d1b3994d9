//! The protocol-neutral request layer: what routing, header edits, ringway's
//! own answers and the exchange work on, whatever the wire version.

mod reason;

pub use self::reason::Reason;
