//! The providers a tenant configures, one per channel: email over SMTP, SMS through Twilio's
//! Messages API, push through Firebase Cloud Messaging's HTTP v1 API. In-app needs none.
//!
//! Settings hold secrets (an SMTP password, a Twilio auth token, an FCM service account's
//! private key). They are stored as given and never answered back: a read shows which secrets
//! are set, not what they are. Base URLs are settable so a bank can route through its own
//! gateway and tests can point at local servers; plain-text SMTP and `http://` URLs are refused
//! unless `notification_allow_insecure_providers` is on.

pub mod fcm;
mod routes;
pub mod smtp;
pub mod twilio;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::model::{Attempt, NotifyChannel};
use crate::AppState;
use crate::error::FieldError;

pub use routes::status_callbacks;

/// Where Twilio posts its status callbacks, under `public_base_url`.
pub const STATUS_PATH_TWILIO: &str = "/api/v1/omni/notifications/providers/twilio/status";

pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// A channel's provider settings, by `type`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderSettings {
    Smtp(smtp::SmtpSettings),
    Twilio(twilio::TwilioSettings),
    Fcm(fcm::FcmSettings),
}

impl ProviderSettings {
    /// The provider's name, as deliveries and status callbacks name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Twilio(_) => "twilio",
            Self::Fcm(_) => "fcm",
        }
    }

    /// The only channel each provider serves.
    pub fn channel(&self) -> NotifyChannel {
        match self {
            Self::Smtp(_) => NotifyChannel::Email,
            Self::Twilio(_) => NotifyChannel::Sms,
            Self::Fcm(_) => NotifyChannel::Push,
        }
    }

    pub fn problems(&self, allow_insecure: bool) -> Vec<FieldError> {
        match self {
            Self::Smtp(s) => s.problems(allow_insecure),
            Self::Twilio(s) => s.problems(allow_insecure),
            Self::Fcm(s) => s.problems(allow_insecure),
        }
    }

    /// The settings without their secrets, for reads.
    pub fn shown(&self) -> Value {
        match self {
            Self::Smtp(s) => s.shown(),
            Self::Twilio(s) => s.shown(),
            Self::Fcm(s) => s.shown(),
        }
    }
}

/// An `http(s)` URL without credentials or query; `https` unless insecure is allowed.
pub(crate) fn check_base_url(
    errors: &mut Vec<FieldError>,
    field: &str,
    url: &str,
    allow_insecure: bool,
) {
    match reqwest::Url::parse(url) {
        Ok(u)
            if (u.scheme() == "https" || (allow_insecure && u.scheme() == "http"))
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none() => {}
        Ok(u) if u.scheme() == "http" => errors.push(FieldError::new(
            field,
            "must be https (http only with notification_allow_insecure_providers)",
        )),
        _ => errors.push(FieldError::new(
            field,
            "must be an https URL with a host and no credentials or query",
        )),
    }
}

/// Joins a configured base URL and a path.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// What an HTTP status from a provider means for the attempt: 429 and 5xx are worth another
/// try; any other non-success is refused for good.
pub(crate) fn http_failure(status: reqwest::StatusCode, body: &str) -> Attempt {
    let excerpt: String = body.chars().take(300).collect();
    let error = format!("HTTP {}: {excerpt}", status.as_u16());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Attempt::Transient { error }
    } else {
        Attempt::Permanent {
            code: "provider_rejected",
            error,
        }
    }
}

/// A request that got no answer: timed out, refused, reset. Always worth another try.
pub(crate) fn unreachable(e: &reqwest::Error) -> Attempt {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    Attempt::Transient {
        error: format!("{what}: {e}"),
    }
}
