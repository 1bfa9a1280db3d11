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

/// The earliest instant the API reads or writes: `0000-01-01T00:00:00Z`, in milliseconds.
pub const EARLIEST_MS: i64 = -62_167_219_200_000;

/// The latest instant the API reads or writes: `9999-12-31T23:59:59.999Z`, in milliseconds.
/// Times computed past it (an expiry ten years after 9995) stop there rather than wrap.
pub const LATEST_MS: i64 = 253_402_300_799_999;

/// `2024-01-15T10:30:00Z`; milliseconds appear only when not zero. A time outside
/// [`EARLIEST_MS`]..=[`LATEST_MS`] is shown at the nearer end, never as another date.
pub fn to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms.clamp(EARLIEST_MS, LATEST_MS))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses RFC 3339 with any offset into UTC milliseconds; `None` if it is not RFC 3339 or
/// falls outside the years 0000 to 9999 once in UTC.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .filter(|ms| (EARLIEST_MS..=LATEST_MS).contains(ms))
}

/// `by` after `at`, in milliseconds, stopping at [`LATEST_MS`]: the one way the server adds
/// a duration to a time, so that no expiry, lease or schedule can overflow into the past.
pub fn later(at: i64, by: Duration) -> i64 {
    let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    at.checked_add(by).map_or(LATEST_MS, |t| t.min(LATEST_MS))
}

/// `by` before `at`, in milliseconds, stopping at [`EARLIEST_MS`].
pub fn earlier(at: i64, by: Duration) -> i64 {
    let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    at.checked_sub(by)
        .map_or(EARLIEST_MS, |t| t.max(EARLIEST_MS))
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
    fn the_ends_of_the_range_are_the_constants() {
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), Some(EARLIEST_MS));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999Z"), Some(LATEST_MS));
        // In range as written, out of range once in UTC.
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59-01:00"), None);
        assert_eq!(to_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(to_rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn hours_beyond_any_bound_stop_at_the_latest_time_never_before_now() {
        let now = parse_rfc3339("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(later(now, hours(99_999_999_999)), LATEST_MS);
        assert_eq!(later(LATEST_MS - 1, hours(1)), LATEST_MS);
        assert_eq!(later(now, Duration::MAX), LATEST_MS);
        assert_eq!(to_rfc3339(later(now, hours(48))), "2026-12-05T10:00:00Z");
        assert_eq!(earlier(now, Duration::MAX), EARLIEST_MS);
    }

    fn hours(n: u64) -> Duration {
        Duration::from_secs(n * 3600)
    }

    proptest::proptest! {
        /// Whatever the time and the duration, adding never goes back, never leaves the
        /// range, and what is shown reads back as the same instant.
        #[test]
        fn adding_a_duration_is_monotonic_bounded_and_round_trips(
            at in EARLIEST_MS..=LATEST_MS,
            by in proptest::prelude::any::<u64>(),
            by_nanos in 0u32..1_000_000_000,
        ) {
            let by = Duration::new(by, by_nanos);
            let after = later(at, by);
            proptest::prop_assert!(after >= at && after <= LATEST_MS);
            let before = earlier(at, by);
            proptest::prop_assert!(before <= at && before >= EARLIEST_MS);
            for t in [at, after, before] {
                proptest::prop_assert_eq!(parse_rfc3339(&to_rfc3339(t)), Some(t));
            }
        }

        /// Any i64 is shown as a time inside the range (the nearer end if outside it).
        #[test]
        fn any_number_shows_as_a_time_in_range(ms in proptest::prelude::any::<i64>()) {
            let shown = parse_rfc3339(&to_rfc3339(ms));
            proptest::prop_assert_eq!(shown, Some(ms.clamp(EARLIEST_MS, LATEST_MS)));
        }

        /// Hours within any bound the API sets add exactly.
        #[test]
        fn bounded_hours_add_exactly(at in 0i64..=LATEST_MS, n in 1u64..=1_000_000) {
            let exact = at + i64::try_from(n).unwrap() * 3_600_000;
            proptest::prop_assert_eq!(later(at, hours(n)), exact.min(LATEST_MS));
        }
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
