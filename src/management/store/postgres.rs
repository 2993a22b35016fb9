//! The shared store: a PostgreSQL database that the nodes of a cluster all read and write, so
//! that a pull-out or a route rule made on one node holds on every node.
//!
//! The store connects when first needed and, after a connection error, again on the next call;
//! it never retries within a call, so while the database is down each call fails quickly with
//! [`StoreError::Unavailable`] (a connection attempt gives up after [`CONNECT_TIMEOUT`]). The
//! first connection brings the schema up to date under an advisory lock, so nodes starting
//! together migrate one after the other. Each committed change is announced with `NOTIFY` on
//! [`CHANNEL`], in its own transaction; a [`PgWatcher`] on each node listens for it.

use std::error::Error as _;
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{ToSql, Type};
use ::postgres::{Client, Config, NoTls, Transaction};

use super::schema;
use super::sql::{Access, Backend, Db, Value};
use super::{StoreError, Watcher};

/// How long a connection attempt waits, unless the URL says otherwise (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The channel on which each committed change is announced.
const CHANNEL: &str = "artemis_management";
/// The advisory lock that migrations take: any number, the same on every node.
const MIGRATION_LOCK: i64 = 0x6172_7465_6d69_7301;
/// A watcher's first wait before reconnecting after a failed attempt; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A management store in a PostgreSQL database.
pub(super) struct PostgresStore {
    config: Config,
    client: Option<Client>,
}

impl PostgresStore {
    /// A store for the database at `url`, connected and migrated if the database is up now; if
    /// it is not, the first call that finds it up does both.
    pub(super) fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Failed(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut store = PostgresStore {
            config,
            client: None,
        };
        match store.client() {
            Ok(_) | Err(StoreError::Unavailable(_)) => Ok(store),
            Err(e) => Err(e),
        }
    }

    /// The connection, made and the schema migrated if there is none.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                let mut client = connect(&self.config)?;
                migrate(&mut client)?;
                client
            }
        };
        Ok(self.client.insert(client))
    }

    fn run<T>(
        &mut self,
        access: Access,
        work: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut transaction = self.client()?.transaction().map_err(error)?;
        let done = work(&mut PgDb(&mut transaction))?;
        if access == Access::Write {
            transaction
                .batch_execute(&format!("NOTIFY {CHANNEL}"))
                .map_err(error)?;
        }
        transaction.commit().map_err(error)?;
        Ok(done)
    }
}

impl Backend for PostgresStore {
    fn transaction<T>(
        &mut self,
        access: Access,
        work: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let done = self.run(access, work);
        if let Err(StoreError::Unavailable(_)) = done {
            self.client = None;
        }
        done
    }

    fn watch(&self) -> Option<Box<dyn Watcher>> {
        Some(Box::new(PgWatcher {
            config: self.config.clone(),
            client: None,
            backoff: FIRST_BACKOFF,
            retry_at: Instant::now(),
        }))
    }
}

fn connect(config: &Config) -> Result<Client, StoreError> {
    config.connect(NoTls).map_err(error)
}

/// Brings the schema up to date, one node at a time.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut transaction = client.transaction().map_err(error)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(error)?;
    schema::migrate(&mut PgDb(&mut transaction), schema::POSTGRES_ID)?;
    transaction.commit().map_err(error)
}

/// A PostgreSQL transaction as the store logic sees it.
struct PgDb<'a, 'b>(&'a mut Transaction<'b>);

static NULL_INT: Option<i64> = None;
static NULL_BOOL: Option<bool> = None;
static NULL_TEXT: Option<String> = None;

impl PgDb<'_, '_> {
    /// The statement, prepared, and its parameters: a NULL typed as the parameter wants.
    fn prepare<'v>(
        &mut self,
        sql: &str,
        params: &'v [Value],
    ) -> Result<(::postgres::Statement, Vec<&'v (dyn ToSql + Sync)>), StoreError> {
        let statement = self.0.prepare(sql).map_err(error)?;
        if statement.params().len() != params.len() {
            return Err(StoreError::Failed(format!(
                "a statement has {} parameters but was given {}: {sql}",
                statement.params().len(),
                params.len()
            )));
        }
        let params = statement.params().iter().zip(params);
        let params = params.map(|(ty, value)| -> &(dyn ToSql + Sync) {
            match value {
                Value::Int(n) => n,
                Value::Text(text) => text,
                Value::Bool(b) => b,
                Value::Null if *ty == Type::INT8 => &NULL_INT,
                Value::Null if *ty == Type::BOOL => &NULL_BOOL,
                Value::Null => &NULL_TEXT,
            }
        });
        let params = params.collect();
        Ok((statement, params))
    }
}

impl Db for PgDb<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let (statement, params) = self.prepare(sql, params)?;
        self.0.execute(&statement, &params).map_err(error)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let (statement, params) = self.prepare(sql, params)?;
        let rows = self.0.query(&statement, &params).map_err(error)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect()
    }
}

fn cell(row: &::postgres::Row, i: usize) -> Result<Value, StoreError> {
    let ty = row.columns().get(i).map(|column| column.type_().clone());
    let value = match ty {
        Some(Type::INT8) => row.try_get::<_, Option<i64>>(i).map(|n| n.map(Value::Int)),
        Some(Type::INT4) => row
            .try_get::<_, Option<i32>>(i)
            .map(|n| n.map(|n| Value::Int(i64::from(n)))),
        Some(Type::BOOL) => row
            .try_get::<_, Option<bool>>(i)
            .map(|b| b.map(Value::Bool)),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|s| s.map(Value::Text)),
    };
    Ok(value.map_err(error)?.unwrap_or(Value::Null))
}

/// A broken rule of the data (a unique key, a missing group) is the caller's; a lost or
/// refused connection, or a server shutting down, is the database being unavailable; anything
/// else is the database's.
fn error(e: ::postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        return match db.code().code().get(..2) {
            Some("23") => StoreError::Invalid(db.message().to_owned()),
            Some("08" | "53" | "57") => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Failed(e.to_string()),
        };
    }
    let io = e
        .source()
        .is_some_and(|source| source.is::<std::io::Error>());
    if e.is_closed() || io {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(e.to_string())
    }
}

/// Listens on its own connection for the changes any node commits.
///
/// It connects on its first wait, and again after its connection is lost: the loss is
/// reported once as `Err`; failed attempts to reconnect after it wait out a back-off (doubling
/// up to [`MAX_BACKOFF`]) and report no change. A wait that (re)connects reports a change,
/// `Ok(true)`, since one may have been missed while it was not listening.
pub(super) struct PgWatcher {
    config: Config,
    client: Option<Client>,
    backoff: Duration,
    retry_at: Instant,
}

impl PgWatcher {
    fn reconnect(&mut self, wait: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        if now < self.retry_at {
            std::thread::sleep((self.retry_at - now).min(wait));
            return Ok(false);
        }
        let listening = connect(&self.config).and_then(|mut client| {
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(error)?;
            Ok(client)
        });
        match listening {
            Ok(client) => {
                self.client = Some(client);
                self.backoff = FIRST_BACKOFF;
                Ok(true)
            }
            Err(_) => {
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Ok(false)
            }
        }
    }

    fn lost(&mut self, why: String) -> Result<bool, StoreError> {
        self.client = None;
        self.retry_at = Instant::now();
        Err(StoreError::Unavailable(format!(
            "lost the connection listening for management changes: {why}"
        )))
    }
}

impl Watcher for PgWatcher {
    fn wait(&mut self, wait: Duration) -> Result<bool, StoreError> {
        let Some(client) = self.client.as_mut() else {
            return self.reconnect(wait);
        };
        let started = Instant::now();
        let notice = client.notifications().timeout_iter(wait).next();
        match notice {
            Ok(Some(_)) => {
                // Several changes are one reload: take every notice already here.
                let pending = client.notifications().iter().count();
                pending.map_or_else(|e| self.lost(e.to_string()), |_| Ok(true))
            }
            // Before the time is up, no notice means the connection ended; check it.
            Ok(None) if started.elapsed() < wait => match client.is_valid(CONNECT_TIMEOUT) {
                Ok(()) => Ok(false),
                Err(e) => self.lost(e.to_string()),
            },
            Ok(None) => Ok(false),
            Err(e) => self.lost(e.to_string()),
        }
    }
}
