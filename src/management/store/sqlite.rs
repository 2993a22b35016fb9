//! The default store: an embedded SQLite database, `management.db` in the node's data
//! directory, for a node that keeps its management data to itself.
//!
//! Write-ahead logging with `synchronous = FULL`: a change is acknowledged only once it is on
//! disk. Foreign keys are enforced (SQLite leaves them off unless asked), so that deleting a
//! group or route rule deletes what hangs off it, as PostgreSQL does.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql, TransactionBehavior};

use super::schema;
use super::sql::{Access, Backend, Db, Value};
use super::{StoreError, Watcher};

/// How long a statement waits for another process's lock on the file before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A management store in a SQLite file.
pub(super) struct SqliteStore {
    connection: Connection,
}

impl SqliteStore {
    /// Opens (or creates, with its directory) `<data_dir>/management.db` and brings its schema
    /// up to date.
    pub(super) fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Failed(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let connection = Connection::open(data_dir.join("management.db")).map_err(error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Failed(format!(
                "SQLite refused write-ahead logging (journal mode {mode})"
            )));
        }
        connection
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(error)?;
        let mut store = SqliteStore { connection };
        store.transaction(Access::Write, |db| schema::migrate(db, schema::SQLITE_ID))?;
        Ok(store)
    }
}

impl Backend for SqliteStore {
    fn transaction<T>(
        &mut self,
        access: Access,
        work: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A write takes the lock up front, so that it never fails halfway on another's lock.
        let behavior = match access {
            Access::Read => TransactionBehavior::Deferred,
            Access::Write => TransactionBehavior::Immediate,
        };
        let transaction = self
            .connection
            .transaction_with_behavior(behavior)
            .map_err(error)?;
        let done = work(&mut SqliteDb(&transaction))?;
        transaction.commit().map_err(error)?;
        Ok(done)
    }

    fn watch(&self) -> Option<Box<dyn Watcher>> {
        None
    }
}

/// A SQLite transaction as the store logic sees it.
struct SqliteDb<'a>(&'a Connection);

impl SqliteDb<'_> {
    /// The statement, cached, with `params[i]` bound to `$(i + 1)`. SQLite numbers `$N`
    /// parameters by first appearance, not by `N`, so each is bound by its name.
    fn prepare(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut statement = self.0.prepare_cached(sql).map_err(error)?;
        if statement.parameter_count() != params.len() {
            return Err(StoreError::Failed(format!(
                "a statement has {} parameters but was given {}: {sql}",
                statement.parameter_count(),
                params.len()
            )));
        }
        for (i, param) in params.iter().enumerate() {
            let name = format!("${}", i + 1);
            let index = statement
                .parameter_index(&name)
                .map_err(error)?
                .ok_or_else(|| StoreError::Failed(format!("a statement lacks {name}: {sql}")))?;
            statement.raw_bind_parameter(index, param).map_err(error)?;
        }
        Ok(statement)
    }
}

impl Db for SqliteDb<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let changed = self.prepare(sql, params)?.raw_execute().map_err(error)?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let mut statement = self.prepare(sql, params)?;
        let width = statement.column_count();
        let mut rows = statement.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let cells = (0..width).map(|i| match row.get_ref(i).map_err(error)? {
                ValueRef::Null => Ok(Value::Null),
                ValueRef::Integer(n) => Ok(Value::Int(n)),
                ValueRef::Text(text) => Ok(Value::Text(String::from_utf8_lossy(text).into_owned())),
                other => Err(StoreError::Failed(format!(
                    "unexpected SQLite value {other:?}"
                ))),
            });
            all.push(cells.collect::<Result<_, _>>()?);
        }
        Ok(all)
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        })
    }
}

/// A rule of the data broken (a unique key, a missing group) is the caller's; anything else
/// is the database's.
fn error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(e.to_string()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Failed(e.to_string()),
    }
}
