//! Rate limiting as Java's limiters do it (see `docs/limits.md`): per operation, for the whole node, over
//! a sliding window of 10 one-second buckets. A request that would take its operation's count in
//! the window past the limit is refused (`rate-limited`), and a refused request is not counted.
//!
//! Requests land on every core and the cores share no lock, so the count is kept in **shares**:
//!
//! - Each core counts what it admits in buckets of its own (one cache line per operation and
//!   core, written by that core alone, read by the others).
//! - To admit, a core first spends its *share*: a part of the budget it took earlier in the same
//!   second. That is the hot path, and it touches only the core's own memory.
//! - When its share is spent (or a new second began), the core *rebalances*: it adds up the whole
//!   node's window (every core's buckets) and the shares other cores still hold this second, and
//!   takes `max(1, what is left / cores)` as its new share. Nothing is left: it refuses, and keeps
//!   refusing without looking again until the second ends, because within a second the window
//!   cannot shrink and other shares can only turn into counts.
//! - A share expires with its second, so a core that goes quiet holds at most a share of what
//!   was left, for at most a second.
//! - A core that hands a client connection to another core gives its shares back at once, since
//!   the requests it took them for now arrive elsewhere, and every core that found nothing left
//!   looks again. (A core adding up at that very instant may still miss the returned share, for
//!   the rest of the second.)
//!
//! So the node admits at most the limit, except when cores rebalance at the same instant with
//! fewer than `cores` requests left, each taking one: at most `cores - 1` over, per such race. It
//! may admit less than the limit while an idle core holds an unused share until its second ends.
//! `docs/benchmarks.md` gives the measured figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Buckets in the window, one second each (Java: `TimeBufferConfig(10 * 1000, 1000)`).
const WINDOW_SECONDS: u32 = 10;

/// Java's limiters (their ids are the configuration key prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limiter {
    Registry,
    Replication,
    Cluster,
    Status,
    ManagementGroup,
}

impl Limiter {
    pub const ALL: [Limiter; 5] = [
        Limiter::Registry,
        Limiter::Replication,
        Limiter::Cluster,
        Limiter::Status,
        Limiter::ManagementGroup,
    ];

    /// The rate limiter id, e.g. `artemis.service.registry`.
    pub fn id(self) -> &'static str {
        match self {
            Limiter::Registry => "artemis.service.registry",
            Limiter::Replication => "artemis.service.registry.replication",
            Limiter::Cluster => "artemis.service.cluster",
            Limiter::Status => "artemis.service.status",
            Limiter::ManagementGroup => "artemis.service.management.group",
        }
    }

    /// The operations this limiter counts.
    pub fn ops(self) -> impl Iterator<Item = LimitedOp> {
        LimitedOp::ALL
            .into_iter()
            .filter(move |op| op.limiter() == self)
    }
}

/// Every rate-limited operation, under Java's identity for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitedOp {
    Register,
    Heartbeat,
    Unregister,
    /// A peer's replicated writes, and its copy of the whole registry.
    ReplicationRegister,
    ReplicationHeartbeat,
    ReplicationUnregister,
    GetServices,
    UpRegistryNodes,
    UpDiscoveryNodes,
    GetCluster,
    GetLeases,
    GetLegacyLeases,
    GetConfig,
    GetDeployment,
    GetRouteRules,
    GetRouteRuleGroups,
    GetGroups,
}

impl LimitedOp {
    pub const ALL: [LimitedOp; 17] = [
        LimitedOp::Register,
        LimitedOp::Heartbeat,
        LimitedOp::Unregister,
        LimitedOp::ReplicationRegister,
        LimitedOp::ReplicationHeartbeat,
        LimitedOp::ReplicationUnregister,
        LimitedOp::GetServices,
        LimitedOp::UpRegistryNodes,
        LimitedOp::UpDiscoveryNodes,
        LimitedOp::GetCluster,
        LimitedOp::GetLeases,
        LimitedOp::GetLegacyLeases,
        LimitedOp::GetConfig,
        LimitedOp::GetDeployment,
        LimitedOp::GetRouteRules,
        LimitedOp::GetRouteRuleGroups,
        LimitedOp::GetGroups,
    ];

    pub fn limiter(self) -> Limiter {
        match self {
            LimitedOp::Register | LimitedOp::Heartbeat | LimitedOp::Unregister => Limiter::Registry,
            LimitedOp::ReplicationRegister
            | LimitedOp::ReplicationHeartbeat
            | LimitedOp::ReplicationUnregister
            | LimitedOp::GetServices => Limiter::Replication,
            LimitedOp::UpRegistryNodes | LimitedOp::UpDiscoveryNodes => Limiter::Cluster,
            LimitedOp::GetCluster
            | LimitedOp::GetLeases
            | LimitedOp::GetLegacyLeases
            | LimitedOp::GetConfig
            | LimitedOp::GetDeployment => Limiter::Status,
            LimitedOp::GetRouteRules | LimitedOp::GetRouteRuleGroups | LimitedOp::GetGroups => {
                Limiter::ManagementGroup
            }
        }
    }

    /// Java's identity of the operation in its limiter, e.g. `get-leases` or `get.groups`.
    pub fn name(self) -> &'static str {
        match self {
            LimitedOp::Register | LimitedOp::ReplicationRegister => "register",
            LimitedOp::Heartbeat | LimitedOp::ReplicationHeartbeat => "heartbeat",
            LimitedOp::Unregister | LimitedOp::ReplicationUnregister => "unregister",
            LimitedOp::GetServices => "get-services",
            LimitedOp::UpRegistryNodes => "up-registry-nodes",
            LimitedOp::UpDiscoveryNodes => "up-discovery-nodes",
            LimitedOp::GetCluster => "get-cluster",
            LimitedOp::GetLeases => "get-leases",
            LimitedOp::GetLegacyLeases => "get-legacy-leases",
            LimitedOp::GetConfig => "get-config",
            LimitedOp::GetDeployment => "get-deployment",
            LimitedOp::GetRouteRules => "get.route-rules",
            LimitedOp::GetRouteRuleGroups => "get.route-rule-groups",
            LimitedOp::GetGroups => "get.groups",
        }
    }

    /// Position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One limiter's settings: the limit per 10 s of each operation, and its per-operation overrides
/// (Java's `default-rate-limit` and `rate-limit-map`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimiterConfig {
    pub default_limit: u64,
    pub overrides: Overrides,
}

/// Per-operation limits that replace a limiter's default (the last one of an operation wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides(pub Vec<(LimitedOp, u64)>);

impl LimiterConfig {
    pub fn limit(&self, op: LimitedOp) -> u64 {
        self.overrides
            .0
            .iter()
            .rev()
            .find(|(o, _)| *o == op)
            .map_or(self.default_limit, |(_, limit)| *limit)
    }

    /// The overrides as Java writes a `rate-limit-map`: `op:limit,op2:limit`.
    pub fn map_text(&self) -> String {
        let entries: Vec<String> = self
            .overrides
            .0
            .iter()
            .map(|(op, limit)| format!("{}:{limit}", op.name()))
            .collect();
        entries.join(",")
    }
}

/// Parses `op:limit,op2:limit` for `limiter`; an operation of another limiter is an error.
pub(crate) fn parse_overrides(s: &str, limiter: Limiter) -> Result<Overrides, String> {
    let mut overrides = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, limit) = entry
            .split_once(':')
            .ok_or_else(|| format!("`{entry}` is not `operation:limit`"))?;
        let (name, limit) = (name.trim(), limit.trim());
        let op = limiter.ops().find(|op| op.name() == name).ok_or_else(|| {
            let known: Vec<&str> = limiter.ops().map(LimitedOp::name).collect();
            format!(
                "`{name}` is not an operation of {} (one of {})",
                limiter.id(),
                known.join(", ")
            )
        })?;
        let limit = limit
            .parse()
            .map_err(|_| format!("`{limit}` is not a number of requests per 10 s"))?;
        overrides.push((op, limit));
    }
    Ok(Overrides(overrides))
}

/// What one core has counted of one operation. Aligned so that no two cores write one cache line.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    /// Bucket `second % WINDOW_SECONDS`: `second << 32 | admitted in that second`.
    buckets: [AtomicU64; WINDOW_SECONDS as usize],
    /// `second << 32 | unused share`: the share taken in that second.
    share: AtomicU64,
    /// `second + 1` of the second in which this core found nothing left; 0 when none, or when a
    /// core gave its shares back since.
    spent_in: AtomicU64,
}

fn pack(second: u32, n: u32) -> u64 {
    (u64::from(second) << 32) | u64::from(n)
}

fn unpack(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

impl Slot {
    /// Admitted in the window that ends with `now`.
    fn window(&self, now: u32) -> u64 {
        self.buckets
            .iter()
            .map(|b| unpack(b.load(Relaxed)))
            .filter(|&(second, _)| second <= now && now - second < WINDOW_SECONDS)
            .map(|(_, n)| u64::from(n))
            .sum()
    }

    /// The share still unspent, if it was taken in `now`.
    fn live_share(&self, now: u32) -> u64 {
        match unpack(self.share.load(Relaxed)) {
            (second, left) if second == now => u64::from(left),
            _ => 0,
        }
    }

    /// Counts one admission in `now` (only the owning core calls this).
    fn count(&self, now: u32) {
        let bucket = &self.buckets[(now % WINDOW_SECONDS) as usize];
        let n = match unpack(bucket.load(Relaxed)) {
            (second, n) if second == now => n.saturating_add(1),
            _ => 1,
        };
        bucket.store(pack(now, n), Relaxed);
    }
}

/// The node's rate limits: every core's counts of every limited operation.
pub(crate) struct RateLimits {
    enabled: bool,
    limits: [u64; LimitedOp::ALL.len()],
    cores: usize,
    /// `slots[op * cores + core]`.
    slots: Box<[Slot]>,
    started: Instant,
}

impl RateLimits {
    /// Limits for `cores` cores; `configs` gives each limiter's settings.
    pub(crate) fn new(
        enabled: bool,
        configs: &[(Limiter, &LimiterConfig)],
        cores: usize,
    ) -> RateLimits {
        let limits = LimitedOp::ALL.map(|op| {
            configs
                .iter()
                .find(|(limiter, _)| *limiter == op.limiter())
                .map_or(u64::MAX, |(_, config)| config.limit(op))
        });
        RateLimits {
            enabled,
            limits,
            cores,
            slots: (0..LimitedOp::ALL.len() * cores)
                .map(|_| Slot::default())
                .collect(),
            started: Instant::now(),
        }
    }

    /// Whether `core` may serve one more `op` now; an admitted request is counted.
    pub(crate) fn admit(&self, op: LimitedOp, core: usize) -> bool {
        if !self.enabled {
            return true;
        }
        let now = self.started.elapsed().as_secs() as u32;
        self.admit_at(op, core, now)
    }

    /// Gives back `core`'s unspent shares of every operation, for the other cores to take.
    pub(crate) fn give_back(&self, core: usize) {
        for op in LimitedOp::ALL {
            self.slot(op, core).share.store(0, Relaxed);
            for other in 0..self.cores {
                self.slot(op, other).spent_in.store(0, Relaxed);
            }
        }
    }

    fn slot(&self, op: LimitedOp, core: usize) -> &Slot {
        &self.slots[op.index() * self.cores + core]
    }

    fn admit_at(&self, op: LimitedOp, core: usize, now: u32) -> bool {
        let mine = self.slot(op, core);
        let (second, left) = unpack(mine.share.load(Relaxed));
        if second == now && left > 0 {
            // Counted before the share shrinks, so a core adding up never sees neither.
            mine.count(now);
            mine.share.store(pack(now, left - 1), Relaxed);
            return true;
        }
        let stamp = u64::from(now) + 1;
        if mine.spent_in.load(Relaxed) == stamp {
            return false;
        }
        let taken: u64 = (0..self.cores)
            .map(|c| {
                let slot = self.slot(op, c);
                slot.window(now) + if c == core { 0 } else { slot.live_share(now) }
            })
            .sum();
        let limit = self.limits[op.index()];
        if taken >= limit {
            mine.spent_in.store(stamp, Relaxed);
            return false;
        }
        let share = ((limit - taken) / self.cores as u64).clamp(1, u64::from(u32::MAX));
        mine.count(now);
        mine.share.store(pack(now, share as u32 - 1), Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(limit: u64, cores: usize) -> RateLimits {
        let config = LimiterConfig {
            default_limit: limit,
            overrides: Overrides::default(),
        };
        RateLimits::new(true, &[(Limiter::Registry, &config)], cores)
    }

    fn admitted(limits: &RateLimits, core: usize, now: u32, tries: usize) -> usize {
        (0..tries)
            .filter(|_| limits.admit_at(LimitedOp::Heartbeat, core, now))
            .count()
    }

    #[test]
    fn one_core_admits_the_limit_per_window_and_the_window_slides() {
        let l = limits(100, 1);
        assert_eq!(admitted(&l, 0, 0, 60), 60);
        assert_eq!(admitted(&l, 0, 5, 60), 40);
        assert_eq!(admitted(&l, 0, 9, 10), 0);
        // Second 0 has left the window: its 60 are free again, second 5's 40 are not.
        assert_eq!(admitted(&l, 0, 10, 100), 60);
        assert_eq!(admitted(&l, 0, 15, 100), 40);
    }

    #[test]
    fn cores_share_one_budget() {
        let l = limits(100, 2);
        // A core alone takes shares until the whole budget is its.
        assert_eq!(admitted(&l, 0, 0, 1000), 100);
        assert_eq!(admitted(&l, 1, 0, 1000), 0);
        // Interleaved, in a later window: each gets a part, together exactly the limit.
        let (mut first, mut second) = (0, 0);
        for _ in 0..500 {
            first += admitted(&l, 0, 20, 1);
            second += admitted(&l, 1, 20, 1);
        }
        assert_eq!(first + second, 100);
        assert!(first >= 40 && second >= 40, "{first} + {second}");
    }

    #[test]
    fn an_idle_core_holds_its_share_only_until_its_second_ends() {
        let l = limits(100, 2);
        assert_eq!(admitted(&l, 1, 0, 1), 1); // core 1 takes a share of 50 and goes quiet
        assert_eq!(admitted(&l, 0, 0, 1000), 50);
        assert_eq!(admitted(&l, 0, 1, 1000), 49);
    }

    #[test]
    fn a_core_that_gave_its_share_back_holds_none() {
        let l = limits(100, 2);
        assert_eq!(admitted(&l, 1, 0, 1), 1); // core 1 takes a share of 50
        assert_eq!(admitted(&l, 0, 0, 1000), 50); // core 0 finds nothing left beside it
        l.give_back(1); // ... and core 1's client moves to core 0
        assert_eq!(admitted(&l, 0, 0, 1000), 49);
        assert_eq!(admitted(&l, 1, 0, 1), 0);
    }

    #[test]
    fn other_operations_and_limiters_count_apart() {
        let registry = LimiterConfig {
            default_limit: 5,
            overrides: Overrides(vec![(LimitedOp::Register, 2)]),
        };
        let status = LimiterConfig {
            default_limit: 30,
            overrides: parse_overrides("get-leases:1", Limiter::Status).unwrap(),
        };
        let l = RateLimits::new(
            true,
            &[(Limiter::Registry, &registry), (Limiter::Status, &status)],
            1,
        );
        let count = |op, n| (0..n).filter(|_| l.admit_at(op, 0, 0)).count();
        assert_eq!(count(LimitedOp::Register, 10), 2);
        assert_eq!(count(LimitedOp::Heartbeat, 10), 5);
        assert_eq!(count(LimitedOp::GetLeases, 10), 1);
        assert_eq!(count(LimitedOp::GetConfig, 40), 30);
    }

    #[test]
    fn disabled_admits_everything() {
        let config = LimiterConfig {
            default_limit: 0,
            overrides: Overrides::default(),
        };
        let l = RateLimits::new(false, &[(Limiter::Registry, &config)], 2);
        assert!((0..1000).all(|_| l.admit(LimitedOp::Heartbeat, 1)));
    }

    #[test]
    fn racing_cores_stay_within_cores_minus_one_of_the_limit() {
        for limit in [1, 7, 1000] {
            let l = &limits(limit, 4);
            let total: usize = std::thread::scope(|s| {
                let workers: Vec<_> = (0..4)
                    .map(|core| s.spawn(move || admitted(l, core, 3, 5000)))
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).sum()
            });
            assert!(
                total as u64 >= limit && total as u64 <= limit + 3,
                "{total} of {limit}"
            );
        }
    }

    #[test]
    fn overrides_parse_like_javas_rate_limit_map() {
        assert_eq!(
            parse_overrides("heartbeat:200000, register:5", Limiter::Registry).unwrap(),
            Overrides(vec![
                (LimitedOp::Heartbeat, 200_000),
                (LimitedOp::Register, 5)
            ])
        );
        assert_eq!(
            parse_overrides("", Limiter::Status).unwrap(),
            Overrides::default()
        );
        let err = parse_overrides("get-leases:10", Limiter::Registry).unwrap_err();
        assert!(
            err.contains("not an operation of artemis.service.registry"),
            "{err}"
        );
        assert!(parse_overrides("heartbeat", Limiter::Registry).is_err());
        assert!(parse_overrides("heartbeat:-1", Limiter::Registry).is_err());
        let config = LimiterConfig {
            default_limit: 30,
            overrides: parse_overrides("get-leases:10", Limiter::Status).unwrap(),
        };
        assert_eq!(config.map_text(), "get-leases:10");
        assert_eq!(config.limit(LimitedOp::GetLeases), 10);
        assert_eq!(config.limit(LimitedOp::GetConfig), 30);
        assert_eq!(
            parse_overrides("get.groups:3", Limiter::ManagementGroup).unwrap(),
            Overrides(vec![(LimitedOp::GetGroups, 3)])
        );
        assert!(parse_overrides("get.groups:3", Limiter::Status).is_err());
        assert_eq!(
            parse_overrides("heartbeat:5,get-services:1", Limiter::Replication).unwrap(),
            Overrides(vec![
                (LimitedOp::ReplicationHeartbeat, 5),
                (LimitedOp::GetServices, 1)
            ])
        );
    }
}
