//! A timerfd that wakes a worker's mio `Poll` at a nanosecond deadline.
//!
//! epoll's own timeout has millisecond granularity: at a few thousand requests per second a
//! request would leave up to a millisecond late, and since latency is counted from the intended
//! send time, the load generator would charge its own tardiness to the server.

use crate::clock::Nanos;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) struct Timer {
    fd: OwnedFd,
    /// The deadline the timerfd is armed for, if any.
    armed: Option<Nanos>,
}

impl Timer {
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<Timer> {
        // SAFETY: plain syscall; the returned descriptor is checked and then owned.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        // Timer wake-ups must not be batched by the kernel's default 50 µs slack.
        // SAFETY: affects only the calling thread (the worker that owns this timer).
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        Ok(Timer { fd, armed: None })
    }

    /// Makes sure the poll wakes up no later than `at`. An earlier deadline still ahead of
    /// `now` is kept: waking early only costs a loop turn, re-arming costs a syscall.
    pub(crate) fn wake_by(&mut self, at: Nanos, now: Nanos) -> io::Result<()> {
        if matches!(self.armed, Some(armed) if armed > now && armed <= at) {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / 1_000_000_000) as libc::time_t,
                tv_nsec: (at % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not requested.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = Some(at);
        Ok(())
    }

    /// Consumes an expiry reported by the poll.
    pub(crate) fn expired(&mut self) {
        let mut ticks = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `ticks`; a non-blocking timerfd that has not
        // expired answers EAGAIN, which is fine to ignore.
        unsafe { libc::read(self.fd.as_raw_fd(), ticks.as_mut_ptr().cast(), ticks.len()) };
        self.armed = None;
    }
}
