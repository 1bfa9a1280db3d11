//! Staff identity: who a call is made by, proven by a token from the tenant's own OpenID
//! Connect provider.
//!
//! The tenant's API key is the bank's backend; a person (a relationship manager, an approver)
//! is proven by an access token from the bank's provider, carried beside the key in
//! `Authorization: Bearer` ([`ACTOR_HEADER`]). `auth::require_api_key` checks it ([`verify`])
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

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
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

/// Routes under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// A person proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenActor {
    /// The staff user of the tenant the token's user claim names.
    pub user_id: String,
    pub issuer: String,
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
}

impl ProvenActor {
    /// The proof as stored beside an event or a decision, and hashed into the event's link.
    pub fn proof(&self) -> String {
        serde_json::to_string(&Proof {
            verified: true,
            issuer: Some(self.issuer.clone()),
            subject: self.subject.clone(),
            token_id: self.token_id.clone(),
        })
        .unwrap_or_default()
    }
}

/// A stored proof, as [`ProvenActor::proof`] writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    pub verified: bool,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub token_id: Option<String>,
}

impl Proof {
    /// Reads a stored proof; `None` for none (or for text that is not one).
    fn read(stored: Option<&str>) -> Option<Self> {
        stored.and_then(|s| serde_json::from_str::<Proof>(s).ok())
    }

    /// Whether a stored proof says the actor was verified, and by which issuer.
    pub fn shown(stored: Option<&str>) -> (bool, Option<String>) {
        match Self::read(stored) {
            Some(p) => (p.verified, p.issuer),
            None => (false, None),
        }
    }
}

/// Who the call is made by: the person its actor token proves, if it carries one.
#[derive(Debug, Clone, Default)]
pub struct Actor(pub Option<Arc<ProvenActor>>);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Actor>().cloned().unwrap_or_default())
    }
}

impl Actor {
    pub fn proven(&self) -> Option<&ProvenActor> {
        self.0.as_deref()
    }

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
