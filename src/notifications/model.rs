//! The pure rules of notifications: channels, priorities, how a notification's status follows
//! from its deliveries, retry backoff and the choice of language (quiet hours are the
//! customer's: `customers::quiet_hours`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A way of reaching a recipient.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyChannel {
    Push,
    Email,
    Sms,
    InApp,
}

impl NotifyChannel {
    pub const ALL: [NotifyChannel; 4] = [Self::Push, Self::Email, Self::Sms, Self::InApp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::InApp => "in_app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The customer record's preference (`PUSH`, `EMAIL`, `SMS`, `IN_APP`, either case).
    pub fn from_preference(s: &str) -> Option<Self> {
        Self::parse(&s.to_ascii_lowercase())
    }
}

/// How urgent a notification is. Only `critical` goes out during quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Normal, Self::High, Self::Critical]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Who receives a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientType {
    #[default]
    Customer,
    User,
}

impl RecipientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::User => "user",
        }
    }
}

/// Where one channel's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet accepted by the provider: scheduled, held, being sent, or waiting to retry.
    Pending,
    /// Accepted by the provider.
    Sent,
    /// Confirmed by the provider (in-app: stored in the inbox).
    Delivered,
    /// Failed for good; `errorCode` says why.
    Failed,
    /// Cancelled before it was sent.
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Sent,
            Self::Delivered,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Whether nothing more will happen to the delivery but a provider's late confirmation.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// A notification's status: how far it got on its best channel.
///
/// - `delivered` once any channel is delivered;
/// - else `sent` once any channel is sent;
/// - else `pending` while any channel may still go;
/// - else `cancelled` if it was cancelled, and `failed` when every channel failed.
///
/// So `failed` means the recipient was reached on no channel, and a failure on one channel
/// of several shows on that channel's delivery.
pub fn derive_status(deliveries: &[DeliveryStatus]) -> DeliveryStatus {
    let any = |s: DeliveryStatus| deliveries.contains(&s);
    if any(DeliveryStatus::Delivered) {
        DeliveryStatus::Delivered
    } else if any(DeliveryStatus::Sent) {
        DeliveryStatus::Sent
    } else if any(DeliveryStatus::Pending) {
        DeliveryStatus::Pending
    } else if any(DeliveryStatus::Cancelled) {
        DeliveryStatus::Cancelled
    } else {
        DeliveryStatus::Failed
    }
}

/// What a provider made of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted; the provider's id for the message, if it gives one. `note` names anything odd
    /// in an answer that still means "accepted" (a 2xx without the message id): recorded as the
    /// delivery's `lastError`, never a reason to send the message again.
    Accepted {
        message_id: Option<String>,
        note: Option<String>,
    },
    /// Worth trying again: a 5xx, 429, timeout or refused connection.
    Transient { error: String },
    /// Not worth trying again: a 4xx, a refused recipient, missing contact data, no provider.
    Permanent { code: &'static str, error: String },
}

/// What to do with a delivery after a failed attempt: retry at some delay, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryInMs(u64),
    GiveUp,
}

/// Exponential backoff with jitter: attempt `n` (from 1) waits between half and all of
/// `base * 2^(n-1)`, capped at one hour; past `max_attempts` attempts, give up. `jitter` is a
/// number in `[0, 1)`.
pub fn after_failure(attempts: u32, max_attempts: u32, base_ms: u64, jitter: f64) -> AfterFailure {
    if attempts >= max_attempts {
        return AfterFailure::GiveUp;
    }
    const CAP_MS: u64 = 3_600_000;
    let exp = attempts.saturating_sub(1).min(32);
    let full = base_ms.saturating_mul(1u64 << exp).min(CAP_MS);
    let jitter = jitter.clamp(0.0, 1.0);
    let wait = full / 2 + ((full / 2) as f64 * jitter) as u64;
    AfterFailure::RetryInMs(wait.max(1))
}

/// The language to render in: the recipient's preference if the template has it, else the
/// preference's primary language (`ar` for `ar-SA`), else the template's default.
pub fn pick_language<'a>(
    preferred: Option<&str>,
    available: &[&'a str],
    default: &'a str,
) -> &'a str {
    let Some(preferred) = preferred else {
        return default;
    };
    if let Some(l) = available.iter().find(|l| l.eq_ignore_ascii_case(preferred)) {
        return l;
    }
    let primary = preferred.split('-').next().unwrap_or(preferred);
    available
        .iter()
        .find(|l| l.eq_ignore_ascii_case(primary))
        .copied()
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::*;

    #[test]
    fn status_is_the_furthest_any_channel_got() {
        assert_eq!(derive_status(&[Pending, Pending]), Pending);
        assert_eq!(derive_status(&[Failed, Pending]), Pending);
        assert_eq!(derive_status(&[Failed, Sent]), Sent);
        assert_eq!(derive_status(&[Sent, Delivered, Failed]), Delivered);
        assert_eq!(derive_status(&[Failed, Failed]), Failed);
        assert_eq!(derive_status(&[Cancelled, Cancelled]), Cancelled);
        assert_eq!(derive_status(&[]), Failed);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_gives_up() {
        for (attempt, full) in [(1, 1000), (2, 2000), (3, 4000)] {
            let AfterFailure::RetryInMs(low) = after_failure(attempt, 5, 1000, 0.0) else {
                panic!("gave up early");
            };
            let AfterFailure::RetryInMs(high) = after_failure(attempt, 5, 1000, 0.999) else {
                panic!("gave up early");
            };
            assert_eq!(low, full / 2);
            assert!(high < full && high >= full * 9 / 10, "{high}");
        }
        assert_eq!(after_failure(5, 5, 1000, 0.5), AfterFailure::GiveUp);
        assert_eq!(
            after_failure(40, 50, 1000, 0.0),
            AfterFailure::RetryInMs(1_800_000)
        );
    }

    #[test]
    fn language_falls_back_to_primary_then_default() {
        let available = ["en", "ar", "fr-CA"];
        assert_eq!(pick_language(Some("ar"), &available, "en"), "ar");
        assert_eq!(pick_language(Some("AR-sa"), &available, "en"), "ar");
        assert_eq!(pick_language(Some("fr-CA"), &available, "en"), "fr-CA");
        assert_eq!(pick_language(Some("fr"), &available, "en"), "en");
        assert_eq!(pick_language(Some("de"), &available, "en"), "en");
        assert_eq!(pick_language(None, &available, "en"), "en");
    }

    #[test]
    fn channel_names_and_preferences() {
        assert_eq!(
            NotifyChannel::from_preference("IN_APP"),
            Some(NotifyChannel::InApp)
        );
        assert_eq!(
            NotifyChannel::from_preference("push"),
            Some(NotifyChannel::Push)
        );
        assert_eq!(NotifyChannel::parse("PUSH"), None);
        assert_eq!(Priority::parse("critical"), Some(Priority::Critical));
    }
}
