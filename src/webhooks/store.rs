//! SQL for webhook endpoints, their messages (the outbox) and attempts. Every statement a
//! request makes is scoped by tenant; the delivery worker works across tenants and carries
//! each row's tenant with it.

use std::collections::HashMap;

use crate::store::Conn;
use sqlx::AnyPool;

use crate::error::StoreError;
use crate::store::dialect::{self, RowLock, placeholders};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: String,
    pub enabled: i64,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, \
     secret, previous_secret, previous_secret_until, failing_since, created_at, updated_at";

pub async fn insert_endpoint(
    conn: &mut Conn,
    tenant: &str,
    e: &EndpointRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, enabled,
             secret, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&e.id)
    .bind(tenant)
    .bind(&e.url)
    .bind(&e.description)
    .bind(&e.event_types)
    .bind(e.enabled)
    .bind(&e.secret)
    .bind(e.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The endpoint, locked for change on PostgreSQL when `lock` (SQLite's writer is alone).
pub async fn get_endpoint(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    lock: bool,
) -> Result<Option<EndpointRow>, StoreError> {
    let suffix = if lock {
        RowLock::Update.for_conn(conn)
    } else {
        ""
    };
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2{suffix}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn list_endpoints(
    pool: &AnyPool,
    tenant: &str,
    enabled: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EndpointRow>, i64), StoreError> {
    let enabled = enabled.map(i64::from);
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
         WHERE tenant_id = $1 AND ($2 IS NULL OR enabled = $2)
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(enabled)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1 AND ($2 IS NULL OR enabled = $2)",
    )
    .bind(tenant)
    .bind(enabled)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// Writes an endpoint's changeable fields as they are in `e`.
pub async fn update_endpoint(
    conn: &mut Conn,
    tenant: &str,
    e: &EndpointRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, enabled = $6,
             disabled_reason = $7, secret = $8, previous_secret = $9, previous_secret_until = $10,
             failing_since = $11, updated_at = $12
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&e.id)
    .bind(&e.url)
    .bind(&e.description)
    .bind(&e.event_types)
    .bind(e.enabled)
    .bind(&e.disabled_reason)
    .bind(&e.secret)
    .bind(&e.previous_secret)
    .bind(e.previous_secret_until)
    .bind(e.failing_since)
    .bind(e.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Parks an endpoint's pending messages (a disabled endpoint is sent nothing), or brings them
/// back due at `now` when it is enabled again.
pub async fn park_messages(
    conn: &mut Conn,
    endpoint: &str,
    park: bool,
    now: i64,
) -> Result<(), StoreError> {
    let sql = if park {
        "UPDATE webhook_messages SET next_attempt_at = NULL, updated_at = $2
         WHERE endpoint_id = $1 AND status = 'pending'"
    } else {
        "UPDATE webhook_messages SET next_attempt_at = $2, updated_at = $2
         WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at IS NULL"
    };
    sqlx::query(sql)
        .bind(endpoint)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes an endpoint with its messages and attempts; `true` if there was one.
///
/// On PostgreSQL other transactions may be adding rows that point at them meanwhile: an
/// event's messages for the endpoint, a worker's attempts for its messages. Both read what
/// they point at with `FOR KEY SHARE` first (`events`, [`insert_attempts`]), so locking the
/// endpoint and then its messages here waits for those already under way, and those that come
/// after find them gone and add nothing; each DELETE then sees every row committed before it.
pub async fn delete_endpoint(conn: &mut Conn, tenant: &str, id: &str) -> Result<bool, StoreError> {
    if get_endpoint(conn, tenant, id, true).await?.is_none() {
        return Ok(false);
    }
    let lock = RowLock::Update.for_conn(conn);
    if !lock.is_empty() {
        let sql = format!("SELECT id FROM webhook_messages WHERE endpoint_id = $1{lock}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    }
    for sql in [
        "DELETE FROM webhook_attempts WHERE endpoint_id = $1",
        "DELETE FROM webhook_messages WHERE endpoint_id = $1",
        "DELETE FROM webhook_endpoints WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    }
    Ok(true)
}

/// The tenant's enabled endpoints with their patterns, for the outbox; on PostgreSQL read
/// `FOR KEY SHARE`, so none is deleted before its messages are written (see
/// [`delete_endpoint`]).
pub async fn enabled_endpoints(
    conn: &mut Conn,
    tenant: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let lock = RowLock::KeyShare.for_conn(conn);
    let sql = format!(
        "SELECT id, event_types FROM webhook_endpoints WHERE tenant_id = $1 AND enabled = 1{lock}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .fetch_all(conn)
        .await?)
}

/// The messages of one event, one per endpoint, due at once.
pub async fn insert_messages(
    conn: &mut Conn,
    tenant: &str,
    endpoints: &[String],
    event_seq: i64,
    event_type: &str,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in endpoints.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                format!(
                    "(${}, $1, ${}, $2, $3, 'pending', 0, 0, $4, $4, $4)",
                    5 + 2 * r,
                    6 + 2 * r
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_messages (id, tenant_id, endpoint_id, event_seq, event_type,
                 status, attempts, failures, next_attempt_at, created_at, updated_at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(event_seq)
            .bind(event_type)
            .bind(now);
        for endpoint in chunk {
            q = q.bind(crate::ids::new_id("msg_")).bind(endpoint);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Due messages no process holds, oldest first, leaving out the endpoints in `busy`.
pub async fn due_candidates(
    pool: &AnyPool,
    now: i64,
    busy: &[String],
    limit: i64,
    per_endpoint: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    // Endpoints whose messages every process together holds as many of as the limit are left
    // out: a process holding none of them would otherwise claim in vain, again and again.
    let mut sql = String::from(
        "SELECT id, endpoint_id FROM webhook_messages
         WHERE next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
           AND endpoint_id NOT IN (SELECT endpoint_id FROM webhook_messages
               WHERE lease_until IS NOT NULL AND lease_until >= $1
               GROUP BY endpoint_id HAVING COUNT(*) >= $3)",
    );
    if !busy.is_empty() {
        sql.push_str(&format!(
            " AND endpoint_id NOT IN ({})",
            placeholders(4, busy.len(), 1)
        ));
    }
    sql.push_str(" ORDER BY next_attempt_at LIMIT $2");
    // Only placeholders are added to the statement; every value is bound.
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .bind(per_endpoint);
    for id in busy {
        q = q.bind(id);
    }
    Ok(q.fetch_all(pool).await?)
}

/// How many of each of `endpoints`' messages are held now, by any process, with the endpoints'
/// rows locked for the rest of the caller's transaction (PostgreSQL; SQLite has one writer):
/// claims of one endpoint's messages take turns, so together they never hold more than its
/// limit.
pub async fn held_now(
    conn: &mut Conn,
    endpoints: &[&str],
    now: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    if endpoints.is_empty() {
        return Ok(HashMap::new());
    }
    let lock = RowLock::Update.for_conn(conn);
    let sql = format!(
        "SELECT id FROM webhook_endpoints WHERE id IN ({}) ORDER BY id{lock}",
        placeholders(1, endpoints.len(), 1)
    );
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for e in endpoints {
        q = q.bind(*e);
    }
    q.fetch_all(&mut *conn).await?;
    let sql = format!(
        "SELECT endpoint_id, COUNT(*) FROM webhook_messages
         WHERE endpoint_id IN ({}) AND lease_until IS NOT NULL AND lease_until >= $1
         GROUP BY endpoint_id",
        placeholders(2, endpoints.len(), 1)
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql)).bind(now);
    for e in endpoints {
        q = q.bind(*e);
    }
    Ok(q.fetch_all(&mut *conn).await?.into_iter().collect())
}

/// Leases those of `ids` still due and unheld until `lease_until`; returns the ones taken.
/// PostgreSQL: rows another process is claiming are skipped, never waited for.
pub async fn claim(
    conn: &mut Conn,
    ids: &[String],
    now: i64,
    lease_until: i64,
) -> Result<Vec<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lock = RowLock::UpdateSkipLocked.for_conn(conn);
    let sql = format!(
        "UPDATE webhook_messages SET lease_until = $2 WHERE id IN (
             SELECT id FROM webhook_messages
             WHERE id IN ({}) AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until < $1){lock})
         RETURNING id",
        placeholders(3, ids.len(), 1)
    );
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(lease_until);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(conn).await?)
}

/// A claimed message with what sending it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    pub failures: i64,
    pub lease_until: Option<i64>,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: i64,
    pub payload: String,
}

pub async fn deliveries(pool: &AnyPool, ids: &[String]) -> Result<Vec<DeliveryRow>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.id, m.tenant_id, m.endpoint_id, m.failures, m.lease_until, e.url, e.secret,
             e.previous_secret, e.previous_secret_until, v.id AS event_id, v.event_type,
             v.occurred_at, v.payload
         FROM webhook_messages m
         JOIN webhook_endpoints e ON e.id = m.endpoint_id
         JOIN events v ON v.seq = m.event_seq
         WHERE m.id IN ({})",
        placeholders(1, ids.len(), 1)
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(pool).await?)
}

/// One attempt's record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub attempted_at: i64,
    pub succeeded: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// Logs attempts, but those whose message is gone (its endpoint was deleted meanwhile). On
/// PostgreSQL the messages are read `FOR KEY SHARE`, so an endpoint's deletion cannot remove
/// them between this read and the insert (see [`delete_endpoint`]).
pub async fn insert_attempts(conn: &mut Conn, attempts: &[&AttemptRow]) -> Result<(), StoreError> {
    let ids: Vec<&str> = attempts.iter().map(|a| a.message_id.as_str()).collect();
    let lock = RowLock::KeyShare.for_conn(conn);
    let mut present: Vec<String> = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id FROM webhook_messages WHERE id IN ({}){lock}",
            placeholders(1, chunk.len(), 1)
        );
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        present.extend(q.fetch_all(&mut *conn).await?);
    }
    let kept: Vec<&&AttemptRow> = attempts
        .iter()
        .filter(|a| present.contains(&a.message_id))
        .collect();
    // Nine values a row; fifty rows a statement stays well inside both databases' limits.
    for chunk in kept.chunks(50) {
        let sql = format!(
            "INSERT INTO webhook_attempts (id, message_id, endpoint_id, attempted_at, succeeded,
                 status_code, duration_ms, response_body, error) VALUES {}",
            placeholders(1, chunk.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in chunk {
            q = q
                .bind(&a.id)
                .bind(&a.message_id)
                .bind(&a.endpoint_id)
                .bind(a.attempted_at)
                .bind(a.succeeded)
                .bind(a.status_code)
                .bind(a.duration_ms)
                .bind(&a.response_body)
                .bind(&a.error);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A message's state after an attempt, written only while the claim that made the attempt
/// still holds it (`lease_until` unchanged): a message claimed again, retried by hand or
/// deleted meanwhile is left as it is.
#[derive(Debug, Clone)]
pub struct MessageUpdate<'a> {
    pub id: &'a str,
    pub lease_until: Option<i64>,
    pub status: &'static str,
    pub failures: i64,
    pub next_attempt_at: Option<i64>,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub now: i64,
}

pub async fn finish_attempts(
    conn: &mut Conn,
    updates: &[MessageUpdate<'_>],
) -> Result<(), StoreError> {
    if dialect::is_postgres(conn) {
        // One statement for many messages: a round trip each would bound the worker.
        for chunk in updates.chunks(100) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p = |c: usize| 2 + r * 7 + c;
                    format!(
                        "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS TEXT), \
                         CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), \
                         CAST(${} AS TEXT))",
                        p(0),
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6)
                    )
                })
                .collect();
            let sql = format!(
                "UPDATE webhook_messages AS m SET status = v.status, attempts = m.attempts + 1,
                     failures = v.failures, next_attempt_at = v.next_at, lease_until = NULL,
                     last_status_code = v.code, last_error = v.error, updated_at = $1,
                     delivered_at = CASE WHEN v.status = 'delivered' THEN $1 ELSE m.delivered_at END,
                     failed_at = CASE WHEN v.status = 'failed' THEN $1 ELSE m.failed_at END
                 FROM (VALUES {}) AS v(id, lease, status, failures, next_at, code, error)
                 WHERE m.id = v.id AND m.lease_until = v.lease",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(chunk[0].now);
            for u in chunk {
                q = q
                    .bind(u.id)
                    .bind(u.lease_until)
                    .bind(u.status)
                    .bind(u.failures)
                    .bind(u.next_attempt_at)
                    .bind(u.status_code)
                    .bind(u.error);
            }
            q.execute(&mut *conn).await?;
        }
        return Ok(());
    }
    // SQLite runs in the process: a statement a message costs no round trip.
    for u in updates {
        sqlx::query(
            "UPDATE webhook_messages SET status = $3, attempts = attempts + 1, failures = $4,
                 next_attempt_at = $5, lease_until = NULL, last_status_code = $6, last_error = $7,
                 updated_at = $8,
                 delivered_at = CASE WHEN $3 = 'delivered' THEN $8 ELSE delivered_at END,
                 failed_at = CASE WHEN $3 = 'failed' THEN $8 ELSE failed_at END
             WHERE id = $1 AND lease_until = $2",
        )
        .bind(u.id)
        .bind(u.lease_until)
        .bind(u.status)
        .bind(u.failures)
        .bind(u.next_attempt_at)
        .bind(u.status_code)
        .bind(u.error)
        .bind(u.now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Notes an endpoint's success (its failing run ends) or failure (one begins, if none has).
pub async fn note_outcome(
    conn: &mut Conn,
    endpoint: &str,
    succeeded: bool,
    now: i64,
) -> Result<(), StoreError> {
    let sql = if succeeded {
        "UPDATE webhook_endpoints SET failing_since = NULL
         WHERE id = $1 AND failing_since IS NOT NULL"
    } else {
        "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL"
    };
    let mut q = sqlx::query(sql).bind(endpoint);
    if !succeeded {
        q = q.bind(now);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Enabled endpoints among `ids` in a failing run: `(tenant, id, url, failing_since)`.
pub async fn failing(
    conn: &mut Conn,
    ids: &[&str],
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT tenant_id, id, url, failing_since FROM webhook_endpoints
         WHERE enabled = 1 AND failing_since IS NOT NULL AND id IN ({})",
        placeholders(1, ids.len(), 1)
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(conn).await?)
}

/// When the next message no process holds falls due, if any is waiting.
pub async fn next_due(pool: &AnyPool, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM webhook_messages
         WHERE next_attempt_at IS NOT NULL AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .fetch_one(pool)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub occurred_at: i64,
    pub payload: String,
}

const MESSAGE_SELECT: &str = "SELECT m.id, m.endpoint_id, v.id AS event_id, m.event_type, \
     m.status, m.attempts, m.next_attempt_at, m.last_status_code, m.last_error, m.created_at, \
     m.updated_at, m.delivered_at, m.failed_at, v.occurred_at, v.payload \
     FROM webhook_messages m JOIN events v ON v.seq = m.event_seq";

pub async fn list_messages(
    pool: &AnyPool,
    tenant: &str,
    endpoint: &str,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MessageRow>, i64), StoreError> {
    let sql = format!(
        "{MESSAGE_SELECT} WHERE m.tenant_id = $1 AND m.endpoint_id = $2
         AND ($3 IS NULL OR m.status = $3)
         ORDER BY m.created_at DESC, m.id DESC LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(endpoint)
        .bind(status)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_messages
         WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR status = $3)",
    )
    .bind(tenant)
    .bind(endpoint)
    .bind(status)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

pub async fn get_message(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<MessageRow>, StoreError> {
    let sql = format!("{MESSAGE_SELECT} WHERE m.tenant_id = $1 AND m.id = $2");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn attempts_of(pool: &AnyPool, message: &str) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, message_id, endpoint_id, attempted_at, succeeded, status_code, duration_ms,
             response_body, error
         FROM webhook_attempts WHERE message_id = $1 ORDER BY attempted_at, id",
    )
    .bind(message)
    .fetch_all(pool)
    .await?)
}

/// Makes a message due now (`pending`, `next_attempt_at = now`, `updated_at = now`) with a
/// fresh retry schedule, whatever its state.
pub async fn retry_message(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', failures = 0, next_attempt_at = $3,
             lease_until = NULL, updated_at = $3
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes every failed message of an endpoint created at or after `since` due now; how many.
pub async fn replay_failed(
    conn: &mut Conn,
    endpoint: &str,
    since: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', failures = 0, next_attempt_at = $3,
             lease_until = NULL, updated_at = $3
         WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2",
    )
    .bind(endpoint)
    .bind(since)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Attempts since `since`: (all, succeeded).
pub async fn attempt_counts(
    pool: &AnyPool,
    endpoint: &str,
    since: i64,
) -> Result<(i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(succeeded), 0) AS BIGINT) FROM webhook_attempts
         WHERE endpoint_id = $1 AND attempted_at >= $2",
    )
    .bind(endpoint)
    .bind(since)
    .fetch_one(pool)
    .await?)
}

/// Messages by status, of the whole history of an endpoint.
pub async fn message_counts(
    pool: &AnyPool,
    endpoint: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT status, COUNT(*) FROM webhook_messages WHERE endpoint_id = $1 GROUP BY status",
    )
    .bind(endpoint)
    .fetch_all(pool)
    .await?)
}
