//! Zipf-distributed choice of a service: a few services get most of the discovery traffic,
//! as in a real registry where the popular services are looked up by everyone.
//!
//! The cumulative distribution is tabulated once and sampled by binary search.

#[derive(Clone, Debug)]
pub(crate) struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// Ranks `0..n`, rank `k` drawn with weight `1 / (k + 1)^exponent`.
    pub(crate) fn new(n: u64, exponent: f64) -> Zipf {
        let mut sum = 0.0;
        let mut cumulative: Vec<f64> = (1..=n)
            .map(|k| {
                sum += (k as f64).powf(-exponent);
                sum
            })
            .collect();
        for c in &mut cumulative {
            *c /= sum;
        }
        Zipf { cumulative }
    }

    /// The rank for a uniform draw `u` in `[0, 1)`.
    pub(crate) fn sample(&self, u: f64) -> u64 {
        let rank = self.cumulative.partition_point(|&c| c <= u);
        rank.min(self.cumulative.len() - 1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popular_ranks_come_first() {
        let z = Zipf::new(100, 1.0);
        let mut counts = [0u32; 100];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100_000 {
            counts[z.sample(rng.f64()) as usize] += 1;
        }
        // Rank 0 gets 1/H(100) ≈ 19 % of draws, twice rank 1, a hundred times rank 99.
        assert!((17_000..21_000).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > counts[1] * 3 / 2);
        assert!(counts[1] > counts[50]);
    }

    #[test]
    fn samples_stay_in_range() {
        let z = Zipf::new(3, 1.2);
        assert_eq!(z.sample(0.0), 0);
        assert_eq!(z.sample(0.999_999_999), 2);
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let z = Zipf::new(4, 0.0);
        assert_eq!(z.sample(0.1), 0);
        assert_eq!(z.sample(0.3), 1);
        assert_eq!(z.sample(0.6), 2);
        assert_eq!(z.sample(0.9), 3);
    }
}
