//! One instance's replicated state: its key and the Java JSON a peer gets, built once per
//! successful client write and shared by the outbox of every peer.
//!
//! Both live in one allocation, since the registry's hottest path (heartbeats) makes one per
//! instance: first the key, lowercased as Java's `InstanceKey` compares it, its three parts
//! separated by 0xFF (a byte UTF-8 never holds, so two different keys never read the same), then
//! the instance as `Instance::write_json` writes it (Java's whole instance, nulls included).
//!
//! The outbox of every peer indexes pending updates by their key, looking each up, inserting and
//! removing it: the key is hashed once here, with this process's random SipHash keys (a client
//! cannot aim collisions at them), and the outboxes use that hash as it is
//! ([`Prehashed`](artemis_shards::Prehashed)).

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::rc::Rc;
use std::sync::OnceLock;

use artemis_shards::Instance;

/// An instance's key and JSON, cheap to clone. Updates hash and compare by the instance's key
/// alone; [`Update::same`] tells whether two are the one update.
#[derive(Clone, Debug)]
pub(crate) struct Update {
    bytes: Rc<[u8]>,
    key_len: u32,
    hash: u64,
}

impl Update {
    /// `instance`'s update, built in `scratch` (reused between calls) and copied out once.
    pub(crate) fn new(instance: &Instance, scratch: &mut Vec<u8>) -> Update {
        scratch.clear();
        write_key(
            scratch,
            instance.region_id.as_deref(),
            instance.service_id.as_deref(),
            instance.instance_id.as_deref(),
        );
        let key_len = scratch.len() as u32;
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let hash = KEYS.get_or_init(RandomState::new).hash_one(&scratch[..]);
        instance.write_json(scratch);
        Update {
            bytes: Rc::from(&scratch[..]),
            key_len,
            hash,
        }
    }

    /// The instance's key, as [`write_key`] writes it.
    pub(crate) fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    /// The instance's JSON object.
    pub(crate) fn json(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }

    /// Whether both are the one update (the same allocation), not merely equal bytes.
    pub(crate) fn same(&self, other: &Update) -> bool {
        Rc::ptr_eq(&self.bytes, &other.bytes)
    }

    /// Bytes it holds: key and JSON.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len()
    }
}

impl Hash for Update {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Update {
    fn eq(&self, other: &Update) -> bool {
        self.hash == other.hash && self.key() == other.key()
    }
}

impl Eq for Update {}

/// Appends the key of the instance with these ids (a missing one counts as empty), lowercased.
pub(crate) fn write_key(
    out: &mut Vec<u8>,
    region: Option<&str>,
    service: Option<&str>,
    instance: Option<&str>,
) {
    let mut utf8 = [0u8; 4];
    for (i, part) in [region, service, instance].into_iter().enumerate() {
        if i > 0 {
            out.push(0xFF);
        }
        let part = part.unwrap_or("");
        if part.is_ascii() {
            out.extend(part.bytes().map(|b| b.to_ascii_lowercase()));
            continue;
        }
        for c in part.chars().flat_map(char::to_lowercase) {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An update of instance `id` of service `service` (region `SHA`), its url tagged `tag`.
    pub(crate) fn update(service: &str, id: &str, tag: &str) -> Update {
        let instance = Instance {
            region_id: Some("SHA".into()),
            service_id: Some(service.into()),
            instance_id: Some(id.into()),
            url: Some(format!("http://{id}/{tag}")),
            ..Instance::default()
        };
        Update::new(&instance, &mut Vec::new())
    }

    #[test]
    fn an_update_holds_the_lowercased_key_and_javas_json() {
        let u = update("Svc.A", "I:1", "x");
        assert_eq!(u.key(), b"sha\xffsvc.a\xffi:1");
        let json = std::str::from_utf8(u.json()).unwrap();
        assert!(json.starts_with(r#"{"groupId":null,"healthCheckUrl":null,"instanceId":"I:1","#));
        assert!(json.ends_with(r#""url":"http://I:1/x","zoneId":null}"#));
        assert_eq!(u.size(), u.key().len() + u.json().len());
    }

    #[test]
    fn updates_are_one_key_whatever_their_json() {
        use std::collections::HashSet;
        let (a, newer_a, b) = (
            update("S", "a", "1"),
            update("s", "A", "2"),
            update("s", "b", "1"),
        );
        assert_eq!(a, newer_a);
        assert!(!a.same(&newer_a));
        assert_ne!(a, b);
        let mut set: HashSet<Update, std::hash::BuildHasherDefault<artemis_shards::Prehashed>> =
            HashSet::default();
        assert!(set.insert(a) && set.insert(b));
        assert!(!set.insert(newer_a), "the one instance");
    }

    #[test]
    fn keys_differ_where_their_parts_do() {
        let key = |r, s, i| {
            let mut out = Vec::new();
            write_key(&mut out, Some(r), Some(s), Some(i));
            out
        };
        assert_eq!(key("SHA", "A.b", "X"), key("sha", "a.B", "x"));
        assert_ne!(key("sha", "a.b", "c"), key("sha", "a", "b.c"));
        let mut none = Vec::new();
        write_key(&mut none, None, Some("a"), None);
        assert_eq!(none, b"\xffa\xff");
        // Beyond ASCII, lowercased as Java's `toLowerCase` does.
        assert_eq!(key("SHA", "Ünï", "ΣX"), key("sha", "ünï", "σx"));
    }
}
