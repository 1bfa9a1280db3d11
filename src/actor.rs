//! The person an API call is made by, as data: what a verified actor token proved
//! ([`ProvenActor`]), the request extension that carries it ([`Actor`]), and the proof stored
//! beside an event or a decision ([`Proof`]). `identity` verifies tokens and fills these in;
//! the layers below it (the call's scope, idempotency, the timeline) only read them.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The requester of a journey step's approval when nobody acting is named; it is not a user.
pub const SYSTEM_ACTOR: &str = "omnirail";

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
}
