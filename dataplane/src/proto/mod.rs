//! Wire codecs: sans-IO, they take bytes and return parsed heads, body
//! framing and errors, and never touch a socket, the ring or a counter.
//! HTTP/2 framing and HPACK will sit beside `h1`.

pub mod h1;
