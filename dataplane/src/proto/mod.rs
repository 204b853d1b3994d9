//! Protocol handling on the forwarding path.

pub mod tcp;
