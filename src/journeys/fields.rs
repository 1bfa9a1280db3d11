//! The fields a template's `form` or `kyc_check` step declares for the customer to fill in:
//! part of the template, so checked with it; the onboarding session reads them
//! (`onboarding::model`) to check what a customer submits.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{StepDef, StepType};
use crate::bounded::TextLength;
use crate::error::FieldError;

string_enum!(
    /// What a step field holds, and so how a submitted value is checked.
    FieldType {
        String = "string",
        Number = "number",
        Integer = "integer",
        Boolean = "boolean",
        Date = "date",
        Email = "email",
        Phone = "phone",
        Country = "country",
    }
);

/// One input a `form` or `kyc_check` step asks the customer for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldDef {
    /// The key under which the value is sent in `fields`: 1 to 64 of `[A-Za-z0-9_]`.
    #[schema(example = "firstName")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "First name")]
    pub label: Option<String>,
    /// Default `string`. `date` is `YYYY-MM-DD`; `phone` is E.164; `country` is ISO 3166-1
    /// alpha-2.
    #[serde(rename = "type", default = "string_type")]
    pub kind: FieldType,
    /// Default `true`: the step completes only once every required field has a value.
    #[serde(default = "yes")]
    pub required: bool,
    /// For `string` fields: at most this many characters (default and maximum 1,024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<TextLength>,
    /// For `string` fields: the only values accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn string_type() -> FieldType {
    FieldType::String
}

fn yes() -> bool {
    true
}

/// Most fields a step declares, or a free-form step accepts.
pub const MAX_FIELDS: usize = 50;

/// Field names: 1 to 64 of `[A-Za-z0-9_]`.
pub fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks the fields a template step declares (`at` is the step's path, `steps[2]`).
pub fn check_field_defs(at: &str, step: &StepDef, errors: &mut Vec<FieldError>) {
    if step.fields.is_empty() {
        return;
    }
    if !matches!(step.kind, StepType::Form | StepType::KycCheck) {
        errors.push(FieldError::new(
            format!("{at}.fields"),
            "only form and kyc_check steps declare fields",
        ));
        return;
    }
    if step.fields.len() > MAX_FIELDS {
        errors.push(FieldError::new(
            format!("{at}.fields"),
            format!("must declare at most {MAX_FIELDS} fields"),
        ));
    }
    for (j, f) in step.fields.iter().enumerate() {
        let path = |what: &str| format!("{at}.fields[{j}].{what}");
        if !is_field_name(&f.name) {
            errors.push(FieldError::new(
                path("name"),
                "must be 1 to 64 characters of letters, digits or _",
            ));
        } else if step.fields[..j].iter().any(|g| g.name == f.name) {
            errors.push(FieldError::new(
                path("name"),
                format!("duplicates field `{}`", f.name),
            ));
        }
        if f.label.as_deref().is_some_and(|l| l.chars().count() > 200) {
            errors.push(FieldError::new(
                path("label"),
                "must be at most 200 characters",
            ));
        }
        if f.max_length.is_some() && f.kind != FieldType::String {
            errors.push(FieldError::new(
                path("maxLength"),
                "applies to string fields only",
            ));
        }
        if !f.options.is_empty() && f.kind != FieldType::String {
            errors.push(FieldError::new(
                path("options"),
                "applies to string fields only",
            ));
        }
        if f.options.len() > 200
            || f.options
                .iter()
                .any(|o| o.is_empty() || o.chars().count() > 200)
        {
            errors.push(FieldError::new(
                path("options"),
                "must be at most 200 values of 1 to 200 characters",
            ));
        }
    }
}
