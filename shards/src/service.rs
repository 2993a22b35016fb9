//! A service: its instances' JSON fragments and its discovery bytes, rebuilt lazily.
//!
//! Each instance's fragment is written once, when it registers. A service's `instances_json`
//! is the concatenation of its fragments, assembled at most once per version and only when
//! someone reads it, so a burst of 10 000 registrations costs one rebuild. Reads at the same
//! version share one `Arc`, and with it the array's compressed form, which the HTTP layer makes
//! once for every gzip reply of that version. Members are kept in a vector with O(1)
//! swap-removal: the order of instances in the array carries no meaning.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// A service's discovery bytes at one version.
#[derive(Clone, Debug)]
pub struct ServiceSnapshot {
    /// The service id as first registered.
    pub service_id: Arc<str>,
    pub version: u64,
    /// The JSON array `[fragment,fragment,...]` of the service's instances.
    pub instances_json: Arc<InstancesJson>,
}

/// The JSON array of a service's instances at one version, read as its bytes.
#[derive(Debug)]
pub struct InstancesJson {
    json: Box<[u8]>,
    /// The array deflated, made by the first gzip reply that carries it (any core).
    pub deflated: OnceLock<Deflated>,
}

/// Bytes deflated on their own so that a gzip reply can carry them as they are: raw deflate
/// blocks ending on a byte boundary, none of them final, and the CRC-32 of the plain bytes.
#[derive(Debug)]
pub struct Deflated {
    pub blocks: Box<[u8]>,
    pub crc32: u32,
}

impl InstancesJson {
    pub fn new(json: Vec<u8>) -> InstancesJson {
        InstancesJson {
            json: json.into(),
            deflated: OnceLock::new(),
        }
    }
}

impl Deref for InstancesJson {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.json
    }
}

/// One instance of the service: where its registration lives, and its JSON.
struct Member {
    slot: u32,
    fragment: Arc<[u8]>,
}

/// The instances of one service, keyed in the shard by lowercased service id.
pub(crate) struct Service {
    id: Arc<str>,
    version: u64,
    members: Vec<Member>,
    snapshot: Option<ServiceSnapshot>,
}

impl Service {
    /// An empty service displayed as `id`.
    pub(crate) fn new(id: &str) -> Service {
        Service {
            id: Arc::from(id),
            version: 0,
            members: Vec::new(),
            snapshot: None,
        }
    }

    /// Adds the registration in `slot` at position `len()`.
    pub(crate) fn add(&mut self, slot: u32, fragment: Arc<[u8]>, version: u64) {
        self.members.push(Member { slot, fragment });
        self.version = version;
    }

    /// Replaces the fragment at `position` (a re-register).
    pub(crate) fn replace(&mut self, position: usize, fragment: Arc<[u8]>, version: u64) {
        self.members[position].fragment = fragment;
        self.version = version;
    }

    /// Removes the member at `position`. Returns its fragment, and the slot of the member moved
    /// into `position`, whose recorded position the caller must update.
    pub(crate) fn remove(&mut self, position: usize, version: u64) -> (Arc<[u8]>, Option<u32>) {
        let removed = self.members.swap_remove(position);
        self.version = version;
        (removed.fragment, self.members.get(position).map(|m| m.slot))
    }

    /// The service id as the service displays it.
    pub(crate) fn id(&self) -> &Arc<str> {
        &self.id
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The slots of the service's registrations.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.members.iter().map(|m| m.slot)
    }

    /// The discovery bytes at the current version, assembled if this version was not read yet.
    pub(crate) fn snapshot(&mut self) -> ServiceSnapshot {
        match &self.snapshot {
            Some(snapshot) if snapshot.version == self.version => snapshot.clone(),
            _ => {
                let snapshot = ServiceSnapshot {
                    service_id: self.id.clone(),
                    version: self.version,
                    instances_json: Arc::new(InstancesJson::new(self.assemble())),
                };
                self.snapshot = Some(snapshot.clone());
                snapshot
            }
        }
    }

    fn assemble(&self) -> Vec<u8> {
        let len = self
            .members
            .iter()
            .map(|m| m.fragment.len() + 1)
            .sum::<usize>()
            + 2;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&member.fragment);
        }
        out.push(b']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(s: &str) -> Arc<[u8]> {
        s.as_bytes().into()
    }

    fn json(service: &mut Service) -> String {
        String::from_utf8(service.snapshot().instances_json.to_vec()).unwrap()
    }

    #[test]
    fn assembles_fragments_into_an_array() {
        let mut service = Service::new("My.Service");
        service.add(7, fragment("{\"a\":1}"), 1);
        service.add(9, fragment("{\"b\":2}"), 2);
        assert_eq!(service.len(), 2);
        let snapshot = service.snapshot();
        assert_eq!(&*snapshot.service_id, "My.Service");
        assert_eq!(snapshot.version, 2);
        assert_eq!(json(&mut service), "[{\"a\":1},{\"b\":2}]");
        service.replace(0, fragment("{\"a\":3}"), 3);
        assert_eq!(json(&mut service), "[{\"a\":3},{\"b\":2}]");
    }

    #[test]
    fn rebuilt_once_per_version() {
        let mut service = Service::new("s");
        service.add(0, fragment("{}"), 1);
        let first = service.snapshot();
        let again = service.snapshot();
        assert!(Arc::ptr_eq(&first.instances_json, &again.instances_json));
        service.add(1, fragment("{}"), 2);
        let after = service.snapshot();
        assert!(!Arc::ptr_eq(&first.instances_json, &after.instances_json));
        assert_eq!(&**after.instances_json, b"[{},{}]");
    }

    #[test]
    fn swap_remove_reports_moved_slot() {
        let mut service = Service::new("s");
        for slot in 0..3 {
            service.add(slot, fragment(&format!("{slot}")), u64::from(slot) + 1);
        }
        let (removed, moved) = service.remove(0, 4);
        assert_eq!((&*removed, moved), (&b"0"[..], Some(2)));
        assert_eq!(service.slots().collect::<Vec<_>>(), [2, 1]);
        assert_eq!(json(&mut service), "[2,1]");
        assert_eq!(service.remove(1, 5).1, None);
        assert_eq!(service.remove(0, 6).1, None);
        assert!(service.is_empty());
        assert_eq!(json(&mut service), "[]");
    }
}
