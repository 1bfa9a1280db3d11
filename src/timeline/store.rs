//! SQL for the timeline: pages of an entity's events through the entity index, and the links of
//! a chain in order. Every statement is scoped by tenant.

use sqlx::AnyPool;

use crate::error::StoreError;

/// One event as the timeline shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimelineRow {
    pub id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub actor_id: Option<String>,
    pub channel: Option<String>,
    pub summary: String,
    pub metadata: String,
    pub actor_proof: Option<String>,
    pub key_id: Option<String>,
}

/// Which of an entity's events a page holds.
#[derive(Debug)]
pub struct TimelineFilter<'a> {
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Stored event types to match exactly.
    pub exact: Vec<String>,
    /// Stored event type prefixes.
    pub prefixes: Vec<String>,
    pub newest_first: bool,
}

/// The statement's conditions beyond the entity, and the values they bind in order. Only the
/// filters given are written into the statement (no `$n IS NULL OR ...`), so PostgreSQL's plan
/// for a cached statement always has the date range as an index condition.
struct Conditions {
    sql: String,
    times: Vec<i64>,
    texts: Vec<String>,
}

fn conditions(f: &TimelineFilter<'_>) -> Conditions {
    let mut sql = String::new();
    let mut times = Vec::new();
    let mut n = 4;
    for (bound, op) in [(f.from, ">="), (f.to, "<=")] {
        if let Some(t) = bound {
            sql.push_str(&format!(" AND x.occurred_at {op} ${n}"));
            times.push(t);
            n += 1;
        }
    }
    let mut parts = Vec::new();
    let mut texts = Vec::new();
    for t in &f.exact {
        parts.push(format!("x.event_type = ${n}"));
        texts.push(t.clone());
        n += 1;
    }
    for p in &f.prefixes {
        parts.push(format!("x.event_type LIKE ${n} ESCAPE '\\'"));
        texts.push(like_prefix(p));
        n += 1;
    }
    if !parts.is_empty() {
        sql.push_str(&format!(" AND ({})", parts.join(" OR ")));
    }
    Conditions { sql, times, texts }
}

fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

const ENTITY: &str =
    " FROM event_entities x WHERE x.tenant_id = $1 AND x.entity_type = $2 AND x.entity_id = $3";

/// A page of the entity's events (oldest first unless `newest_first`; by time, then by the
/// order they were recorded in) and the total. The entity index is read in
/// `(tenant, entity, occurred_at, seq, type)` order, so a page and a date range are index
/// ranges and the type filter reads the index only.
pub async fn page(
    pool: &AnyPool,
    tenant: &str,
    f: &TimelineFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TimelineRow>, i64), StoreError> {
    let c = conditions(f);
    // Only placeholders and fixed text are formatted into the statements; values are bound.
    let total: i64 = if c.sql.is_empty() {
        // The whole timeline's size is kept per entity as events are recorded.
        sqlx::query_scalar(
            "SELECT events FROM entity_event_counts
             WHERE tenant_id = $1 AND entity_type = $2 AND entity_id = $3",
        )
        .bind(tenant)
        .bind(f.entity_type)
        .bind(f.entity_id)
        .fetch_optional(pool)
        .await?
        .unwrap_or(0)
    } else {
        let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*){ENTITY}{}",
            c.sql
        )))
        .bind(tenant)
        .bind(f.entity_type)
        .bind(f.entity_id);
        for t in &c.times {
            count = count.bind(*t);
        }
        for t in &c.texts {
            count = count.bind(t);
        }
        count.fetch_one(pool).await?
    };
    let n = 4 + c.times.len() + c.texts.len();
    let order = if f.newest_first { "DESC" } else { "ASC" };
    let page_sql = format!(
        "SELECT e.id, e.event_type, e.occurred_at, e.actor_id, e.channel, e.summary, e.metadata, \
         e.actor_proof, e.key_id FROM events e WHERE e.seq IN (SELECT x.event_seq{ENTITY}{} \
         ORDER BY x.occurred_at {order}, x.event_seq {order} LIMIT ${} OFFSET ${}) \
         ORDER BY e.occurred_at {order}, e.seq {order}",
        c.sql,
        n,
        n + 1
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(page_sql))
        .bind(tenant)
        .bind(f.entity_type)
        .bind(f.entity_id);
    for t in &c.times {
        q = q.bind(*t);
    }
    for t in &c.texts {
        q = q.bind(t);
    }
    let rows = q.bind(limit).bind(offset).fetch_all(pool).await?;
    Ok((rows, total))
}

/// The chains holding the entity's events, and the entity's own chain if it has one.
pub async fn chains_of(
    pool: &AnyPool,
    tenant: &str,
    entity_type: &str,
    entity_id: &str,
) -> Result<Vec<String>, StoreError> {
    let own = format!("{entity_type}:{entity_id}");
    let mut keys: Vec<String> = sqlx::query_scalar(
        "SELECT chain_key FROM event_chains WHERE tenant_id = $1 AND chain_key = $2
         UNION
         SELECT DISTINCT e.chain_key FROM event_entities x JOIN events e ON e.seq = x.event_seq
         WHERE x.tenant_id = $1 AND x.entity_type = $3 AND x.entity_id = $4
           AND e.chain_key IS NOT NULL",
    )
    .bind(tenant)
    .bind(&own)
    .bind(entity_type)
    .bind(entity_id)
    .fetch_all(pool)
    .await?;
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// One stored link, as hashed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub actor_id: Option<String>,
    pub channel: Option<String>,
    pub summary: String,
    pub metadata: String,
    pub payload: String,
    pub actor_proof: Option<String>,
    pub key_id: Option<String>,
    pub content_salt: Option<String>,
    pub content_hash: Option<String>,
    pub erased_at: Option<i64>,
    pub chain_key: String,
    pub chain_seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

macro_rules! link_columns {
    () => {
        "id, tenant_id, event_type, occurred_at, actor_id, channel, summary, metadata, payload, \
         actor_proof, key_id, content_salt, content_hash, erased_at, chain_key, chain_seq, \
         prev_hash, hash"
    };
}

/// The chain's stored length and head hash, if the chain exists.
pub async fn chain_head(
    pool: &AnyPool,
    tenant: &str,
    chain_key: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT length, head_hash FROM event_chains WHERE tenant_id = $1 AND chain_key = $2",
    )
    .bind(tenant)
    .bind(chain_key)
    .fetch_optional(pool)
    .await?)
}

/// Up to `limit` links of the chain after `after_seq`, in order.
pub async fn links_after(
    pool: &AnyPool,
    tenant: &str,
    chain_key: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<LinkRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        link_columns!(),
        " FROM events WHERE tenant_id = $1 AND chain_key = $2 AND chain_seq > $3 \
         ORDER BY chain_seq LIMIT $4"
    ))
    .bind(tenant)
    .bind(chain_key)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
