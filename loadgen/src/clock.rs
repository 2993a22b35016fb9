//! The one clock of the load generator: CLOCK_MONOTONIC in nanoseconds.
//!
//! Pacing, latency samples and the worker's wake-up timer (a timerfd) all need the same time
//! base, and `std::time::Instant` cannot hand its raw value to `timerfd_settime`.

/// Nanoseconds on CLOCK_MONOTONIC.
pub(crate) type Nanos = u64;

pub(crate) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The current time.
pub(crate) fn now() -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * NANOS_PER_SEC + ts.tv_nsec as u64
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(d: std::time::Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
