//! `/api/v1/omni/notification-providers/{channel}`: a tenant's provider per channel; and
//! `POST /api/v1/omni/notifications/providers/{provider}/status`: providers' signed delivery
//! reports, which carry no API key.

use axum::extract::{RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ProviderSettings, Reach};
use crate::AppState;
use crate::api::{ApiJson, ApiPath, Data, data, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::notifications::model::NotifyChannel;
use crate::notifications::store::{self, ProviderRow};
use crate::notifications::{self as notifications, DeliveryReport};

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers))
        .routes(routes!(put_provider, get_provider, delete_provider))
}

/// The routes providers call, outside the API key's reach.
pub fn status_callbacks() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(provider_status))
}

/// A channel's provider as the API shows it: its settings without secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    /// `email`, `sms` or `push`.
    #[schema(example = "sms")]
    pub channel: String,
    /// The settings given, with each secret replaced by whether it is set (`passwordSet`,
    /// `authTokenSet`, `privateKeySet`).
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: String,
    pub updated_at: String,
}

fn view(row: &ProviderRow) -> ApiResult<ProviderView> {
    let settings: ProviderSettings =
        serde_json::from_str(&row.settings).map_err(|_| ApiError::internal())?;
    Ok(ProviderView {
        channel: row.channel.clone(),
        settings: settings.shown(),
        created_at: to_rfc3339(row.created_at),
        updated_at: to_rfc3339(row.updated_at),
    })
}

/// `email`, `sms` or `push`: the channels that have providers.
fn provider_channel(channel: &str) -> ApiResult<NotifyChannel> {
    match NotifyChannel::parse(channel) {
        Some(c) if c != NotifyChannel::InApp => Ok(c),
        _ => Err(ApiError::validation(vec![FieldError::new(
            "channel",
            "must be email, sms or push (in_app needs no provider)",
        )])),
    }
}

/// Set the provider of a channel: SMTP for `email`, Twilio for `sms`, FCM for `push`.
///
/// Secrets given here are never answered back. Deliveries already sent keep the provider that
/// sent them; pending ones use the provider set when they are attempted.
#[utoipa::path(
    put, path = "/notification-providers/{channel}", operation_id = "omni.notificationProviders.put", tag = "Notifications",
    params(("channel" = String, Path, description = "`email`, `sms` or `push`")),
    request_body = ProviderSettings,
    responses(
        (status = 200, description = "Replaced", body = Data<ProviderView>),
        (status = 201, description = "Created", body = Data<ProviderView>),
        (status = 422, description = "A provider that does not serve the channel (`provider_channel_mismatch`); a bad setting, an insecure connection or URL, each with its field (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_provider(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(channel): ApiPath<String>,
    settings: Result<ApiJson<ProviderSettings>, ApiError>,
) -> ApiResult<Response> {
    // The path names what is set: an unknown channel is told so, whatever the body says.
    let channel = provider_channel(&channel)?;
    let ApiJson(settings) = settings?;
    if settings.channel() != channel {
        return Err(ApiError::unprocessable(
            "provider_channel_mismatch",
            format!(
                "A {} provider serves {}, not {}",
                settings.kind(),
                settings.channel().as_str(),
                channel.as_str()
            ),
        )
        .with("field", "type"));
    }
    reject(settings.problems(Reach::of(&app.config)))?;
    let now = app.db.now_ms();
    let text = serde_json::to_string(&settings).map_err(|_| ApiError::internal())?;
    // Sealed before the transaction: the tenant's data key is committed by then.
    let sealed = app
        .vault
        .seal(
            &app.db,
            &tenant.id,
            &store::sealing_context(channel.as_str()),
            &text,
        )
        .await?;
    let mut row = ProviderRow {
        channel: channel.as_str().to_owned(),
        kind: settings.kind().to_owned(),
        settings: sealed,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_provider(&mut tx, &tenant.id, &row).await?;
    tx.commit().await?;
    row.settings = text;
    let stored = store::get_provider(&app.db, &app.vault, &tenant.id, &row.channel)
        .await?
        .unwrap_or(row);
    Ok(data(put_status(created), view(&stored)?))
}

/// Get the provider of a channel, without its secrets.
#[utoipa::path(
    get, path = "/notification-providers/{channel}", operation_id = "omni.notificationProviders.get", tag = "Notifications",
    params(("channel" = String, Path, description = "`email`, `sms` or `push`")),
    responses(
        (status = 200, description = "The provider", body = Data<ProviderView>),
        (status = 404, description = "No provider set for this channel (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Not a channel with providers (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_provider(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(channel): ApiPath<String>,
) -> ApiResult<Response> {
    let channel = provider_channel(&channel)?;
    let row = store::get_provider(&app.db, &app.vault, &tenant.id, channel.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("Notification provider"))?;
    Ok(data(StatusCode::OK, view(&row)?))
}

/// Remove the provider of a channel: its deliveries then fail with `provider_not_configured`.
#[utoipa::path(
    delete, path = "/notification-providers/{channel}", operation_id = "omni.notificationProviders.delete", tag = "Notifications",
    params(("channel" = String, Path, description = "`email`, `sms` or `push`")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No provider set for this channel (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Not a channel with providers (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_provider(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(channel): ApiPath<String>,
) -> ApiResult<Response> {
    let channel = provider_channel(&channel)?;
    let mut tx = app.db.begin().await?;
    let removed = store::delete_provider(&mut tx, &tenant.id, channel.as_str()).await?;
    tx.commit().await?;
    if !removed {
        return Err(ApiError::not_found("Notification provider"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List the tenant's providers, without their secrets.
#[utoipa::path(
    get, path = "/notification-providers", operation_id = "omni.notificationProviders.list", tag = "Notifications",
    responses((status = 200, description = "One per configured channel", body = Data<Vec<ProviderView>>))
)]
async fn list_providers(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let rows = store::list_providers(&app.db, &app.vault, &tenant.id).await?;
    let views = rows.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
    Ok(data(StatusCode::OK, views))
}

/// A provider's report on a message it accepted: delivered, or failed after all.
///
/// Only `twilio` reports here: Twilio posts its status callback (form-encoded `MessageSid`,
/// `MessageStatus`, `ErrorCode`) to the `StatusCallback` URL Omnirail gave it, which exists
/// when `public_base_url` is configured. The request carries no API key; it is trusted only if
/// its `X-Twilio-Signature` is the HMAC-SHA1 of that URL and the parameters under the auth
/// token of the tenant whose message it names. `queued`, `sending` and `sent` change nothing;
/// `delivered` marks the delivery delivered; `undelivered` and `failed` mark it failed with
/// Twilio's error code.
#[utoipa::path(
    post, path = "/api/v1/omni/notifications/providers/{provider}/status", operation_id = "omni.notifications.providerStatus", tag = "Notifications",
    params(
        ("provider" = String, Path, description = "`twilio`"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the request"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Twilio's status callback parameters"),
    responses(
        (status = 204, description = "Taken into account (or nothing to change)"),
        (status = 400, description = "Not a form, or no `MessageSid`/`MessageStatus` (`invalid_callback`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Missing or wrong signature (`invalid_signature`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "A provider that does not report here, or a message nobody sent (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn provider_status(
    State(app): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> ApiResult<Response> {
    if provider != "twilio" {
        return Err(ApiError::not_found("Provider"));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&form)
        .map_err(|_| ApiError::bad_request("invalid_callback", "The body must be form-encoded"))?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(sid), Some(status)) = (param("MessageSid"), param("MessageStatus")) else {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "MessageSid and MessageStatus are required",
        ));
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::forbidden("invalid_signature", "X-Twilio-Signature is missing"))?;
    let url = app
        .config
        .public_base_url
        .as_deref()
        .map(|base| super::join(base, super::STATUS_PATH_TWILIO));
    let deliveries = store::by_provider_message(app.db.reader(), "twilio", sid).await?;
    if deliveries.is_empty() {
        return Err(ApiError::not_found("Message"));
    }
    let report = match status {
        "delivered" => Some(DeliveryReport::Delivered),
        "undelivered" | "failed" => Some(DeliveryReport::Failed {
            code: "provider_undelivered",
            error: format!(
                "Twilio reports {status}{}",
                param("ErrorCode")
                    .map(|c| format!(", error code {c}"))
                    .unwrap_or_default()
            ),
        }),
        _ => None,
    };
    let mut verified = false;
    for d in &deliveries {
        let Some(ProviderSettings::Twilio(tw)) =
            store::get_provider(&app.db, &app.vault, &d.tenant_id, "sms")
                .await?
                .and_then(|p| serde_json::from_str(&p.settings).ok())
        else {
            continue;
        };
        if !url
            .as_deref()
            .is_some_and(|u| super::twilio::verify(&tw.auth_token, u, &params, signature))
        {
            continue;
        }
        verified = true;
        if let Some(report) = &report {
            notifications::apply_report(&app, d, report).await?;
        }
    }
    if !verified {
        return Err(ApiError::forbidden(
            "invalid_signature",
            "The signature does not match the request",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
