//! When each request is due.
//!
//! Open loop keeps a fixed schedule, request `k` is *intended* at `start + (k + phase) / rate`,
//! whatever the server does. A request that leaves late, because the server stalled and every
//! connection was still waiting, keeps its intended time, and its latency is counted from then:
//! the stall shows up in the tail instead of hiding behind the requests that were never sent
//! (coordinated omission, the wrk2 correction). Closed loop sends as soon as a connection is free
//! and counts from the actual send.

use crate::clock::{Nanos, NANOS_PER_SEC};

#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    schedule: Option<Schedule>,
}

#[derive(Clone, Debug)]
struct Schedule {
    start: Nanos,
    interval: f64,
    phase: f64,
    taken: u64,
}

impl Pacer {
    /// `rate` requests per second from `start`; `phase` in `[0, 1)` shifts the schedule by a
    /// fraction of one interval so that several pacers interleave instead of firing together.
    pub(crate) fn open_loop(start: Nanos, rate: f64, phase: f64) -> Pacer {
        Pacer {
            schedule: Some(Schedule {
                start,
                interval: NANOS_PER_SEC as f64 / rate,
                phase,
                taken: 0,
            }),
        }
    }

    pub(crate) fn closed_loop() -> Pacer {
        Pacer { schedule: None }
    }

    /// The intended send time of the next request; `None` in closed loop (always due).
    pub(crate) fn next_due(&self) -> Option<Nanos> {
        self.schedule.as_ref().map(Schedule::due)
    }

    /// Takes the next request if it is due at `now`, and returns the time its latency counts from.
    pub(crate) fn take(&mut self, now: Nanos) -> Option<Nanos> {
        match &mut self.schedule {
            None => Some(now),
            Some(s) => {
                let due = s.due();
                (due <= now).then(|| {
                    s.taken += 1;
                    due
                })
            }
        }
    }
}

impl Schedule {
    fn due(&self) -> Nanos {
        self.start + ((self.taken as f64 + self.phase) * self.interval) as Nanos
    }
}

/// The latency of a request whose reply completed at `done`.
pub(crate) fn latency(counted_from: Nanos, done: Nanos) -> Nanos {
    done.saturating_sub(counted_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn open_loop_spreads_requests_evenly() {
        let mut p = Pacer::open_loop(1000, 1000.0, 0.0);
        assert_eq!(p.next_due(), Some(1000));
        assert_eq!(p.take(999), None);
        assert_eq!(p.take(1000), Some(1000));
        assert_eq!(p.next_due(), Some(1000 + MS));
        // Ten seconds later exactly 10 000 more are due, no more.
        let mut n = 0;
        while p.take(1000 + 10_000 * MS).is_some() {
            n += 1;
        }
        assert_eq!(n, 10_000);
    }

    #[test]
    fn phase_interleaves_pacers() {
        let a = Pacer::open_loop(0, 100.0, 0.0);
        let b = Pacer::open_loop(0, 100.0, 0.5);
        assert_eq!(a.next_due(), Some(0));
        assert_eq!(b.next_due(), Some(5 * MS));
    }

    #[test]
    fn closed_loop_is_always_due_from_now() {
        let mut p = Pacer::closed_loop();
        assert_eq!(p.next_due(), None);
        assert_eq!(p.take(42), Some(42));
        assert_eq!(p.take(43), Some(43));
    }

    /// One connection at 100 req/s against a server that answers in 1 ms but stalls for one
    /// second once. Counting from the intended send time, the ~100 requests that should have
    /// gone out during the stall all carry its delay; counting from the actual send, only
    /// one sample would see it.
    fn simulate(mut pacer: Pacer) -> (Vec<Nanos>, Vec<Nanos>) {
        let (stall_at, stall) = (500 * MS, 1000 * MS);
        let mut now = 0;
        let (mut corrected, mut naive) = (vec![], vec![]);
        while now < 3000 * MS {
            match pacer.take(now) {
                Some(intended) => {
                    let sent = now;
                    let service = if (stall_at..stall_at + 10 * MS).contains(&sent) {
                        stall
                    } else {
                        MS
                    };
                    now += service;
                    corrected.push(latency(intended, now));
                    naive.push(latency(sent, now));
                }
                None => now = pacer.next_due().unwrap(),
            }
        }
        (corrected, naive)
    }

    #[test]
    fn coordinated_omission_is_corrected() {
        let (corrected, naive) = simulate(Pacer::open_loop(0, 100.0, 0.0));
        let slow = |v: &[Nanos]| v.iter().filter(|&&l| l > 100 * MS).count();
        assert_eq!(naive.len(), 300);
        assert_eq!(slow(&naive), 1);
        // Requests intended 500..1400 ms all waited past 100 ms.
        assert!(
            (90..=101).contains(&slow(&corrected)),
            "{}",
            slow(&corrected)
        );
        // After the backlog drains the schedule is back on time.
        assert_eq!(*corrected.last().unwrap(), MS);
    }
}
