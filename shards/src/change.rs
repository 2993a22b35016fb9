//! The shard's change log: every change visible to discovery, numbered by the version clock,
//! kept for a while so a client holding an older version can fetch only what changed since.
//!
//! A delta lists, for each instance changed after the client's version, only its latest change:
//! `new` with the instance as it is now, or `delete` with the instance as it was. Applying it to
//! the client's list gives the current list, and applying it to a list that already holds some of
//! those changes gives the same result. Retention is by count or by age, and always by bytes too
//! (a client re-registering a large instance over and over would otherwise fill the log with
//! copies of it); a version from before the oldest change still kept cannot be answered, and the
//! client falls back to a full fetch.
//! Every change also waits, until the server takes it, to be pushed to WebSocket subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::instance::{Instance, InstanceKey};
use crate::json::{write_int, write_str};

/// How long changes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// The latest this many changes.
    Count(usize),
    /// Changes younger than this many milliseconds.
    AgeMs(u64),
}

/// What one kept change counts against the byte bound besides its instance JSON and key: the
/// `Change` itself, its slot in the log and the allocations' headers, rounded up.
pub const CHANGE_OVERHEAD_BYTES: usize = 128;

/// Java's `InstanceChange.changeType` values the registry emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    New,
    Delete,
    /// A service's management data (route rules, groups, logical instances) changed; the change
    /// carries Java's placeholder instance and the client looks the service up again.
    Reload,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Delete => "delete",
            ChangeKind::Reload => "reload",
        }
    }
}

/// One change of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub version: u64,
    pub kind: ChangeKind,
    pub time_ms: u64,
    /// The service id as the service displays it.
    pub service_id: Arc<str>,
    pub key: InstanceKey,
    /// The instance's JSON: as registered (`new`) or as it was (`delete`).
    pub instance_json: Arc<[u8]>,
}

impl Change {
    /// Java's reload event for a service (`InstanceChanges.newReloadInstanceChange`): a fake
    /// instance with id `reload`, keyed so that a delta keeps only a service's latest reload.
    pub fn reload(version: u64, time_ms: u64, service_id: Arc<str>) -> Change {
        let fake = Instance {
            instance_id: Some("reload".into()),
            ip: Some("0.0.0.0".into()),
            url: Some("http://serviceId/reload".into()),
            service_id: Some(service_id.to_string()),
            ..Instance::default()
        };
        Change {
            version,
            kind: ChangeKind::Reload,
            time_ms,
            key: InstanceKey {
                region_id: "".into(),
                service_id: service_id.to_lowercase().into(),
                instance_id: "reload".into(),
            },
            service_id,
            instance_json: fake.to_json().into(),
        }
    }

    /// Appends Java's `InstanceChange`: `{"changeTime":..,"changeType":..,"instance":{..}}`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"changeTime\":");
        write_int(out, self.time_ms as i64);
        out.extend_from_slice(b",\"changeType\":");
        write_str(out, self.kind.as_str());
        out.extend_from_slice(b",\"instance\":");
        out.extend_from_slice(&self.instance_json);
        out.push(b'}');
    }

    /// What the change counts against the log's byte bound: its instance JSON, its key and a
    /// fixed overhead.
    pub fn retained_bytes(&self) -> usize {
        self.instance_json.len()
            + self.key.region_id.len()
            + self.key.service_id.len()
            + self.key.instance_id.len()
            + CHANGE_OVERHEAD_BYTES
    }
}

/// A version older than the oldest change kept.
#[derive(Debug, PartialEq, Eq)]
pub struct ChangesGone;

#[derive(Debug)]
pub(crate) struct ChangeLog {
    retention: Retention,
    /// At most this many bytes of changes are kept (`Change::retained_bytes`), whatever the
    /// retention.
    max_bytes: usize,
    entries: VecDeque<Change>,
    /// `Change::retained_bytes` of `entries`, summed.
    bytes: usize,
    /// Every change up to this version has been dropped (or came before the log started).
    dropped_through: u64,
    /// How many of the newest `entries` have not been pushed yet (read where they are).
    unpushed_kept: usize,
    /// Changes the bounds dropped before they were pushed, older than any kept.
    dropped_unpushed: Vec<Change>,
}

impl ChangeLog {
    /// An empty log keeping changes for `retention` and within `max_bytes`; versions before
    /// `start` are unknown to it.
    pub(crate) fn new(retention: Retention, max_bytes: usize, start: u64) -> ChangeLog {
        ChangeLog {
            retention,
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            dropped_through: start,
            unpushed_kept: 0,
            dropped_unpushed: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, change: Change) {
        let now_ms = change.time_ms;
        self.unpushed_kept += 1;
        self.bytes += change.retained_bytes();
        self.entries.push_back(change);
        self.trim(now_ms);
    }

    /// The changes recorded since the last [`ChangeLog::mark_pushed`], oldest first, every one of
    /// them (no collapsing): each register is pushed as `new`, as Java does.
    pub(crate) fn unpushed(&self) -> impl Iterator<Item = &Change> {
        let pushed = self.entries.len() - self.unpushed_kept;
        self.dropped_unpushed
            .iter()
            .chain(self.entries.range(pushed..))
    }

    /// Everything recorded so far has been pushed (or had no one to push to).
    pub(crate) fn mark_pushed(&mut self) {
        self.unpushed_kept = 0;
        self.dropped_unpushed.clear();
    }

    /// Drops, oldest first, what the retention no longer covers and what exceeds the byte
    /// bound. A change larger than the whole bound is dropped too: a delta from before it is
    /// then gone, and the client fetches the full list.
    pub(crate) fn trim(&mut self, now_ms: u64) {
        while let Some(oldest) = self.entries.front() {
            let keep = self.bytes <= self.max_bytes
                && match self.retention {
                    Retention::Count(n) => self.entries.len() <= n,
                    Retention::AgeMs(age) => now_ms.saturating_sub(oldest.time_ms) <= age,
                };
            if keep {
                break;
            }
            self.dropped_through = oldest.version;
            self.bytes -= oldest.retained_bytes();
            // The oldest is unpushed only when every kept change is.
            let unpushed = self.unpushed_kept == self.entries.len();
            let dropped = self.entries.pop_front();
            if unpushed {
                self.unpushed_kept -= 1;
                self.dropped_unpushed.extend(dropped);
            }
        }
    }

    /// The latest change of each instance changed after `version`, oldest first.
    pub(crate) fn since(&self, version: u64) -> Result<Vec<Change>, ChangesGone> {
        if version < self.dropped_through {
            return Err(ChangesGone);
        }
        let start = self.entries.partition_point(|c| c.version <= version);
        let newer = self.entries.range(start..);
        let mut latest: HashMap<&InstanceKey, &Change> = HashMap::new();
        for change in newer.clone() {
            latest.insert(&change.key, change);
        }
        Ok(newer
            .filter(|c| std::ptr::eq(latest[&c.key], *c))
            .cloned()
            .collect())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// What the kept changes count against the byte bound (`Change::retained_bytes`, summed).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(version: u64, kind: ChangeKind, id: &str, time_ms: u64) -> Change {
        Change {
            version,
            kind,
            time_ms,
            service_id: Arc::from("svc"),
            key: InstanceKey {
                region_id: "r".into(),
                service_id: "svc".into(),
                instance_id: id.into(),
            },
            instance_json: Arc::from(format!(r#"{{"instanceId":"{id}"}}"#).as_bytes()),
        }
    }

    fn take_unpushed(log: &mut ChangeLog) -> Vec<Change> {
        let changes = log.unpushed().cloned().collect();
        log.mark_pushed();
        changes
    }

    fn kinds(changes: &[Change]) -> Vec<(u64, &str)> {
        changes
            .iter()
            .map(|c| (c.version, c.kind.as_str()))
            .collect()
    }

    #[test]
    fn since_keeps_the_latest_change_per_instance() {
        let mut log = ChangeLog::new(Retention::Count(100), usize::MAX, 10);
        log.record(change(11, ChangeKind::New, "a", 0));
        log.record(change(12, ChangeKind::New, "b", 0));
        log.record(change(13, ChangeKind::Delete, "a", 0));
        log.record(change(14, ChangeKind::New, "c", 0));
        assert_eq!(
            kinds(&log.since(10).unwrap()),
            [(12, "new"), (13, "delete"), (14, "new")]
        );
        assert_eq!(
            kinds(&log.since(12).unwrap()),
            [(13, "delete"), (14, "new")]
        );
        assert!(log.since(14).unwrap().is_empty());
        assert_eq!(log.since(9), Err(ChangesGone));
    }

    #[test]
    fn every_change_is_pushed_once() {
        let mut log = ChangeLog::new(Retention::Count(1), usize::MAX, 0);
        log.record(change(1, ChangeKind::New, "a", 0));
        log.record(change(2, ChangeKind::New, "a", 0));
        assert_eq!(kinds(&take_unpushed(&mut log)), [(1, "new"), (2, "new")]);
        assert!(take_unpushed(&mut log).is_empty());
    }

    #[test]
    fn a_change_is_pushed_once_whether_kept_or_dropped() {
        let mut log = ChangeLog::new(Retention::Count(2), usize::MAX, 0);
        log.record(change(1, ChangeKind::New, "a", 0));
        assert_eq!(kinds(&take_unpushed(&mut log)), [(1, "new")]);
        // 1 was pushed before the bound dropped it, 2 was not.
        for v in 2..=4 {
            log.record(change(v, ChangeKind::New, &v.to_string(), 0));
        }
        assert_eq!(log.len(), 2);
        assert_eq!(
            kinds(&take_unpushed(&mut log)),
            [(2, "new"), (3, "new"), (4, "new")]
        );
        log.record(change(5, ChangeKind::Delete, "3", 0));
        assert_eq!(kinds(&take_unpushed(&mut log)), [(5, "delete")]);
        assert!(take_unpushed(&mut log).is_empty());
    }

    #[test]
    fn count_retention_forgets_old_versions() {
        let mut log = ChangeLog::new(Retention::Count(2), usize::MAX, 0);
        for v in 1..=4 {
            log.record(change(v, ChangeKind::New, &v.to_string(), 0));
        }
        assert_eq!(log.len(), 2);
        assert_eq!(log.since(1), Err(ChangesGone));
        assert_eq!(kinds(&log.since(2).unwrap()), [(3, "new"), (4, "new")]);
    }

    #[test]
    fn age_retention_forgets_old_changes() {
        let mut log = ChangeLog::new(Retention::AgeMs(1_000), usize::MAX, 0);
        log.record(change(1, ChangeKind::New, "a", 0));
        log.record(change(2, ChangeKind::New, "b", 800));
        log.trim(1_500);
        assert_eq!(log.since(0), Err(ChangesGone));
        assert_eq!(kinds(&log.since(1).unwrap()), [(2, "new")]);
        log.trim(5_000);
        assert_eq!(log.len(), 0);
        assert!(log.since(2).unwrap().is_empty());
    }

    /// A `new` change of instance `id` whose JSON is `size` bytes.
    fn sized(version: u64, id: &str, size: usize) -> Change {
        let mut c = change(version, ChangeKind::New, id, 0);
        c.instance_json = vec![b' '; size].into();
        c
    }

    #[test]
    fn byte_retention_drops_the_oldest_changes() {
        // Each change of "a" counts 1000 + 5 (key) + the overhead; three fit, a fourth does not.
        let each = sized(1, "a", 1000).retained_bytes();
        assert_eq!(each, 1000 + 5 + CHANGE_OVERHEAD_BYTES);
        let mut log = ChangeLog::new(Retention::Count(100), 3 * each, 0);
        for v in 1..=3 {
            log.record(sized(v, "a", 1000));
        }
        assert_eq!((log.len(), log.bytes()), (3, 3 * each));
        assert_eq!(kinds(&log.since(0).unwrap()), [(3, "new")]);

        log.record(sized(4, "a", 1000));
        assert_eq!((log.len(), log.bytes()), (3, 3 * each));
        assert_eq!(log.since(0), Err(ChangesGone));
        assert_eq!(kinds(&log.since(1).unwrap()), [(4, "new")]);

        // A larger change pushes out as many of the oldest as it needs.
        log.record(sized(5, "b", 2000));
        assert_eq!(log.len(), 2);
        assert_eq!(log.since(2), Err(ChangesGone));
        assert_eq!(kinds(&log.since(3).unwrap()), [(4, "new"), (5, "new")]);
        assert_eq!(kinds(&log.since(4).unwrap()), [(5, "new")]);
        assert_eq!(log.bytes(), each + sized(5, "b", 2000).retained_bytes());
    }

    #[test]
    fn a_change_larger_than_the_byte_bound_is_not_kept() {
        let mut log = ChangeLog::new(Retention::Count(100), 1000, 0);
        log.record(sized(1, "a", 10));
        log.record(sized(2, "a", 5000));
        assert_eq!((log.len(), log.bytes()), (0, 0));
        assert_eq!(log.since(1), Err(ChangesGone));
        // A client that has version 2 has everything.
        assert!(log.since(2).unwrap().is_empty());
        // Still pushed to subscribers.
        assert_eq!(kinds(&take_unpushed(&mut log)), [(1, "new"), (2, "new")]);
    }

    #[test]
    fn byte_and_count_bounds_apply_together() {
        let each = sized(1, "a", 100).retained_bytes();
        let mut log = ChangeLog::new(Retention::Count(2), 10 * each, 0);
        for v in 1..=5 {
            log.record(sized(v, "a", 100));
        }
        assert_eq!((log.len(), log.bytes()), (2, 2 * each));
        let mut log = ChangeLog::new(Retention::AgeMs(1_000_000), 2 * each, 0);
        for v in 1..=5 {
            log.record(sized(v, "a", 100));
        }
        assert_eq!((log.len(), log.bytes()), (2, 2 * each));
        assert_eq!(log.since(2), Err(ChangesGone));
        assert!(log.since(3).is_ok());
    }

    #[test]
    fn instance_change_json() {
        let mut out = Vec::new();
        change(1, ChangeKind::Delete, "a", 1234).write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"changeTime":1234,"changeType":"delete","instance":{"instanceId":"a"}}"#
        );
    }
}
