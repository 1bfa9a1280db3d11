//! SQL for onboarding: configurations, onboardings, their tokens, handoffs and documents.
//! Every statement reached from the bank's API is scoped by tenant; statements reached with a
//! session token are scoped by the onboarding the token belongs to.

use crate::store::Conn;
use sqlx::{Any, AnyPool, Executor};

use crate::error::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConfigurationRow {
    pub id: String,
    pub name: String,
    pub template_id: String,
    /// JSON array: `["ALL"]` or ISO 3166-1 alpha-2 codes.
    pub countries: String,
    pub created_at: i64,
}

impl ConfigurationRow {
    pub fn countries(&self) -> Vec<String> {
        serde_json::from_str(&self.countries).unwrap_or_default()
    }
}

pub async fn insert_configuration(
    conn: &mut Conn,
    tenant: &str,
    c: &ConfigurationRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onboarding_configurations (tenant_id, id, name, template_id, countries, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.template_id)
    .bind(&c.countries)
    .bind(c.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_configuration<'e, E: Executor<'e, Database = Any>>(
    conn: E,
    tenant: &str,
    id: &str,
) -> Result<Option<ConfigurationRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, template_id, countries, created_at FROM onboarding_configurations
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_configurations(
    pool: &AnyPool,
    tenant: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ConfigurationRow>, i64), StoreError> {
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM onboarding_configurations WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(pool)
            .await?;
    let rows = sqlx::query_as(
        "SELECT id, name, template_id, countries, created_at FROM onboarding_configurations
         WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(tenant)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// An onboarding, with the status of its journey.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OnboardingRow {
    pub id: String,
    pub tenant_id: String,
    pub configuration_id: String,
    pub journey_id: String,
    pub customer_id: String,
    pub external_customer_id: Option<String>,
    pub country_code: String,
    pub language: Option<String>,
    pub redirect_url: Option<String>,
    /// JSON object.
    pub custom_fields: String,
    pub channel: String,
    /// JSON object: the fields given, per step id.
    pub data: String,
    /// `started`, `in_progress` or `finished`.
    pub status: String,
    pub row_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
    /// Not stored here: the journey's, as read with the onboarding.
    pub journey_status: String,
}

macro_rules! onboarding_columns {
    () => {
        "o.id, o.tenant_id, o.configuration_id, o.journey_id, o.customer_id, \
         o.external_customer_id, o.country_code, o.language, o.redirect_url, o.custom_fields, \
         o.channel, o.data, o.status, o.row_version, o.created_at, o.updated_at, o.expires_at, \
         o.finished_at, j.status AS journey_status"
    };
}

pub async fn insert_onboarding(conn: &mut Conn, o: &OnboardingRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onboardings (id, tenant_id, configuration_id, journey_id, customer_id,
             external_customer_id, country_code, language, redirect_url, custom_fields, channel,
             data, status, row_version, created_at, updated_at, expires_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&o.id)
    .bind(&o.tenant_id)
    .bind(&o.configuration_id)
    .bind(&o.journey_id)
    .bind(&o.customer_id)
    .bind(&o.external_customer_id)
    .bind(&o.country_code)
    .bind(&o.language)
    .bind(&o.redirect_url)
    .bind(&o.custom_fields)
    .bind(&o.channel)
    .bind(&o.data)
    .bind(&o.status)
    .bind(o.row_version)
    .bind(o.created_at)
    .bind(o.updated_at)
    .bind(o.expires_at)
    .bind(o.finished_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An onboarding by id; `tenant` scopes it for the bank's API.
pub async fn get_onboarding<'e, E: Executor<'e, Database = Any>>(
    conn: E,
    tenant: &str,
    id: &str,
) -> Result<Option<OnboardingRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        onboarding_columns!(),
        " FROM onboardings o JOIN journeys j ON j.id = o.journey_id
         WHERE o.tenant_id = $1 AND o.id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Takes the onboarding's row lock for the rest of the caller's transaction (bumping its
/// version), then reads it: every change to one onboarding runs one at a time, on fresh state.
pub async fn lock_onboarding(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<Option<OnboardingRow>, StoreError> {
    sqlx::query(
        "UPDATE onboardings SET row_version = row_version + 1, updated_at = $1
         WHERE tenant_id = $2 AND id = $3",
    )
    .bind(now)
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get_onboarding(&mut *conn, tenant, id).await
}

/// Writes what a change may change: the data given, the status, the finish time.
pub async fn update_onboarding(conn: &mut Conn, o: &OnboardingRow) -> Result<(), StoreError> {
    sqlx::query("UPDATE onboardings SET data = $1, status = $2, finished_at = $3 WHERE id = $4")
        .bind(&o.data)
        .bind(&o.status)
        .bind(o.finished_at)
        .bind(&o.id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The status an onboarding shows, in SQL: see `model::shown_status`.
macro_rules! shown_status {
    () => {
        "(CASE WHEN j.status = 'completed' THEN 'completed' \
          WHEN j.status = 'cancelled' THEN 'cancelled' \
          WHEN o.status = 'finished' THEN 'finished' \
          WHEN o.expires_at <= $4 THEN 'expired' ELSE o.status END)"
    };
}
macro_rules! onboarding_filter {
    () => {
        concat!(
            " FROM onboardings o JOIN journeys j ON j.id = o.journey_id \
             WHERE o.tenant_id = $1 AND ($2 IS NULL OR o.external_customer_id = $2) \
             AND ($3 IS NULL OR ",
            shown_status!(),
            " = $3)"
        )
    };
}

pub async fn list_onboardings(
    pool: &AnyPool,
    tenant: &str,
    external_customer_id: Option<&str>,
    status: Option<&str>,
    now: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<OnboardingRow>, i64), StoreError> {
    let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*)", onboarding_filter!()))
        .bind(tenant)
        .bind(external_customer_id)
        .bind(status)
        .bind(now)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        onboarding_columns!(),
        onboarding_filter!(),
        " ORDER BY o.created_at DESC, o.id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(tenant)
    .bind(external_customer_id)
    .bind(status)
    .bind(now)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// What a session token gives access to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub onboarding_id: String,
    pub tenant_id: String,
    pub channel: String,
    pub device_id: Option<String>,
    pub expires_at: i64,
}

pub async fn insert_token(
    conn: &mut Conn,
    token_hash: &str,
    onboarding_id: &str,
    channel: &str,
    device_id: Option<&str>,
    handoff_id: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onboarding_tokens (token_hash, onboarding_id, channel, device_id, handoff_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(onboarding_id)
    .bind(channel)
    .bind(device_id)
    .bind(handoff_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn token_by_hash(
    pool: &AnyPool,
    token_hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.onboarding_id, o.tenant_id, t.channel, t.device_id, o.expires_at
         FROM onboarding_tokens t JOIN onboardings o ON o.id = t.onboarding_id
         WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoffRow {
    pub id: String,
    pub onboarding_id: String,
    /// Not stored here: the onboarding's.
    pub tenant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_handoff(
    conn: &mut Conn,
    token_hash: &str,
    h: &HandoffRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onboarding_handoffs (id, token_hash, onboarding_id, created_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(&h.id)
    .bind(token_hash)
    .bind(&h.onboarding_id)
    .bind(h.created_at)
    .bind(h.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn handoff_by_hash<'e, E: Executor<'e, Database = Any>>(
    conn: E,
    token_hash: &str,
) -> Result<Option<HandoffRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT h.id, h.onboarding_id, o.tenant_id, h.created_at, h.expires_at, h.used_at
         FROM onboarding_handoffs h JOIN onboardings o ON o.id = h.onboarding_id
         WHERE h.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Marks the handoff used, if it is still unused and unexpired at `now`; `false` otherwise.
pub async fn claim_handoff(conn: &mut Conn, id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE onboarding_handoffs SET used_at = $1
         WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub onboarding_id: String,
    pub step_id: String,
    pub document_type: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub file_name: Option<String>,
    pub storage_key: String,
    pub created_at: i64,
}

pub async fn insert_document(conn: &mut Conn, d: &DocumentRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onboarding_documents (id, onboarding_id, step_id, document_type, content_type,
             size_bytes, sha256, file_name, storage_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.id)
    .bind(&d.onboarding_id)
    .bind(&d.step_id)
    .bind(&d.document_type)
    .bind(&d.content_type)
    .bind(d.size_bytes)
    .bind(&d.sha256)
    .bind(&d.file_name)
    .bind(&d.storage_key)
    .bind(d.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

macro_rules! document_columns {
    () => {
        "d.id, d.onboarding_id, d.step_id, d.document_type, d.content_type, d.size_bytes, \
         d.sha256, d.file_name, d.storage_key, d.created_at"
    };
}

/// One of an onboarding's documents, if the onboarding is the tenant's.
pub async fn document(
    pool: &AnyPool,
    tenant: &str,
    onboarding_id: &str,
    id: &str,
) -> Result<Option<DocumentRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        document_columns!(),
        " FROM onboarding_documents d JOIN onboardings o ON o.id = d.onboarding_id
         WHERE o.tenant_id = $1 AND d.onboarding_id = $2 AND d.id = $3"
    ))
    .bind(tenant)
    .bind(onboarding_id)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// An onboarding's documents, oldest first.
pub async fn documents<'e, E: Executor<'e, Database = Any>>(
    conn: E,
    onboarding_id: &str,
) -> Result<Vec<DocumentRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        document_columns!(),
        " FROM onboarding_documents d WHERE d.onboarding_id = $1 ORDER BY d.created_at, d.id"
    ))
    .bind(onboarding_id)
    .fetch_all(conn)
    .await?)
}
