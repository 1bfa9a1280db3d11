//! Staff identity: who a call is made by, proven by a token from the tenant's own OpenID
//! Connect provider.
//!
//! The tenant's API key is the bank's backend; a person (a relationship manager, an approver)
//! is proven by an access token from the bank's provider, carried beside the key in
//! `Authorization: Bearer` ([`ACTOR_HEADER`]). [`require_actor`], the layer after
//! `auth::require_api_key` on every router that takes a key, checks it ([`token::verify`])
//! and puts the [`Actor`] on the request. A handler then passes every actor field of its body
//! through [`Actor::claim`]: with a proven person, a field may be omitted (it is filled in) or
//! must name that person (else 403 `actor_mismatch`); without one, the tenant's `actorTokens`
//! setting decides whether a named person is taken on the caller's word (`optional`) or refused
//! (`required`: 401 `actor_token_required`). The event spine records the proof with every event
//! whose actor is the proven person, inside the hash chain (`calls::proof_for`).

pub mod keys;
pub mod provider;
mod routes;
pub mod token;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::actor::{Actor, ProvenActor};
use crate::auth::{ActorToken, Tenant};
use crate::error::{ApiError, ApiResult};

pub use provider::ActorTokens;

/// The request bodies that name a person acting, and the fields that name them: each handler
/// passes these through [`Actor::claim`], and the OpenAPI document gives their operations the
/// refusals that brings (`actor_mismatch`, `actor_token_required`). A test fails on a body field
/// that names an actor and is not listed here.
pub const ACTOR_BODIES: &[(&str, &str)] = &[
    ("CreateJourney", "createdBy"),
    ("AdvanceJourney", "advancedBy"),
    ("AssignJourney", "assignedBy"),
    ("CompleteJourney", "completedBy"),
    ("CancelJourney", "cancelledBy"),
    ("CreateApproval", "requestedBy"),
    ("CreateDecision", "approverId"),
    ("CreateDelegation", "delegatorId"),
    ("RevokeDelegation", "revokedBy"),
];

/// The header an actor token travels in, beside `x-api-key`.
pub const ACTOR_HEADER: &str = "Authorization: Bearer";

/// `routes` behind the layers every route a tenant's API key reaches needs, outermost first:
/// the key (`auth::require_api_key`), the person beside it ([`require_actor`]), idempotency,
/// and the call's scope (`calls::middleware`). Every such router takes them from here, so none
/// can check a key and leave an actor token unchecked.
pub fn keyed(routes: OpenApiRouter<AppState>, state: &AppState) -> OpenApiRouter<AppState> {
    use axum::middleware::{from_fn, from_fn_with_state};
    routes
        .layer(from_fn(crate::calls::middleware))
        .layer(from_fn_with_state(
            state.clone(),
            crate::idempotency::middleware,
        ))
        .layer(from_fn_with_state(state.clone(), require_actor))
        .layer(from_fn_with_state(
            state.clone(),
            crate::auth::require_api_key,
        ))
}

/// Middleware after `auth::require_api_key`: verifies the actor token the request presents
/// beside its key, if any, and carries the proven person on as the [`Actor`] extension, or
/// refuses the request (401, 503) before anything else runs.
pub async fn require_actor(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(ActorToken(token)) = req.extensions_mut().remove::<ActorToken>() {
        let tenant = req
            .extensions()
            .get::<Tenant>()
            .map(|t| t.id.clone())
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "An API key is required"))?;
        let actor = token::actor(&state, &tenant, &token).await?;
        req.extensions_mut().insert(actor);
    }
    Ok(next.run(req).await)
}

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

// The call's person (`Actor`, `ProvenActor`) and a stored proof (`Proof`) are plain data in
// `crate::actor`, which the low layers (calls, idempotency, the timeline) read without depending
// on this module; what verifies the person and holds body fields to them is here.

impl Actor {
    /// Holds a body's actor fields (`("advancedBy", &mut body.advanced_by)`, ...) to the call's
    /// actor, before anything is checked or changed. With a proven person, an omitted field is
    /// filled with them, and a field naming someone else is 403 `actor_mismatch`. Without one,
    /// a field that names a person is refused with 401 `actor_token_required` when the tenant
    /// requires actor tokens, and taken as named otherwise.
    pub async fn claim(
        &self,
        app: &AppState,
        tenant: &str,
        fields: &mut [(&'static str, &mut Option<String>)],
    ) -> ApiResult<()> {
        match self.proven() {
            Some(actor) => {
                for (name, value) in fields.iter_mut() {
                    match value.as_deref() {
                        None => **value = Some(actor.user_id.clone()),
                        Some(named) if named == actor.user_id => {}
                        Some(named) => return Err(mismatch(name, named, &actor.user_id)),
                    }
                }
                Ok(())
            }
            None => {
                let named = fields.iter().find(|(_, v)| v.is_some());
                if let Some((name, _)) = named
                    && provider::mode(&app.db, tenant).await? == Some(ActorTokens::Required)
                {
                    return Err(ApiError::unauthorized(
                        "actor_token_required",
                        format!(
                            "This tenant requires every person a call names ({name}) to be \
                             proven by an actor token from its identity provider \
                             ({ACTOR_HEADER} beside x-api-key)"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

fn mismatch(field: &str, named: &str, proven: &str) -> ApiError {
    ApiError::forbidden(
        "actor_mismatch",
        format!(
            "{field} names {named}, but the actor token proves {proven}: a call made by a person \
             acts as that person only"
        ),
    )
}
