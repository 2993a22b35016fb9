//! Walks a worker's slice of instance ids in batches: once through for the prefill, round and
//! round for a measured scenario. A slice is a range of ids, or every `step`-th id of one (the
//! instances of one service, for a connection that heartbeats only its own).

use std::iter::StepBy;
use std::ops::Range;

/// The ids of one request.
pub(super) type Batch = StepBy<Range<u64>>;

#[derive(Clone, Debug)]
pub(super) struct Batches {
    ids: Range<u64>,
    step: u64,
    next: u64,
    size: u64,
    cycle: bool,
}

impl Batches {
    pub(super) fn once(ids: Range<u64>, size: u64) -> Batches {
        Batches::new(ids, size, false)
    }

    pub(super) fn cycle(ids: Range<u64>, size: u64) -> Batches {
        Batches::new(ids, size, true)
    }

    /// The same walk over every `step`-th id of the slice only, from its first.
    pub(super) fn every(self, step: u64) -> Batches {
        Batches { step, ..self }
    }

    fn new(ids: Range<u64>, size: u64, cycle: bool) -> Batches {
        Batches {
            next: ids.start,
            ids,
            step: 1,
            size,
            cycle,
        }
    }

    /// The next batch; a batch never wraps around the end of the slice.
    pub(super) fn next_batch(&mut self) -> Option<Batch> {
        if self.next >= self.ids.end {
            if !self.cycle || self.ids.is_empty() {
                return None;
            }
            self.next = self.ids.start;
        }
        let span = self.size.saturating_mul(self.step);
        let end = self.next.saturating_add(span).min(self.ids.end);
        let batch = (self.next..end).step_by(self.step as usize);
        self.next = end;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `n` batches of `b`, as lists of ids.
    fn take(b: &mut Batches, n: usize) -> Vec<Vec<u64>> {
        std::iter::from_fn(|| b.next_batch().map(Vec::from_iter))
            .take(n)
            .collect()
    }

    #[test]
    fn once_goes_through_and_stops() {
        let mut b = Batches::once(0..5, 2);
        assert_eq!(take(&mut b, 10), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn cycle_starts_over() {
        let mut b = Batches::cycle(10..13, 2);
        assert_eq!(
            take(&mut b, 4),
            vec![vec![10, 11], vec![12], vec![10, 11], vec![12]]
        );
        assert!(Batches::cycle(3..3, 2).next_batch().is_none());
    }

    #[test]
    fn every_step_keeps_to_its_ids_and_cycles() {
        let mut b = Batches::cycle(3..25, 2).every(10);
        assert_eq!(
            take(&mut b, 4),
            vec![vec![3, 13], vec![23], vec![3, 13], vec![23]]
        );
        let mut whole = Batches::cycle(3..25, 100).every(10);
        assert_eq!(take(&mut whole, 2), vec![vec![3, 13, 23], vec![3, 13, 23]]);
    }
}
