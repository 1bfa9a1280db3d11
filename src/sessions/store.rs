//! SQL for channel sessions and handoffs. Every statement is scoped by tenant.

use crate::store::Conn;
use sqlx::{Any, AnyPool, Executor};

use crate::error::StoreError;
use crate::store::dialect::RowLock;

/// A channel session row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub customer_id: String,
    /// Lower case.
    pub channel: String,
    pub device_id: String,
    pub context: String,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub handoff_id: Option<String>,
}

macro_rules! session_columns {
    () => {
        "id, customer_id, channel, device_id, context, started_at, last_seen_at, ended_at, \
         end_reason, handoff_id"
    };
}

pub async fn insert_session(
    conn: &mut Conn,
    tenant: &str,
    s: &SessionRow,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO channel_sessions (tenant_id, ",
        session_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)"
    ))
    .bind(tenant)
    .bind(&s.id)
    .bind(&s.customer_id)
    .bind(&s.channel)
    .bind(&s.device_id)
    .bind(&s.context)
    .bind(s.started_at)
    .bind(s.last_seen_at)
    .bind(&s.handoff_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_session<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    id: &str,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        session_columns!(),
        " FROM channel_sessions WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

/// The session, read under a lock on its row (on PostgreSQL; SQLite has one writer at a
/// time), so that a concurrent end and the caller's transaction do not cross.
pub async fn lock_session(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let lock = RowLock::Update.for_conn(conn);
    let sql = format!(
        "SELECT {} FROM channel_sessions WHERE tenant_id = $1 AND id = $2{lock}",
        session_columns!()
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Ends the session unless it already ended; `false` if it had.
pub async fn end_session(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE channel_sessions SET ended_at = $3, end_reason = $4
         WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records activity on a session.
pub async fn touch(conn: &mut Conn, tenant: &str, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE channel_sessions SET last_seen_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sessions not ended whose last activity is before `before`, across tenants: `(tenant, id)`.
pub async fn idle(
    pool: &AnyPool,
    before: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM channel_sessions
         WHERE ended_at IS NULL AND last_seen_at < $1 ORDER BY last_seen_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A handoff row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoffRow {
    pub id: String,
    pub source_session_id: String,
    pub customer_id: String,
    pub target_channel: String,
    pub context: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub target_session_id: Option<String>,
}

pub async fn insert_handoff(
    conn: &mut Conn,
    tenant: &str,
    token_hash: &str,
    h: &HandoffRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO handoffs (id, tenant_id, token_hash, source_session_id, customer_id,
             target_channel, context, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&h.id)
    .bind(tenant)
    .bind(token_hash)
    .bind(&h.source_session_id)
    .bind(&h.customer_id)
    .bind(&h.target_channel)
    .bind(&h.context)
    .bind(h.created_at)
    .bind(h.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn handoff_by_hash<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
    token_hash: &str,
) -> Result<Option<HandoffRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, source_session_id, customer_id, target_channel, context, created_at,
             expires_at, used_at, target_session_id
         FROM handoffs WHERE tenant_id = $1 AND token_hash = $2",
    )
    .bind(tenant)
    .bind(token_hash)
    .fetch_optional(ex)
    .await?)
}

/// Marks the handoff used by `target_session` if it is unused and unexpired at `now`, in one
/// statement: of concurrent resumes, exactly one gets `true`.
pub async fn claim_handoff(
    conn: &mut Conn,
    id: &str,
    now: i64,
    target_session: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE handoffs SET used_at = $2, target_session_id = $3
         WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .bind(target_session)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}
