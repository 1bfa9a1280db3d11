//! `/api/v1/customers/{customer_id}/devices/{device_id}`: the devices a customer receives push
//! notifications on (seed 000's style: snake_case, no envelope). A token FCM reports
//! unregistered is forgotten by the delivery worker.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, DeviceRow};
use crate::AppState;
use crate::api::{ApiJson, ApiPath, json, put_status, reject};
use crate::auth::Tenant;
use crate::customers;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::ids::{ID_RULE, is_external_id};

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(put_device, delete_device))
}

/// A device's platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Web,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Web => "web",
        }
    }
}

/// Body of `PUT /customers/{customer_id}/devices/{device_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutDevice {
    pub platform: Platform,
    /// The FCM registration token of the app on this device.
    pub push_token: String,
}

/// A customer's device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub customer_id: String,
    pub device_id: String,
    #[schema(value_type = Platform)]
    pub platform: String,
    pub push_token: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A customer's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

fn view(d: DeviceRow) -> DeviceView {
    DeviceView {
        customer_id: d.customer_id,
        device_id: d.device_id,
        platform: d.platform,
        push_token: d.push_token,
        created_at: to_rfc3339(d.created_at),
        updated_at: to_rfc3339(d.updated_at),
    }
}

/// Register or replace a device's push token. The customer is created with only its id if
/// the tenant has not described it yet.
#[utoipa::path(
    put, path = "/customers/{customer_id}/devices/{device_id}", operation_id = "customers.devices.put", tag = "Customers",
    params(
        ("customer_id" = String, Path, description = "The bank's own customer id"),
        ("device_id" = String, Path, description = "The app's id for the device"),
    ),
    request_body = PutDevice,
    responses(
        (status = 200, description = "Replaced", body = DeviceView),
        (status = 201, description = "Registered", body = DeviceView),
        (status = 422, description = "A bad id, platform or token (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_device(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath((customer_id, device_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutDevice>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if !is_external_id(&customer_id) {
        errors.push(FieldError::new("customer_id", ID_RULE));
    }
    if !is_external_id(&device_id) {
        errors.push(FieldError::new("device_id", ID_RULE));
    }
    let token = body.push_token.trim();
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(FieldError::new(
            "push_token",
            "must be 1 to 4096 printable characters without spaces",
        ));
    }
    reject(errors)?;
    let now = app.db.now_ms();
    let row = DeviceRow {
        customer_id,
        device_id,
        platform: body.platform.as_str().to_owned(),
        push_token: token.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    customers::ensure_customer(&mut tx, &app.customers, &tenant.id, &row.customer_id, now).await?;
    let created = store::put_device(&mut tx, &tenant.id, &row).await?;
    tx.commit().await?;
    let stored = store::devices(app.db.reader(), &tenant.id, &row.customer_id)
        .await?
        .into_iter()
        .find(|d| d.device_id == row.device_id)
        .unwrap_or(row);
    Ok(json(put_status(created), &view(stored)))
}

/// Stop sending push notifications to a device.
#[utoipa::path(
    delete, path = "/customers/{customer_id}/devices/{device_id}", operation_id = "customers.devices.delete", tag = "Customers",
    params(
        ("customer_id" = String, Path, description = "The bank's own customer id"),
        ("device_id" = String, Path, description = "The app's id for the device"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such device for this customer (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_device(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath((customer_id, device_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = app.db.begin().await?;
    let removed = store::delete_device(&mut tx, &tenant.id, &customer_id, &device_id).await?;
    tx.commit().await?;
    if !removed {
        return Err(ApiError::not_found("Device"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List a customer's devices.
#[utoipa::path(
    get, path = "/customers/{customer_id}/devices", operation_id = "customers.devices.list", tag = "Customers",
    params(("customer_id" = String, Path, description = "The bank's own customer id")),
    responses(
        (status = 200, description = "The customer's devices, oldest first", body = DeviceList),
        (status = 404, description = "No such customer in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_devices(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(customer_id): ApiPath<String>,
) -> ApiResult<Response> {
    customers::store::get(app.db.reader(), &tenant.id, &customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Customer"))?;
    let devices = store::devices(app.db.reader(), &tenant.id, &customer_id)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(json(StatusCode::OK, &DeviceList { devices }))
}
