//! What the ring knows of one accepted connection: the bytes received for it, whether its
//! multishot receive is armed, and its send in flight.
//!
//! This is the back-pressure of the `uring` transport, kept apart from the I/O so that it can be
//! tested without a socket:
//!
//! - While the connection's task waits for input, its own buffer is parked here and received
//!   bytes are appended to it directly (one copy, out of the provided buffer), up to
//!   [`READ_LIMIT`] per read, so one read never hands the HTTP layer an unbounded batch.
//! - Bytes that arrive while the task is busy (answering, or sending to a slow reader) wait in
//!   `input`; once [`INPUT_LIMIT`] of them wait, the receive is cancelled and only re-armed when
//!   the task reads again. A peer cannot make the server buffer more than that.
//! - A send takes the task's buffer of replies into `output`, which the kernel reads from until
//!   the send completes, and hands it back then; it is never touched meanwhile, and a connection
//!   dropped mid-send is only freed when the kernel is done with it. Replies are not copied.
//! - A connection released to another core first stops its receive and waits for the last
//!   completion, so no byte is received here after its input has been handed over.
//! - A connection whose task is gone while a send is still in flight (it gave up on a peer that
//!   does not read) is shut down, so the send ends, its buffer is freed and the socket closed at
//!   once rather than whenever the peer reads or leaves.

use std::io;
use std::mem;
use std::net::TcpStream;
use std::task::{Context, Poll, Waker};

use crate::transport::{Output, ReadBuffer};

/// At most this many received bytes are handed to the task by one read (plus one receive buffer).
pub(super) const READ_LIMIT: usize = 64 * 1024;
/// Receiving stops while this many bytes wait for a busy task.
pub(super) const INPUT_LIMIT: usize = 64 * 1024;

/// The connection's multishot receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recv {
    /// Not armed: not yet needed, stopped by the kernel, or cancelled and finished.
    Idle,
    Armed,
    /// A cancel is on its way; the receive's last completion has not arrived yet.
    Cancelling,
}

/// How the peer's side ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Eof,
    Error(i32),
}

/// What the ring must do for a connection after a completion or a call from its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    Nothing,
    /// Arm a multishot receive.
    Receive,
    /// Cancel the armed receive.
    Cancel,
    /// Send the rest of `output`.
    Send,
    /// No operation is in flight and the task is gone: drop the state, closing the socket.
    Release,
    /// The task is gone while a send is still in flight (a peer that does not read): shut the
    /// socket down, so that the kernel ends the send and the receive at once and the connection
    /// can be released.
    Abort,
}

/// Most pieces one vectored send takes (the kernel's `UIO_MAXIOV`); the rest go in later sends.
const MAX_PIECES: usize = 1024;

/// What the next send of a connection's output takes.
pub(super) enum Unsent<'a> {
    /// The output is one buffer: send from here.
    Plain(&'a [u8]),
    /// The output has shared pieces: send the message, which lists them.
    Vectored(*const libc::msghdr),
}

/// A vectored send's message and the pieces it lists, boxed so that they stay where the kernel
/// reads them until the send completes.
struct Vectored {
    message: libc::msghdr,
    pieces: Vec<libc::iovec>,
}

/// The task's buffer while it waits for input.
struct Parked {
    buf: ReadBuffer,
    /// How many more bytes this read may still take.
    room: usize,
}

pub(super) struct Conn {
    pub socket: TcpStream,
    /// Bytes that arrived while the task was not waiting (or past the read limit).
    input: ReadBuffer,
    parked: Option<Parked>,
    /// Input or the end arrived since the task parked.
    arrived: bool,
    recv: Recv,
    end: Option<End>,
    reader: Option<Waker>,
    output: Output,
    /// The message of a vectored send in flight.
    vectored: Option<Box<Vectored>>,
    sent: usize,
    sending: bool,
    send_result: Option<io::Result<()>>,
    writer: Option<Waker>,
    /// The task dropped the connection.
    orphaned: bool,
    /// The task waits to release the socket to another core.
    releasing: bool,
}

impl Conn {
    pub(super) fn new(socket: TcpStream) -> Conn {
        Conn {
            socket,
            input: ReadBuffer::default(),
            parked: None,
            arrived: false,
            recv: Recv::Idle,
            end: None,
            reader: None,
            output: Output::default(),
            vectored: None,
            sent: 0,
            sending: false,
            send_result: None,
            writer: None,
            orphaned: false,
            releasing: false,
        }
    }

    // --- the task's side ---

    /// Moves bytes that arrived meanwhile into `buf` (at most [`READ_LIMIT`] at a time); the end
    /// of input once all are taken. `None` when there is nothing to hand over yet.
    pub(super) fn take_input(&mut self, buf: &mut ReadBuffer) -> Option<io::Result<usize>> {
        let n = self.input.len().min(READ_LIMIT);
        if n > 0 {
            if buf.is_empty() && n == self.input.len() {
                mem::swap(buf, &mut self.input);
            } else {
                buf.append(&self.input.filled_mut()[..n]);
                self.input.consume(n);
            }
            return Some(Ok(n));
        }
        match self.end? {
            End::Eof => Some(Ok(0)),
            End::Error(errno) => Some(Err(io::Error::from_raw_os_error(errno))),
        }
    }

    /// Keeps `buf` here while the task waits, so that received bytes go straight into it.
    pub(super) fn park(&mut self, buf: &mut ReadBuffer) -> Next {
        self.parked = Some(Parked {
            buf: mem::take(buf),
            room: READ_LIMIT,
        });
        self.arrived = false;
        if self.recv == Recv::Idle && self.end.is_none() {
            Next::Receive
        } else {
            Next::Nothing
        }
    }

    /// Gives the parked buffer back to the task.
    pub(super) fn unpark(&mut self, buf: &mut ReadBuffer) {
        if let Some(parked) = self.parked.take() {
            *buf = parked.buf;
        }
        self.reader = None;
    }

    /// Ready once input or the end arrived since `park`.
    pub(super) fn poll_arrival(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.arrived {
            return Poll::Ready(());
        }
        store(&mut self.reader, cx);
        Poll::Pending
    }

    /// Drives one `write_all` of `output`: waits for an earlier send to finish, then takes the
    /// buffer and starts sending it (`Next::Send`), then hands it back, empty, with the send's
    /// result. `started` belongs to the caller's future.
    pub(super) fn poll_write(
        &mut self,
        output: &mut Output,
        started: &mut bool,
        cx: &Context<'_>,
    ) -> (Poll<io::Result<()>>, Next) {
        if self.sending {
            store(&mut self.writer, cx);
            return (Poll::Pending, Next::Nothing);
        }
        if *started {
            *output = mem::take(&mut self.output);
            output.clear();
            return (
                Poll::Ready(self.send_result.take().unwrap_or(Ok(()))),
                Next::Nothing,
            );
        }
        if output.is_empty() {
            return (Poll::Ready(Ok(())), Next::Nothing);
        }
        *started = true;
        self.output = mem::take(output);
        self.sent = 0;
        self.sending = true;
        self.send_result = None;
        store(&mut self.writer, cx);
        (Poll::Pending, Next::Send)
    }

    /// Drives one release of the socket to another core: waits for a send in flight, stops the
    /// receive and waits for its last completion, then moves every byte received into `buf`.
    /// `Err` when the peer's side has ended: the connection then stays here, its input intact.
    pub(super) fn poll_release(
        &mut self,
        buf: &mut ReadBuffer,
        cx: &Context<'_>,
    ) -> (Poll<Result<(), ()>>, Next) {
        if self.sending {
            store(&mut self.writer, cx);
            return (Poll::Pending, Next::Nothing);
        }
        if self.recv != Recv::Idle {
            self.releasing = true;
            store(&mut self.reader, cx);
            let next = match self.recv {
                Recv::Armed => Next::Cancel,
                _ => Next::Nothing,
            };
            return (Poll::Pending, next);
        }
        self.releasing = false;
        self.reader = None;
        if self.end.is_some() {
            return (Poll::Ready(Err(())), Next::Nothing);
        }
        buf.append(self.input.filled_mut());
        self.input = ReadBuffer::default();
        (Poll::Ready(Ok(())), Next::Nothing)
    }

    /// The task dropped the connection: stop receiving, free the input, end a send in flight,
    /// close once idle.
    pub(super) fn orphan(&mut self) -> Next {
        self.orphaned = true;
        self.input = ReadBuffer::default();
        self.parked = None;
        self.reader = None;
        self.writer = None;
        if self.sending {
            return Next::Abort;
        }
        match self.recv {
            Recv::Armed => Next::Cancel,
            Recv::Cancelling => Next::Nothing,
            Recv::Idle => self.release_if_idle(),
        }
    }

    // --- the ring's side ---

    /// A receive completed with `data`.
    pub(super) fn received(&mut self, data: &[u8]) -> Next {
        if self.orphaned {
            return Next::Nothing;
        }
        match &mut self.parked {
            Some(parked) if parked.room > 0 => {
                parked.buf.append(data);
                parked.room = parked.room.saturating_sub(data.len());
            }
            _ => self.input.append(data),
        }
        self.wake_reader();
        if self.recv == Recv::Armed && self.input.len() >= INPUT_LIMIT {
            Next::Cancel
        } else {
            Next::Nothing
        }
    }

    /// The peer closed its side (`errno` 0) or the socket failed.
    pub(super) fn ended(&mut self, errno: i32) {
        if self.end.is_none() {
            self.end = Some(if errno == 0 {
                End::Eof
            } else {
                End::Error(errno)
            });
        }
        self.wake_reader();
    }

    /// The ring has armed a receive, or submitted the cancel of one.
    pub(super) fn set_recv(&mut self, recv: Recv) {
        self.recv = recv;
    }

    /// The receive will complete no more: re-arm it if the task is waiting for more input.
    pub(super) fn recv_finished(&mut self) -> Next {
        self.recv = Recv::Idle;
        if self.releasing {
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
        }
        if self.orphaned {
            self.release_if_idle()
        } else if self.wants_input() {
            Next::Receive
        } else {
            Next::Nothing
        }
    }

    /// What the next send takes: the part of `output` not yet sent.
    pub(super) fn unsent(&mut self) -> Unsent<'_> {
        if self.output.is_contiguous() {
            return Unsent::Plain(&self.output[self.sent..]);
        }
        let vectored = self.vectored.get_or_insert_with(|| {
            Box::new(Vectored {
                // SAFETY: an all-zero `msghdr` is valid: null pointers and zero lengths.
                message: unsafe { mem::zeroed() },
                pieces: Vec::new(),
            })
        });
        vectored.pieces.clear();
        let pieces = self.output.pieces(self.sent).take(MAX_PIECES);
        vectored.pieces.extend(pieces.map(|piece| libc::iovec {
            iov_base: piece.as_ptr() as *mut libc::c_void,
            iov_len: piece.len(),
        }));
        vectored.message.msg_iov = vectored.pieces.as_mut_ptr();
        vectored.message.msg_iovlen = vectored.pieces.len();
        Unsent::Vectored(&vectored.message)
    }

    /// A send completed with `result` (bytes sent, or a negated errno).
    pub(super) fn sent(&mut self, result: i32) -> Next {
        let outcome = match result {
            n if n > 0 => {
                self.sent += n as usize;
                if self.sent < self.output.len() {
                    return Next::Send;
                }
                self.vectored = None;
                Ok(())
            }
            0 => Err(io::ErrorKind::WriteZero.into()),
            e => Err(io::Error::from_raw_os_error(-e)),
        };
        self.sending = false;
        self.send_result = Some(outcome);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        if self.orphaned {
            self.release_if_idle()
        } else {
            Next::Nothing
        }
    }

    /// Bytes held for this connection: waiting input and output in flight.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.input.len() + self.output.capacity()
    }

    /// The task waits, its read has room, and little input is waiting elsewhere.
    fn wants_input(&self) -> bool {
        let room = self.parked.as_ref().is_some_and(|p| p.room > 0);
        room && self.input.len() < INPUT_LIMIT && self.end.is_none()
    }

    fn wake_reader(&mut self) {
        if self.parked.is_some() {
            self.arrived = true;
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
        }
    }

    fn release_if_idle(&self) -> Next {
        if self.recv == Recv::Idle && !self.sending {
            Next::Release
        } else {
            Next::Nothing
        }
    }
}

fn store(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::task::Waker;

    fn conn() -> Conn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Conn::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap())
    }

    /// A connection whose task waits with `buf` parked, its receive armed.
    fn parked(buf: &mut ReadBuffer) -> Conn {
        let mut c = conn();
        assert_eq!(c.park(buf), Next::Receive);
        c.set_recv(Recv::Armed);
        c
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// Starts a `write_all` of `bytes`, which must take the buffer and ask the ring for a send.
    fn start_write(c: &mut Conn, bytes: &[u8], started: &mut bool) {
        let mut output = Output::from(bytes.to_vec());
        let (poll, next) = c.poll_write(&mut output, started, &cx());
        assert!(poll.is_pending());
        assert_eq!(next, Next::Send);
        assert_eq!(output.capacity(), 0, "the ring has the buffer");
    }

    #[test]
    fn a_connection_dropped_mid_send_is_aborted_then_released() {
        let mut c = conn();
        let mut started = false;
        start_write(&mut c, b"a reply the peer never reads", &mut started);
        assert_eq!(c.orphan(), Next::Abort);
        // The shut-down socket ends the send with an error; then nothing is in flight.
        assert_eq!(c.sent(-libc::EPIPE), Next::Release);
    }

    #[test]
    fn a_waiting_task_gets_bytes_in_its_own_buffer() {
        let mut buf = ReadBuffer::default();
        buf.append(b"GET");
        let mut c = parked(&mut buf);
        assert!(c.poll_arrival(&cx()).is_pending());
        assert_eq!(c.received(b" / HTTP/1.1"), Next::Nothing);
        assert!(c.poll_arrival(&cx()).is_ready());
        c.unpark(&mut buf);
        assert_eq!(buf.filled_mut(), b"GET / HTTP/1.1");
        assert!(c.take_input(&mut buf).is_none());
    }

    #[test]
    fn one_read_takes_at_most_the_read_limit() {
        let mut buf = ReadBuffer::default();
        let mut c = parked(&mut buf);
        let chunk = [7u8; 4096];
        for _ in 0..(READ_LIMIT / chunk.len() + 3) {
            c.received(&chunk);
        }
        c.unpark(&mut buf);
        assert_eq!(buf.len(), READ_LIMIT);
        let mut rest = ReadBuffer::default();
        assert_eq!(c.take_input(&mut rest).unwrap().unwrap(), 3 * chunk.len());
    }

    #[test]
    fn a_busy_task_stops_the_receive_at_the_input_limit() {
        let mut c = conn();
        c.set_recv(Recv::Armed);
        let chunk = [1u8; 2048];
        let mut nexts = Vec::new();
        for _ in 0..INPUT_LIMIT / chunk.len() {
            nexts.push(c.received(&chunk));
        }
        assert!(nexts[..nexts.len() - 1].iter().all(|n| *n == Next::Nothing));
        assert_eq!(nexts.last(), Some(&Next::Cancel));
        c.set_recv(Recv::Cancelling);
        // Bytes already on their way are kept, but no further cancel is asked for.
        assert_eq!(c.received(&chunk), Next::Nothing);
        assert_eq!(c.recv_finished(), Next::Nothing);
        // The task reads again: everything is handed over, and parking re-arms the receive.
        let mut buf = ReadBuffer::default();
        assert_eq!(c.take_input(&mut buf).unwrap().unwrap(), READ_LIMIT);
        assert_eq!(
            c.take_input(&mut buf).unwrap().unwrap(),
            INPUT_LIMIT + chunk.len() - READ_LIMIT
        );
        assert!(c.take_input(&mut buf).is_none());
        assert_eq!(c.park(&mut buf), Next::Receive);
    }

    #[test]
    fn a_receive_that_ends_while_the_task_waits_is_rearmed() {
        let mut buf = ReadBuffer::default();
        let mut c = parked(&mut buf);
        // e.g. the buffer ring ran dry (ENOBUFS): no data, no end, no more completions.
        assert_eq!(c.recv_finished(), Next::Receive);
        assert!(c.poll_arrival(&cx()).is_pending());
    }

    #[test]
    fn a_full_read_is_not_rearmed_when_the_buffers_run_out() {
        let mut buf = ReadBuffer::default();
        let mut c = parked(&mut buf);
        let chunk = [2u8; 2048];
        let mut cancelled = false;
        for _ in 0..(READ_LIMIT + INPUT_LIMIT) / chunk.len() {
            cancelled |= c.received(&chunk) == Next::Cancel;
        }
        assert!(cancelled);
        c.set_recv(Recv::Cancelling);
        // Receives completed before the cancel took effect still bring their bytes.
        for _ in 0..20 {
            assert_eq!(c.received(&chunk), Next::Nothing);
        }
        // The buffer ring ran dry meanwhile (ENOBUFS): the task is still parked, but its read is
        // full, so the receive stays off.
        assert_eq!(c.recv_finished(), Next::Nothing);
        c.unpark(&mut buf);
        assert_eq!(buf.len(), READ_LIMIT);
        // What waits is handed over a read at a time.
        let waiting = INPUT_LIMIT + 20 * chunk.len();
        let mut next = ReadBuffer::default();
        assert_eq!(c.take_input(&mut next).unwrap().unwrap(), READ_LIMIT);
        assert_eq!(
            c.take_input(&mut next).unwrap().unwrap(),
            waiting - READ_LIMIT
        );
        assert_eq!(next.len(), waiting);
    }

    #[test]
    fn the_end_comes_after_the_bytes_before_it() {
        let mut c = conn();
        c.set_recv(Recv::Armed);
        c.received(b"last words");
        c.ended(0);
        assert_eq!(c.recv_finished(), Next::Nothing);
        let mut buf = ReadBuffer::default();
        assert_eq!(c.take_input(&mut buf).unwrap().unwrap(), 10);
        assert_eq!(c.take_input(&mut buf).unwrap().unwrap(), 0);
        let mut failed = conn();
        failed.ended(libc::ECONNRESET);
        let error = failed.take_input(&mut buf).unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        let mut parked = ReadBuffer::default();
        assert_eq!(failed.park(&mut parked), Next::Nothing);
    }

    #[test]
    fn a_short_send_continues_with_the_rest() {
        let mut c = conn();
        let mut started = false;
        start_write(&mut c, b"hello world", &mut started);
        assert_eq!(c.sent(5), Next::Send);
        assert!(matches!(c.unsent(), Unsent::Plain(b" world")));
        assert_eq!(c.sent(6), Next::Nothing);
        let mut output = Output::default();
        let (poll, _) = c.poll_write(&mut output, &mut started, &cx());
        assert!(matches!(poll, Poll::Ready(Ok(()))));
        // The very buffer comes back, empty, for the next batch.
        assert!(output.is_empty() && output.capacity() >= 11);
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn shared_pieces_go_out_in_one_vectored_send_and_its_rest() {
        use crate::transport::SharedBytes;
        struct Shared(Vec<u8>);
        impl SharedBytes for Shared {
            fn bytes(&self) -> &[u8] {
                &self.0
            }
        }
        let mut c = conn();
        let mut output = Output::default();
        output.extend_from_slice(b"head");
        let shared = std::sync::Arc::new(Shared(vec![b'x'; 20_000]));
        output.share(&shared.0, &shared);
        output.extend_from_slice(b"tail");
        let mut started = false;
        let (poll, next) = c.poll_write(&mut output, &mut started, &cx());
        assert!(poll.is_pending() && next == Next::Send);
        let lengths = |c: &mut Conn| match c.unsent() {
            Unsent::Vectored(message) => {
                // SAFETY: the message and its pieces live in `c` until the next call.
                let message = unsafe { &*message };
                // SAFETY: `msg_iov` points at `msg_iovlen` pieces made by `unsent`.
                let pieces =
                    unsafe { std::slice::from_raw_parts(message.msg_iov, message.msg_iovlen) };
                pieces.iter().map(|piece| piece.iov_len).collect::<Vec<_>>()
            }
            Unsent::Plain(_) => panic!("shared pieces need a vectored send"),
        };
        assert_eq!(lengths(&mut c), [4, 20_000, 4]);
        assert_eq!(c.sent(10), Next::Send);
        assert_eq!(lengths(&mut c), [19_994, 4]);
        assert_eq!(c.sent(19_998), Next::Nothing);
        let (poll, _) = c.poll_write(&mut output, &mut started, &cx());
        assert!(matches!(poll, Poll::Ready(Ok(()))));
        assert!(output.is_empty());
    }

    #[test]
    fn a_failed_send_is_reported_once() {
        let mut c = conn();
        let mut started = false;
        start_write(&mut c, b"reply", &mut started);
        assert_eq!(c.sent(-libc::EPIPE), Next::Nothing);
        let (poll, _) = c.poll_write(&mut Output::default(), &mut started, &cx());
        let Poll::Ready(Err(e)) = poll else {
            panic!("the send's error is returned")
        };
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_dropped_connection_is_released_only_when_idle() {
        let mut c = conn();
        let mut started = false;
        start_write(&mut c, &[0; 100], &mut started);
        c.set_recv(Recv::Armed);
        c.received(b"pipelined");
        assert_eq!(c.orphan(), Next::Abort, "a send in flight is ended");
        assert_eq!(
            c.held(),
            100,
            "the input is freed at once, the output is in flight"
        );
        assert_eq!(
            c.recv_finished(),
            Next::Nothing,
            "a send is still in flight"
        );
        assert_eq!(c.sent(-libc::ECONNRESET), Next::Release);
        let mut idle = conn();
        assert_eq!(idle.orphan(), Next::Release);
    }

    #[test]
    fn a_release_waits_for_the_receive_and_hands_over_every_byte() {
        let mut c = conn();
        c.set_recv(Recv::Armed);
        c.received(b"frame one");
        let mut buf = ReadBuffer::default();
        buf.append(b"unread ");
        let (poll, next) = c.poll_release(&mut buf, &cx());
        assert!(poll.is_pending());
        assert_eq!(next, Next::Cancel);
        c.set_recv(Recv::Cancelling);
        // Bytes already on their way when the cancel was asked for still count.
        c.received(b", frame two");
        let (poll, next) = c.poll_release(&mut buf, &cx());
        assert!(poll.is_pending());
        assert_eq!(next, Next::Nothing, "one cancel is enough");
        assert_eq!(c.recv_finished(), Next::Nothing);
        let (poll, _) = c.poll_release(&mut buf, &cx());
        assert!(matches!(poll, Poll::Ready(Ok(()))));
        assert_eq!(buf.filled_mut(), b"unread frame one, frame two");
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn a_release_waits_for_the_send_and_refuses_an_ended_peer() {
        let mut c = conn();
        let mut started = false;
        start_write(&mut c, b"reply", &mut started);
        let mut buf = ReadBuffer::default();
        assert!(c.poll_release(&mut buf, &cx()).0.is_pending());
        c.sent(5);
        c.received(b"last");
        c.ended(0);
        let (poll, _) = c.poll_release(&mut buf, &cx());
        assert!(matches!(poll, Poll::Ready(Err(()))));
        // The connection stays, with its input and its end.
        assert_eq!(c.take_input(&mut buf).unwrap().unwrap(), 4);
        assert_eq!(c.take_input(&mut buf).unwrap().unwrap(), 0);
    }
}
