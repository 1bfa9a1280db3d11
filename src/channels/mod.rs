//! Channel management by plan (seed 000): which channels a tenant's plan includes, which it has
//! switched on, and the gate every session operation passes.

pub mod model;
mod routes;

use std::collections::HashMap;

use crate::store::Conn;
use utoipa_axum::router::OpenApiRouter;

use self::model::Plan;
use crate::AppState;
use crate::channel::Channel;
use crate::error::{ApiError, ApiResult, StoreError};

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// The tenant's plan.
pub async fn plan(conn: &mut Conn, tenant: &str) -> Result<Plan, StoreError> {
    let plan: Option<String> = sqlx::query_scalar("SELECT plan FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_optional(conn)
        .await?;
    Ok(plan
        .as_deref()
        .and_then(Plan::parse)
        .unwrap_or(Plan::Enterprise))
}

/// Sets the tenant's plan; `false` if there is no such tenant.
pub async fn set_plan(conn: &mut Conn, tenant: &str, plan: Plan) -> Result<bool, StoreError> {
    let n = sqlx::query("UPDATE tenants SET plan = $2 WHERE id = $1")
        .bind(tenant)
        .bind(plan.as_str())
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The tenant's own on/off settings, by lower-case channel name.
async fn settings(conn: &mut Conn, tenant: &str) -> Result<HashMap<String, bool>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT channel, enabled FROM tenant_channels WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(c, e)| (c, e != 0)).collect())
}

async fn set(
    conn: &mut Conn,
    tenant: &str,
    channel: Channel,
    enabled: bool,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tenant_channels (tenant_id, channel, enabled, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET enabled = excluded.enabled,
             updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(channel.as_lower())
    .bind(i64::from(enabled))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn not_included() -> ApiError {
    ApiError::forbidden(
        "plan_not_included",
        "Omnichannel features are not included in the Starter plan",
    )
}

/// 403 `plan_not_included` unless the tenant's plan includes omnichannel features.
pub async fn require_omnichannel(conn: &mut Conn, tenant: &str) -> ApiResult<Plan> {
    let plan = plan(conn, tenant).await?;
    if plan.includes_omnichannel() {
        Ok(plan)
    } else {
        Err(not_included())
    }
}

/// 403 unless sessions may run on `channel`: `plan_not_included` on Starter, `channel_disabled`
/// when the channel is off (or outside the plan).
pub async fn require_enabled(conn: &mut Conn, tenant: &str, channel: Channel) -> ApiResult<()> {
    let plan = require_omnichannel(conn, tenant).await?;
    let setting = settings(conn, tenant)
        .await?
        .get(channel.as_lower())
        .copied();
    if plan.enabled(channel, setting) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "channel_disabled",
            format!(
                "Channel {} is not enabled for this tenant",
                channel.as_lower().to_ascii_uppercase()
            ),
        )
        .with("channel", channel.as_lower().to_ascii_uppercase()))
    }
}
