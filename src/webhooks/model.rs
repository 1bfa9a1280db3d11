//! The rules of webhooks, without a database: which events an endpoint subscribes to, how a
//! message is signed (Standard Webhooks), when a failed message is tried again, when an
//! endpoint is disabled.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::FieldError;
use crate::events::EventType;

/// Every event Omnirail records, by its webhook name: what `eventTypes` may name (the
/// spine's catalogue, `events::EventType`).
pub fn event_types() -> impl Iterator<Item = &'static str> {
    EventType::ALL.iter().map(|t| t.as_str())
}

/// Most patterns one endpoint may name.
pub const MAX_EVENT_TYPES: usize = 100;

/// Whether an endpoint subscribed to `patterns` gets `event_type`: every event when there are
/// no patterns; otherwise an exact name, or a prefix written `omni.journey.*` (or `omni.*`).
pub fn subscribes(patterns: &[String], event_type: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| pattern_matches(p, event_type))
}

fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

/// Checks the patterns of `eventTypes`: each an event of [`event_types`] or a prefix ending
/// `.*` that matches at least one of them; none twice.
pub fn check_event_types(patterns: &[String]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if patterns.len() > MAX_EVENT_TYPES {
        errors.push(FieldError::new(
            "eventTypes",
            format!("must name at most {MAX_EVENT_TYPES} event types"),
        ));
        return errors;
    }
    for (i, p) in patterns.iter().enumerate() {
        let field = format!("eventTypes[{i}]");
        let known = if p.ends_with(".*") {
            event_types().any(|t| pattern_matches(p, t))
        } else {
            event_types().any(|t| t == p)
        };
        if !known {
            errors.push(FieldError::new(
                field,
                "must be an event type (omni.journey.created) or a prefix of some (omni.journey.*); \
                 GET /api/v1/omni/webhooks/event-types lists them",
            ));
        } else if patterns[..i].contains(p) {
            errors.push(FieldError::new(field, "is named twice"));
        }
    }
    errors
}

/// A signing secret: `whsec_` and the base64 of 24 to 64 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a secret given by a client must look like.
pub const SECRET_RULE: &str = "must be whsec_ followed by the base64 of 24 to 64 bytes";

impl Secret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.strip_prefix("whsec_")?).ok()?;
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    /// `whsec_<base64>`, as shown once and stored.
    pub fn expose(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, as the Standard Webhooks
    /// specification signs a message.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret in force, space-separated.
pub fn signature_header(
    secrets: &[&Secret],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// After a message's `failures`-th failed attempt in a row: wait this long and try again, or
/// `None`: the schedule is spent and the message has failed.
pub fn retry_after(failures: u64, schedule_ms: &[u64]) -> Option<u64> {
    let i = usize::try_from(failures).ok()?.checked_sub(1)?;
    schedule_ms.get(i).copied()
}

/// Whether an endpoint failing without a success since `failing_since` is to be disabled now.
pub fn should_disable(failing_since: Option<i64>, now: i64, disable_after_ms: i64) -> bool {
    failing_since.is_some_and(|since| now - since >= disable_after_ms)
}

/// Most of a receiver's answer kept with an attempt.
pub const MAX_RESPONSE_BYTES: usize = 4096;

/// The first 4 KiB of a response body, cut at a character boundary.
pub fn truncate_response(body: &str) -> String {
    if body.len() <= MAX_RESPONSE_BYTES {
        return body.to_owned();
    }
    let mut end = MAX_RESPONSE_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// A message's state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt of the schedule failed (a retry or replay sends it again).
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_subscribes_to_all_and_prefixes_match_their_group() {
        assert!(subscribes(&[], "omni.journey.created"));
        let p = vec![
            "omni.journey.*".to_owned(),
            "omni.approval.approved".to_owned(),
        ];
        assert!(subscribes(&p, "omni.journey.cancelled"));
        assert!(subscribes(&p, "omni.approval.approved"));
        assert!(!subscribes(&p, "omni.approval.rejected"));
        assert!(!subscribes(&p, "omni.journeyx.created"));
        assert!(subscribes(
            &["omni.*".to_owned()],
            "omni.delegation.revoked"
        ));
    }

    #[test]
    fn unknown_and_repeated_patterns_are_named() {
        let p: Vec<String> = [
            "omni.journey.*",
            "omni.journey.exploded",
            "omni.nothing.*",
            "*",
            "omni.journey.*",
        ]
        .map(String::from)
        .to_vec();
        let fields: Vec<String> = check_event_types(&p).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "eventTypes[1]",
                "eventTypes[2]",
                "eventTypes[3]",
                "eventTypes[4]"
            ]
        );
        assert!(check_event_types(&["omni.*".to_owned()]).is_empty());
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_round_trip_and_refuse_bad_sizes() {
        let s = Secret::generate();
        assert_eq!(Secret::parse(&s.expose()), Some(s.clone()));
        assert!(Secret::parse("whsec_c2hvcnQ=").is_none());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
        let header = signature_header(&[&s, &Secret::generate()], "msg_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
    }

    #[test]
    fn the_schedule_is_followed_then_spent() {
        let schedule = [5_000, 300_000];
        assert_eq!(retry_after(1, &schedule), Some(5_000));
        assert_eq!(retry_after(2, &schedule), Some(300_000));
        assert_eq!(retry_after(3, &schedule), None);
        assert_eq!(retry_after(0, &schedule), None);
    }

    #[test]
    fn disabled_only_after_failing_for_the_whole_period() {
        assert!(!should_disable(None, 10_000, 1_000));
        assert!(!should_disable(Some(9_500), 10_000, 1_000));
        assert!(should_disable(Some(9_000), 10_000, 1_000));
    }

    #[test]
    fn responses_are_cut_at_4_kib_on_a_character_boundary() {
        let long = "é".repeat(3000);
        let cut = truncate_response(&long);
        assert!(cut.len() <= MAX_RESPONSE_BYTES && cut.len() >= MAX_RESPONSE_BYTES - 1);
        assert_eq!(truncate_response("ok"), "ok");
    }
}
