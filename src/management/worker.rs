//! The management thread: the only code that touches the store, and the way its state reaches
//! the shards.
//!
//! Database calls block, so they run here, on a thread of their own, never on a shard core.
//! Commands arrive from the cores over a channel and are done one at a time. After a committed
//! write (or a notice that another node wrote, or the periodic reload that catches a missed
//! notice) the thread loads the whole management state, builds the shards' view of it once, and
//! hands it to every core; a write is answered only when every core has applied it. While the
//! store cannot be reached, the cores keep the last state they were given, and the thread tries
//! again with back-off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use artemis_shards::management::{ManagementData, ManagementView};
use flume::{Receiver, RecvTimeoutError, Sender};

use super::store::{self, Store, StoreError, StoreLocation, Watcher};
use super::{Command, Management};
use crate::clock::now_ms;
use crate::shard_link::ShardLink;

/// Longest wait for every core to apply a new state before a write is answered anyway.
const APPLY_WAIT: Duration = Duration::from_secs(5);
/// Back-off between attempts to reach a store that failed, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// How long the watcher waits for a notice before checking whether the node still runs.
const WATCH_WAIT: Duration = Duration::from_secs(1);

/// Where the store is and how often it is reloaded in full.
#[derive(Clone, Debug)]
pub(crate) struct ManagementSettings {
    pub location: StoreLocation,
    /// The safety net for a missed change notice from another node.
    pub reload_every: Duration,
}

/// A new state for one core's shard, and where to say it is applied.
struct Publish {
    view: Arc<ManagementView>,
    applied: Sender<()>,
}

/// One core's end of the management thread's state updates.
pub(crate) struct Applier {
    views: Receiver<Publish>,
}

impl Applier {
    /// Applies every state the management thread hands out to this core's shard, as it comes
    /// (changes to push included), until the thread stops.
    pub(crate) async fn serve(self, link: &ShardLink) {
        while let Ok(publish) = self.views.recv_async().await {
            link.with_local(|shard| shard.apply_management(publish.view, now_ms()));
            // The thread may have stopped waiting; nothing is lost if it has.
            let _ = publish.applied.send(());
        }
    }
}

/// Opens the store and starts the management thread for a node of `cores` cores. Fails when
/// the store cannot be opened at all (an unusable data directory, a schema newer than this
/// server); an unreachable PostgreSQL is not a failure: the node starts and keeps trying.
pub(crate) fn spawn(
    settings: ManagementSettings,
    cores: usize,
) -> Result<(Management, Vec<Applier>), StoreError> {
    let store = store::open(&settings.location)?;
    let (commands, inbox) = flume::unbounded();
    let (senders, appliers): (Vec<_>, Vec<_>) = (0..cores)
        .map(|_| {
            let (send, views) = flume::unbounded();
            (send, Applier { views })
        })
        .unzip();
    let loaded = Arc::new(AtomicBool::new(false));
    if let Some(watcher) = store.watcher() {
        let notices = commands.clone();
        thread::Builder::new()
            .name("artemis-mgmt-watch".into())
            .spawn(move || watch(watcher, notices))
            .map_err(|e| StoreError::Failed(format!("cannot start the watcher thread: {e}")))?;
    }
    let worker = Worker {
        store,
        cores: senders,
        loaded: loaded.clone(),
        data: None,
        healthy: Ok(()),
        reload_every: settings.reload_every,
    };
    thread::Builder::new()
        .name("artemis-mgmt".into())
        .spawn(move || worker.run(inbox))
        .map_err(|e| StoreError::Failed(format!("cannot start the management thread: {e}")))?;
    Ok((Management { commands, loaded }, appliers))
}

/// Turns another node's change notices into reloads; ends with the node.
fn watch(mut watcher: Box<dyn Watcher>, notices: Sender<Command>) {
    loop {
        let notice = match watcher.wait(WATCH_WAIT) {
            Ok(false) => continue,
            Ok(true) => Command::Reload,
            Err(e) => {
                log::warn!("management store watcher: {e}; reloading");
                Command::Reload
            }
        };
        if notices.send(notice).is_err() {
            return;
        }
    }
}

struct Worker {
    store: Box<dyn Store>,
    /// Each core's channel for new states.
    cores: Vec<Sender<Publish>>,
    loaded: Arc<AtomicBool>,
    /// The state the cores hold now.
    data: Option<Arc<ManagementData>>,
    /// Whether the last call to the store succeeded, and why not.
    healthy: Result<(), StoreError>,
    reload_every: Duration,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Command>) {
        let mut retry = RETRY_FIRST;
        let mut next_reload = Instant::now();
        loop {
            if Instant::now() >= next_reload {
                let reloaded = self.reload();
                if reloaded.is_ok() {
                    retry = RETRY_FIRST;
                    next_reload = Instant::now() + self.reload_every;
                } else {
                    next_reload = Instant::now() + retry;
                    retry = (retry * 2).min(RETRY_CAP);
                }
            }
            match inbox.recv_deadline(next_reload) {
                Ok(command) => self.serve(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn serve(&mut self, command: Command) {
        match command {
            Command::Write(change, reply) => {
                let written = self.checked(|store| store.apply(&change, now_ms()));
                // Reloaded even when the write failed: a broken connection shows here too.
                let reloaded = self.reload();
                let _ = reply.send(written.and(reloaded));
            }
            Command::Data(reply) => {
                let data = match (&self.healthy, &self.data) {
                    (Ok(()), Some(data)) => Ok(data.clone()),
                    (Err(e), _) => Err(e.clone()),
                    (Ok(()), None) => Err(StoreError::Unavailable("not loaded yet".into())),
                };
                let _ = reply.send(data);
            }
            Command::Logs(query, reply) => {
                let _ = reply.send(self.checked(|store| store.logs(&query)));
            }
            Command::Reload => {
                // A failure is remembered in `healthy` and retried on the next command or notice.
                let _ = self.reload();
            }
        }
    }

    /// Runs `call` on the store, remembering whether the store could be reached.
    fn checked<T>(
        &mut self,
        call: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = call(&mut *self.store);
        match &result {
            Err(e @ StoreError::Unavailable(_)) => {
                if self.healthy.is_ok() {
                    let kept = match self.data {
                        Some(_) => "discovery keeps the last management state",
                        None => "discovery waits for the first",
                    };
                    log::warn!("{e}; {kept}; retrying with back-off");
                }
                self.healthy = Err(e.clone());
            }
            _ => {
                if self.healthy.is_err() && self.data.is_some() {
                    log::info!("management store reachable again");
                }
                self.healthy = Ok(());
            }
        }
        result
    }

    /// Loads the whole state and, when it differs from what the cores hold, hands it to them.
    fn reload(&mut self) -> Result<(), StoreError> {
        let data = self.checked(|store| store.load())?;
        if self.data.as_deref() != Some(&data) {
            self.publish(&data);
            self.data = Some(Arc::new(data));
        }
        if !self.loaded.swap(true, Ordering::AcqRel) {
            log::info!("management state loaded; the node serves discovery");
        }
        Ok(())
    }

    /// Hands the view of `data` to every core and waits until each has applied it.
    fn publish(&self, data: &ManagementData) {
        let view = Arc::new(ManagementView::new(data));
        let (applied, acks) = flume::bounded(self.cores.len());
        let mut waiting = 0;
        for core in &self.cores {
            let publish = Publish {
                view: view.clone(),
                applied: applied.clone(),
            };
            waiting += usize::from(core.send(publish).is_ok());
        }
        let deadline = Instant::now() + APPLY_WAIT;
        for _ in 0..waiting {
            if acks.recv_deadline(deadline).is_err() {
                log::warn!("a core did not apply the management state within {APPLY_WAIT:?}");
                return;
            }
        }
    }
}
