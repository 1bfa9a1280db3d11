//! The one API error type and its RFC 9457 rendering.
//!
//! Error policy:
//! - Every failure a handler can meet becomes an [`ApiError`] with a stable machine-readable
//!   `code`; the body is `application/problem+json` with `type`, `title`, `status`, `detail`,
//!   `code` and, for validation failures, `errors` naming each offending field.
//! - Storage errors carry no HTTP types: they are converted here, once, through `From`.
//!   Unique violations become 409, foreign-key violations 422, a saturated pool 503.
//! - 5xx bodies say nothing internal; the log line (with the request id) says everything.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending input field of a validation failure.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// Path of the field in the request: `steps[1].type`, or a query parameter name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// URI naming the problem type: `urn:omnirail:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `invalid_transition`.
    pub code: String,
    /// Offending fields, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The journey's status when a transition is refused.
    #[serde(rename = "currentStatus", skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    /// Other problem-specific members (`currentStepId`, `pendingSteps`, ...).
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: Map<String, Value>,
}

/// An API error: status, stable code, human detail and optional extension members.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub extensions: Map<String, Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    /// Adds a problem-specific member to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found"),
        )
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 422 `validation_failed` listing each offending field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        e.errors = errors;
        e
    }

    /// 422 for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The server failed to handle the request; it has been logged",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The body as it is sent.
    pub fn to_problem(&self) -> ProblemDoc {
        let mut extensions = self.extensions.clone();
        let current_status = extensions
            .remove("currentStatus")
            .and_then(|v| v.as_str().map(str::to_owned));
        ProblemDoc {
            type_: format!("urn:omnirail:problem:{}", self.code),
            title: self.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: (!self.errors.is_empty()).then(|| self.errors.clone()),
            current_status,
            extensions,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Storage failures, free of HTTP; converted to [`ApiError`] once, below.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether a unique constraint refused the write (on either database).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => e.into(),
            StoreError::Corrupt(msg) => {
                tracing::error!(error = %msg, "corrupt stored data");
                ApiError::internal()
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => {
                    return ApiError::conflict("already_exists", "The object already exists");
                }
                ErrorKind::ForeignKeyViolation => {
                    return ApiError::unprocessable(
                        "unknown_reference",
                        "The request refers to an object that does not exist",
                    );
                }
                _ if is_busy(db.code().as_deref()) => {
                    let mut err = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_busy",
                        "A conflicting write held the data this request needed; nothing was \
                         changed, retry shortly",
                    );
                    err.retry_after = Some(1);
                    return err;
                }
                _ => {}
            },
            sqlx::Error::PoolTimedOut => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "The server is busy; retry shortly",
                );
                err.retry_after = Some(1);
                return err;
            }
            _ => {}
        }
        tracing::error!(error = %e, "database error");
        ApiError::internal()
    }
}

/// Whether a database error code says a lock could not be had, which a retry can cure:
/// SQLite's `SQLITE_BUSY` and `SQLITE_LOCKED` (with their extended codes), PostgreSQL's
/// serialization failure, deadlock, and lock or statement time-outs.
fn is_busy(code: Option<&str>) -> bool {
    match code {
        Some("40001" | "40P01" | "55P03" | "57014") => true,
        Some(n) => n.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_carries_code_type_and_fields() {
        let err = ApiError::validation(vec![FieldError::new("name", "is required")]);
        let p = err.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.code, "validation_failed");
        assert_eq!(p.type_, "urn:omnirail:problem:validation_failed");
        assert_eq!(p.detail, "name: is required");
        assert_eq!(p.errors.unwrap()[0].field, "name");
    }

    #[test]
    fn lock_conflicts_are_busy_and_other_errors_not() {
        for code in ["5", "6", "517", "773", "40001", "40P01", "55P03"] {
            assert!(is_busy(Some(code)), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01"] {
            assert!(!is_busy(Some(code)), "{code}");
        }
        assert!(!is_busy(None));
    }

    #[test]
    fn current_status_is_a_top_level_member() {
        let err = ApiError::conflict("invalid_transition", "no").with("currentStatus", "completed");
        let v = serde_json::to_value(err.to_problem()).unwrap();
        assert_eq!(v["currentStatus"], "completed");
        assert_eq!(v.as_object().unwrap().len(), 6);
    }
}
