//! Self-preservation: stop expiring leases when heartbeats drop suddenly.
//!
//! Java's lease-update safe checker (docs/compatibility.md, "Leases and self-preservation"):
//! successful renewals are counted over a sliding window; the highest count seen is remembered.
//! When the window's count falls below a percentage of that maximum, the registry assumes a network
//! problem on its own side rather than a mass death of instances, and suspends expiry until
//! renewals recover.
//!
//! Each shard runs its own checker over its own leases (the server runs one shard per core), so
//! the thresholds apply per shard: a shard must itself have seen `max_count_threshold` renewals
//! per window before it can turn unsafe.

/// Settings of the safe checker (Java's `lease-update-safe-checker.*`).
#[derive(Clone, Debug)]
pub struct SafetyConfig {
    /// The sliding window, counted in whole seconds (default 12 000 ms).
    pub window_ms: u64,
    /// Below this percentage of the max count the shard is unsafe (default 85).
    pub percentage_threshold: u64,
    /// The max count must reach this before the shard can turn unsafe (default 50).
    pub max_count_threshold: u64,
    /// While safe, the max count is re-based to the current count this often (default 600 000 ms).
    pub max_count_reset_ms: u64,
}

impl Default for SafetyConfig {
    fn default() -> SafetyConfig {
        SafetyConfig {
            window_ms: 12_000,
            percentage_threshold: 85,
            max_count_threshold: 50,
            max_count_reset_ms: 600_000,
        }
    }
}

/// Renewals in one second of the window.
#[derive(Clone, Copy, Default)]
struct Bucket {
    second: u64,
    renewals: u64,
}

/// The checker's state: a ring of one-second buckets and the max count seen.
pub(crate) struct SafeChecker {
    config: SafetyConfig,
    buckets: Vec<Bucket>,
    renewals_in_window: u64,
    max_renewals: u64,
    max_renewals_updated_ms: u64,
    safe: bool,
}

impl SafeChecker {
    pub(crate) fn new(config: SafetyConfig) -> SafeChecker {
        let seconds = config.window_ms.div_ceil(1000).max(1);
        SafeChecker {
            config,
            buckets: vec![Bucket::default(); seconds as usize],
            renewals_in_window: 0,
            max_renewals: 0,
            max_renewals_updated_ms: 0,
            safe: true,
        }
    }

    /// Counts one successful renewal at `now_ms`.
    pub(crate) fn record(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(second % len) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                renewals: 0,
            };
        }
        bucket.renewals += 1;
    }

    /// Re-evaluates safety at `now_ms` (Java runs this every second).
    pub(crate) fn check(&mut self, now_ms: u64) {
        let count = self.count_in_window(now_ms);
        self.renewals_in_window = count;
        if count > self.max_renewals {
            self.max_renewals = count;
            self.max_renewals_updated_ms = now_ms;
        }
        self.safe = self.max_renewals < self.config.max_count_threshold
            || count * 100 / self.max_renewals >= self.config.percentage_threshold;
        if self.safe
            && now_ms.saturating_sub(self.max_renewals_updated_ms) >= self.config.max_count_reset_ms
        {
            self.max_renewals = count;
            self.max_renewals_updated_ms = now_ms;
        }
    }

    fn count_in_window(&self, now_ms: u64) -> u64 {
        let second = now_ms / 1000;
        let len = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|b| b.second <= second && b.second + len > second)
            .map(|b| b.renewals)
            .sum()
    }

    /// Whether expired leases may be removed, as of the last check.
    pub(crate) fn is_safe(&self) -> bool {
        self.safe
    }

    /// Renewals counted in the window at the last check.
    pub(crate) fn renewals_in_window(&self) -> u64 {
        self.renewals_in_window
    }

    pub(crate) fn max_renewals(&self) -> u64 {
        self.max_renewals
    }

    pub(crate) fn max_renewals_updated_ms(&self) -> u64 {
        self.max_renewals_updated_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn checker() -> SafeChecker {
        SafeChecker::new(SafetyConfig::default())
    }

    fn renew(checker: &mut SafeChecker, at_ms: u64, times: u64) {
        for _ in 0..times {
            checker.record(at_ms);
        }
    }

    #[test]
    fn counts_renewals_in_sliding_window() {
        let mut c = checker();
        renew(&mut c, T0, 10);
        renew(&mut c, T0 + 5_000, 20);
        c.check(T0 + 5_000);
        assert_eq!(c.renewals_in_window(), 30);
        // 12 s window: the bucket of T0 drops out once 12 whole seconds have passed.
        c.check(T0 + 11_999);
        assert_eq!(c.renewals_in_window(), 30);
        c.check(T0 + 12_000);
        assert_eq!(c.renewals_in_window(), 20);
        c.check(T0 + 17_000);
        assert_eq!(c.renewals_in_window(), 0);
        assert_eq!(c.max_renewals(), 30);
        assert_eq!(c.max_renewals_updated_ms(), T0 + 5_000);
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let mut c = checker();
        renew(&mut c, T0, 7);
        renew(&mut c, T0 + 12_000, 1); // same ring position, 12 s later
        c.check(T0 + 12_000);
        assert_eq!(c.renewals_in_window(), 1);
    }

    #[test]
    fn unsafe_below_percentage_of_max_then_recovers() {
        let mut c = checker();
        renew(&mut c, T0, 100);
        c.check(T0);
        assert!(c.is_safe());
        assert_eq!(c.max_renewals(), 100);

        // The window moves on with only 84 renewals: 84 % < 85 %.
        renew(&mut c, T0 + 12_000, 84);
        c.check(T0 + 12_000);
        assert_eq!(c.renewals_in_window(), 84);
        assert!(!c.is_safe());

        // 85 renewals in the window: exactly at the threshold is safe again.
        renew(&mut c, T0 + 12_500, 1);
        c.check(T0 + 12_500);
        assert!(c.is_safe());
    }

    #[test]
    fn small_counts_never_unsafe() {
        let mut c = checker();
        renew(&mut c, T0, 49);
        c.check(T0);
        c.check(T0 + 60_000);
        assert_eq!(c.renewals_in_window(), 0);
        assert_eq!(c.max_renewals(), 49);
        assert!(c.is_safe());
    }

    #[test]
    fn max_rebased_after_reset_interval_while_safe() {
        let mut c = checker();
        renew(&mut c, T0, 100);
        c.check(T0);
        renew(&mut c, T0 + 590_000, 90);
        c.check(T0 + 590_000);
        assert_eq!(c.max_renewals(), 100);
        c.check(T0 + 600_000);
        assert!(c.is_safe());
        assert_eq!(c.max_renewals(), 90);
        assert_eq!(c.max_renewals_updated_ms(), T0 + 600_000);
    }

    #[test]
    fn max_not_rebased_while_unsafe() {
        let mut c = checker();
        renew(&mut c, T0, 100);
        c.check(T0);
        c.check(T0 + 700_000);
        assert!(!c.is_safe());
        assert_eq!(c.max_renewals(), 100);
    }
}
