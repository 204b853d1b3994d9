//! The reactor under faults: transient `io_uring_enter` errors, a full
//! submission queue, failed cancels, a ring running out of buffers, and
//! teardown with ops the kernel or nobody finished.

use std::future::Future;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use super::io_op::Io;

use super::driver;
use super::net::TcpStream;
use super::op::Op;
use super::tests::{connected_pair, runtime, settle, until};
use super::{buffers, ops_in_flight, ring_stats, yield_now, Runtime, RuntimeConfig, RuntimeError};
use crate::buf::Group;

/// Echoes `rounds` messages through a ring socket and a peer thread.
async fn echo(rounds: usize) {
    let (mut peer, ours) = connected_pair();
    let ours = TcpStream::from_std(ours);
    let mut stream = ours.recv_stream(Group::Client, 4);
    for round in 0..rounds {
        let msg = format!("round {round}");
        peer.write_all(msg.as_bytes()).expect("write");
        let buf = stream.next().await.expect("recv").expect("data");
        assert_eq!(buf.as_slice(), msg.as_bytes());
        let (n, _) = ours.send(buf, 0).await.expect("send");
        assert_eq!(n, msg.len());
        let mut back = vec![0u8; msg.len()];
        peer.read_exact(&mut back).expect("read back");
        assert_eq!(back, msg.as_bytes());
    }
}

#[test]
fn transient_enter_errors_are_survived() {
    let rt = runtime();
    driver::with(|d| {
        d.faults.enter.extend([
            libc::EAGAIN,
            libc::ENOMEM,
            libc::EBUSY,
            libc::EINTR,
            libc::EAGAIN,
            libc::ENOMEM,
        ])
    });
    rt.block_on(echo(8))
        .expect("the loop survives transient errors");
    assert!(driver::with(|d| d.faults.enter.is_empty()));
    assert!(ring_stats().enter_retries >= 6, "{:?}", ring_stats());
}

#[test]
fn a_hard_enter_error_still_ends_the_loop() {
    let rt = runtime();
    driver::with(|d| d.faults.enter.push_back(libc::EBADF));
    let out = rt.block_on(super::time::sleep(Duration::from_millis(1)));
    assert!(matches!(out, Err(RuntimeError::Enter(_))), "{out:?}");
}

#[test]
fn a_full_submission_queue_with_transient_errors_does_not_fail_the_op() {
    // The queue has 64 entries: the 65th op must make room by submitting,
    // and a transient refusal of that submit must not reach the op.
    let rt = runtime();
    rt.block_on(async {
        let mut ops = Vec::new();
        for _ in 0..64 {
            ops.push(Op::submit(Io::Nop, ()).expect("nop"));
        }
        driver::with(|d| d.faults.enter.extend([libc::EBUSY, libc::EAGAIN]));
        ops.push(Op::submit(Io::Nop, ()).expect("65th nop"));
        for op in ops {
            let (c, ()) = op.await;
            assert_eq!(c.result, 0);
        }
    })
    .expect("runtime");
}

#[test]
fn a_linked_op_and_its_timeout_enter_the_queue_together() {
    let rt = runtime();
    rt.block_on(async {
        // Leave room for exactly one entry: the pair must not be split.
        let mut ops = Vec::new();
        for _ in 0..63 {
            ops.push(Op::submit(Io::Nop, ()).expect("nop"));
        }
        assert_eq!(driver::with(|d| d.queued()), 63);
        let sleeper = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = sleeper.local_addr().expect("addr");
        let before = ring_stats().submitted;
        let connect = TcpStream::connect(addr, Duration::from_secs(5));
        let mut connect = std::pin::pin!(connect);
        let mut cx = Context::from_waker(Waker::noop());
        let _ = connect.as_mut().poll(&mut cx);
        // The 63 nops went to the kernel on their own; the pair waits whole.
        assert_eq!(ring_stats().submitted - before, 63);
        assert_eq!(driver::with(|d| d.queued()), 2);
        connect.await.expect("connect");
        for op in ops {
            op.await;
        }
    })
    .expect("runtime");
}

#[test]
fn an_orphaned_receive_whose_cancel_fails_still_closes_its_socket() {
    let rt = runtime();
    let mut peer = rt
        .block_on(async {
            let (peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Client, 4);
            // Arm the receive, then drop it with its socket.
            let mut cx = Context::from_waker(Waker::noop());
            assert!(std::pin::pin!(stream.next()).poll(&mut cx).is_pending());
            yield_now().await;
            driver::with(|d| d.faults.break_cancels = true);
            drop(stream);
            drop(ours);
            settle().await;
            peer
        })
        .expect("runtime");
    assert_eq!(ring_stats().cancel_failures, 1);
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match peer.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the socket behind the stuck receive stayed open: {other:?}"),
    }
    drop(rt);
}

#[test]
fn a_second_runtime_on_a_thread_is_refused() {
    let rt = runtime();
    let second = Runtime::new(RuntimeConfig::default());
    assert!(matches!(second, Err(RuntimeError::AlreadyRunning)));
    // The first one still works.
    rt.block_on(super::time::sleep(Duration::from_millis(1)))
        .expect("runtime")
        .expect("sleep");
}

#[test]
fn an_op_dropped_while_the_reactor_is_busy_is_leaked_not_freed() {
    let rt = runtime();
    rt.block_on(async {
        let (reader, _writer) = std::io::pipe().expect("pipe");
        let reader = Rc::new(super::Watched::new(reader));
        let freed = Rc::new(std::cell::Cell::new(false));
        let op = super::tests::pipe_read(&reader, &freed);
        // The driver is borrowed: the op cannot park its buffer in its slot.
        driver::with(|_| drop(op));
        assert!(
            !freed.get(),
            "a buffer the kernel may still write into was freed"
        );
    })
    .expect("runtime");
}

#[test]
fn dropping_a_runtime_with_a_finished_unpolled_op_does_not_hang() {
    // An op that finished but was never polled, owned outside every task:
    // the kernel is done with it, so teardown must not wait for it.
    let rt = runtime();
    let op = rt
        .block_on(async {
            let op = Op::submit(Io::Nop, ()).expect("nop");
            until("the nop completed", || ring_stats().completed >= 1).await;
            // In a vector: the op outlives the loop without being awaited.
            vec![op]
        })
        .expect("runtime");
    assert_eq!(ops_in_flight(), 0);
    drop(rt);
    drop(op);
}

/// A waker that counts its wakes.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_returned_buffer_wakes_each_waiter_once() {
    let rt = runtime();
    rt.block_on(async {
        let pool = buffers(Group::Client);
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(Arc::clone(&a)), Waker::from(Arc::clone(&b)));
        pool.wait_for_buffer(&wa);
        pool.wait_for_buffer(&wa);
        pool.wait_for_buffer(&wb);
        assert_eq!(pool.waiting(), 2, "a waker polled twice waits once");
        // One buffer comes back, with many free: both waiters may go on,
        // each woken once, oldest first.
        let (mut peer, ours) = connected_pair();
        let ours = TcpStream::from_std(ours);
        let mut stream = ours.recv_stream(Group::Client, 1);
        peer.write_all(b"x").expect("write");
        let buf = stream.next().await.expect("recv").expect("data");
        drop(buf);
        assert_eq!(a.0.load(Ordering::Relaxed), 1);
        assert_eq!(b.0.load(Ordering::Relaxed), 1);
        assert_eq!(pool.waiting(), 0);
    })
    .expect("runtime");
}

#[test]
fn a_ring_below_its_reserve_copies_out_and_never_runs_dry() {
    // 16 buffers, a reserve of 2. Stalled consumers hold what they got;
    // once the ring is low, what they receive is copied and the buffers go
    // back, so a late receiver still gets data.
    let rt = runtime();
    rt.block_on(async {
        let pool = buffers(Group::Client);
        let total = pool.count() as usize;
        let mut held = Vec::new();
        let mut pairs = Vec::new();
        for i in 0..3 * total {
            let (mut peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Client, 8);
            peer.write_all(&[i as u8]).expect("write");
            let buf = stream.next().await.expect("recv").expect("data");
            assert_eq!(buf.as_slice(), &[i as u8]);
            assert!(
                pool.available() + 1 >= pool.reserve(),
                "the ring fell to {} free",
                pool.available()
            );
            held.push(buf);
            pairs.push((peer, ours, stream));
        }
        let copies = held.iter().filter(|b| !b.holds_ring_buffer()).count();
        assert!(copies >= 2 * total, "only {copies} copies");
        let stats = ring_stats().pools[0];
        assert_eq!(stats.copied as usize, copies);
        assert_eq!(stats.copied_bytes as usize, copies);
        assert!(stats.in_use as usize <= total);
        // The high water each stream may have shrinks with the free count.
        let free = pool.available() as usize;
        assert_eq!(pool.share(8), (8 * free / (total / 2)).max(2));
        assert!(pool.share(8) <= 2);
        // A victim still receives.
        echo(2).await;
        drop(held);
        assert_eq!(pool.available() as usize, total);
        assert_eq!(pool.share(8), 8);
    })
    .expect("runtime");
}

#[test]
fn an_idle_receive_that_met_an_empty_ring_still_hears_what_came() {
    use super::net::Heard;
    // Hold all but the reserve (2 of 16), then have four idle sockets
    // receive at once: the kernel fills two and ends the other two
    // receives with ENOBUFS, leaving their bytes in the socket.
    let rt = runtime();
    rt.block_on(async {
        let pool = buffers(Group::Upstream);
        let mut held = Vec::new();
        let mut keep = Vec::new();
        while pool.available() > pool.reserve() {
            let (mut peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Upstream, 8);
            peer.write_all(b"h").expect("write");
            held.push(stream.next().await.expect("recv").expect("data"));
            keep.push((peer, ours, stream));
        }
        assert!(held.iter().all(|b| b.holds_ring_buffer()));
        let mut idle = Vec::new();
        for _ in 0..4 {
            let (peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Upstream, 8);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(std::pin::pin!(stream.next()).poll(&mut cx).is_pending());
            idle.push((peer, ours, stream));
        }
        // The receives go to the kernel.
        yield_now().await;
        for (peer, _, _) in &mut idle {
            peer.write_all(b"stray").expect("write");
        }
        // One entry: the kernel runs the four receives together.
        yield_now().await;
        let quiet = {
            let (_peer, ours) = connected_pair();
            let ours = TcpStream::from_std(ours);
            let mut stream = ours.recv_stream(Group::Upstream, 8);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(std::pin::pin!(stream.next()).poll(&mut cx).is_pending());
            yield_now().await;
            stream.heard()
        };
        assert_eq!(quiet, Heard::Nothing);
        for (i, (_, _, stream)) in idle.iter_mut().enumerate() {
            assert_eq!(stream.heard(), Heard::Bytes, "idle socket {i}");
        }
        assert!(
            ring_stats().pools[1].enobufs >= 1,
            "no receive met the empty ring: the test proved nothing"
        );
        drop(held);
    })
    .expect("runtime");
}
