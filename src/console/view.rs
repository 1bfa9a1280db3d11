//! How the console's pages are drawn: its templates (inside the binary, every value escaped
//! as HTML), its stylesheet and script, and the page a refusal is shown on.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, StoreError};

/// A refusal as the console shows it: the API's status, `code` and message, and the fields it
/// named.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub errors: Vec<(String, String)>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn internal() -> Self {
        Self::from_api_error(ApiError::internal())
    }

    pub fn from_store(e: StoreError) -> Self {
        Self::from_api_error(e.into())
    }

    pub fn from_api_error(e: ApiError) -> Self {
        Self {
            status: e.status,
            code: e.code.to_owned(),
            detail: e.detail,
            errors: e.errors.into_iter().map(|f| (f.field, f.message)).collect(),
        }
    }

    /// The problem document the API answered with `status`.
    pub fn from_api(status: StatusCode, doc: &Value) -> Self {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default();
        Self {
            status,
            code: text("code").to_owned(),
            detail: text("detail").to_owned(),
            errors: doc
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| {
                            let t = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
                            (t("field").to_owned(), t("message").to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every template is HTML and every value is escaped as such: a customer named
        // `<script>` is shown as text.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        macro_rules! template {
            ($($name:literal),+) => {
                $(env
                    .add_template($name, include_str!(concat!("templates/", $name)))
                    .expect(concat!("the console's template ", $name, " parses"));)+
            };
        }
        template!(
            "layout.html",
            "sign_in.html",
            "failure.html",
            "work.html",
            "journey.html",
            "approvals.html",
            "approval.html",
            "customer.html",
            "customer_search.html",
            "delegations.html",
            "admin.html",
            "endpoint.html",
            "message.html",
            "macros.html"
        );
        env.add_filter("when", when);
        env.add_filter("money", money);
        env.add_filter("pretty", pretty);
        env
    })
}

/// `2026-12-04T13:53:12.406Z` as `2026-12-04 13:53 UTC`.
fn when(value: Option<String>) -> String {
    match value {
        Some(v) if v.len() >= 16 && v.as_bytes().get(10) == Some(&b'T') => {
            format!("{} {} UTC", &v[..10], &v[11..16])
        }
        Some(v) => v,
        None => "—".to_owned(),
    }
}

/// `{"amount": 2000000, "currency": "SAR"}` as `2000000 SAR`.
fn money(value: minijinja::Value) -> String {
    let amount = value
        .get_attr("amount")
        .ok()
        .filter(|a| !a.is_undefined() && !a.is_none());
    let currency = value
        .get_attr("currency")
        .ok()
        .filter(|c| !c.is_undefined());
    match (amount, currency) {
        (Some(a), Some(c)) => format!("{a} {c}"),
        _ => "—".to_owned(),
    }
}

/// A JSON value, indented.
fn pretty(value: minijinja::Value) -> String {
    serde_json::to_value(&value)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

/// A JSON value as the templates read it. Numbers stay exact: an integer is an integer, any
/// other number (an amount with decimals) its own digits as text, never a rounded float
/// (`serde_json` keeps numbers as written, which minijinja's serde bridge would not read).
fn template_value(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => minijinja::Value::from(i),
            (None, Some(u)) => minijinja::Value::from(u),
            _ => minijinja::Value::from(n.to_string()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(a) => a.iter().map(template_value).collect(),
        Value::Object(o) => {
            minijinja::Value::from_pairs(o.iter().map(|(k, v)| (k.as_str(), template_value(v))))
        }
    }
}

/// Draws `template` with `context`, answered with `status`.
pub fn page(status: StatusCode, template: &str, context: impl Serialize) -> Response {
    let context = serde_json::to_value(&context).unwrap_or_default();
    let drawn = environment()
        .get_template(template)
        .and_then(|t| t.render(template_value(&context)));
    match drawn {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page could not be drawn.</p>"),
            )
                .into_response()
        }
    }
}

/// The page a refusal is shown on, with the refusal's own status.
pub fn failure(p: &Problem) -> Response {
    page(
        p.status,
        "failure.html",
        serde_json::json!({ "problem": p, "title": "Refused" }),
    )
}

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_parses_and_every_value_is_escaped() {
        let env = environment();
        for (name, _) in env.templates() {
            env.get_template(name).expect(name);
        }
        let res = page(
            StatusCode::OK,
            "failure.html",
            json!({ "title": "<b>", "problem": { "code": "x", "detail": "<script>", "errors": [] } }),
        );
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[test]
    fn numbers_stay_exact_and_times_read_as_utc() {
        let v: Value = serde_json::from_str(r#"{"a": 2000000.55, "b": 3}"#).unwrap();
        let t = template_value(&v);
        assert_eq!(t.get_attr("a").unwrap().to_string(), "2000000.55");
        assert_eq!(t.get_attr("b").unwrap().as_i64(), Some(3));
        assert_eq!(
            when(Some("2026-12-04T13:53:12.406Z".into())),
            "2026-12-04 13:53 UTC"
        );
        assert_eq!(when(None), "—");
    }
}
