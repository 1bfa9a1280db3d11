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
//! `SQLITE_BUSY`, each process sends its writes through a pool of exactly one connection,
//! opening them with `BEGIN IMMEDIATE`; reads use a separate pool and run concurrently (WAL).
//! On PostgreSQL reads and writes share one pool.

pub mod dialect;
pub mod known;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

use crate::config::Config;
use crate::time::Clock;

/// A write transaction, open until `commit`.
pub type Tx = Transaction<'static, Any>;

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
            Ok(Self {
                read,
                write,
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

    /// Opens a write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.write.begin().await,
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
