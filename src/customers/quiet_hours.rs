//! A customer's quiet hours: a daily window, in their own time zone, during which only
//! `critical` notifications go out (the notification worker holds the rest until it ends).

use chrono::{NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
