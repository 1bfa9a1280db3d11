//! `/api/v1/omni/identity-provider`: the tenant's OpenID Connect provider.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::provider::{self, ActorTokens, Settings};
use crate::AppState;
use crate::api::check_text;
use crate::api::{ApiJson, Data, data, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_provider, get_provider))
}

/// Body of `PUT /identity-provider`: the whole setting, replacing what was there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutIdentityProvider {
    /// The provider's issuer, exactly as its tokens' `iss` and its discovery document state it.
    /// `https` (`http` only with `identity.allow_http`), and not at a private address unless
    /// `identity.allow_private_providers`.
    #[schema(
        example = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
    )]
    pub issuer: String,
    /// The audience Omnirail's actor tokens are issued for (their `aud`).
    #[schema(example = "api://omnirail")]
    pub audience: String,
    /// The claim that carries the staff user's id in the directory; default `sub`. A name
    /// with dots that is not a claim itself walks into objects (`ext.employee_id`).
    #[schema(example = "preferred_username")]
    pub user_claim: Option<String>,
    /// A claim with the person's roles (an array of strings, or one string separated by
    /// spaces), synced into the directory whenever a token of theirs is verified; absent, roles
    /// stay as the directory has them. Keycloak: `realm_access.roles`; Entra ID: `roles`.
    #[schema(example = "roles")]
    pub roles_claim: Option<String>,
    /// Default `optional`.
    pub actor_tokens: Option<ActorTokens>,
}

/// A tenant's identity provider.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderView {
    pub issuer: String,
    pub audience: String,
    pub user_claim: String,
    pub roles_claim: Option<String>,
    pub actor_tokens: ActorTokens,
    /// Where the provider publishes its signing keys, from its discovery document.
    pub jwks_uri: String,
    /// How a call carries a person's token: `Authorization: Bearer <token>`, beside
    /// `x-api-key`.
    #[schema(example = "Authorization: Bearer")]
    pub actor_token_header: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Settings> for IdentityProviderView {
    fn from(s: Settings) -> Self {
        Self {
            issuer: s.issuer,
            audience: s.audience,
            user_claim: s.user_claim,
            roles_claim: s.roles_claim,
            actor_tokens: s.actor_tokens,
            jwks_uri: s.jwks_uri,
            actor_token_header: super::ACTOR_HEADER,
            created_at: to_rfc3339(s.created_at),
            updated_at: to_rfc3339(s.updated_at),
        }
    }
}

/// A claim name: 1 to 128 printable ASCII characters.
fn check_claim(errors: &mut Vec<FieldError>, field: &str, claim: &str) {
    if claim.is_empty() || claim.len() > 128 || !claim.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(FieldError::new(
            field,
            "must be a claim name of 1 to 128 printable ASCII characters",
        ));
    }
}

/// Set the tenant's identity provider.
///
/// Its discovery document is read at once (`{issuer}/.well-known/openid-configuration`), and
/// its signing keys from the `jwks_uri` it names: a provider that cannot be reached, or whose
/// document names another issuer, is refused and nothing changes.
#[utoipa::path(
    put, path = "/identity-provider", operation_id = "omni.identityProvider.put", tag = "Staff identity",
    request_body = PutIdentityProvider,
    responses(
        (status = 200, description = "Provider replaced", body = Data<IdentityProviderView>),
        (status = 201, description = "Provider set", body = Data<IdentityProviderView>),
        (status = 422, description = "Invalid fields, or an issuer URL refused by the outbound guard (`validation_failed`); discovery failed: unreachable, not a discovery document, another issuer, no usable signing key (`identity_provider_unreachable`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_provider(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<PutIdentityProvider>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if let Some(problem) = app.identity.url_problem(&body.issuer) {
        errors.push(FieldError::new("issuer", problem));
    }
    check_text(&mut errors, "audience", &body.audience, 512, true);
    let user_claim = body.user_claim.unwrap_or_else(|| "sub".to_owned());
    check_claim(&mut errors, "userClaim", &user_claim);
    if let Some(claim) = &body.roles_claim {
        check_claim(&mut errors, "rolesClaim", claim);
    }
    reject(errors)?;
    let discovered = app.identity.discover(&body.issuer).await.map_err(|why| {
        ApiError::unprocessable(
            "identity_provider_unreachable",
            format!("The identity provider's discovery failed: {why}"),
        )
    })?;
    let now = app.db.now_ms();
    let mut settings = Settings {
        tenant_id: tenant.id.clone(),
        issuer: body.issuer,
        audience: body.audience,
        user_claim,
        roles_claim: body.roles_claim,
        actor_tokens: body.actor_tokens.unwrap_or(ActorTokens::Optional),
        jwks_uri: discovered.jwks_uri,
        created_at: now,
        updated_at: now,
    };
    let earlier = provider::put(&app.db, &settings).await?;
    if let Some(created_at) = earlier {
        settings.created_at = created_at;
    }
    app.identity.prime(&settings, discovered.keys, now).await;
    Ok(data(
        put_status(earlier.is_none()),
        IdentityProviderView::from(settings),
    ))
}

/// Get the tenant's identity provider.
#[utoipa::path(
    get, path = "/identity-provider", operation_id = "omni.identityProvider.get", tag = "Staff identity",
    responses(
        (status = 200, description = "The provider", body = Data<IdentityProviderView>),
        (status = 404, description = "The tenant has no identity provider (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_provider(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let settings = provider::get(&app.db, &tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Identity provider"))?;
    Ok(data(StatusCode::OK, IdentityProviderView::from(settings)))
}
