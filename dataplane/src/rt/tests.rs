//! The op life cycle under drop: nothing the kernel may still touch is freed
//! before the kernel says it is done.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use super::io_op::Io;
use super::net::TcpStream;
use super::op::Op;
use super::{buffers, ops_in_flight, yield_now, IoBackend, Runtime, RuntimeConfig, Watched};
use crate::buf::Group;

/// A buffer that records when it is freed.
pub(super) struct Tracked {
    buf: Vec<u8>,
    freed: Rc<Cell<bool>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.freed.set(true);
    }
}

thread_local! {
    /// The backend [`runtime`] builds on this test's thread.
    static BACKEND: Cell<IoBackend> = const { Cell::new(IoBackend::IoUring) };
}

pub(super) fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        sq_entries: 64,
        buffer_count: 16,
        buffer_size: 4096,
        backend: BACKEND.get(),
        ..RuntimeConfig::default()
    })
    .expect("io_uring is available on the test machine")
}

/// The tests whose behaviour is the same on both backends, run again on
/// epoll (each test runs on a thread of its own).
mod on_epoll {
    use super::{IoBackend, BACKEND};

    macro_rules! on_epoll {
        ($($test:ident),* $(,)?) => {
            $(
                #[test]
                fn $test() {
                    BACKEND.set(IoBackend::Epoll);
                    super::$test();
                }
            )*
        };
    }

    on_epoll!(
        completed_but_unpolled_read_frees_on_drop,
        dropped_sleep_is_cancelled_promptly,
        dropped_recv_stream_returns_every_buffer,
        slow_consumer_holds_a_bounded_number_of_buffers,
        a_thread_can_run_one_runtime_after_another,
        another_thread_wakes_a_waiting_ring_through_its_eventfd,
        connections_accepted_for_a_dropped_acceptor_are_closed_not_leaked,
        a_listener_gives_up_no_more_connections_than_accepts_are_armed,
        sleeps_end_in_deadline_order_and_take_no_op,
        an_alarm_whose_deadline_moves_later_waits_for_the_later_one,
        a_send_to_a_peer_that_stops_reading_times_out,
        a_descriptor_number_reused_after_close_is_served,
        a_refused_connect_fails_with_the_error,
        bytes_and_end_of_stream_sent_together_are_both_seen,
        a_task_whose_reads_never_wait_still_lets_others_run,
    );
}

/// Turns the loop until `done` holds; fails if that never happens.
pub(super) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        yield_now().await;
    }
    panic!("never happened: {what}");
}

/// Turns the loop until no op is in flight.
pub(super) async fn settle() {
    until("every op finished", || ops_in_flight() == 0).await;
}

/// Polls `fut` once, so that its op is queued, then lets the ring submit it.
async fn start<F: Future + Unpin>(fut: &mut F) {
    poll_fn(|cx| {
        assert!(
            Pin::new(&mut *fut).poll(cx).is_pending(),
            "op finished at once"
        );
        Poll::Ready(())
    })
    .await;
    yield_now().await;
}

pub(super) fn pipe_read(
    reader: &Rc<Watched<std::io::PipeReader>>,
    freed: &Rc<Cell<bool>>,
) -> Op<(Rc<Watched<std::io::PipeReader>>, Tracked)> {
    let mut tracked = Tracked {
        buf: vec![0u8; 64],
        freed: Rc::clone(freed),
    };
    // SAFETY: the op points into `tracked.buf`'s heap memory, owned by the
    // op.
    let io = unsafe { Io::read(reader.as_raw_fd(), &mut tracked.buf) };
    Op::submit(io, (Rc::clone(reader), tracked)).expect("submit")
}

#[test]
fn dropped_read_keeps_its_buffer_until_the_kernel_is_done() {
    let rt = runtime();
    rt.block_on(async {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(Watched::new(reader));
        let freed = Rc::new(Cell::new(false));
        let mut op = pipe_read(&reader, &freed);
        start(&mut op).await;
        assert_eq!(ops_in_flight(), 1);
        drop(op);
        // The read is in the kernel's hands: its buffer must still be alive.
        assert!(!freed.get(), "buffer freed while the kernel may write it");
        // Data arriving now races the cancel; either way the buffer lives
        // until the completion.
        writer.write_all(b"late data").expect("write");
        assert!(!freed.get());
        settle().await;
        assert!(freed.get(), "orphaned buffer never freed");
    })
    .expect("runtime");
}

#[test]
fn completed_but_unpolled_read_frees_on_drop() {
    let rt = runtime();
    rt.block_on(async {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(Watched::new(reader));
        let freed = Rc::new(Cell::new(false));
        writer.write_all(b"ready").expect("write");
        let mut op = pipe_read(&reader, &freed);
        poll_fn(|cx| {
            let _ = Pin::new(&mut op).poll(cx);
            Poll::Ready(())
        })
        .await;
        until("the read completed", || super::ring_stats().completed >= 1).await;
        drop(op);
        assert!(freed.get(), "a finished op's buffer must be freed with it");
        assert_eq!(ops_in_flight(), 0);
    })
    .expect("runtime");
}

#[test]
fn dropped_sleep_is_cancelled_promptly() {
    let rt = runtime();
    rt.block_on(async {
        let mut sleep = Box::pin(super::time::sleep(Duration::from_secs(3600)));
        start(&mut sleep).await;
        assert_eq!(super::timers_armed(), 1);
        drop(sleep);
        assert_eq!(super::timers_armed(), 0);
        settle().await;
    })
    .expect("runtime");
}

pub(super) fn connected_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

#[test]
fn dropped_recv_stream_returns_every_buffer() {
    let rt = runtime();
    rt.block_on(async {
        let pool = buffers(Group::Client);
        let total = pool.available();
        let (mut peer, ours) = connected_pair();
        let ours = TcpStream::from_std(ours);
        let mut stream = ours.recv_stream(Group::Client, 4);
        peer.write_all(&[7u8; 10_000]).expect("write");
        let first = stream.next().await.expect("recv").expect("data");
        assert!(first.as_slice().iter().all(|&b| b == 7));
        peer.write_all(&[8u8; 20_000]).expect("write");
        // Let the kernel fill more buffers for the stream before it drops.
        until("a second buffer filled", || pool.available() < total - 1).await;
        drop(stream);
        settle().await;
        // Everything except the buffer we still hold is back in the ring.
        assert_eq!(pool.available(), total - 1);
        drop(first);
        assert_eq!(pool.available(), total);
    })
    .expect("runtime");
}

#[test]
fn slow_consumer_holds_a_bounded_number_of_buffers() {
    let rt = runtime();
    rt.block_on(async {
        let pool = buffers(Group::Client);
        let total = pool.available();
        let (mut peer, ours) = connected_pair();
        let ours = TcpStream::from_std(ours);
        let high_water = 2;
        let mut stream = ours.recv_stream(Group::Client, high_water);
        let sent: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let writer = std::thread::spawn(move || {
            peer.write_all(&sent).expect("write");
            peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut rest = Vec::new();
            let _ = peer.read_to_end(&mut rest);
            sent
        });
        // Do not consume for a while: the stream must stop at its high water
        // mark instead of draining the shared ring.
        for _ in 0..2000 {
            yield_now().await;
        }
        let held = total - pool.available();
        assert!(
            held as usize <= high_water + 1,
            "a stalled consumer holds {held} buffers (high water {high_water})"
        );
        let mut got = Vec::new();
        while let Some(buf) = stream.next().await.expect("recv") {
            got.extend_from_slice(buf.as_slice());
        }
        drop(stream);
        drop(ours);
        let sent = writer.join().expect("writer");
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "received bytes differ from sent bytes");
        settle().await;
        assert_eq!(pool.available(), total);
    })
    .expect("runtime");
}

#[test]
fn aborted_task_drops_its_ops() {
    let rt = runtime();
    rt.block_on(async {
        let (reader, _writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(Watched::new(reader));
        let freed = Rc::new(Cell::new(false));
        let op = pipe_read(&reader, &freed);
        let id = super::spawn(async move {
            let _ = op.await;
        });
        yield_now().await;
        yield_now().await;
        assert_eq!(ops_in_flight(), 1);
        super::abort(id);
        assert!(!freed.get());
        settle().await;
        assert!(freed.get());
        assert_eq!(super::task_count(), 0);
    })
    .expect("runtime");
}

#[test]
fn an_orphans_cancel_goes_out_with_the_next_enter() {
    // Regression: a cancel queued only after the next reap left a waiting
    // loop blocked with the orphan's socket open (resets and idle timeouts
    // never closed the connection).
    let rt = runtime();
    rt.block_on(async {
        let (reader, _writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(Watched::new(reader));
        let freed = Rc::new(Cell::new(false));
        let mut op = pipe_read(&reader, &freed);
        start(&mut op).await;
        drop(op);
        // One waiting turn: the sleep's enter must carry the cancel too.
        super::time::sleep(Duration::from_millis(50))
            .await
            .expect("sleep");
        assert!(
            freed.get(),
            "the orphan was not cancelled by the enter that followed"
        );
        assert_eq!(ops_in_flight(), 0);
    })
    .expect("runtime");
}

#[test]
fn a_thread_can_run_one_runtime_after_another() {
    for round in 0..2 {
        let rt = runtime();
        let out = rt
            .block_on(async move {
                super::time::sleep(Duration::from_millis(1))
                    .await
                    .expect("sleep");
                round
            })
            .expect("runtime");
        assert_eq!(out, round);
    }
}

#[test]
fn another_thread_wakes_a_waiting_ring_through_its_eventfd() {
    let (notifier, wakeup) = super::wake::eventfd().expect("eventfd");
    let rt = runtime();
    let wakeup = wakeup.into_wakeup();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let poker = std::thread::spawn(move || {
        // Two notifications before the reader reads wake it once.
        notifier.notify().expect("notify");
        notifier.notify().expect("notify");
        sent_tx.send(()).expect("the test waits");
        notifier
    });
    sent_rx.recv().expect("the poker sends");
    let count = rt.block_on(wakeup.wait()).expect("block_on").expect("read");
    assert_eq!(count, 2);
    // The counter was reset: the next wait blocks until the next notify.
    let notifier = poker.join().expect("poker");
    let waiting = rt
        .block_on(async {
            let wait = wakeup.wait();
            let mut wait = std::pin::pin!(wait);
            // Poll once: nothing is pending, so the read must not be ready.
            let first = poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_ready())).await;
            notifier.notify().expect("notify");
            let count = wait.await.expect("read");
            (first, count)
        })
        .expect("block_on");
    assert_eq!(waiting, (false, 1));
}

#[test]
fn connections_accepted_for_a_dropped_acceptor_are_closed_not_leaked() {
    use std::net::{Ipv4Addr, SocketAddr};

    let rt = runtime();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let listener = super::net::TcpListener::bind(addr, 16).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    // Both connections sit in the backlog before the two accepts are armed,
    // so the kernel accepts both as soon as they are: the second lands in
    // its op's slot (or arrives after the drop), where nobody will take it.
    let first = std::net::TcpStream::connect(addr).expect("connect");
    let mut second = std::net::TcpStream::connect(addr).expect("connect");
    let served = rt
        .block_on(async {
            let mut incoming = listener.incoming();
            incoming.arm().expect("arm");
            incoming.arm().expect("arm");
            let taken = incoming.next().await.expect("accept");
            // Let any straggling completion in before the acceptor goes.
            yield_now().await;
            drop(incoming);
            taken
        })
        .expect("block_on");
    // The listener stays open: only the ring's handling can end `second`.
    // Turn the loop until the orphaned accept's cancel has completed.
    rt.block_on(async {
        while ops_in_flight() > 0 {
            yield_now().await;
        }
    })
    .expect("block_on");
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match second.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the second connection was accepted and then left open: {other:?}"),
    }
    drop((first, served, listener));
}

#[test]
fn a_listener_gives_up_no_more_connections_than_accepts_are_armed() {
    use std::net::{Ipv4Addr, SocketAddr};

    let rt = runtime();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let listener = super::net::TcpListener::bind(addr, 16).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let clients: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let taken = rt
        .block_on(async {
            let mut incoming = listener.incoming();
            incoming.arm().expect("arm");
            incoming.arm().expect("arm");
            // Turns enough for a multishot accept to take the whole backlog.
            for _ in 0..10 {
                yield_now().await;
            }
            let mut taken = Vec::new();
            while let Some(accepted) = poll_fn(|cx| incoming.poll_accepted(cx)).await {
                taken.push(accepted.expect("accept"));
            }
            taken
        })
        .expect("block_on");
    assert_eq!(taken.len(), 2);
    // The rest still wait in the backlog.
    let socket = listener.socket();
    socket.set_nonblocking(true).expect("non-blocking");
    let left = std::iter::from_fn(|| socket.accept().ok()).count();
    assert_eq!(left, 3);
    drop((clients, taken));
}

#[test]
fn sleeps_end_in_deadline_order_and_take_no_op() {
    let rt = runtime();
    let order = rt
        .block_on(async {
            let order = std::cell::RefCell::new(Vec::new());
            let nap = |ms: u64| {
                let order = &order;
                async move {
                    super::time::sleep(Duration::from_millis(ms))
                        .await
                        .expect("sleep");
                    order.borrow_mut().push(ms);
                }
            };
            let started = std::time::Instant::now();
            let all = super::select::join(super::select::join(nap(30), nap(10)), nap(20));
            let mut all = std::pin::pin!(all);
            poll_fn(|cx| {
                let _ = all.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
            assert_eq!(ops_in_flight(), 0, "a sleep is no ring op");
            assert_eq!(super::timers_armed(), 3);
            all.await;
            assert!(started.elapsed() >= Duration::from_millis(30));
            assert_eq!(super::timers_armed(), 0);
            let order = order.borrow().clone();
            order
        })
        .expect("runtime");
    assert_eq!(order, [10, 20, 30]);
}

#[test]
fn an_alarm_whose_deadline_moves_later_waits_for_the_later_one() {
    let rt = runtime();
    rt.block_on(async {
        let begin = std::time::Instant::now();
        let deadline = Cell::new(begin + Duration::from_millis(10));
        let mut alarm = super::time::Alarm::new();
        let mut moved = false;
        poll_fn(|cx| {
            if !moved && super::now() >= begin + Duration::from_millis(5) {
                // Later: the armed timer stays; it wakes the task at 10 ms
                // and the alarm is set again for 40 ms.
                deadline.set(begin + Duration::from_millis(40));
                moved = true;
            }
            if !moved {
                cx.waker().wake_by_ref();
            }
            alarm.poll_until(deadline.get(), cx)
        })
        .await;
        assert!(begin.elapsed() >= Duration::from_millis(40));
        assert_eq!(super::timers_armed(), 0);
    })
    .expect("runtime");
}

#[test]
fn a_send_to_a_peer_that_stops_reading_times_out() {
    let rt = runtime();
    rt.block_on(async {
        let (peer, ours) = connected_pair();
        let ours = TcpStream::from_std(ours);
        let timeout = Duration::from_millis(50);
        let mut sent = 0usize;
        // The peer never reads: once both socket buffers are full, a send
        // waits, and its deadline ends it.
        let err = loop {
            let chunk = crate::buf::BufHandle::owned(vec![1u8; 64 * 1024].into_boxed_slice());
            match ours.send_range(chunk, 0..64 * 1024, Some(timeout)).await {
                Ok((n, _)) => sent += n,
                Err(e) => break e,
            }
            assert!(sent < 1 << 30, "a peer that never reads took 1 GiB");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(sent > 0);
        settle().await;
        assert_eq!(super::timers_armed(), 0);
        drop(peer);
    })
    .expect("runtime");
}

#[test]
fn a_descriptor_number_reused_after_close_is_served() {
    let rt = runtime();
    rt.block_on(async {
        for round in 0..4u8 {
            // Each round's socket likely gets the number the last one had.
            let (mut peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Client, 4);
            peer.write_all(&[round; 100]).expect("write");
            let got = stream.next().await.expect("recv").expect("data");
            assert!(got.as_slice().iter().all(|&b| b == round));
            drop(got);
            let (_, back) = ours
                .send_range(
                    crate::buf::BufHandle::owned(vec![round; 10].into_boxed_slice()),
                    0..10,
                    None,
                )
                .await
                .expect("send");
            drop(back);
            let mut echo = [0u8; 10];
            peer.read_exact(&mut echo).expect("read");
            assert_eq!(echo, [round; 10]);
            drop(stream);
            drop(ours);
            settle().await;
        }
    })
    .expect("runtime");
}

#[test]
fn a_refused_connect_fails_with_the_error() {
    let rt = runtime();
    // A port that was just bound and closed refuses connections.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let out = rt
        .block_on(TcpStream::connect(addr, Duration::from_secs(5)))
        .expect("runtime");
    let err = out.expect_err("connect to a closed port");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_dropped_read_on_epoll_frees_its_buffer_at_once() {
    // No kernel holds an epoll op's memory: its orphan ends with it.
    BACKEND.set(IoBackend::Epoll);
    let rt = runtime();
    rt.block_on(async {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(Watched::new(reader));
        let freed = Rc::new(Cell::new(false));
        let mut op = pipe_read(&reader, &freed);
        start(&mut op).await;
        assert_eq!(ops_in_flight(), 1);
        drop(op);
        assert!(freed.get());
        assert_eq!(ops_in_flight(), 0);
        // The data written later is not taken by the dropped read.
        writer.write_all(b"late").expect("write");
        let freed = Rc::new(Cell::new(false));
        let (c, _) = pipe_read(&reader, &freed).await;
        assert_eq!(c.result, 4);
    })
    .expect("runtime");
}

#[test]
fn bytes_and_end_of_stream_sent_together_are_both_seen() {
    // A peer that writes and closes at once: on epoll the end of stream
    // may come with the bytes' own edge, and no edge comes after it.
    let rt = runtime();
    rt.block_on(async {
        for size in [10usize, 4096, 40_000] {
            let (mut peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            peer.write_all(&vec![3u8; size]).expect("write");
            peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut stream = ours.recv_stream(Group::Client, 4);
            let mut got = 0;
            while let Some(buf) = stream.next().await.expect("recv") {
                got += buf.len();
            }
            assert_eq!(got, size);
            // Bytes arriving before the stream is read, then the end.
            let (mut peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Client, 4);
            peer.write_all(&vec![4u8; size]).expect("write");
            let first = stream.next().await.expect("recv").expect("bytes");
            let mut got = first.len();
            drop(first);
            peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
            while let Some(buf) = stream.next().await.expect("recv") {
                got += buf.len();
            }
            assert_eq!(got, size);
        }
        settle().await;
    })
    .expect("runtime");
}

#[test]
fn a_task_whose_reads_never_wait_still_lets_others_run() {
    // A pipe that always has bytes: each read can end as soon as it runs.
    // The loop must still get to its wait now and then (a reactor that ran
    // such ops as they are submitted would never make the task wait), so
    // that another task's descriptor that became ready meanwhile is served
    // long before the reader is done.
    let rt = runtime();
    rt.block_on(async {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        writer.write_all(&[5u8; 32 * 1024]).expect("write");
        let reader = Rc::new(Watched::new(reader));
        let (other, mut other_writer) = std::io::pipe().expect("pipe");
        let other = Rc::new(Watched::new(other));
        let served = Rc::new(Cell::new(false));
        let flag = Rc::clone(&served);
        super::spawn(async move {
            let freed = Rc::new(Cell::new(false));
            let (c, _) = pipe_read(&other, &freed).await;
            assert_eq!(c.result, 1);
            flag.set(true);
        });
        // The other task's read waits for its pipe.
        yield_now().await;
        yield_now().await;
        assert!(!served.get());
        other_writer.write_all(b"!").expect("write");
        let mut reads_before = None;
        for i in 0..256 {
            let freed = Rc::new(Cell::new(false));
            let (c, _) = pipe_read(&reader, &freed).await;
            assert_eq!(c.result, 64);
            if served.get() && reads_before.is_none() {
                reads_before = Some(i);
            }
        }
        let reads_before =
            reads_before.expect("the other task was not served while the reads went on");
        assert!(
            reads_before < 64,
            "the other task waited for {reads_before} reads"
        );
        settle().await;
    })
    .expect("runtime");
}
