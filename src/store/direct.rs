//! SQLite's write connection, run on the caller's own thread.
//!
//! sqlx's SQLite driver runs each connection on a worker thread of its own and hands every
//! statement across to it and its answer back: two thread wake-ups per statement, which on a
//! loaded machine cost far more than SQLite takes to run one (`docs/decisions.md`, "The write
//! path"). SQLite has one writer at a time anyway, so Omnirail holds its one write connection
//! itself (rusqlite, over the same SQLite library sqlx links) behind an async lock, and runs
//! each statement of a write transaction where the request already runs.
//!
//! The statements stay sqlx queries, written once for both databases: [`Writer::run`] takes a
//! query's SQL and its arguments as sqlx's `Any` driver holds them and answers with `Any` rows,
//! so a store function cannot tell this connection from a pooled one. It binds and reads values
//! as sqlx's SQLite driver does for `Any`: `$n` (or `?n`) names the n-th argument in every
//! statement of a command, a bare `?` the next one; integers read as 64-bit, reals as doubles.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::any::{AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx_core::Either;
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use tokio::sync::watch;

/// The process's one SQLite write connection.
pub struct Writer {
    conn: rusqlite::Connection,
    /// The statements of each multi-statement command met so far, split once.
    commands: HashMap<String, Arc<[String]>>,
    /// The column names of each statement met so far, as its rows carry them.
    columns: HashMap<String, Columns>,
    /// The transaction writers share (group commit), while open.
    batch: Option<Batch>,
    batches: u64,
    /// What the current writer asked to run once its work is committed.
    hooks: Vec<Hook>,
    /// How many writers wait for this connection (counted by `Db::begin`).
    pub(super) waiting: Arc<AtomicUsize>,
    /// How many batches it has committed: a checkpointer looks here to know there is work.
    pub(super) committed: Arc<AtomicU64>,
    /// Set by the checkpointer when the WAL has grown past `Db::checkpoint`'s bound: the
    /// writer then brings the log back to its start after its next commit (`restart_log`).
    pub(super) restart: Arc<AtomicBool>,
}

/// How long the writer waits for readers still reading the WAL when it restarts the log: a
/// moment, never the 5 s other waits get. Busy readers only put the restart off to the next
/// batch.
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// How long a statement waits for another process's lock (admin commands).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Work to run once a writer's changes are committed.
pub type Hook = Box<dyn FnOnce() + Send>;

/// How a batch ended: committed, or SQLite's code and message.
pub type Outcome = Result<(), (i32, String)>;

/// One transaction on the write connection, shared by the writers that follow one another
/// while it is open, each inside a savepoint of its own; one commit (one fsync) for all.
struct Batch {
    id: u64,
    /// Writers whose changes are in and who wait for the commit.
    released: usize,
    /// Whether a task is queued for the connection to close this batch.
    closer: bool,
    done: watch::Sender<Option<Outcome>>,
    hooks: Vec<Hook>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// A statement's column names, in order and by name.
type Columns = (Arc<[UStr]>, Arc<sqlx_core::HashMap<UStr, usize>>);

/// One statement's output: rows, then what it changed.
pub type Step = Either<AnyQueryResult, AnyRow>;

impl Writer {
    /// Opens the database file at `path` with the pragmas of every Omnirail connection.
    pub fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let conn = rusqlite::Connection::open(path).map_err(into_sqlx)?;
        // As the pooled connections: WAL, every commit durable, foreign keys enforced, and a
        // wait for other processes (admin commands) that hold the lock. Then what a writer's
        // savepoint keeps to undo it (the sub-journal) in memory rather than a temporary file,
        // a page cache of 16 MiB, for the pages every write touches (indexes, counters), and a
        // WAL file cut back to 64 MiB when the log restarts after a burst grew it further.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384; \
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(into_sqlx)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(into_sqlx)?;
        // Every distinct statement Omnirail writes with stays prepared.
        conn.set_prepared_statement_cache_capacity(512);
        Ok(Self {
            conn,
            commands: HashMap::new(),
            columns: HashMap::new(),
            batch: None,
            batches: 0,
            hooks: Vec::new(),
            waiting: Arc::new(AtomicUsize::new(0)),
            committed: Arc::new(AtomicU64::new(0)),
            restart: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Leaves WAL checkpoints to another connection (see `Db::checkpoint`): none while
    /// committing.
    pub fn stop_checkpointing(&self) -> Result<(), sqlx::Error> {
        self.plain("PRAGMA wal_autocheckpoint = 0")
    }

    /// Gives WAL checkpoints back to the write connection (SQLite's default, every 1,000 pages).
    pub fn resume_checkpointing(&self) -> Result<(), sqlx::Error> {
        self.plain("PRAGMA wal_autocheckpoint = 1000")
    }

    /// Runs statements without arguments.
    fn plain(&self, sql: &str) -> Result<(), sqlx::Error> {
        self.conn.execute_batch(sql).map_err(into_sqlx)
    }

    /// Runs one transaction-control statement (`SAVEPOINT writer`, `COMMIT`, ...), prepared
    /// once and kept: every writer runs two or more.
    fn control(&self, sql: &str) -> Result<(), sqlx::Error> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.raw_execute())
            .map(drop)
            .map_err(into_sqlx)
    }

    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// How many writers wait for the connection.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Starts a writer's transaction: a savepoint in the open batch, or in a new one.
    pub fn begin(&mut self) -> Result<(), sqlx::Error> {
        self.hooks.clear();
        if self.batch.is_some() && !self.in_transaction() {
            // SQLite rolled the batch back on its own (an I/O error, a full disk).
            let _ = self.close();
        }
        if self.batch.is_none() {
            if self.in_transaction() {
                self.plain("ROLLBACK")?;
            }
            self.control("BEGIN IMMEDIATE")?;
            self.batches += 1;
            self.batch = Some(Batch {
                id: self.batches,
                released: 0,
                closer: false,
                done: watch::channel(None).0,
                hooks: Vec::new(),
            });
        }
        self.control("SAVEPOINT writer")
    }

    /// Puts the writer's changes into the batch; answers what will tell how the batch ends.
    pub fn release(&mut self) -> Result<watch::Receiver<Option<Outcome>>, sqlx::Error> {
        if let Err(e) = self.control("RELEASE writer") {
            self.rollback();
            return Err(e);
        }
        let hooks = std::mem::take(&mut self.hooks);
        if !self.in_transaction() {
            // Not expected: the batch's transaction is gone; its writers hear so.
            let _ = self.close();
            return Err(lost());
        }
        let b = self.batch.as_mut().ok_or_else(lost)?;
        b.released += 1;
        b.hooks.extend(hooks);
        Ok(b.done.subscribe())
    }

    /// Undoes the writer's changes, and only them.
    pub fn rollback(&mut self) {
        self.hooks.clear();
        if self.in_transaction() {
            let _ = self.plain("ROLLBACK TO writer; RELEASE writer");
        }
    }

    /// Asks for `hook` to run once the current writer's changes are committed.
    pub fn after_commit(&mut self, hook: Hook) {
        self.hooks.push(hook);
    }

    /// What will tell how the open batch ends, if one is open.
    pub fn batch_end(&self) -> Option<watch::Receiver<Option<Outcome>>> {
        self.batch.as_ref().map(|b| b.done.subscribe())
    }

    /// What will tell how the open batch ends, if earlier writers released changes into it:
    /// changes the current writer could see before they are committed.
    pub fn others_pending(&self) -> Option<watch::Receiver<Option<Outcome>>> {
        self.batch
            .as_ref()
            .filter(|b| b.released > 0)
            .map(|b| b.done.subscribe())
    }

    /// The open batch's id.
    pub fn batch_id(&self) -> Option<u64> {
        self.batch.as_ref().map(|b| b.id)
    }

    /// The open batch's id, if no task is queued to close it yet (and one is now).
    pub fn wants_closer(&mut self) -> Option<u64> {
        let b = self.batch.as_mut()?;
        if b.closer {
            return None;
        }
        b.closer = true;
        Some(b.id)
    }

    /// Ends the open batch: commits what its writers released (one fsync), or rolls back a
    /// batch none released; tells its writers; runs their hooks once committed.
    pub fn close(&mut self) -> Outcome {
        let Some(b) = self.batch.take() else {
            return Ok(());
        };
        let outcome = if !self.in_transaction() {
            Err(failure(&lost()))
        } else if b.released == 0 {
            let _ = self.plain("ROLLBACK");
            Ok(())
        } else {
            match self.control("COMMIT") {
                Ok(()) => {
                    self.committed.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    if self.in_transaction() {
                        let _ = self.plain("ROLLBACK");
                    }
                    Err(failure(&e))
                }
            }
        };
        if outcome.is_ok() {
            for hook in b.hooks {
                hook();
            }
        }
        let _ = b.done.send(Some(outcome.clone()));
        if self.restart.load(Ordering::Relaxed) {
            self.restart_log();
        }
        outcome
    }

    /// Brings the WAL back to its start: copies the frames the checkpointer has not copied yet
    /// (those of the batches since its last pass) into the database file, then waits a moment
    /// for readers still reading older frames. Once none is, the next transaction writes the
    /// log from its start again, over the file's existing blocks. Without this the log never
    /// restarts under a steady load (every passive checkpoint is overtaken by new commits
    /// before a writer begins) and grows without bound, each commit extending the file.
    /// Called between batches, by the task that holds the connection: no writer is running.
    fn restart_log(&self) {
        let _ = self.conn.busy_timeout(RESTART_WAIT);
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
        match busy {
            Ok(0) => self.restart.store(false, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL restart failed; will retry"),
        }
    }

    /// Runs `sql` (one statement or several separated by `;`) with `args`; returns each
    /// statement's rows followed by its result. With `first_row_only`, only the first row comes back
    /// (a read stops there), but every statement of the command runs to its end.
    pub fn run(
        &mut self,
        sql: &str,
        args: &[AnyValueKind],
        first_row_only: bool,
    ) -> Result<Vec<Step>, sqlx::Error> {
        let statements = self.statements(sql)?;
        let mut out = Vec::new();
        let mut positional = 0;
        // With `first_row_only`, the first row of any statement; every statement still runs.
        let mut found = false;
        for text in statements.iter() {
            let mut stmt = self.conn.prepare_cached(text).map_err(into_sqlx)?;
            for i in 1..=stmt.parameter_count() {
                let n = match stmt.parameter_name(i) {
                    None => {
                        positional += 1;
                        positional
                    }
                    Some(name) => name
                        .strip_prefix(['$', '?'])
                        .and_then(|n| n.parse::<usize>().ok())
                        .ok_or_else(|| {
                            sqlx::Error::Protocol(format!("unsupported parameter {name}"))
                        })?,
                };
                let value = args.get(n.wrapping_sub(1)).ok_or_else(|| {
                    sqlx::Error::Protocol(format!(
                        "statement asks for argument {n}, {} given",
                        args.len()
                    ))
                })?;
                stmt.raw_bind_parameter(i, Arg(value)).map_err(into_sqlx)?;
            }
            let readonly = stmt.readonly();
            let (labels, names) = match self.columns.get(text.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let labels: Arc<[UStr]> = stmt
                        .column_names()
                        .into_iter()
                        .map(|name| UStr::from(name.to_owned()))
                        .collect();
                    let names: Arc<sqlx_core::HashMap<UStr, usize>> = Arc::new(
                        labels
                            .iter()
                            .enumerate()
                            .map(|(i, name)| (name.clone(), i))
                            .collect(),
                    );
                    self.columns
                        .insert(text.clone(), (labels.clone(), names.clone()));
                    (labels, names)
                }
            };
            let width = labels.len();
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(into_sqlx)? {
                if first_row_only && found {
                    // A row is in hand: a read stops here; a change runs to its end.
                    if readonly {
                        break;
                    }
                    continue;
                }
                let mut values = Vec::with_capacity(width);
                let mut columns = Vec::with_capacity(width);
                for (i, label) in labels.iter().enumerate() {
                    let kind = value_of(row.get_ref(i).map_err(into_sqlx)?)?;
                    columns.push(AnyColumn {
                        ordinal: i,
                        name: label.clone(),
                        type_info: AnyTypeInfo {
                            kind: kind_of(&kind),
                        },
                    });
                    values.push(AnyValue { kind });
                }
                out.push(Either::Right(AnyRow {
                    column_names: names.clone(),
                    columns,
                    values,
                }));
                found = true;
            }
            drop(rows);
            out.push(Either::Left(AnyQueryResult {
                rows_affected: if readonly { 0 } else { self.conn.changes() },
                last_insert_id: Some(self.conn.last_insert_rowid()),
            }));
        }
        Ok(out)
    }

    /// The statements of `sql`: itself when it is one, else split where SQLite says a
    /// statement is complete (once per command; the split is kept).
    fn statements(&mut self, sql: &str) -> Result<Arc<[String]>, sqlx::Error> {
        if let Some(split) = self.commands.get(sql) {
            return Ok(split.clone());
        }
        let split: Arc<[String]> = split_statements(sql)?.into();
        self.commands.insert(sql.to_owned(), split.clone());
        Ok(split)
    }
}

/// Splits `sql` into its statements: each ends at a `;` where SQLite's own
/// `sqlite3_complete` says the text so far is a whole statement (not inside a string, a
/// comment or a trigger's body).
fn split_statements(sql: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in sql.match_indices(';') {
        let piece = &sql[start..=i];
        let c = std::ffi::CString::new(piece)
            .map_err(|_| sqlx::Error::Protocol("a NUL byte in a statement".into()))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        if unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } != 0 {
            if !piece.trim().trim_end_matches(';').trim().is_empty() {
                out.push(piece.to_owned());
            }
            start = i + 1;
        }
    }
    if !sql[start..].trim().is_empty() {
        out.push(sql[start..].to_owned());
    }
    Ok(out)
}

/// An `Any` argument as SQLite binds it (as sqlx's SQLite driver maps it).
struct Arg<'a>(&'a AnyValueKind);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            AnyValueKind::Null(_) => ToSqlOutput::Owned(Value::Null),
            AnyValueKind::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            AnyValueKind::SmallInt(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
            AnyValueKind::Integer(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
            AnyValueKind::BigInt(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            AnyValueKind::Real(r) => ToSqlOutput::Owned(Value::Real(f64::from(*r))),
            AnyValueKind::Double(d) => ToSqlOutput::Owned(Value::Real(*d)),
            AnyValueKind::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            AnyValueKind::TextSlice(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            AnyValueKind::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("no SQLite value for {other:?}").into(),
                ));
            }
        })
    }
}

/// A column's value as sqlx's SQLite driver gives it to `Any`: by the value's own type.
fn value_of(v: ValueRef<'_>) -> Result<AnyValueKind, sqlx::Error> {
    Ok(match v {
        ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
        ValueRef::Integer(i) => AnyValueKind::BigInt(i),
        ValueRef::Real(f) => AnyValueKind::Double(f),
        ValueRef::Text(t) => AnyValueKind::Text(Arc::new(
            String::from_utf8(t.to_vec()).map_err(|e| sqlx::Error::Decode(e.into()))?,
        )),
        ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
    })
}

fn kind_of(v: &AnyValueKind) -> AnyTypeInfoKind {
    match v {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// The batch's transaction ended without a commit, under its writers.
fn lost() -> sqlx::Error {
    sqlx::Error::Database(Box::new(SqliteError {
        code: rusqlite::ffi::SQLITE_ABORT,
        message: "the write transaction was rolled back before it committed".into(),
    }))
}

/// An error as a batch's writers are told it.
fn failure(e: &sqlx::Error) -> (i32, String) {
    match e {
        sqlx::Error::Database(db) => (
            db.code()
                .and_then(|c| c.parse().ok())
                .unwrap_or(rusqlite::ffi::SQLITE_ERROR),
            db.message().to_owned(),
        ),
        other => (rusqlite::ffi::SQLITE_ERROR, other.to_string()),
    }
}

/// A batch's failure, as each of its writers reports it.
pub fn outcome_error((code, message): (i32, String)) -> sqlx::Error {
    sqlx::Error::Database(Box::new(SqliteError { code, message }))
}

/// A rusqlite error as sqlx reports SQLite's: a database error with SQLite's extended result
/// code as its code, so that the API maps it as it maps the pooled connections' (unique and
/// foreign-key violations, a busy database).
fn into_sqlx(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.unwrap_or_else(|| code.to_string());
            sqlx::Error::Database(Box::new(SqliteError {
                code: code.extended_code,
                message,
            }))
        }
        rusqlite::Error::ToSqlConversionFailure(e) => sqlx::Error::Encode(e),
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// An error SQLite returned, with its extended result code.
#[derive(Debug)]
struct SqliteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteError {}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_where_sqlite_says_a_statement_ends() {
        assert_eq!(
            split_statements("SELECT 1").unwrap(),
            vec!["SELECT 1".to_owned()]
        );
        assert_eq!(
            split_statements("INSERT INTO t VALUES ('a;b'); UPDATE t SET x = 1;").unwrap(),
            vec![
                "INSERT INTO t VALUES ('a;b');".to_owned(),
                " UPDATE t SET x = 1;".to_owned()
            ]
        );
    }

    #[test]
    fn arguments_are_named_by_number_across_statements_and_rows_read_as_any() {
        let dir = std::env::temp_dir().join(crate::ids::new_id("omnirail-direct-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Writer::open(&dir.join("t.db")).unwrap();
        w.plain("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, f REAL, b BLOB)")
            .unwrap();
        let args = [
            AnyValueKind::Text(Arc::new("a".into())),
            AnyValueKind::BigInt(7),
            AnyValueKind::Null(AnyTypeInfoKind::Null),
        ];
        let steps = w
            .run(
                "INSERT INTO t (id, n, f) VALUES ($1, $2, 1.5); \
                 UPDATE t SET n = n + $2, b = $3 WHERE id = $1 RETURNING id, n, f, b",
                &args,
                false,
            )
            .unwrap();
        let rows: Vec<&AnyRow> = steps.iter().filter_map(|s| s.as_ref().right()).collect();
        assert_eq!(rows.len(), 1);
        use sqlx::Row;
        assert_eq!(rows[0].get::<String, _>("id"), "a");
        assert_eq!(rows[0].get::<i64, _>("n"), 14);
        assert_eq!(rows[0].get::<f64, _>("f"), 1.5);
        assert_eq!(rows[0].get::<Option<Vec<u8>>, _>("b"), None);
        let changed: u64 = steps
            .iter()
            .filter_map(|s| s.as_ref().left())
            .map(|r| r.rows_affected)
            .sum();
        assert_eq!(changed, 2);
        // Asked for one row, a command still runs every statement.
        let steps = w
            .run(
                "SELECT id FROM t WHERE id = $1; UPDATE t SET n = 0 WHERE id = $1",
                &args[..1],
                true,
            )
            .unwrap();
        assert_eq!(steps.iter().filter(|s| s.is_right()).count(), 1);
        let n = w.run("SELECT n FROM t", &[], true).unwrap();
        assert_eq!(n[0].as_ref().right().unwrap().get::<i64, _>("n"), 0);
        let Err(dup) = w.run("INSERT INTO t (id) VALUES ($1)", &args[..1], false) else {
            panic!("a second row with the same key was inserted");
        };
        let db = dup.as_database_error().expect("a database error");
        assert_eq!(db.kind(), ErrorKind::UniqueViolation);
        assert_eq!(db.code().as_deref(), Some("1555"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
