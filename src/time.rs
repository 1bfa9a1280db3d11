//! Times cross the API as RFC 3339 in UTC and are stored as integer milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};

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
