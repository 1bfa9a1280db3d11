//! Push through Firebase Cloud Messaging's HTTP v1 API
//! (`POST /v1/projects/{project}/messages:send`), authorized with an OAuth 2.0 access token
//! that a service account obtains by the JWT bearer grant (RFC 7523) at its `token_uri`.
//! Tokens are kept until a minute before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Reach, check_base_url, http_failure, join, unreachable};
use crate::error::FieldError;
use crate::notifications::model::Attempt;
use crate::notifications::templates::TitleBody;

/// The scope FCM's send API requires.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// A Google service account key, as the JSON file Google issues (the fields FCM needs).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    /// Write-only: a PEM RSA private key.
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// Default `https://oauth2.googleapis.com/token`.
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

/// FCM settings.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FcmSettings {
    /// The service account key file's JSON, as Google issues it (other fields are ignored).
    pub service_account: ServiceAccount,
    /// Default `https://fcm.googleapis.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
}

impl std::fmt::Debug for FcmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmSettings")
            .field("project_id", &self.service_account.project_id)
            .field("client_email", &self.service_account.client_email)
            .field("private_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .finish()
    }
}

fn default_base_url() -> String {
    "https://fcm.googleapis.com".into()
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Sent {
    name: String,
}

/// Access tokens by service account and token endpoint.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl TokenCache {
    fn get(&self, key: &(String, String)) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, key: (String, String), token: String, ttl: Duration) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert(key, (token, Instant::now() + ttl));
    }

    fn forget(&self, key: &(String, String)) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// What became of one device token.
enum TokenOutcome {
    /// Accepted: FCM's name for the message, or what was odd about an answer without one.
    Sent(Result<String, String>),
    /// FCM no longer knows the token (404 `UNREGISTERED`): it should be forgotten.
    Unregistered(String),
    /// The access token was refused (401): it is forgotten and the attempt tried again.
    Unauthorized(String),
    Failed(Attempt),
}

impl FcmSettings {
    pub fn problems(&self, reach: Reach) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let sa = &self.service_account;
        if sa.project_id.is_empty()
            || !sa
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            errors.push(FieldError::new(
                "serviceAccount.project_id",
                "must be a Firebase project id",
            ));
        }
        if !crate::api::is_email(&sa.client_email) {
            errors.push(FieldError::new(
                "serviceAccount.client_email",
                "must be the service account's email",
            ));
        }
        if EncodingKey::from_rsa_pem(sa.private_key.as_bytes()).is_err() {
            errors.push(FieldError::new(
                "serviceAccount.private_key",
                "must be a PEM RSA private key",
            ));
        }
        check_base_url(
            &mut errors,
            "serviceAccount.token_uri",
            &sa.token_uri,
            reach,
        );
        check_base_url(&mut errors, "baseUrl", &self.base_url, reach);
        errors
    }

    pub fn shown(&self) -> Value {
        json!({
            "type": "fcm",
            "serviceAccount": {
                "project_id": self.service_account.project_id,
                "client_email": self.service_account.client_email,
                "token_uri": self.service_account.token_uri,
                "privateKeySet": true,
            },
            "baseUrl": self.base_url,
        })
    }

    fn cache_key(&self) -> (String, String) {
        (
            self.service_account.client_email.clone(),
            self.service_account.token_uri.clone(),
        )
    }

    /// An access token: from the cache, else by the JWT bearer grant.
    async fn access_token(
        &self,
        http: &reqwest::Client,
        cache: &TokenCache,
    ) -> Result<String, Attempt> {
        let key = self.cache_key();
        if let Some(t) = cache.get(&key) {
            return Ok(t);
        }
        let sa = &self.service_account;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &sa.client_email,
            scope: SCOPE,
            aud: &sa.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = sa.private_key_id.clone();
        let assertion = EncodingKey::from_rsa_pem(sa.private_key.as_bytes())
            .and_then(|k| jsonwebtoken::encode(&header, &claims, &k))
            .map_err(|e| Attempt::Permanent {
                code: "provider_misconfigured",
                error: format!("cannot sign the token request: {e}"),
            })?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let res = http
            .post(&sa.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(match http_failure(status, &body) {
                Attempt::Permanent { error, .. } => Attempt::Permanent {
                    code: "provider_auth_failed",
                    error: format!("token endpoint refused the service account: {error}"),
                },
                other => other,
            });
        }
        let answer: TokenAnswer = serde_json::from_str(&body).map_err(|_| Attempt::Transient {
            error: "token endpoint answered without an access_token".into(),
        })?;
        let ttl = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60));
        cache.put(key, answer.access_token.clone(), ttl);
        Ok(answer.access_token)
    }

    /// Sends `content` to each of `tokens`. Accepted if any device accepted it (the first
    /// message name is the provider message id); else transient if any failure was, else
    /// failed. Tokens FCM reports unregistered are returned to be forgotten.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        cache: &TokenCache,
        tokens: &[String],
        content: &TitleBody,
        data: &[(&str, &str)],
    ) -> (Attempt, Vec<String>) {
        let access = match self.access_token(http, cache).await {
            Ok(t) => t,
            Err(a) => return (a, Vec::new()),
        };
        let url = join(
            &self.base_url,
            &format!(
                "/v1/projects/{}/messages:send",
                self.service_account.project_id
            ),
        );
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let mut sent = Vec::new();
        let mut gone = Vec::new();
        let mut failures = Vec::new();
        for token in tokens {
            let body = json!({
                "message": {
                    "token": token,
                    "notification": {"title": content.title, "body": content.body},
                    "data": data,
                }
            });
            match self.send_one(http, &url, &access, &body).await {
                TokenOutcome::Sent(name) => sent.push(name),
                TokenOutcome::Unregistered(error) => {
                    gone.push(token.clone());
                    failures.push(Attempt::Permanent {
                        code: "push_token_unregistered",
                        error,
                    });
                }
                TokenOutcome::Unauthorized(error) => {
                    cache.forget(&self.cache_key());
                    failures.push(Attempt::Transient { error });
                }
                TokenOutcome::Failed(a) => failures.push(a),
            }
        }
        let attempt = if let Some(first) = sent.into_iter().next() {
            let (message_id, note) = match first {
                Ok(name) => (Some(name), None),
                Err(odd) => (None, Some(odd)),
            };
            Attempt::Accepted { message_id, note }
        } else if let Some(t) = failures
            .iter()
            .find(|a| matches!(a, Attempt::Transient { .. }))
        {
            t.clone()
        } else {
            failures.into_iter().next().unwrap_or(Attempt::Permanent {
                code: "no_push_device",
                error: "the recipient has no registered device".into(),
            })
        };
        (attempt, gone)
    }

    async fn send_one(
        &self,
        http: &reqwest::Client,
        url: &str,
        access: &str,
        body: &Value,
    ) -> TokenOutcome {
        let res = match http.post(url).bearer_auth(access).json(body).send().await {
            Ok(r) => r,
            Err(e) => return TokenOutcome::Failed(unreachable(&e)),
        };
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status.is_success() {
            // A 2xx means FCM took the message: sending it again would push it twice.
            return TokenOutcome::Sent(match serde_json::from_str::<Sent>(&text) {
                Ok(s) => Ok(s.name),
                Err(_) => Err(format!(
                    "FCM answered HTTP {} without a message name; the push is taken as sent",
                    status.as_u16()
                )),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND && text.contains("UNREGISTERED") {
            return TokenOutcome::Unregistered(format!("HTTP 404: {text}"));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let excerpt: String = text.chars().take(300).collect();
            return TokenOutcome::Unauthorized(format!("HTTP 401: {excerpt}"));
        }
        TokenOutcome::Failed(http_failure(status, &text))
    }
}
