//! The task that keeps the followed services current. It holds one push session on
//! `/ws/discovery/instance-change` of a discovery node and, on each new session:
//!
//! 1. subscribes to every followed service (one `{"serviceId":..}` frame each), then sends a
//!    ping: the server handles a session's frames in order, so its pong says the subscriptions
//!    are in place and no later change can be missed;
//! 2. catches up with what happened while no session was listening: `services-delta.json` from
//!    the version the copy is complete up to, or, when the server answers `data-not-found`
//!    (a version too old for its retention, from another node or an earlier run, or the current
//!    one) or there is no version yet, a full fetch (`services.json`) that also gives the
//!    version to resume from next time;
//! 3. applies pushes as they come; a service followed later is subscribed to the same way and
//!    looked up again once its pong arrives (its first lookup may predate the subscription).
//!
//! Pushes and deltas commute: a delta carries each changed instance's latest state, so a push
//! applied before or after it leaves the same copy. A session that stops answering pings is
//! dropped; one the server closes (after `--ws-session-ttl`, or when slow) is opened again at
//! once, on the same node; a node that cannot be reached is left for another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::cache::Source;
use super::{count, Shared};
use crate::error::{Error, ErrorCode};
use crate::model::Service;
use crate::wire::{
    DeltaReply, DeltaRequest, DiscoveryConfig, InstanceChange, ServicesReply, ZoneRequest,
    SERVICES, SERVICES_DELTA, WS_INSTANCE_CHANGE,
};
use crate::ws::{self, Incoming, Socket};

/// The longest pause between two failed connects.
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// Keeps the copy current for as long as the client lives.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut pause = shared.config.retry_interval;
    let mut session = 0u64;
    loop {
        if shared.cache().is_empty() {
            shared.followed.notified().await;
            continue;
        }
        shared.failover.refresh_if_due().await;
        let node = shared.failover.nodes().pick();
        let socket = match ws::connect(&node, WS_INSTANCE_CHANGE, &shared.config).await {
            Ok(socket) => socket,
            Err(e) => {
                log::debug!("artemis-client: no push session: {e}");
                shared.failover.nodes().mark_down(&node);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        pause = shared.config.retry_interval;
        session += 1;
        count(&shared.stats.sessions, 1);
        let mut push = Session {
            shared: &shared,
            socket,
            node: node.clone(),
            id: session,
            pings: 0,
        };
        match push.serve().await {
            // Closed by the server (its session TTL, a slow reader): open another at once.
            Ended::Closed(why) => log::debug!("artemis-client: push session ended: {why}"),
            Ended::Failed(e) => {
                log::warn!("artemis-client: push session failed: {e}");
                shared.failover.nodes().mark_down(&node);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

enum Ended {
    Closed(Error),
    Failed(Error),
}

struct Session<'a> {
    shared: &'a Shared,
    socket: Socket,
    node: String,
    id: u64,
    pings: u64,
}

impl Session<'_> {
    async fn serve(&mut self) -> Ended {
        let config = &self.shared.config;
        let mut keepalive = tokio::time::interval(config.ping_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_pong = Instant::now();
        // The ping whose pong confirms the latest subscriptions, and the services they added.
        let mut confirming: Option<Vec<u8>> = None;
        let mut subscribed: Vec<String> = Vec::new();
        let mut synced = false;
        if let Err(e) = self.subscribe(&mut confirming, &mut subscribed).await {
            return Ended::Failed(e);
        }
        loop {
            tokio::select! {
                next = self.socket.next() => {
                    let incoming = match ws::read(&self.node, next) {
                        Ok(incoming) => incoming,
                        Err(e) => return Ended::Closed(e),
                    };
                    let result = match incoming {
                        Incoming::Text(text) => self.pushed(&text).await,
                        Incoming::Pong(payload) => {
                            last_pong = Instant::now();
                            if confirming.as_deref() != Some(&payload[..]) {
                                continue;
                            }
                            confirming = None;
                            let added = std::mem::take(&mut subscribed);
                            if synced {
                                self.fetch(added).await
                            } else {
                                synced = true;
                                self.catch_up().await
                            }
                        }
                        Incoming::Other => Ok(()),
                    };
                    if let Err(e) = result {
                        return Ended::Failed(e);
                    }
                }
                _ = self.shared.followed.notified() => {
                    if let Err(e) = self.subscribe(&mut confirming, &mut subscribed).await {
                        return Ended::Failed(e);
                    }
                }
                _ = keepalive.tick() => {
                    let waited = config.ping_interval + config.request_timeout;
                    if last_pong.elapsed() > waited {
                        return Ended::Failed(Error::Timeout { node: self.node.clone(), after: waited });
                    }
                    if let Err(e) = self.send(Message::Ping(Bytes::from_static(b"alive"))).await {
                        return Ended::Failed(e);
                    }
                }
            }
        }
    }

    /// Subscribes to the services not yet subscribed to on this session, and pings to learn
    /// when the server has them.
    async fn subscribe(
        &mut self,
        confirming: &mut Option<Vec<u8>>,
        subscribed: &mut Vec<String>,
    ) -> Result<(), Error> {
        let added = self.shared.cache().unsent(self.id);
        if added.is_empty() {
            return Ok(());
        }
        for service_id in &added {
            let frame = serde_json::to_string(&DiscoveryConfig { service_id })
                .map_err(|e| Error::Config(e.to_string()))?;
            self.send(Message::Text(Utf8Bytes::from(frame))).await?;
        }
        subscribed.extend(added);
        self.pings += 1;
        let tag = format!("subscribed-{}", self.pings).into_bytes();
        self.send(Message::Ping(Bytes::from(tag.clone()))).await?;
        *confirming = Some(tag);
        Ok(())
    }

    async fn send(&mut self, message: Message) -> Result<(), Error> {
        let timeout = self.shared.config.request_timeout;
        match tokio::time::timeout(timeout, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Transport {
                node: self.node.clone(),
                reason: format!("WebSocket: {e}"),
            }),
            Err(_) => Err(Error::Timeout {
                node: self.node.clone(),
                after: timeout,
            }),
        }
    }

    /// One pushed change. A frame that is not a change is skipped: a push session must not end
    /// on one odd message.
    async fn pushed(&mut self, text: &str) -> Result<(), Error> {
        let change = match serde_json::from_str::<InstanceChange>(text) {
            Ok(change) => change,
            Err(e) => {
                log::debug!("artemis-client: skipping a push that is not a change: {e}");
                return Ok(());
            }
        };
        count(&self.shared.stats.pushes, 1);
        let reload = self.shared.cache().apply(change, Source::Push);
        match reload {
            Some(service_id) => self.fetch(vec![service_id]).await,
            None => Ok(()),
        }
    }

    /// What happened while no session listened: the delta from the version last seen, or the
    /// whole registry when the server has no such delta.
    async fn catch_up(&mut self) -> Result<(), Error> {
        let shared = self.shared;
        let config = &shared.config;
        let since = shared.cache().version();
        if let Some(version) = since {
            let request = DeltaRequest {
                region_id: &config.region_id,
                version,
                zone_id: &config.zone_id,
            };
            let body = serde_json::to_vec(&request).map_err(|e| Error::Config(e.to_string()))?;
            match shared
                .failover
                .call::<DeltaReply>(SERVICES_DELTA, Bytes::from(body))
                .await
            {
                Ok(reply) => {
                    count(&shared.stats.deltas, 1);
                    let mut reloads = Vec::new();
                    {
                        let mut cache = shared.cache();
                        for change in reply.delta.unwrap_or_default().into_values().flatten() {
                            reloads.extend(cache.apply(change, Source::Delta));
                        }
                        cache.set_version(reply.version);
                        reloads.extend(cache.missing());
                    }
                    reloads.sort();
                    reloads.dedup();
                    return self.fetch(reloads).await;
                }
                Err(Error::Server {
                    code: ErrorCode::DataNotFound,
                    ..
                }) => {
                    count(&shared.stats.stale_deltas, 1);
                }
                Err(e) => return Err(e),
            }
        }
        let body = serde_json::to_vec(&ZoneRequest {
            region_id: &config.region_id,
            zone_id: &config.zone_id,
        })
        .map_err(|e| Error::Config(e.to_string()))?;
        let reply: ServicesReply = shared.failover.call(SERVICES, Bytes::from(body)).await?;
        count(&shared.stats.full_fetches, 1);
        let mut all: HashMap<String, Service> = reply
            .services
            .unwrap_or_default()
            .into_iter()
            .map(|service| (service.service_id.to_lowercase(), service))
            .collect();
        let mut cache = shared.cache();
        for service_id in cache.ids() {
            let service = match all.remove(&service_id.to_lowercase()) {
                Some(mut service) => {
                    service.service_id = service_id;
                    service
                }
                None => Service::empty(&service_id),
            };
            cache.put(service, false);
        }
        cache.set_version(reply.version);
        Ok(())
    }

    /// Looks `service_ids` up again and keeps what differs.
    async fn fetch(&mut self, service_ids: Vec<String>) -> Result<(), Error> {
        if service_ids.is_empty() {
            return Ok(());
        }
        let services = self.shared.lookup(&service_ids).await?;
        let mut cache = self.shared.cache();
        for service in services {
            cache.put(service, false);
        }
        Ok(())
    }
}
