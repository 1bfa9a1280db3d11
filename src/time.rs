//! Times cross the API as RFC 3339 in UTC and are stored as integer milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// The time a server goes by: the system's clock, plus an offset that only tests move (to
/// let an expiry, a TTL or a schedule fall due at once instead of waiting for it). Clones
/// share the offset, so a test that holds one moves the time of the server it gave it to.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> i64 {
        Utc::now()
            .timestamp_millis()
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// `2024-01-15T10:30:00Z`; milliseconds appear only when not zero.
pub fn to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses RFC 3339 with any offset into UTC milliseconds; `None` if it is not RFC 3339.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_moved_forward_moves_its_clones_and_no_other() {
        let clock = Clock::default();
        let clone = clock.clone();
        let other = Clock::default();
        let before = clock.now_ms();
        clock.advance(Duration::from_secs(3600));
        assert!(clone.now_ms() >= before + 3_600_000);
        assert!(other.now_ms() < before + 3_600_000);
    }

    #[test]
    fn round_trips_in_utc() {
        let ms = parse_rfc3339("2024-01-25T17:00:00Z").unwrap();
        assert_eq!(to_rfc3339(ms), "2024-01-25T17:00:00Z");
        let ms = parse_rfc3339("2024-01-25T19:00:00.250+02:00").unwrap();
        assert_eq!(to_rfc3339(ms), "2024-01-25T17:00:00.250Z");
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "2024-01-25",
            "tomorrow",
            "2024-01-25 17:00:00",
            "2024-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
