//! `GET /api/v1/analytics/channels` (seed 000: Get Channel Activity).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DAY_MS, day_of};
use crate::AppState;
use crate::api::{ApiQuery, json};
use crate::auth::Tenant;
use crate::channel::{Channel, UpperChannel};
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(channel_activity))
}

/// The window, in whole UTC days.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// First day counted, `YYYY-MM-DD` (UTC). Default: 29 days before `to`.
    #[param(example = "2024-01-01")]
    pub from: Option<String>,
    /// Last day counted, included, `YYYY-MM-DD` (UTC). Default: today.
    #[param(example = "2024-01-30")]
    pub to: Option<String>,
}

/// One channel's figures over the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelFigures {
    pub channel: UpperChannel,
    /// Distinct customers with a session open on the channel at some time in the window.
    #[schema(example = 1200)]
    pub active_users: i64,
    /// API calls that changed something, made through the channel in the window.
    #[schema(example = 3500)]
    pub transactions: i64,
}

/// Channel activity over a window (seed 000, no envelope).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelActivity {
    /// Every channel the plan includes, and any other with figures in the window.
    pub channels: Vec<ChannelFigures>,
    /// Journeys touched from two or more channels in the window.
    #[schema(example = 450)]
    pub cross_channel_journeys: i64,
}

/// Whole UTC days `from..=to`, as day numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// The window `q` names (default: the 30 days to `today`), or what is wrong with it.
    pub fn parse(q: &WindowQuery, today: i64) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut day = |field: &str, value: Option<&str>| -> Option<i64> {
            let value = value?;
            let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .filter(|_| value.len() == 10)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| day_of(t.and_utc().timestamp_millis()));
            if parsed.is_none() {
                errors.push(FieldError::new(
                    field,
                    "must be a calendar date, YYYY-MM-DD (UTC): figures are kept per day",
                ));
            }
            parsed
        };
        let from = day("from", q.from.as_deref());
        let to = day("to", q.to.as_deref());
        if !errors.is_empty() {
            return Err(errors);
        }
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - 29);
        if from > to {
            return Err(vec![FieldError::new("from", "must not be after `to`")]);
        }
        Ok(Window { from, to })
    }

    /// The last activity of sessions not yet ended that may be open on a day of the window
    /// without a figure for that day: a session stays open from its last activity until it
    /// idles out (or now), and the day of its last activity has its figure already, so only a
    /// session whose last activity was before today can be open on a day with none.
    fn open_sessions(self, now: i64, idle_ms: i64) -> (i64, i64) {
        let start = self.from.saturating_mul(DAY_MS);
        let end = self.to.saturating_add(1).saturating_mul(DAY_MS) - 1;
        let today = day_of(now).saturating_mul(DAY_MS);
        if start > now {
            return (1, 0);
        }
        (start.saturating_sub(idle_ms), end.min(today - 1))
    }
}

/// Channel activity: active users and transactions per channel, and cross-channel journeys.
#[utoipa::path(
    get, path = "/analytics/channels", operation_id = "analytics.channels.get", tag = "Channels",
    params(WindowQuery),
    responses(
        (status = 200, description = "Figures per channel over the window", body = ChannelActivity),
        (status = 400, description = "Unreadable query (`invalid_query`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A date that is not YYYY-MM-DD, or `from` after `to` (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn channel_activity(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let window = Window::parse(&q, day_of(now)).map_err(ApiError::validation)?;
    let mut conn = app.db.read_conn().await?;
    let plan = crate::channels::require_omnichannel(&mut conn, &tenant.id).await?;
    drop(conn);
    let (open_from, open_to) = window.open_sessions(now, app.config.session_idle_ms());
    let report = super::report(
        app.db.reader(),
        &tenant.id,
        window.from,
        window.to,
        open_from,
        open_to,
    )
    .await?;
    let channels = Channel::ALL
        .into_iter()
        .filter_map(|c| {
            let figures = report.channels.get(c.as_lower());
            (plan.includes(c) || figures.is_some()).then(|| {
                let f = figures.copied().unwrap_or_default();
                ChannelFigures {
                    channel: UpperChannel(c),
                    active_users: f.active_users,
                    transactions: f.transactions,
                }
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ChannelActivity {
            channels,
            cross_channel_journeys: report.cross_channel_journeys,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>) -> WindowQuery {
        WindowQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn windows_are_whole_utc_days_defaulting_to_the_last_thirty() {
        let today = day_of(1_705_314_600_000); // 2024-01-15T10:30:00Z
        assert_eq!(today, 19_737);
        let w = Window::parse(&q(None, None), today).unwrap();
        assert_eq!((w.from, w.to), (today - 29, today));
        let w = Window::parse(&q(Some("2024-01-01"), Some("2024-01-15")), today).unwrap();
        assert_eq!((w.from, w.to), (19_723, 19_737));
        let w = Window::parse(&q(None, Some("2024-01-10")), today).unwrap();
        assert_eq!((w.from, w.to), (19_703, 19_732));
        assert_eq!(day_of(-1), -1, "before 1970 still floors");
    }

    #[test]
    fn refuses_what_is_not_a_day_or_an_inverted_window() {
        for bad in [
            "2024-1-5",
            "2024-01-15T00:00:00Z",
            "yesterday",
            "2024-02-30",
            "",
        ] {
            let errors = Window::parse(&q(Some(bad), None), 19_737).unwrap_err();
            assert_eq!(errors[0].field, "from", "{bad}");
        }
        let errors = Window::parse(&q(Some("2024-01-16"), Some("2024-01-15")), 19_737).unwrap_err();
        assert_eq!(errors[0].field, "from");
    }

    #[test]
    fn open_sessions_count_from_their_last_activity_until_they_idle_out() {
        let w = Window { from: 10, to: 11 };
        let now = 20 * DAY_MS;
        assert_eq!(
            w.open_sessions(now, 1000),
            (10 * DAY_MS - 1000, 12 * DAY_MS - 1)
        );
        // A window that includes today: today's own activity has its figure already.
        assert_eq!(w.open_sessions(11 * DAY_MS + 5, 0).1, 11 * DAY_MS - 1);
        // A window wholly ahead matches nothing.
        let (lo, hi) = w.open_sessions(9 * DAY_MS, 0);
        assert!(lo > hi);
    }
}
