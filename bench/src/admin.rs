//! The admin API client is the kit's ([`ringway_kit::admin`]); this module
//! keeps the path the bench's modules import it by.

pub use ringway_kit::admin::AdminClient;
