//! Group keys: the lowercased `/`-joined paths that tie instances to management groups.
//!
//! An instance's key is `service/region/zone/group/instance` (group `default` when it has none)
//! and a group's is `service/region/zone/name`, blank parts skipped (Java's `concatPathParts`).
//! A group holds every instance whose key its own key prefixes, segment by segment, so a group
//! operation is found by walking the instance key's prefixes from the shortest (Java's
//! `SearchTree.first`).

use std::collections::HashMap;

/// Java's `ServiceGroups.DEFAULT_WEIGHT_VALUE`.
const DEFAULT_WEIGHT: i64 = 5;
/// Java's `ServiceGroups.MAX_WEIGHT_VALUE`.
const MAX_WEIGHT: i64 = 10_000;

/// Java's `fixWeight`: missing or negative weights become 5, weights over 10 000 become 10 000.
pub fn fix_weight(weight: Option<i64>) -> i64 {
    match weight {
        None => DEFAULT_WEIGHT,
        Some(w) if w < 0 => DEFAULT_WEIGHT,
        Some(w) => w.min(MAX_WEIGHT),
    }
}

/// `lower(p1/p2/...)` of the parts that are not blank.
pub fn path_key(parts: &[Option<&str>]) -> String {
    let mut key = String::new();
    for part in parts.iter().flatten().filter(|p| !p.trim().is_empty()) {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(&part.to_lowercase());
    }
    key
}

/// A management group's key.
pub fn group_key(service_id: &str, region_id: &str, zone_id: &str, name: &str) -> String {
    path_key(&[Some(service_id), Some(region_id), Some(zone_id), Some(name)])
}

/// An instance's group key; a missing or blank group is `default`.
pub fn instance_group_key(
    service_id: Option<&str>,
    region_id: Option<&str>,
    zone_id: Option<&str>,
    group_id: Option<&str>,
    instance_id: Option<&str>,
) -> String {
    let group = group_id
        .filter(|g| !g.trim().is_empty())
        .unwrap_or("default");
    path_key(&[service_id, region_id, zone_id, Some(group), instance_id])
}

/// Values by path, found exactly or by the shortest stored prefix of a path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchTree<V> {
    by_path: HashMap<String, V>,
}

impl<V> SearchTree<V> {
    /// Stores `value` at `path`; an empty path stores nothing.
    pub fn add(&mut self, path: &str, value: V) {
        if !path.is_empty() {
            self.by_path.insert(path.to_string(), value);
        }
    }

    /// The value stored at exactly `path`.
    pub fn get(&self, path: &str) -> Option<&V> {
        self.by_path.get(path)
    }

    /// The value at the shortest stored prefix of `path` (whole segments), `path` itself included.
    pub fn first(&self, path: &str) -> Option<&V> {
        if path.is_empty() || self.by_path.is_empty() {
            return None;
        }
        path.match_indices('/')
            .map(|(end, _)| &path[..end])
            .chain(std::iter::once(path))
            .find_map(|prefix| self.by_path.get(prefix))
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// Every stored path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_weight_as_java() {
        assert_eq!(fix_weight(None), 5);
        assert_eq!(fix_weight(Some(0)), 0);
        assert_eq!(fix_weight(Some(1)), 1);
        assert_eq!(fix_weight(Some(9999)), 9999);
        assert_eq!(fix_weight(Some(10000)), 10000);
        assert_eq!(fix_weight(Some(-1)), 5);
        assert_eq!(fix_weight(Some(10001)), 10000);
    }

    #[test]
    fn search_tree_exact_and_first() {
        let mut tree = SearchTree::default();
        tree.add("10", "ten");
        tree.add("10/20/30", "thirty");
        tree.add("", "nothing");
        assert_eq!(tree.get("10/20/30"), Some(&"thirty"));
        assert_eq!(tree.get("10/20"), None);
        assert_eq!(tree.first("10/20/30/40"), Some(&"ten"));
        assert_eq!(tree.first("10"), Some(&"ten"));
        assert_eq!(tree.first("100/20"), None);
        assert_eq!(tree.first(""), None);
        let mut deeper = SearchTree::default();
        deeper.add("a/b", 1);
        assert_eq!(deeper.first("a/b/c"), Some(&1));
        assert_eq!(deeper.first("a/bc"), None);
        assert_eq!(deeper.first("a"), None);
    }

    #[test]
    fn keys_skip_blank_parts_and_lowercase() {
        assert_eq!(group_key("Svc", "SHA", "SHAJQ", "G1"), "svc/sha/shajq/g1");
        assert_eq!(group_key("svc", "sha", " ", "g1"), "svc/sha/g1");
        assert_eq!(
            instance_group_key(Some("Svc"), Some("SHA"), Some("Z"), None, Some("I:1")),
            "svc/sha/z/default/i:1"
        );
        assert_eq!(
            instance_group_key(Some("svc"), Some("sha"), None, Some("g"), Some("i")),
            "svc/sha/g/i"
        );
    }
}
