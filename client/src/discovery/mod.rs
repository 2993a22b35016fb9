//! Discovery from a local copy, as Java's SDK does it: the first [`DiscoveryClient::service`]
//! of a service looks it up (`lookup.json`) and follows it from then on; a background task
//! keeps every followed service current from `/ws/discovery/instance-change` pushes and, after
//! any (re)connect, catches up through `services-delta.json` from the version it last saw
//! ([`sync`]). [`DiscoveryClient::watch`] streams a service's changes.

mod cache;
mod sync;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::runtime::Handle;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::failover::Failover;
use crate::model::Service;
use crate::wire::{DiscoveryConfig, LookupReply, LookupRequest, LOOKUP, UP_DISCOVERY_NODES};

use cache::Cache;
pub use cache::ServiceChange;

/// Answers `service(id)` from a local copy kept current by pushes.
pub struct DiscoveryClient {
    shared: Arc<Shared>,
    sync: AbortHandle,
}

/// How the local copy has been kept current, for monitoring (all counts since the client was
/// made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryStats {
    /// Push sessions opened (the first, then one per reconnect).
    pub sessions: u64,
    /// Changes pushed.
    pub pushes: u64,
    /// Catch-ups through `services-delta.json`.
    pub deltas: u64,
    /// Catch-ups the server could not answer (`data-not-found`: a version too old, from
    /// another node or an earlier run), each followed by a full fetch.
    pub stale_deltas: u64,
    /// Full fetches (`services.json`).
    pub full_fetches: u64,
    /// Services fetched by `lookup.json`.
    pub lookups: u64,
}

struct Shared {
    config: ClientConfig,
    failover: Failover,
    cache: Mutex<Cache>,
    /// Tells the sync task of a service to follow.
    followed: Notify,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    sessions: AtomicU64,
    pushes: AtomicU64,
    deltas: AtomicU64,
    stale_deltas: AtomicU64,
    full_fetches: AtomicU64,
    lookups: AtomicU64,
}

impl DiscoveryClient {
    /// A client for the registry `config` names, kept current by a task of the current tokio
    /// runtime ([`Error::NoRuntime`] outside one).
    pub fn new(config: ClientConfig) -> Result<DiscoveryClient, Error> {
        config.check()?;
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared {
            failover: Failover::new(&config, UP_DISCOVERY_NODES),
            cache: Mutex::new(Cache::new(config.watch_capacity)),
            config,
            followed: Notify::new(),
            stats: Stats::default(),
        });
        let sync = runtime.spawn(sync::run(shared.clone())).abort_handle();
        Ok(DiscoveryClient { shared, sync })
    }

    /// The service `service_id` (matched ignoring case) as known now. The first call looks it
    /// up and follows it from then on; later calls answer from memory.
    pub async fn service(&self, service_id: &str) -> Result<Arc<Service>, Error> {
        if let Some(known) = self.shared.cache().follow(service_id) {
            return Ok(known);
        }
        self.shared.followed.notify_one();
        let service = self
            .shared
            .lookup(&[service_id.to_string()])
            .await?
            .pop()
            .unwrap_or_else(|| Service::empty(service_id));
        Ok(self.shared.cache().put(service, true))
    }

    /// The changes of `service_id` from now on, following it if it was not followed yet (its
    /// first fetch arrives as [`ServiceChange::Reloaded`]). The stream holds `watch_capacity`
    /// changes for a slow reader, then drops the oldest and says so
    /// ([`ServiceChange::Lagged`]); it ends when the client is dropped.
    pub fn watch(
        &self,
        service_id: &str,
    ) -> impl Stream<Item = ServiceChange> + Send + Unpin + 'static {
        let changes = self.shared.cache().listen(service_id);
        self.shared.followed.notify_one();
        stream::unfold(changes, |mut changes| async move {
            match changes.recv().await {
                Ok(change) => Some((change, changes)),
                Err(RecvError::Lagged(missed)) => Some((ServiceChange::Lagged { missed }, changes)),
                Err(RecvError::Closed) => None,
            }
        })
        .boxed()
    }

    /// How the local copy has been kept current.
    pub fn stats(&self) -> DiscoveryStats {
        let stats = &self.shared.stats;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DiscoveryStats {
            sessions: read(&stats.sessions),
            pushes: read(&stats.pushes),
            deltas: read(&stats.deltas),
            stale_deltas: read(&stats.stale_deltas),
            full_fetches: read(&stats.full_fetches),
            lookups: read(&stats.lookups),
        }
    }
}

impl Drop for DiscoveryClient {
    /// Stops the sync task; the watch streams end.
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `lookup.json` for `service_ids`, in the order asked.
    async fn lookup(&self, service_ids: &[String]) -> Result<Vec<Service>, Error> {
        let request = LookupRequest {
            discovery_configs: service_ids
                .iter()
                .map(|id| DiscoveryConfig { service_id: id })
                .collect(),
            region_id: &self.config.region_id,
            zone_id: &self.config.zone_id,
        };
        let body = serde_json::to_vec(&request).map_err(|e| Error::Config(e.to_string()))?;
        let reply: LookupReply = self.failover.call(LOOKUP, Bytes::from(body)).await?;
        count(&self.stats.lookups, service_ids.len());
        let mut services = reply.services.unwrap_or_default();
        // The reply echoes the ids asked; one it left out, or answered without an id, is the
        // id asked for.
        services.truncate(service_ids.len());
        for (service, asked) in services.iter_mut().zip(service_ids) {
            if service.service_id.to_lowercase() != asked.to_lowercase() {
                service.service_id = asked.clone();
            }
        }
        Ok(services)
    }
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}
