//! SQL for customers. Every statement is scoped by tenant.

use crate::store::Conn;
use sqlx::AnyPool;

use crate::error::StoreError;

/// A customer row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notification_channel: Option<String>,
    pub preferred_language: Option<String>,
    /// JSON of `quiet_hours::QuietHours`.
    pub quiet_hours: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Creates the customer with only its id unless it is stored; `true` if it was already there.
pub async fn insert_if_missing(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO customers (tenant_id, id, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_none())
}

/// Creates or replaces the customer; `true` if it was new.
pub async fn put(conn: &mut Conn, tenant: &str, c: &CustomerRow) -> Result<bool, StoreError> {
    let existed: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM customers WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&c.id)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO customers (tenant_id, id, name, email, phone, notification_channel,
             preferred_language, quiet_hours, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, email = excluded.email,
             phone = excluded.phone, notification_channel = excluded.notification_channel,
             preferred_language = excluded.preferred_language,
             quiet_hours = excluded.quiet_hours, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.notification_channel)
    .bind(&c.preferred_language)
    .bind(&c.quiet_hours)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(existed.is_none())
}

pub async fn get(
    pool: &AnyPool,
    tenant: &str,
    id: &str,
) -> Result<Option<CustomerRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, email, phone, notification_channel, preferred_language, quiet_hours,
             created_at, updated_at
         FROM customers WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A customer's sessions per channel, read from the sessions' table for the customer's
/// profile: `(channel, sessions, last activity in ms)`.
pub async fn channel_activity(
    conn: &mut Conn,
    tenant: &str,
    customer: &str,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT channel, COUNT(*), MAX(last_seen_at) FROM channel_sessions
         WHERE tenant_id = $1 AND customer_id = $2 GROUP BY channel ORDER BY channel",
    )
    .bind(tenant)
    .bind(customer)
    .fetch_all(conn)
    .await?)
}

/// The customer a journey belongs to, or `None` if the tenant has no such journey: for the
/// capabilities that refer to journeys (approvals) without depending on them.
pub async fn of_journey(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT customer_id FROM journeys WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}
