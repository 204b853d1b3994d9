//! Reads on tokio-uring sockets are the kit's ([`ringway_kit::ring_io`]);
//! this module keeps the path the bench's modules import them by.

pub use ringway_kit::ring_io::read_more;
