//! Client sockets, the accept loop of the tests' servers, and the socket
//! tricks the tests need: a blackholed endpoint, a reset instead of a FIN.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};

/// How long a client socket waits on one read or write before the test
/// fails: generous, for a debug build on two busy cores.
pub const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects to `addr` with read and write timeouts of
/// [`CLIENT_IO_TIMEOUT`], so that no test blocks forever.
pub fn client(addr: SocketAddr) -> TcpStream {
    try_client(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// Like [`client`], but returns a failed connect. A connection the peer
/// accepts and resets at once may fail here with `ConnectionReset`.
pub fn try_client(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    set_timeouts(&stream, CLIENT_IO_TIMEOUT);
    Ok(stream)
}

/// Sets both read and write timeouts of `stream`.
pub fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .unwrap_or_else(|e| panic!("cannot set socket timeouts: {e}"));
}

/// Closes `stream` with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap_or_else(|e| panic!("cannot set SO_LINGER: {e}"));
    drop(stream);
}

/// A loopback listener whose thread hands every connection it accepts to
/// a handler, with read and write timeouts set, until dropped: the accept
/// loop of the tests' thread-per-connection servers.
#[derive(Debug)]
pub struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Listens on a loopback port the kernel picks, with an accept queue
    /// of `backlog`; `name` names the thread. Every accepted connection
    /// gets `io_timeout` on its reads and writes, then goes to `on_conn`.
    pub fn start(
        name: &str,
        backlog: i32,
        io_timeout: Duration,
        mut on_conn: impl FnMut(TcpStream) + Send + 'static,
    ) -> Self {
        let listener = ringway_kit::ports::loopback_listener(backlog)
            .unwrap_or_else(|e| panic!("cannot start the {name} server: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the {name} server has no address: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    set_timeouts(&stream, io_timeout);
                    on_conn(stream);
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the {name} server's thread: {e}"));
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Acceptor {
    /// Stops accepting; connections already handed over go on.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `message` on `stream`, to an echoing origin behind the proxy,
/// and checks that it comes back whole.
pub fn ping(stream: &mut TcpStream, message: &[u8]) {
    let shown = String::from_utf8_lossy(message);
    stream
        .write_all(message)
        .unwrap_or_else(|e| panic!("sending {shown:?}: {e}"));
    let mut echo = vec![0u8; message.len()];
    stream
        .read_exact(&mut echo)
        .unwrap_or_else(|e| panic!("reading the echo of {shown:?}: {e}"));
    assert_eq!(echo, message, "the echo of {shown:?}");
}

/// Sends line `i` on a new connection to the proxy listener at `addr`, to
/// an echoing origin, and checks that it comes back: the client was served.
pub fn assert_echoed(addr: SocketAddr, i: usize) {
    ping(&mut client(addr), format!("connection {i}\n").as_bytes());
}

/// Connects to a proxy listener whose cluster has no endpoint that
/// answers, writes a line, and checks that the proxy closes the
/// connection (a reset, or an end of stream) without a byte; each read
/// waits at most `timeout`.
pub fn assert_closed_without_a_byte(addr: SocketAddr, timeout: Duration) {
    let ended = match try_client(addr) {
        Ok(mut stream) => {
            set_timeouts(&stream, timeout);
            // The request may or may not be taken before the close.
            let _ = stream.write_all(b"anyone there?\n");
            read_until_closed(&mut stream)
                .unwrap_or_else(|e| panic!("client of an unreachable cluster: {e}"))
        }
        // Accepted and reset before connect() even returned.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ended::Reset(0),
        Err(e) => panic!("connecting to the proxy: {e}"),
    };
    assert!(
        matches!(ended, Ended::Reset(0) | Ended::Eof(0)),
        "no data, then an end: {ended:?}"
    );
}

/// How a read that expects the connection to end came out.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// An orderly end of stream, after this many bytes.
    Eof(usize),
    /// The connection was reset, after this many bytes.
    Reset(usize),
}

/// Reads until the connection ends: returns how it ended and how many
/// bytes came first, or the error that came instead (a timeout, say).
pub fn read_until_closed(stream: &mut TcpStream) -> io::Result<Ended> {
    let mut total = 0;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Ended::Eof(total)),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Ended::Reset(total)),
            Err(e) => return Err(e),
        }
    }
}

/// An address that never answers a SYN: a listener with a backlog of 0
/// whose accept queue is full of connections nobody accepts, so the kernel
/// drops further SYNs. A connect to it can only time out.
#[derive(Debug)]
pub struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Blackhole {
    /// Makes one on a fresh loopback port.
    pub fn new() -> Self {
        let listener = ringway_kit::ports::loopback_listener(0)
            .unwrap_or_else(|e| panic!("cannot make the blackhole listener: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("blackhole listener has no address: {e}"));
        // Fill the accept queue until a connect goes unanswered.
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Self {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    }
                }
                Err(e) => panic!("filling the blackhole's accept queue: {e}"),
            }
        }
        panic!("the accept queue of a listen(0) socket never filled up");
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Default for Blackhole {
    fn default() -> Self {
        Self::new()
    }
}

/// Connects to `addr` until the connect is refused (a listener closed:
/// nothing outside the process can see when), for up to `timeout`; the `Err`
/// says what the last attempt did instead.
pub fn wait_until_refused(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    ringway_kit::wait::until(timeout, || {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
            Err(e) => Err(format!("connect failed with {e}")),
            Ok(_) => Err("connect succeeded".to_owned()),
        }
    })
}

/// A loopback address whose connects are refused: a socket bound to it that
/// never listens. It stays bound for the test's life, so no other socket
/// (a parallel test's, or one of the proxy's own connects) can take the
/// port in between.
#[derive(Debug)]
pub struct Refusing {
    /// The refused address.
    pub addr: SocketAddr,
    _socket: Socket,
}

impl Refusing {
    /// A new refusing address.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
            .and_then(|s| {
                s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
                Ok(s)
            })
            .unwrap_or_else(|e| panic!("cannot bind the refusing socket: {e}"));
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or_else(|| panic!("the refusing socket has no address"));
        Self {
            addr,
            _socket: socket,
        }
    }
}
