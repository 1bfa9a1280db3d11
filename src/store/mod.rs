//! The database: one code path on sqlx's `Any` driver for SQLite and PostgreSQL.
//!
//! Why `Any` rather than one crate per backend behind a trait: every statement Omnirail runs is
//! portable SQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so one copy of each query
//! serves both databases; where the dialects truly differ (how a write transaction begins,
//! row locking, announcements, statements PostgreSQL runs as one), [`dialect`] says how. Values crossing the
//! driver are plain: ids and JSON as text, times as integer milliseconds since the epoch (UTC),
//! flags as integers. Conversion to richer types happens at the edge of each `store.rs`.
//!
//! SQLite allows one writer at a time. Rather than let concurrent writers fail with
//! `SQLITE_BUSY`, each process writes through exactly one connection, opening each transaction
//! with `BEGIN IMMEDIATE`; that connection is held by Omnirail itself and runs statements on the
//! request's own thread ([`direct`]), the same sqlx queries answered in the same `Any` rows.
//! Reads use a pool of their own and run concurrently (WAL). On PostgreSQL reads and writes
//! share one pool. Store functions take a [`Conn`], whichever it is.

pub mod dialect;
pub mod direct;
pub mod known;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Execute, Executor, Row, Transaction};
use sqlx_core::Either;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::Config;
use crate::time::Clock;

/// A connection store functions run their statements on: a write transaction (see [`Tx`]) or
/// a pooled connection for reads. Queries run on `&mut Conn` as on any sqlx connection.
pub enum Conn {
    /// A transaction on a pooled connection (PostgreSQL's writes), with what is to run once
    /// it commits.
    Tx(Transaction<'static, Any>, Vec<direct::Hook>),
    /// A pooled connection outside a transaction.
    Pooled(PoolConnection<Any>),
    /// SQLite's one write connection, held for a transaction.
    Sqlite(OwnedMutexGuard<direct::Writer>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Tx(..) => "Conn::Tx",
            Conn::Pooled(_) => "Conn::Pooled",
            Conn::Sqlite(_) => "Conn::Sqlite",
        })
    }
}

impl Conn {
    /// The backend the connection talks to.
    pub fn backend(&self) -> Backend {
        let name = match self {
            Conn::Sqlite(_) => return Backend::Sqlite,
            Conn::Tx(t, _) => t.backend_name(),
            Conn::Pooled(c) => c.backend_name(),
        };
        if name == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Runs `query` on SQLite's write connection.
fn run_direct<'q, E: Execute<'q, Any>>(
    writer: &mut direct::Writer,
    mut query: E,
    first_row_only: bool,
) -> Result<Vec<direct::Step>, sqlx::Error> {
    let args = query.take_arguments().map_err(sqlx::Error::Encode)?;
    let sql = query.sql();
    let values = args.map(|a| a.values.0).unwrap_or_default();
    writer.run(sql.as_str(), &values, first_row_only)
}

impl<'c> Executor<'c> for &'c mut Conn {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Tx(t, _) => (&mut **t).fetch_many(query),
            Conn::Pooled(c) => (&mut **c).fetch_many(query),
            Conn::Sqlite(w) => match run_direct(w, query, false) {
                Ok(steps) => futures::stream::iter(steps.into_iter().map(Ok)).boxed(),
                Err(e) => futures::stream::once(std::future::ready(Err(e))).boxed(),
            },
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Conn::Tx(t, _) => (&mut **t).fetch_optional(query),
            Conn::Pooled(c) => (&mut **c).fetch_optional(query),
            Conn::Sqlite(w) => {
                let first = run_direct(w, query, true)
                    .map(|steps| steps.into_iter().find_map(|s| s.right()));
                std::future::ready(first).boxed()
            }
        }
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::any::AnyTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::any::AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Tx(t, _) => (&mut **t).prepare_with(sql, parameters),
            Conn::Pooled(c) => (&mut **c).prepare_with(sql, parameters),
            Conn::Sqlite(_) => std::future::ready(Err(unsupported("prepare"))).boxed(),
        }
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx_core::describe::Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Tx(t, _) => (&mut **t).describe(sql),
            Conn::Pooled(c) => (&mut **c).describe(sql),
            Conn::Sqlite(_) => std::future::ready(Err(unsupported("describe"))).boxed(),
        }
    }
}

fn unsupported(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "{what} is not offered on the SQLite write connection"
    ))
}

/// A write transaction, rolled back unless [`Tx::commit`]ted. Dereferences to its [`Conn`].
pub struct Tx {
    conn: Option<Conn>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("conn", &self.conn).finish()
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("an open transaction")
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("an open transaction")
    }
}

impl Tx {
    /// Commits: durable once this returns. On SQLite, while other writers wait for the write
    /// connection, the changes join theirs and all commit together (one fsync); this returns
    /// when that commit has happened.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let started = std::time::Instant::now();
        let done = self.commit_now().await;
        metrics::histogram!("omnirail_db_commit_seconds").record(started.elapsed().as_secs_f64());
        done
    }

    async fn commit_now(mut self) -> Result<(), sqlx::Error> {
        match self.conn.take() {
            Some(Conn::Tx(t, hooks)) => {
                t.commit().await?;
                for hook in hooks {
                    hook();
                }
                Ok(())
            }
            Some(Conn::Sqlite(mut w)) => {
                let done = match w.release() {
                    Ok(done) => done,
                    Err(e) => {
                        hand_over(w);
                        return Err(e);
                    }
                };
                if w.waiting() == 0 {
                    return w.close().map_err(direct::outcome_error);
                }
                hand_over(w);
                wait_for(done).await
            }
            Some(Conn::Pooled(_)) | None => Ok(()),
        }
    }

    /// Undoes this transaction's own changes, then waits until what other writers wrote before
    /// it is committed. On SQLite a transaction sees the changes of the earlier writers of its
    /// batch before they are committed, and only its own connection does: a row it found there
    /// (another request's answer under the same idempotency key, say) is visible to readers,
    /// and durable, once this returns. On PostgreSQL, whose transactions see only committed
    /// rows, this is [`Tx::rollback`].
    pub async fn rollback_after_others(mut self) -> Result<(), sqlx::Error> {
        match self.conn.take() {
            Some(Conn::Sqlite(mut w)) => {
                w.rollback();
                let end = w.batch_end();
                hand_over(w);
                match end {
                    Some(end) => wait_for(end).await,
                    None => Ok(()),
                }
            }
            Some(Conn::Tx(t, _)) => t.rollback().await,
            Some(Conn::Pooled(_)) | None => Ok(()),
        }
    }

    /// Rolls back now (dropping the transaction does too).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        match self.conn.take() {
            Some(Conn::Tx(t, _)) => t.rollback().await,
            Some(Conn::Sqlite(mut w)) => {
                undo(&mut w);
                hand_over(w);
                Ok(())
            }
            Some(Conn::Pooled(_)) | None => Ok(()),
        }
    }
}

impl Conn {
    /// Runs `hook` once this transaction's changes are committed (on SQLite, after the shared
    /// commit), never if they are undone; at once outside a transaction.
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        match self {
            Conn::Sqlite(w) => w.after_commit(Box::new(hook)),
            Conn::Tx(_, hooks) => hooks.push(Box::new(hook)),
            Conn::Pooled(_) => hook(),
        }
    }
}

tokio::task_local! {
    /// The SQLite batches a writer of the current call gave up in while earlier writers'
    /// changes were in them (see [`settled`]).
    static UNSETTLED: std::cell::RefCell<Vec<tokio::sync::watch::Receiver<Option<direct::Outcome>>>>;
}

/// Runs `work` (one API call) and, before answering, waits until every SQLite batch in which
/// one of its writers rolled back has ended. A writer sees the changes earlier writers of its
/// batch released before they are committed, and only its own connection does: a writer that
/// fails or gives up because of them (a duplicate found, a state already changed) would
/// otherwise answer before that change is committed, and a client acting on the answer (a 409
/// `already exists`, then a read) would not find it. A committed writer already answers after
/// its batch's commit; PostgreSQL's transactions see only committed rows. Outside `settled`
/// (workers, the CLI) nothing waits.
pub async fn settled<F: std::future::Future>(work: F) -> F::Output {
    let (output, pending) = UNSETTLED
        .scope(std::cell::RefCell::default(), async {
            let output = work.await;
            (output, UNSETTLED.with(|u| u.take()))
        })
        .await;
    for end in pending {
        // How the batch ended is its own writers' to report; this call only waits.
        let _ = wait_for(end).await;
    }
    output
}

/// Undoes the writer's own changes; within [`settled`], makes the call wait for its batch when
/// earlier writers' changes are in it.
fn undo(w: &mut direct::Writer) {
    w.rollback();
    if let Some(end) = w.others_pending() {
        let _ = UNSETTLED.try_with(|u| u.borrow_mut().push(end));
    }
}

/// Lets the write connection go with its batch open for the writers waiting, making sure a
/// task is queued behind them to close the batch; closes it now when nobody waits.
fn hand_over(mut w: OwnedMutexGuard<direct::Writer>) {
    if w.batch_id().is_none() {
        return;
    }
    if w.waiting() == 0 {
        let _ = w.close();
        return;
    }
    let Some(id) = w.wants_closer() else {
        return;
    };
    let lock = OwnedMutexGuard::mutex(&w).clone();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(w);
            runtime.spawn(async move {
                let mut w = lock.lock_owned().await;
                if w.batch_id() == Some(id) {
                    let _ = w.close();
                }
            });
        }
        Err(_) => {
            let _ = w.close();
        }
    }
}

/// Waits for the batch a writer released its changes into to end.
async fn wait_for(
    mut done: tokio::sync::watch::Receiver<Option<direct::Outcome>>,
) -> Result<(), sqlx::Error> {
    match done.wait_for(Option::is_some).await {
        Ok(outcome) => match outcome.clone() {
            Some(Ok(())) => Ok(()),
            Some(Err(failure)) => Err(direct::outcome_error(failure)),
            None => Err(sqlx::Error::WorkerCrashed),
        },
        Err(_) => Err(sqlx::Error::WorkerCrashed),
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // A transaction neither committed nor rolled back (an error, a client gone): on SQLite
        // its own changes are undone here, before the write connection passes on; sqlx rolls
        // back its own.
        if let Some(Conn::Sqlite(mut w)) = self.conn.take() {
            undo(&mut w);
            hand_over(w);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handles to the database for reads and for writes, and the clock its records are stamped
/// and judged by.
#[derive(Clone, Debug)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    /// SQLite's write connection (migrations alone use `write` there).
    writer: Option<Arc<Mutex<direct::Writer>>>,
    /// How many writers wait for it.
    waiting: Arc<AtomicUsize>,
    /// How long a writer waits for SQLite's write connection.
    acquire: Duration,
    backend: Backend,
    clock: Clock,
    /// Write transactions begun through this handle and its clones, for the test that an idle
    /// node writes nothing.
    writes: Arc<std::sync::atomic::AtomicU64>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects (creating the SQLite file if needed) without migrating.
    pub async fn connect(config: &Config) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let url = config.database_url.expose();
        let acquire = Duration::from_secs(config.db_acquire_timeout_secs);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = AnyConnectOptions::from_str(url)?;
            // One connection first, so that an unreachable or missing database says why at
            // once, rather than as a pool timeout after `db_acquire_timeout_secs`.
            let first = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options).await?;
            sqlx::Connection::close(first).await?;
            let pool = AnyPoolOptions::new()
                .max_connections(config.db_max_connections)
                .acquire_timeout(acquire)
                .connect_with(options)
                .await?;
            Ok(Self {
                read: pool.clone(),
                write: pool,
                writer: None,
                waiting: Arc::default(),
                acquire,
                backend: Backend::Postgres,
                clock: Clock::default(),
                writes: Arc::default(),
            })
        } else if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            let options = AnyConnectOptions::from_str(&url)?;
            let write = sqlite_pool(1, acquire)
                .connect_with(options.clone())
                .await?;
            let read = sqlite_pool(config.db_max_connections, acquire)
                .connect_with(options)
                .await?;
            // The file exists now (the pools created it): the write connection opens it too.
            let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?;
            let writer = direct::Writer::open(file.get_filename())?;
            let waiting = writer.waiting.clone();
            Ok(Self {
                read,
                write,
                writer: Some(Arc::new(Mutex::new(writer))),
                waiting,
                acquire,
                backend: Backend::Sqlite,
                clock: Clock::default(),
                writes: Arc::default(),
            })
        } else {
            Err(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres://".into(),
            ))
        }
    }

    /// Connects and brings the schema up to date.
    pub async fn open(config: &Config) -> Result<Self, sqlx::Error> {
        let db = Self::connect(config).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Brings the schema up to date; returns the migrations it applied (`0011
    /// sessions keyed by tenant`), none when it was up to date.
    pub async fn migrate(&self) -> Result<Vec<String>, sqlx::Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let before = self.applied_migrations().await;
        migrator.run(&self.write).await?;
        Ok(migrator
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| format!("{:04} {}", m.version, m.description))
            .collect())
    }

    /// The versions of the migrations the database has (none before the first).
    async fn applied_migrations(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.write)
            .await
            .unwrap_or_default()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This handle (and its clones) going by `clock` instead of the system's own: for tests
    /// that move time forward.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock every time written to or compared with the database comes from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Milliseconds since the Unix epoch, now, by [`Db::clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// How many write transactions have begun through this handle and its clones.
    pub fn writes_begun(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Each pool's name, connections open, and connections idle (`/metrics`).
    pub fn pool_use(&self) -> [(&'static str, u32, u32); 2] {
        let idle = |pool: &AnyPool| u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        [
            ("read", self.read.size(), idle(&self.read)),
            ("write", self.write.size(), idle(&self.write)),
        ]
    }

    /// Pool for reads outside a transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// A pooled connection for reads, as a [`Conn`] store functions take.
    pub async fn read_conn(&self) -> Result<Conn, sqlx::Error> {
        Ok(Conn::Pooled(self.read.acquire().await?))
    }

    /// Opens a write transaction; waits up to `db_acquire_timeout_secs` for a connection.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let conn = match &self.writer {
            Some(writer) => {
                let waiting = Waiting::new(&self.waiting);
                let mut w = tokio::time::timeout(self.acquire, writer.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                drop(waiting);
                if let Err(e) = w.begin() {
                    hand_over(w);
                    return Err(e);
                }
                Conn::Sqlite(w)
            }
            None => Conn::Tx(self.write.begin().await?, Vec::new()),
        };
        Ok(Tx { conn: Some(conn) })
    }

    /// On SQLite, moves WAL checkpoints off the write connection for as long as `stop` stays
    /// false: the writer stops checkpointing as it commits, and this task checkpoints from a
    /// reading connection (`PASSIVE`: it never waits for, nor blocks, the writer or readers)
    /// whenever batches were committed since its last look, every `CHECKPOINT_EVERY`. An idle
    /// process checkpoints nothing. A passive checkpoint never lets the log start over while
    /// writes keep coming, so once the log holds `RESTART_AFTER_FRAMES`, the task asks the
    /// writer to restart it after its next commit: the WAL stays bounded (about the threshold
    /// plus what is written between two looks) and commits write over its existing blocks.
    /// Returns at once on PostgreSQL.
    pub async fn checkpoint(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(writer) = &self.writer else {
            return;
        };
        let (committed, restart) = {
            let w = writer.lock().await;
            if let Err(e) = w.stop_checkpointing() {
                // Not a failure: the writer checkpoints as it commits, as before.
                tracing::warn!(error = %e, "the writer keeps checkpointing");
                drop(w);
                let _ = stop.wait_for(|stopping| *stopping).await;
                return;
            }
            (w.committed.clone(), w.restart.clone())
        };
        let mut seen = committed.load(Ordering::Relaxed);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                _ = stop.changed() => break,
            }
            let now = committed.load(Ordering::Relaxed);
            if now == seen {
                continue;
            }
            seen = now;
            self.checkpoint_pass(&restart, RESTART_AFTER_FRAMES).await;
        }
        // Stopping: the writer checkpoints again as it commits.
        let w = writer.lock().await;
        let _ = w.resume_checkpointing();
    }

    /// One look of the checkpointer: copies what it can of the WAL into the database file
    /// without waiting for anyone, then asks the writer to restart the log (`restart`) if the
    /// log holds `restart_after` frames or more.
    async fn checkpoint_pass(&self, restart: &AtomicBool, restart_after: i64) {
        // `PRAGMA wal_checkpoint` answers (busy, frames in the log, frames copied).
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.read)
            .await
        {
            Ok(row) => {
                let frames: i64 = row.try_get(1).unwrap_or(0);
                if frames >= restart_after {
                    restart.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How often the checkpointer looks for committed batches.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// How long the WAL may grow (in 4 KiB frames: 16 MiB) before the writer is asked to bring
/// it back to its start (`direct::Writer::restart_log`).
const RESTART_AFTER_FRAMES: i64 = 4096;

/// Counts a writer waiting for SQLite's write connection while it is alive.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn sqlite_pool(max: u32, acquire: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL makes every commit durable;
                // busy_timeout covers other processes (admin commands) holding the lock.
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 5000",
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
}

/// Why the database at `url` could not be opened, in the operator's terms: its host and port
/// (or file) and the cause, without the driver's internals.
pub fn connect_error(url: &crate::config::DatabaseUrl, e: &sqlx::Error) -> String {
    let cause = match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::PoolTimedOut => "no connection within db_acquire_timeout_secs".to_owned(),
        other => other.to_string(),
    };
    let raw = url.expose();
    match url::Url::parse(raw) {
        Ok(u) if u.scheme().starts_with("postgres") => format!(
            "cannot connect to PostgreSQL at {}:{} (database {}): {cause}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            u.path().trim_start_matches('/'),
        ),
        _ => format!("cannot open the database {url}: {cause}"),
    }
}

#[cfg(test)]
mod tests {
    //! SQLite's shared commit: what one writer does in a batch is its own, and every batch ends.

    use std::time::Instant;

    use super::*;

    async fn sqlite() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(crate::ids::new_id("omnirail-batch-"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            database_url: crate::config::DatabaseUrl(format!(
                "sqlite://{}",
                dir.join("t.db").display()
            )),
            ..Config::default()
        };
        let db = Db::connect(&config).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (db, dir)
    }

    async fn insert(tx: &mut Tx, id: &str) {
        sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind(id)
            .execute(&mut **tx)
            .await
            .unwrap();
    }

    async fn ids(db: &Db) -> Vec<String> {
        sqlx::query_scalar("SELECT id FROM t ORDER BY id")
            .fetch_all(db.reader())
            .await
            .unwrap()
    }

    /// Waits (with a generous bound) until `n` writers wait for the write connection.
    async fn until_waiting(db: &Db, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.waiting.load(Ordering::SeqCst) != n {
            assert!(Instant::now() < deadline, "never {n} writers waiting");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_when_every_checkpoint_is_overtaken_by_a_commit() {
        let (db, dir) = sqlite().await;
        let wal = dir.join("t.db-wal");
        let restart = db.writer.as_ref().unwrap().lock().await.restart.clone();
        // Each batch writes a few dozen pages, and the checkpointer looks while it is open, so
        // a commit it has not copied always follows its look, which is how a steady load looks
        // to it. Without the writer's restart the log grows past 4 MiB here; with a restart
        // asked after 64 frames it stays within 64 frames and a batch or so.
        const RESTART_AFTER: i64 = 64;
        let page = "x".repeat(4000);
        let mut largest = 0;
        for i in 0..400 {
            let mut tx = db.begin().await.unwrap();
            for j in 0..8 {
                insert(&mut tx, &format!("{i:04}-{j}-{page}")).await;
            }
            db.checkpoint_pass(&restart, RESTART_AFTER).await;
            tx.commit().await.unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        assert_eq!(ids(&db).await.len(), 400 * 8, "every batch committed");
        let bound = (RESTART_AFTER as u64 + 4 * 24) * (4096 + 24);
        assert!(
            largest <= bound,
            "the WAL grew to {largest} bytes (bound {bound})"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Starts a writer that inserts `id` and commits, and returns once it waits for the write
    /// connection behind those already waiting.
    async fn queue_writer(db: &Db, id: &'static str) -> tokio::task::JoinHandle<()> {
        let ahead = db.waiting.load(Ordering::SeqCst);
        let writer = tokio::spawn({
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.unwrap();
                insert(&mut tx, id).await;
                tx.commit().await.unwrap();
            }
        });
        until_waiting(db, ahead + 1).await;
        writer
    }

    #[tokio::test]
    async fn a_writer_that_fails_in_a_batch_undoes_only_its_own_changes() {
        let (db, dir) = sqlite().await;
        let mut a = db.begin().await.unwrap();
        insert(&mut a, "a").await;
        let a_hook = Arc::new(AtomicBool::new(false));
        let seen = a_hook.clone();
        a.after_commit(move || seen.store(true, Ordering::SeqCst));
        // B waits for the connection while A holds it: A's commit leaves the batch open for B.
        let b_hook = Arc::new(AtomicBool::new(false));
        let b = tokio::spawn({
            let (db, seen) = (db.clone(), b_hook.clone());
            async move {
                let mut b = db.begin().await.unwrap();
                // A's changes, released into the batch, are visible to B.
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE id = 'a'")
                    .fetch_one(&mut *b)
                    .await
                    .unwrap();
                insert(&mut b, "b").await;
                b.after_commit(move || seen.store(true, Ordering::SeqCst));
                drop(b); // fails: its changes go, A's stay
                n
            }
        });
        until_waiting(&db, 1).await;
        a.commit().await.unwrap();
        assert_eq!(b.await.unwrap(), 1);
        assert_eq!(ids(&db).await, ["a"]);
        assert!(
            a_hook.load(Ordering::SeqCst),
            "A's hook ran after the commit"
        );
        assert!(!b_hook.load(Ordering::SeqCst), "B's hook never runs");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_writer_that_defers_to_an_earlier_writers_row_answers_once_it_is_committed() {
        let (db, dir) = sqlite().await;
        let committed = db.writer.as_ref().unwrap().lock().await.committed.clone();
        let mut a = db.begin().await.unwrap();
        insert(&mut a, "a").await;
        // B will find A's row in the batch, undo its own changes and defer to A's.
        let b = tokio::spawn({
            let db = db.clone();
            async move {
                let mut b = db.begin().await.unwrap();
                let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE id = 'a'")
                    .fetch_one(&mut *b)
                    .await
                    .unwrap();
                insert(&mut b, "b").await;
                let before = committed.load(Ordering::SeqCst);
                b.rollback_after_others().await.unwrap();
                assert!(
                    committed.load(Ordering::SeqCst) > before,
                    "the batch holding A's row was committed before B answers"
                );
                // What a request answers from here on, read as every connection reads.
                (found, ids(&db).await)
            }
        });
        until_waiting(&db, 1).await;
        // C comes after B, so that the batch is still open when B gives its changes up.
        let c = queue_writer(&db, "c").await;
        a.commit().await.unwrap();
        c.await.unwrap();
        let (found, seen) = b.await.unwrap();
        assert_eq!(found, 1, "B saw A's uncommitted row");
        assert_eq!(
            seen,
            ["a", "c"],
            "B answers once A's row is committed, without its own"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_call_whose_writer_fails_on_an_earlier_writers_row_answers_once_it_is_committed() {
        let (db, dir) = sqlite().await;
        let committed = db.writer.as_ref().unwrap().lock().await.committed.clone();
        let mut a = db.begin().await.unwrap();
        insert(&mut a, "a").await;
        // B, one API call, tries to insert the id A just inserted: a duplicate it sees in the
        // batch before A's row is committed. It fails, and its call answers.
        let b = tokio::spawn({
            let (db, committed) = (db.clone(), committed.clone());
            async move {
                let call = settled(async {
                    let mut b = db.begin().await.unwrap();
                    let duplicate = sqlx::query("INSERT INTO t (id) VALUES ('a')")
                        .execute(&mut *b)
                        .await
                        .is_err();
                    let before = committed.load(Ordering::SeqCst);
                    drop(b);
                    (duplicate, before)
                });
                let (duplicate, before) = call.await;
                // Read as soon as B's call has answered.
                (duplicate, before, committed.load(Ordering::SeqCst))
            }
        });
        until_waiting(&db, 1).await;
        // C comes after B, so that the batch is still open when B gives up.
        let c = queue_writer(&db, "c").await;
        a.commit().await.unwrap();
        let (duplicate, before, after) = b.await.unwrap();
        assert!(duplicate, "B's insert met A's uncommitted row");
        assert!(
            after > before,
            "B's call answered before the batch holding A's row was committed"
        );
        c.await.unwrap();
        assert_eq!(ids(&db).await, ["a", "c"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_batch_whose_next_writer_gives_up_waiting_still_commits() {
        let (db, dir) = sqlite().await;
        let mut a = db.begin().await.unwrap();
        insert(&mut a, "a").await;
        let b = tokio::spawn({
            let db = db.clone();
            async move { db.begin().await.map(drop) }
        });
        until_waiting(&db, 1).await;
        let commit = tokio::spawn(a.commit());
        b.abort();
        tokio::time::timeout(Duration::from_secs(60), commit)
            .await
            .expect("the batch ended")
            .unwrap()
            .unwrap();
        assert_eq!(ids(&db).await, ["a"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_checkpointer_moves_committed_pages_into_the_database_file_and_hands_back() {
        let (db, dir) = sqlite().await;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let db = db.clone();
            async move { db.checkpoint(stopping).await }
        });
        let autocheckpoint = |db: Db| async move {
            let mut tx = db.begin().await.unwrap();
            let n: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            n
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while autocheckpoint(db.clone()).await != 0 {
            assert!(Instant::now() < deadline, "the writer kept checkpointing");
            tokio::task::yield_now().await;
        }
        // 1 MiB committed: in the WAL (256 pages, under the writer's own threshold of 1,000),
        // then in the database file once the checkpointer has run.
        let file = dir.join("t.db");
        let before = std::fs::metadata(&file).unwrap().len();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("CREATE TABLE blobs (b BLOB)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO blobs (b) VALUES (zeroblob(1048576))")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        while std::fs::metadata(&file).unwrap().len() < before + 1_048_576 {
            assert!(Instant::now() < deadline, "never checkpointed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(
            autocheckpoint(db.clone()).await,
            1000,
            "handed back on stop"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn concurrent_writers_each_commit_exactly_their_rows() {
        let (db, dir) = sqlite().await;
        let writers: Vec<_> = (0..40)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut tx = db.begin().await.unwrap();
                    insert(&mut tx, &format!("w{i:02}")).await;
                    if i % 4 == 3 {
                        return false; // dropped: rolled back
                    }
                    tx.commit().await.unwrap();
                    true
                })
            })
            .collect();
        let mut expected = Vec::new();
        for (i, w) in writers.into_iter().enumerate() {
            if w.await.unwrap() {
                expected.push(format!("w{i:02}"));
            }
        }
        assert_eq!(ids(&db).await, expected);
        // Nothing is left holding SQLite's write lock: another connection can write at once.
        let other = rusqlite::Connection::open(dir.join("t.db")).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        other
            .execute("INSERT INTO t (id) VALUES ('x')", [])
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
