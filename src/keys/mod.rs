//! The tenant's API keys as an organisation manages them: issued with a name, scopes and an
//! expiry, listed with their last use, revoked; by the API (`routes`, for keys holding
//! `admin`) and by the CLI (`omnirail key`). Issuing and revoking record `omni.api_key.created`
//! and `omni.api_key.revoked` in the key's own chain. Checking a key on a request is `auth`'s.

pub mod routes;

use crate::auth::key_cache;
use crate::auth::scopes::Scopes;
use crate::auth::{KEY_PREFIX, tenant_count};
use crate::error::StoreError;
use crate::events::{self, EventType, NewEvent};
use crate::ids::{new_id, new_secret, sha256_hex};
use crate::store::Db;

/// A key as created: the secret is only ever available here.
#[derive(Debug)]
pub struct IssuedKey {
    pub id: String,
    pub secret: String,
}

/// An API key as stored, never its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: Option<String>,
    /// Space-separated (`scopes::Scopes::parse_stored`).
    pub scopes: String,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

macro_rules! key_columns {
    () => {
        "id, tenant_id, name, scopes, created_at, created_by, expires_at, last_used_at, revoked_at"
    };
}

/// A tenant's API keys, oldest first.
pub async fn keys(db: &Db, tenant: &str) -> Result<Vec<KeyRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
    ))
    .bind(tenant)
    .fetch_all(db.reader())
    .await?)
}

/// A page of a tenant's API keys, newest first, and how many it has.
pub async fn key_page(
    pool: &sqlx::AnyPool,
    tenant: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<KeyRow>, i64), StoreError> {
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE tenant_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(tenant)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// One of a tenant's keys.
pub async fn key_row(
    pool: &sqlx::AnyPool,
    tenant: &str,
    id: &str,
) -> Result<Option<KeyRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A key to issue.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    pub name: Option<&'a str>,
    pub scopes: Scopes,
    pub expires_at: Option<i64>,
    /// The key that asks for it, through the API.
    pub created_by: Option<&'a str>,
}

/// Issues a new `admin` API key for `tenant_id`, without expiry (the CLI's default).
pub async fn create_key(
    db: &Db,
    tenant_id: &str,
    name: Option<&str>,
) -> Result<IssuedKey, StoreError> {
    let key = NewKey {
        name,
        scopes: Scopes::ADMIN,
        expires_at: None,
        created_by: None,
    };
    issue(db, tenant_id, &key).await
}

/// Issues a new API key for `tenant_id`, in a transaction of its own.
pub async fn issue(db: &Db, tenant_id: &str, key: &NewKey<'_>) -> Result<IssuedKey, StoreError> {
    let mut tx = db.begin().await?;
    let (key, _) = issue_key(&mut tx, tenant_id, key, db.now_ms()).await?;
    tx.commit().await?;
    Ok(key)
}

/// Issues a key in the caller's transaction and records `omni.api_key.created`.
pub async fn issue_key(
    conn: &mut crate::store::Conn,
    tenant_id: &str,
    new: &NewKey<'_>,
    now: i64,
) -> Result<(IssuedKey, KeyRow), StoreError> {
    let key = IssuedKey {
        id: new_id("key_"),
        secret: new_secret(KEY_PREFIX),
    };
    let row = KeyRow {
        id: key.id.clone(),
        tenant_id: tenant_id.to_owned(),
        name: new.name.map(str::to_owned),
        scopes: new.scopes.to_string(),
        created_at: now,
        created_by: new.created_by.map(str::to_owned),
        expires_at: new.expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at, scopes, expires_at,
         created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(tenant_id)
    .bind(&row.name)
    .bind(sha256_hex(&key.secret))
    .bind(now)
    .bind(&row.scopes)
    .bind(row.expires_at)
    .bind(&row.created_by)
    .execute(&mut *conn)
    .await?;
    record(conn, &row, EventType::ApiKeyCreated, now).await?;
    Ok((key, row))
}

async fn record(
    conn: &mut crate::store::Conn,
    row: &KeyRow,
    event_type: EventType,
    now: i64,
) -> Result<(), StoreError> {
    let name = row.name.as_deref().unwrap_or(&row.id);
    let summary = match event_type {
        EventType::ApiKeyRevoked => format!("API key revoked: {name}"),
        _ => format!("API key created: {name} ({})", row.scopes),
    };
    // Keys are issued from outside a serving process too (the CLI, a test's or a bench's
    // setup): the spine is wired here if it is not yet (it is once per process).
    crate::wire();
    let payload = serde_json::to_value(routes::view(row, now, None))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    events::record(
        conn,
        NewEvent {
            tenant_id: &row.tenant_id,
            event_type,
            actor_id: None,
            channel: None,
            summary,
            metadata: serde_json::json!({ "keyId": row.id, "scopes": payload["scopes"] }),
            payload,
            occurred_at: now,
            entities: vec![("api_key", &row.id)],
            parties: Default::default(),
        },
    )
    .await
}

/// What revoking a key found.
#[derive(Debug)]
pub enum Revoked {
    Now(KeyRow),
    Already,
    NoSuchKey,
}

/// Revokes a key (of `tenant`, when given) in the caller's transaction and records
/// `omni.api_key.revoked`. On PostgreSQL the revocation is announced to every `serve`
/// process when the transaction commits.
pub async fn revoke(
    conn: &mut crate::store::Conn,
    tenant: Option<&str>,
    key_id: &str,
    now: i64,
) -> Result<Revoked, StoreError> {
    let row: Option<KeyRow> = sqlx::query_as(concat!(
        "UPDATE api_keys SET revoked_at = $1
         WHERE id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR tenant_id = $3)
         RETURNING ",
        key_columns!(),
        ""
    ))
    .bind(now)
    .bind(key_id)
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM api_keys WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(key_id)
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await?;
        return Ok(match exists {
            Some(_) => Revoked::Already,
            None => Revoked::NoSuchKey,
        });
    };
    crate::store::dialect::notify(conn, key_cache::CHANNEL, key_id).await?;
    record(conn, &row, EventType::ApiKeyRevoked, now).await?;
    Ok(Revoked::Now(row))
}

/// Revokes a key by its id alone (the CLI); `false` if there is no such key or it was
/// already revoked.
pub async fn revoke_key(db: &Db, key_id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let done = revoke(&mut tx, None, key_id, db.now_ms()).await?;
    tx.commit().await?;
    Ok(matches!(done, Revoked::Now(_)))
}

/// Id of the tenant `serve` creates on an empty database.
pub const BOOTSTRAP_TENANT: &str = "ten_default";

/// On a database with no tenant, creates one with a first key; `None` otherwise. Several
/// processes starting together on one empty database create exactly one: the fixed id makes
/// every insert but the first a no-op.
pub async fn bootstrap(db: &Db) -> Result<Option<(String, IssuedKey)>, StoreError> {
    if tenant_count(db).await? > 0 {
        return Ok(None);
    }
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, created_at)
         SELECT $1, 'default', $2 WHERE NOT EXISTS (SELECT 1 FROM tenants)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(BOOTSTRAP_TENANT)
    .bind(db.now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let key = NewKey {
        name: Some("bootstrap"),
        scopes: Scopes::ADMIN,
        expires_at: None,
        created_by: None,
    };
    let (key, _) = issue_key(&mut tx, BOOTSTRAP_TENANT, &key, db.now_ms()).await?;
    tx.commit().await?;
    Ok(Some((BOOTSTRAP_TENANT.to_owned(), key)))
}
