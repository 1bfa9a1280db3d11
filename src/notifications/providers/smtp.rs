//! Email over SMTP, with `lettre`.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{REFUSED_PRIVATE, Reach};
use crate::bounded::Port;
use crate::error::FieldError;
use crate::notifications::model::Attempt;
use crate::notifications::templates::EmailContent;
use crate::webhooks::guard;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network, and only with
    /// `notification_allow_insecure_providers`.
    None,
}

/// SMTP settings.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmtpSettings {
    #[schema(example = "smtp.bank.example")]
    pub host: String,
    /// Default 587.
    #[serde(default = "default_port")]
    pub port: Port,
    #[serde(default)]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Write-only.
    pub password: Option<String>,
    /// The sender: `Bank <no-reply@bank.example>`.
    #[schema(example = "Omnirail Bank <no-reply@bank.example>")]
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

fn default_port() -> Port {
    Port::SUBMISSION
}

/// How long one SMTP exchange may take.
const TIMEOUT: Duration = Duration::from_secs(15);

impl SmtpSettings {
    pub fn problems(&self, reach: Reach) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.host.trim().is_empty() || self.host.len() > 253 || self.host.contains(['/', ' ']) {
            errors.push(FieldError::new("host", "must be a host name or address"));
        } else if !reach.private && guard::host_refused(&self.host) {
            errors.push(FieldError::new("host", REFUSED_PRIVATE));
        }
        if self.security == SmtpSecurity::None && !reach.insecure {
            errors.push(FieldError::new(
                "security",
                "none is refused unless notification_allow_insecure_providers is on",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            errors.push(FieldError::new(
                "password",
                "username and password go together",
            ));
        }
        if self.from.parse::<Mailbox>().is_err() {
            errors.push(FieldError::new(
                "from",
                "must be an address, optionally with a name: Bank <no-reply@bank.example>",
            ));
        }
        errors
    }

    pub fn shown(&self) -> Value {
        json!({
            "type": "smtp",
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
            "passwordSet": self.password.is_some(),
            "from": self.from,
        })
    }

    /// The address to connect to: the host as given if private targets are allowed; otherwise
    /// the first address it resolves to that is outside the network, so what is checked is what
    /// is connected to (a name that changes what it points to between the two is no way in).
    async fn server(&self, reach: Reach) -> Result<String, Attempt> {
        if reach.private {
            return Ok(self.host.clone());
        }
        let found = tokio::net::lookup_host((self.host.as_str(), self.port.number()))
            .await
            .map_err(|e| Attempt::Transient {
                error: format!("cannot resolve {}: {e}", self.host),
            })?;
        match guard::allowed_addresses(found.collect()).first() {
            Some(address) => Ok(address.ip().to_string()),
            // As for HTTP providers: an attempt that failed, tried again (the name may be
            // fixed), and the reason in `lastError`.
            None => Err(Attempt::Transient {
                error: format!("{} resolves only to refused addresses", self.host),
            }),
        }
    }

    /// A transport to `server`, speaking TLS (when it does) for the configured host's name.
    fn transport(&self, server: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = |host: &str| TlsParameters::new(host.to_owned()).map_err(|e| e.to_string());
        let tls = match self.security {
            SmtpSecurity::Starttls => Tls::Required(tls(&self.host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls(&self.host)?),
            SmtpSecurity::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
            .port(self.port.number())
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }

    /// Sends `content` to `to`. The message's `Message-ID` is made from `delivery_id` and is
    /// the provider message id.
    pub async fn send(
        &self,
        reach: Reach,
        delivery_id: &str,
        to: &str,
        content: &EmailContent,
    ) -> Attempt {
        let message_id = format!("<{delivery_id}@omnirail>");
        let (Ok(from), Ok(to)) = (self.from.parse::<Mailbox>(), to.parse::<Mailbox>()) else {
            return Attempt::Permanent {
                code: "invalid_email_address",
                error: format!("{to} is not an email address"),
            };
        };
        let builder = Message::builder()
            .from(from)
            .to(to)
            .subject(content.subject.clone())
            .message_id(Some(message_id.clone()));
        let message = match &content.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                content.text.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(content.text.clone()),
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                return Attempt::Permanent {
                    code: "invalid_message",
                    error: e.to_string(),
                };
            }
        };
        let server = match self.server(reach).await {
            Ok(server) => server,
            Err(attempt) => return attempt,
        };
        let transport = match self.transport(&server) {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Permanent {
                    code: "provider_misconfigured",
                    error: e,
                };
            }
        };
        match transport.send(message).await {
            Ok(_) => Attempt::Accepted {
                message_id: Some(message_id),
                note: None,
            },
            // A 5xx reply: the server refuses this message for good.
            Err(e) if e.is_permanent() => Attempt::Permanent {
                code: "provider_rejected",
                error: e.to_string(),
            },
            // 4xx replies, timeouts, refused connections, TLS failures: try again later.
            Err(e) => Attempt::Transient {
                error: e.to_string(),
            },
        }
    }
}
