//! The console's sign-ins under way and its sessions, as stored. Every statement is scoped by
//! the token's hash (a random 256-bit value the browser holds), and a session by its tenant.

use crate::error::StoreError;
use crate::ids::sha256_hex;
use crate::store::Db;

/// How long a sign-in may take at the provider, in ms.
pub const SIGN_IN_MS: i64 = 10 * 60 * 1000;

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub tenant_id: String,
    pub user_id: String,
    pub issuer: String,
    pub subject: Option<String>,
    pub token_id: Option<String>,
    pub csrf: String,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Records a sign-in started with `state` (kept only as its hash) and the PKCE `verifier`.
pub async fn start_sign_in(
    db: &Db,
    state: &str,
    tenant: &str,
    verifier: &str,
    return_to: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM console_sign_ins WHERE created_at < $1")
        .bind(now - SIGN_IN_MS)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_sign_ins (state_hash, tenant_id, verifier, return_to, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sha256_hex(state))
    .bind(tenant)
    .bind(verifier)
    .bind(return_to)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the sign-in `state` names, once: `(tenant, verifier, return_to)` if it was started
/// within [`SIGN_IN_MS`]; it is gone afterwards either way.
pub async fn take_sign_in(
    db: &Db,
    state: &str,
    now: i64,
) -> Result<Option<(String, String, Option<String>)>, StoreError> {
    let mut tx = db.begin().await?;
    let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
        "DELETE FROM console_sign_ins WHERE state_hash = $1
         RETURNING tenant_id, verifier, return_to, created_at",
    )
    .bind(sha256_hex(state))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row
        .filter(|r| r.3 >= now - SIGN_IN_MS)
        .map(|r| (r.0, r.1, r.2)))
}

/// What a new session is made of.
pub struct NewSession<'a> {
    pub token: &'a str,
    pub tenant: &'a str,
    pub user: &'a str,
    pub issuer: &'a str,
    pub subject: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub csrf: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores a new session, and forgets every session that has ended (`idle_ms` unused, or past
/// its absolute expiry).
pub async fn create(db: &Db, s: &NewSession<'_>, idle_ms: i64) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(s.now)
        .bind(s.now - idle_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, tenant_id, user_id, issuer, subject, token_id,
             csrf, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
    )
    .bind(sha256_hex(s.token))
    .bind(s.tenant)
    .bind(s.user)
    .bind(s.issuer)
    .bind(s.subject)
    .bind(s.token_id)
    .bind(s.csrf)
    .bind(s.now)
    .bind(s.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The session `token` names, if any (whether it has ended is the caller's to judge).
pub async fn find(db: &Db, token: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, user_id, issuer, subject, token_id, csrf, last_seen_at, expires_at
         FROM console_sessions WHERE token_hash = $1",
    )
    .bind(sha256_hex(token))
    .fetch_optional(db.reader())
    .await?)
}

/// Marks the session used at `now`.
pub async fn touch(db: &Db, token: &str, now: i64) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the session `token` names.
pub async fn end(db: &Db, token: &str) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
