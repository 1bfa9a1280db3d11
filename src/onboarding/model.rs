//! The rules of onboarding, as plain functions over plain values: which steps the customer
//! fills in, the fields a step asks for and how submitted values are checked, which files
//! are accepted as documents, and the status an onboarding shows.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::{is_e164, is_email};
use crate::bounded::TextLength;
use crate::error::FieldError;
pub use crate::journeys::fields::{
    FieldDef, FieldType, MAX_FIELDS, check_field_defs, is_field_name,
};
use crate::journeys::model::{StepDef, StepType};

/// Longest text value a field accepts.
pub const MAX_TEXT: usize = TextLength::MAX as usize;

/// Whether the customer, through a session token, does this kind of step. The others
/// (`review`, `approval`, `signature`, `custom`) are staff steps, done in the back office.
pub fn is_customer_facing(kind: StepType) -> bool {
    matches!(
        kind,
        StepType::Form | StepType::KycCheck | StepType::DocumentUpload
    )
}

fn field(name: &str, label: &str, kind: FieldType) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: Some(label.into()),
        kind,
        required: true,
        max_length: None,
        options: vec![],
    }
}

/// The fields of a `kyc_check` step that declares none: who the customer is, as an identity
/// check needs it.
pub fn default_kyc_fields() -> Vec<FieldDef> {
    vec![
        field("firstName", "First name", FieldType::String),
        field("lastName", "Last name", FieldType::String),
        field("dateOfBirth", "Date of birth", FieldType::Date),
        field("nationality", "Nationality", FieldType::Country),
        field("idNumber", "Identity document number", FieldType::String),
    ]
}

/// The fields a step asks for: those it declares; for a `kyc_check` step that declares none,
/// [`default_kyc_fields`]. An empty answer means a free-form step: any fields are accepted.
pub fn fields_of(step: &StepDef) -> Cow<'_, [FieldDef]> {
    if step.fields.is_empty() && step.kind == StepType::KycCheck {
        Cow::Owned(default_kyc_fields())
    } else {
        Cow::Borrowed(&step.fields)
    }
}

/// Checks the values a customer submits for a step whose fields are `defs`. Every bad field
/// is reported, as `fields.<name>`; nothing is partly accepted.
pub fn check_data(defs: &[FieldDef], submitted: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if submitted.is_empty() {
        errors.push(FieldError::new("fields", "must contain at least one field"));
    }
    if defs.is_empty() {
        // A free-form step: bounded scalar values under well-formed names.
        if submitted.len() > MAX_FIELDS {
            errors.push(FieldError::new(
                "fields",
                format!("must contain at most {MAX_FIELDS} fields"),
            ));
        }
        for (name, value) in submitted {
            let at = format!("fields.{name}");
            if !is_field_name(name) {
                errors.push(FieldError::new(
                    at,
                    "names must be 1 to 64 characters of letters, digits or _",
                ));
            } else if let Some(message) = free_form_problem(value) {
                errors.push(FieldError::new(at, message));
            }
        }
        return errors;
    }
    for (name, value) in submitted {
        let at = format!("fields.{name}");
        match defs.iter().find(|d| &d.name == name) {
            None => errors.push(FieldError::new(at, "is not a field of this step")),
            Some(def) => {
                if let Some(message) = value_problem(def, value) {
                    errors.push(FieldError::new(at, message));
                }
            }
        }
    }
    errors
}

fn free_form_problem(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            Some(format!("must be at most {MAX_TEXT} characters"))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => None,
        _ => Some("must be a string, a number or a boolean".into()),
    }
}

/// What is wrong with `value` for the field `def`, if anything.
pub fn value_problem(def: &FieldDef, value: &Value) -> Option<String> {
    let text = value.as_str();
    let problem = match def.kind {
        FieldType::String => match text {
            None => "must be a string",
            Some(s) if s.trim().is_empty() => "must not be empty",
            Some(s) => {
                let max = def
                    .max_length
                    .and_then(|m| usize::try_from(m.get()).ok())
                    .unwrap_or(MAX_TEXT);
                if s.chars().count() > max {
                    return Some(format!("must be at most {max} characters"));
                }
                if !def.options.is_empty() && !def.options.iter().any(|o| o == s) {
                    return Some(format!("must be one of: {}", def.options.join(", ")));
                }
                return None;
            }
        },
        FieldType::Number if value.as_f64().is_some() => return None,
        FieldType::Number => "must be a number",
        FieldType::Integer if value.is_i64() || value.is_u64() => return None,
        FieldType::Integer => "must be an integer",
        FieldType::Boolean if value.is_boolean() => return None,
        FieldType::Boolean => "must be true or false",
        FieldType::Date => match text {
            Some(s) if is_date(s) => return None,
            _ => "must be a date, YYYY-MM-DD",
        },
        FieldType::Email => match text {
            Some(s) if is_email(s) => return None,
            _ => "must be an email address",
        },
        FieldType::Phone => match text {
            Some(s) if is_e164(s) => return None,
            _ => "must be a phone number in E.164 form, e.g. +966501234567",
        },
        FieldType::Country => match text {
            Some(s) if is_country(s) => return None,
            _ => "must be an ISO 3166-1 alpha-2 country code, e.g. SA",
        },
    };
    Some(problem.into())
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// An ISO 3166-1 alpha-2 code, in capitals: `SA`, `AE`.
pub fn is_country(s: &str) -> bool {
    s.len() == 2
        && s.bytes().all(|b| b.is_ascii_uppercase())
        && s.parse::<iso_currency::Country>()
            .is_ok_and(|c| c != iso_currency::Country::Unspecified)
}

/// The required fields of `defs` that `data` has no value for. A free-form step (no `defs`)
/// misses nothing once it has any value.
pub fn missing_fields(defs: &[FieldDef], data: &Map<String, Value>) -> Vec<String> {
    if defs.is_empty() {
        return if data.is_empty() {
            vec!["fields".into()]
        } else {
            vec![]
        };
    }
    defs.iter()
        .filter(|d| d.required && !data.contains_key(&d.name))
        .map(|d| d.name.clone())
        .collect()
}

/// The document types a step still waits for, given the types received. A step that names
/// no `documentsRequired` takes a document of any type and waits for one (`any`).
pub fn missing_documents<'a>(step: &'a StepDef, received: &[&str]) -> Vec<&'a str> {
    if step.documents_required.is_empty() {
        return if received.is_empty() {
            vec!["any"]
        } else {
            vec![]
        };
    }
    step.documents_required
        .iter()
        .map(String::as_str)
        .filter(|t| !received.contains(t))
        .collect()
}

/// The kinds of file a document may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Jpeg,
    Png,
}

impl FileKind {
    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
        }
    }

    /// What the file's first bytes show it to be, if it is one of the accepted kinds.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match infer::get(bytes)?.mime_type() {
            "application/pdf" => Some(FileKind::Pdf),
            "image/jpeg" => Some(FileKind::Jpeg),
            "image/png" => Some(FileKind::Png),
            _ => None,
        }
    }

    /// What the sender says the file is, by its part's content type or, failing that, by the
    /// extension of its name. `None` when neither names one of the accepted kinds (no name,
    /// `application/octet-stream`, ...).
    pub fn claimed(content_type: Option<&str>, file_name: Option<&str>) -> Option<Self> {
        let by_type = content_type.and_then(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            match essence.to_ascii_lowercase().as_str() {
                "application/pdf" => Some(FileKind::Pdf),
                "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(FileKind::Jpeg),
                "image/png" => Some(FileKind::Png),
                _ => None,
            }
        });
        by_type.or_else(|| {
            let ext = file_name?.rsplit_once('.')?.1.to_ascii_lowercase();
            match ext.as_str() {
                "pdf" => Some(FileKind::Pdf),
                "jpg" | "jpeg" => Some(FileKind::Jpeg),
                "png" => Some(FileKind::Png),
                _ => None,
            }
        })
    }
}

string_enum!(
    /// Where an onboarding stands. `started` until the customer sends anything, then
    /// `in_progress`, `finished` once the customer is done; `completed` or `cancelled` when
    /// its journey is; `expired` when its time ran out before the customer finished.
    OnboardingStatus {
        Started = "started",
        InProgress = "in_progress",
        Finished = "finished",
        Completed = "completed",
        Cancelled = "cancelled",
        Expired = "expired",
    }
);

/// The status an onboarding shows, from what is stored (`started`, `in_progress` or
/// `finished`), its journey's status and its expiry.
pub fn shown_status(
    stored: &str,
    journey_status: &str,
    expires_at: i64,
    now: i64,
) -> OnboardingStatus {
    match journey_status {
        "completed" => return OnboardingStatus::Completed,
        "cancelled" => return OnboardingStatus::Cancelled,
        _ => {}
    }
    match OnboardingStatus::parse(stored) {
        Some(OnboardingStatus::Finished) => OnboardingStatus::Finished,
        _ if expires_at <= now => OnboardingStatus::Expired,
        Some(s) => s,
        None => OnboardingStatus::Started,
    }
}

/// Checks `customFields`: at most 50 entries, keys of 1 to 64 characters, string values of
/// at most 1,024 characters.
pub fn check_custom_fields(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    if fields.len() > MAX_FIELDS {
        errors.push(FieldError::new(
            "customFields",
            format!("must have at most {MAX_FIELDS} entries"),
        ));
    }
    for (key, value) in fields {
        let at = format!("customFields.{key}");
        if key.is_empty() || key.chars().count() > 64 {
            errors.push(FieldError::new(at, "keys must be 1 to 64 characters"));
        } else if let Some(message) = free_form_problem(value) {
            errors.push(FieldError::new(at, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(name: &str, kind: FieldType) -> FieldDef {
        FieldDef {
            name: name.into(),
            label: None,
            kind,
            required: true,
            max_length: None,
            options: vec![],
        }
    }

    fn step(kind: StepType, fields: Vec<FieldDef>) -> StepDef {
        serde_json::from_value::<StepDef>(json!({
            "id": "s", "name": "S", "type": kind.as_str(), "order": 1,
        }))
        .map(|mut s| {
            s.fields = fields;
            s
        })
        .unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_checked_by_type() {
        let ok = |kind, v: Value| value_problem(&def("f", kind), &v).is_none();
        assert!(ok(FieldType::String, json!("Layla")));
        assert!(!ok(FieldType::String, json!("  ")));
        assert!(!ok(FieldType::String, json!(5)));
        assert!(!ok(FieldType::String, json!("x".repeat(MAX_TEXT + 1))));
        assert!(ok(FieldType::Number, json!(1.5)));
        assert!(!ok(FieldType::Number, json!("1.5")));
        assert!(ok(FieldType::Integer, json!(-3)));
        assert!(!ok(FieldType::Integer, json!(1.5)));
        assert!(ok(FieldType::Boolean, json!(false)));
        assert!(!ok(FieldType::Boolean, json!("true")));
        assert!(ok(FieldType::Date, json!("1990-02-28")));
        assert!(!ok(FieldType::Date, json!("1990-02-30")));
        assert!(!ok(FieldType::Date, json!("1990-2-3")));
        assert!(ok(FieldType::Email, json!("layla@bank.example")));
        assert!(!ok(FieldType::Email, json!("layla")));
        assert!(ok(FieldType::Phone, json!("+966501234567")));
        assert!(!ok(FieldType::Phone, json!("0501234567")));
        assert!(ok(FieldType::Country, json!("SA")));
        assert!(!ok(FieldType::Country, json!("sa")));
        assert!(!ok(FieldType::Country, json!("XX")));
        assert!(!ok(FieldType::Country, json!("")));
    }

    #[test]
    fn options_and_max_length_bound_strings() {
        let mut d = def("f", FieldType::String);
        d.options = vec!["salaried".into(), "self_employed".into()];
        assert!(value_problem(&d, &json!("salaried")).is_none());
        assert!(value_problem(&d, &json!("student")).is_some());
        let mut d = def("f", FieldType::String);
        d.max_length = TextLength::new(3);
        assert!(value_problem(&d, &json!("abc")).is_none());
        assert!(value_problem(&d, &json!("abcd")).is_some());
    }

    #[test]
    fn every_bad_field_is_reported_and_unknown_ones_too() {
        let defs = vec![
            def("firstName", FieldType::String),
            def("dob", FieldType::Date),
        ];
        let errors = check_data(
            &defs,
            &map(json!({"firstName": 1, "dob": "x", "extra": "y"})),
        );
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["fields.dob", "fields.extra", "fields.firstName"]);
        assert!(check_data(&defs, &map(json!({"firstName": "Layla"}))).is_empty());
        assert_eq!(check_data(&defs, &Map::new())[0].field, "fields");
    }

    #[test]
    fn a_step_completes_when_every_required_field_has_a_value() {
        let mut optional = def("middleName", FieldType::String);
        optional.required = false;
        let defs = vec![def("firstName", FieldType::String), optional];
        assert_eq!(missing_fields(&defs, &Map::new()), ["firstName"]);
        assert!(missing_fields(&defs, &map(json!({"firstName": "L"}))).is_empty());
        // Free-form: any value completes it.
        assert_eq!(missing_fields(&[], &Map::new()), ["fields"]);
        assert!(missing_fields(&[], &map(json!({"a": 1}))).is_empty());
    }

    #[test]
    fn free_form_steps_take_bounded_scalars() {
        assert!(check_data(&[], &map(json!({"income": 5000, "note": "ok"}))).is_empty());
        let errors = check_data(&[], &map(json!({"bad name": 1, "nested": {"a": 1}})));
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn kyc_steps_without_fields_ask_the_default_identity_fields() {
        let kyc = step(StepType::KycCheck, vec![]);
        assert_eq!(fields_of(&kyc).len(), 5);
        let form = step(StepType::Form, vec![]);
        assert!(fields_of(&form).is_empty());
        let declared = step(StepType::KycCheck, vec![def("x", FieldType::String)]);
        assert_eq!(fields_of(&declared).len(), 1);
    }

    #[test]
    fn only_form_and_kyc_steps_declare_fields() {
        let mut errors = vec![];
        check_field_defs(
            "steps[0]",
            &step(StepType::Review, vec![def("x", FieldType::String)]),
            &mut errors,
        );
        assert_eq!(errors[0].field, "steps[0].fields");
        let mut errors = vec![];
        let mut bad = def("x", FieldType::Number);
        bad.max_length = TextLength::new(5);
        let dup = def("x", FieldType::String);
        check_field_defs(
            "steps[0]",
            &step(StepType::Form, vec![bad, dup]),
            &mut errors,
        );
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["steps[0].fields[0].maxLength", "steps[0].fields[1].name"]
        );
    }

    #[test]
    fn customer_facing_steps() {
        assert!(is_customer_facing(StepType::Form));
        assert!(is_customer_facing(StepType::KycCheck));
        assert!(is_customer_facing(StepType::DocumentUpload));
        assert!(!is_customer_facing(StepType::Review));
        assert!(!is_customer_facing(StepType::Approval));
    }

    #[test]
    fn files_are_known_by_content_and_claims_by_type_or_name() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D,
        ];
        assert_eq!(FileKind::sniff(&png), Some(FileKind::Png));
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n%\xe2\xe3"), Some(FileKind::Pdf));
        assert_eq!(
            FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(FileKind::Jpeg)
        );
        assert_eq!(FileKind::sniff(b"GIF89a......"), None);
        assert_eq!(FileKind::sniff(b"hello"), None);
        assert_eq!(
            FileKind::claimed(Some("application/pdf"), Some("x.png")),
            Some(FileKind::Pdf)
        );
        assert_eq!(
            FileKind::claimed(Some("application/octet-stream"), Some("x.PDF")),
            Some(FileKind::Pdf)
        );
        assert_eq!(FileKind::claimed(None, Some("scan")), None);
    }

    #[test]
    fn status_follows_journey_then_finish_then_expiry() {
        use OnboardingStatus::*;
        assert_eq!(
            shown_status("in_progress", "in_progress", 10, 5),
            InProgress
        );
        assert_eq!(shown_status("in_progress", "in_progress", 10, 10), Expired);
        assert_eq!(shown_status("finished", "in_progress", 10, 20), Finished);
        assert_eq!(shown_status("finished", "completed", 10, 20), Completed);
        assert_eq!(shown_status("started", "cancelled", 10, 5), Cancelled);
    }

    #[test]
    fn custom_fields_are_bounded() {
        let mut errors = vec![];
        check_custom_fields(&map(json!({"segment": "retail", "score": 7})), &mut errors);
        assert!(errors.is_empty());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        check_custom_fields(&many, &mut errors);
        assert_eq!(errors.len(), 1);
        let mut errors = vec![];
        check_custom_fields(
            &map(json!({ "k".repeat(65): "v", "big": "x".repeat(1025) })),
            &mut errors,
        );
        assert_eq!(errors.len(), 2);
    }
}
