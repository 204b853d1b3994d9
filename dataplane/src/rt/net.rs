//! TCP sockets driven through the ring.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use super::driver::epoll::Watched;
use super::io_op::Io;
use super::op::{MultiOp, Op};
use crate::buf::{BufHandle, BufPool, Group};

/// A socket ops run on (forgotten by the epoll set as it closes).
type Sock = Watched<Socket>;

/// A listening socket bound with `SO_REUSEPORT`, one per worker.
#[derive(Debug)]
pub struct TcpListener {
    socket: Rc<Sock>,
}

impl TcpListener {
    /// Binds `addr` with `SO_REUSEPORT`, so that every worker can own a
    /// listener on the same address and the kernel spreads connections.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        Ok(Self {
            socket: Rc::new(Watched::new(socket)),
        })
    }

    /// Whether [`TcpListener::bind`] could bind `addr` now: binds a socket
    /// with the same options but never listens on it (so it receives no
    /// connection), then closes it.
    pub fn probe(addr: SocketAddr) -> io::Result<()> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener bound to a non-IP address"))
    }

    /// The underlying socket (a worker's drain stops it listening).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The accepts of this listener, none armed yet.
    pub fn incoming(&self) -> Incoming {
        Incoming {
            socket: Rc::clone(&self.socket),
            armed: VecDeque::new(),
        }
    }
}

/// Single-shot accepts on one listener, as many in flight as the caller
/// arms.
///
/// Each accept takes at most one connection from the backlog, so the
/// descriptors the kernel can create for this listener before the worker
/// has looked at them are at most [`Incoming::in_flight`]. A multishot
/// accept has no such bound: one `io_uring_enter` accepts the whole backlog
/// (thousands) at once, whatever the process has left, and a worker that
/// holds its share of connections then takes the descriptors the control
/// thread and the upstream connects need, only to close them again.
#[derive(Debug)]
pub struct Incoming {
    socket: Rc<Sock>,
    /// The accepts in flight, oldest first.
    armed: VecDeque<Op<Rc<Sock>>>,
}

impl Incoming {
    /// Accepts in flight: armed, and not yet taken by
    /// [`Incoming::poll_accepted`].
    pub fn in_flight(&self) -> usize {
        self.armed.len()
    }

    /// Arms one more accept.
    pub fn arm(&mut self) -> io::Result<()> {
        // The listener is kept open by the `Rc` the op owns. An accepted
        // descriptor nobody takes (the op dropped first) is closed by the
        // driver.
        let io = Io::accept(self.socket.as_raw_fd());
        let op = Op::submit(io, Rc::clone(&self.socket))?;
        self.armed.push_back(op);
        Ok(())
    }

    /// The result of an accept that completed (in whatever order they do);
    /// `Ready(None)` when none is in flight.
    pub fn poll_accepted(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<TcpStream>>> {
        if self.armed.is_empty() {
            return Poll::Ready(None);
        }
        for i in 0..self.armed.len() {
            if let Poll::Ready((completion, _)) = Pin::new(&mut self.armed[i]).poll(cx) {
                self.armed.remove(i);
                let accepted = completion
                    .io_result()
                    .map(|fd| TcpStream::from_accepted(fd as RawFd));
                return Poll::Ready(Some(accepted));
            }
        }
        Poll::Pending
    }

    /// The next accepted connection, arming one accept if none is in
    /// flight.
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        if self.armed.is_empty() {
            self.arm()?;
        }
        poll_fn(|cx| self.poll_accepted(cx))
            .await
            .expect("an accept is in flight")
    }
}

/// A connected TCP socket.
#[derive(Debug, Clone)]
pub struct TcpStream {
    socket: Rc<Sock>,
}

impl TcpStream {
    fn from_accepted(fd: RawFd) -> Self {
        // SAFETY: `fd` is the result of an accept the kernel just completed
        // for us; nothing else owns it.
        let socket = unsafe { Socket::from_raw_fd(fd) };
        Self {
            socket: Rc::new(Watched::new(socket)),
        }
    }

    /// Adopts a connected standard-library socket (blocking mode is fine:
    /// the ring never blocks on it).
    pub fn from_std(stream: std::net::TcpStream) -> Self {
        Self {
            socket: Rc::new(Watched::new(Socket::from(stream))),
        }
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        let sockaddr = Box::new(SockAddr::from(addr));
        // SAFETY: the op points at the boxed address, which the op owns
        // (moving a box does not move what it holds).
        let io = unsafe { Io::connect(socket.as_raw_fd(), &sockaddr) };
        let socket = Rc::new(Watched::new(socket));
        let op = Op::submit_with_timeout(io, (Rc::clone(&socket), sockaddr), timeout)?;
        let (completion, _) = op.await;
        match completion.result {
            0 => Ok(Self { socket }),
            r if r == -libc::ECANCELED => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {timeout:?}"),
            )),
            r => Err(io::Error::from_raw_os_error(-r.max(-4095))),
        }
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Received data, one provided buffer of `group`'s ring at a time.
    ///
    /// At most about `high_water` buffers are held for this socket while the
    /// consumer is slow (fewer when the ring runs low): past that the
    /// multishot recv is stopped until the consumer catches up.
    pub fn recv_stream(&self, group: Group, high_water: usize) -> RecvStream {
        RecvStream {
            socket: Rc::clone(&self.socket),
            armed: Armed::Not,
            short_of_buffers: false,
            high_water: u32::try_from(high_water.max(1)).unwrap_or(u32::MAX),
            multishot: super::features().multishot_recv,
            pool: super::buffers(group),
        }
    }

    /// Sends `buf[offset..]`; returns how many bytes went, and the buffer.
    ///
    /// The buffer is kept by the op until the kernel is done with it, even if
    /// this future is dropped. On error the buffer goes back to the ring.
    pub async fn send(&self, buf: BufHandle, offset: usize) -> io::Result<(usize, BufHandle)> {
        self.start_send(buf, offset)?.await
    }

    /// Starts sending `buf[offset..]`, as [`TcpStream::send`] does, and
    /// returns the send in flight: a future of a type that can be named, no
    /// larger than the op, for callers that keep their state in a struct of
    /// their own (the TCP relay, whose idle pairs must stay small). Fails
    /// only if the ring refused the op (the buffer then goes back).
    pub fn start_send(&self, buf: BufHandle, offset: usize) -> io::Result<Sending> {
        Ok(Sending(self.send_op(buf, offset..usize::MAX, None)?))
    }

    /// Starts a send of `buf[range]`, with a deadline if `timeout` is given:
    /// the one place a send of a received buffer is built.
    fn send_op(
        &self,
        buf: BufHandle,
        range: Range<usize>,
        timeout: Option<Duration>,
    ) -> io::Result<Op<(Rc<Sock>, BufHandle)>> {
        let slice = buf.as_slice();
        let range = range.start.min(slice.len())..range.end.min(slice.len());
        // SAFETY: the bytes are pool memory (or the handle's own heap
        // block) that `buf` holds; the op owns `buf` until its final
        // completion, and moving a handle moves none of that memory.
        let io = unsafe { Io::send(self.socket.as_raw_fd(), &slice[range]) };
        let data = (Rc::clone(&self.socket), buf);
        match timeout {
            Some(t) => Op::submit_with_timeout(io, data, t),
            None => Op::submit(io, data),
        }
    }

    /// Sends `buf[range]`, giving up with `TimedOut` after `timeout` if the
    /// peer does not make room (a client that stopped reading). Returns how
    /// many bytes went, and the buffer.
    pub async fn send_range(
        &self,
        buf: BufHandle,
        range: Range<usize>,
        timeout: Option<Duration>,
    ) -> io::Result<(usize, BufHandle)> {
        let op = self.send_op(buf, range, timeout);
        let (completion, (_, buf)) = op?.await;
        Ok((send_result(completion.result, timeout)?, buf))
    }

    /// Sends `out`'s bytes from `from`, followed by `body`'s range of a
    /// received buffer, in one send (a `sendmsg` when there are two pieces):
    /// a rewritten HTTP head and the body bytes that arrived behind the
    /// original head go out together, the body straight from the buffer it
    /// was received into. Returns how many bytes
    /// went (possibly fewer than offered) and both buffers for reuse.
    pub async fn send_outgoing(
        &self,
        mut out: Outgoing,
        from: usize,
        body: Option<(BufHandle, Range<usize>)>,
        timeout: Option<Duration>,
    ) -> io::Result<(usize, Outgoing, Option<BufHandle>)> {
        let g = &mut *out.0;
        g.body = body;
        let mut count = 0;
        let head = &g.head[from.min(g.head.len())..];
        if !head.is_empty() {
            g.iov[count] = libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            };
            count += 1;
        }
        if let Some((buf, range)) = &g.body {
            let slice = buf.as_slice();
            let part = &slice[range.start.min(slice.len())..range.end.min(slice.len())];
            if !part.is_empty() {
                g.iov[count] = libc::iovec {
                    iov_base: part.as_ptr() as *mut libc::c_void,
                    iov_len: part.len(),
                };
                count += 1;
            }
        }
        let fd = self.socket.as_raw_fd();
        let io = if count == 1 {
            // One piece (a head alone, the usual request): a plain send
            // spares the kernel importing a msghdr and an iovec array.
            let iov = g.iov[0];
            // SAFETY: the piece is the head's heap buffer or part of the
            // body's pool buffer, both owned by the box, which the op owns;
            // moving a box, a Vec or a pool handle moves none of that
            // memory.
            unsafe {
                Io::send(
                    fd,
                    std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len),
                )
            }
        } else {
            g.hdr.msg_iov = g.iov.as_mut_ptr();
            g.hdr.msg_iovlen = count;
            let hdr_ptr: *const libc::msghdr = &g.hdr;
            // SAFETY: the msghdr is in the box, its iovecs in the box's own
            // array, and they point into the head's heap buffer and the
            // body's pool buffer, all owned by the box, which the op owns.
            unsafe { Io::send_msg(fd, hdr_ptr) }
        };
        let data = (Rc::clone(&self.socket), out);
        let op = match timeout {
            Some(t) => Op::submit_with_timeout(io, data, t),
            None => Op::submit(io, data),
        };
        let (completion, (_, mut out)) = op?.await;
        let sent = send_result(completion.result, timeout)?;
        let body = out.0.body.take().map(|(b, _)| b);
        Ok((sent, out, body))
    }

    /// Sends our FIN: the peer reads end-of-stream, the other direction stays
    /// open.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.socket.shutdown(std::net::Shutdown::Write)
    }

    /// Shuts both directions: pending recvs on this socket complete.
    pub fn shutdown_both(&self) -> io::Result<()> {
        self.socket.shutdown(std::net::Shutdown::Both)
    }

    /// Makes the close of this socket send a reset instead of a FIN.
    pub fn reset_on_close(&self) -> io::Result<()> {
        self.socket.set_linger(Some(Duration::ZERO))
    }
}

/// A send in flight ([`TcpStream::start_send`]): how many bytes went, and
/// the buffer back. Dropped before it completed, the op keeps the buffer
/// until the kernel is done with it. Not to be polled again once it
/// returned `Ready`.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sending(Op<(Rc<Sock>, BufHandle)>);

impl Future for Sending {
    type Output = io::Result<(usize, BufHandle)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (completion, (_, buf)) = std::task::ready!(Pin::new(&mut self.get_mut().0).poll(cx));
        Poll::Ready(send_result(completion.result, None).map(|n| (n, buf)))
    }
}

/// Bytes written fresh (an HTTP head) and the `sendmsg` header that sends
/// them, with room for part of a received buffer behind them: allocated once
/// per connection and lent to each send in turn, so a send costs no
/// allocation.
pub struct Outgoing(Box<Gather>);

struct Gather {
    hdr: libc::msghdr,
    iov: [libc::iovec; 2],
    head: Vec<u8>,
    body: Option<(BufHandle, Range<usize>)>,
}

impl Outgoing {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Box::new(Gather {
            // SAFETY: an all-zero msghdr is its documented empty value
            // (no name, no iovecs, no control data).
            hdr: unsafe { std::mem::zeroed() },
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2],
            head: Vec::with_capacity(capacity),
            body: None,
        }))
    }

    /// The bytes to send, for writing.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0.head
    }

    /// The bytes to send.
    pub fn bytes(&self) -> &[u8] {
        &self.0.head
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("len", &self.0.head.len())
            .finish()
    }
}

/// Maps a send completion to bytes sent; a linked timeout's cancel becomes
/// `TimedOut`.
fn send_result(result: i32, timeout: Option<Duration>) -> io::Result<usize> {
    match result {
        n if n >= 0 => Ok(n as usize),
        r if r == -libc::ECANCELED && timeout.is_some() => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer did not read for the send timeout",
        )),
        r => Err(io::Error::from_raw_os_error(-r.max(-4095))),
    }
}

/// What an idle socket received while nobody read it ([`RecvStream::heard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Nothing.
    Nothing,
    /// An end of stream or an error: the peer closed it.
    Closed,
    /// Bytes.
    Bytes,
}

/// A stream's receive op.
#[derive(Debug)]
enum Armed {
    /// None yet.
    Not,
    /// A multishot receive (it may have ended: see [`MultiOp::is_done`]).
    Multi(MultiOp<Rc<Sock>>),
    /// A single receive in flight (without multishot recv).
    Single(Op<Rc<Sock>>),
}

/// Received buffers of one socket.
#[derive(Debug)]
pub struct RecvStream {
    socket: Rc<Sock>,
    /// The receive op, kept here rather than in a future: a caller that
    /// stops waiting (a select that went the other way) leaves it armed for
    /// the next call, and an idle stream costs no future.
    armed: Armed,
    /// The last receive found the buffer ring empty: the next one is armed
    /// once a buffer came back.
    short_of_buffers: bool,
    high_water: u32,
    multishot: bool,
    pool: Rc<BufPool>,
}

impl RecvStream {
    /// What arrived on this socket while nobody read it, without waiting:
    /// how an idle pooled connection is checked before reuse (a FIN, a
    /// reset or stray bytes the peer sent meanwhile). Whatever arrived is
    /// consumed; the caller discards a socket that heard anything.
    ///
    /// With multishot recv, the armed receive has queued whatever came: if
    /// it is still waiting, nothing came, and no syscall is made. If it
    /// ended meanwhile without taking the bytes (the buffer ring was empty
    /// when they came, or a high-water stop), they may sit in the socket
    /// with no completion: then, and without multishot recv, a non-blocking
    /// peek asks the kernel (one syscall). This never re-arms the receive
    /// nor waits for a buffer: the next [`RecvStream::next`] does.
    ///
    /// Left open: bytes that reached the socket during the current loop
    /// turn, whose completion the kernel posts at the next ring entry
    /// (deferred task running). That is the same race as bytes arriving
    /// just after the check, which no proxy can tell from an answer.
    pub fn heard(&mut self) -> Heard {
        if let Armed::Single(op) = &mut self.armed {
            // A receive left armed by a caller that stopped waiting: what it
            // got is what the socket heard.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::Pin::new(op).poll(&mut cx) {
                Poll::Ready((c, _)) => {
                    self.armed = Armed::Not;
                    match c.result {
                        n if n > 0 => return Heard::Bytes,
                        r if r == -libc::ENOBUFS => self.pool.count_enobufs(),
                        _ => return Heard::Closed,
                    }
                }
                Poll::Pending => return Heard::Nothing,
            }
        }
        if let Armed::Multi(multi) = &mut self.armed {
            if !multi.is_done() {
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match multi.poll_next(&mut cx) {
                    Poll::Ready(Some(c)) => match c.result {
                        n if n > 0 => return Heard::Bytes,
                        0 => return Heard::Closed,
                        // The receive ended without taking what came (no
                        // buffer, or our high-water stop): ask the socket.
                        r if r == -libc::ENOBUFS => self.pool.count_enobufs(),
                        r if r == -libc::ECANCELED => {}
                        _ => return Heard::Closed,
                    },
                    Poll::Ready(None) => {}
                    // Still the receive that was waiting: nothing came.
                    Poll::Pending => return Heard::Nothing,
                }
            }
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        match self
            .socket
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        {
            Ok(0) => Heard::Closed,
            Ok(_) => Heard::Bytes,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Heard::Nothing,
            Err(_) => Heard::Closed,
        }
    }

    /// Sets how many buffers this stream may hold while its consumer is
    /// slow, from now on (a receive already armed is stopped at once if it
    /// holds more). No syscall: the reactor enforces it.
    pub fn set_high_water(&mut self, high_water: usize) {
        let high_water = u32::try_from(high_water.max(1)).unwrap_or(u32::MAX);
        if high_water != self.high_water {
            self.high_water = high_water;
            if let Armed::Multi(multi) = &self.armed {
                multi.set_high_water(high_water as usize);
            }
        }
    }

    /// The next buffer of data; `Ok(None)` at end of stream.
    pub async fn next(&mut self) -> io::Result<Option<BufHandle>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next buffer of data ([`RecvStream::next`] as a poll,
    /// for callers that keep no future: every state lives in the stream).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<BufHandle>>> {
        loop {
            if self.short_of_buffers {
                if self.pool.available() == 0 {
                    self.pool.wait_for_buffer(cx.waker());
                    return Poll::Pending;
                }
                self.short_of_buffers = false;
                super::driver::with(|d| d.stats().rearms.add(1));
            }
            let completion = if self.multishot {
                if !matches!(&self.armed, Armed::Multi(m) if !m.is_done()) {
                    // The op owns an `Rc` of the socket; the buffers come
                    // from the pool as data arrives.
                    let io = Io::recv_multi(self.socket.as_raw_fd(), &self.pool);
                    let op = MultiOp::submit(io, Rc::clone(&self.socket), self.high_water as usize);
                    match op {
                        Ok(op) => self.armed = Armed::Multi(op),
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                let Armed::Multi(multi) = &mut self.armed else {
                    unreachable!("armed just above")
                };
                match multi.poll_next(cx) {
                    Poll::Ready(Some(c)) => c,
                    Poll::Ready(None) => continue,
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                if !matches!(self.armed, Armed::Single(_)) {
                    let io = Io::recv(self.socket.as_raw_fd(), &self.pool);
                    let op = Op::submit(io, Rc::clone(&self.socket));
                    match op {
                        Ok(op) => self.armed = Armed::Single(op),
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                let Armed::Single(op) = &mut self.armed else {
                    unreachable!("armed just above")
                };
                match std::pin::Pin::new(op).poll(cx) {
                    Poll::Ready((c, _)) => {
                        self.armed = Armed::Not;
                        c
                    }
                    Poll::Pending => return Poll::Pending,
                }
            };
            match completion.result {
                n if n > 0 => {
                    return Poll::Ready(match completion.buf {
                        Some(buf) => Ok(Some(buf)),
                        None => Err(io::Error::other("recv completed without a buffer")),
                    })
                }
                // With multishot, a zero-length completion may also come
                // from a cancel racing the end; only a final one is EOF.
                0 => return Poll::Ready(Ok(None)),
                r if r == -libc::ENOBUFS => {
                    self.pool.count_enobufs();
                    self.short_of_buffers = true;
                }
                r if r == -libc::ECANCELED => {
                    // Our own high-water cancel: re-arm now that the
                    // consumer is asking for more.
                    super::driver::with(|d| d.stats().rearms.add(1));
                }
                r => return Poll::Ready(Err(io::Error::from_raw_os_error(-r))),
            }
        }
    }
}

/// Reads once from `file` into a fresh buffer of `len` bytes.
pub async fn read<F: AsRawFd + 'static>(file: Rc<Watched<F>>, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // SAFETY: the op points into the Vec's heap buffer, which the op owns
    // and nobody else reads meanwhile; moving the Vec does not move its
    // buffer.
    let io = unsafe { Io::read(file.as_raw_fd(), &mut buf) };
    let (completion, (_, mut buf)) = Op::submit(io, (file, buf))?.await;
    let n = completion.io_result()? as usize;
    buf.truncate(n);
    Ok(buf)
}
