//! The event spine: every state change records one event in the caller's transaction.
//!
//! [`record`] writes the event row and one row per entity it concerns (the journey, the
//! customer, ...), so the timeline can be read per entity through an index. It takes the
//! caller's open transaction: the event commits with the change or not at all. The webhook
//! outbox rows for the event belong in this same function, so that no caller can record a
//! change without its messages.

use serde_json::Value;
use sqlx::AnyConnection;

use crate::error::StoreError;
use crate::ids::new_id;
use crate::store::now_ms;

/// What concerns an event: `("journey", "jrn_...")`, `("customer", "ent_...")`.
pub type EntityRef<'a> = (&'static str, &'a str);

/// A state change to record.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub tenant_id: &'a str,
    /// Webhook name, `omni.journey.created`; the timeline shows it without `omni.`.
    pub event_type: &'static str,
    pub actor_id: Option<&'a str>,
    pub channel: Option<&'a str>,
    /// A human sentence: "Journey advanced: KYC Verification passed".
    pub summary: String,
    /// Small facts for the timeline: ids, step, outcome.
    pub metadata: Value,
    /// The changed object as the API shows it; the body of the webhook message.
    pub payload: Value,
    pub entities: Vec<EntityRef<'a>>,
}

// The entities of an event are written with it. PostgreSQL does both in one statement (a
// data-modifying CTE); SQLite has no such CTE, so there the event and its entities are two
// statements. Up to three entities go in one statement; more are rare and go three at a time.
macro_rules! event_insert {
    () => {
        "INSERT INTO events (id, tenant_id, event_type, occurred_at, actor_id, channel, summary, \
         metadata, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    };
}
macro_rules! pg_with_entities {
    ($values:literal) => {
        concat!(
            "WITH e AS (",
            event_insert!(),
            " RETURNING seq) INSERT INTO event_entities \
             (tenant_id, event_seq, occurred_at, entity_type, entity_id) \
             SELECT $2, e.seq, $4, x.t, x.i FROM e, (VALUES ",
            $values,
            ") AS x(t, i) RETURNING event_seq"
        )
    };
}
const PG_EVENT_WITH_1: &str = pg_with_entities!("($10, $11)");
const PG_EVENT_WITH_2: &str = pg_with_entities!("($10, $11), ($12, $13)");
const PG_EVENT_WITH_3: &str = pg_with_entities!("($10, $11), ($12, $13), ($14, $15)");
const EVENT_INSERT: &str = concat!(event_insert!(), " RETURNING seq");
const ENTITY_INSERT_1: &str =
    "INSERT INTO event_entities (tenant_id, event_seq, occurred_at, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5)";
const ENTITY_INSERT_2: &str =
    "INSERT INTO event_entities (tenant_id, event_seq, occurred_at, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5), ($1, $2, $3, $6, $7)";
const ENTITY_INSERT_3: &str =
    "INSERT INTO event_entities (tenant_id, event_seq, occurred_at, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5), ($1, $2, $3, $6, $7), ($1, $2, $3, $8, $9)";

/// Records `event` inside the caller's transaction.
pub async fn record(conn: &mut AnyConnection, event: NewEvent<'_>) -> Result<(), StoreError> {
    let id = new_id("evt_");
    let occurred_at = now_ms();
    // One entity named twice (a user who is both decider and assignee, say) is indexed once.
    let mut entities = event.entities;
    entities.sort_unstable();
    entities.dedup();
    let (first, mut rest) = entities.split_at(entities.len().min(3));
    let postgres = conn.backend_name() == "PostgreSQL" && !first.is_empty();
    let sql = match (postgres, first.len()) {
        (true, 1) => PG_EVENT_WITH_1,
        (true, 2) => PG_EVENT_WITH_2,
        (true, _) => PG_EVENT_WITH_3,
        (false, _) => EVENT_INSERT,
    };
    let mut q = sqlx::query_scalar(sql)
        .bind(&id)
        .bind(event.tenant_id)
        .bind(event.event_type)
        .bind(occurred_at)
        .bind(event.actor_id)
        .bind(event.channel)
        .bind(&event.summary)
        .bind(event.metadata.to_string())
        .bind(event.payload.to_string());
    if postgres {
        for (entity_type, entity_id) in first {
            q = q.bind(*entity_type).bind(*entity_id);
        }
    } else {
        rest = &entities;
    }
    let seqs: Vec<i64> = q.fetch_all(&mut *conn).await?;
    let seq = *seqs
        .first()
        .ok_or_else(|| StoreError::Corrupt("event insert returned no sequence".into()))?;
    while !rest.is_empty() {
        let (sql, n) = match rest.len() {
            1 => (ENTITY_INSERT_1, 1),
            2 => (ENTITY_INSERT_2, 2),
            _ => (ENTITY_INSERT_3, 3),
        };
        let mut q = sqlx::query(sql)
            .bind(event.tenant_id)
            .bind(seq)
            .bind(occurred_at);
        for (entity_type, entity_id) in &rest[..n] {
            q = q.bind(*entity_type).bind(*entity_id);
        }
        q.execute(&mut *conn).await?;
        rest = &rest[n..];
    }
    Ok(())
}

/// A stored event, as tests and later readers (timeline, webhooks) see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub actor_id: Option<String>,
    pub channel: Option<String>,
    pub summary: String,
    pub metadata: String,
}

/// Events concerning one entity, oldest first.
pub async fn for_entity(
    pool: &sqlx::AnyPool,
    tenant_id: &str,
    entity_type: &str,
    entity_id: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.event_type, e.occurred_at, e.actor_id, e.channel, e.summary, e.metadata
         FROM event_entities x JOIN events e ON e.seq = x.event_seq
         WHERE x.tenant_id = $1 AND x.entity_type = $2 AND x.entity_id = $3
         ORDER BY x.event_seq",
    )
    .bind(tenant_id)
    .bind(entity_type)
    .bind(entity_id)
    .fetch_all(pool)
    .await?)
}
