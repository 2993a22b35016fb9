//! Walks a worker's slice of instance ids in batches: once through for the prefill, round and
//! round for a measured scenario.

use std::ops::Range;

#[derive(Clone, Debug)]
pub struct Batches {
    ids: Range<u64>,
    next: u64,
    size: u64,
    cycle: bool,
}

impl Batches {
    pub fn once(ids: Range<u64>, size: u64) -> Batches {
        Batches::new(ids, size, false)
    }

    pub fn cycle(ids: Range<u64>, size: u64) -> Batches {
        Batches::new(ids, size, true)
    }

    fn new(ids: Range<u64>, size: u64, cycle: bool) -> Batches {
        Batches {
            next: ids.start,
            ids,
            size,
            cycle,
        }
    }

    /// The next batch; a batch never wraps around the end of the slice.
    pub fn next_batch(&mut self) -> Option<Range<u64>> {
        if self.next >= self.ids.end {
            if !self.cycle || self.ids.is_empty() {
                return None;
            }
            self.next = self.ids.start;
        }
        let batch = self.next..(self.next + self.size).min(self.ids.end);
        self.next = batch.end;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_goes_through_and_stops() {
        let mut b = Batches::once(0..5, 2);
        let got: Vec<_> = std::iter::from_fn(|| b.next_batch()).collect();
        assert_eq!(got, vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn cycle_starts_over() {
        let mut b = Batches::cycle(10..13, 2);
        let got: Vec<_> = (0..4).map(|_| b.next_batch().unwrap()).collect();
        assert_eq!(got, vec![10..12, 12..13, 10..12, 12..13]);
        assert_eq!(Batches::cycle(3..3, 2).next_batch(), None);
    }
}
