//! `/api/v1/channels`: the tenant's channels, on or off within its plan (seed 000).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::Plan;
use crate::AppState;
use crate::api::{ApiJson, ApiPath, json};
use crate::auth::Tenant;
use crate::channel::{Channel, UpperChannel};
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels))
        .routes(routes!(put_channel))
}

/// A channel and whether it is on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub channel: UpperChannel,
    #[schema(example = "Browser-based access")]
    pub description: &'static str,
    /// Whether the tenant's plan includes the channel.
    pub included: bool,
    /// Whether sessions may run on it now.
    pub enabled: bool,
}

/// The tenant's plan and channels.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelsView {
    pub plan: Plan,
    pub channels: Vec<ChannelView>,
}

/// Body of `PUT /channels/{channel}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutChannel {
    pub enabled: bool,
}

fn description(c: Channel) -> &'static str {
    match c {
        Channel::Web => "Browser-based access",
        Channel::MobileIos => "iOS application",
        Channel::MobileAndroid => "Android application",
        Channel::Api => "Direct API integration",
        Channel::Webhook => "Event notifications",
        Channel::Branch => "Branch staff on behalf of the customer",
        Channel::CallCenter => "Call-center agents on behalf of the customer",
    }
}

async fn views(app: &AppState, tenant: &str) -> ApiResult<ChannelsView> {
    let mut conn = app.db.read_conn().await?;
    let plan = super::require_omnichannel(&mut conn, tenant).await?;
    let settings = super::settings(&mut conn, tenant).await?;
    Ok(ChannelsView {
        plan,
        channels: Channel::ALL
            .into_iter()
            .map(|c| ChannelView {
                channel: UpperChannel(c),
                description: description(c),
                included: plan.includes(c),
                enabled: plan.enabled(c, settings.get(c.as_lower()).copied()),
            })
            .collect(),
    })
}

/// List the channels with their state under the tenant's plan.
#[utoipa::path(
    get, path = "/channels", operation_id = "channels.list", tag = "Channels",
    responses(
        (status = 200, description = "The plan and every channel", body = ChannelsView),
        (status = 403, description = "The Starter plan has no omnichannel features (`plan_not_included`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_channels(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &views(&app, &tenant.id).await?))
}

/// Switch a channel on or off.
#[utoipa::path(
    put, path = "/channels/{channel}", operation_id = "channels.put", tag = "Channels",
    params(("channel" = String, Path, description = "A channel, either case: `MOBILE_IOS`")),
    request_body = PutChannel,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 403, description = "The Starter plan (`plan_not_included`); switching on a channel the plan does not include (`channel_not_in_plan`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such channel (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_channel(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(channel): ApiPath<String>,
    body: Result<ApiJson<PutChannel>, ApiError>,
) -> ApiResult<Response> {
    // The path names what is set: an unknown channel is told so, whatever the body says.
    let channel: Channel = channel
        .parse()
        .map_err(|_| ApiError::not_found("Channel"))?;
    let ApiJson(body) = body?;
    let mut tx = app.db.begin().await?;
    let plan = super::require_omnichannel(&mut tx, &tenant.id).await?;
    if body.enabled && !plan.includes(channel) {
        let mut e = ApiError::forbidden(
            "channel_not_in_plan",
            format!(
                "The {} plan does not include {}",
                plan.as_str(),
                channel.as_lower().to_ascii_uppercase()
            ),
        );
        e.errors = vec![FieldError::new(
            "enabled",
            "the plan does not include this channel",
        )];
        return Err(e);
    }
    super::set(&mut tx, &tenant.id, channel, body.enabled, app.db.now_ms()).await?;
    tx.commit().await?;
    let all = views(&app, &tenant.id).await?;
    let one = all
        .channels
        .into_iter()
        .find(|c| c.channel.0 == channel)
        .ok_or_else(ApiError::internal)?;
    Ok(json(StatusCode::OK, &one))
}
