//! The providers a tenant configures, one per channel: email over SMTP, SMS through Twilio's
//! Messages API, push through Firebase Cloud Messaging's HTTP v1 API. In-app needs none.
//!
//! Settings hold secrets (an SMTP password, a Twilio auth token, an FCM service account's
//! private key). They are stored as given and never answered back: a read shows which secrets
//! are set, not what they are. Base URLs are settable so a bank can route through its own
//! gateway and tests can point at local servers; plain-text SMTP and `http://` URLs are refused
//! unless `notification_allow_insecure_providers` is on, and addresses inside the network
//! (loopback, private, link-local, the clouds' metadata service) unless
//! `notification_allow_private_providers` is: a tenant's settings must not make Omnirail a
//! way into the bank's network. Names are checked again where they are resolved, at each send.

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
use crate::config::Config;
use crate::error::FieldError;
use crate::webhooks::guard;

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

    /// What is wrong with these settings under `reach`: checked when they are set, and again
    /// before each send, so a configuration made stricter applies to providers already set.
    pub fn problems(&self, reach: Reach) -> Vec<FieldError> {
        match self {
            Self::Smtp(s) => s.problems(reach),
            Self::Twilio(s) => s.problems(reach),
            Self::Fcm(s) => s.problems(reach),
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

/// Where the providers a tenant sets may be, as the configuration allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reach {
    /// Plain-text SMTP and `http://` URLs: `notification_allow_insecure_providers`.
    pub insecure: bool,
    /// Loopback, private, link-local and metadata addresses, and names that can only be
    /// local: `notification_allow_private_providers`.
    pub private: bool,
}

impl Reach {
    pub fn of(config: &Config) -> Self {
        Self {
            insecure: config.notification_allow_insecure_providers,
            private: config.notification_allow_private_providers,
        }
    }
}

/// The message for a provider address refused for where it points.
pub(crate) const REFUSED_PRIVATE: &str = "must not point to a loopback, private, link-local or \
     metadata address (allowed only with notification_allow_private_providers)";

/// An `http(s)` URL without credentials or query; `https` unless insecure is allowed, and
/// outside the network unless private targets are.
pub(crate) fn check_base_url(errors: &mut Vec<FieldError>, field: &str, url: &str, reach: Reach) {
    match reqwest::Url::parse(url) {
        Ok(u)
            if (u.scheme() == "https" || (reach.insecure && u.scheme() == "http"))
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none() =>
        {
            if !reach.private && guard::refused_literal(&u) {
                errors.push(FieldError::new(field, REFUSED_PRIVATE));
            }
        }
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
    Attempt::Transient {
        error: guard::describe(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_url(url: &str, reach: Reach) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_base_url(&mut errors, "baseUrl", url, reach);
        errors
    }

    #[test]
    fn provider_urls_inside_the_network_need_private_reach() {
        let strict = Reach::default();
        let private = Reach {
            insecure: false,
            private: true,
        };
        for url in [
            "https://127.0.0.1:8443",
            "https://[::1]/",
            "https://169.254.169.254/token",
            "https://10.20.0.4",
            "https://localhost",
            "https://gateway.internal/twilio",
            "https://gateway",
        ] {
            let errors = base_url(url, strict);
            assert_eq!(errors.len(), 1, "{url}");
            assert_eq!(errors[0].message, REFUSED_PRIVATE, "{url}");
            assert!(base_url(url, private).is_empty(), "{url}");
        }
        assert!(base_url("https://api.twilio.com", strict).is_empty());
        assert!(base_url("https://93.184.216.34/sms", strict).is_empty());
        // Plain http stays a matter of `insecure`, whatever the target.
        assert_ne!(
            base_url("http://api.twilio.com", private)[0].message,
            REFUSED_PRIVATE
        );
    }

    #[test]
    fn smtp_hosts_inside_the_network_need_private_reach() {
        let smtp = |host: &str| {
            ProviderSettings::Smtp(smtp::SmtpSettings {
                host: host.into(),
                port: crate::bounded::Port::SUBMISSION,
                security: smtp::SmtpSecurity::Starttls,
                username: None,
                password: None,
                from: "no-reply@bank.example".into(),
            })
        };
        let private = Reach {
            insecure: false,
            private: true,
        };
        for host in [
            "10.0.0.25",
            "127.0.0.1",
            "[::1]",
            "::1",
            "localhost",
            "relay",
        ] {
            let errors = smtp(host).problems(Reach::default());
            assert_eq!(errors.len(), 1, "{host}");
            assert_eq!(
                (errors[0].field.as_str(), errors[0].message.as_str()),
                ("host", REFUSED_PRIVATE),
                "{host}"
            );
            assert!(smtp(host).problems(private).is_empty(), "{host}");
        }
        assert!(
            smtp("smtp.bank.example")
                .problems(Reach::default())
                .is_empty()
        );
    }
}
