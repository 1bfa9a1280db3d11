//! Retention and erasure: how long a tenant keeps what Omnirail stores beside its record, the
//! sweep that deletes what has outlived that ([`sweep`]), and the erasure of a customer's
//! personal data ([`erasure`]).
//!
//! The record itself (events and their hash chains, journeys, approvals, delegations) is never
//! swept: it is the bank's account of what happened. What is swept is what serves delivery and
//! convenience: webhook messages and their attempts, notifications and their deliveries, ended
//! sessions and their handoffs, the documents of onboardings that ended.

pub mod erasure;
mod routes;
pub mod sweep;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{FieldError, StoreError};
use crate::store::Conn;

pub use routes::{customer_router, router};

/// Longest retention a tenant may set, in days (ten years).
pub const MAX_DAYS: i64 = 3650;
/// Webhook messages are kept this many days unless the tenant sets another period.
pub const DEFAULT_WEBHOOK_MESSAGES_DAYS: i64 = 30;

/// A tenant's retention periods, in days; `None`: kept until the tenant sets a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Periods {
    /// Webhook messages, with their attempts, once delivered or failed (never kept without
    /// bound: default 30).
    #[schema(minimum = 1, maximum = 3650, example = 30)]
    pub webhook_messages_days: i64,
    /// Notifications, with their deliveries, once none is pending; `null`: kept.
    #[schema(minimum = 1, maximum = 3650, example = 365)]
    pub notifications_days: Option<i64>,
    /// Channel sessions after they ended, with their handoffs; `null`: kept.
    #[schema(minimum = 1, maximum = 3650, example = 90)]
    pub ended_sessions_days: Option<i64>,
    /// The documents of onboardings that finished or expired (the files and their records);
    /// `null`: kept.
    #[schema(minimum = 1, maximum = 3650, example = 1825)]
    pub onboarding_documents_days: Option<i64>,
    /// Idempotency records: how long a retry replays its first answer, and how long the record
    /// is kept, in hours, 24 to 8760; `null`: the deployment's `idempotency_ttl_hours` (24).
    #[schema(minimum = 24, maximum = 8760, example = 72)]
    pub idempotency_hours: Option<i64>,
}

impl Default for Periods {
    fn default() -> Self {
        Self {
            webhook_messages_days: DEFAULT_WEBHOOK_MESSAGES_DAYS,
            notifications_days: None,
            ended_sessions_days: None,
            onboarding_documents_days: None,
            idempotency_hours: None,
        }
    }
}

/// Longest idempotency window a tenant may set, in hours (a year).
pub const MAX_IDEMPOTENCY_HOURS: i64 = 8760;

impl Periods {
    /// Every period out of range, each named.
    pub fn problems(&self) -> Vec<FieldError> {
        let rule = format!("must be a whole number of days from 1 to {MAX_DAYS}");
        [
            ("webhookMessagesDays", Some(self.webhook_messages_days)),
            ("notificationsDays", self.notifications_days),
            ("endedSessionsDays", self.ended_sessions_days),
            ("onboardingDocumentsDays", self.onboarding_documents_days),
        ]
        .into_iter()
        .filter(|(_, days)| days.is_some_and(|d| !(1..=MAX_DAYS).contains(&d)))
        .map(|(field, _)| FieldError::new(field, rule.clone()))
        .chain(
            self.idempotency_hours
                .filter(|h| !(24..=MAX_IDEMPOTENCY_HOURS).contains(h))
                .map(|_| {
                    FieldError::new(
                        "idempotencyHours",
                        format!(
                            "must be a whole number of hours from 24 to {MAX_IDEMPOTENCY_HOURS}"
                        ),
                    )
                }),
        )
        .collect()
    }
}

/// A tenant's stored periods.
#[derive(sqlx::FromRow)]
struct Stored {
    #[sqlx(flatten)]
    periods: Periods,
    updated_at: i64,
}

/// The tenant's periods and when they were set, if it set any.
pub async fn get(pool: &sqlx::AnyPool, tenant: &str) -> Result<Option<(Periods, i64)>, StoreError> {
    let row: Option<Stored> = sqlx::query_as(
        "SELECT webhook_messages_days, notifications_days, ended_sessions_days,
                onboarding_documents_days, idempotency_hours, updated_at
         FROM retention_policies WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.periods, r.updated_at)))
}

/// Stores the tenant's periods; `true` if it had none before.
pub async fn put(conn: &mut Conn, tenant: &str, p: &Periods, now: i64) -> Result<bool, StoreError> {
    let before: Option<i64> =
        sqlx::query_scalar("SELECT updated_at FROM retention_policies WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO retention_policies (tenant_id, webhook_messages_days, notifications_days,
             ended_sessions_days, onboarding_documents_days, idempotency_hours, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id) DO UPDATE SET
             webhook_messages_days = excluded.webhook_messages_days,
             notifications_days = excluded.notifications_days,
             ended_sessions_days = excluded.ended_sessions_days,
             onboarding_documents_days = excluded.onboarding_documents_days,
             idempotency_hours = excluded.idempotency_hours,
             updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(p.webhook_messages_days)
    .bind(p.notifications_days)
    .bind(p.ended_sessions_days)
    .bind(p.onboarding_documents_days)
    .bind(p.idempotency_hours)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(before.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_whole_days_within_ten_years() {
        assert!(Periods::default().problems().is_empty());
        let bad = Periods {
            webhook_messages_days: 0,
            notifications_days: Some(MAX_DAYS + 1),
            ended_sessions_days: Some(1),
            onboarding_documents_days: Some(-5),
            idempotency_hours: Some(23),
        };
        let fields: Vec<String> = bad.problems().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "webhookMessagesDays",
                "notificationsDays",
                "onboardingDocumentsDays",
                "idempotencyHours"
            ]
        );
    }
}
