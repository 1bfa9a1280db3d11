//! The event spine: every state change records one event in the caller's transaction.
//!
//! [`record`] writes the event row, as the next link of its customer's (or root entity's) hash
//! chain ([`chain`]), and one row per entity it concerns (the journey, the customer, ...), so
//! the timeline can be read per entity through an index. It takes the caller's open
//! transaction: the event commits with the change or not at all.
//!
//! The spine knows none of its consumers. Channel analytics, the webhook outbox and the
//! notification rules are [`Reaction`]s, which `lib.rs` wires once per process ([`wire`]), in
//! its documented order; each runs inside the event's transaction, after the event is written,
//! so a reaction's writes commit with the event or not at all, and a reaction's failure fails
//! the change (a busy database stays a retryable `database_busy`).

use std::sync::OnceLock;

use crate::store::Conn;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::Row;

pub mod catalogue;
pub mod chain;

pub use catalogue::EventType;

use crate::calls::{self, Attribution};
use crate::channel::Channel;
use crate::error::StoreError;
use crate::ids::new_id;

/// What concerns an event: `("journey", "jrn_...")`, `("customer", "ent_...")`.
pub type EntityRef<'a> = (&'static str, &'a str);

/// A state change to record.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub tenant_id: &'a str,
    /// Its type in the catalogue; stored by name (`omni.journey.created`), which the
    /// timeline shows without `omni.`.
    pub event_type: EventType,
    pub actor_id: Option<&'a str>,
    pub channel: Option<&'a str>,
    /// A human sentence: "Journey advanced: KYC Verification passed".
    pub summary: String,
    /// Small facts for the timeline: ids, step, outcome.
    pub metadata: Value,
    /// The changed object as the API shows it; the body of the webhook message.
    pub payload: Value,
    /// When the change was made (ms since the epoch): the time the caller stamped it with.
    pub occurred_at: i64,
    pub entities: Vec<EntityRef<'a>>,
    /// The people the change concerns beyond its entities, typed for the consumers that
    /// address them (the notification rules); empty for most events.
    pub parties: Parties,
}

/// Whom an event concerns, as its producer knows them: the consumers that address people
/// read these fields instead of keys of the event's metadata or payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    /// The journey's assignee, unless the change asked not to tell them.
    pub assignee: Option<Assignee>,
    /// The approvers the change concerns (those it asks, or every approver of the request).
    pub approvers: Vec<String>,
    /// Who requested an approval, when a staff user did (not a customer, not the system).
    pub requesting_user: Option<String>,
    /// The managers of a journey's assignee, when a deadline or escalation concerns them.
    pub managers: Vec<String>,
}

/// A journey's assignee: a user, or a team whose members stand for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    User(String),
    Team(String),
}

/// An event as the spine wrote it, in the transaction still open: what a reaction sees.
#[derive(Debug)]
pub struct Appended<'a> {
    pub event: &'a NewEvent<'a>,
    /// Its position in the tenant's log of events (`events.seq`).
    pub seq: i64,
    pub chain_key: &'a str,
    /// The channel it was recorded with, as the timeline shows it.
    pub channel: Option<&'static str>,
    /// How the call that made it is attributed (see `calls`).
    pub attribution: Attribution,
    /// The entities it concerns, each once.
    pub entities: &'a [EntityRef<'a>],
}

/// A consumer of the spine: runs in the event's transaction, after the event is written.
pub trait Reaction: Send + Sync + 'static {
    /// On PostgreSQL, a scalar subquery over the event's tenant (`$2`) and type (`$3`) whose
    /// text answer the event's own statement returns, handed to [`Reaction::react`]: a read the
    /// reaction needs, without a round trip of its own.
    fn prefetch(&self) -> Option<&'static str> {
        None
    }

    /// Reacts to `appended`. `prefetched` is `Some` (the subquery's answer) on PostgreSQL when
    /// [`Reaction::prefetch`] names one, `None` where the reaction reads for itself.
    fn react<'a>(
        &'a self,
        conn: &'a mut Conn,
        appended: &'a Appended<'a>,
        prefetched: Option<Option<String>>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The reactions in the order they run, and PostgreSQL's event statements with their
/// prefetches.
struct Spine {
    reactions: Vec<Box<dyn Reaction>>,
    /// PostgreSQL's statement for one, two and three entities.
    pg_event_with: [&'static str; 3],
    /// SQLite's command for 0 to [`SQLITE_ONE_COMMAND`] entities.
    sqlite_event_with: Vec<&'static str>,
}

/// Most entities SQLite's one command for an event writes; an event with more (none today)
/// writes the rest three at a time.
const SQLITE_ONE_COMMAND: usize = 6;

static SPINE: OnceLock<Spine> = OnceLock::new();

/// Wires the spine's reactions, in the order they will run, once per process (`lib.rs`); a
/// second call leaves the first wiring in place.
pub fn wire(reactions: Vec<Box<dyn Reaction>>) {
    SPINE.get_or_init(|| {
        let prefetches: String = reactions
            .iter()
            .filter_map(|r| r.prefetch())
            .map(|sql| format!(", ({sql})"))
            .collect();
        let statement = |values: &str| -> &'static str {
            Box::leak(pg_with_entities(values, &prefetches).into_boxed_str())
        };
        Spine {
            sqlite_event_with: (0..=SQLITE_ONE_COMMAND)
                .map(|n| &*Box::leak(sqlite_with_entities(n).into_boxed_str()))
                .collect(),
            pg_event_with: [
                statement("($18, $19)"),
                statement("($18, $19), ($20, $21)"),
                statement("($18, $19), ($20, $21), ($22, $23)"),
            ],
            reactions,
        }
    });
}

// An event is appended to its chain (see `chain`): the chain's head row is read and locked
// first (an upsert that creates an empty chain if needed, so concurrent first events of one
// chain queue up), the link is hashed here, then the event, its entity index rows, each
// entity's event count and the new head are written. PostgreSQL writes those in one statement
// (data-modifying CTEs, up to three entities); SQLite has no such CTE, so there they are
// separate statements sent as one command (up to six entities). More entities are rare and go
// three at a time. PostgreSQL's statement also answers the reactions' prefetches (the webhook
// outbox's endpoints): one round trip less per event.
const CHAIN_HEAD: &str = "INSERT INTO event_chains (tenant_id, chain_key, length, head_hash) \
     VALUES ($1, $2, 0, $3) ON CONFLICT (tenant_id, chain_key) \
     DO UPDATE SET length = event_chains.length RETURNING length, head_hash";
const CHAIN_ADVANCE: &str =
    "UPDATE event_chains SET length = $3, head_hash = $4 WHERE tenant_id = $1 AND chain_key = $2";
macro_rules! event_insert {
    () => {
        "INSERT INTO events (id, tenant_id, event_type, occurred_at, actor_id, channel, summary, \
         metadata, payload, chain_key, chain_seq, prev_hash, hash, actor_proof, key_id, \
         content_salt, content_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    };
}
/// PostgreSQL's one statement for an event with up to three entities, `values`, answering
/// the event's sequence and then each reaction's prefetch.
fn pg_with_entities(values: &str, prefetches: &str) -> String {
    format!(
        "WITH v(t, i) AS (VALUES {values}), e AS ({} RETURNING seq), \
         c AS (UPDATE event_chains SET length = $11, head_hash = $13 \
         WHERE tenant_id = $2 AND chain_key = $10), n AS (INSERT INTO entity_event_counts \
         (tenant_id, entity_type, entity_id, events) SELECT $2, v.t, v.i, 1 FROM v \
         ON CONFLICT (tenant_id, entity_type, entity_id) \
         DO UPDATE SET events = entity_event_counts.events + 1), x AS (INSERT INTO \
         event_entities (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id) \
         SELECT $2, e.seq, $4, $3, v.t, v.i FROM e, v RETURNING event_seq) \
         SELECT x.event_seq{prefetches} FROM x",
        event_insert!()
    )
}
/// SQLite's one command for an event with `n` entities: the event (answering its sequence),
/// its entity index rows and counts, and its chain's new head, as statements sqlx's SQLite
/// driver runs in one go (one handoff to SQLite's thread instead of four; `$n` numbers the
/// arguments across the statements).
fn sqlite_with_entities(n: usize) -> String {
    let mut sql = concat!(event_insert!(), " RETURNING seq;").to_owned();
    if n > 0 {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "($2, (SELECT seq FROM events WHERE id = $1), $4, $3, ${}, ${})",
                    18 + 2 * i,
                    19 + 2 * i
                )
            })
            .collect();
        let counts: Vec<String> = (0..n)
            .map(|i| format!("($2, ${}, ${}, 1)", 18 + 2 * i, 19 + 2 * i))
            .collect();
        sql.push_str(&format!(
            " INSERT INTO event_entities \
             (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id) VALUES {};\
             INSERT INTO entity_event_counts (tenant_id, entity_type, entity_id, events) \
             VALUES {} ON CONFLICT (tenant_id, entity_type, entity_id) \
             DO UPDATE SET events = entity_event_counts.events + 1;",
            rows.join(", "),
            counts.join(", ")
        ));
    }
    sql.push_str(
        " UPDATE event_chains SET length = $11, head_hash = $13 \
         WHERE tenant_id = $2 AND chain_key = $10",
    );
    sql
}

const EVENT_INSERT: &str = concat!(event_insert!(), " RETURNING seq");
macro_rules! count_upsert {
    ($values:literal) => {
        concat!(
            "INSERT INTO entity_event_counts (tenant_id, entity_type, entity_id, events) VALUES ",
            $values,
            " ON CONFLICT (tenant_id, entity_type, entity_id) \
             DO UPDATE SET events = entity_event_counts.events + 1"
        )
    };
}
const COUNT_UPSERT_1: &str = count_upsert!("($1, $2, $3, 1)");
const COUNT_UPSERT_2: &str = count_upsert!("($1, $2, $3, 1), ($1, $4, $5, 1)");
const COUNT_UPSERT_3: &str = count_upsert!("($1, $2, $3, 1), ($1, $4, $5, 1), ($1, $6, $7, 1)");
const ENTITY_INSERT_1: &str = "INSERT INTO event_entities
     (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5, $6)";
const ENTITY_INSERT_2: &str = "INSERT INTO event_entities
     (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5, $6), ($1, $2, $3, $4, $7, $8)";
const ENTITY_INSERT_3: &str = "INSERT INTO event_entities
     (tenant_id, event_seq, occurred_at, event_type, entity_type, entity_id)
     VALUES ($1, $2, $3, $4, $5, $6), ($1, $2, $3, $4, $7, $8), ($1, $2, $3, $4, $9, $10)";

/// Records `event` inside the caller's transaction, as the next link of its chain, then runs
/// the wired reactions on it, in order.
pub async fn record(conn: &mut Conn, event: NewEvent<'_>) -> Result<(), StoreError> {
    let spine = SPINE
        .get()
        .ok_or_else(|| StoreError::Corrupt("the event spine's reactions are not wired".into()))?;
    let id = new_id("evt_");
    let occurred_at = event.occurred_at;
    let chain_key = chain::chain_key(&event.entities);
    // Made through the channel its call states, else through that of what it changes; a
    // change of a call that names neither was made through the API. The timeline shows the
    // channel channel analytics counts: one truth.
    let own = event.channel.and_then(|c| c.parse::<Channel>().ok());
    let made = calls::attribute(own);
    let channel = match made.channel {
        Some(c) => Some(c.as_lower()),
        None if made.in_call => Some(Channel::Api.as_lower()),
        None => None,
    };
    let (length, prev_hash): (i64, String) = sqlx::query_as(CHAIN_HEAD)
        .bind(event.tenant_id)
        .bind(&chain_key)
        .bind(chain::GENESIS)
        .fetch_one(&mut *conn)
        .await?;
    let chain_seq = length + 1;
    let metadata = event.metadata.to_string();
    let payload = event.payload.to_string();
    // The proof of the actor, when the call's token proved the person the change names.
    let actor_proof = calls::proof_for(event.actor_id);
    // The API key whose call made it, by id.
    let key_id = calls::key_id();
    // The content is committed to, salted, so that it can be erased and the chain still hold.
    let salt = chain::new_salt();
    let commitment = chain::commit(&salt, &event.summary, &metadata, &payload);
    let hash = chain::hash(&chain::Link {
        tenant_id: event.tenant_id,
        chain_key: &chain_key,
        chain_seq,
        id: &id,
        event_type: event.event_type.as_str(),
        occurred_at,
        actor_id: event.actor_id,
        channel,
        summary: &event.summary,
        metadata: &metadata,
        payload: &payload,
        actor_proof: actor_proof.as_deref(),
        key_id: key_id.as_deref(),
        commitment: Some(chain::Commitment {
            hash: &commitment,
            salt: Some(&salt),
        }),
        prev_hash: &prev_hash,
    });
    // One entity named twice (a user who is both decider and assignee, say) is indexed once.
    let mut entities = event.entities.clone();
    entities.sort_unstable();
    entities.dedup();
    // PostgreSQL writes up to three entities in the event's statement, SQLite up to six in its
    // one command; the rest (none today) go three at a time, and then the chain's head after.
    let postgres = crate::store::dialect::is_postgres(conn);
    let (in_statement, mut rest) = if postgres {
        entities.split_at(entities.len().min(3))
    } else if entities.len() <= SQLITE_ONE_COMMAND {
        (&entities[..], &entities[entities.len()..])
    } else {
        (&entities[..0], &entities[..])
    };
    // `whole`: the event's statement (or command) also moved the chain's head; on PostgreSQL
    // it then answers the reactions' prefetches too.
    let (sql, whole) = match (postgres, in_statement.len()) {
        (true, 0) => (EVENT_INSERT, false),
        (true, n) => (spine.pg_event_with[n - 1], true),
        (false, n) if rest.is_empty() => (spine.sqlite_event_with[n], true),
        (false, _) => (EVENT_INSERT, false),
    };
    let prefetches = postgres && whole;
    let mut q = sqlx::query(sql)
        .bind(&id)
        .bind(event.tenant_id)
        .bind(event.event_type.as_str())
        .bind(occurred_at)
        .bind(event.actor_id)
        .bind(channel)
        .bind(&event.summary)
        .bind(&metadata)
        .bind(&payload)
        .bind(&chain_key)
        .bind(chain_seq)
        .bind(&prev_hash)
        .bind(&hash)
        .bind(&actor_proof)
        .bind(&key_id)
        .bind(&salt)
        .bind(&commitment);
    for (entity_type, entity_id) in in_statement {
        q = q.bind(*entity_type).bind(*entity_id);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let first_row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("event insert returned no sequence".into()))?;
    let seq: i64 = first_row.try_get(0)?;
    // The prefetches' answers, in the reactions' order, on PostgreSQL.
    let mut prefetched = Vec::new();
    if prefetches {
        // Column 0 is the sequence; the prefetches follow in the reactions' order.
        let mut column = 0;
        for reaction in &spine.reactions {
            prefetched.push(match reaction.prefetch() {
                Some(_) => {
                    column += 1;
                    Some(first_row.try_get::<Option<String>, _>(column)?)
                }
                None => None,
            });
        }
    }
    while !rest.is_empty() {
        let (sql, count_sql, n) = match rest.len() {
            1 => (ENTITY_INSERT_1, COUNT_UPSERT_1, 1),
            2 => (ENTITY_INSERT_2, COUNT_UPSERT_2, 2),
            _ => (ENTITY_INSERT_3, COUNT_UPSERT_3, 3),
        };
        let mut q = sqlx::query(sql)
            .bind(event.tenant_id)
            .bind(seq)
            .bind(occurred_at)
            .bind(event.event_type.as_str());
        let mut count = sqlx::query(count_sql).bind(event.tenant_id);
        for (entity_type, entity_id) in &rest[..n] {
            q = q.bind(*entity_type).bind(*entity_id);
            count = count.bind(*entity_type).bind(*entity_id);
        }
        q.execute(&mut *conn).await?;
        count.execute(&mut *conn).await?;
        rest = &rest[n..];
    }
    if !whole {
        sqlx::query(CHAIN_ADVANCE)
            .bind(event.tenant_id)
            .bind(&chain_key)
            .bind(chain_seq)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
    }
    let appended = Appended {
        event: &event,
        seq,
        chain_key: &chain_key,
        channel,
        attribution: made,
        entities: &entities,
    };
    for (i, reaction) in spine.reactions.iter().enumerate() {
        let prefetched = prefetched.get_mut(i).and_then(Option::take);
        reaction.react(conn, &appended, prefetched).await?;
    }
    Ok(())
}

/// An event's name as the timeline and streams show it: without the `omni.` of webhook names
/// (`journey.created`).
pub fn shown_type(event_type: &str) -> &str {
    event_type.strip_prefix("omni.").unwrap_or(event_type)
}

/// A stored event, as the tests read it (the API reads through `timeline`).
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
