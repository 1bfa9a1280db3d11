//! A tenant's identity provider: its settings, as stored. Every statement is scoped by tenant.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::StoreError;
use crate::store::Db;

/// Whether a person a call names must be proven by an actor token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorTokens {
    /// A named person without a token is taken on the caller's word, and recorded as not
    /// verified (`actorVerified: false`).
    Optional,
    /// A call that names a person without a valid token is 401 `actor_token_required`.
    Required,
}

impl ActorTokens {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorTokens::Optional => "optional",
            ActorTokens::Required => "required",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "optional" => Ok(ActorTokens::Optional),
            "required" => Ok(ActorTokens::Required),
            other => Err(StoreError::Corrupt(format!(
                "unknown actor_tokens {other:?}"
            ))),
        }
    }
}

/// A tenant's provider, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub tenant_id: String,
    pub issuer: String,
    pub audience: String,
    pub user_claim: String,
    pub roles_claim: Option<String>,
    pub actor_tokens: ActorTokens,
    /// Where its signing keys are, as its discovery document said when the settings were put.
    pub jwks_uri: String,
    /// The console's sign-in, when the tenant's staff sign in to it.
    pub console: Option<ConsoleClient>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How the console signs staff in at the provider: as the public client `client_id`, with the
/// authorization code flow and PKCE, at the endpoints its discovery document names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleClient {
    pub client_id: String,
    /// The scopes the console asks for (`openid` and whatever the provider needs to issue an
    /// access token for Omnirail's audience).
    pub scope: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    issuer: String,
    audience: String,
    user_claim: String,
    roles_claim: Option<String>,
    actor_tokens: String,
    jwks_uri: String,
    console_client_id: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    console_scope: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// The tenant's provider, if it has one.
pub async fn get(db: &Db, tenant: &str) -> Result<Option<Settings>, StoreError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT tenant_id, issuer, audience, user_claim, roles_claim, actor_tokens, jwks_uri,
                console_client_id, authorization_endpoint, token_endpoint, console_scope,
                created_at, updated_at
         FROM identity_providers WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(db.reader())
    .await?;
    row.map(|r| {
        let console = match (
            r.console_client_id,
            r.authorization_endpoint,
            r.token_endpoint,
        ) {
            (Some(client_id), Some(authorization_endpoint), Some(token_endpoint)) => {
                Some(ConsoleClient {
                    client_id,
                    scope: r.console_scope.unwrap_or_else(|| "openid".to_owned()),
                    authorization_endpoint,
                    token_endpoint,
                })
            }
            _ => None,
        };
        Ok(Settings {
            tenant_id: r.tenant_id,
            issuer: r.issuer,
            audience: r.audience,
            user_claim: r.user_claim,
            roles_claim: r.roles_claim,
            actor_tokens: ActorTokens::parse(&r.actor_tokens)?,
            jwks_uri: r.jwks_uri,
            console,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    })
    .transpose()
}

/// The tenant's `actorTokens` setting; `None` without a provider (names are taken as given).
pub async fn mode(db: &Db, tenant: &str) -> Result<Option<ActorTokens>, StoreError> {
    let mode: Option<String> =
        sqlx::query_scalar("SELECT actor_tokens FROM identity_providers WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(db.reader())
            .await?;
    mode.as_deref().map(ActorTokens::parse).transpose()
}

/// Creates or replaces the tenant's provider; answers when it was first set, if before (a
/// replacement keeps that creation time), `None` if it is new.
pub async fn put(db: &Db, s: &Settings) -> Result<Option<i64>, StoreError> {
    let mut tx = db.begin().await?;
    let existed: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM identity_providers WHERE tenant_id = $1")
            .bind(&s.tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO identity_providers (tenant_id, issuer, audience, user_claim, roles_claim,
             actor_tokens, jwks_uri, created_at, updated_at, console_client_id,
             authorization_endpoint, token_endpoint, console_scope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer,
             audience = excluded.audience, user_claim = excluded.user_claim,
             roles_claim = excluded.roles_claim, actor_tokens = excluded.actor_tokens,
             jwks_uri = excluded.jwks_uri, updated_at = excluded.updated_at,
             console_client_id = excluded.console_client_id,
             authorization_endpoint = excluded.authorization_endpoint,
             token_endpoint = excluded.token_endpoint,
             console_scope = excluded.console_scope",
    )
    .bind(&s.tenant_id)
    .bind(&s.issuer)
    .bind(&s.audience)
    .bind(&s.user_claim)
    .bind(&s.roles_claim)
    .bind(s.actor_tokens.as_str())
    .bind(&s.jwks_uri)
    .bind(s.created_at)
    .bind(s.updated_at)
    .bind(s.console.as_ref().map(|c| c.client_id.as_str()))
    .bind(
        s.console
            .as_ref()
            .map(|c| c.authorization_endpoint.as_str()),
    )
    .bind(s.console.as_ref().map(|c| c.token_endpoint.as_str()))
    .bind(s.console.as_ref().map(|c| c.scope.as_str()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(existed)
}
