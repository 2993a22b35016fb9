//! Management: pull-outs, zones, groups, route rules, canaries and their logs, kept durable in a
//! store and applied to every shard.
//!
//! The store is never on a shard core's path. One management thread owns it (`worker`); a core
//! asks that thread through a [`Management`] handle and awaits the answer without blocking. A
//! write is answered only once it is committed and every shard has applied the resulting
//! management state, so the next discovery call on any connection of the node shows it.

pub(crate) mod store;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use artemis_shards::management::ManagementData;

pub(crate) use store::{Change, LogQuery, LogRow, StoreError};
pub(crate) use worker::{spawn, Applier, ManagementSettings};

/// What a core asks of the management thread.
enum Command {
    Write(Box<Change>, Reply<()>),
    Data(Reply<Arc<ManagementData>>),
    Logs(LogQuery, Reply<Vec<LogRow>>),
    /// Another node changed the shared store: load it again.
    Reload,
}

type Reply<T> = flume::Sender<Result<T, StoreError>>;

/// A core's way to the management thread.
#[derive(Clone)]
pub(crate) struct Management {
    commands: flume::Sender<Command>,
    loaded: Arc<AtomicBool>,
}

impl Management {
    /// Commits `change` and applies its result on every shard of the node.
    pub(crate) async fn write(&self, change: Change) -> Result<(), StoreError> {
        self.ask(|reply| Command::Write(Box::new(change), reply))
            .await
    }

    /// The management data as last loaded from the store; refused while the store is down.
    pub(crate) async fn data(&self) -> Result<Arc<ManagementData>, StoreError> {
        self.ask(Command::Data).await
    }

    /// Rows of one operation log, from the store.
    pub(crate) async fn logs(&self, query: LogQuery) -> Result<Vec<LogRow>, StoreError> {
        self.ask(|reply| Command::Logs(query, reply)).await
    }

    /// Whether every shard has applied the management state loaded at start (Java's
    /// `ManagementInitializer`): until then the node does not serve discovery.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// A handle with no management thread behind it, its state taken as loaded: for unit tests
    /// of endpoints that only need discovery to be served. Every store call is refused.
    #[cfg(test)]
    pub(crate) fn without_store() -> Management {
        let (commands, _) = flume::unbounded();
        Management {
            commands,
            loaded: Arc::new(AtomicBool::new(true)),
        }
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let stopped = || StoreError::Unavailable("the management thread has stopped".into());
        let (reply, answer) = flume::bounded(1);
        self.commands.send(command(reply)).map_err(|_| stopped())?;
        answer.recv_async().await.unwrap_or_else(|_| Err(stopped()))
    }
}
