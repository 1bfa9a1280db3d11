//! `/api/v1/customers`: the customer record and its unified profile (seed 000: snake_case, no
//! envelope).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::quiet_hours::QuietHours;
use super::store::{self, CustomerRow};
use crate::AppState;
use crate::api::{ApiJson, ApiPath, json, put_status, reject};
use crate::api::{check_text, is_language_tag};
use crate::api::{is_e164, is_email};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::ids::ID_RULE;
use crate::ids::is_external_id;

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_customer))
        .routes(routes!(unified_profile))
}

/// How a customer is reached (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationChannel {
    Push,
    Email,
    Sms,
    InApp,
}

impl NotificationChannel {
    /// Reads either case: `PUSH` or `push`.
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PUSH" => Some(Self::Push),
            "EMAIL" => Some(Self::Email),
            "SMS" => Some(Self::Sms),
            "IN_APP" => Some(Self::InApp),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Push => "PUSH",
            Self::Email => "EMAIL",
            Self::Sms => "SMS",
            Self::InApp => "IN_APP",
        }
    }
}

/// Who the customer is.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    #[schema(example = "John Doe")]
    pub name: Option<String>,
    #[schema(example = "john@example.com")]
    pub email: Option<String>,
    /// E.164.
    #[schema(example = "+44123456789")]
    pub phone: Option<String>,
}

/// How the customer wants to be reached.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Preferences {
    /// `PUSH`, `EMAIL`, `SMS` or `IN_APP` (either case accepted; answered in upper case).
    #[schema(value_type = Option<NotificationChannel>, example = "PUSH")]
    pub notification_channel: Option<String>,
    /// A BCP 47 language tag.
    #[schema(example = "en")]
    pub preferred_language: Option<String>,
    /// A daily window, in the customer's time zone, in which only `critical` notifications
    /// are sent; the rest wait for its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
}

/// Body of `PUT /customers/{customer_id}`: the whole record, replacing what was there.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutCustomer {
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub preferences: Preferences,
}

/// A customer record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    #[schema(example = "cust_123456")]
    pub customer_id: String,
    pub profile: Profile,
    pub preferences: Preferences,
    pub created_at: String,
    pub updated_at: String,
}

/// A channel's activity for one customer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CustomerChannelActivity)]
pub struct ChannelActivity {
    pub last_active: String,
    pub sessions: i64,
}

/// Seed 000's unified customer profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnifiedProfile {
    #[schema(example = "cust_123456")]
    pub customer_id: String,
    pub profile: Profile,
    /// Keyed by lower-case channel name (`web`, `mobile_ios`, ...).
    pub channels: BTreeMap<String, ChannelActivity>,
    pub preferences: Preferences,
}

fn view(c: CustomerRow) -> (Profile, Preferences, String, String, String) {
    (
        Profile {
            name: c.name,
            email: c.email,
            phone: c.phone,
        },
        Preferences {
            notification_channel: c.notification_channel,
            preferred_language: c.preferred_language,
            quiet_hours: c
                .quiet_hours
                .as_deref()
                .and_then(|q| serde_json::from_str(q).ok()),
        },
        c.id,
        to_rfc3339(c.created_at),
        to_rfc3339(c.updated_at),
    )
}

/// Create or replace a customer's profile and preferences.
#[utoipa::path(
    put, path = "/customers/{customer_id}", operation_id = "customers.put", tag = "Customers",
    params(("customer_id" = String, Path, description = "The bank's own customer id")),
    request_body = PutCustomer,
    responses(
        (status = 200, description = "Customer replaced", body = CustomerView),
        (status = 201, description = "Customer created", body = CustomerView),
        (status = 422, description = "Invalid id, email, phone (E.164), notification channel, language (BCP 47) or quiet hours (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_customer(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PutCustomer>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if !is_external_id(&id) {
        errors.push(FieldError::new("customer_id", ID_RULE));
    }
    let p = &body.profile;
    if let Some(name) = &p.name {
        check_text(&mut errors, "profile.name", name, 200, true);
    }
    if p.email.as_deref().is_some_and(|e| !is_email(e)) {
        errors.push(FieldError::new("profile.email", "must be an email address"));
    }
    if p.phone.as_deref().is_some_and(|ph| !is_e164(ph)) {
        errors.push(FieldError::new(
            "profile.phone",
            "must be an E.164 number such as +44123456789",
        ));
    }
    let channel = match body.preferences.notification_channel.as_deref() {
        None => None,
        Some(c) => {
            let parsed = NotificationChannel::parse(c);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "preferences.notification_channel",
                    "must be PUSH, EMAIL, SMS or IN_APP",
                ));
            }
            parsed
        }
    };
    if body
        .preferences
        .preferred_language
        .as_deref()
        .is_some_and(|l| !is_language_tag(l))
    {
        errors.push(FieldError::new(
            "preferences.preferred_language",
            "must be a BCP 47 language tag such as en or ar-SA",
        ));
    }
    if let Some(q) = &body.preferences.quiet_hours {
        for (field, problem) in q.problems() {
            errors.push(FieldError::new(
                format!("preferences.quiet_hours.{field}"),
                problem,
            ));
        }
    }
    reject(errors)?;

    let now = app.db.now_ms();
    let quiet_hours = body
        .preferences
        .quiet_hours
        .as_ref()
        .and_then(|q| serde_json::to_string(q).ok());
    let row = CustomerRow {
        id,
        name: body.profile.name,
        email: body.profile.email,
        phone: body.profile.phone,
        notification_channel: channel.map(|c| c.as_str().to_owned()),
        preferred_language: body.preferences.preferred_language,
        quiet_hours,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put(&mut tx, &tenant.id, &row).await?;
    tx.commit().await?;
    app.customers.remember(&tenant.id, &row.id);
    let stored = store::get(app.db.reader(), &tenant.id, &row.id)
        .await?
        .unwrap_or(row);
    let (profile, preferences, customer_id, created_at, updated_at) = view(stored);
    Ok(json(
        put_status(created),
        &CustomerView {
            customer_id,
            profile,
            preferences,
            created_at,
            updated_at,
        },
    ))
}

/// Seed 000's unified customer profile: who the customer is, their activity per channel, and
/// their preferences.
#[utoipa::path(
    get, path = "/customers/{customer_id}/profile/unified", operation_id = "customers.profile.get", tag = "Customers",
    params(("customer_id" = String, Path, description = "The bank's own customer id")),
    responses(
        (status = 200, description = "The unified profile", body = UnifiedProfile),
        (status = 404, description = "No such customer in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn unified_profile(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let customer = store::get(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Customer"))?;
    let mut conn = app.db.read_conn().await?;
    let activity = store::channel_activity(&mut conn, &tenant.id, &id).await?;
    let channels = activity
        .into_iter()
        .map(|(channel, count, last)| {
            (
                channel,
                ChannelActivity {
                    last_active: to_rfc3339(last),
                    sessions: count,
                },
            )
        })
        .collect();
    let (profile, preferences, customer_id, _, _) = view(customer);
    Ok(json(
        StatusCode::OK,
        &UnifiedProfile {
            customer_id,
            profile,
            channels,
            preferences,
        },
    ))
}
