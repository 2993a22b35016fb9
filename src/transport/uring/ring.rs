//! A ring of our own per core, and the reactor task that drives it inside the glommio executor.
//!
//! glommio 0.9 sets its rings up without `IORING_SETUP_COOP_TASKRUN`, so every network
//! completion interrupts the running thread to run its task work. This ring asks for
//! `COOP_TASKRUN | TASKRUN_FLAG` (and falls back to no flags where the kernel refuses them):
//! completions then wait until the thread enters the kernel anyway, and the `TASKRUN` flag tells
//! the reactor when one submit would also reap them.
//!
//! One multishot accept per listener and one multishot receive per connection (into the
//! provided-buffer ring, `buffers.rs`) stay armed. Connection tasks queue their sends and other
//! requests; the reactor hands everything queued to the kernel in one `io_uring_enter` per turn,
//! reaps the completions and wakes the tasks they concern.
//!
//! glommio still parks the thread on its own rings, so its timers and the cross-core channel mesh
//! wake it as before. To be woken by this ring too, an eventfd is registered with it, and a task
//! keeps a glommio read of that eventfd pending (`BufferedFile::read_at`: io_uring completes the
//! read only once the eventfd is readable). Notifications are enabled only while the reactor is
//! parked, so a busy core never pays for them. Measured against the alternatives:
//!
//! - a reactor that re-polls instead of parking keeps an idle server at a full core of CPU
//!   (493 against 2 scheduler ticks in 5 s);
//! - a reactor that yields between turns keeps glommio's task queue busy under load, and glommio
//!   polls its own rings, timers and cross-core channels only when its queues go idle or its
//!   preempt timer (100 ms) fires: heartbeat p99 went to 60–90 ms. So after a few turns within
//!   one pass of the task queue the reactor carries on at the next executor iteration, by a 1 µs
//!   glommio timer;
//! - but every executor iteration costs glommio several `io_uring_enter`s (its preempt timer is
//!   cancelled and armed again, its rings flushed), and a quiet core that took one turn per
//!   iteration spent four iterations on one request (the receive, the send, its completion, the
//!   turn that found nothing). So the reactor yields between turns while a turn woke tasks, up
//!   to `TURNS_PER_PASS` of them: the request's task runs, queues its reply, and the next turn of
//!   the same pass sends it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future::{or, yield_now};
use glommio::io::BufferedFile;
use glommio::spawn_local;
use glommio::timer::sleep;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use log::warn;
use slab::Slab;

use super::buffers::BufRing;
use super::conn::{Conn, Next, Recv, Unsent};
use super::deadlines::Deadlines;
use crate::transport::{Output, ReadBuffer};

/// Multishot receives the kernel ended because a ring's provided-buffer ring was empty (each is
/// re-armed); process-wide, since the transport knows no core's counters. `/metrics` reads it.
pub(crate) static RECV_BUFFER_EXHAUSTED: AtomicU64 = AtomicU64::new(0);

/// Submission queue entries; a full queue is submitted early.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries (the kernel keeps any overflow and hands it over on the next enter).
const CQ_ENTRIES: u32 = 8192;
/// Receive buffers in the provided-buffer ring, and their size: 4 MiB per core.
const BUFFERS: u16 = 2048;
const BUFFER_SIZE: usize = 2048;
/// The most one connection's receive can take before its cancel takes effect.
#[cfg(test)]
pub(super) const RING_BYTES: usize = BUFFERS as usize * BUFFER_SIZE;
/// The provided-buffer group every receive of this ring picks from.
const GROUP: u16 = 0;
/// Completions copied out of the queue at a time.
const REAP_BATCH: usize = 64;
/// Multishot receive, the newest operation used here, came with Linux 6.0.
const MIN_KERNEL: (u32, u32) = (6, 0);
/// A timer this short fires at the executor's next poll.
const NEXT_ITERATION: Duration = Duration::from_micros(1);
/// Turns the reactor takes within one pass of the task queue (yielding between them) before it
/// lets glommio poll its own rings, timers and channels: a receive, its reply's send, and the
/// turn that finds nothing left.
const TURNS_PER_PASS: u32 = 3;

/// How the ring was set up, for the start-up log.
pub(crate) enum Setup {
    CoopTaskrun,
    /// The kernel refused the flags; the ring works, but every completion interrupts the thread.
    Plain(io::Error),
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setup::CoopTaskrun => f.write_str("COOP_TASKRUN | TASKRUN_FLAG"),
            Setup::Plain(why) => write!(
                f,
                "no setup flags (the kernel refused COOP_TASKRUN | TASKRUN_FLAG: {why})"
            ),
        }
    }
}

/// What one completion is for: the operation, and the listener's or connection's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept,
    Recv,
    Send,
    /// Cancels, whose own completions need nothing.
    Cancel,
}

const OPS: [Op; 4] = [Op::Accept, Op::Recv, Op::Send, Op::Cancel];

fn token(op: Op, key: usize) -> u64 {
    (key as u64) << 2 | op as u64
}

fn untoken(user_data: u64) -> (Op, usize) {
    (OPS[(user_data & 3) as usize], (user_data >> 2) as usize)
}

/// One listening socket's multishot accept and the connections it has accepted.
struct Accept {
    socket: std::net::TcpListener,
    accepted: VecDeque<TcpStream>,
    error: Option<io::Error>,
    armed: bool,
    waiter: Option<Waker>,
    closed: bool,
}

pub(crate) struct Ring {
    inner: RefCell<Inner>,
    setup: Setup,
}

struct Inner {
    // Dropped first: the kernel lets go of the buffers and sockets below before they are freed.
    uring: IoUring,
    buffers: BufRing,
    conns: Slab<Conn>,
    listeners: Slab<Accept>,
    deadlines: Deadlines,
    /// The reactor, while it is parked.
    reactor: Option<Waker>,
    /// Something was queued (or the eventfd fired) since the reactor's last turn.
    kicked: bool,
}

impl Ring {
    /// Creates this core's ring and starts its reactor on the current glommio executor.
    pub(crate) fn start() -> io::Result<Rc<Ring>> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
        if !kernel_at_least(release.trim(), MIN_KERNEL) {
            let why = format!(
                "multishot receive needs Linux 6.0; this is {}",
                release.trim()
            );
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let (mut uring, setup) = build()?;
        let buffers = BufRing::register(&uring.submitter(), GROUP, BUFFERS, BUFFER_SIZE)?;
        let eventfd = eventfd()?;
        uring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        uring.completion().disable_eventfd();
        let ring = Rc::new(Ring {
            inner: RefCell::new(Inner {
                uring,
                buffers,
                conns: Slab::new(),
                listeners: Slab::new(),
                deadlines: Deadlines::default(),
                reactor: None,
                kicked: false,
            }),
            setup,
        });
        spawn_local(drive(ring.clone())).detach();
        spawn_local(sweep(ring.clone())).detach();
        // SAFETY: the eventfd was just created and is owned by nothing else; the file takes it.
        let eventfd = unsafe { BufferedFile::from_raw_fd(eventfd.into_raw_fd()) };
        spawn_local(watch(ring.clone(), eventfd)).detach();
        Ok(ring)
    }

    pub(crate) fn setup(&self) -> &Setup {
        &self.setup
    }

    // --- listeners ---

    pub(crate) fn add_listener(&self, socket: std::net::TcpListener) -> usize {
        self.inner.borrow_mut().listeners.insert(Accept {
            socket,
            accepted: VecDeque::new(),
            error: None,
            armed: false,
            waiter: None,
            closed: false,
        })
    }

    pub(crate) fn local_addr(&self, listener: usize) -> io::Result<std::net::SocketAddr> {
        self.inner.borrow().listeners[listener].socket.local_addr()
    }

    /// Ready with the next accepted connection, or the error the accept ended with.
    pub(crate) fn poll_accept(
        &self,
        listener: usize,
        cx: &Context<'_>,
    ) -> Poll<io::Result<TcpStream>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let accept = &mut inner.listeners[listener];
        if let Some(stream) = accept.accepted.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Some(error) = accept.error.take() {
            return Poll::Ready(Err(error));
        }
        accept.waiter = Some(cx.waker().clone());
        if !accept.armed {
            accept.armed = true;
            let fd = types::Fd(accept.socket.as_raw_fd());
            inner.push(
                opcode::AcceptMulti::new(fd)
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
                    .user_data(token(Op::Accept, listener)),
            );
        }
        Poll::Pending
    }

    /// Stops accepting on `listener`; its socket closes once the accept is cancelled.
    pub(crate) fn close_listener(&self, listener: usize) {
        let mut inner = self.inner.borrow_mut();
        let accept = &mut inner.listeners[listener];
        accept.closed = true;
        accept.accepted.clear();
        if accept.armed {
            inner.push(
                opcode::AsyncCancel::new(token(Op::Accept, listener))
                    .build()
                    .user_data(token(Op::Cancel, 0)),
            );
        } else {
            inner.listeners.remove(listener);
        }
    }

    // --- connections ---

    pub(crate) fn add_conn(&self, socket: TcpStream) -> usize {
        self.inner.borrow_mut().conns.insert(Conn::new(socket))
    }

    /// See [`Conn::take_input`].
    pub(crate) fn take_input(
        &self,
        conn: usize,
        buf: &mut ReadBuffer,
    ) -> Option<io::Result<usize>> {
        self.inner.borrow_mut().conns[conn].take_input(buf)
    }

    /// See [`Conn::park`]; arms the receive if it is not.
    pub(crate) fn park(&self, conn: usize, buf: &mut ReadBuffer) {
        let mut inner = self.inner.borrow_mut();
        let next = inner.conns[conn].park(buf);
        inner.follow(conn, next);
    }

    pub(crate) fn unpark(&self, conn: usize, buf: &mut ReadBuffer) {
        self.inner.borrow_mut().conns[conn].unpark(buf);
    }

    pub(crate) fn poll_arrival(&self, conn: usize, cx: &Context<'_>) -> Poll<()> {
        self.inner.borrow_mut().conns[conn].poll_arrival(cx)
    }

    /// See [`Conn::poll_write`].
    pub(crate) fn poll_write(
        &self,
        conn: usize,
        output: &mut Output,
        started: &mut bool,
        cx: &Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.inner.borrow_mut();
        let (poll, next) = inner.conns[conn].poll_write(output, started, cx);
        inner.follow(conn, next);
        poll
    }

    /// See [`Conn::poll_release`]; once released, the ring forgets the connection and its socket
    /// is the caller's.
    pub(crate) fn poll_release(
        &self,
        conn: usize,
        buf: &mut ReadBuffer,
        cx: &Context<'_>,
    ) -> Poll<Result<OwnedFd, ()>> {
        let mut inner = self.inner.borrow_mut();
        let (poll, next) = inner.conns[conn].poll_release(buf, cx);
        inner.follow(conn, next);
        poll.map_ok(|()| inner.conns.remove(conn).socket.into())
    }

    /// The connection's task is gone; see [`Conn::orphan`].
    pub(crate) fn orphan(&self, conn: usize) {
        let mut inner = self.inner.borrow_mut();
        let next = inner.conns[conn].orphan();
        inner.follow(conn, next);
    }

    /// See [`Deadlines::poll`].
    pub(crate) fn poll_deadline(&self, conn: usize, at: Instant, cx: &Context<'_>) -> Poll<()> {
        self.inner.borrow_mut().deadlines.poll(conn, at, cx)
    }

    /// See [`Deadlines::clear`].
    pub(crate) fn clear_deadline(&self, conn: usize) {
        self.inner.borrow_mut().deadlines.clear(conn);
    }

    /// Connections whose state is still held, and the bytes they hold.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        let inner = self.inner.borrow();
        let bytes = inner.conns.iter().map(|(_, c)| c.held()).sum();
        (inner.conns.len(), bytes)
    }

    // --- the reactor ---

    /// Submits what is queued, reaps what completed; false when there was nothing to do.
    fn turn(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.kicked = false;
        let mut worked = inner.submit();
        loop {
            let mut batch = [(0u64, 0i32, 0u32); REAP_BATCH];
            let mut n = 0;
            for cqe in inner.uring.completion().take(REAP_BATCH) {
                batch[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                n += 1;
            }
            if n == 0 {
                return worked;
            }
            worked = true;
            for &(user_data, result, flags) in &batch[..n] {
                inner.complete(user_data, result, flags);
            }
        }
    }

    /// Waits until something is queued or the ring has completions; eventfd notifications are on
    /// meanwhile.
    async fn park_reactor(&self) {
        let mut armed = false;
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if !armed {
                armed = true;
                inner.uring.completion().enable_eventfd();
                // Completions posted before notifications were enabled signalled nothing.
                let work = inner.has_work();
                inner.kicked |= work;
            }
            if inner.kicked {
                inner.reactor = None;
                inner.uring.completion().disable_eventfd();
                return Poll::Ready(());
            }
            inner.reactor = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Inner {
    /// Queues `entry` for the reactor's next submit.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry built in this module refers only to memory that outlives its
            // operation: sends point into a connection's `output` (and a vectored send into the
            // message and pieces `Conn::unsent` made from it, boxed beside it), none of which is
            // changed or freed until the send completes (`Conn::poll_write`, `Conn::orphan`);
            // receives pick provided buffers, which live as long as the ring.
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                break;
            }
            // The queue is full: hand it to the kernel now to make room.
            if let Err(e) = self.uring.submit() {
                warn!("io_uring submit failed: {e}");
            }
        }
        self.kick();
    }

    fn kick(&mut self) {
        self.kicked = true;
        if let Some(reactor) = self.reactor.take() {
            reactor.wake();
        }
    }

    /// Whether an enter would submit or reap anything.
    fn has_work(&mut self) -> bool {
        let sq = self.uring.submission();
        let pending = !sq.is_empty() || sq.taskrun() || sq.cq_overflow();
        drop(sq);
        pending || !self.uring.completion().is_empty()
    }

    /// One `io_uring_enter` for everything queued, also running completions waiting as task work.
    fn submit(&mut self) -> bool {
        let sq = self.uring.submission();
        if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
            return false;
        }
        drop(sq);
        match self.uring.submit() {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                ) => {}
            Err(e) => warn!("io_uring submit failed: {e}"),
        }
        true
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) {
        let (op, key) = untoken(user_data);
        match op {
            Op::Accept => self.accepted(key, result, flags),
            Op::Recv => self.received(key, result, flags),
            Op::Send => {
                let next = self.conns[key].sent(result);
                self.follow(key, next);
            }
            Op::Cancel => {}
        }
    }

    fn accepted(&mut self, key: usize, result: i32, flags: u32) {
        let accept = &mut self.listeners[key];
        if result >= 0 {
            // SAFETY: the kernel just created this socket for us; nothing else owns it.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            if !accept.closed {
                accept.accepted.push_back(stream);
            }
        } else {
            accept.error = Some(io::Error::from_raw_os_error(-result));
        }
        if let Some(waiter) = accept.waiter.take() {
            waiter.wake();
        }
        if !cqueue::more(flags) {
            accept.armed = false;
            if accept.closed {
                self.listeners.remove(key);
            }
        }
    }

    fn received(&mut self, key: usize, result: i32, flags: u32) {
        let conn = &mut self.conns[key];
        let mut next = Next::Nothing;
        if let Some(bid) = cqueue::buffer_select(flags) {
            if result > 0 {
                next = conn.received(self.buffers.get(bid, result as usize));
            }
            self.buffers.give_back(bid);
        }
        match -result {
            errno if errno < 0 => {}
            libc::ENOBUFS => {
                RECV_BUFFER_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
            }
            libc::ECANCELED => {}
            errno => conn.ended(errno),
        }
        if !cqueue::more(flags) {
            next = conn.recv_finished();
        }
        self.follow(key, next);
    }

    /// Does what a connection's state asks for.
    fn follow(&mut self, key: usize, next: Next) {
        match next {
            Next::Nothing => {}
            Next::Receive => {
                let conn = &mut self.conns[key];
                conn.set_recv(Recv::Armed);
                let entry = opcode::RecvMulti::new(types::Fd(conn.socket.as_raw_fd()), GROUP)
                    .build()
                    .user_data(token(Op::Recv, key));
                self.push(entry);
            }
            Next::Cancel => {
                self.conns[key].set_recv(Recv::Cancelling);
                self.push(
                    opcode::AsyncCancel::new(token(Op::Recv, key))
                        .build()
                        .user_data(token(Op::Cancel, 0)),
                );
            }
            Next::Send => {
                let conn = &mut self.conns[key];
                let fd = types::Fd(conn.socket.as_raw_fd());
                let entry = match conn.unsent() {
                    Unsent::Plain(unsent) => {
                        // A longer reply goes out in several sends.
                        let len = unsent.len().min(u32::MAX as usize) as u32;
                        opcode::Send::new(fd, unsent.as_ptr(), len)
                            .flags(libc::MSG_NOSIGNAL)
                            .build()
                    }
                    Unsent::Vectored(message) => opcode::SendMsg::new(fd, message)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build(),
                };
                self.push(entry.user_data(token(Op::Send, key)));
            }
            Next::Release => {
                self.conns.remove(key);
            }
            Next::Abort => {
                // The send and any receive complete (with an error and the end of input); the
                // last completion releases the connection. A socket already shut down is fine.
                let _ = self.conns[key].socket.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Receives still armed then find no buffer rather than freed memory.
        let _ = self.uring.submitter().unregister_buf_ring(GROUP);
    }
}

/// Whether a kernel release such as `6.18.44-fc` is `min` (major, minor) or later.
fn kernel_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).map(str::parse);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= min,
        _ => false,
    }
}

/// The ring with the setup flags, or without them on kernels that refuse them.
fn build() -> io::Result<(IoUring, Setup)> {
    let flagged = IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES);
    match flagged {
        Ok(uring) => Ok((uring, Setup::CoopTaskrun)),
        Err(why) if why.raw_os_error() == Some(libc::EINVAL) => {
            let uring = IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)?;
            Ok((uring, Setup::Plain(why)))
        }
        Err(e) => Err(e),
    }
}

/// A blocking eventfd: io_uring then completes a read of it only once it is signalled.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: a plain system call with no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The reactor: turns while there is work, up to `TURNS_PER_PASS` within one pass of the task
/// queue and then one per executor iteration; parked when there is none.
async fn drive(ring: Rc<Ring>) {
    let mut turns = 0;
    loop {
        if !ring.turn() {
            turns = 0;
            ring.park_reactor().await;
        } else if turns + 1 < TURNS_PER_PASS {
            // The tasks this turn woke run first and queue their sends; the next turn, in the
            // same pass, hands those to the kernel.
            turns += 1;
            yield_now().await;
        } else {
            // Let glommio poll its own rings, timers and cross-core channels (which it only does
            // once its task queues are idle) and fire this timer; yielding on instead would keep
            // the queue busy, and glommio would poll only when its preempt timer (100 ms) fires.
            turns = 0;
            sleep(NEXT_ITERATION).await;
        }
    }
}

/// Wakes the connections whose deadline passed, sleeping until the earliest one left.
async fn sweep(ring: Rc<Ring>) {
    loop {
        let now = Instant::now();
        let next = ring.inner.borrow_mut().deadlines.sweep(now);
        let replan = poll_fn(|cx| ring.inner.borrow_mut().deadlines.poll_replan(cx));
        match next {
            Some(at) => or(sleep(at.saturating_duration_since(now)), replan).await,
            None => replan.await,
        }
    }
}

/// Wakes the reactor whenever the ring signals its eventfd.
async fn watch(ring: Rc<Ring>, eventfd: BufferedFile) {
    loop {
        if let Err(e) = eventfd.read_at(0, 8).await {
            warn!("reading the io_uring eventfd failed: {e}");
            sleep(Duration::from_millis(1)).await;
        }
        ring.inner.borrow_mut().kick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_find_their_operation_and_key() {
        for op in OPS {
            for key in [0, 1, 4095, usize::MAX >> 2] {
                assert_eq!(untoken(token(op, key)), (op, key));
            }
        }
    }

    #[test]
    fn kernel_releases() {
        assert!(kernel_at_least("6.18.44-fc-v669", (6, 0)));
        assert!(kernel_at_least("6.0.0", (6, 0)));
        assert!(kernel_at_least("10.1", (6, 0)));
        assert!(!kernel_at_least("5.19.17-generic", (6, 0)));
        assert!(!kernel_at_least("garbage", (6, 0)));
    }
}
