//! Erasing a customer's personal data (the GDPR's right to erasure), keeping what a bank must
//! keep and the timeline's hash chain verifiable.
//!
//! Removed or redacted: the profile's name, contact details, language and quiet hours; the
//! customer's push devices; the data and rendered content of their notifications (and what was
//! still to be sent is cancelled); their sessions' and handoffs' context (and sessions still open
//! are ended); their onboardings' answers (and the same answers in their journeys' step
//! history: what the customer entered at their own steps), custom fields and redirect, with
//! every document (the files too) and every session token; and the content (summary, metadata, payload) of every
//! event of their chain recorded with a commitment (`events::chain`), whose salt goes with it,
//! but the records of earlier erasures (`omni.customer.erased`, which hold no personal data).
//!
//! Kept, as the bank's record of what it did and decided (the banking exceptions to erasure:
//! records a bank must keep by law, such as credit decisions and anti-money-laundering checks):
//! the customer's id, journeys, their steps and approvals, delegations, and each event's type,
//! time, actor, channel, key and place in its chain. Events recorded before commitments existed
//! (migration 0021) hash their content in their links: erasing it would break the chain, so it
//! is kept, and counted in the answer.

use serde::Serialize;
use utoipa::ToSchema;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, EventType, NewEvent};

/// What an erasure removed, and what it kept.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct Erasure {
    pub customer_id: String,
    pub erased_at: String,
    /// The profile's personal fields were cleared.
    pub profile: bool,
    pub devices: u64,
    pub notifications: u64,
    /// Deliveries still to be sent, cancelled.
    pub deliveries_cancelled: u64,
    pub sessions: u64,
    pub onboardings: u64,
    pub documents: u64,
    /// Events whose content was erased.
    pub events: u64,
    /// Events of the customer's chain recorded before commitments existed, whose content is
    /// kept (erasing it would break the chain).
    pub events_kept: u64,
}

/// Erases `customer` of `tenant`; 404 if there is no such customer. Running it again erases what
/// was added since.
pub async fn erase(
    app: &App,
    tenant: &str,
    customer: &str,
    reason: &str,
    reference: Option<&str>,
) -> ApiResult<Erasure> {
    let db = &app.db;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(customer)
            .fetch_optional(db.reader())
            .await?;
    if exists.is_none() {
        return Err(ApiError::not_found("Customer"));
    }
    // The files first: one that cannot be removed stops the erasure before anything else
    // changes, and running it again finishes it.
    let documents: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.id, d.storage_key FROM onboarding_documents d
         JOIN onboardings o ON o.id = d.onboarding_id
         WHERE o.tenant_id = $1 AND o.customer_id = $2",
    )
    .bind(tenant)
    .bind(customer)
    .fetch_all(db.reader())
    .await?;
    for (id, key) in &documents {
        app.documents.delete(key).await.map_err(|e| {
            tracing::error!(error = %e, document = %id, "cannot remove a document to erase");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "document_store_unavailable",
                "A document could not be removed from the document store, so the erasure stopped before changing any record; run it again",
            )
        })?;
    }
    let now = db.now_ms();
    let mut out = Erasure {
        customer_id: customer.to_owned(),
        erased_at: crate::time::to_rfc3339(now),
        profile: true,
        ..Erasure::default()
    };
    let onboardings = "SELECT id FROM onboardings WHERE tenant_id = $1 AND customer_id = $2";
    let mut tx = db.begin().await?;
    // Each statement takes the tenant ($1) and the customer ($2), and the time ($3) if it
    // names it.
    let mut run = async |sql: &str| -> ApiResult<u64> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(tenant)
            .bind(customer);
        if sql.contains("$3") {
            q = q.bind(now);
        }
        Ok(q.execute(&mut *tx).await?.rows_affected())
    };
    run(
        "UPDATE customers SET name = NULL, email = NULL, phone = NULL,
             notification_channel = NULL, preferred_language = NULL, quiet_hours = NULL,
             updated_at = $3
         WHERE tenant_id = $1 AND id = $2",
    )
    .await?;
    out.devices =
        run("DELETE FROM customer_devices WHERE tenant_id = $1 AND customer_id = $2").await?;
    out.deliveries_cancelled = run(
        "UPDATE notification_deliveries SET status = 'cancelled', error_code = 'customer_erased',
             next_attempt_at = NULL, lease_until = NULL, updated_at = $3
         WHERE tenant_id = $1 AND status = 'pending' AND notification_id IN
             (SELECT id FROM notifications WHERE tenant_id = $1 AND recipient_id = $2
              AND recipient_type = 'customer')",
    )
    .await?;
    run(
        "UPDATE notification_deliveries SET content = '{}', last_error = NULL
         WHERE tenant_id = $1 AND notification_id IN
             (SELECT id FROM notifications WHERE tenant_id = $1 AND recipient_id = $2
              AND recipient_type = 'customer')",
    )
    .await?;
    out.notifications = run(
        "UPDATE notifications SET template_data = '{}', updated_at = $3,
             status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
             cancelled_at = CASE WHEN status = 'pending' THEN $3 ELSE cancelled_at END
         WHERE tenant_id = $1 AND recipient_id = $2 AND recipient_type = 'customer'",
    )
    .await?;
    run("UPDATE handoffs SET context = '{}' WHERE tenant_id = $1 AND customer_id = $2").await?;
    out.sessions = run("UPDATE channel_sessions SET context = '{}', device_id = '',
             ended_at = COALESCE(ended_at, $3),
             end_reason = COALESCE(end_reason, 'customer_erased')
         WHERE tenant_id = $1 AND customer_id = $2")
    .await?;
    for table in ["onboarding_tokens", "onboarding_handoffs"] {
        run(&format!(
            "DELETE FROM {table} WHERE onboarding_id IN ({onboardings})"
        ))
        .await?;
    }
    out.documents = run(&format!(
        "DELETE FROM onboarding_documents WHERE onboarding_id IN ({onboardings})"
    ))
    .await?;
    // What the customer entered at their own steps (an onboarding's answers, copied into the
    // journey's step history); what staff recorded at theirs is the bank's record.
    run("UPDATE journey_step_history SET data = '{}'
         WHERE actor_id = $2 AND journey_id IN
             (SELECT id FROM journeys WHERE tenant_id = $1 AND customer_id = $2)")
    .await?;
    out.onboardings = run(
        "UPDATE onboardings SET data = '{}', custom_fields = '{}', redirect_url = NULL,
             updated_at = $3
         WHERE tenant_id = $1 AND customer_id = $2",
    )
    .await?;
    let chain = format!("customer:{customer}");
    out.events = sqlx::query(
        "UPDATE events SET summary = '(erased)', metadata = '{}', payload = '{}',
             content_salt = NULL, erased_at = $3
         WHERE tenant_id = $1 AND chain_key = $2 AND content_hash IS NOT NULL
           AND erased_at IS NULL AND event_type <> 'omni.customer.erased'",
    )
    .bind(tenant)
    .bind(&chain)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    out.events_kept = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND chain_key = $2
         AND content_hash IS NULL",
    )
    .bind(tenant)
    .bind(&chain)
    .fetch_one(&mut *tx)
    .await?
    .try_into()
    .unwrap_or(0);
    let payload = serde_json::to_value(&out).map_err(|_| ApiError::internal())?;
    events::record(
        &mut tx,
        NewEvent {
            tenant_id: tenant,
            event_type: EventType::CustomerErased,
            actor_id: None,
            channel: None,
            summary: "Customer's personal data erased".to_owned(),
            metadata: serde_json::json!({ "reason": reason, "reference": reference }),
            payload,
            occurred_at: now,
            entities: vec![("customer", customer)],
            parties: Default::default(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}
