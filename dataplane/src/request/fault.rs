//! The faults ringway injects on purpose (a route's or a TCP listener's
//! `fault`), as the records of a request or a connection name them: kept
//! apart from [`super::Reason`], so that an injected abort is never taken
//! for a real failure.

/// A fault injected into one request (or one TCP connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Answered (or reset, for a TCP connection) by ringway at once,
    /// never sent upstream.
    Abort,
    /// Held for the configured delay before it went upstream.
    Delay,
}

impl Fault {
    /// Every fault, in the order of their counters.
    pub const ALL: [Fault; 2] = [Fault::Abort, Fault::Delay];

    /// The name in metrics labels, access logs, spans and the
    /// `x-ringway-fault` response field.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Abort => "abort",
            Fault::Delay => "delay",
        }
    }

    /// The fault a record's byte names (see [`Fault::byte`]).
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Fault::Abort),
            2 => Some(Fault::Delay),
            _ => None,
        }
    }

    /// One byte for a record: 0 is no fault.
    pub fn byte(fault: Option<Self>) -> u8 {
        match fault {
            None => 0,
            Some(Fault::Abort) => 1,
            Some(Fault::Delay) => 2,
        }
    }
}
