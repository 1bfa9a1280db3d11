//! Tenants, API keys, and the middleware that turns a key into the request's tenant.
//!
//! A key is `omk_` followed by 256 random bits. It is shown once, when created; the database
//! keeps only its SHA-256. Requests carry it in `x-api-key` or `Authorization: Bearer`. A
//! missing key is 401 `unauthenticated`; an unknown or revoked one is 401 `invalid_api_key`.
//! Checked keys are remembered until a revocation is announced (PostgreSQL) or seen (SQLite):
//! [`key_cache`].
//!
//! Beside a key in `x-api-key`, `Authorization: Bearer` may carry a person's actor token from
//! the tenant's identity provider: it is handed on unverified ([`ActorToken`]) to the identity
//! layer that runs next (`identity::require_actor`), which verifies it and carries the person it
//! proves on as `actor::Actor`.

pub mod key_cache;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::error::{ApiError, StoreError};
use crate::ids::{new_id, new_secret, sha256_hex};
use crate::store::Db;

/// The tenant a request acts for, resolved from its API key.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub key_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "An API key is required"))
    }
}

/// The actor token a request presents beside its key, unverified: the identity layer, which
/// runs next, verifies it (or refuses the request) and puts the proven person in its place.
#[derive(Debug, Clone)]
pub struct ActorToken(pub String);

/// A call the console makes in-process for a signed-in member of staff (`console`): the tenant
/// is the session's, so no key is presented. Only code in this process can put it on a request
/// (an extension is a Rust value, never something a client sends), and everything after the key
/// runs as for any call: the person, idempotency, the call's scope, the handler's rules.
#[derive(Clone, Debug)]
pub struct InProcess(pub Tenant);

/// What every API key starts with.
pub const KEY_PREFIX: &str = "omk_";

/// Middleware for every `/api/v1` route: resolves the API key or answers 401, then counts the
/// request against the key's rate (`limits`), over which it answers 429.
pub async fn require_api_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(InProcess(tenant)) = req.extensions_mut().remove::<InProcess>() {
        req.extensions_mut().insert(tenant);
        return Ok(next.run(req).await);
    }
    let (key, actor_token) = presented(&req)?;
    let hash = sha256_hex(key);
    let tenant = match state.keys.get(&hash) {
        Some(tenant) => tenant,
        None => {
            let generation = state.keys.generation();
            let tenant = find_key(&state.db, &hash).await?.ok_or_else(invalid_key)?;
            state.keys.remember(hash, tenant.clone(), generation);
            tenant
        }
    };
    if let Some(limits) = &state.rate_limits {
        limits
            .check(&tenant.key_id)
            .map_err(crate::limits::rate_limited)?;
    }
    if let Some(token) = actor_token {
        let token = ActorToken(token.to_owned());
        req.extensions_mut().insert(token);
    }
    req.extensions_mut().insert(tenant);
    Ok(next.run(req).await)
}

/// The API key a request presents, and the actor token beside it if any: `Authorization:
/// Bearer` carries a key (starting `omk_`) or, beside `x-api-key`, a person's token.
fn presented(req: &Request) -> Result<(&str, Option<&str>), ApiError> {
    let headers = req.headers();
    let from_header = headers.get("x-api-key").map(|v| v.to_str());
    let from_bearer = headers.get(AUTHORIZATION).map(|v| {
        v.to_str().map(|s| {
            s.strip_prefix("Bearer ")
                .or_else(|| s.strip_prefix("bearer "))
                .unwrap_or("")
                .trim()
        })
    });
    let bearer_is_key = matches!(&from_bearer, Some(Ok(b)) if b.starts_with(KEY_PREFIX));
    match (from_header, from_bearer) {
        // Two API keys that disagree are refused, not resolved by picking one: a request must
        // not be taken for a tenant it may not have meant.
        (Some(Ok(key)), Some(Ok(bearer))) if bearer_is_key && key.trim() != bearer => {
            Err(ApiError::unauthorized(
                "conflicting_credentials",
                "x-api-key and Authorization name different keys; send one, or the same in both",
            ))
        }
        (Some(Ok(key)), Some(Ok(token))) if !bearer_is_key && !token.is_empty() => {
            Ok((nonempty(key)?, Some(token)))
        }
        // Another credential beside x-api-key (a gateway's Basic credentials) names no key.
        (Some(Ok(key)), _) => Ok((nonempty(key)?, None)),
        (None, Some(Ok(bearer))) if !bearer_is_key && bearer.contains('.') => {
            Err(ApiError::unauthorized(
                "unauthenticated",
                "An actor token travels beside the tenant's API key: send the key in x-api-key",
            ))
        }
        (None, Some(Ok(bearer))) => Ok((nonempty(bearer)?, None)),
        (None, None) => Err(ApiError::unauthorized(
            "unauthenticated",
            "An API key is required in x-api-key or Authorization: Bearer",
        )),
        (Some(Err(_)), _) | (None, Some(Err(_))) => Err(invalid_key()),
    }
}

fn nonempty(key: &str) -> Result<&str, ApiError> {
    match key.trim() {
        "" => Err(invalid_key()),
        key => Ok(key),
    }
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized("invalid_api_key", "The API key is unknown or revoked")
}

async fn find_key(db: &Db, hash: &str) -> Result<Option<Tenant>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(db.reader())
    .await?;
    Ok(row.map(|(key_id, id)| Tenant { id, key_id }))
}

/// A key as created: the secret is only ever available here.
#[derive(Debug)]
pub struct IssuedKey {
    pub id: String,
    pub secret: String,
}

/// Creates a tenant and returns its id.
pub async fn create_tenant(db: &Db, name: &str) -> Result<String, StoreError> {
    let id = new_id("ten_");
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(db.now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn tenant_exists(db: &Db, id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_one(db.reader())
        .await?;
    Ok(n > 0)
}

/// Every tenant: (id, name, plan, created at), oldest first.
pub async fn tenants(db: &Db) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, plan, created_at FROM tenants ORDER BY created_at, id")
            .fetch_all(db.reader())
            .await?,
    )
}

/// A tenant's API keys, never their secrets: (id, name, created at, revoked at), oldest first.
pub async fn keys(
    db: &Db,
    tenant: &str,
) -> Result<Vec<(String, Option<String>, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, revoked_at FROM api_keys WHERE tenant_id = $1
         ORDER BY created_at, id",
    )
    .bind(tenant)
    .fetch_all(db.reader())
    .await?)
}

pub async fn tenant_count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(db.reader())
        .await?)
}

/// Issues a new API key for `tenant_id`.
pub async fn create_key(
    db: &Db,
    tenant_id: &str,
    name: Option<&str>,
) -> Result<IssuedKey, StoreError> {
    let mut tx = db.begin().await?;
    let key = insert_key(&mut tx, tenant_id, name, db.now_ms()).await?;
    tx.commit().await?;
    Ok(key)
}

async fn insert_key(
    conn: &mut crate::store::Conn,
    tenant_id: &str,
    name: Option<&str>,
    now: i64,
) -> Result<IssuedKey, StoreError> {
    let key = IssuedKey {
        id: new_id("key_"),
        secret: new_secret(KEY_PREFIX),
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.id)
    .bind(tenant_id)
    .bind(name)
    .bind(sha256_hex(&key.secret))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(key)
}

/// Revokes a key; `false` if there is no such key or it was already revoked. On PostgreSQL
/// the revocation is announced to every `serve` process when it commits.
pub async fn revoke_key(db: &Db, key_id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(db.now_ms())
            .bind(key_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if done == 1 {
        crate::store::dialect::notify(&mut tx, key_cache::CHANNEL, key_id).await?;
    }
    tx.commit().await?;
    Ok(done == 1)
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
    let key = insert_key(&mut tx, BOOTSTRAP_TENANT, Some("bootstrap"), db.now_ms()).await?;
    tx.commit().await?;
    Ok(Some((BOOTSTRAP_TENANT.to_owned(), key)))
}
