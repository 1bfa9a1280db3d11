//! The HTTP edge shared by every capability: the validated JSON and query extractors, the
//! `{"data": ...}` envelope, pagination, and the problem-details answers for routes and
//! methods that do not exist.

pub mod input;
pub mod rules;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::ParameterIn;

use crate::error::{ApiError, FieldError};
use crate::ids::ID_RULE;

pub use rules::{SLUG_RULE, check_text, is_e164, is_email, is_language_tag, is_slug};

/// Seed 001's single-object envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// Seed 001's list envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

/// Where a page sits in the whole list.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq)]
pub struct Pagination {
    pub page: u32,
    #[serde(rename = "perPage")]
    pub per_page: u32,
    /// Items in the whole list, across pages.
    pub total: i64,
}

/// The highest page number a list takes (the OpenAPI document says so on every list).
pub const MAX_PAGE: u32 = 1_000_000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    /// Parses `page` and `perPage`: not an integer is 400, out of range 422.
    pub fn parse(
        page: Option<&str>,
        per_page: Option<&str>,
        default_per_page: u32,
        max_per_page: u32,
    ) -> Result<Self, ApiError> {
        let page = parse_bounded("page", page, 1, 1, MAX_PAGE)?;
        let per_page = parse_bounded("perPage", per_page, default_per_page, 1, max_per_page)?;
        Ok(Self { page, per_page })
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    /// The 200 answer holding this page's `data` of a list of `total` items.
    pub fn answer<T: Serialize>(&self, data: Vec<T>, total: i64) -> Response {
        json(
            StatusCode::OK,
            &Paginated {
                data,
                pagination: self.with_total(total),
            },
        )
    }

    pub fn with_total(&self, total: i64) -> Pagination {
        Pagination {
            page: self.page,
            per_page: self.per_page,
            total,
        }
    }
}

fn parse_bounded(
    name: &str,
    raw: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    let raw = raw.trim();
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    // Digits too many for any integer are out of range, not "not an integer".
    let too_long = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let n: i64 = raw
        .parse()
        .or_else(|_| match (too_long, raw.starts_with('-')) {
            (true, true) => Ok(i64::MIN),
            (true, false) => Ok(i64::MAX),
            (false, _) => Err(()),
        })
        .map_err(|_| {
            let mut e = ApiError::bad_request(
                "invalid_query_parameter",
                format!("{name} must be an integer"),
            );
            e.errors = vec![FieldError::new(name, "must be an integer")];
            e
        })?;
    if n < i64::from(min) || n > i64::from(max) {
        let mut e = ApiError::unprocessable(
            "invalid_query_parameter",
            format!("{name} must be between {min} and {max}"),
        );
        e.errors = vec![FieldError::new(
            name,
            format!("must be between {min} and {max}"),
        )];
        return Err(e);
    }
    Ok(n as u32)
}

/// Parses an optional enum-valued query parameter; an unknown value is 422 naming it.
pub fn parse_filter<T: DeserializeOwned>(
    name: &str,
    raw: Option<&str>,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map(Some)
        .map_err(|_| {
            let mut e = ApiError::unprocessable(
                "invalid_query_parameter",
                format!("{name} has an unknown value: {raw}"),
            );
            e.errors = vec![FieldError::new(name, "unknown value")];
            e
        })
}

/// Parses an optional comma-separated list query parameter (`a,b,c`): each item with
/// `parse_item`, at most `max` of them, none empty; anything else is 422 naming the parameter.
pub fn parse_list<T>(
    name: &str,
    raw: Option<&str>,
    max: usize,
    parse_item: impl Fn(&str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let items: Vec<&str> = raw.split(',').map(str::trim).collect();
    let refuse = |why: String| {
        let mut e = ApiError::unprocessable("invalid_query_parameter", format!("{name} {why}"));
        e.errors = vec![FieldError::new(name, why)];
        e
    };
    if items.len() > max {
        return Err(refuse(format!("lists at most {max} values")));
    }
    if items.iter().any(|i| i.is_empty()) {
        return Err(refuse("has an empty value".into()));
    }
    items.into_iter().map(parse_item).collect()
}

/// Parses an optional boolean query parameter; anything but `true` or `false` is 422.
pub fn parse_bool(name: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => {
            let mut e = ApiError::unprocessable(
                "invalid_query_parameter",
                format!("{name} must be true or false, not {other}"),
            );
            e.errors = vec![FieldError::new(name, "must be true or false")];
            Err(e)
        }
    }
}

/// A JSON body, deserialized with the path of any offending field.
///
/// - body larger than the limit: 413 `payload_too_large`
/// - a content type other than JSON: 415 `unsupported_media_type`
/// - not JSON: 400 `malformed_json`
/// - JSON of the wrong shape (unknown field, a key given twice, missing field, wrong type,
///   unknown enum value): 422 `validation_failed`, every problem with its path ([`input`]).
///
/// An empty body without a content type reads as `{}`, so actions whose fields are all
/// optional can be called bare.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::bad_request("unreadable_body", "The request body could not be read")
            }
        })?;
        match content_type {
            None if bytes.is_empty() => return parse_json(b"{}").map(ApiJson),
            Some(ct) if is_json(&ct) => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "The body must be JSON, sent with Content-Type: application/json",
                ));
            }
        }
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is larger than the server accepts",
    )
}

fn is_json(ct: &HeaderValue) -> bool {
    let Ok(ct) = ct.to_str() else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes a JSON object strictly ([`input`]), reporting every problem with its path.
///
/// The syntax is checked in full first, so a body with trailing garbage is malformed (400)
/// even when its first value also lacks a field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if nesting_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(
            "json_too_deep",
            format!("The body nests arrays and objects more than {MAX_JSON_DEPTH} deep"),
        ));
    }
    if contains_nul_escape(bytes) {
        return Err(ApiError::invalid_field(
            "body",
            "text must not contain NUL (\\u0000) characters",
        ));
    }
    let malformed = |e: serde_json::Error| {
        ApiError::bad_request(
            "malformed_json",
            format!(
                "The body is not valid JSON: {}",
                strip_position(&e.to_string())
            ),
        )
    };
    let (value, twice) = input::parse(bytes).map_err(malformed)?;
    if !value.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let mut errors: Vec<FieldError> = twice
        .into_iter()
        .map(|path| FieldError::new(path, "given more than once"))
        .collect();
    match input::from_value(value) {
        Ok(read) if errors.is_empty() => Ok(read),
        Ok(_) => Err(ApiError::validation(errors)),
        Err(more) => {
            errors.extend(more);
            Err(ApiError::validation(errors))
        }
    }
}

/// Deepest nesting of arrays and objects a JSON body may have: far beyond any document of the
/// API, and it keeps parsing, storing and rendering a body bounded.
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether a JSON text nests arrays and objects more than `max` deep; brackets inside strings
/// do not count. Runs before parsing, so a hostile body costs one pass over its bytes.
fn nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether a JSON text holds a NUL character, which can only appear escaped (`\u0000`):
/// PostgreSQL cannot store it in text, so it is refused on both databases alike.
fn contains_nul_escape(bytes: &[u8]) -> bool {
    let needle = b"u0000";
    bytes.windows(needle.len()).enumerate().any(|(i, w)| {
        if w != needle {
            return false;
        }
        let backslashes = bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        backslashes % 2 == 1
    })
}

/// Whether a percent-encoded URI part decodes to a NUL character.
fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"%00")
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters; a query string that cannot be read at all is 400 `invalid_query`. (A
/// parameter the operation does not take never gets here: see [`refuse_unknown_query`].)
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(has_encoded_nul) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "The query must not contain NUL characters",
            ));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rej| ApiError::bad_request("invalid_query", rej.body_text()))
    }
}

/// What a query parameter the operation does not take is told.
pub const UNKNOWN_QUERY_PARAMETER: &str = "unknown query parameter";

/// The query parameters each operation takes, as the OpenAPI document (generated from the
/// handlers' own query types) lists them.
#[derive(Debug, Default)]
pub struct QueryParameters(HashMap<String, HashMap<Method, HashSet<String>>>);

impl QueryParameters {
    pub fn of(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut taken: HashMap<String, HashMap<Method, HashSet<String>>> = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|p| match p {
                        RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
                        _ => None,
                    })
                    .collect();
                taken.entry(path.clone()).or_default().insert(method, names);
            }
        }
        Self(taken)
    }
}

/// Refuses a request whose query names a parameter its operation does not take: 422
/// `validation_failed`, one entry per such parameter. A misspelt filter (`statuss=`) must not
/// silently return everything.
pub async fn refuse_unknown_query(
    State(taken): State<Arc<QueryParameters>>,
    req: Request,
    next: Next,
) -> Response {
    let names = req.uri().query().and_then(|query| {
        let path = req.extensions().get::<MatchedPath>()?;
        Some((taken.0.get(path.as_str())?.get(req.method())?, query))
    });
    if let Some((names, query)) = names {
        let mut unknown: Vec<String> = Vec::new();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !names.contains(name.as_ref()) && !unknown.iter().any(|u| u == &name) {
                unknown.push(name.into_owned());
            }
        }
        if !unknown.is_empty() {
            return ApiError::validation(
                unknown
                    .into_iter()
                    .map(|name| FieldError::new(name, UNKNOWN_QUERY_PARAMETER))
                    .collect(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// A path parameter; one that cannot be read (not UTF-8, say) is 400 `invalid_path`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::bad_request(
                "invalid_path",
                "The path must not contain NUL characters",
            ));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| ApiPath(p))
            .map_err(|rej| ApiError::bad_request("invalid_path", rej.body_text()))
    }
}

/// Appends an error if an optional id naming a user or another outside object is not one.
pub fn check_id(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) {
    if value.is_some_and(|v| !crate::ids::is_external_id(v)) {
        errors.push(FieldError::new(field, ID_RULE));
    }
}

/// Appends an error if the person a body must name is missing (no actor token named them
/// either: `actor::Actor::claim` (in `identity`) fills it in from one) or is not an id.
pub fn check_person(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) {
    match value {
        None => errors.push(FieldError::new(
            field,
            "is required: name the person, or send their actor token",
        )),
        Some(_) => check_id(errors, field, value),
    }
}

/// Appends an error if an optional value is not a JSON object.
pub fn check_object(errors: &mut Vec<FieldError>, field: &str, value: Option<&serde_json::Value>) {
    if value.is_some_and(|v| !v.is_object()) {
        errors.push(FieldError::new(field, "must be a JSON object"));
    }
}

/// 422 `validation_failed` listing `errors`, or `Ok` when there are none.
pub fn reject(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The status of a `PUT` that creates or replaces: 201 when it created.
pub fn put_status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// A JSON answer with the given status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON answer in the journey rail's envelope: `{"data": ...}`.
pub fn data<T: Serialize>(status: StatusCode, data: T) -> Response {
    json(status, &Data { data })
}

/// A JSON value the store keeps as text (a context, metadata); `{}` if it cannot be read.
pub fn stored_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// 404 for a path no route matches.
pub async fn route_not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("No route for {} {}", req.method(), req.uri().path()),
    )
}

/// 405 for a path that exists with another method.
pub async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// The API reference page (`/docs`) titled as Omnirail's, not as the Swagger UI it is built
/// with.
pub async fn docs_title(res: Response) -> Response {
    let html = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if !html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::internal().into_response();
    };
    let page = String::from_utf8_lossy(&bytes).replace(
        "<title>Swagger UI</title>",
        "<title>Omnirail API reference</title>",
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        steps: Vec<Step>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Step {
        id: String,
        order: u32,
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(!nesting_exceeds(nested(32).as_bytes(), 32));
        assert!(nesting_exceeds(nested(33).as_bytes(), 32));
        let brackets_in_text = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(!nesting_exceeds(brackets_in_text.as_bytes(), 32));
        let err = parse_json::<serde_json::Value>(nested(33).as_bytes()).unwrap_err();
        assert_eq!(err.code, "json_too_deep");
    }

    #[test]
    fn missing_nested_field_is_named_with_its_path() {
        let err = parse_json::<Body>(br#"{"name":"a","steps":[{"order":1}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.errors[0].field, "steps[0].id");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err =
            parse_json::<Body>(br#"{"name":"a","steps":[{"id":"x","order":"1"}]}"#).unwrap_err();
        assert_eq!(err.errors[0].field, "steps[0].order");
        // In the API's words, not serde's ("invalid type: string, expected u32").
        assert!(
            err.errors[0].message.starts_with("must be a whole number"),
            "{:?}",
            err.errors
        );
    }

    #[test]
    fn syntax_error_and_trailing_garbage_are_malformed() {
        for body in [&b"{\"name\": "[..], b"{} {}", b"{} trailing", b"nope", b""] {
            let err = parse_json::<serde_json::Value>(body).unwrap_err();
            assert_eq!(err.code, "malformed_json");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn nul_characters_are_refused_but_escaped_backslashes_are_not() {
        let err = parse_json::<serde_json::Value>(br#"{"name":"a\u0000b"}"#).unwrap_err();
        assert_eq!(err.errors[0].field, "body");
        assert!(parse_json::<serde_json::Value>(br#"{"name":"a\\u0000b"}"#).is_ok());
        assert!(has_encoded_nul("/x/jrn_%00"));
        assert!(!has_encoded_nul("/x/jrn_%100"));
    }

    #[test]
    fn page_bounds() {
        assert_eq!(
            PageRequest::parse(None, None, 20, 100).unwrap().per_page,
            20
        );
        assert_eq!(
            PageRequest::parse(Some("abc"), None, 20, 100)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        for bad in ["0", "101", "-1"] {
            let err = PageRequest::parse(None, Some(bad), 20, 100).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let p = PageRequest::parse(Some("3"), Some("10"), 20, 100).unwrap();
        assert_eq!((p.offset(), p.limit()), (20, 10));
    }
}
