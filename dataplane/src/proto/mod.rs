//! Protocol handling on the forwarding path.

pub mod h1;
pub mod tcp;
