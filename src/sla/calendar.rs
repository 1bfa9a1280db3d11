//! A tenant's business calendar: working hours per weekday and holidays, in one IANA time
//! zone. With one, deadlines count only working time: on a 09:00–17:00, Monday-to-Friday
//! calendar, 10 hours from Thursday 15:00 end on Friday at 17:00, and 11 on Monday at 10:00.
//! A time a clock change skips or repeats is taken as the zone's rules give it.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::time::LATEST_MS;

/// Days a computation looks ahead before it stops at [`LATEST_MS`]: enough for the longest
/// SLA (87,600 hours) at one working hour a week, and then some.
const HORIZON_DAYS: u32 = 200_000;

/// A business calendar as the API takes and shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarDef {
    /// An IANA time zone: working hours and holidays are in its local time.
    #[schema(example = "Asia/Riyadh")]
    pub time_zone: String,
    /// Each working day's hours; a day named by no entry is not a working day.
    pub working_hours: Vec<WorkingHours>,
    /// Whole days off, as local dates (`YYYY-MM-DD`); at most 1,000.
    #[serde(default)]
    #[schema(example = json!(["2026-12-18"]))]
    pub holidays: Vec<String>,
}

/// The working hours of some weekdays: from `start` to `end`, the same day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkingHours {
    /// `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`; each day in one entry at most.
    #[schema(example = json!(["sun", "mon", "tue", "wed", "thu"]))]
    pub days: Vec<String>,
    /// `HH:MM`, 24-hour, local.
    #[schema(example = "08:00")]
    pub start: String,
    /// `HH:MM`, 24-hour, local, after `start`; `24:00` is the end of the day.
    #[schema(example = "16:00")]
    pub end: String,
}

/// A checked calendar, ready to compute with.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Minutes from local midnight, per weekday from Monday.
    week: [Option<(u32, u32)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// `HH:MM` (or `24:00`) as minutes from midnight.
fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl CalendarDef {
    /// The calendar, or what is wrong with it, field by field under `at`.
    pub fn check(&self, at: &str, errors: &mut Vec<FieldError>) -> Option<Calendar> {
        let before = errors.len();
        let tz: Option<Tz> = self.time_zone.parse().ok();
        if tz.is_none() {
            errors.push(FieldError::new(
                format!("{at}.timeZone"),
                "must be an IANA time zone, such as Asia/Riyadh",
            ));
        }
        let mut week = [None; 7];
        if self.working_hours.is_empty() {
            errors.push(FieldError::new(
                format!("{at}.workingHours"),
                "must name at least one working day",
            ));
        }
        for (i, w) in self.working_hours.iter().enumerate() {
            let (start, end) = (minutes(&w.start), minutes(&w.end));
            if start.is_none_or(|s| s >= 24 * 60) {
                errors.push(FieldError::new(
                    format!("{at}.workingHours[{i}].start"),
                    "must be HH:MM, 24-hour",
                ));
            }
            match (start, end) {
                (_, None) => errors.push(FieldError::new(
                    format!("{at}.workingHours[{i}].end"),
                    "must be HH:MM, 24-hour, or 24:00",
                )),
                (Some(s), Some(e)) if e <= s => errors.push(FieldError::new(
                    format!("{at}.workingHours[{i}].end"),
                    "must be after start, the same day",
                )),
                _ => {}
            }
            if w.days.is_empty() {
                errors.push(FieldError::new(
                    format!("{at}.workingHours[{i}].days"),
                    "must name at least one day",
                ));
            }
            for (j, day) in w.days.iter().enumerate() {
                let field = format!("{at}.workingHours[{i}].days[{j}]");
                match weekday(day) {
                    None => errors.push(FieldError::new(
                        field,
                        "must be one of mon, tue, wed, thu, fri, sat, sun",
                    )),
                    Some(d) if week[d.num_days_from_monday() as usize].is_some() => {
                        errors.push(FieldError::new(field, "names a day already given hours"))
                    }
                    Some(d) => {
                        week[d.num_days_from_monday() as usize] = Some((
                            start.unwrap_or(0),
                            end.unwrap_or(0).max(start.unwrap_or(0) + 1),
                        ))
                    }
                }
            }
        }
        if self.holidays.len() > 1000 {
            errors.push(FieldError::new(
                format!("{at}.holidays"),
                "must list at most 1000 days",
            ));
        }
        let mut holidays = BTreeSet::new();
        for (i, day) in self.holidays.iter().enumerate() {
            match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                Ok(d) if day.len() == 10 => {
                    holidays.insert(d);
                }
                _ => errors.push(FieldError::new(
                    format!("{at}.holidays[{i}]"),
                    "must be a date, YYYY-MM-DD",
                )),
            }
        }
        (errors.len() == before).then(|| Calendar {
            tz: tz.unwrap_or(Tz::UTC),
            week,
            holidays,
        })
    }
}

impl Calendar {
    /// The working window of local day `day`, as UTC milliseconds; `None` on a day off.
    fn window(&self, day: NaiveDate) -> Option<(i64, i64)> {
        if self.holidays.contains(&day) {
            return None;
        }
        let (start, end) = self.week[day.weekday().num_days_from_monday() as usize]?;
        let at = |minute: u32| -> i64 {
            let local = if minute >= 24 * 60 {
                day.succ_opt().unwrap_or(day).and_time(NaiveTime::MIN)
            } else {
                day.and_time(
                    NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or(NaiveTime::MIN),
                )
            };
            self.instant(local)
        };
        Some((at(start), at(end)))
    }

    /// A local time as UTC milliseconds. A time a clock change skips counts from the first
    /// minute after the gap; a repeated one counts from its first occurrence.
    fn instant(&self, local: NaiveDateTime) -> i64 {
        (0..=180)
            .find_map(|m| {
                self.tz
                    .from_local_datetime(&(local + chrono::Duration::minutes(m)))
                    .earliest()
            })
            .map_or(LATEST_MS, |t| t.timestamp_millis())
    }

    fn local_date(&self, ms: i64) -> NaiveDate {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&self.tz)
            .date_naive()
    }

    /// The instant `working_ms` of working time after `from`: the deadline of a duration
    /// counted in working hours. Zero is `from` itself.
    pub fn add(&self, from: i64, working_ms: i64) -> i64 {
        if working_ms <= 0 {
            return from;
        }
        let mut left = working_ms;
        let mut day = self.local_date(from);
        for _ in 0..HORIZON_DAYS {
            if let Some((start, end)) = self.window(day) {
                let start = start.max(from);
                if end > start {
                    if left <= end - start {
                        return start + left;
                    }
                    left -= end - start;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        LATEST_MS
    }

    /// The working time between `from` and `to` (zero if `to` is not after `from`).
    pub fn between(&self, from: i64, to: i64) -> i64 {
        let mut total = 0;
        let mut day = self.local_date(from);
        let last = self.local_date(to);
        for _ in 0..HORIZON_DAYS {
            if day > last {
                break;
            }
            if let Some((start, end)) = self.window(day) {
                let (start, end) = (start.max(from), end.min(to));
                total += (end - start).max(0);
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, to_rfc3339};

    const HOUR: i64 = 3_600_000;

    fn riyadh() -> Calendar {
        let def = CalendarDef {
            time_zone: "Asia/Riyadh".into(),
            working_hours: vec![WorkingHours {
                days: ["sun", "mon", "tue", "wed", "thu"]
                    .map(String::from)
                    .to_vec(),
                start: "08:00".into(),
                end: "16:00".into(),
            }],
            holidays: vec!["2026-12-20".into()],
        };
        let mut errors = vec![];
        def.check("calendar", &mut errors)
            .expect("a valid calendar")
    }

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn working_time_skips_the_weekend_and_holidays() {
        let c = riyadh();
        // Thursday 2026-12-17 14:00 local (11:00Z): two hours left that day; Friday and
        // Saturday are off, Sunday the 20th is a holiday, so 10 hours end Monday 16:00 local.
        let from = t("2026-12-17T11:00:00Z");
        assert_eq!(to_rfc3339(c.add(from, 10 * HOUR)), "2026-12-21T13:00:00Z");
        assert_eq!(c.between(from, t("2026-12-21T13:00:00Z")), 10 * HOUR);
        // Starting outside hours counts from the next opening.
        assert_eq!(
            to_rfc3339(c.add(t("2026-12-18T09:00:00Z"), HOUR)),
            "2026-12-21T06:00:00Z"
        );
        assert_eq!(c.add(from, 0), from);
        assert_eq!(c.between(from, from - HOUR), 0);
    }

    #[test]
    fn a_day_ends_exactly_at_closing_time() {
        let c = riyadh();
        let from = t("2026-12-17T05:00:00Z"); // Thursday 08:00 local
        assert_eq!(to_rfc3339(c.add(from, 8 * HOUR)), "2026-12-17T13:00:00Z");
        assert_eq!(
            to_rfc3339(c.add(from, 8 * HOUR + 1)),
            "2026-12-21T05:00:00.001Z"
        );
    }

    #[test]
    fn clock_changes_follow_the_zone() {
        let def = CalendarDef {
            time_zone: "Europe/London".into(),
            working_hours: vec![WorkingHours {
                days: vec!["sun".into()],
                start: "00:00".into(),
                end: "24:00".into(),
            }],
            holidays: vec![],
        };
        let c = def.check("c", &mut vec![]).unwrap();
        // Sunday 2026-03-29 has 23 hours in London; the next working day is a week on.
        assert_eq!(
            c.between(t("2026-03-29T00:00:00Z"), t("2026-03-30T00:00:00Z")),
            23 * HOUR
        );
        assert_eq!(
            to_rfc3339(c.add(t("2026-03-29T00:00:00Z"), 24 * HOUR)),
            "2026-04-05T00:00:00Z"
        );
    }

    #[test]
    fn bad_calendars_name_each_field() {
        let def = CalendarDef {
            time_zone: "Mars/Olympus".into(),
            working_hours: vec![
                WorkingHours {
                    days: vec!["mon".into(), "funday".into()],
                    start: "17:00".into(),
                    end: "09:00".into(),
                },
                WorkingHours {
                    days: vec!["mon".into()],
                    start: "9:00".into(),
                    end: "25:00".into(),
                },
            ],
            holidays: vec!["2026-02-30".into()],
        };
        let mut errors = vec![];
        assert!(def.check("calendar", &mut errors).is_none());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "calendar.timeZone",
                "calendar.workingHours[0].end",
                "calendar.workingHours[0].days[1]",
                "calendar.workingHours[1].start",
                "calendar.workingHours[1].end",
                "calendar.workingHours[1].days[0]",
                "calendar.holidays[0]",
            ]
        );
    }
}
