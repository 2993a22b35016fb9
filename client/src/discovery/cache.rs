//! The local copy of the services a client follows, and what it tells their listeners. Each
//! followed service has an entry (made by the first `service` or `watch` call) holding the
//! service as last known and a bounded broadcast channel of [`ServiceChange`]s: a listener
//! that falls `watch_capacity` changes behind loses the oldest and reads
//! [`ServiceChange::Lagged`] instead. Changes come from pushes, from `services-delta.json`
//! (applied only where they change something, since pushes usually delivered them already) and
//! from whole services fetched again.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::model::{Instance, Service};
use crate::wire::InstanceChange;

/// What a [`watch`](crate::DiscoveryClient::watch) stream tells of its service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServiceChange {
    /// An instance was registered, registered again or changed (`new`, `change`).
    Updated {
        instance: Instance,
        /// The service with the change applied.
        service: Arc<Service>,
    },
    /// An instance was unregistered, expired or pulled out (`delete`).
    Removed {
        instance: Instance,
        service: Arc<Service>,
    },
    /// The whole service was fetched (first fetch, `reload`, a full fetch after a reconnect
    /// whose delta was not available) and differs from what the client had.
    Reloaded { service: Arc<Service> },
    /// This listener was too slow: the `missed` oldest changes were dropped. The latest state
    /// is [`service`](crate::DiscoveryClient::service)'s.
    Lagged { missed: u64 },
}

/// Where a change comes from: a push is told to listeners even when it changes nothing (a
/// re-register), a delta only when it does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Push,
    Delta,
}

pub(super) struct Cache {
    /// By lowercased service id (the server matches ids ignoring case).
    entries: HashMap<String, Entry>,
    /// The `services.json` / `services-delta.json` version this copy is complete up to.
    version: Option<i64>,
    capacity: usize,
}

struct Entry {
    /// The id as first asked for, as requests send it.
    service_id: String,
    service: Option<Arc<Service>>,
    changes: broadcast::Sender<ServiceChange>,
    /// The push session its subscription was last sent on.
    sent_on: u64,
}

impl Cache {
    pub(super) fn new(capacity: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            version: None,
            capacity,
        }
    }

    fn entry(&mut self, service_id: &str) -> &mut Entry {
        let capacity = self.capacity;
        self.entries
            .entry(service_id.to_lowercase())
            .or_insert_with(|| Entry {
                service_id: service_id.to_string(),
                service: None,
                changes: broadcast::channel(capacity).0,
                sent_on: 0,
            })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The service as known, following it from now on (`None` until it is fetched).
    pub(super) fn follow(&mut self, service_id: &str) -> Option<Arc<Service>> {
        self.entry(service_id).service.clone()
    }

    /// A listener of the service, following it from now on.
    pub(super) fn listen(&mut self, service_id: &str) -> broadcast::Receiver<ServiceChange> {
        self.entry(service_id).changes.subscribe()
    }

    /// The services not yet subscribed to on push session `session`, marked as sent.
    pub(super) fn unsent(&mut self, session: u64) -> Vec<String> {
        self.entries
            .values_mut()
            .filter(|e| e.sent_on != session)
            .map(|e| {
                e.sent_on = session;
                e.service_id.clone()
            })
            .collect()
    }

    /// Every followed service's id.
    pub(super) fn ids(&self) -> Vec<String> {
        self.entries
            .values()
            .map(|e| e.service_id.clone())
            .collect()
    }

    /// The followed services not fetched yet.
    pub(super) fn missing(&self) -> Vec<String> {
        self.entries
            .values()
            .filter(|e| e.service.is_none())
            .map(|e| e.service_id.clone())
            .collect()
    }

    pub(super) fn version(&self) -> Option<i64> {
        self.version
    }

    pub(super) fn set_version(&mut self, version: i64) {
        self.version = Some(version);
    }

    /// A service fetched whole: kept, and told as [`ServiceChange::Reloaded`], when it differs.
    /// With `only_if_missing`, a service already known is kept instead (a first fetch that
    /// raced the push session's).
    pub(super) fn put(&mut self, service: Service, only_if_missing: bool) -> Arc<Service> {
        let entry = self.entry(&service.service_id);
        if let Some(known) = &entry.service {
            if only_if_missing || **known == service {
                return known.clone();
            }
        }
        let service = Arc::new(service);
        entry.service = Some(service.clone());
        let _ = entry.changes.send(ServiceChange::Reloaded {
            service: service.clone(),
        });
        service
    }

    /// Applies one change to a followed service; the service's id when the change asks for the
    /// service to be fetched again (`reload`).
    pub(super) fn apply(&mut self, change: InstanceChange, source: Source) -> Option<String> {
        let instance = change.instance?;
        let entry = self.entries.get_mut(&instance.service_id.to_lowercase())?;
        let change_type = change.change_type.unwrap_or_default();
        if change_type == "reload" {
            return Some(entry.service_id.clone());
        }
        // A service not fetched yet gets the change with its fetch.
        let known = entry.service.as_ref()?;
        let key = instance.key();
        let position = known.instances().iter().position(|i| i.key() == key);
        let mut service = Service::clone(known);
        let list = service.instances.get_or_insert_with(Vec::new);
        let told = match (change_type.as_str(), position) {
            ("new" | "change", Some(at)) => {
                if source == Source::Delta && list[at] == instance {
                    return None;
                }
                list[at] = instance.clone();
                Told::Updated
            }
            ("new" | "change", None) => {
                list.push(instance.clone());
                Told::Updated
            }
            ("delete", Some(at)) => {
                list.remove(at);
                Told::Removed
            }
            // A delete of an instance not known, or a change type not known: nothing to do.
            _ => return None,
        };
        let service = Arc::new(service);
        entry.service = Some(service.clone());
        let _ = entry.changes.send(match told {
            Told::Updated => ServiceChange::Updated { instance, service },
            Told::Removed => ServiceChange::Removed { instance, service },
        });
        None
    }
}

enum Told {
    Updated,
    Removed,
}

#[cfg(test)]
mod tests {
    use super::{Cache, ServiceChange, Source};
    use crate::model::{Instance, Service};
    use crate::wire::InstanceChange;

    fn change(change_type: &str, instance: &Instance) -> InstanceChange {
        InstanceChange {
            change_type: Some(change_type.into()),
            instance: Some(instance.clone()),
        }
    }

    #[test]
    fn changes_update_the_copy_and_reach_listeners() {
        let mut cache = Cache::new(2);
        let mut listener = cache.listen("Demo");
        let a = Instance::new("demo", "a", "http://a/");
        // Not fetched yet: the change waits for the fetch.
        assert_eq!(cache.apply(change("new", &a), Source::Push), None);
        assert_eq!(cache.missing(), ["Demo"]);
        cache.put(Service::empty("Demo"), false);
        assert!(matches!(
            listener.try_recv(),
            Ok(ServiceChange::Reloaded { .. })
        ));
        cache.apply(change("new", &a), Source::Push);
        assert!(matches!(
            listener.try_recv(),
            Ok(ServiceChange::Updated { .. })
        ));
        // A delta repeating what a push brought tells nobody.
        cache.apply(change("new", &a), Source::Delta);
        assert!(listener.try_recv().is_err());
        assert_eq!(cache.follow("DEMO").unwrap().instances().len(), 1);
        assert_eq!(
            cache.apply(change("reload", &a), Source::Push).as_deref(),
            Some("Demo")
        );
        cache.apply(change("delete", &a), Source::Push);
        assert!(matches!(
            listener.try_recv(),
            Ok(ServiceChange::Removed { .. })
        ));
        assert!(cache.follow("demo").unwrap().instances().is_empty());
    }

    #[test]
    fn a_slow_listener_loses_the_oldest_and_is_told() {
        let mut cache = Cache::new(2);
        let mut listener = cache.listen("demo");
        cache.put(Service::empty("demo"), false);
        for id in ["a", "b", "c"] {
            cache.apply(change("new", &Instance::new("demo", id, "u")), Source::Push);
        }
        assert!(matches!(
            listener.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(2))
        ));
        assert!(matches!(
            listener.try_recv(),
            Ok(ServiceChange::Updated { .. })
        ));
    }
}
