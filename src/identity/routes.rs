//! `/api/v1/omni/identity-provider`: the tenant's OpenID Connect provider.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::provider::{self, ActorTokens, ConsoleClient, Settings};
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
    /// The client the operator console signs staff in as (a public client registered at the
    /// provider, with the redirect URI `{publicBaseUrl}/console/callback`, authorization code
    /// with PKCE). Absent: the tenant's staff cannot sign in to the console. With it, the
    /// discovery document must name an `authorization_endpoint` and a `token_endpoint`.
    #[schema(example = "omnirail-console")]
    pub console_client_id: Option<String>,
    /// The scopes the console asks the provider for, separated by spaces; default `openid`.
    /// Add what the provider needs to issue an access token for `audience` (Entra ID:
    /// `openid api://omnirail/.default`).
    #[schema(example = "openid api://omnirail/.default")]
    pub console_scope: Option<String>,
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
    /// The client the console signs staff in as; `null`: no console sign-in.
    pub console_client_id: Option<String>,
    /// The scopes the console asks for; `null` without a console client.
    pub console_scope: Option<String>,
    /// Where the console sends staff to sign in, from the discovery document.
    pub authorization_endpoint: Option<String>,
    /// Where the console exchanges a sign-in's code, from the discovery document.
    pub token_endpoint: Option<String>,
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
            console_client_id: s.console.as_ref().map(|c| c.client_id.clone()),
            console_scope: s.console.as_ref().map(|c| c.scope.clone()),
            authorization_endpoint: s.console.as_ref().map(|c| c.authorization_endpoint.clone()),
            token_endpoint: s.console.map(|c| c.token_endpoint),
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
    if let Some(client) = &body.console_client_id {
        check_text(&mut errors, "consoleClientId", client, 256, true);
    }
    if let Some(scope) = &body.console_scope {
        if body.console_client_id.is_none() {
            errors.push(FieldError::new(
                "consoleScope",
                "is the console's: it needs consoleClientId",
            ));
        }
        if scope.is_empty()
            || scope.len() > 1024
            || !scope
                .split(' ')
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
        {
            errors.push(FieldError::new(
                "consoleScope",
                "must be scope names of printable ASCII separated by single spaces",
            ));
        }
    }
    reject(errors)?;
    let discovered = app.identity.discover(&body.issuer).await.map_err(|why| {
        ApiError::unprocessable(
            "identity_provider_unreachable",
            format!("The identity provider's discovery failed: {why}"),
        )
    })?;
    let console = match body.console_client_id {
        None => None,
        Some(client_id) => Some(console_client(
            &app,
            client_id,
            body.console_scope.unwrap_or_else(|| "openid".to_owned()),
            &discovered,
        )?),
    };
    let now = app.db.now_ms();
    let mut settings = Settings {
        tenant_id: tenant.id.clone(),
        issuer: body.issuer,
        audience: body.audience,
        user_claim,
        roles_claim: body.roles_claim,
        actor_tokens: body.actor_tokens.unwrap_or(ActorTokens::Optional),
        jwks_uri: discovered.jwks_uri,
        console,
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

/// The console's client at the provider: its two endpoints must be named by the discovery
/// document and pass the outbound guard, else 422 `identity_provider_unreachable`.
fn console_client(
    app: &AppState,
    client_id: String,
    scope: String,
    discovered: &super::keys::Discovered,
) -> ApiResult<ConsoleClient> {
    let endpoint = |name: &str, url: &Option<String>| -> ApiResult<String> {
        let why = match url {
            None => format!("its discovery document names no {name}"),
            Some(url) => match app.identity.url_problem(url) {
                None => return Ok(url.clone()),
                Some(problem) => format!("its {name} {url} {problem}"),
            },
        };
        Err(ApiError::unprocessable(
            "identity_provider_unreachable",
            format!("The console cannot sign staff in at this provider: {why}"),
        ))
    };
    Ok(ConsoleClient {
        authorization_endpoint: endpoint(
            "authorization_endpoint",
            &discovered.authorization_endpoint,
        )?,
        token_endpoint: endpoint("token_endpoint", &discovered.token_endpoint)?,
        client_id,
        scope,
    })
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
