//! The `/proc` readers are the kit's ([`ringway_kit::procfs`]); this module
//! keeps the path the bench's modules import them by.

pub use ringway_kit::procfs::*;
