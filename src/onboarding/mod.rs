//! Onboarding sessions (seed 002): the customer-facing side of an onboarding journey.
//!
//! The bank's backend starts one with its API key (`POST /omni/start`) and hands the session
//! token to the customer's browser or phone, which fills in the journey's customer-facing
//! steps (`form`, `kyc_check`, `document_upload`) through the `/omni/*` endpoints and
//! finishes; staff then take the journey through its review and approval steps. The bank
//! reads onboardings, their data and documents under `/api/v1/omni/onboarding`.
//!
//! - [`model`]: the rules (fields, file kinds, status), as plain functions.
//! - [`session`]: the customer's endpoints and the session-token and `api-version` checks.
//! - `routes`: the bank's endpoints (configurations, onboardings, documents).
//! - [`documents`]: where the files are kept.

pub mod documents;
pub mod model;
mod routes;
pub mod session;
pub mod store;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use self::model::{FieldDef, OnboardingStatus, fields_of, is_customer_facing};
use self::store::{DocumentRow, OnboardingRow};
use crate::AppState;
use crate::api::stored_json;
use crate::error::{ApiError, ApiResult};
use crate::journeys::model::{StepDef, StepOutcome, StepStatus, StepType, step_statuses};
use crate::journeys::{self, Loaded};
use crate::time::to_rfc3339;

/// The bank's routes, under `/api/v1/omni`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}

/// A document as received.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    #[schema(example = "doc_4f1c...")]
    pub id: String,
    pub step_id: String,
    #[schema(example = "trade_license")]
    pub document_type: String,
    /// What the content is, by its first bytes: `application/pdf`, `image/jpeg` or `image/png`.
    pub content_type: String,
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// The name the file was sent with, if any.
    pub file_name: Option<String>,
    pub created_at: String,
}

impl From<&DocumentRow> for DocumentView {
    fn from(d: &DocumentRow) -> Self {
        DocumentView {
            id: d.id.clone(),
            step_id: d.step_id.clone(),
            document_type: d.document_type.clone(),
            content_type: d.content_type.clone(),
            size_bytes: d.size_bytes,
            sha256: d.sha256.clone(),
            file_name: d.file_name.clone(),
            created_at: to_rfc3339(d.created_at),
        }
    }
}

/// A step of the onboarding's journey and where it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepType,
    pub status: StepStatus,
    /// Whether the customer does this step (`form`, `kyc_check`, `document_upload`); the
    /// others are done by staff.
    pub customer_facing: bool,
}

/// The step the onboarding waits on, with what it needs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentStepInputs {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepType,
    /// `pending`, or `failed` when staff sent it back for another attempt.
    pub status: StepStatus,
    pub customer_facing: bool,
    /// On `form` and `kyc_check` steps: the fields to send to `POST /omni/add/data`.
    pub fields: Vec<FieldDef>,
    /// A `form` step that declares no fields takes any (at most 50 scalar values).
    pub free_form: bool,
    /// On `document_upload` steps: the document types to send to `POST /omni/add/document`.
    pub documents_required: Vec<String>,
    /// The document types received for this step so far.
    pub documents_received: Vec<String>,
    /// What the step still waits for: required field names, or document types (`any` for a
    /// step that names none). Empty on staff steps.
    pub missing: Vec<String>,
}

/// An onboarding with its journey, read (or locked) in one transaction.
pub(crate) struct Snapshot {
    pub row: OnboardingRow,
    pub journey: Loaded,
    pub statuses: Vec<StepStatus>,
    pub documents: Vec<DocumentRow>,
}

impl Snapshot {
    pub(crate) async fn read(
        app: &AppState,
        conn: &mut crate::store::Conn,
        row: OnboardingRow,
    ) -> ApiResult<Self> {
        let journey = journeys::load(app, &mut *conn, &row.tenant_id, &row.journey_id).await?;
        let history = journeys::store::history(&mut *conn, &row.journey_id).await?;
        let outcomes: Vec<(usize, StepOutcome)> = history
            .iter()
            .filter_map(|h| {
                Some((
                    usize::try_from(h.step_index).ok()?,
                    StepOutcome::parse(&h.outcome)?,
                ))
            })
            .collect();
        let statuses = step_statuses(journey.steps().len(), &outcomes, journey.status());
        let documents = store::documents(&mut *conn, &row.id).await?;
        Ok(Self {
            row,
            journey,
            statuses,
            documents,
        })
    }

    pub(crate) fn status(&self, now: i64) -> OnboardingStatus {
        model::shown_status(
            &self.row.status,
            self.journey.status().as_str(),
            self.row.expires_at,
            now,
        )
    }

    /// The data given so far, per step id.
    pub(crate) fn data(&self) -> Map<String, Value> {
        match stored_json(&self.row.data) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The fields given so far for one step.
    pub(crate) fn step_data(&self, step_id: &str) -> Map<String, Value> {
        match self.data().remove(step_id) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The document types received for one step.
    pub(crate) fn received(&self, step_id: &str) -> Vec<&str> {
        let mut types: Vec<&str> = self
            .documents
            .iter()
            .filter(|d| d.step_id == step_id)
            .map(|d| d.document_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// The step the journey waits on, if any is left.
    pub(crate) fn current_step(&self) -> Option<&StepDef> {
        if self.journey.status().is_final() {
            return None;
        }
        self.journey.steps().get(self.journey.progress().current)
    }

    pub(crate) fn step_states(&self, only_done: bool) -> Vec<StepState> {
        let current = self.journey.progress().current;
        self.journey
            .steps()
            .iter()
            .zip(&self.statuses)
            .enumerate()
            .filter(|(i, _)| !only_done || *i < current)
            .map(|(_, (s, status))| StepState {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind,
                status: *status,
                customer_facing: is_customer_facing(s.kind),
            })
            .collect()
    }

    pub(crate) fn current_inputs(&self) -> Option<CurrentStepInputs> {
        let step = self.current_step()?;
        let facing = is_customer_facing(step.kind);
        let fields = if matches!(step.kind, StepType::Form | StepType::KycCheck) {
            fields_of(step).into_owned()
        } else {
            vec![]
        };
        let received: Vec<String> = self
            .received(&step.id)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let missing: Vec<String> = match step.kind {
            StepType::Form | StepType::KycCheck => {
                model::missing_fields(&fields, &self.step_data(&step.id))
            }
            StepType::DocumentUpload => {
                let got: Vec<&str> = received.iter().map(String::as_str).collect();
                model::missing_documents(step, &got)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
            _ => vec![],
        };
        Some(CurrentStepInputs {
            id: step.id.clone(),
            name: step.name.clone(),
            kind: step.kind,
            status: if self.journey.progress().current_failed {
                StepStatus::Failed
            } else {
                StepStatus::Pending
            },
            customer_facing: facing,
            free_form: step.kind == StepType::Form && fields.is_empty(),
            fields,
            documents_required: step.documents_required.clone(),
            documents_received: received,
            missing,
        })
    }

    pub(crate) fn document_views(&self) -> Vec<DocumentView> {
        self.documents.iter().map(DocumentView::from).collect()
    }

    /// 409 unless the customer may still change the onboarding: not finished, and its journey
    /// neither completed nor cancelled.
    pub(crate) fn check_open(&self) -> ApiResult<()> {
        if self.row.status == OnboardingStatus::Finished.as_str() {
            return Err(ApiError::conflict(
                "session_finished",
                "The customer finished this onboarding; its session is read-only",
            ));
        }
        let status = self.journey.status();
        if status.is_final() {
            return Err(ApiError::conflict(
                "onboarding_closed",
                format!("This onboarding's journey is {}", status.as_str()),
            )
            .with("journeyStatus", status.as_str()));
        }
        Ok(())
    }
}
