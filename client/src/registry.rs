//! Keeping instances registered. [`RegistryClient::register`] registers them at once
//! (`register.json`) and adds them to the set a background task heartbeats every
//! `heartbeat_interval`, as text frames on `/ws/registry/heartbeat` (the instances as Java's
//! SDK sends them, serialized once per change of the set), over `heartbeat.json` on another node when the
//! WebSocket fails. A heartbeat that fails an instance with `data-not-found` (its lease expired,
//! the node restarted) or `unknown` registers it again, which is how instances come back after a
//! node is lost. [`RegistryClient::shutdown`] unregisters them; dropping the client instead
//! unregisters them in a spawned task, best effort.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::config::ClientConfig;
use crate::error::{Error, ErrorCode};
use crate::failover::Failover;
use crate::model::{FailedInstance, Instance, InstanceKey};
use crate::wire::{
    InstancesRequest, Outcome, RegistryReply, Reply, HEARTBEAT, REGISTER, UNREGISTER,
    UP_REGISTRY_NODES, WS_HEARTBEAT,
};
use crate::ws::{self, Socket};

/// Instances per request or heartbeat frame (the server takes up to 10 000).
const CHUNK: usize = 1000;

/// The longest wait before a failed heartbeat WebSocket is tried again (HTTP heartbeats go on
/// meanwhile).
const MAX_WS_PAUSE: Duration = Duration::from_secs(60);

/// Registers instances and keeps them registered until shut down or dropped.
pub struct RegistryClient {
    shared: Arc<Shared>,
    heartbeats: AbortHandle,
    shut_down: bool,
}

struct Shared {
    config: ClientConfig,
    failover: Failover,
    registered: Mutex<Registered>,
}

#[derive(Default)]
struct Registered {
    instances: BTreeMap<InstanceKey, Instance>,
    /// The heartbeat requests for `instances`, made again after a change.
    frames: Option<Arc<[Utf8Bytes]>>,
}

impl RegistryClient {
    /// A client for the registry `config` names, heartbeating in a task of the current tokio
    /// runtime ([`Error::NoRuntime`] outside one).
    pub fn new(config: ClientConfig) -> Result<RegistryClient, Error> {
        config.check()?;
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let shared = Arc::new(Shared {
            failover: Failover::new(&config, UP_REGISTRY_NODES),
            config,
            registered: Mutex::default(),
        });
        let heartbeats = runtime.spawn(heartbeat_loop(shared.clone())).abort_handle();
        Ok(RegistryClient {
            shared,
            heartbeats,
            shut_down: false,
        })
    }

    /// Registers `instances` (an instance already registered is replaced: this is how its data
    /// is updated) and heartbeats them from now on. Instances without a region or zone get the
    /// client's.
    ///
    /// Instances the server refuses are dropped and returned in [`Error::Rejected`]. When no
    /// node answers, the instances stay in the set: the heartbeats register them once a node
    /// does (call [`unregister`](Self::unregister) to give up on them).
    pub async fn register(
        &self,
        instances: impl IntoIterator<Item = Instance>,
    ) -> Result<(), Error> {
        let instances = self.prepare(instances)?;
        self.shared.change(|set| {
            for instance in &instances {
                set.insert(instance.key(), instance.clone());
            }
        });
        let failed = self.shared.post_instances(REGISTER, &instances).await?;
        if failed.is_empty() {
            return Ok(());
        }
        self.shared.change(|set| {
            for instance in failed.iter().filter_map(|f| f.instance.as_ref()) {
                set.remove(&instance.key());
            }
        });
        Err(Error::Rejected(failed))
    }

    /// Stops heartbeating `instances` and unregisters them (only their keys matter).
    pub async fn unregister(
        &self,
        instances: impl IntoIterator<Item = Instance>,
    ) -> Result<(), Error> {
        let instances = self.prepare(instances)?;
        self.shared.change(|set| {
            for instance in &instances {
                set.remove(&instance.key());
            }
        });
        let failed = self.shared.post_instances(UNREGISTER, &instances).await?;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(failed))
        }
    }

    /// The instances this client keeps registered.
    pub fn instances(&self) -> Vec<Instance> {
        self.shared
            .registered()
            .instances
            .values()
            .cloned()
            .collect()
    }

    /// Stops the heartbeats and unregisters every instance.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shut_down = true;
        self.heartbeats.abort();
        let all = self.shared.take_all();
        if all.is_empty() {
            return Ok(());
        }
        let failed = self.shared.post_instances(UNREGISTER, &all).await?;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(failed))
        }
    }

    /// Checks the fields the registry requires and fills in the client's region and zone.
    fn prepare(
        &self,
        instances: impl IntoIterator<Item = Instance>,
    ) -> Result<Vec<Instance>, Error> {
        let config = &self.shared.config;
        instances
            .into_iter()
            .map(|mut instance| {
                for (name, value) in [
                    ("serviceId", &instance.service_id),
                    ("instanceId", &instance.instance_id),
                    ("url", &instance.url),
                ] {
                    if value.trim().is_empty() {
                        return Err(Error::InvalidInstance(format!(
                            "{name} is blank in {}/{}",
                            instance.service_id, instance.instance_id
                        )));
                    }
                }
                if instance
                    .region_id
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty())
                {
                    instance.region_id = Some(config.region_id.clone());
                }
                if instance.zone_id.is_none() {
                    instance.zone_id = Some(config.zone_id.clone());
                }
                Ok(instance)
            })
            .collect()
    }
}

impl Drop for RegistryClient {
    /// Stops the heartbeats and, unless [`shutdown`](Self::shutdown) ran, unregisters the
    /// instances in a task of the current runtime, if there is one; never blocks.
    fn drop(&mut self) {
        self.heartbeats.abort();
        if self.shut_down {
            return;
        }
        let all = self.shared.take_all();
        if all.is_empty() {
            return;
        }
        if let Ok(runtime) = Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move {
                if let Err(e) = shared.post_instances(UNREGISTER, &all).await {
                    log::warn!("artemis-client: unregister on drop failed: {e}");
                }
            });
        }
    }
}

impl Shared {
    fn registered(&self) -> MutexGuard<'_, Registered> {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the registered set; its heartbeat frames are made again.
    fn change<T>(&self, f: impl FnOnce(&mut BTreeMap<InstanceKey, Instance>) -> T) -> T {
        let mut registered = self.registered();
        registered.frames = None;
        f(&mut registered.instances)
    }

    fn take_all(&self) -> Vec<Instance> {
        self.change(std::mem::take).into_values().collect()
    }

    /// The heartbeat frames of the registered instances (none when there is none).
    fn frames(&self) -> Arc<[Utf8Bytes]> {
        let mut registered = self.registered();
        if let Some(frames) = &registered.frames {
            return frames.clone();
        }
        let instances: Vec<Instance> = registered.instances.values().cloned().collect();
        let frames: Arc<[Utf8Bytes]> = instances
            .chunks(CHUNK)
            .map(|chunk| {
                let request = InstancesRequest { instances: chunk };
                Utf8Bytes::from(serde_json::to_string(&request).unwrap_or_default())
            })
            .collect();
        registered.frames = Some(frames.clone());
        frames
    }

    /// `register.json` or `unregister.json` for `instances`, in chunks; the failed instances.
    async fn post_instances(
        &self,
        path: &str,
        instances: &[Instance],
    ) -> Result<Vec<FailedInstance>, Error> {
        let mut failed = Vec::new();
        for chunk in instances.chunks(CHUNK) {
            let body = serde_json::to_vec(&InstancesRequest { instances: chunk })
                .map_err(|e| Error::InvalidInstance(e.to_string()))?;
            let reply: RegistryReply = self.failover.call(path, Bytes::from(body)).await?;
            failed.extend(reply.failed_instances.unwrap_or_default());
        }
        Ok(failed)
    }

    /// One round of heartbeats; an error asks for the next round sooner than the interval.
    async fn heartbeat(&self, session: &mut Session, frames: &[Utf8Bytes]) -> Result<(), Error> {
        for frame in frames {
            let reply = match session.heartbeat(self, frame).await {
                Ok(reply) => {
                    // A `fail` over the WebSocket (`rate-limited`): the round is tried again
                    // sooner, on the same session.
                    if let Some(Outcome::Failed(code, message)) =
                        reply.response_status().map(|s| s.outcome())
                    {
                        return Err(Error::Server { code, message });
                    }
                    reply
                }
                Err(e) => {
                    log::debug!("artemis-client: heartbeat over HTTP ({e})");
                    self.failover
                        .call::<RegistryReply>(HEARTBEAT, Bytes::from(frame.clone()))
                        .await?
                }
            };
            self.reregister(reply).await?;
        }
        Ok(())
    }

    /// Registers again the instances a heartbeat failed with `data-not-found` or `unknown`.
    async fn reregister(&self, reply: RegistryReply) -> Result<(), Error> {
        let failed = reply.failed_instances.unwrap_or_default();
        let again: Vec<Instance> = {
            let registered = self.registered();
            failed
                .iter()
                .filter(|f| matches!(f.code(), ErrorCode::DataNotFound | ErrorCode::Unknown))
                .filter_map(|f| f.instance.as_ref())
                .filter_map(|i| registered.instances.get(&i.key()).cloned())
                .collect()
        };
        for refused in failed
            .iter()
            .filter(|f| !matches!(f.code(), ErrorCode::DataNotFound | ErrorCode::Unknown))
        {
            log::warn!(
                "artemis-client: heartbeat refused: {} ({})",
                refused.error_message.as_deref().unwrap_or(""),
                refused.code()
            );
        }
        if again.is_empty() {
            return Ok(());
        }
        log::info!(
            "artemis-client: registering {} instance(s) again",
            again.len()
        );
        let still = self.post_instances(REGISTER, &again).await?;
        for refused in still {
            log::warn!(
                "artemis-client: register refused: {} ({})",
                refused.error_message.as_deref().unwrap_or(""),
                refused.code()
            );
        }
        Ok(())
    }
}

/// The heartbeat WebSocket, when there is one, and when to try for one again.
struct Session {
    socket: Option<(Socket, String)>,
    retry_at: Instant,
    pause: Duration,
}

impl Session {
    /// One frame over the WebSocket and its reply; an error (no session, a broken one, a node
    /// that cannot serve) means "over HTTP this time".
    async fn heartbeat(
        &mut self,
        shared: &Shared,
        frame: &Utf8Bytes,
    ) -> Result<RegistryReply, Error> {
        let config = &shared.config;
        if let Some((socket, node)) = &mut self.socket {
            // The server closes sessions after a while (Java: 6 min): reconnect at once.
            if ws::drain(socket, node).is_err() {
                self.socket = None;
            }
        }
        if self.socket.is_none() {
            if Instant::now() < self.retry_at {
                return Err(Error::Transport {
                    node: String::new(),
                    reason: "no heartbeat WebSocket".into(),
                });
            }
            shared.failover.refresh_if_due().await;
            let node = shared.failover.nodes().pick();
            match ws::connect(&node, WS_HEARTBEAT, config).await {
                Ok(socket) => {
                    self.pause = config.heartbeat_interval;
                    self.socket = Some((socket, node));
                }
                Err(e) => {
                    shared.failover.nodes().mark_down(&node);
                    self.retry_at = Instant::now() + self.pause;
                    self.pause = (self.pause * 2).min(MAX_WS_PAUSE);
                    return Err(e);
                }
            }
        }
        let Some((socket, node)) = &mut self.socket else {
            return Err(Error::Config("no heartbeat WebSocket".into()));
        };
        let node = node.clone();
        let exchange = async {
            tokio::time::timeout(
                config.request_timeout,
                socket.send(Message::Text(frame.clone())),
            )
            .await
            .map_err(|_| Error::Timeout {
                node: node.clone(),
                after: config.request_timeout,
            })?
            .map_err(|e| Error::Transport {
                node: node.clone(),
                reason: format!("WebSocket: {e}"),
            })?;
            let text = ws::next_text(socket, &node, config.request_timeout).await?;
            serde_json::from_str::<RegistryReply>(&text).map_err(|e| Error::Malformed {
                node: node.clone(),
                reason: e.to_string(),
            })
        };
        let reply = match exchange.await {
            Ok(reply) => reply,
            Err(e) => {
                self.socket = None;
                return Err(e);
            }
        };
        match reply.response_status().map(|s| s.outcome()) {
            Some(Outcome::Failed(code, message)) if code.is_service_down() => {
                shared.failover.nodes().mark_down(&node);
                self.socket = None;
                Err(Error::Server { code, message })
            }
            Some(_) => Ok(reply),
            None => {
                self.socket = None;
                Err(Error::Malformed {
                    node,
                    reason: "no responseStatus".into(),
                })
            }
        }
    }
}

/// Heartbeats the registered instances every interval; after a failed round, again sooner,
/// pausing longer each time up to the interval.
async fn heartbeat_loop(shared: Arc<Shared>) {
    let config = &shared.config;
    let interval = config.heartbeat_interval;
    let mut session = Session {
        socket: None,
        retry_at: Instant::now(),
        pause: interval,
    };
    let mut backoff = config.retry_interval;
    let mut next = Instant::now() + interval;
    loop {
        tokio::time::sleep_until(next).await;
        let frames = shared.frames();
        if frames.is_empty() {
            next = Instant::now() + interval;
            continue;
        }
        match shared.heartbeat(&mut session, &frames).await {
            Ok(()) => {
                backoff = config.retry_interval;
                next = Instant::now() + interval;
            }
            Err(e) => {
                log::warn!("artemis-client: heartbeat failed: {e}");
                next = Instant::now() + backoff;
                backoff = (backoff * 2).min(interval);
            }
        }
    }
}
