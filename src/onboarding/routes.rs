//! The bank's side of onboarding, under `/api/v1/omni/onboarding` (API key): configurations,
//! onboardings with their data, documents and status, and the documents themselves.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{OnboardingStatus, is_country, shown_status};
use super::store::{self, ConfigurationRow, DocumentRow, OnboardingRow};
use super::{CurrentStepInputs, DocumentView, Snapshot, StepState};
use crate::AppState;
use crate::api::check_text;
use crate::api::{
    ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, data, parse_filter, reject,
    stored_json,
};
use crate::auth::Tenant;
use crate::channel::Channel;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::idempotency::Idem;
use crate::ids::{ID_RULE, is_external_id, new_id};
use crate::journeys::model::JourneyStatus;

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_configuration, list_configurations))
        .routes(routes!(get_configuration))
        .routes(routes!(list_onboardings))
        .routes(routes!(get_onboarding))
        .routes(routes!(get_document))
}

/// Body of `POST /onboarding/configurations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateConfiguration {
    /// Optional id of the bank's choosing (`cfg_sme_onboarding`); generated otherwise.
    #[schema(example = "cfg_sme_onboarding")]
    pub id: Option<String>,
    #[schema(example = "SME onboarding, GCC")]
    pub name: String,
    /// An `active` template of category `onboarding`.
    #[schema(example = "tmpl_onboarding_sme")]
    pub template_id: String,
    /// `["ALL"]`, or ISO 3166-1 alpha-2 codes (`["SA", "AE"]`).
    #[schema(example = json!(["SA", "AE"]))]
    pub countries: Vec<String>,
}

/// An onboarding configuration: which template onboards customers of which countries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationView {
    pub id: String,
    pub name: String,
    pub template_id: String,
    pub countries: Vec<String>,
    pub created_at: String,
    /// The readiness check, on `GET /onboarding/configurations/{id}` and on creation: what
    /// in the bank's set-up would hold its onboardings up. Empty when ready. (Lists leave it
    /// out.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<ReadinessWarning>>,
}

/// Something in the bank's set-up that would hold a configuration's onboardings up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessWarning {
    /// `no_eligible_approver`: an approval step asks for a role no user holds; onboardings
    /// that reach it wait, their request showing `awaitingRole`, until someone is given it.
    #[schema(example = "no_eligible_approver")]
    pub code: &'static str,
    #[schema(example = "step_credit")]
    pub step_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "credit_analyst")]
    pub role: Option<String>,
    pub message: String,
}

fn configuration_view(c: &ConfigurationRow) -> ConfigurationView {
    ConfigurationView {
        id: c.id.clone(),
        name: c.name.clone(),
        template_id: c.template_id.clone(),
        countries: c.countries(),
        created_at: to_rfc3339(c.created_at),
        warnings: None,
    }
}

/// The configuration with its readiness check: each approval step of its template's current
/// version whose role no user of the tenant holds.
async fn checked_view(
    conn: &mut crate::store::Conn,
    tenant: &str,
    c: &ConfigurationRow,
) -> ApiResult<ConfigurationView> {
    let mut warnings = Vec::new();
    if let Some(template) =
        crate::journeys::store::get_template(&mut *conn, tenant, &c.template_id).await?
    {
        for step in template.step_defs()? {
            let Some(role) = step.approval_role_required.as_deref() else {
                continue;
            };
            if step.kind != crate::journeys::model::StepType::Approval || !step.approvers.is_empty()
            {
                continue;
            }
            if !crate::directory::store::role_is_held(conn, tenant, role).await? {
                warnings.push(ReadinessWarning {
                    code: "no_eligible_approver",
                    step_id: step.id.clone(),
                    role: Some(role.to_owned()),
                    message: format!(
                        "Step {} is approved by role {role}, which no user holds: onboardings \
                         that reach it wait until a user is given the role",
                        step.id
                    ),
                });
            }
        }
    }
    Ok(ConfigurationView {
        warnings: Some(warnings),
        ..configuration_view(c)
    })
}

/// An onboarding as the bank sees it. Lists leave out `currentStep`, `steps`, `data` and
/// `documents`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingView {
    pub interview_id: String,
    pub configuration_id: String,
    pub journey_id: String,
    pub journey_status: JourneyStatus,
    pub customer_id: String,
    pub external_customer_id: Option<String>,
    pub country_code: String,
    pub language: Option<String>,
    pub redirect_url: Option<String>,
    #[schema(value_type = Object)]
    pub custom_fields: Value,
    /// The channel it was started on.
    pub channel: Channel,
    pub status: OnboardingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step: Option<CurrentStepInputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepState>>,
    /// The fields the customer gave, per step id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<DocumentView>>,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    pub finished_at: Option<String>,
}

/// An onboarding as lists show it: from its row and its journey's status alone.
fn summary(r: &OnboardingRow, journey_status: JourneyStatus, now: i64) -> OnboardingView {
    OnboardingView {
        interview_id: r.id.clone(),
        configuration_id: r.configuration_id.clone(),
        journey_id: r.journey_id.clone(),
        journey_status,
        customer_id: r.customer_id.clone(),
        external_customer_id: r.external_customer_id.clone(),
        country_code: r.country_code.clone(),
        language: r.language.clone(),
        redirect_url: r.redirect_url.clone(),
        custom_fields: stored_json(&r.custom_fields),
        channel: r.channel.parse().unwrap_or(Channel::Web),
        status: shown_status(&r.status, journey_status.as_str(), r.expires_at, now),
        current_step: None,
        steps: None,
        data: None,
        documents: None,
        created_at: to_rfc3339(r.created_at),
        updated_at: to_rfc3339(r.updated_at),
        expires_at: to_rfc3339(r.expires_at),
        finished_at: r.finished_at.map(to_rfc3339),
    }
}

/// An onboarding whole: with its current step, steps, data and documents.
pub(super) fn onboarding_view(s: &Snapshot, now: i64) -> OnboardingView {
    OnboardingView {
        current_step: s.current_inputs(),
        steps: Some(s.step_states(false)),
        data: Some(Value::Object(s.data())),
        documents: Some(s.document_views()),
        ..summary(&s.row, s.journey.status(), now)
    }
}

/// Create an onboarding configuration.
#[utoipa::path(
    post, path = "/onboarding/configurations", operation_id = "omni.onboarding.configurations.create", tag = "Onboarding",
    request_body = CreateConfiguration,
    responses(
        (status = 201, description = "Configuration created", body = Data<ConfigurationView>),
        (status = 409, description = "A configuration with this id exists (`configuration_exists`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`); unknown template (`unknown_template`); a template that is not active (`template_not_active`) or not of category `onboarding` (`template_not_onboarding`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_configuration(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateConfiguration>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if let Some(id) = &body.id
        && (!is_external_id(id) || id.len() > 64)
    {
        errors.push(FieldError::new(
            "id",
            "must be 1 to 64 characters of letters, digits, _ - . or :",
        ));
    }
    check_text(&mut errors, "name", &body.name, 200, true);
    if !is_external_id(&body.template_id) {
        errors.push(FieldError::new("templateId", ID_RULE));
    }
    let mut countries: Vec<String> = body
        .countries
        .iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .collect();
    if countries.is_empty() || countries.len() > 300 {
        errors.push(FieldError::new(
            "countries",
            "must list 1 to 300 countries, or ALL",
        ));
    }
    for (i, c) in countries.iter().enumerate() {
        if c != "ALL" && !is_country(c) {
            errors.push(FieldError::new(
                format!("countries[{i}]"),
                "must be ALL or an ISO 3166-1 alpha-2 country code, e.g. SA",
            ));
        }
    }
    if countries.len() > 1 && countries.iter().any(|c| c == "ALL") {
        errors.push(FieldError::new("countries", "ALL stands alone"));
    }
    reject(errors)?;
    countries.sort();
    countries.dedup();

    let template =
        crate::journeys::store::get_template(app.db.reader(), &tenant.id, &body.template_id)
            .await?
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "unknown_template",
                    format!("Template {} does not exist", body.template_id),
                )
                .with("field", "templateId")
            })?;
    if template.status != "active" {
        return Err(ApiError::unprocessable(
            "template_not_active",
            format!(
                "Template {} is {}; only active templates start journeys",
                template.id, template.status
            ),
        )
        .with("field", "templateId"));
    }
    if template.category.as_deref() != Some("onboarding") {
        return Err(ApiError::unprocessable(
            "template_not_onboarding",
            format!("Template {} is not of category onboarding", template.id),
        )
        .with("field", "templateId"));
    }
    let row = ConfigurationRow {
        id: body.id.unwrap_or_else(|| new_id("cfg_")),
        name: body.name,
        template_id: template.id,
        countries: serde_json::to_string(&countries).unwrap_or_else(|_| "[]".into()),
        created_at: app.db.now_ms(),
    };
    let mut tx = app.db.begin().await?;
    store::insert_configuration(&mut tx, &tenant.id, &row)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::conflict(
                    "configuration_exists",
                    format!("Configuration {} already exists", row.id),
                )
            } else {
                e.into()
            }
        })?;
    let view = checked_view(&mut tx, &tenant.id, &row).await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &Data { data: view })
        .await
}

/// Query of the list endpoints without filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List the onboarding configurations, newest first.
#[utoipa::path(
    get, path = "/onboarding/configurations", operation_id = "omni.onboarding.configurations.list", tag = "Onboarding",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of configurations", body = Paginated<ConfigurationView>),
        (status = 422, description = "`page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_configurations(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let (rows, total) =
        store::list_configurations(app.db.reader(), &tenant.id, page.limit(), page.offset())
            .await?;
    Ok(page.answer(rows.iter().map(configuration_view).collect(), total))
}

/// Read an onboarding configuration.
#[utoipa::path(
    get, path = "/onboarding/configurations/{id}", operation_id = "omni.onboarding.configurations.get", tag = "Onboarding",
    params(("id" = String, Path, description = "Configuration id")),
    responses(
        (status = 200, description = "The configuration", body = Data<ConfigurationView>),
        (status = 404, description = "No such configuration in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_configuration(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = store::get_configuration(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Configuration"))?;
    let mut conn = app.db.read_conn().await?;
    Ok(data(
        StatusCode::OK,
        checked_view(&mut conn, &tenant.id, &row).await?,
    ))
}

/// Query of `GET /onboarding`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingQuery {
    #[param(value_type = Option<OnboardingStatus>)]
    status: Option<String>,
    external_customer_id: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List the onboardings, newest first.
#[utoipa::path(
    get, path = "/onboarding", operation_id = "omni.onboarding.list", tag = "Onboarding",
    params(OnboardingQuery),
    responses(
        (status = 200, description = "A page of onboardings (without current step, steps, data and documents)", body = Paginated<OnboardingView>),
        (status = 422, description = "Unknown `status`, or `page`/`perPage` out of range (`invalid_query_parameter`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_onboardings(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<OnboardingQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let status: Option<OnboardingStatus> = parse_filter("status", q.status.as_deref())?;
    let now = app.db.now_ms();
    let (rows, total) = store::list_onboardings(
        app.db.reader(),
        &tenant.id,
        q.external_customer_id.as_deref(),
        status.map(OnboardingStatus::as_str),
        now,
        page.limit(),
        page.offset(),
    )
    .await?;
    let out = rows
        .iter()
        .map(|r| {
            let journey = JourneyStatus::parse(&r.journey_status).unwrap_or(JourneyStatus::Created);
            summary(r, journey, now)
        })
        .collect();
    Ok(page.answer(out, total))
}

/// Read an onboarding: its status, current step, the data and documents received.
#[utoipa::path(
    get, path = "/onboarding/{interviewId}", operation_id = "omni.onboarding.get", tag = "Onboarding",
    params(("interviewId" = String, Path, description = "The onboarding's id (`interviewId` of `POST /omni/start`)")),
    responses(
        (status = 200, description = "The onboarding", body = Data<OnboardingView>),
        (status = 404, description = "No such onboarding in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_onboarding(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let row = store::get_onboarding(&mut conn, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Onboarding"))?;
    let snapshot = Snapshot::read(&app, &mut conn, row).await?;
    Ok(data(
        StatusCode::OK,
        onboarding_view(&snapshot, app.db.now_ms()),
    ))
}

/// A document's content.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct DocumentBytes(#[allow(dead_code)] Vec<u8>);

/// Download a document: its bytes, with its content type and its SHA-256 in `Repr-Digest`.
#[utoipa::path(
    get, path = "/onboarding/{interviewId}/documents/{documentId}", operation_id = "omni.onboarding.documents.get", tag = "Onboarding",
    params(
        ("interviewId" = String, Path, description = "The onboarding's id"),
        ("documentId" = String, Path, description = "The document's id"),
    ),
    responses(
        (status = 200, description = "The document's bytes", content(
            (DocumentBytes = "application/pdf"), (DocumentBytes = "image/jpeg"), (DocumentBytes = "image/png")
        )),
        (status = 404, description = "No such onboarding or document in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The document store does not answer (`document_store_unavailable`), with `Retry-After`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_document(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath((interview_id, document_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let doc = store::document(app.db.reader(), &tenant.id, &interview_id, &document_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Document"))?;
    document_response(&app, &doc).await
}

/// A stored document as an answer: its bytes, content type, length and `Repr-Digest`.
pub(super) async fn document_response(app: &AppState, doc: &DocumentRow) -> ApiResult<Response> {
    let stream = app.documents.get(&doc.storage_key).await.map_err(|e| {
        tracing::error!(error = %e, key = doc.storage_key, "document store read failed");
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "document_store_unavailable",
            "The document could not be read; try again",
        );
        err.retry_after = Some(5);
        err
    })?;
    let digest = hex::decode(&doc.sha256).unwrap_or_default();
    let extension = doc.content_type.rsplit('/').next().unwrap_or("bin");
    let extension = if extension == "jpeg" {
        "jpg"
    } else {
        extension
    };
    let headers = [
        (header::CONTENT_TYPE, doc.content_type.clone()),
        (header::CONTENT_LENGTH, doc.size_bytes.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.{extension}\"", doc.id),
        ),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    let mut res = Response::new(Body::from_stream(stream));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{}:", STANDARD.encode(digest))) {
        res.headers_mut().insert("repr-digest", v);
    }
    Ok(res)
}
