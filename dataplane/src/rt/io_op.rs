//! The ops a worker runs, one variant per kind: each names its descriptor
//! and the memory it reads or writes, and knows both the submission entry
//! that hands it to io_uring ([`Io::entry`]) and the system call that
//! performs it once its descriptor is ready under epoll ([`Io::attempt`]).
//!
//! An `Io` owns nothing: the op future that carries it ([`super::op`]) owns
//! the memory until the final completion. So the kinds that point into
//! memory are built by `unsafe` constructors, whose contract (the memory
//! stays valid, at its address, while the op owns it) the caller argues
//! once per kind, in `rt/net.rs` and `rt/wake.rs`.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use crate::buf::{BufHandle, BufPool};

/// One op, ready to run on either backend.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Io {
    /// Takes one connection from a listening socket.
    Accept { fd: RawFd },
    /// Connects a socket to `addr`.
    Connect {
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    },
    /// Sends `len` bytes from `buf`.
    Send { fd: RawFd, buf: *const u8, len: u32 },
    /// Sends what a message header gathers.
    SendMsg { fd: RawFd, msg: *const libc::msghdr },
    /// Receives once into a buffer of group `group`.
    Recv { fd: RawFd, group: u16, len: u32 },
    /// Receives into buffers of group `group` until it is stopped.
    RecvMulti { fd: RawFd, group: u16 },
    /// Reads up to `len` bytes into `buf`.
    Read { fd: RawFd, buf: *mut u8, len: u32 },
    /// Does nothing (io_uring tests of the submission queue).
    #[cfg(test)]
    Nop,
}

/// What one attempt of an op under epoll came to.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The call would block: the op waits for its descriptor.
    WouldBlock,
    /// The call ran: its result as a completion would carry it (a count, a
    /// descriptor or `-errno`), and the pool buffer it filled.
    Done(i32, Option<BufHandle>),
}

impl Io {
    /// An accept on listening socket `fd`.
    pub(crate) fn accept(fd: RawFd) -> Self {
        Self::Accept { fd }
    }

    /// A connect of `fd` to `addr`.
    ///
    /// # Safety
    /// `addr` must stay valid, at its address, until the op's final
    /// completion.
    pub(crate) unsafe fn connect(fd: RawFd, addr: &socket2::SockAddr) -> Self {
        Self::Connect {
            fd,
            addr: addr.as_ptr().cast(),
            len: addr.len(),
        }
    }

    /// A send of `bytes` on `fd`.
    ///
    /// # Safety
    /// `bytes` must stay valid, at its address, until the op's final
    /// completion.
    pub(crate) unsafe fn send(fd: RawFd, bytes: &[u8]) -> Self {
        Self::Send {
            fd,
            buf: bytes.as_ptr(),
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }

    /// A `sendmsg` of `msg` on `fd`.
    ///
    /// # Safety
    /// `msg`, its iovec array and every buffer it names must stay valid, at
    /// their addresses, until the op's final completion.
    pub(crate) unsafe fn send_msg(fd: RawFd, msg: *const libc::msghdr) -> Self {
        Self::SendMsg { fd, msg }
    }

    /// One receive on `fd` into a buffer of `pool`.
    pub(crate) fn recv(fd: RawFd, pool: &BufPool) -> Self {
        Self::Recv {
            fd,
            group: pool.group(),
            len: pool.buffer_size(),
        }
    }

    /// Receives on `fd` into buffers of `pool` until stopped.
    pub(crate) fn recv_multi(fd: RawFd, pool: &BufPool) -> Self {
        Self::RecvMulti {
            fd,
            group: pool.group(),
        }
    }

    /// A read of up to `buf.len()` bytes from `fd` into `buf`.
    ///
    /// # Safety
    /// `buf` must stay valid, at its address, and unread by anyone else
    /// until the op's final completion.
    pub(crate) unsafe fn read(fd: RawFd, buf: &mut [u8]) -> Self {
        Self::Read {
            fd,
            buf: buf.as_mut_ptr(),
            len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
        }
    }

    /// The descriptor the op works on.
    pub(crate) fn fd(&self) -> RawFd {
        match *self {
            Self::Accept { fd }
            | Self::Connect { fd, .. }
            | Self::Send { fd, .. }
            | Self::SendMsg { fd, .. }
            | Self::Recv { fd, .. }
            | Self::RecvMulti { fd, .. }
            | Self::Read { fd, .. } => fd,
            #[cfg(test)]
            Self::Nop => -1,
        }
    }

    /// Whether the op waits for its descriptor to take output (a send, a
    /// connect) rather than to have input.
    pub(crate) fn writes(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Send { .. } | Self::SendMsg { .. }
        )
    }

    /// The buffer group it receives into, if any.
    pub(crate) fn group(&self) -> Option<u16> {
        match *self {
            Self::Recv { group, .. } | Self::RecvMulti { group, .. } => Some(group),
            _ => None,
        }
    }

    /// Whether a successful completion is a new descriptor (accept).
    pub(crate) fn yields_fd(&self) -> bool {
        matches!(self, Self::Accept { .. })
    }

    /// Whether its descriptor must be non-blocking for epoll to run it
    /// (sends and receives pass `MSG_DONTWAIT` instead).
    pub(crate) fn needs_nonblocking(&self) -> bool {
        matches!(
            self,
            Self::Accept { .. } | Self::Connect { .. } | Self::Read { .. }
        )
    }

    /// The io_uring submission entry (its `user_data` is set by the
    /// driver).
    pub(crate) fn entry(&self) -> squeue::Entry {
        match *self {
            Self::Accept { fd } => {
                opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
            }
            Self::Connect { fd, addr, len } => {
                opcode::Connect::new(types::Fd(fd), addr, len).build()
            }
            Self::Send { fd, buf, len } => opcode::Send::new(types::Fd(fd), buf, len)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            Self::SendMsg { fd, msg } => opcode::SendMsg::new(types::Fd(fd), msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build(),
            Self::Recv { fd, group, len } => {
                opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
                    .buf_group(group)
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            }
            Self::RecvMulti { fd, group } => opcode::RecvMulti::new(types::Fd(fd), group).build(),
            Self::Read { fd, buf, len } => opcode::Read::new(types::Fd(fd), buf, len)
                .offset(u64::MAX)
                .build(),
            #[cfg(test)]
            Self::Nop => opcode::Nop::new().build(),
        }
    }

    /// Runs the op's system call once, without blocking (epoll). A receive
    /// reads straight into the free buffer at the head of `pool` (its
    /// group's), which it takes only if bytes came.
    pub(crate) fn attempt(&self, pool: Option<&Rc<BufPool>>) -> Attempt {
        match *self {
            Self::Accept { fd } => {
                // SAFETY: no pointers (no peer address asked for); a
                // descriptor returned is new and owned by the completion.
                let r = retry(|| unsafe {
                    libc::accept4(
                        fd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    ) as isize
                });
                done(r)
            }
            Self::Connect { fd, addr, len } => {
                // SAFETY: `addr` is valid for `len` bytes while the op owns
                // it (the constructor's contract). Called again once the
                // socket is ready, connect reports how the first ended:
                // 0 or EISCONN once connected, EALREADY while it goes on,
                // the error if it failed.
                let r = retry(|| unsafe { libc::connect(fd, addr, len) as isize });
                if r == 0 {
                    return Attempt::Done(0, None);
                }
                match errno() {
                    libc::EISCONN => Attempt::Done(0, None),
                    libc::EINPROGRESS | libc::EALREADY | libc::EAGAIN => Attempt::WouldBlock,
                    e => Attempt::Done(-e, None),
                }
            }
            Self::Send { fd, buf, len } => {
                // SAFETY: `buf` is valid for `len` bytes while the op owns
                // it (the constructor's contract).
                let r = retry(|| unsafe {
                    libc::send(
                        fd,
                        buf.cast(),
                        len as usize,
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    )
                });
                done(r)
            }
            Self::SendMsg { fd, msg } => {
                // SAFETY: `msg` and what it names are valid while the op
                // owns them (the constructor's contract).
                let r = retry(|| unsafe {
                    libc::sendmsg(fd, msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
                });
                done(r)
            }
            Self::Recv { fd, .. } | Self::RecvMulti { fd, .. } => match pool {
                Some(pool) => recv_into_pool(fd, pool),
                None => Attempt::Done(-libc::EINVAL, None),
            },
            Self::Read { fd, buf, len } => {
                // SAFETY: `buf` is valid for `len` bytes and written by no
                // one else while the op owns it (the constructor's
                // contract).
                let r = retry(|| unsafe { libc::read(fd, buf.cast(), len as usize) });
                done(r)
            }
            #[cfg(test)]
            Self::Nop => Attempt::Done(0, None),
        }
    }
}

/// One receive into the head buffer of `pool`: zero-copy, the bytes land
/// in the pool buffer that is then lent out, as the kernel's buffer
/// selection does.
fn recv_into_pool(fd: RawFd, pool: &Rc<BufPool>) -> Attempt {
    let Some((bid, ptr, size)) = pool.head() else {
        return Attempt::Done(-libc::ENOBUFS, None);
    };
    // SAFETY: `ptr` is the free buffer at the head of the pool, `size`
    // bytes of pool memory that nobody holds (it is in the ring, not lent
    // out) and only this thread touches.
    let r = retry(|| unsafe { libc::recv(fd, ptr.cast(), size as usize, libc::MSG_DONTWAIT) });
    match r {
        n if n > 0 => {
            pool.take_head();
            let len = u32::try_from(n).unwrap_or(size);
            Attempt::Done(len as i32, Some(pool.claim(bid, len)))
        }
        n => done(n),
    }
}

/// Runs a system call again for as long as a signal interrupts it.
fn retry(mut call: impl FnMut() -> isize) -> isize {
    loop {
        let r = call();
        if r >= 0 || errno() != libc::EINTR {
            return r;
        }
    }
}

/// Maps a system call's return to an attempt: `EAGAIN` waits, an error is
/// `-errno`, anything else is the result.
fn done(r: isize) -> Attempt {
    if r >= 0 {
        return Attempt::Done(i32::try_from(r).unwrap_or(i32::MAX), None);
    }
    match errno() {
        libc::EAGAIN => Attempt::WouldBlock,
        e => Attempt::Done(-e, None),
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
