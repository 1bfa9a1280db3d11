//! Notification templates: per-language, per-channel content rendered with `minijinja`, the
//! built-in templates for what Omnirail itself notifies about, and their routes.
//!
//! Rendering is strict: a variable the template uses and `templateData` lacks is an error
//! naming it, never an empty gap in a sent message. Every channel of a notification is
//! rendered when it is created, so a bad template or missing data is a 422 to the caller, and
//! what the worker sends later is exactly what was rendered then. HTML bodies are
//! auto-escaped. Tenant templates run with a fuel limit, so a template cannot loop forever.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::response::Response;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::NotifyChannel;
use super::store::{self, TemplateRow};
use crate::AppState;
use crate::api::is_language_tag;
use crate::api::{ApiJson, ApiPath, Data, data, put_status, reject};
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, FieldError, ProblemDoc, StoreError};

use crate::time::to_rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(put_template, get_template))
}

/// Longest text of one template part, in characters.
const MAX_PART_CHARS: usize = 20_000;
/// Work one rendering may do (minijinja fuel): far above any real message.
const FUEL: u64 = 200_000;

/// An email's parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailContent {
    #[schema(example = "Action needed: {{ stepName }}")]
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An HTML alternative; values put into it are HTML-escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// An SMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsContent {
    pub text: String,
}

/// A push or in-app message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TitleBody {
    pub title: String,
    pub body: String,
}

/// One language's content, by channel. A channel without content cannot be sent with this
/// template in this language (nor, through the fallback, in the default language).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<TitleBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<TitleBody>,
}

impl ChannelContent {
    /// Each part of `channel`'s content as `(name, source)`; empty if there is none.
    fn parts(&self, channel: NotifyChannel) -> Vec<(&'static str, &str)> {
        match channel {
            NotifyChannel::Email => self.email.as_ref().map_or_else(Vec::new, |e| {
                let mut v = vec![("subject", e.subject.as_str()), ("text", e.text.as_str())];
                if let Some(html) = &e.html {
                    v.push(("html", html.as_str()));
                }
                v
            }),
            NotifyChannel::Sms => self
                .sms
                .as_ref()
                .map_or_else(Vec::new, |s| vec![("text", s.text.as_str())]),
            NotifyChannel::Push => self.push.as_ref().map_or_else(Vec::new, title_body),
            NotifyChannel::InApp => self.in_app.as_ref().map_or_else(Vec::new, title_body),
        }
    }

    pub fn has(&self, channel: NotifyChannel) -> bool {
        !self.parts(channel).is_empty()
    }
}

fn title_body(t: &TitleBody) -> Vec<(&'static str, &str)> {
    vec![("title", t.title.as_str()), ("body", t.body.as_str())]
}

/// Body of `PUT /notification-templates/{code}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutTemplate {
    #[schema(example = "Step required")]
    pub name: Option<String>,
    /// A BCP 47 tag that `content` has: the fallback language.
    #[schema(example = "en")]
    pub default_language: String,
    /// By BCP 47 language tag.
    pub content: BTreeMap<String, ChannelContent>,
}

/// A notification template.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NotificationTemplateView)]
pub struct TemplateView {
    #[schema(example = "JOURNEY_STEP_REQUIRED")]
    pub code: String,
    pub name: Option<String>,
    pub default_language: String,
    pub content: BTreeMap<String, ChannelContent>,
    /// `builtin` (Omnirail's own, until the tenant puts its own) or `tenant`.
    #[schema(example = "tenant")]
    pub source: &'static str,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A template as rendering needs it.
#[derive(Debug, Clone)]
pub struct Template {
    pub code: String,
    pub default_language: String,
    pub content: BTreeMap<String, ChannelContent>,
}

impl Template {
    fn from_row(row: &TemplateRow) -> Option<Self> {
        Some(Self {
            code: row.code.clone(),
            default_language: row.default_language.clone(),
            content: serde_json::from_str(&row.content).ok()?,
        })
    }

    /// The language to render for a recipient who prefers `preferred`.
    pub fn language(&self, preferred: Option<&str>) -> String {
        let available: Vec<&str> = self.content.keys().map(String::as_str).collect();
        super::model::pick_language(preferred, &available, &self.default_language).to_owned()
    }

    /// `channel`'s content in `language`, else in the default language.
    fn content_for(&self, language: &str, channel: NotifyChannel) -> Option<&ChannelContent> {
        [language, self.default_language.as_str()]
            .into_iter()
            .filter_map(|l| self.content.get(l))
            .find(|c| c.has(channel))
    }
}

/// A `code`: upper-case letters, digits and `_`, starting with a letter, at most 64.
pub fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

pub const CODE_RULE: &str =
    "must be 1 to 64 upper-case letters, digits or _, starting with a letter";

/// Why a notification cannot be rendered.
#[derive(Debug)]
pub enum RenderError {
    /// `templateData` lacks these variables (sorted).
    Missing(Vec<String>),
    /// The template has no content for this channel in the language or the default.
    NoContent(NotifyChannel),
    /// Anything else the template engine refused, with where.
    Failed(String),
}

impl RenderError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "template_variable_missing",
            Self::NoContent(_) => "template_channel_missing",
            Self::Failed(_) => "template_render_failed",
        }
    }

    pub fn detail(&self, code: &str) -> String {
        match self {
            Self::Missing(names) => format!(
                "Template {code} needs templateData.{} and it was not given",
                names.join(", templateData.")
            ),
            Self::NoContent(channel) => format!(
                "Template {code} has no {} content in the recipient's language or its default",
                channel.as_str()
            ),
            Self::Failed(why) => format!("Template {code} could not be rendered: {why}"),
        }
    }

    pub fn into_api(self, code: &str) -> ApiError {
        let detail = self.detail(code);
        let mut e = ApiError::unprocessable(self.code(), detail);
        match self {
            Self::Missing(names) => {
                e.errors = names
                    .iter()
                    .map(|n| {
                        FieldError::new(format!("templateData.{n}"), "is used by the template")
                    })
                    .collect();
            }
            Self::NoContent(channel) => {
                e = e.with("channel", channel.as_str());
            }
            Self::Failed(_) => {}
        }
        e
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    // `html` parts are escaped, whatever their name would say.
    env.set_auto_escape_callback(|name| {
        if name.ends_with("html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

/// Renders `channel` of `template` in `language` with `data`: the same shape as the template's
/// content for that channel (an `EmailContent`, ...), as JSON.
pub fn render(
    template: &Template,
    language: &str,
    channel: NotifyChannel,
    data: &Value,
) -> Result<Value, RenderError> {
    let content = template
        .content_for(language, channel)
        .ok_or(RenderError::NoContent(channel))?;
    let env = environment();
    let data = &in_both_cases(data);
    let ctx = minijinja::Value::from(minijinja::value::Serde(data));
    let mut out = serde_json::Map::new();
    for (part, source) in content.parts(channel) {
        let compiled = env
            .template_from_named_str(part, source)
            .map_err(|e| RenderError::Failed(describe(&e, part)))?;
        match compiled.render(&ctx) {
            Ok(text) => {
                out.insert(part.to_owned(), Value::String(text));
            }
            Err(e) if e.kind() == ErrorKind::UndefinedError => {
                let missing = needed(&compiled, data);
                // A top-level variable missing is named; a missing attribute of one that is
                // there is described with its place.
                if missing.is_empty() {
                    return Err(RenderError::Failed(describe(&e, part)));
                }
                return Err(RenderError::Missing(missing));
            }
            Err(e) => return Err(RenderError::Failed(describe(&e, part))),
        }
    }
    Ok(Value::Object(out))
}

/// `data` with each object key also under its other spelling, camelCase or snake_case
/// (`step_name` and `stepName`), at every depth, unless a key of that spelling is given too: a
/// template reads `{{ stepName }}` whichever way a client's language writes its keys (seed 001's
/// Python example sends `template_data={"step_name": ...}`).
pub fn in_both_cases(data: &Value) -> Value {
    match data {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                out.insert(key.clone(), in_both_cases(value));
            }
            for (key, value) in map {
                for other in [camel_case(key), snake_case(key)] {
                    if !map.contains_key(&other) {
                        out.entry(other).or_insert_with(|| in_both_cases(value));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(in_both_cases).collect()),
        other => other.clone(),
    }
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for (i, c) in key.chars().enumerate() {
        if c == '_' && i > 0 {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The variables `template` uses, `data` lacks, and rendering cannot do without: each absent
/// one is tried alone, with the others given, since a template may test whether a variable is
/// defined (`{% if dueDate is defined %}`) and do without it.
fn needed(template: &minijinja::Template<'_, '_>, data: &Value) -> Vec<String> {
    let given = data.as_object().cloned().unwrap_or_default();
    let absent: BTreeSet<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !given.contains_key(v))
        .collect();
    absent
        .iter()
        .filter(|v| {
            let mut trial = given.clone();
            for other in absent.iter().filter(|o| o != v) {
                trial.insert(other.clone(), Value::String(String::new()));
            }
            let ctx = minijinja::Value::from(minijinja::value::Serde(Value::Object(trial)));
            template
                .render(ctx)
                .is_err_and(|e| e.kind() == ErrorKind::UndefinedError)
        })
        .cloned()
        .collect()
}

fn describe(e: &minijinja::Error, part: &str) -> String {
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(line) => format!("{what} (in {part}, line {line})"),
        None => format!("{what} (in {part})"),
    }
}

/// Checks a template body: language tags, the default language present, every part
/// non-empty, within size, and valid template syntax.
fn check(body: &PutTemplate) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(name) = &body.name {
        crate::api::check_text(&mut errors, "name", name, 200, false);
    }
    if !body.content.contains_key(&body.default_language) {
        errors.push(FieldError::new(
            "defaultLanguage",
            "must be one of the languages in content",
        ));
    }
    if body.content.is_empty() {
        errors.push(FieldError::new(
            "content",
            "must have at least one language",
        ));
    }
    if body.content.len() > 50 {
        errors.push(FieldError::new("content", "must have at most 50 languages"));
    }
    let env = environment();
    for (language, content) in &body.content {
        if !is_language_tag(language) {
            errors.push(FieldError::new(
                format!("content.{language}"),
                "must be keyed by a BCP 47 language tag",
            ));
        }
        if NotifyChannel::ALL.iter().all(|c| !content.has(*c)) {
            errors.push(FieldError::new(
                format!("content.{language}"),
                "must have content for at least one channel",
            ));
        }
        for channel in NotifyChannel::ALL {
            for (part, source) in content.parts(channel) {
                let field = format!("content.{language}.{}.{part}", channel.as_str());
                if source.trim().is_empty() {
                    errors.push(FieldError::new(field, "must not be empty"));
                } else if source.chars().count() > MAX_PART_CHARS {
                    errors.push(FieldError::new(
                        field,
                        format!("must be at most {MAX_PART_CHARS} characters"),
                    ));
                } else if let Err(e) = env.template_from_named_str(part, source) {
                    errors.push(FieldError::new(field, describe(&e, part)));
                }
            }
        }
    }
    errors
}

/// The template `code` as the tenant sees it: its own, else Omnirail's built-in.
pub async fn find(
    conn: &mut crate::store::Conn,
    tenant: &str,
    code: &str,
) -> Result<Option<Template>, StoreError> {
    if let Some(row) = store::get_template(conn, tenant, code).await? {
        return Template::from_row(&row).map(Some).ok_or_else(|| {
            StoreError::Corrupt(format!("notification template {code} cannot be read"))
        });
    }
    Ok(builtin(code))
}

/// The built-in templates, in English: what Omnirail's default notification rules send.
pub const BUILTIN_CODES: [&str; 6] = [
    "JOURNEY_STEP_REQUIRED",
    "JOURNEY_ASSIGNED",
    "JOURNEY_ESCALATED",
    "APPROVAL_REQUESTED",
    "APPROVAL_REMINDER",
    "APPROVAL_DECIDED",
];

/// A built-in template by code.
pub fn builtin(code: &str) -> Option<Template> {
    let (subject, body): (&str, &str) = match code {
        "JOURNEY_STEP_REQUIRED" => (
            "Action needed: {{ stepName }}",
            "{% if journeyName is defined %}Your {{ journeyName }} needs {{ stepName }}\
             {% else %}{{ stepName }} is needed{% endif %}\
             {% if dueDate is defined %} by {{ dueDate }}{% endif %}.",
        ),
        "JOURNEY_ASSIGNED" => (
            "Journey {{ journeyId }} assigned to you",
            "Journey {{ journeyId }} has been assigned to you\
             {% if reason is defined and reason %}: {{ reason }}{% endif %}.",
        ),
        "APPROVAL_REQUESTED" => (
            "Approval requested: {{ approvalType }}",
            "Your decision is requested on {{ approvalType }} {{ approvalId }} \
             for {{ entityType }} {{ entityId }}.",
        ),
        "JOURNEY_ESCALATED" => ("Escalated: journey {{ journeyId }}", "{{ summary }}."),
        "APPROVAL_REMINDER" => (
            "Reminder: approval {{ approvalId }} expires {{ expiresAt }}",
            "Your decision on {{ approvalType }} {{ approvalId }} for {{ entityType }} \
             {{ entityId }} is still needed; the request expires at {{ expiresAt }}.",
        ),
        "APPROVAL_DECIDED" => (
            "Approval {{ status }}: {{ approvalType }}",
            "{{ approvalType }} {{ approvalId }} for {{ entityType }} {{ entityId }} \
             was {{ status }}.",
        ),
        _ => return None,
    };
    let title_body = TitleBody {
        title: subject.to_owned(),
        body: body.to_owned(),
    };
    let content = ChannelContent {
        email: Some(EmailContent {
            subject: subject.to_owned(),
            text: body.to_owned(),
            html: Some(format!("<p>{body}</p>")),
        }),
        sms: Some(SmsContent {
            text: body.to_owned(),
        }),
        push: Some(title_body.clone()),
        in_app: Some(title_body),
    };
    Some(Template {
        code: code.to_owned(),
        default_language: "en".to_owned(),
        content: BTreeMap::from([("en".to_owned(), content)]),
    })
}

fn builtin_view(t: Template) -> TemplateView {
    TemplateView {
        code: t.code,
        name: None,
        default_language: t.default_language,
        content: t.content,
        source: "builtin",
        created_at: None,
        updated_at: None,
    }
}

fn view(row: TemplateRow) -> ApiResult<TemplateView> {
    Ok(TemplateView {
        content: serde_json::from_str(&row.content).map_err(|_| ApiError::internal())?,
        code: row.code,
        name: row.name,
        default_language: row.default_language,
        source: "tenant",
        created_at: Some(to_rfc3339(row.created_at)),
        updated_at: Some(to_rfc3339(row.updated_at)),
    })
}

fn check_code(code: &str) -> ApiResult<()> {
    if is_code(code) {
        Ok(())
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            "code", CODE_RULE,
        )]))
    }
}

/// Create or replace a notification template.
///
/// A tenant's template with a built-in's code replaces the built-in for that tenant.
#[utoipa::path(
    put, path = "/notification-templates/{code}", operation_id = "omni.notificationTemplates.put", tag = "Notifications",
    params(("code" = String, Path, description = "Template code, e.g. `JOURNEY_STEP_REQUIRED`")),
    request_body = PutTemplate,
    responses(
        (status = 200, description = "Replaced", body = Data<TemplateView>),
        (status = 201, description = "Created", body = Data<TemplateView>),
        (status = 422, description = "A bad code, language tag, empty or over-long part, or template syntax error, each with its field (`validation_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_template(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<PutTemplate>,
) -> ApiResult<Response> {
    check_code(&code)?;
    reject(check(&body))?;
    let now = app.db.now_ms();
    let row = TemplateRow {
        code,
        name: body.name,
        default_language: body.default_language,
        content: serde_json::to_string(&body.content).map_err(|_| ApiError::internal())?,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    let created = store::put_template(&mut tx, &tenant.id, &row).await?;
    let stored = store::get_template(&mut tx, &tenant.id, &row.code)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(data(put_status(created), view(stored)?))
}

/// Get a notification template: the tenant's own, else the built-in of that code.
#[utoipa::path(
    get, path = "/notification-templates/{code}", operation_id = "omni.notificationTemplates.get", tag = "Notifications",
    params(("code" = String, Path, description = "Template code")),
    responses(
        (status = 200, description = "The template", body = Data<TemplateView>),
        (status = 404, description = "No such template for this tenant and no built-in (`not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_template(
    State(app): State<AppState>,
    tenant: Tenant,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    if let Some(row) = store::get_template(&mut conn, &tenant.id, &code).await? {
        return Ok(data(axum::http::StatusCode::OK, view(row)?));
    }
    let t = builtin(&code).ok_or_else(|| ApiError::not_found("Notification template"))?;
    Ok(data(axum::http::StatusCode::OK, builtin_view(t)))
}

/// List the tenant's notification templates and the built-ins it has not replaced, by code.
#[utoipa::path(
    get, path = "/notification-templates", operation_id = "omni.notificationTemplates.list", tag = "Notifications",
    responses((status = 200, description = "Every template the tenant can send with", body = Data<Vec<TemplateView>>))
)]
async fn list_templates(State(app): State<AppState>, tenant: Tenant) -> ApiResult<Response> {
    let mut conn = app.db.read_conn().await?;
    let rows = store::list_templates(&mut conn, &tenant.id).await?;
    let mut out: BTreeMap<String, TemplateView> = BTreeMap::new();
    for code in BUILTIN_CODES {
        if let Some(t) = builtin(code) {
            out.insert(code.to_owned(), builtin_view(t));
        }
    }
    for row in rows {
        out.insert(row.code.clone(), view(row)?);
    }
    Ok(data(
        axum::http::StatusCode::OK,
        out.into_values().collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtins_render_the_seed_data() {
        let t = builtin("JOURNEY_STEP_REQUIRED").unwrap();
        let data = json!({"journeyName": "SME Onboarding", "stepName": "Document Collection", "dueDate": "2024-01-17"});
        let out = render(&t, "en", NotifyChannel::Email, &data).unwrap();
        assert_eq!(out["subject"], "Action needed: Document Collection");
        assert_eq!(
            out["text"],
            "Your SME Onboarding needs Document Collection by 2024-01-17."
        );
        let out = render(&t, "en", NotifyChannel::Push, &json!({"stepName": "KYC"})).unwrap();
        // Seed 001's Python example writes the key in snake_case.
        let snake = render(&t, "en", NotifyChannel::Push, &json!({"step_name": "KYC"})).unwrap();
        assert_eq!(snake, out);
        assert_eq!(out["body"], "KYC is needed.");
    }

    #[test]
    fn a_missing_variable_is_named_not_left_blank() {
        let t = builtin("JOURNEY_STEP_REQUIRED").unwrap();
        match render(&t, "en", NotifyChannel::Sms, &json!({"stage": "KYC"})) {
            Err(RenderError::Missing(names)) => assert_eq!(names, ["stepName"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = builtin("JOURNEY_STEP_REQUIRED").unwrap();
        let out = render(&t, "en", NotifyChannel::Email, &json!({"stepName": "<b>&"})).unwrap();
        assert_eq!(out["html"], "<p>&lt;b&gt;&amp; is needed.</p>");
        assert_eq!(out["text"], "<b>& is needed.");
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let mut t = builtin("JOURNEY_ASSIGNED").unwrap();
        t.content.get_mut("en").unwrap().sms = Some(SmsContent {
            text:
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
        });
        assert!(matches!(
            render(&t, "en", NotifyChannel::Sms, &json!({})),
            Err(RenderError::Failed(_))
        ));
    }

    #[test]
    fn content_falls_back_to_the_default_language_per_channel() {
        let mut t = builtin("JOURNEY_ASSIGNED").unwrap();
        t.content.insert(
            "ar".into(),
            ChannelContent {
                sms: Some(SmsContent {
                    text: "رحلة {{ journeyId }}".into(),
                }),
                ..Default::default()
            },
        );
        let data = json!({"journeyId": "jrn_1"});
        assert_eq!(t.language(Some("ar-SA")), "ar");
        let sms = render(&t, "ar", NotifyChannel::Sms, &data).unwrap();
        assert_eq!(sms["text"], "رحلة jrn_1");
        let push = render(&t, "ar", NotifyChannel::Push, &data).unwrap();
        assert_eq!(push["title"], "Journey jrn_1 assigned to you");
    }

    #[test]
    fn codes() {
        assert!(is_code("JOURNEY_STEP_REQUIRED"));
        assert!(is_code("A1"));
        for bad in ["", "lower", "1ABC", "A-B", &"A".repeat(65)] {
            assert!(!is_code(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod case_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_given_in_both_cases_and_a_given_spelling_wins() {
        let data = json!({
            "step_name": "Docs",
            "dueDate": "2024-01-17",
            "customer": { "first_name": "Aisha" },
            "rows": [{ "row_id": 1 }],
            "a_b": "given", "aB": "also given",
            "_private": 1, "URL": "u",
        });
        let both = in_both_cases(&data);
        assert_eq!(both["stepName"], "Docs");
        assert_eq!(both["step_name"], "Docs");
        assert_eq!(both["due_date"], "2024-01-17");
        assert_eq!(both["customer"]["firstName"], "Aisha");
        assert_eq!(both["rows"][0]["rowId"], 1);
        assert_eq!(both["aB"], "also given");
        assert_eq!(both["a_b"], "given");
        assert_eq!(both["_private"], 1);
        assert_eq!(both["URL"], "u");
    }
}
