//! A service: its instances' JSON fragments and its discovery bytes, rebuilt lazily.
//!
//! Each instance's fragment is written once, when it registers. A service's `instances_json`
//! is the concatenation of its fragments, assembled at most once per version and only when
//! someone reads it, so a burst of 10 000 registrations costs one rebuild. Reads at the same
//! version share one `Arc`, and with it the array's compressed form, which the HTTP layer makes
//! once for every gzip reply of that version. Members are kept in a vector with O(1)
//! swap-removal: the order of instances in the array carries no meaning. A member pulled out by
//! management stays a member, marked down, and is left out of the array; the lists management
//! adds (logical instances, route rules) are assembled with it. The service's Prometheus
//! `http_sd` target groups are kept the same way beside it: derived from the same members'
//! fragments (`http_sd`) at most once per version, when `prometheus-sd.json` first asks.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::http_sd::write_target_group;

/// A service's discovery bytes at one version.
#[derive(Clone, Debug)]
pub struct ServiceSnapshot {
    /// The service id as first registered.
    pub service_id: Arc<str>,
    pub version: u64,
    /// The JSON array `[fragment,fragment,...]` of the service's instances in discovery.
    pub instances_json: Arc<InstancesJson>,
    /// What follows the array in a `Service` object, up to its id:
    /// `,"logicInstances":[..],"metadata":null,"routeRules":[..],"serviceId":`.
    pub lists: Arc<[u8]>,
    /// Whether the service has registered instances (otherwise only management data names it).
    pub registered: bool,
}

/// A service's instances in discovery at one version, as JSON read as its bytes: the array of
/// their fragments, or their `http_sd` target groups (comma-separated, no brackets).
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

/// One instance of the service: where its registration lives, its JSON, and whether management
/// has pulled it out of discovery.
pub(crate) struct Member {
    pub slot: u32,
    pub fragment: Arc<[u8]>,
    pub down: bool,
}

/// The instances of one service, keyed in the shard by lowercased service id.
pub(crate) struct Service {
    id: Arc<str>,
    version: u64,
    members: Vec<Member>,
    snapshot: Option<ServiceSnapshot>,
    /// The target groups, and the version they were derived at.
    targets: Option<(u64, Arc<InstancesJson>)>,
}

impl Service {
    /// An empty service displayed as `id`.
    pub(crate) fn new(id: &str) -> Service {
        Service {
            id: Arc::from(id),
            version: 0,
            members: Vec::new(),
            snapshot: None,
            targets: None,
        }
    }

    /// Adds `member` at position `len()`.
    pub(crate) fn add(&mut self, member: Member, version: u64) {
        self.members.push(member);
        self.version = version;
    }

    /// Replaces the member at `position` (a re-register); returns the one replaced.
    pub(crate) fn replace(&mut self, position: usize, member: Member, version: u64) -> Member {
        self.version = version;
        std::mem::replace(&mut self.members[position], member)
    }

    /// Removes the member at `position`. Returns it, and the slot of the member moved into
    /// `position`, whose recorded position the caller must update.
    pub(crate) fn remove(&mut self, position: usize, version: u64) -> (Member, Option<u32>) {
        let removed = self.members.swap_remove(position);
        self.version = version;
        let moved = self.members.get(position).map(|m| m.slot);
        (removed, moved)
    }

    /// Marks the member at `position` pulled out of discovery (or back in).
    pub(crate) fn set_down(&mut self, position: usize, down: bool, version: u64) {
        self.members[position].down = down;
        self.version = version;
    }

    /// Moves the service to `version` without a change of its members (its management lists
    /// changed).
    pub(crate) fn touch(&mut self, version: u64) {
        self.version = version;
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.members
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

    /// The discovery bytes at the current version, assembled if this version was not read yet;
    /// `lists` makes what follows the instance array.
    pub(crate) fn snapshot(
        &mut self,
        lists: impl FnOnce(&Service) -> Arc<[u8]>,
    ) -> ServiceSnapshot {
        match &self.snapshot {
            Some(snapshot) if snapshot.version == self.version => snapshot.clone(),
            _ => {
                let snapshot = ServiceSnapshot {
                    service_id: self.id.clone(),
                    version: self.version,
                    instances_json: Arc::new(InstancesJson::new(self.assemble())),
                    lists: lists(self),
                    registered: true,
                };
                self.snapshot = Some(snapshot.clone());
                snapshot
            }
        }
    }

    /// The Prometheus `http_sd` target groups of the instances in discovery at the current
    /// version, comma-separated, derived if this version was not asked for yet.
    pub(crate) fn targets(&mut self) -> Arc<InstancesJson> {
        match &self.targets {
            Some((version, targets)) if *version == self.version => targets.clone(),
            _ => {
                // The groups run about half as long again as the fragments they come from.
                let fragments: usize = self.shown().map(|m| m.fragment.len()).sum();
                let mut out = Vec::with_capacity(fragments * 3 / 2);
                for member in self.shown() {
                    write_target_group(&mut out, &member.fragment);
                }
                let targets = Arc::new(InstancesJson::new(out));
                self.targets = Some((self.version, targets.clone()));
                targets
            }
        }
    }

    /// The members in discovery: those not pulled out.
    fn shown(&self) -> impl Iterator<Item = &Member> + Clone {
        self.members.iter().filter(|m| !m.down)
    }

    fn assemble(&self) -> Vec<u8> {
        let len = self.shown().map(|m| m.fragment.len() + 1).sum::<usize>() + 2;
        let mut out = Vec::with_capacity(len);
        out.push(b'[');
        for (i, member) in self.shown().enumerate() {
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

    fn member(slot: u32, json: &str) -> Member {
        Member {
            slot,
            fragment: fragment(json),
            down: false,
        }
    }

    fn snapshot(service: &mut Service) -> ServiceSnapshot {
        service.snapshot(|_| Arc::from(&b""[..]))
    }

    fn json(service: &mut Service) -> String {
        String::from_utf8(snapshot(service).instances_json.to_vec()).unwrap()
    }

    #[test]
    fn assembles_fragments_into_an_array() {
        let mut service = Service::new("My.Service");
        service.add(member(7, "{\"a\":1}"), 1);
        service.add(member(9, "{\"b\":2}"), 2);
        assert_eq!(service.len(), 2);
        let snapshot = snapshot(&mut service);
        assert_eq!(&*snapshot.service_id, "My.Service");
        assert_eq!(snapshot.version, 2);
        assert_eq!(json(&mut service), "[{\"a\":1},{\"b\":2}]");
        service.replace(0, member(7, "{\"a\":3}"), 3);
        assert_eq!(json(&mut service), "[{\"a\":3},{\"b\":2}]");
        service.set_down(0, true, 4);
        assert_eq!(json(&mut service), "[{\"b\":2}]");
    }

    #[test]
    fn rebuilt_once_per_version() {
        let mut service = Service::new("s");
        service.add(member(0, "{}"), 1);
        let first = snapshot(&mut service);
        let again = snapshot(&mut service);
        assert!(Arc::ptr_eq(&first.instances_json, &again.instances_json));
        service.add(member(1, "{}"), 2);
        let after = snapshot(&mut service);
        assert!(!Arc::ptr_eq(&first.instances_json, &after.instances_json));
        assert_eq!(&**after.instances_json, b"[{},{}]");
    }

    #[test]
    fn targets_leave_pulled_out_members_out_and_are_derived_once_per_version() {
        let instance = |id: &str, ip: Option<&str>| {
            let mut instance = crate::instance::tests::i1();
            instance.instance_id = Some(id.into());
            instance.ip = ip.map(Into::into);
            Member {
                slot: 0,
                fragment: instance.to_json().into(),
                down: false,
            }
        };
        let mut service = Service::new("s");
        service.add(instance("a", Some("10.0.0.1")), 1);
        service.add(instance("b", Some("10.0.0.2")), 2);
        service.add(instance("no-ip", None), 3);
        let first = service.targets();
        assert!(Arc::ptr_eq(&first, &service.targets()));
        let list: serde_json::Value =
            serde_json::from_slice(&[b"[", &**first, b"]"].concat()).unwrap();
        let targets: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|group| group["targets"][0].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["10.0.0.1:8080", "10.0.0.2:8080"]);
        service.set_down(0, true, 4);
        let after = service.targets();
        assert!(!Arc::ptr_eq(&first, &after));
        assert!(after.starts_with(br#"{"targets":["10.0.0.2:8080"]"#));
        service.set_down(1, true, 5);
        assert!(service.targets().is_empty());
    }

    #[test]
    fn swap_remove_reports_moved_slot() {
        let mut service = Service::new("s");
        for slot in 0..3 {
            service.add(member(slot, &format!("{slot}")), u64::from(slot) + 1);
        }
        let (removed, moved) = service.remove(0, 4);
        assert_eq!((&*removed.fragment, moved), (&b"0"[..], Some(2)));
        assert_eq!(service.slots().collect::<Vec<_>>(), [2, 1]);
        assert_eq!(json(&mut service), "[2,1]");
        assert_eq!(service.remove(1, 5).1, None);
        assert_eq!(service.remove(0, 6).1, None);
        assert!(service.is_empty());
        assert_eq!(json(&mut service), "[]");
    }
}
