//! `/api/v1/omni/templates`: journey templates and their versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{self, StepDef, TemplateStatus, in_run_order, is_template_id};
use super::store::{self, TemplateFilter, TemplateRow};
use crate::AppState;
use crate::api::{ApiJson, ApiPath, ApiQuery, Data, PageRequest, Paginated, data, parse_filter};
use crate::api::{SLUG_RULE, check_text, is_slug};
use crate::auth::Tenant;
use crate::bounded::{Days, Hours};
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::EventType;
use crate::events::{self, NewEvent};
use crate::idempotency::Idem;
use crate::ids::new_id;
use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(get_template, update_template))
}

/// Body of `POST /templates` (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTemplate {
    /// Optional client-chosen id, `tmpl_` followed by `[a-z0-9_]`; generated when absent.
    #[schema(example = "tmpl_onboarding_sme")]
    pub id: Option<String>,
    #[schema(example = "SME Onboarding")]
    pub name: String,
    pub description: Option<String>,
    /// `onboarding`, `servicing`, `sales`, or another `[a-z0-9_]` word.
    #[schema(example = "onboarding")]
    pub category: Option<String>,
    pub steps: Vec<StepDef>,
    pub estimated_duration_days: Option<Days>,
    /// The journeys' SLA: due this many hours after they start, unless given a `dueAt`
    /// (working hours, under a business calendar: docs/sla.md).
    pub sla_hours: Option<Hours>,
    /// Defaults to `active`, so the template can start journeys at once; send `draft` to
    /// prepare one first.
    pub status: Option<TemplateStatus>,
}

/// Body of `PATCH /templates/{id}`: any subset of the fields. New steps or a new `slaHours`
/// make a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTemplate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub steps: Option<Vec<StepDef>>,
    pub estimated_duration_days: Option<Days>,
    /// A new SLA for journeys started from now on (a new version); journeys under way keep
    /// theirs.
    pub sla_hours: Option<Hours>,
    pub status: Option<TemplateStatus>,
}

/// A journey template at its current version.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub status: TemplateStatus,
    /// Starts at 1; each change of steps adds one. Journeys keep the version they started on.
    pub version: i64,
    /// In run order.
    pub steps: Vec<StepDef>,
    pub estimated_duration_days: Option<i64>,
    pub sla_hours: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl TemplateView {
    fn from_row(row: &TemplateRow) -> ApiResult<Self> {
        Ok(Self {
            id: row.id.clone(),
            name: row.name.clone(),
            description: row.description.clone(),
            category: row.category.clone(),
            status: TemplateStatus::parse(&row.status).unwrap_or(TemplateStatus::Draft),
            version: row.version,
            steps: row.step_defs()?,
            estimated_duration_days: row.estimated_duration_days,
            sla_hours: row.sla_hours,
            created_at: to_rfc3339(row.created_at),
            updated_at: to_rfc3339(row.updated_at),
        })
    }
}

fn validate_common(
    errors: &mut Vec<FieldError>,
    name: Option<&str>,
    description: Option<&str>,
    category: Option<&str>,
) {
    if let Some(name) = name {
        check_text(errors, "name", name, 200, true);
    }
    if let Some(d) = description {
        check_text(errors, "description", d, 2000, false);
    }
    if category.is_some_and(|c| !is_slug(c)) {
        errors.push(FieldError::new("category", SLUG_RULE));
    }
}

/// Create a journey template.
#[utoipa::path(
    post, path = "/templates", operation_id = "omni.templates.create", tag = "Journey templates",
    request_body = CreateTemplate,
    responses(
        (status = 201, description = "Template created", body = Data<TemplateView>),
        (status = 409, description = "A template with this id exists (`template_exists`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid template (`validation_failed`, with each field)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_template(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if body.id.as_deref().is_some_and(|id| !is_template_id(id)) {
        errors.push(FieldError::new(
            "id",
            "must be tmpl_ followed by 1 to 59 characters of a-z, 0-9 or _",
        ));
    }
    validate_common(
        &mut errors,
        Some(&body.name),
        body.description.as_deref(),
        body.category.as_deref(),
    );
    model::validate_steps(&body.steps, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let now = app.db.now_ms();
    let row = TemplateRow {
        id: body.id.unwrap_or_else(|| new_id("tmpl_")),
        version: 1,
        name: body.name,
        description: body.description,
        category: body.category,
        status: body
            .status
            .unwrap_or(TemplateStatus::Active)
            .as_str()
            .to_owned(),
        steps: serde_json::to_string(&in_run_order(body.steps))
            .map_err(|_| ApiError::internal())?,
        estimated_duration_days: body.estimated_duration_days.map(Days::get),
        sla_hours: body.sla_hours.map(Hours::get),
        created_at: now,
        updated_at: now,
    };
    let view = TemplateView::from_row(&row)?;
    let mut tx = app.db.begin().await?;
    store::insert_template(&mut tx, &tenant.id, &row)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::conflict(
                    "template_exists",
                    format!("Template {} already exists", row.id),
                )
            } else {
                e.into()
            }
        })?;
    events::record(
        &mut tx,
        NewEvent {
            tenant_id: &tenant.id,
            event_type: EventType::TemplateCreated,
            actor_id: None,
            channel: None,
            summary: format!("Journey template created: {}", row.name),
            metadata: json!({ "templateId": row.id, "version": 1 }),
            payload: serde_json::to_value(&view).unwrap_or_default(),
            occurred_at: now,
            entities: vec![("template", &row.id)],
            parties: Default::default(),
        },
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &Data { data: view })
        .await
}

/// Query of `GET /templates`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TemplateQuery {
    /// Filter by category (`onboarding`, `servicing`, `sales`, ...).
    category: Option<String>,
    /// Filter by status.
    #[param(value_type = Option<TemplateStatus>)]
    status: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// Items per page (default 20, max 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    per_page: Option<String>,
}

/// List journey templates, newest first.
#[utoipa::path(
    get, path = "/templates", operation_id = "omni.templates.list", tag = "Journey templates",
    params(TemplateQuery),
    responses(
        (status = 200, description = "A page of templates", body = Paginated<TemplateView>),
        (status = 422, description = "A filter or page parameter out of range", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_templates(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> ApiResult<Response> {
    let page = PageRequest::parse(q.page.as_deref(), q.per_page.as_deref(), 20, 100)?;
    let status: Option<TemplateStatus> = parse_filter("status", q.status.as_deref())?;
    let filter = TemplateFilter {
        category: q.category,
        status: status.map(TemplateStatus::as_str),
    };
    let (rows, total) = store::list_templates(
        app.db.reader(),
        &tenant.id,
        &filter,
        page.limit(),
        page.offset(),
    )
    .await?;
    let data = rows
        .iter()
        .map(TemplateView::from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(page.answer(data, total))
}

/// Get a journey template.
#[utoipa::path(
    get, path = "/templates/{id}", operation_id = "omni.templates.get", tag = "Journey templates",
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, description = "The template at its current version", body = Data<TemplateView>),
        (status = 404, description = "No such template in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_template(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = store::get_template(app.db.reader(), &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Template"))?;
    Ok(data(StatusCode::OK, TemplateView::from_row(&row)?))
}

/// Change a template: its fields, its status (`draft`, `active`, `archived`) or its steps.
///
/// New steps make a new version; journeys already started keep theirs.
#[utoipa::path(
    patch, path = "/templates/{id}", operation_id = "omni.templates.update", tag = "Journey templates",
    params(("id" = String, Path, description = "Template id")),
    request_body = UpdateTemplate,
    responses(
        (status = 200, description = "The template after the change", body = Data<TemplateView>),
        (status = 404, description = "No such template in this tenant (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Back to `draft` after activation (`invalid_template_transition`), or a concurrent change (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn update_template(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    validate_common(
        &mut errors,
        body.name.as_deref(),
        body.description.as_deref(),
        body.category.as_deref(),
    );
    if let Some(steps) = &body.steps {
        model::validate_steps(steps, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = app.db.begin().await?;
    let current = store::get_template(&mut *tx, &tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Template"))?;
    let from = TemplateStatus::parse(&current.status).unwrap_or(TemplateStatus::Draft);
    if let Some(to) = body.status
        && !model::template_transition_allowed(from, to)
    {
        return Err(ApiError::conflict(
            "invalid_template_transition",
            format!("A template cannot go from {} back to draft", from.as_str()),
        )
        .with("currentStatus", from.as_str()));
    }
    let mut next = current.clone();
    if let Some(steps) = body.steps {
        next.steps =
            serde_json::to_string(&in_run_order(steps)).map_err(|_| ApiError::internal())?;
    }
    next.sla_hours = body.sla_hours.map(Hours::get).or(next.sla_hours);
    // What a journey runs by (its steps and its SLA) is versioned: a change makes a version.
    if next.steps != current.steps || next.sla_hours != current.sla_hours {
        next.version += 1;
    }
    next.name = body.name.unwrap_or(next.name);
    next.description = body.description.or(next.description);
    next.category = body.category.or(next.category);
    next.estimated_duration_days = body
        .estimated_duration_days
        .map(Days::get)
        .or(next.estimated_duration_days);
    next.status = body.status.map_or(next.status, |s| s.as_str().to_owned());
    next.updated_at = app.db.now_ms().max(current.updated_at + 1);
    if !store::update_template(
        &mut tx,
        &tenant.id,
        &next,
        current.version,
        current.updated_at,
    )
    .await?
    {
        return Err(ApiError::conflict(
            "concurrent_update",
            "The template was changed by another request; retry",
        ));
    }
    if next.version != current.version {
        store::insert_template_version(&mut tx, &tenant.id, &next).await?;
    }
    let view = TemplateView::from_row(&next)?;
    events::record(
        &mut tx,
        NewEvent {
            tenant_id: &tenant.id,
            event_type: EventType::TemplateUpdated,
            actor_id: None,
            channel: None,
            summary: format!("Journey template updated: {} (version {}, {})", next.name, next.version, next.status),
            metadata: json!({ "templateId": next.id, "version": next.version, "status": next.status }),
            payload: serde_json::to_value(&view).unwrap_or_default(),
            occurred_at: next.updated_at,
            entities: vec![("template", &next.id)],
            parties: Default::default(),
        },
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::OK, &Data { data: view })
        .await
}
