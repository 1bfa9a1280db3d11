//! Webhooks: every committed event, signed per the Standard Webhooks specification and
//! delivered to the tenant's endpoints, durably, with retries, replay and an attempts log.
//!
//! - The outbox: [`enqueue`] runs inside `events::append`, in the event's own transaction, and
//!   writes one message per enabled endpoint that subscribes to the event. A change that rolls
//!   back leaves no message; a committed one always has its messages.
//! - Delivery: [`worker`] runs in every `serve` process and claims due messages with a lease
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so processes share the work and a process that
//!   dies leaves its messages to the others once the lease runs out. Delivery is at least once:
//!   receivers deduplicate on `webhook-id`, which is the message's id and never changes.
//! - Targets: [`guard`] refuses loopback, private, link-local and metadata addresses, when an
//!   endpoint is set and again at every attempt.

pub mod guard;
pub mod model;
mod routes;
pub mod store;
pub mod worker;

use std::sync::LazyLock;

use sqlx::AnyConnection;
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::StoreError;

pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// Wakes the delivery workers of this process.
static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Tells this process's delivery worker that messages were committed (called once the API
/// call that wrote them has answered, so the worker finds them at once).
pub fn wake() {
    WAKE.notify_waiters();
}

/// Writes the messages of one event, in the event's transaction: one per enabled endpoint of
/// the tenant that subscribes to `event_type`. `true` if it wrote any.
pub async fn enqueue(
    conn: &mut AnyConnection,
    tenant: &str,
    event_seq: i64,
    event_type: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let subscribed: Vec<String> = store::enabled_endpoints(conn, tenant)
        .await?
        .into_iter()
        .filter(|(_, patterns)| {
            let patterns: Vec<String> = serde_json::from_str(patterns).unwrap_or_default();
            model::subscribes(&patterns, event_type)
        })
        .map(|(endpoint, _)| endpoint)
        .collect();
    if subscribed.is_empty() {
        return Ok(false);
    }
    store::insert_messages(conn, tenant, &subscribed, event_seq, event_type, now).await?;
    Ok(true)
}

/// The body of a message: `{"type", "timestamp", "data"}`, built from the stored event, so
/// every attempt sends the same bytes.
pub fn body(event_type: &str, occurred_at: i64, payload: &str) -> String {
    let data = if payload.trim().is_empty() {
        "{}"
    } else {
        payload
    };
    format!(
        r#"{{"type":{},"timestamp":{},"data":{}}}"#,
        serde_json::Value::from(event_type),
        serde_json::Value::from(crate::time::to_rfc3339(occurred_at)),
        data
    )
}
