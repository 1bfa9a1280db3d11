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
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Execute, Executor, Transaction};
use sqlx_core::Either;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::Config;
use crate::time::Clock;

/// A connection store functions run their statements on: a write transaction (see [`Tx`]) or
/// a pooled connection for reads. Queries run on `&mut Conn` as on any sqlx connection.
pub enum Conn {
    /// A transaction on a pooled connection (PostgreSQL's writes).
    Tx(Transaction<'static, Any>),
    /// A pooled connection outside a transaction.
    Pooled(PoolConnection<Any>),
    /// SQLite's one write connection, held for a transaction.
    Sqlite(OwnedMutexGuard<direct::Writer>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Tx(_) => "Conn::Tx",
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
            Conn::Tx(t) => t.backend_name(),
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
            Conn::Tx(t) => (&mut **t).fetch_many(query),
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
            Conn::Tx(t) => (&mut **t).fetch_optional(query),
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
            Conn::Tx(t) => (&mut **t).prepare_with(sql, parameters),
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
            Conn::Tx(t) => (&mut **t).describe(sql),
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
    /// Commits: durable once this returns.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        match self.conn.take() {
            Some(Conn::Tx(t)) => t.commit().await,
            Some(Conn::Sqlite(w)) => {
                let done = w.batch("COMMIT");
                if done.is_err() && w.in_transaction() {
                    let _ = w.batch("ROLLBACK");
                }
                done
            }
            Some(Conn::Pooled(_)) | None => Ok(()),
        }
    }

    /// Rolls back now (dropping the transaction does too).
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        match self.conn.take() {
            Some(Conn::Tx(t)) => t.rollback().await,
            Some(Conn::Sqlite(w)) => w.batch("ROLLBACK"),
            Some(Conn::Pooled(_)) | None => Ok(()),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // A transaction neither committed nor rolled back (an error, a client gone): on SQLite
        // undone here, before the write connection passes to the next writer; sqlx rolls back
        // its own.
        if let Some(Conn::Sqlite(w)) = &self.conn
            && w.in_transaction()
        {
            let _ = w.batch("ROLLBACK");
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
    /// How long a writer waits for SQLite's write connection.
    acquire: Duration,
    backend: Backend,
    clock: Clock,
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
                acquire,
                backend: Backend::Postgres,
                clock: Clock::default(),
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
            Ok(Self {
                read,
                write,
                writer: Some(Arc::new(Mutex::new(writer))),
                acquire,
                backend: Backend::Sqlite,
                clock: Clock::default(),
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
        let conn = match &self.writer {
            Some(writer) => {
                let w = tokio::time::timeout(self.acquire, writer.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                if w.in_transaction() {
                    // Not expected (every transaction ends on commit, rollback or drop), and
                    // never inherited.
                    w.batch("ROLLBACK")?;
                }
                w.batch("BEGIN IMMEDIATE")?;
                Conn::Sqlite(w)
            }
            None => Conn::Tx(self.write.begin().await?),
        };
        Ok(Tx { conn: Some(conn) })
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
