//! SMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! HTTP Basic with the account SID and auth token, form-encoded), and the verification of
//! Twilio's signed status callbacks (`X-Twilio-Signature`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Sha1;
use utoipa::ToSchema;

use super::{Reach, check_base_url, http_failure, join, unreachable};
use crate::api::is_e164;
use crate::error::FieldError;
use crate::notifications::model::Attempt;

/// Twilio settings.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TwilioSettings {
    #[schema(example = "AC0123456789abcdef0123456789abcdef")]
    pub account_sid: String,
    /// Write-only. Also what Twilio signs its status callbacks with.
    pub auth_token: String,
    /// The sending number (E.164); or give `messagingServiceSid`.
    #[schema(example = "+15005550006")]
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// Default `https://api.twilio.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
}

impl std::fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("base_url", &self.base_url)
            .finish()
    }
}

fn default_base_url() -> String {
    "https://api.twilio.com".into()
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Twilio's answer to a new message (the part we read).
#[derive(Deserialize)]
struct Created {
    sid: String,
}

impl TwilioSettings {
    pub fn problems(&self, reach: Reach) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_sid(&self.account_sid, "AC") {
            errors.push(FieldError::new(
                "accountSid",
                "must be a Twilio account SID: AC and 32 hex digits",
            ));
        }
        if self.auth_token.trim().is_empty() || self.auth_token.len() > 200 {
            errors.push(FieldError::new("authToken", "must be given"));
        }
        match (&self.from, &self.messaging_service_sid) {
            (None, None) => {
                errors.push(FieldError::new("from", "give from or messagingServiceSid"))
            }
            (Some(from), _) if !is_e164(from) => {
                errors.push(FieldError::new("from", "must be an E.164 number"))
            }
            (_, Some(ms)) if !is_sid(ms, "MG") => errors.push(FieldError::new(
                "messagingServiceSid",
                "must be a messaging service SID: MG and 32 hex digits",
            )),
            _ => {}
        }
        check_base_url(&mut errors, "baseUrl", &self.base_url, reach);
        errors
    }

    pub fn shown(&self) -> Value {
        json!({
            "type": "twilio",
            "accountSid": self.account_sid,
            "authTokenSet": true,
            "from": self.from,
            "messagingServiceSid": self.messaging_service_sid,
            "baseUrl": self.base_url,
        })
    }

    /// Sends `text` to `to`; Twilio reports on it to `status_callback` when one is given.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        to: &str,
        text: &str,
        status_callback: Option<&str>,
    ) -> Attempt {
        let url = join(
            &self.base_url,
            &format!("/2010-04-01/Accounts/{}/Messages.json", self.account_sid),
        );
        let mut form: Vec<(&str, &str)> = vec![("To", to), ("Body", text)];
        match (&self.messaging_service_sid, &self.from) {
            (Some(ms), _) => form.push(("MessagingServiceSid", ms)),
            (None, Some(from)) => form.push(("From", from)),
            (None, None) => {}
        }
        if let Some(cb) = status_callback {
            form.push(("StatusCallback", cb));
        }
        let answer = http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await;
        let res = match answer {
            Ok(r) => r,
            Err(e) => return unreachable(&e),
        };
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return http_failure(status, &body);
        }
        // A 2xx means Twilio took the message: sending it again would send a second SMS,
        // whatever the body says.
        match serde_json::from_str::<Created>(&body) {
            Ok(c) => Attempt::Accepted {
                message_id: Some(c.sid),
                note: None,
            },
            Err(_) => Attempt::Accepted {
                message_id: None,
                note: Some(format!(
                    "Twilio answered HTTP {} without a message sid; the message is taken as sent",
                    status.as_u16()
                )),
            },
        }
    }
}

/// Twilio's signature of a request to `url` with these form parameters: the URL followed by
/// each parameter's name and value, sorted by name, HMAC-SHA1 with the auth token, base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `given` is Twilio's signature of the request, compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    STANDARD
        .decode(given.trim())
        .is_ok_and(|given| mac(auth_token, url, params).verify_slice(&given).is_ok())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_published_example() {
        // From Twilio's documentation of request validation.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let sig = signature("12345", url, &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", url, &params, &sig));
        assert!(!verify("12346", url, &params, &sig));
        assert!(!verify("12345", url, &params[1..], &sig));
    }
}
