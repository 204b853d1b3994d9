//! Cross-thread wake-ups: an eventfd another thread notifies to wake a
//! worker through its ring, and a non-blocking pipe workers notify to wake
//! the control agent.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use super::driver::epoll::Watched;
use super::net::read;

/// The writing end: any thread may call [`Notifier::notify`].
#[derive(Debug)]
pub struct Notifier {
    file: File,
}

/// The reading end, owned by the thread that waits on it.
#[derive(Debug)]
pub struct Wakeup {
    file: Rc<Watched<File>>,
}

/// The reading end on its way to the thread that will wait on it.
#[derive(Debug)]
pub struct WakeupFd(File);

/// A new eventfd, as its two ends (two descriptors of one kernel object).
pub fn eventfd() -> io::Result<(Notifier, WakeupFd)> {
    // SAFETY: eventfd(2) takes no pointers; a negative result is an error.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let file = File::from(owned);
    let reader = file.try_clone()?;
    Ok((Notifier { file }, WakeupFd(reader)))
}

/// A pipe whose writing end never blocks: the way workers wake a reader that
/// is not a ring (the control agent's event loop, which takes the reading
/// end as an [`OwnedFd`]). Each notification is 8 bytes; when the pipe is
/// full the reader has plenty pending and the write is dropped.
pub fn signal_pipe() -> io::Result<(Notifier, OwnedFd)> {
    let (reader, writer) = io::pipe()?;
    let writer = OwnedFd::from(writer);
    // SAFETY: fcntl(2) on a descriptor this function owns; no pointers.
    let flags = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((
        Notifier {
            file: File::from(writer),
        },
        OwnedFd::from(reader),
    ))
}

impl Notifier {
    /// Another writing end of the same eventfd.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
        })
    }

    /// Adds 1 to the counter, waking the reader if it waits. Several
    /// notifications before the reader reads wake it once. (A write fails
    /// only if the counter would overflow: then a wake-up is pending
    /// anyway.)
    pub fn notify(&self) -> io::Result<()> {
        match (&self.file).write(&1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl WakeupFd {
    /// The reading end, on the thread that waits on it.
    pub fn into_wakeup(self) -> Wakeup {
        Wakeup {
            file: Rc::new(Watched::new(self.0)),
        }
    }
}

impl Wakeup {
    /// Waits (as a read op of the worker's reactor) until the counter is non-zero, resets it and
    /// returns how many notifications it held.
    pub async fn wait(&self) -> io::Result<u64> {
        let bytes = read(Rc::clone(&self.file), 8).await?;
        let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "short read from an eventfd")
        })?;
        Ok(u64::from_ne_bytes(bytes))
    }
}
