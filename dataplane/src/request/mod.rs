//! The protocol-neutral request layer: what routing, header edits, ringway's
//! own answers and the exchange work on, whatever the wire version.

pub mod answer;
mod fault;
pub mod outcome;
mod reason;
mod view;

pub use self::answer::Answer;
pub use self::fault::Fault;
pub use self::outcome::Outcome;
pub use self::reason::Reason;
pub use self::view::{HeaderFields, RequestView};
