//! Access logs on the control core: the writer thread that drains the
//! workers' rings ([`writer`]) and the line formats ([`format`]).

pub mod format;
pub mod writer;

pub use self::writer::AccessWriter;
