//! Reading the end of a log is the kit's ([`ringway_kit::logfile`]); this
//! module keeps the path the bench's modules import it by.

pub use ringway_kit::logfile::tail;
