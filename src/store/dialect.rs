//! Where SQLite and PostgreSQL differ, in one place. Every statement elsewhere is portable SQL
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`, integer times, text JSON); a capability that
//! needs one of these differences asks here instead of testing the backend itself.
//!
//! - Row locks ([`RowLock`]): PostgreSQL's concurrent writers lock the rows a decision rests
//!   on; SQLite has one writer at a time, which leaves nothing to lock, and no such clause.
//! - Announcements to the other processes ([`notify`]): PostgreSQL's `pg_notify`; on SQLite,
//!   whose processes share nothing but the file, there is no one to tell.
//! - Statements PostgreSQL runs as one where SQLite needs several (data-modifying CTEs,
//!   `UPDATE ... FROM (VALUES ...)`): the caller asks [`is_postgres`] and keeps both forms side
//!   by side (`events`, `webhooks::store`).
//! - How a write transaction begins: `Db::begin` (`BEGIN IMMEDIATE` on SQLite).

use super::{Backend, Conn};
use crate::error::StoreError;

/// Whether the connection is PostgreSQL's.
pub fn is_postgres(conn: &Conn) -> bool {
    conn.backend() == Backend::Postgres
}

/// A row lock a `SELECT` (or the subquery of an `UPDATE`) takes on PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLock {
    /// `FOR UPDATE`: the rows are about to change.
    Update,
    /// `FOR UPDATE SKIP LOCKED`: work claimed by one of several workers.
    UpdateSkipLocked,
    /// `FOR SHARE`: the rows a decision rests on, held until it commits.
    Share,
    /// `FOR KEY SHARE`: rows a new row's foreign key refers to.
    KeyShare,
}

impl RowLock {
    /// The clause to append (with its leading space) on `backend`; empty on SQLite.
    pub fn on(self, backend: Backend) -> &'static str {
        match (backend, self) {
            (Backend::Sqlite, _) => "",
            (Backend::Postgres, RowLock::Update) => " FOR UPDATE",
            (Backend::Postgres, RowLock::UpdateSkipLocked) => " FOR UPDATE SKIP LOCKED",
            (Backend::Postgres, RowLock::Share) => " FOR SHARE",
            (Backend::Postgres, RowLock::KeyShare) => " FOR KEY SHARE",
        }
    }

    /// [`RowLock::on`] the connection's backend.
    pub fn for_conn(self, conn: &Conn) -> &'static str {
        self.on(conn.backend())
    }
}

/// Tells the other processes on the database `payload` on `channel`, when the transaction
/// commits (PostgreSQL's `pg_notify`); nothing on SQLite.
pub async fn notify(conn: &mut Conn, channel: &str, payload: &str) -> Result<(), StoreError> {
    if is_postgres(conn) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// `rows` groups of `width` placeholders from `$first`: `($1, $2), ($3, $4)`; with width 1,
/// a plain list: `$1, $2`. Only placeholders go into a statement; every value is bound.
pub fn placeholders(first: usize, rows: usize, width: usize) -> String {
    let groups: Vec<String> = (0..rows)
        .map(|r| {
            let names: Vec<String> = (0..width)
                .map(|c| format!("${}", first + r * width + c))
                .collect();
            if width == 1 {
                names.concat()
            } else {
                format!("({})", names.join(", "))
            }
        })
        .collect();
    groups.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_lists() {
        assert_eq!(placeholders(3, 2, 1), "$3, $4");
        assert_eq!(placeholders(1, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 0, 2), "");
    }

    #[test]
    fn sqlite_takes_no_row_lock() {
        for lock in [
            RowLock::Update,
            RowLock::UpdateSkipLocked,
            RowLock::Share,
            RowLock::KeyShare,
        ] {
            assert_eq!(lock.on(Backend::Sqlite), "");
            assert!(lock.on(Backend::Postgres).starts_with(" FOR "));
        }
    }
}
