//! Webhooks: every committed event, signed per the Standard Webhooks specification and
//! delivered to the tenant's endpoints, durably, with retries, replay and an attempts log.
//!
//! - The outbox: [`Outbox`], a reaction of the event spine, runs in the event's own
//!   transaction and writes one message per enabled endpoint that subscribes to the event. A change that rolls
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

use crate::store::Conn;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::StoreError;
use crate::events::{Appended, Reaction};

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

/// The spine's reaction that writes an event's messages ([`enqueue`]). On PostgreSQL the
/// event's statement reads the tenant's enabled endpoints for it, `FOR KEY SHARE` (as the
/// messages' foreign key would lock them anyway), so an endpoint being deleted is waited for
/// and then left out, never written a message it cannot have.
pub struct Outbox;

impl Reaction for Outbox {
    fn prefetch(&self) -> Option<&'static str> {
        Some(
            "SELECT CAST(json_agg(json_build_array(w.id, w.event_types)) AS TEXT) \
             FROM (SELECT id, event_types FROM webhook_endpoints \
             WHERE tenant_id = $2 AND enabled = 1 FOR KEY SHARE) w",
        )
    }

    fn react<'a>(
        &'a self,
        conn: &'a mut Conn,
        appended: &'a Appended<'a>,
        prefetched: Option<Option<String>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let endpoints = match prefetched {
                Some(listed) => Some(endpoints_from_json(listed.as_deref())?),
                None => None,
            };
            let event = appended.event;
            let wrote = enqueue(
                conn,
                event.tenant_id,
                appended.seq,
                event.event_type.as_str(),
                event.occurred_at,
                endpoints,
            )
            .await?;
            if wrote {
                crate::calls::after_answer(wake);
            }
            Ok(())
        })
    }
}

/// Writes the messages of one event, in the event's transaction: one per enabled endpoint of
/// the tenant that subscribes to `event_type`. `endpoints`, the tenant's enabled endpoints
/// with their patterns, when the caller has read them already (in the same transaction).
/// `true` if it wrote any.
pub async fn enqueue(
    conn: &mut Conn,
    tenant: &str,
    event_seq: i64,
    event_type: &str,
    now: i64,
    endpoints: Option<Vec<(String, String)>>,
) -> Result<bool, StoreError> {
    let endpoints = match endpoints {
        Some(known) => known,
        None => store::enabled_endpoints(conn, tenant).await?,
    };
    let subscribed: Vec<String> = endpoints
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

/// The endpoints PostgreSQL's event statement lists for [`Outbox`]: a JSON array of `[id, patterns]`, or
/// nothing when the tenant has none. A list that cannot be read fails the change rather than
/// lose its messages.
pub fn endpoints_from_json(listed: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
    let Some(text) = listed else {
        return Ok(Vec::new());
    };
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("webhook endpoints could not be read: {e}")))
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

/// Where an endpoint's secrets are kept, as their sealing binds them (`secrets`): a sealed
/// secret copied to another endpoint does not open.
pub fn sealing_context(endpoint_id: &str) -> String {
    format!("webhook_endpoint:{endpoint_id}")
}

/// Seals the endpoint secrets stored before secrets were encrypted (migration 0020); how many
/// endpoints it sealed. Each row is written only if it still holds what was read, so nodes
/// starting together seal each secret once.
pub async fn seal_stored_secrets(
    db: &crate::store::Db,
    vault: &crate::secrets::Vault,
) -> Result<u64, StoreError> {
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT tenant_id, id, secret, previous_secret FROM webhook_endpoints
         WHERE secret NOT LIKE 'enc:%' OR previous_secret NOT LIKE 'enc:%'",
    )
    .fetch_all(db.reader())
    .await?;
    let mut sealed = 0;
    for (tenant, id, secret, previous) in rows {
        let context = sealing_context(&id);
        let seal = |value: String| async {
            if crate::secrets::is_sealed(&value) {
                Ok(value)
            } else {
                vault.seal(db, &tenant, &context, &value).await
            }
        };
        let new_secret = seal(secret.clone()).await?;
        let new_previous = match previous.clone() {
            Some(p) => Some(seal(p).await?),
            None => None,
        };
        let mut tx = db.begin().await?;
        sealed += sqlx::query(
            "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2
             WHERE tenant_id = $3 AND id = $4 AND secret = $5
               AND (previous_secret = $6 OR (previous_secret IS NULL AND $6 IS NULL))",
        )
        .bind(&new_secret)
        .bind(&new_previous)
        .bind(&tenant)
        .bind(&id)
        .bind(&secret)
        .bind(&previous)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_endpoints_are_read_or_the_change_fails() {
        assert!(endpoints_from_json(None).unwrap().is_empty());
        let listed = r#"[["ep_1", "[\"omni.journey.*\"]"], ["ep_2", "[]"]]"#;
        assert_eq!(
            endpoints_from_json(Some(listed)).unwrap(),
            [
                ("ep_1".to_owned(), r#"["omni.journey.*"]"#.to_owned()),
                ("ep_2".to_owned(), "[]".to_owned())
            ]
        );
        assert!(endpoints_from_json(Some("[[1]]")).is_err());
    }

    #[test]
    fn the_body_is_type_timestamp_and_data() {
        let body = body(
            "omni.journey.created",
            1_705_314_600_123,
            r#"{"id":"jrn_1"}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "omni.journey.created");
        assert_eq!(v["timestamp"], "2024-01-15T10:30:00.123Z");
        assert_eq!(v["data"]["id"], "jrn_1");
    }
}
