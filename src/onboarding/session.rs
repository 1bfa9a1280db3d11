//! The customer's side of onboarding, under `/omni` (seed 002): start with the bank's API key,
//! then continue with the session token.
//!
//! Every `/omni` call carries `api-version: 1.0` (missing is 400 `api_version_required`,
//! another value 400 `api_version_unsupported`). A session token is `ost_` followed by 256
//! random bits, stored only as its SHA-256, sent as `Authorization: Bearer`. It reaches its
//! own onboarding and nothing else: an unknown token is 401 `invalid_session_token`, one past
//! the onboarding's expiry 410 `session_expired`, and no `/api/v1` endpoint accepts it.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{StatusCode, Uri};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    FileKind, OnboardingStatus, check_custom_fields, check_data, fields_of, is_country,
    is_customer_facing, missing_documents, missing_fields,
};
use super::store::{self, DocumentRow, HandoffRow, OnboardingRow};
use super::{CurrentStepInputs, DocumentView, Snapshot, StepState};
use crate::AppState;
use crate::api::is_language_tag;
use crate::api::{ApiJson, check_object, reject};
use crate::api::{SLUG_RULE, check_text, is_slug};
use crate::auth::Tenant;
use crate::calls;
use crate::channel::Channel;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc};
use crate::events::{self, EventType, NewEvent};
use crate::idempotency::{self, Idem, MULTIPART_OVERHEAD, Scope};
use crate::ids::{ID_RULE, is_external_id, new_id, new_secret, sha256_hex};
use crate::journeys::model::{StepDef, StepOutcome, StepType};
use crate::journeys::{self, Advance};
use crate::store::Tx;
use crate::time::to_rfc3339;

/// The one version of the `/omni` API.
pub const API_VERSION: &str = "1.0";

/// The `/omni` routes, each with the checks it needs. `inbox` holds routes of other
/// capabilities read with a session's token (the customer's notification inbox), which
/// `lib.rs` hands in.
pub fn router(state: &AppState, inbox: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let start = crate::identity::keyed(OpenApiRouter::new().routes(routes!(start)), state);
    // Only the upload takes a body larger than `max_body_bytes`.
    let upload = OpenApiRouter::new()
        .routes(routes!(add_document))
        .layer(DefaultBodyLimit::max(
            state.config.max_document_bytes + MULTIPART_OVERHEAD,
        ));
    let with_token = OpenApiRouter::new()
        .routes(routes!(get_session))
        .routes(routes!(get_document))
        .routes(routes!(add_data))
        .routes(routes!(finish))
        .routes(routes!(handoff))
        .merge(inbox)
        .merge(upload)
        .layer(from_fn_with_state(state.clone(), idempotency::middleware))
        .layer(from_fn_with_state(state.clone(), require_session_token));
    let resume = OpenApiRouter::new()
        .routes(routes!(resume))
        .layer(from_fn(calls::middleware));
    OpenApiRouter::new()
        .merge(start)
        .merge(with_token)
        .merge(resume)
        .layer(from_fn(require_api_version))
}

/// 400 unless the call carries `api-version: 1.0`.
pub async fn require_api_version(req: Request, next: Next) -> Result<Response, ApiError> {
    match req.headers().get("api-version").map(|v| v.to_str()) {
        None => Err(ApiError::bad_request(
            "api_version_required",
            "The api-version header is required; send api-version: 1.0",
        )
        .with("supportedVersions", json!([API_VERSION]))),
        Some(Ok(v)) if v.trim() == API_VERSION => Ok(next.run(req).await),
        Some(_) => Err(ApiError::bad_request(
            "api_version_unsupported",
            "This api-version is not supported; send api-version: 1.0",
        )
        .with("supportedVersions", json!([API_VERSION]))),
    }
}

/// The onboarding a session token reaches.
#[derive(Clone, Debug)]
pub struct SessionToken {
    pub tenant_id: String,
    pub onboarding_id: String,
    pub channel: Channel,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SessionToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionToken>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "A session token is required"))
    }
}

/// Resolves the session token of `Authorization: Bearer` or answers 401 (none, or unknown) or
/// 410 (expired). The call is then made through the channel the token was issued for, and
/// its `Idempotency-Key`s are the onboarding's own.
pub async fn require_session_token(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| {
            s.strip_prefix("Bearer ")
                .or_else(|| s.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unauthenticated",
                "A session token is required in Authorization: Bearer",
            )
        })?;
    let row = store::token_by_hash(app.db.reader(), &sha256_hex(presented))
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_session_token", "The session token is unknown")
        })?;
    if row.expires_at <= app.db.now_ms() {
        return Err(expired());
    }
    let channel = row.channel.parse().unwrap_or(Channel::Web);
    let token = SessionToken {
        tenant_id: row.tenant_id.clone(),
        onboarding_id: row.onboarding_id.clone(),
        channel,
    };
    let extensions = req.extensions_mut();
    extensions.insert(Tenant::without_key(
        row.tenant_id,
        format!("onboarding:{}", row.onboarding_id),
    ));
    extensions.insert(Scope(format!("onboarding:{}", row.onboarding_id)));
    extensions.insert(token);
    Ok(calls::within(Some(channel), None, None, next.run(req)).await)
}

fn expired() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "session_expired",
        "This onboarding session has expired; the bank can start a new one",
    )
}

/// Body of `POST /omni/start` (seed 002).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartOnboarding {
    /// ISO 3166-1 alpha-2 code of the customer's country, or `ALL`. The configuration must
    /// serve it (422 `country_not_served`).
    #[schema(example = "ALL")]
    pub country_code: String,
    /// A configuration of `POST /api/v1/omni/onboarding/configurations`.
    #[schema(example = "cfg_sme_onboarding")]
    pub configuration_id: String,
    /// The bank's own id of the customer: the onboarding's customer. Without it, a new
    /// customer `cust_...` is created.
    #[schema(example = "ent_customer_456")]
    pub external_customer_id: Option<String>,
    /// BCP 47 language tag for the customer-facing screens.
    #[schema(example = "ar-SA")]
    pub language: Option<String>,
    /// Where the bank's front end sends the customer when done: an absolute http(s) URL.
    pub redirect_url: Option<String>,
    /// The bank's own facts about the session: at most 50 entries, keys of at most 64
    /// characters, values (string, number or boolean) of at most 1,024 characters.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Value>,
    /// The channel the journey runs on; else the `X-Omni-Channel` header; else `web`.
    pub channel: Option<Channel>,
}

/// Answer of `POST /omni/start` and `POST /omni/resume`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStarted {
    /// The session token, shown once: send it as `Authorization: Bearer`.
    #[schema(example = "ost_Vb0m...")]
    pub token: String,
    /// The onboarding's id.
    #[schema(example = "onb_5d2c...")]
    pub interview_id: String,
    pub journey_id: String,
    pub customer_id: String,
    /// The channel this token acts through.
    pub channel: Channel,
    /// When this session (every token of it) expires.
    pub expires_at: String,
}

/// Body of `POST /omni/add/data`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddData {
    /// The current step, a `form` or `kyc_check` step.
    #[schema(example = "step_kyc")]
    pub step_id: String,
    /// Values by field name, checked against the fields the step declares.
    #[schema(value_type = Object, example = json!({"firstName": "Layla", "lastName": "Al-Saud"}))]
    pub fields: Value,
}

/// Body of `POST /omni/resume`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumeOnboarding {
    /// The handoff token of `POST /omni/handoff` (also accepted as `handoff_token`).
    #[serde(alias = "handoff_token")]
    #[schema(example = "ho_Zt4k...")]
    pub handoff_token: String,
    /// The channel of the device resuming; either case.
    pub channel: Channel,
    /// The device resuming (also accepted as `device_id`).
    #[serde(alias = "device_id")]
    #[schema(example = "iphone_15_abc")]
    pub device_id: String,
}

/// Answer of `POST /omni/handoff`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingHandoff {
    /// Single use, shown once.
    #[schema(example = "ho_Zt4k...")]
    pub handoff_token: String,
    pub interview_id: String,
    pub expires_at: String,
    /// URL-safe base64 (no padding) of `{"v":1,"handoffToken":...,"interviewId":...,
    /// "expiresAt":...}`: what to show as a QR code for the other device to scan.
    pub qr_payload: String,
}

/// The onboarding as the customer's device sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingSession {
    pub interview_id: String,
    pub status: OnboardingStatus,
    pub journey_id: String,
    /// The channel this token acts through.
    pub channel: Channel,
    pub language: Option<String>,
    pub redirect_url: Option<String>,
    pub expires_at: String,
    pub finished_at: Option<String>,
    /// `null` when every step is done or the journey is closed.
    pub current_step: Option<CurrentStepInputs>,
    pub steps_done: Vec<StepState>,
    /// The fields given so far, per step id.
    #[schema(value_type = Object)]
    pub data: Value,
    pub documents: Vec<DocumentView>,
}

/// Answer of `POST /omni/add/document`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentAdded {
    pub document: DocumentView,
    /// Whether this document completed its step.
    pub step_completed: bool,
    pub session: OnboardingSession,
}

fn session_view(s: &Snapshot, channel: Channel, now: i64) -> OnboardingSession {
    OnboardingSession {
        interview_id: s.row.id.clone(),
        status: s.status(now),
        journey_id: s.row.journey_id.clone(),
        channel,
        language: s.row.language.clone(),
        redirect_url: s.row.redirect_url.clone(),
        expires_at: to_rfc3339(s.row.expires_at),
        finished_at: s.row.finished_at.map(to_rfc3339),
        current_step: s.current_inputs(),
        steps_done: s.step_states(true),
        data: Value::Object(s.data()),
        documents: s.document_views(),
    }
}

/// Records an onboarding event in the caller's transaction, concerning the onboarding, its
/// customer and its journey.
async fn record(
    conn: &mut crate::store::Conn,
    row: &OnboardingRow,
    event_type: EventType,
    summary: String,
    mut metadata: Value,
    payload: Value,
    occurred_at: i64,
) -> ApiResult<()> {
    if let Value::Object(m) = &mut metadata {
        m.insert("interviewId".into(), json!(row.id));
        m.insert("journeyId".into(), json!(row.journey_id));
        m.insert("customerId".into(), json!(row.customer_id));
    }
    events::record(
        conn,
        NewEvent {
            tenant_id: &row.tenant_id,
            event_type,
            actor_id: Some(&row.customer_id),
            channel: Some(&row.channel),
            summary,
            metadata,
            payload,
            occurred_at,
            entities: vec![
                ("onboarding", &row.id),
                ("customer", &row.customer_id),
                ("journey", &row.journey_id),
            ],
            parties: Default::default(),
        },
    )
    .await?;
    Ok(())
}

fn is_http_url(s: &str) -> bool {
    s.len() <= 2048
        && s.parse::<Uri>().is_ok_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        })
}

/// Start an onboarding session (seed 002).
///
/// Creates (or links, by `externalCustomerId`) the customer, a journey from the
/// configuration's template, and the session; answers the session token.
#[utoipa::path(
    post, path = "/omni/start", operation_id = "onboarding.start", tag = "Onboarding sessions",
    request_body = StartOnboarding,
    security(("apiKey" = [])),
    responses(
        (status = 201, description = "Session started; the token is shown once", body = SessionStarted),
        (status = 422, description = "Invalid fields (`validation_failed`); unknown configuration (`unknown_configuration`); a country the configuration does not serve (`country_not_served`); the configuration's template is no longer an active onboarding template (`template_not_active`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn start(
    State(app): State<AppState>,
    tenant: Tenant,
    idem: Idem,
    ApiJson(body): ApiJson<StartOnboarding>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let country = body.country_code.trim().to_ascii_uppercase();
    if country != "ALL" && !is_country(&country) {
        errors.push(FieldError::new(
            "countryCode",
            "must be ALL or an ISO 3166-1 alpha-2 country code, e.g. SA",
        ));
    }
    if !is_external_id(&body.configuration_id) {
        errors.push(FieldError::new("configurationId", ID_RULE));
    }
    if let Some(id) = &body.external_customer_id
        && !is_external_id(id)
    {
        errors.push(FieldError::new("externalCustomerId", ID_RULE));
    }
    if body
        .language
        .as_deref()
        .is_some_and(|l| !is_language_tag(l))
    {
        errors.push(FieldError::new(
            "language",
            "must be a BCP 47 language tag, e.g. ar-SA",
        ));
    }
    if body
        .redirect_url
        .as_deref()
        .is_some_and(|u| !is_http_url(u))
    {
        errors.push(FieldError::new(
            "redirectUrl",
            "must be an absolute http or https URL of at most 2048 characters",
        ));
    }
    check_object(&mut errors, "customFields", body.custom_fields.as_ref());
    let custom_fields = match body.custom_fields {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    check_custom_fields(&custom_fields, &mut errors);
    reject(errors)?;
    if let Some(channel) = body.channel {
        calls::state(channel);
    }
    let channel = body.channel.or_else(calls::stated).unwrap_or(Channel::Web);

    let config = store::get_configuration(app.db.reader(), &tenant.id, &body.configuration_id)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_configuration",
                format!("Configuration {} does not exist", body.configuration_id),
            )
            .with("field", "configurationId")
        })?;
    let countries = config.countries();
    if !countries.iter().any(|c| c == "ALL" || *c == country) {
        return Err(ApiError::unprocessable(
            "country_not_served",
            format!(
                "Configuration {} serves {}, not {country}",
                config.id,
                countries.join(", ")
            ),
        )
        .with("field", "countryCode")
        .with("countries", countries));
    }

    let now = app.db.now_ms();
    let id = new_id("onb_");
    let customer_id = body
        .external_customer_id
        .clone()
        .unwrap_or_else(|| new_id("cust_"));
    let context = json!({
        "onboardingId": id, "configurationId": config.id, "countryCode": country,
        "customFields": custom_fields,
    });
    let row = journeys::new_row(
        config.template_id.clone(),
        customer_id.clone(),
        channel,
        context,
        now,
    );
    let mut tx = app.db.begin().await?;
    let journey = journeys::create(&app, &mut tx, &tenant.id, row, None).await?;
    let onboarding = OnboardingRow {
        id,
        tenant_id: tenant.id.clone(),
        configuration_id: config.id.clone(),
        journey_id: journey.row.id.clone(),
        customer_id,
        external_customer_id: body.external_customer_id,
        country_code: country,
        language: body.language,
        redirect_url: body.redirect_url,
        custom_fields: Value::Object(custom_fields).to_string(),
        channel: channel.as_lower().to_owned(),
        data: "{}".into(),
        status: OnboardingStatus::Started.as_str().to_owned(),
        row_version: 1,
        created_at: now,
        updated_at: now,
        expires_at: crate::time::later(
            now,
            std::time::Duration::from_secs(app.config.onboarding_token_ttl_secs),
        ),
        finished_at: None,
        journey_status: journey.row.status.clone(),
    };
    store::insert_onboarding(&mut tx, &onboarding).await?;
    let token = new_secret("ost_");
    store::insert_token(
        &mut tx,
        &sha256_hex(&token),
        &onboarding.id,
        &onboarding.channel,
        None,
        None,
        now,
    )
    .await?;
    let snapshot = Snapshot::read(&app, &mut tx, onboarding).await?;
    let view = super::routes::onboarding_view(&snapshot, now);
    let summary = format!("Onboarding started on {}", channel.as_lower());
    let metadata = json!({
        "configurationId": config.id, "countryCode": snapshot.row.country_code,
        "channel": channel,
    });
    record(
        &mut tx,
        &snapshot.row,
        EventType::OnboardingStarted,
        summary,
        metadata,
        serde_json::to_value(&view).unwrap_or_default(),
        now,
    )
    .await?;
    let answer = SessionStarted {
        token,
        interview_id: snapshot.row.id.clone(),
        journey_id: snapshot.row.journey_id.clone(),
        customer_id: snapshot.row.customer_id.clone(),
        channel,
        expires_at: to_rfc3339(snapshot.row.expires_at),
    };
    // The token is shown once: an idempotent retry gets the same answer, token included.
    idem.commit(&app.db, tx, StatusCode::CREATED, &answer).await
}

/// The session: status, the current step with what it needs, the steps done, the data and
/// documents received.
#[utoipa::path(
    get, path = "/omni/session", operation_id = "onboarding.session.get", tag = "Onboarding sessions",
    security(("sessionToken" = [])),
    responses((status = 200, description = "The session", body = OnboardingSession))
)]
async fn get_session(State(app): State<AppState>, token: SessionToken) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut conn = app.db.read_conn().await?;
    let row = store::get_onboarding(&mut conn, &token.tenant_id, &token.onboarding_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Onboarding"))?;
    let snapshot = Snapshot::read(&app, &mut conn, row).await?;
    Ok(crate::api::json(
        StatusCode::OK,
        &session_view(&snapshot, token.channel, now),
    ))
}

/// Download one of the session's own documents.
#[utoipa::path(
    get, path = "/omni/documents/{documentId}", operation_id = "onboarding.documents.get", tag = "Onboarding sessions",
    params(("documentId" = String, Path, description = "A document of this session")),
    security(("sessionToken" = [])),
    responses(
        (status = 200, description = "The document's bytes", content(
            (super::routes::DocumentBytes = "application/pdf"), (super::routes::DocumentBytes = "image/jpeg"), (super::routes::DocumentBytes = "image/png")
        )),
        (status = 404, description = "No such document in this session (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The document store does not answer (`document_store_unavailable`), with `Retry-After`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_document(
    State(app): State<AppState>,
    token: SessionToken,
    crate::api::ApiPath(document_id): crate::api::ApiPath<String>,
) -> ApiResult<Response> {
    let doc = store::document(
        app.db.reader(),
        &token.tenant_id,
        &token.onboarding_id,
        &document_id,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("Document"))?;
    super::routes::document_response(&app, &doc).await
}

/// The customer the token's onboarding is for.
pub(crate) async fn customer_of(app: &AppState, token: &SessionToken) -> ApiResult<String> {
    store::get_onboarding(app.db.reader(), &token.tenant_id, &token.onboarding_id)
        .await?
        .map(|o| o.customer_id)
        .ok_or_else(|| ApiError::not_found("Onboarding"))
}

/// Locks the token's onboarding for a change and reads it.
async fn lock(app: &AppState, tx: &mut Tx, token: &SessionToken, now: i64) -> ApiResult<Snapshot> {
    let row = store::lock_onboarding(tx, &token.tenant_id, &token.onboarding_id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("Onboarding"))?;
    if row.expires_at <= now && row.status != OnboardingStatus::Finished.as_str() {
        return Err(expired());
    }
    Snapshot::read(app, tx, row).await
}

/// The step named by `step_id`, which must be the current step and the customer's to do.
fn current_customer_step<'a>(
    s: &'a Snapshot,
    step_id: &str,
) -> ApiResult<&'a crate::journeys::model::StepDef> {
    let Some(step) = s.journey.steps().iter().find(|st| st.id == step_id) else {
        return Err(ApiError::invalid_field(
            "stepId",
            format!("is not a step of this onboarding: {step_id}"),
        ));
    };
    if !is_customer_facing(step.kind) {
        return Err(ApiError::forbidden(
            "step_not_customer_facing",
            format!(
                "Step {step_id} is a {} step, done by staff",
                step.kind.as_str()
            ),
        )
        .with("stepId", step_id));
    }
    match s.current_step() {
        Some(current) if current.id == step_id => Ok(step),
        current => Err(ApiError::conflict(
            "step_not_current",
            match current {
                Some(c) => format!("The onboarding's current step is {}", c.id),
                None => "Every step of this onboarding is done".to_owned(),
            },
        )
        .with("currentStepId", current.map(|c| c.id.clone()))),
    }
}

/// Passes the current step for the customer, in the caller's transaction.
async fn pass_step(
    app: &AppState,
    tx: &mut Tx,
    s: &mut Snapshot,
    step_id: &str,
    outcome: StepOutcome,
    data: Value,
) -> ApiResult<()> {
    let customer = s.row.customer_id.clone();
    let step = Advance {
        step_id,
        outcome,
        data,
        actor: Some(&customer),
        by_customer: true,
    };
    journeys::advance_step(app, tx, &s.row.tenant_id, &mut s.journey, step).await?;
    if let Some(index) = s.journey.steps().iter().position(|st| st.id == step_id) {
        s.statuses[index] = outcome.status();
    }
    Ok(())
}

/// Give data for the current `form` or `kyc_check` step.
///
/// Values are checked against the fields the step declares; every bad one is listed and
/// nothing is kept. Values given are kept (a later call may add or correct some); the step is
/// passed once every required field has a value.
#[utoipa::path(
    post, path = "/omni/add/data", operation_id = "onboarding.addData", tag = "Onboarding sessions",
    request_body = AddData,
    security(("sessionToken" = [])),
    responses(
        (status = 200, description = "The session after the data", body = OnboardingSession),
        (status = 403, description = "The step is done by staff (`step_not_customer_facing`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Not the current step (`step_not_current`, with `currentStepId`); the session is finished (`session_finished`); the journey is completed or cancelled (`onboarding_closed`); a concurrent change by staff (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad or unknown fields, each listed as `fields.<name>`; a step that is not a step of this onboarding, or a `document_upload` step (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn add_data(
    State(app): State<AppState>,
    token: SessionToken,
    idem: Idem,
    ApiJson(body): ApiJson<AddData>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    check_text(&mut errors, "stepId", &body.step_id, 64, true);
    let Value::Object(fields) = body.fields else {
        errors.push(FieldError::new("fields", "must be a JSON object"));
        return Err(ApiError::validation(errors));
    };
    reject(errors)?;
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut s = lock(&app, &mut tx, &token, now).await?;
    s.check_open()?;
    let step = current_customer_step(&s, &body.step_id)?.clone();
    if step.kind == StepType::DocumentUpload {
        return Err(ApiError::invalid_field(
            "stepId",
            format!(
                "{} is a document_upload step: send its documents to POST /omni/add/document",
                step.id
            ),
        ));
    }
    let defs = fields_of(&step).into_owned();
    reject(check_data(&defs, &fields))?;
    let mut given = s.step_data(&step.id);
    given.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    let complete = missing_fields(&defs, &given).is_empty();
    let mut data = s.data();
    data.insert(step.id.clone(), Value::Object(given.clone()));
    s.row.data = Value::Object(data).to_string();
    s.row.status = OnboardingStatus::InProgress.as_str().to_owned();
    store::update_onboarding(&mut tx, &s.row).await?;
    let names: Vec<&String> = fields.keys().collect();
    record(
        &mut tx,
        &s.row,
        EventType::OnboardingDataAdded,
        format!("Onboarding data added: {}", step.name),
        json!({ "stepId": step.id, "fields": names, "stepCompleted": complete }),
        json!({ "stepId": step.id, "fields": fields, "stepCompleted": complete }),
        now,
    )
    .await?;
    if complete {
        let data = json!({ "fields": given });
        pass_step(&app, &mut tx, &mut s, &step.id, StepOutcome::Passed, data).await?;
    }
    let view = session_view(&s, token.channel, now);
    idem.commit(&app.db, tx, StatusCode::OK, &view).await
}

/// The step a document for `step_id` of type `document_type` goes to: the current step, open
/// to the customer, a `document_upload` step that asks for that type.
fn upload_step(s: &Snapshot, step_id: &str, document_type: &str) -> ApiResult<StepDef> {
    s.check_open()?;
    let step = current_customer_step(s, step_id)?.clone();
    if step.kind != StepType::DocumentUpload {
        return Err(ApiError::invalid_field(
            "stepId",
            format!(
                "{} is a {} step: send its data to POST /omni/add/data",
                step.id,
                step.kind.as_str()
            ),
        ));
    }
    let allowed = if step.documents_required.is_empty() {
        is_slug(document_type)
    } else {
        step.documents_required.iter().any(|t| t == document_type)
    };
    if !allowed {
        return Err(ApiError::invalid_field(
            "documentType",
            if step.documents_required.is_empty() {
                SLUG_RULE.to_owned()
            } else {
                format!("must be one of: {}", step.documents_required.join(", "))
            },
        ));
    }
    Ok(step)
}

/// The parts of an upload.
#[derive(Default)]
struct Upload {
    step_id: Option<String>,
    document_type: Option<String>,
    file: Option<(Vec<u8>, Option<String>, Option<String>)>,
}

/// Multipart body of `POST /omni/add/document`: the parts `stepId`, `documentType` and `file`,
/// as `add_document` reads them.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct AddDocument {
    /// The current step, a `document_upload` step.
    step_id: String,
    /// One of the step's `documentsRequired`.
    document_type: String,
    /// PDF, JPEG or PNG (known by content), at most 10 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large_body()
    } else {
        ApiError::bad_request(
            "invalid_multipart",
            format!("Unreadable multipart body: {e}"),
        )
    }
}

fn too_large_body() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "document_too_large",
        "The document is larger than the limit",
    )
}

async fn text_part(field: Field<'_>, name: &str) -> ApiResult<String> {
    let text = field.text().await.map_err(multipart_error)?;
    if text.len() > 128 {
        return Err(ApiError::invalid_field(
            name,
            "must be at most 128 characters",
        ));
    }
    Ok(text)
}

async fn read_upload(mut multipart: Multipart, max: usize) -> ApiResult<Upload> {
    let mut upload = Upload::default();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("stepId") => upload.step_id = Some(text_part(field, "stepId").await?),
            Some("documentType") => {
                upload.document_type = Some(text_part(field, "documentType").await?)
            }
            Some("file") => {
                let content_type = field.content_type().map(str::to_owned);
                let file_name = field
                    .file_name()
                    .map(|n| n.chars().filter(|c| !c.is_control()).take(255).collect());
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if bytes.len() + chunk.len() > max {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "document_too_large",
                            format!("A document may be at most {max} bytes"),
                        )
                        .with("maxBytes", max));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                upload.file = Some((bytes, content_type, file_name));
            }
            // Other parts are read and ignored, as unknown JSON fields are.
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    Ok(upload)
}

/// Send a document for the current `document_upload` step (multipart: `stepId`,
/// `documentType`, `file`).
///
/// The file must be a PDF, JPEG or PNG by its content; a name or part type that says
/// otherwise is refused. Its SHA-256 is recorded. The step is passed once a document of every
/// required type is in.
#[utoipa::path(
    post, path = "/omni/add/document", operation_id = "onboarding.addDocument", tag = "Onboarding sessions",
    request_body(content = AddDocument, content_type = "multipart/form-data"),
    security(("sessionToken" = [])),
    responses(
        (status = 201, description = "Document received", body = DocumentAdded),
        (status = 400, description = "Unreadable multipart body (`invalid_multipart`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The step is done by staff (`step_not_customer_facing`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Not the current step (`step_not_current`, with `currentStepId`); the session is finished (`session_finished`); the journey is completed or cancelled (`onboarding_closed`); a concurrent change by staff (`concurrent_update`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "The document is over 10 MiB (`document_too_large`, with `maxBytes`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data (`unsupported_media_type`); not a PDF, JPEG or PNG by content (`unsupported_document_type`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Missing part, unknown step, a step that is not `document_upload`, a type the step does not ask for, an empty file (`validation_failed`); a name or part type that says another kind of file than the content (`document_type_mismatch`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn add_document(
    State(app): State<AppState>,
    token: SessionToken,
    idem: Idem,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let multipart = multipart.map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the document as multipart/form-data with parts stepId, documentType and file",
        )
    })?;
    let upload = read_upload(multipart, app.config.max_document_bytes).await?;
    let mut errors = Vec::new();
    for (name, present) in [
        ("stepId", upload.step_id.is_some()),
        ("documentType", upload.document_type.is_some()),
        ("file", upload.file.is_some()),
    ] {
        if !present {
            errors.push(FieldError::new(name, "is required"));
        }
    }
    if upload.file.as_ref().is_some_and(|(b, _, _)| b.is_empty()) {
        errors.push(FieldError::new("file", "must not be empty"));
    }
    reject(errors)?;
    let (Some(step_id), Some(document_type), Some((bytes, part_type, file_name))) =
        (upload.step_id, upload.document_type, upload.file)
    else {
        return Err(ApiError::internal());
    };

    // Checked first without the onboarding's lock, so that the file can be written to the
    // store without holding a database transaction open; checked again under the lock.
    let row = store::get_onboarding(app.db.reader(), &token.tenant_id, &token.onboarding_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Onboarding"))?;
    let mut conn = app.db.read_conn().await?;
    let before = Snapshot::read(&app, &mut conn, row).await?;
    drop(conn);
    upload_step(&before, &step_id, &document_type)?;
    let kind = FileKind::sniff(&bytes).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_document_type",
            "A document must be a PDF, JPEG or PNG file",
        )
    })?;
    if let Some(claimed) = FileKind::claimed(part_type.as_deref(), file_name.as_deref())
        && claimed != kind
    {
        return Err(ApiError::unprocessable(
            "document_type_mismatch",
            format!(
                "The file is sent as {} but its content is {}",
                claimed.mime(),
                kind.mime()
            ),
        )
        .with("field", "file")
        .with("claimedContentType", claimed.mime())
        .with("detectedContentType", kind.mime()));
    }
    let now = app.db.now_ms();
    let id = new_id("doc_");
    let storage_key = format!("{}/{}/{id}", before.row.tenant_id, before.row.id);
    let size_bytes = bytes.len() as i64;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    // Stored before the row that names it commits, so that a committed row always has its
    // file; removed again when the change is refused (every refusal comes before the commit)
    // or lost to a concurrent request with the same Idempotency-Key (whose answer is replayed),
    // so that nothing is left behind. A server error may have come from the commit
    // itself, whose outcome is then unknown: the object stays, since a row without its file
    // would be worse than a file without its row (which is never served: documents are found
    // through their rows).
    app.documents
        .put(&storage_key, bytes.into())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, location = app.documents.location(), "document store write failed");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "document_store_unavailable",
                "The document could not be stored; try again",
            );
            err.retry_after = Some(5);
            err
        })?;

    let stored = async {
        let mut tx = app.db.begin().await?;
        let mut s = lock(&app, &mut tx, &token, now).await?;
        let step = upload_step(&s, &step_id, &document_type)?;
        let doc = DocumentRow {
            id,
            onboarding_id: s.row.id.clone(),
            step_id: step.id.clone(),
            document_type,
            content_type: kind.mime().to_owned(),
            size_bytes,
            sha256,
            file_name,
            storage_key: storage_key.clone(),
            created_at: now,
        };
        store::insert_document(&mut tx, &doc).await?;
        s.documents.push(doc.clone());
        s.row.status = OnboardingStatus::InProgress.as_str().to_owned();
        store::update_onboarding(&mut tx, &s.row).await?;
        let complete = missing_documents(&step, &s.received(&step.id)).is_empty();
        let view = DocumentView::from(&doc);
        record(
            &mut tx,
            &s.row,
            EventType::OnboardingDocumentAdded,
            format!("Onboarding document added: {}", doc.document_type),
            json!({
                "stepId": step.id, "documentId": doc.id, "documentType": doc.document_type,
                "contentType": doc.content_type, "sizeBytes": doc.size_bytes, "sha256": doc.sha256,
                "stepCompleted": complete,
            }),
            serde_json::to_value(&view).unwrap_or_default(),
            now,
        )
        .await?;
        if complete {
            let docs: Vec<Value> = s
                .documents
                .iter()
                .filter(|d| d.step_id == step.id)
                .map(|d| json!({ "documentId": d.id, "documentType": d.document_type, "sha256": d.sha256 }))
                .collect();
            let data = json!({ "documents": docs });
            pass_step(&app, &mut tx, &mut s, &step.id, StepOutcome::Passed, data).await?;
        }
        let answer = DocumentAdded {
            document: view,
            step_completed: complete,
            session: session_view(&s, token.channel, now),
        };
        idem.commit(&app.db, tx, StatusCode::CREATED, &answer).await
    }
    .await;
    let changed_nothing = match &stored {
        Ok(answer) => crate::idempotency::is_replay(answer),
        Err(refusal) => refusal.status.is_client_error(),
    };
    if changed_nothing && let Err(e) = app.documents.delete(&storage_key).await {
        tracing::warn!(error = %e, key = %storage_key, "a refused document could not be removed");
    }
    stored
}

/// The customer is done: the journey goes on with its staff steps.
///
/// Optional customer-facing steps still ahead of the first staff step are skipped; a
/// required one is 409 `onboarding_incomplete`. The session is read-only afterwards.
#[utoipa::path(
    post, path = "/omni/finish", operation_id = "onboarding.finish", tag = "Onboarding sessions",
    security(("sessionToken" = [])),
    responses(
        (status = 200, description = "The finished session", body = OnboardingSession),
        (status = 409, description = "Required customer steps are not done (`onboarding_incomplete`, with `pendingSteps`); already finished (`session_finished`); the journey is completed or cancelled (`onboarding_closed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn finish(
    State(app): State<AppState>,
    token: SessionToken,
    idem: Idem,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let mut s = lock(&app, &mut tx, &token, now).await?;
    s.check_open()?;
    let pending: Vec<String> = s.journey.steps()
        [s.journey.progress().current.min(s.journey.steps().len())..]
        .iter()
        .take_while(|st| is_customer_facing(st.kind))
        .filter(|st| st.required)
        .map(|st| st.id.clone())
        .collect();
    if !pending.is_empty() {
        return Err(ApiError::conflict(
            "onboarding_incomplete",
            format!("Steps still to do: {}", pending.join(", ")),
        )
        .with("pendingSteps", pending));
    }
    while let Some(step) = s.current_step().filter(|st| is_customer_facing(st.kind)) {
        let id = step.id.clone();
        let data = json!({ "reason": "finished by the customer" });
        pass_step(&app, &mut tx, &mut s, &id, StepOutcome::Skipped, data).await?;
    }
    s.row.status = OnboardingStatus::Finished.as_str().to_owned();
    s.row.finished_at = Some(now);
    store::update_onboarding(&mut tx, &s.row).await?;
    let next = s.current_step().map(|st| st.id.clone());
    record(
        &mut tx,
        &s.row,
        EventType::OnboardingFinished,
        "Onboarding finished by the customer".to_owned(),
        json!({ "nextStepId": next }),
        serde_json::to_value(super::routes::onboarding_view(&s, now)).unwrap_or_default(),
        now,
    )
    .await?;
    let view = session_view(&s, token.channel, now);
    idem.commit(&app.db, tx, StatusCode::OK, &view).await
}

/// Hand the session to another device: a single-use handoff token, and a payload to show as
/// a QR code.
#[utoipa::path(
    post, path = "/omni/handoff", operation_id = "onboarding.handoff", tag = "Onboarding sessions",
    security(("sessionToken" = [])),
    responses(
        (status = 201, description = "Handoff token, shown once", body = OnboardingHandoff),
        (status = 409, description = "The session is finished (`session_finished`); the journey is completed or cancelled (`onboarding_closed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn handoff(
    State(app): State<AppState>,
    token: SessionToken,
    idem: Idem,
) -> ApiResult<Response> {
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    let s = lock(&app, &mut tx, &token, now).await?;
    s.check_open()?;
    let secret = new_secret("ho_");
    let h = HandoffRow {
        id: new_id("hof_"),
        onboarding_id: s.row.id.clone(),
        tenant_id: s.row.tenant_id.clone(),
        created_at: now,
        expires_at: crate::time::later(
            now,
            std::time::Duration::from_secs(app.config.handoff_ttl_secs),
        )
        .min(s.row.expires_at),
        used_at: None,
    };
    store::insert_handoff(&mut tx, &sha256_hex(&secret), &h).await?;
    let expires_at = to_rfc3339(h.expires_at);
    let payload = json!({
        "v": 1, "handoffToken": secret, "interviewId": s.row.id, "expiresAt": expires_at,
    });
    let answer = OnboardingHandoff {
        qr_payload: URL_SAFE_NO_PAD.encode(payload.to_string()),
        handoff_token: secret,
        interview_id: s.row.id.clone(),
        expires_at: expires_at.clone(),
    };
    let facts = json!({ "handoffId": h.id, "expiresAt": expires_at });
    record(
        &mut tx,
        &s.row,
        EventType::OnboardingHandoffCreated,
        "Onboarding handed off to another device".to_owned(),
        facts.clone(),
        facts,
        now,
    )
    .await?;
    idem.commit(&app.db, tx, StatusCode::CREATED, &answer).await
}

/// Resume a handed-off session on another device: a second session token for the same
/// onboarding.
///
/// The handoff token is the credential. Of concurrent resumes of one token exactly one wins.
#[utoipa::path(
    post, path = "/omni/resume", operation_id = "onboarding.resume", tag = "Onboarding sessions",
    request_body = ResumeOnboarding,
    security(()),
    responses(
        (status = 201, description = "A second session token, shown once", body = SessionStarted),
        (status = 404, description = "No such handoff token (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The handoff token was already used (`handoff_used`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "The handoff token has expired (`handoff_expired`); the session has expired (`session_expired`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn resume(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<ResumeOnboarding>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    if body.handoff_token.trim().is_empty() || body.handoff_token.len() > 256 {
        errors.push(FieldError::new("handoffToken", "must be a handoff token"));
    }
    if !is_external_id(&body.device_id) {
        errors.push(FieldError::new("deviceId", ID_RULE));
    }
    reject(errors)?;
    calls::state(body.channel);
    let now = app.db.now_ms();
    let hash = sha256_hex(body.handoff_token.trim());
    let mut tx = app.db.begin().await?;
    let h = store::handoff_by_hash(&mut *tx, &hash)
        .await?
        .ok_or_else(|| ApiError::not_found("Handoff token"))?;
    let refusal = |h: &HandoffRow| crate::sessions::handoff_refusal(h.used_at.is_some());
    if h.used_at.is_some() || h.expires_at <= now {
        return Err(refusal(&h));
    }
    let row = store::lock_onboarding(&mut tx, &h.tenant_id, &h.onboarding_id, now)
        .await?
        .ok_or_else(|| ApiError::not_found("Handoff token"))?;
    if row.expires_at <= now {
        return Err(expired());
    }
    if !store::claim_handoff(&mut tx, &h.id, now).await? {
        drop(tx);
        let current = store::handoff_by_hash(app.db.reader(), &hash)
            .await?
            .unwrap_or(h);
        return Err(refusal(&current));
    }
    let token = new_secret("ost_");
    store::insert_token(
        &mut tx,
        &sha256_hex(&token),
        &row.id,
        body.channel.as_lower(),
        Some(&body.device_id),
        Some(&h.id),
        now,
    )
    .await?;
    record(
        &mut tx,
        &row,
        EventType::OnboardingResumed,
        format!("Onboarding resumed on {}", body.channel.as_lower()),
        json!({ "handoffId": h.id, "channel": body.channel, "deviceId": body.device_id }),
        json!({ "handoffId": h.id, "channel": body.channel, "deviceId": body.device_id }),
        now,
    )
    .await?;
    let answer = SessionStarted {
        token,
        interview_id: row.id.clone(),
        journey_id: row.journey_id.clone(),
        customer_id: row.customer_id.clone(),
        channel: body.channel,
        expires_at: to_rfc3339(row.expires_at),
    };
    Idem::default()
        .commit(&app.db, tx, StatusCode::CREATED, &answer)
        .await
}
