//! The pure rules of notifications: channels, priorities, how a notification's status follows
//! from its deliveries, retry backoff, quiet hours and the choice of language.

use chrono::{NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
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

/// A recipient's quiet hours: a daily window in their own time zone. `start` after `end`
/// spans midnight (22:00 to 07:00).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, 24-hour.
    #[schema(example = "22:00")]
    pub start: String,
    /// `HH:MM`, 24-hour.
    #[schema(example = "07:00")]
    pub end: String,
    /// An IANA time zone; default `UTC`.
    #[schema(example = "Asia/Riyadh")]
    pub timezone: Option<String>,
}

impl QuietHours {
    /// What is wrong with it, field by field (`start`, `end`, `timezone`).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let start = parse_hhmm(&self.start);
        let end = parse_hhmm(&self.end);
        if start.is_none() {
            out.push(("start", "must be HH:MM, 24-hour"));
        }
        if end.is_none() {
            out.push(("end", "must be HH:MM, 24-hour"));
        }
        if start.is_some() && start == end {
            out.push(("end", "must differ from start"));
        }
        if self.tz().is_none() {
            out.push((
                "timezone",
                "must be an IANA time zone, such as Europe/London",
            ));
        }
        out
    }

    fn tz(&self) -> Option<Tz> {
        match self.timezone.as_deref() {
            None => Some(Tz::UTC),
            Some(name) => name.parse().ok(),
        }
    }

    /// If `now_ms` falls in the quiet window, when the window ends (UTC milliseconds).
    pub fn hold_until(&self, now_ms: i64) -> Option<i64> {
        let (start, end, tz) = (parse_hhmm(&self.start)?, parse_hhmm(&self.end)?, self.tz()?);
        let now = Utc
            .timestamp_millis_opt(now_ms)
            .single()?
            .with_timezone(&tz);
        let minute = now.time().hour() * 60 + now.time().minute();
        let inside = if start < end {
            minute >= start && minute < end
        } else {
            minute >= start || minute < end
        };
        if !inside {
            return None;
        }
        // The window ends today if its end is still ahead, else tomorrow.
        let mut day = now.date_naive();
        if minute >= end {
            day = day.succ_opt()?;
        }
        let end_time = NaiveTime::from_hms_opt(end / 60, end % 60, 0)?;
        let local = day.and_time(end_time);
        // A local time that a clock change skips ends the window at the first valid minute.
        (0..=180)
            .map(|m| local + chrono::Duration::minutes(m))
            .find_map(|t| tz.from_local_datetime(&t).earliest())
            .map(|at| at.timestamp_millis())
    }
}

/// Minutes since midnight of `HH:MM`.
fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
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

    fn ms(s: &str) -> i64 {
        crate::time::parse_rfc3339(s).unwrap()
    }

    fn quiet(start: &str, end: &str, tz: Option<&str>) -> QuietHours {
        QuietHours {
            start: start.into(),
            end: end.into(),
            timezone: tz.map(Into::into),
        }
    }

    #[test]
    fn quiet_hours_across_midnight_in_the_recipients_zone() {
        let q = quiet("22:00", "07:00", Some("Asia/Riyadh")); // UTC+3
        // 20:30 UTC is 23:30 in Riyadh: held until 07:00 Riyadh, 04:00 UTC next day.
        assert_eq!(
            q.hold_until(ms("2024-01-15T20:30:00Z")),
            Some(ms("2024-01-16T04:00:00Z"))
        );
        // 01:00 UTC is 04:00 in Riyadh: held until 04:00 UTC the same day.
        assert_eq!(
            q.hold_until(ms("2024-01-16T01:00:00Z")),
            Some(ms("2024-01-16T04:00:00Z"))
        );
        // 04:00 UTC is 07:00: the window has ended.
        assert_eq!(q.hold_until(ms("2024-01-16T04:00:00Z")), None);
        assert_eq!(q.hold_until(ms("2024-01-16T12:00:00Z")), None);
    }

    #[test]
    fn quiet_hours_within_a_day_and_across_a_clock_change() {
        let q = quiet("12:00", "14:00", None);
        assert_eq!(
            q.hold_until(ms("2024-01-15T13:59:00Z")),
            Some(ms("2024-01-15T14:00:00Z"))
        );
        assert_eq!(q.hold_until(ms("2024-01-15T14:00:00Z")), None);
        assert_eq!(q.hold_until(ms("2024-01-15T11:59:00Z")), None);
        // London skips 01:00-02:00 on 2024-03-31: a window ending at 01:30 ends at 02:00 BST.
        let q = quiet("23:00", "01:30", Some("Europe/London"));
        assert_eq!(
            q.hold_until(ms("2024-03-31T00:10:00Z")),
            Some(ms("2024-03-31T01:00:00Z"))
        );
    }

    #[test]
    fn quiet_hours_problems_are_named() {
        assert!(
            quiet("22:00", "07:00", Some("Europe/London"))
                .problems()
                .is_empty()
        );
        let p = quiet("25:00", "7:00", Some("Mars/Base")).problems();
        let fields: Vec<_> = p.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["start", "end", "timezone"]);
        assert_eq!(quiet("08:00", "08:00", None).problems()[0].0, "end");
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
