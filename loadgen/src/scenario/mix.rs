//! A weighted mix of scenarios (`--mix heartbeat=80,discover=19,register=1`): each request is
//! drawn from one of them with probability proportional to its weight.

use super::Workload;
use crate::op::Op;
use crate::request::Headers;

pub(super) struct Mix {
    /// Each scenario with the running total of the weights up to and including it.
    parts: Vec<(u32, Box<dyn Workload>)>,
    rng: fastrand::Rng,
}

impl Mix {
    pub(super) fn new(weighted: Vec<(u32, Box<dyn Workload>)>, rng: fastrand::Rng) -> Mix {
        let mut total = 0;
        let parts = weighted
            .into_iter()
            .map(|(weight, workload)| {
                total += weight;
                (total, workload)
            })
            .collect();
        Mix { parts, rng }
    }
}

impl Workload for Mix {
    fn next(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Option<Op> {
        let total = self.parts.last()?.0;
        let draw = self.rng.u32(0..total);
        let i = self.parts.partition_point(|(upto, _)| *upto <= draw);
        self.parts[i].1.next(headers, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Op);

    impl Workload for Fixed {
        fn next(&mut self, _: &Headers, _: &mut Vec<u8>) -> Option<Op> {
            Some(self.0)
        }
    }

    #[test]
    fn draws_follow_the_weights() {
        let mut mix = Mix::new(
            vec![
                (80, Box::new(Fixed(Op::Heartbeat))),
                (19, Box::new(Fixed(Op::Discover))),
                (1, Box::new(Fixed(Op::Register))),
            ],
            fastrand::Rng::with_seed(3),
        );
        let mut counts = std::collections::HashMap::new();
        let headers = Headers::new("h", false);
        for _ in 0..100_000 {
            *counts
                .entry(mix.next(&headers, &mut vec![]).unwrap())
                .or_insert(0) += 1;
        }
        assert!((79_000..81_000).contains(&counts[&Op::Heartbeat]));
        assert!((18_000..20_000).contains(&counts[&Op::Discover]));
        assert!((700..1_300).contains(&counts[&Op::Register]));
    }
}
