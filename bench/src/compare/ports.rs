//! Ports for the systems a run starts (proxies, admin APIs, origins that
//! bind by number): the kit's per-process port blocks
//! ([`ringway_kit::ports`]), below the kernel's ephemeral range and owned by
//! this process for its whole life, so a port handed out here cannot be
//! taken by a parallel test or by an outgoing connection before the system
//! binds it.

use std::io;
use std::net::SocketAddr;

/// A loopback address no other user of the kit's blocks gets, for a
/// system to bind.
pub fn next() -> io::Result<SocketAddr> {
    Ok(ringway_kit::ports::free_addr())
}
