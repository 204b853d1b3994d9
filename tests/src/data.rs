//! The byte streams sent through the proxy, and their checksums.
//!
//! Streams repeat one pseudo-random block whose length is no multiple of a
//! page or of the proxy's 32 KiB buffers, so a lost, repeated or reordered
//! buffer changes the SHA-256 of what arrives.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

/// Length of the repeated block: a prime, so no buffer size divides it.
const BLOCK_LEN: usize = 1_048_573;
/// Bytes handed to one `write` call.
const WRITE_CHUNK: usize = 256 * 1024;
/// Bytes asked for by one `read` call.
const READ_CHUNK: usize = 256 * 1024;

/// A SHA-256 checksum, shown in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

/// What went through one side of a connection: how many bytes, and their
/// checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Number of bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, in order.
    pub digest: Digest,
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Writes the first `len` bytes of the test stream to `out`; returns what
/// was written. `progress` is called with the running total after every
/// write, so that a test can watch a sender that is held back.
pub fn write_stream(
    out: &mut impl Write,
    len: u64,
    mut progress: impl FnMut(u64),
) -> io::Result<Transfer> {
    let block = block();
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while written < len {
        let at = (written % BLOCK_LEN as u64) as usize;
        let want = (len - written).min(WRITE_CHUNK as u64) as usize;
        let chunk = &block[at..block.len().min(at + want)];
        let n = out.write(chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        hasher.update(&chunk[..n]);
        written += n as u64;
        progress(written);
    }
    Ok(Transfer {
        bytes: written,
        digest: Digest(hasher.finalize().into()),
    })
}

/// What [`write_stream`] sends for `len` bytes, computed without sending.
pub fn stream_transfer(len: u64) -> Transfer {
    write_stream(&mut io::sink(), len, |_| {}).unwrap_or_else(|e| panic!("io::sink failed: {e}"))
}

/// Sends the first `len` bytes of the test stream on `stream` (from a second
/// thread), then its FIN, while reading what comes back to the end.
/// Returns `(sent, received)`; the sending side's error, if any, is in
/// `sent`.
pub fn round_trip(
    stream: &std::net::TcpStream,
    len: u64,
) -> (io::Result<Transfer>, io::Result<Transfer>) {
    let mut writer = stream
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone the client socket: {e}"));
    let sender = std::thread::spawn(move || {
        let sent = write_stream(&mut writer, len, |_| {});
        let _ = writer.shutdown(std::net::Shutdown::Write);
        sent
    });
    let received = read_to_end_hashed(&mut &*stream);
    let sent = sender
        .join()
        .unwrap_or_else(|_| panic!("the sending thread panicked"));
    (sent, received)
}

/// Reads `input` to its end; returns how many bytes came and their checksum.
pub fn read_to_end_hashed(input: &mut impl Read) -> io::Result<Transfer> {
    read_hashed(input, u64::MAX)
}

/// Reads up to `limit` bytes (fewer at end of stream) and checksums them.
pub fn read_hashed(input: &mut impl Read, limit: u64) -> io::Result<Transfer> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    read_into(input, limit, &mut hasher, &mut total)?;
    Ok(Transfer {
        bytes: total,
        digest: Digest(hasher.finalize().into()),
    })
}

/// A checksum that can be fed in pieces: read some, pause, read the rest.
#[derive(Debug, Default)]
pub struct StreamReader {
    hasher: Sha256,
    total: u64,
}

impl StreamReader {
    /// Reads up to `limit` more bytes (fewer at end of stream); returns how
    /// many came.
    pub fn read(&mut self, input: &mut impl Read, limit: u64) -> io::Result<u64> {
        let before = self.total;
        read_into(input, limit, &mut self.hasher, &mut self.total)?;
        Ok(self.total - before)
    }

    /// Bytes read so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Everything read, as a transfer.
    pub fn finish(self) -> Transfer {
        Transfer {
            bytes: self.total,
            digest: Digest(self.hasher.finalize().into()),
        }
    }
}

fn read_into(
    input: &mut impl Read,
    limit: u64,
    hasher: &mut Sha256,
    total: &mut u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut left = limit;
    while left > 0 {
        let want = left.min(READ_CHUNK as u64) as usize;
        let n = match input.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        *total += n as u64;
        left -= n as u64;
    }
    Ok(())
}

/// The repeated block, made once per process (xorshift64, fixed seed).
fn block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..BLOCK_LEN)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_stream_reads_back_to_the_same_transfer() {
        let len = 3 * BLOCK_LEN as u64 + 12_345;
        let mut bytes = Vec::new();
        let sent = write_stream(&mut bytes, len, |_| {}).expect("writing to a Vec");
        assert_eq!(sent.bytes, len);
        assert_eq!(bytes.len() as u64, len);
        let got = read_to_end_hashed(&mut bytes.as_slice()).expect("reading a slice");
        assert_eq!(got, sent);
        assert_eq!(stream_transfer(len), sent);
    }

    #[test]
    fn a_moved_buffer_changes_the_digest() {
        let mut bytes = Vec::new();
        let sent = write_stream(&mut bytes, 4 * BLOCK_LEN as u64, |_| {}).expect("writing");
        // Swap two 32 KiB buffers.
        let (a, b) = bytes.split_at_mut(32768);
        a.swap_with_slice(&mut b[..32768]);
        let got = read_to_end_hashed(&mut bytes.as_slice()).expect("reading");
        assert_ne!(got.digest, sent.digest);
    }
}
