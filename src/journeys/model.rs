//! The rules of templates and journeys, as plain functions over plain values.
//!
//! Journey lifecycle (seed 001's diagram, with DESIGN.md's decisions):
//!
//! ```text
//! created ──advance──▶ in_progress ──assign──▶ assigned ──advance──▶ in_progress
//!    │                     │   └────complete────▶ completed ◀──complete──┘
//!    └──────cancel─────────┴──────cancel──────▶ cancelled ◀──cancel── assigned
//! ```
//!
//! - `advance` must name the current step. `passed`, and `skipped` on an optional step, move
//!   to the next step; `failed` keeps the journey on the step for another attempt.
//! - `assign` on a `created` journey sets the assignee and leaves it `created` (it has not
//!   started); on `in_progress` or `assigned` it makes it `assigned`.
//! - `complete` needs every required step done; `cancel` works from any open status.
//! - Nothing leaves `completed` or `cancelled`.

use crate::api::{SLUG_RULE, check_text, is_slug};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields::{FieldDef, check_field_defs};
use crate::bounded::{Hours, StepOrder};
use crate::error::FieldError;
pub use crate::ids::is_template_id;

string_enum!(
    /// What kind of work a step is.
    StepType {
        KycCheck = "kyc_check",
        DocumentUpload = "document_upload",
        Form = "form",
        Approval = "approval",
        Review = "review",
        Signature = "signature",
        Custom = "custom",
    }
);

string_enum!(
    /// Only `active` templates start journeys.
    TemplateStatus { Draft = "draft", Active = "active", Archived = "archived" }
);

string_enum!(
    /// Where a journey is in its lifecycle.
    JourneyStatus {
        Created = "created",
        InProgress = "in_progress",
        Assigned = "assigned",
        Completed = "completed",
        Cancelled = "cancelled",
    }
);

string_enum!(
    /// What happened to the step named by `advance`.
    StepOutcome { Passed = "passed", Skipped = "skipped", Failed = "failed" }
);

string_enum!(
    /// A step's state within one journey.
    /// `cancelled`: a step a cancelled journey had not passed, and now never will.
    StepStatus {
        Pending = "pending",
        Passed = "passed",
        Skipped = "skipped",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

string_enum!(
    Priority { Low = "low", Normal = "normal", High = "high", Urgent = "urgent" }
);

string_enum!(
    /// Who a journey is assigned to.
    AssigneeType { User = "user", Team = "team" }
);

impl StepOutcome {
    pub fn status(self) -> StepStatus {
        match self {
            StepOutcome::Passed => StepStatus::Passed,
            StepOutcome::Skipped => StepStatus::Skipped,
            StepOutcome::Failed => StepStatus::Failed,
        }
    }
}

impl JourneyStatus {
    pub fn is_final(self) -> bool {
        matches!(self, JourneyStatus::Completed | JourneyStatus::Cancelled)
    }
}

/// One step of a template, as created and as stored in each template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepDef {
    /// Unique within the template, e.g. `step_kyc`.
    #[schema(example = "step_kyc")]
    pub id: String,
    #[schema(example = "KYC Verification")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StepType,
    /// Position of the step; unique within the template. Steps run in ascending order.
    pub order: StepOrder,
    /// A required step can be neither skipped nor left out of a completed journey.
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Hours the step may take once current (working hours, under a business calendar): then
    /// `omni.journey.step_overdue`. On an `approval` step, its request also expires after them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_hours: Option<Hours>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents_required: Vec<String>,
    /// On `approval` steps: who approves. Every user holding this role may decide, and the
    /// first decision decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_role_required: Option<String>,
    /// On `approval` steps: named approvers (user ids), each of whom must approve. Takes
    /// precedence over `approvalRoleRequired`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// On `form` and `kyc_check` steps: the inputs the customer gives in an onboarding
    /// session. A `kyc_check` step without them asks `firstName`, `lastName`, `dateOfBirth`,
    /// `nationality` and `idNumber`; a `form` step without them takes any fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDef>,
}

fn yes() -> bool {
    true
}

/// Step ids: 1 to 64 characters of `[A-Za-z0-9_-]`.
fn is_step_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a template's steps; returns one error per offending field.
pub fn validate_steps(steps: &[StepDef], errors: &mut Vec<FieldError>) {
    if steps.is_empty() {
        errors.push(FieldError::new("steps", "must contain at least one step"));
    }
    if steps.len() > 100 {
        errors.push(FieldError::new("steps", "must contain at most 100 steps"));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if !is_step_id(&step.id) {
            errors.push(FieldError::new(
                at("id"),
                "must be 1 to 64 characters of letters, digits, _ or -",
            ));
        } else if steps[..i].iter().any(|s| s.id == step.id) {
            errors.push(FieldError::new(
                at("id"),
                format!("duplicates step id `{}`", step.id),
            ));
        }
        check_text(errors, &at("name"), &step.name, 200, true);
        if let Some(d) = &step.description {
            check_text(errors, &at("description"), d, 2000, false);
        }
        if steps[..i].iter().any(|s| s.order == step.order) {
            errors.push(FieldError::new(
                at("order"),
                format!("duplicates order {}", step.order.get()),
            ));
        }
        for (j, doc) in step.documents_required.iter().enumerate() {
            if !is_slug(doc) {
                errors.push(FieldError::new(
                    format!("steps[{i}].documentsRequired[{j}]"),
                    SLUG_RULE,
                ));
            }
        }
        if let Some(role) = &step.approval_role_required
            && !is_slug(role)
        {
            errors.push(FieldError::new(at("approvalRoleRequired"), SLUG_RULE));
        }
        if step.approvers.len() > 20 {
            errors.push(FieldError::new(
                at("approvers"),
                "must name at most 20 approvers",
            ));
        }
        for (j, user) in step.approvers.iter().enumerate() {
            if !crate::ids::is_external_id(user) {
                errors.push(FieldError::new(
                    format!("steps[{i}].approvers[{j}]"),
                    crate::ids::ID_RULE,
                ));
            } else if step.approvers[..j].contains(user) {
                errors.push(FieldError::new(
                    format!("steps[{i}].approvers[{j}]"),
                    "names an approver twice",
                ));
            }
        }
        check_field_defs(&format!("steps[{i}]"), step, errors);
        if step.kind == StepType::Approval
            && step.approvers.is_empty()
            && step.approval_role_required.is_none()
        {
            errors.push(FieldError::new(
                at("approvalRoleRequired"),
                "an approval step needs approvalRoleRequired or approvers",
            ));
        }
    }
}

/// Steps in the order a journey runs them.
pub fn in_run_order(mut steps: Vec<StepDef>) -> Vec<StepDef> {
    steps.sort_by_key(|s| s.order);
    steps
}

/// Whether moving a template from `from` to `to` is allowed: a template that has been
/// active never goes back to draft.
pub fn template_transition_allowed(from: TemplateStatus, to: TemplateStatus) -> bool {
    from == to || to != TemplateStatus::Draft
}

/// The part of a journey's state the rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub status: JourneyStatus,
    /// Index (in run order) of the step to do next; equal to the step count when all are done.
    pub current: usize,
    /// Whether the last attempt at the current step failed.
    pub current_failed: bool,
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The action is not allowed from the journey's status.
    InvalidTransition {
        action: &'static str,
        status: JourneyStatus,
    },
    /// `advance` named a step that is not the current one.
    StepNotCurrent { current: Option<String> },
    /// `skipped` on a required step.
    RequiredStep { step: String },
    /// `complete` while required steps are not done.
    RequiredStepsPending { steps: Vec<String> },
}

/// What `advance` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    pub progress: Progress,
    /// Index of the step that was advanced.
    pub step_index: usize,
}

pub fn advance(
    p: Progress,
    steps: &[StepDef],
    step_id: &str,
    outcome: StepOutcome,
) -> Result<Advanced, Refusal> {
    if p.status.is_final() {
        return Err(Refusal::InvalidTransition {
            action: "advance",
            status: p.status,
        });
    }
    let Some(step) = steps.get(p.current) else {
        return Err(Refusal::StepNotCurrent { current: None });
    };
    if step.id != step_id {
        return Err(Refusal::StepNotCurrent {
            current: Some(step.id.clone()),
        });
    }
    if outcome == StepOutcome::Skipped && step.required {
        return Err(Refusal::RequiredStep {
            step: step.id.clone(),
        });
    }
    let failed = outcome == StepOutcome::Failed;
    Ok(Advanced {
        progress: Progress {
            status: JourneyStatus::InProgress,
            current: if failed { p.current } else { p.current + 1 },
            current_failed: failed,
        },
        step_index: p.current,
    })
}

/// The status after `assign`.
pub fn assign(status: JourneyStatus) -> Result<JourneyStatus, Refusal> {
    match status {
        JourneyStatus::Created => Ok(JourneyStatus::Created),
        JourneyStatus::InProgress | JourneyStatus::Assigned => Ok(JourneyStatus::Assigned),
        s => Err(Refusal::InvalidTransition {
            action: "assign",
            status: s,
        }),
    }
}

pub fn complete(p: Progress, steps: &[StepDef]) -> Result<(), Refusal> {
    if !matches!(
        p.status,
        JourneyStatus::InProgress | JourneyStatus::Assigned
    ) {
        return Err(Refusal::InvalidTransition {
            action: "complete",
            status: p.status,
        });
    }
    // Steps before `current` are done (passed or, if optional, skipped): only those from
    // `current` on can be missing.
    let pending: Vec<String> = steps
        .iter()
        .skip(p.current)
        .filter(|s| s.required)
        .map(|s| s.id.clone())
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Refusal::RequiredStepsPending { steps: pending })
    }
}

pub fn cancel(status: JourneyStatus) -> Result<(), Refusal> {
    if status.is_final() {
        Err(Refusal::InvalidTransition {
            action: "cancel",
            status,
        })
    } else {
        Ok(())
    }
}

/// Each step's status from the outcomes recorded for it (`(step index, outcome)`, oldest
/// first): the last outcome counts; a step with none is pending.
/// Each step's status from the journey's history (the last outcome of each step wins); in a
/// `cancelled` journey, a step not passed or skipped reads `cancelled`.
pub fn step_statuses(
    step_count: usize,
    history: &[(usize, StepOutcome)],
    journey: JourneyStatus,
) -> Vec<StepStatus> {
    let mut out = vec![StepStatus::Pending; step_count];
    for (index, outcome) in history {
        if let Some(slot) = out.get_mut(*index) {
            *slot = outcome.status();
        }
    }
    if journey == JourneyStatus::Cancelled {
        for slot in &mut out {
            if matches!(slot, StepStatus::Pending | StepStatus::Failed) {
                *slot = StepStatus::Cancelled;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, order: i64, required: bool) -> StepDef {
        StepDef {
            id: id.into(),
            name: id.into(),
            kind: StepType::Form,
            order: StepOrder::new(order).unwrap(),
            required,
            description: None,
            timeout_hours: None,
            documents_required: vec![],
            approval_role_required: None,
            approvers: vec![],
            fields: vec![],
        }
    }

    fn steps() -> Vec<StepDef> {
        vec![step("a", 1, true), step("b", 2, false), step("c", 3, true)]
    }

    fn at(status: JourneyStatus, current: usize) -> Progress {
        Progress {
            status,
            current,
            current_failed: false,
        }
    }

    #[test]
    fn advancing_the_first_step_starts_the_journey() {
        let next = advance(
            at(JourneyStatus::Created, 0),
            &steps(),
            "a",
            StepOutcome::Passed,
        )
        .unwrap();
        assert_eq!(next.progress, at(JourneyStatus::InProgress, 1));
        assert_eq!(next.step_index, 0);
    }

    #[test]
    fn advancing_an_assigned_journey_resumes_it() {
        let next = advance(
            at(JourneyStatus::Assigned, 1),
            &steps(),
            "b",
            StepOutcome::Skipped,
        )
        .unwrap();
        assert_eq!(next.progress, at(JourneyStatus::InProgress, 2));
    }

    #[test]
    fn a_failed_step_stays_current() {
        let next = advance(
            at(JourneyStatus::InProgress, 0),
            &steps(),
            "a",
            StepOutcome::Failed,
        )
        .unwrap();
        assert_eq!(
            next.progress,
            Progress {
                status: JourneyStatus::InProgress,
                current: 0,
                current_failed: true
            }
        );
        let again = advance(next.progress, &steps(), "a", StepOutcome::Passed).unwrap();
        assert_eq!(again.progress, at(JourneyStatus::InProgress, 1));
    }

    #[test]
    fn only_the_current_step_can_be_advanced() {
        let err = advance(
            at(JourneyStatus::InProgress, 1),
            &steps(),
            "a",
            StepOutcome::Passed,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Refusal::StepNotCurrent {
                current: Some("b".into())
            }
        );
        let err = advance(
            at(JourneyStatus::InProgress, 3),
            &steps(),
            "c",
            StepOutcome::Passed,
        )
        .unwrap_err();
        assert_eq!(err, Refusal::StepNotCurrent { current: None });
    }

    #[test]
    fn a_required_step_cannot_be_skipped() {
        let err = advance(
            at(JourneyStatus::InProgress, 0),
            &steps(),
            "a",
            StepOutcome::Skipped,
        )
        .unwrap_err();
        assert_eq!(err, Refusal::RequiredStep { step: "a".into() });
    }

    #[test]
    fn nothing_leaves_a_final_status() {
        for status in [JourneyStatus::Completed, JourneyStatus::Cancelled] {
            assert!(matches!(
                advance(at(status, 0), &steps(), "a", StepOutcome::Passed),
                Err(Refusal::InvalidTransition { .. })
            ));
            assert!(assign(status).is_err());
            assert!(complete(at(status, 3), &steps()).is_err());
            assert!(cancel(status).is_err());
        }
    }

    #[test]
    fn assign_keeps_a_created_journey_created() {
        assert_eq!(assign(JourneyStatus::Created), Ok(JourneyStatus::Created));
        assert_eq!(
            assign(JourneyStatus::InProgress),
            Ok(JourneyStatus::Assigned)
        );
        assert_eq!(assign(JourneyStatus::Assigned), Ok(JourneyStatus::Assigned));
    }

    #[test]
    fn complete_needs_every_required_step() {
        let err = complete(at(JourneyStatus::InProgress, 1), &steps()).unwrap_err();
        assert_eq!(
            err,
            Refusal::RequiredStepsPending {
                steps: vec!["c".into()]
            }
        );
        assert!(complete(at(JourneyStatus::Assigned, 3), &steps()).is_ok());
        // An optional last step may be left undone.
        let s = vec![step("a", 1, true), step("b", 2, false)];
        assert!(complete(at(JourneyStatus::InProgress, 1), &s).is_ok());
        assert!(matches!(
            complete(at(JourneyStatus::Created, 0), &s),
            Err(Refusal::InvalidTransition { .. })
        ));
    }

    #[test]
    fn cancel_works_from_every_open_status() {
        for s in [
            JourneyStatus::Created,
            JourneyStatus::InProgress,
            JourneyStatus::Assigned,
        ] {
            assert!(cancel(s).is_ok());
        }
    }

    #[test]
    fn statuses_follow_the_last_outcome() {
        let h = [
            (0, StepOutcome::Failed),
            (0, StepOutcome::Passed),
            (1, StepOutcome::Skipped),
            (2, StepOutcome::Failed),
        ];
        assert_eq!(
            step_statuses(4, &h, JourneyStatus::InProgress),
            vec![
                StepStatus::Passed,
                StepStatus::Skipped,
                StepStatus::Failed,
                StepStatus::Pending
            ]
        );
    }

    #[test]
    fn a_cancelled_journey_has_no_step_pending_or_failed() {
        let h = [(0, StepOutcome::Passed), (1, StepOutcome::Failed)];
        assert_eq!(
            step_statuses(3, &h, JourneyStatus::Cancelled),
            vec![
                StepStatus::Passed,
                StepStatus::Cancelled,
                StepStatus::Cancelled
            ]
        );
    }

    #[test]
    fn step_validation_names_each_field() {
        let mut bad = steps();
        bad[1].id = "a".into();
        bad[2].order = bad[0].order;
        bad[0].name = " ".into();
        let mut errors = vec![];
        validate_steps(&bad, &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["steps[0].name", "steps[1].id", "steps[2].order"]);
        let mut errors = vec![];
        validate_steps(&[], &mut errors);
        assert_eq!(errors[0].field, "steps");
    }

    #[test]
    fn template_ids_and_transitions() {
        assert!(is_template_id("tmpl_onboarding_sme"));
        assert!(!is_template_id("tmpl_"));
        assert!(!is_template_id("tmpl_A"));
        assert!(!is_template_id("onboarding"));
        assert!(!is_template_id("tmpl_x'--"));
        assert!(template_transition_allowed(
            TemplateStatus::Draft,
            TemplateStatus::Active
        ));
        assert!(template_transition_allowed(
            TemplateStatus::Archived,
            TemplateStatus::Active
        ));
        assert!(!template_transition_allowed(
            TemplateStatus::Active,
            TemplateStatus::Draft
        ));
    }
}
