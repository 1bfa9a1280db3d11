//! SQL for SLA policies. Every statement is scoped by tenant.

use sqlx::{Any, Executor};

use crate::error::StoreError;
use crate::store::Conn;

/// A tenant's stored policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub at_risk_percent: i64,
    pub approval_reminder_hours: i64,
    /// JSON, as the API takes it; `NULL`: wall-clock time.
    pub calendar: Option<String>,
    /// JSON: the escalation rules.
    pub escalations: String,
    pub updated_at: i64,
}

pub async fn get_policy<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    tenant: &str,
) -> Result<Option<PolicyRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT at_risk_percent, approval_reminder_hours, calendar, escalations, updated_at
         FROM sla_policies WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(ex)
    .await?)
}

/// Stores the tenant's policy; `true` if it had none before.
pub async fn put_policy(conn: &mut Conn, tenant: &str, p: &PolicyRow) -> Result<bool, StoreError> {
    let before: Option<i64> =
        sqlx::query_scalar("SELECT updated_at FROM sla_policies WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO sla_policies (tenant_id, at_risk_percent, approval_reminder_hours, calendar,
             escalations, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id) DO UPDATE SET at_risk_percent = excluded.at_risk_percent,
             approval_reminder_hours = excluded.approval_reminder_hours,
             calendar = excluded.calendar, escalations = excluded.escalations,
             updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(p.at_risk_percent)
    .bind(p.approval_reminder_hours)
    .bind(&p.calendar)
    .bind(&p.escalations)
    .bind(p.updated_at)
    .execute(conn)
    .await?;
    Ok(before.is_none())
}
