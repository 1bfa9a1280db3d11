//! The console's pages and the actions on them. Each reads through the API as the signed-in
//! person ([`Staff::call`]) with a fixed number of calls per page (never one per row), and each
//! action is one API call whose refusal is shown with its code and message.

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Staff;
use super::view::{self, Problem};
use crate::ids::new_secret;

const PER_PAGE: u32 = 25;
/// A journey's open statuses: a work queue holds these.
const OPEN: &str = "created,in_progress,assigned";

/// `?a=1&b=2`, encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A path segment, encoded.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A fresh `Idempotency-Key` for a form: the API acts once however often it is sent.
fn idem() -> String {
    new_secret("console-")
}

/// The page a request reads from `?page=`, from 1.
fn page_of(raw: Option<&str>) -> u32 {
    raw.and_then(|p| p.parse().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1)
}

/// What every page shows: who is signed in, the CSRF token for its forms, where it is.
fn base(staff: &Staff, title: &str, section: &str) -> Value {
    json!({
        "title": title,
        "section": section,
        "me": staff.user_id,
        "csrf": staff.csrf,
        "is_admin": staff.is_admin,
    })
}

fn with(mut base: Value, more: Value) -> Value {
    if let (Some(b), Value::Object(m)) = (base.as_object_mut(), more) {
        b.extend(m);
    }
    base
}

fn show(template: &str, context: Value) -> Response {
    view::page(StatusCode::OK, template, context)
}

/// A refusal, shown with a way back to `back`.
fn refused(staff: &Staff, p: &Problem, back: &str) -> Response {
    view::page(
        p.status,
        "failure.html",
        with(
            base(staff, "Refused", ""),
            json!({ "problem": p, "back": back }),
        ),
    )
}

/// The fields of a submitted form.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Result<Self, Problem> {
        serde_urlencoded::from_bytes(body).map(Form).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The form could not be read",
            )
        })
    }

    /// A field's value, trimmed; `None` when absent or blank.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An action: one API call as the person, then back to `back`, or its refusal shown with a way
/// back there.
async fn act(
    staff: &Staff,
    path: &str,
    body: Option<&Value>,
    idem: Option<&str>,
    back: &str,
) -> Response {
    match staff.call(Method::POST, path, body, idem).await {
        Ok(_) => Redirect::to(back).into_response(),
        Err(p) => refused(staff, &p, back),
    }
}

/// Reads a form and holds its CSRF token to the session's.
fn form(staff: &Staff, headers: &HeaderMap, body: &Bytes) -> Result<Form, Problem> {
    let form = Form::parse(body)?;
    staff.check_csrf(headers, form.get("csrf"))?;
    Ok(form)
}

/// A `datetime-local` value (`2026-12-04T14:30`, taken as UTC) or an RFC 3339 instant, as
/// RFC 3339; anything else is passed on for the API to refuse by name.
fn instant(v: &str) -> String {
    if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') {
        format!("{v}:00Z")
    } else {
        v.to_owned()
    }
}

pub async fn home(_staff: Staff) -> Redirect {
    Redirect::to("/console/work")
}

pub async fn not_found() -> Response {
    view::failure(&Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such page in the console.",
    ))
}

#[derive(Deserialize)]
pub struct WorkQuery {
    status: Option<String>,
    overdue: Option<String>,
    page: Option<String>,
}

/// My work: the open journeys assigned to me or to my teams, overdue first, then by due date.
pub async fn my_work(staff: Staff, Query(q): Query<WorkQuery>) -> Response {
    let status = match q.status.as_deref() {
        Some(s @ ("created" | "in_progress" | "assigned")) => s,
        _ => OPEN,
    };
    let overdue_only = q.overdue.as_deref() == Some("true");
    let page = page_of(q.page.as_deref()).to_string();
    let per_page = PER_PAGE.to_string();
    let mut pairs = vec![
        ("assignedTo", staff.user_id.as_str()),
        ("status", status),
        ("sort", "dueAt"),
        ("page", page.as_str()),
        ("perPage", per_page.as_str()),
    ];
    if overdue_only {
        pairs.push(("overdue", "true"));
    }
    let list = format!("/api/v1/omni/journeys?{}", query(&pairs));
    let overdue = format!(
        "/api/v1/omni/journeys?{}",
        query(&[
            ("assignedTo", &staff.user_id),
            ("status", OPEN),
            ("overdue", "true"),
            ("perPage", "1"),
        ])
    );
    let (list, overdue) = match tokio::try_join!(staff.get(&list), staff.get(&overdue)) {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/work"),
    };
    show(
        "work.html",
        with(
            base(&staff, "My work", "work"),
            json!({
                "journeys": list["data"],
                "pagination": list["pagination"],
                "overdue_count": overdue["pagination"]["total"],
                "status": if status == OPEN { "" } else { status },
                "overdue_only": overdue_only,
            }),
        ),
    )
}

/// A journey: its steps and their history, context, assignee, actions, approval and timeline
/// (newest first, a page at a time).
pub async fn journey(staff: Staff, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let page = page_of(q.page.as_deref()).to_string();
    let per_page = PER_PAGE.to_string();
    let journey = format!("/api/v1/omni/journeys/{}", seg(&id));
    let timeline = format!(
        "/api/v1/omni/timeline?{}",
        query(&[
            ("entityType", "journey"),
            ("entityId", &id),
            ("order", "desc"),
            ("page", &page),
            ("perPage", &per_page),
        ])
    );
    let (j, timeline) = match tokio::try_join!(staff.get(&journey), staff.get(&timeline)) {
        Ok((j, t)) => (j["data"].clone(), t),
        Err(p) => return refused(&staff, &p, "/console/work"),
    };
    let approval_id = j["currentStep"]["approvalId"].as_str().map(str::to_owned);
    let approval = match &approval_id {
        Some(a) => staff
            .get(&format!("/api/v1/omni/approvals/{}", seg(a)))
            .await
            .map(|a| a["data"].clone())
            .ok(),
        None => None,
    };
    show(
        "journey.html",
        with(
            base(&staff, "Journey", "work"),
            json!({
                "j": j,
                "approval": approval,
                "timeline": timeline["data"],
                "pagination": timeline["pagination"],
                "idem": idem(),
            }),
        ),
    )
}

/// An action on a journey: advance, assign, complete or cancel, as the signed-in person.
pub async fn journey_action(
    staff: Staff,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let back = format!("/console/journeys/{}", seg(&id));
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, &back),
    };
    let mut b = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            b.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    };
    match action.as_str() {
        "advance" => {
            put("completedStepId", f.get("completedStepId"));
            put("stepOutcome", f.get("stepOutcome"));
        }
        "assign" => {
            put("assigneeId", f.get("assigneeId"));
            put("assigneeType", f.get("assigneeType"));
            put("reason", f.get("reason"));
        }
        "complete" => put("completionNotes", f.get("completionNotes")),
        "cancel" => put("cancellationReason", f.get("cancellationReason")),
        _ => return not_found().await,
    }
    if action == "advance"
        && let Some(data) = f.get("stepData")
    {
        match serde_json::from_str::<Value>(data) {
            Ok(v) => {
                b.insert("stepData".into(), v);
            }
            Err(_) => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Step data must be a JSON object, such as {\"kycStatus\": \"verified\"}",
                );
                p.errors.push(("stepData".into(), "is not JSON".into()));
                return refused(&staff, &p, &back);
            }
        }
    }
    act(
        &staff,
        &format!("/api/v1/omni/journeys/{}/{action}", seg(&id)),
        Some(&Value::Object(b)),
        f.get("idem"),
        &back,
    )
    .await
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

/// Approvals: the requests I can decide now, in person or as a deputy.
pub async fn approvals(staff: Staff, Query(q): Query<PageQuery>) -> Response {
    let page = page_of(q.page.as_deref()).to_string();
    let per_page = PER_PAGE.to_string();
    let list = format!(
        "/api/v1/omni/approvals?{}",
        query(&[
            ("decidableBy", &staff.user_id),
            ("page", &page),
            ("perPage", &per_page),
        ])
    );
    let (list, cover) = match tokio::try_join!(staff.get(&list), covering(&staff)) {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/work"),
    };
    let items: Vec<Value> = list["data"]
        .as_array()
        .map(|a| a.iter().map(|r| with_places(&staff, r, &cover)).collect())
        .unwrap_or_default();
    show(
        "approvals.html",
        with(
            base(&staff, "Approvals", "approvals"),
            json!({ "requests": items, "pagination": list["pagination"], "idem": idem() }),
        ),
    )
}

/// The active delegations I hold (approvals I may decide for someone else).
async fn covering(staff: &Staff) -> Result<Vec<Value>, Problem> {
    let d = staff
        .get(&format!(
            "/api/v1/omni/delegations?{}",
            query(&[
                ("delegateeId", &staff.user_id),
                ("status", "active"),
                ("scope", "approvals"),
                ("perPage", "100"),
            ])
        ))
        .await?;
    Ok(d["data"].as_array().cloned().unwrap_or_default())
}

/// A request with the places I can decide it in: my own, and each undecided approver who
/// delegated approvals to me ("on behalf of X, delegation Y, limit Z").
fn with_places(staff: &Staff, request: &Value, cover: &[Value]) -> Value {
    let mut places = Vec::new();
    let open = |a: &Value| a["decision"].is_null();
    let approvers = request["approvers"].as_array().cloned().unwrap_or_default();
    let open_request = request["status"] == "requested";
    for a in approvers.iter().filter(|a| open(a) && open_request) {
        let user = a["userId"].as_str().unwrap_or_default();
        if user == staff.user_id {
            places.push(json!({ "onBehalfOf": null }));
        } else {
            for d in cover.iter().filter(|d| d["delegatorId"] == user) {
                places.push(json!({
                    "onBehalfOf": user,
                    "onBehalfOfName": a["userName"],
                    "delegationId": d["id"],
                    "limit": d["maxApprovalAmount"],
                }));
            }
        }
    }
    let mut r = request.clone();
    r["places"] = Value::Array(places);
    r
}

/// One request: its approvers, decisions, and the places I can decide it in.
pub async fn approval(staff: Staff, Path(id): Path<String>) -> Response {
    let r = format!("/api/v1/omni/approvals/{}", seg(&id));
    let (r, cover) = match tokio::try_join!(staff.get(&r), covering(&staff)) {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/approvals"),
    };
    let is_requester = r["data"]["requestedBy"] == staff.user_id.as_str();
    let request = with_places(&staff, &r["data"], &cover);
    show(
        "approval.html",
        with(
            base(&staff, "Approval request", "approvals"),
            json!({ "r": request, "is_requester": is_requester, "idem": idem() }),
        ),
    )
}

/// Approve or reject, in person or in the place of the approver named by `onBehalfOf`.
pub async fn decide(
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/approvals/{}", seg(&id));
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, &back),
    };
    let mut b = json!({ "decision": f.get("decision") });
    if let Some(c) = f.get("comment") {
        b["comment"] = json!(c);
    }
    if let Some(o) = f.get("onBehalfOf") {
        b["onBehalfOf"] = json!(o);
    }
    act(
        &staff,
        &format!("/api/v1/omni/approvals/{}/decisions", seg(&id)),
        Some(&b),
        f.get("idem"),
        &back,
    )
    .await
}

#[derive(Deserialize)]
pub struct CustomerSearch {
    id: Option<String>,
}

/// Find a customer by id.
pub async fn customer_search(staff: Staff, Query(q): Query<CustomerSearch>) -> Response {
    match q.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        Some(id) => Redirect::to(&format!("/console/customers/{}", seg(id))).into_response(),
        None => show(
            "customer_search.html",
            base(&staff, "Customers", "customers"),
        ),
    }
}

#[derive(Deserialize)]
pub struct TimelineQuery {
    page: Option<String>,
    /// Verify the chain whatever its length.
    verify: Option<String>,
    types: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A customer: the unified profile, channels, the timeline (filtered, paged) and whether its
/// chain verifies.
pub async fn customer(
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let back = "/console/customers";
    let profile = staff
        .get(&format!("/api/v1/customers/{}/profile/unified", seg(&id)))
        .await;
    let profile = match profile {
        Ok(p) => p,
        Err(p) => return refused(&staff, &p, back),
    };
    let page = page_of(q.page.as_deref()).to_string();
    let per_page = PER_PAGE.to_string();
    let mut pairs = vec![
        ("entityType", "customer"),
        ("entityId", id.as_str()),
        ("order", "desc"),
        ("page", page.as_str()),
        ("perPage", per_page.as_str()),
    ];
    let types = q.types.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let from = q.from.as_deref().filter(|t| !t.is_empty()).map(instant);
    let to = q.to.as_deref().filter(|t| !t.is_empty()).map(instant);
    if let Some(t) = types {
        pairs.push(("eventTypes", t));
    }
    if let Some(f) = &from {
        pairs.push(("fromDate", f));
    }
    if let Some(t) = &to {
        pairs.push(("toDate", t));
    }
    let timeline = staff
        .get(&format!("/api/v1/omni/timeline?{}", query(&pairs)))
        .await;
    let back_here = format!("/console/customers/{}", seg(&id));
    let timeline = match timeline {
        Ok(t) => t,
        Err(p) => return refused(&staff, &p, &back_here),
    };
    // The chain is verified on the page while it is short enough to cost a few milliseconds;
    // a longer one is verified when asked (verify reads every link).
    let events = if types.is_none() && from.is_none() && to.is_none() {
        Ok(timeline["pagination"]["total"].as_u64().unwrap_or(0))
    } else {
        staff
            .get(&format!(
                "/api/v1/omni/timeline?{}",
                query(&[
                    ("entityType", "customer"),
                    ("entityId", &id),
                    ("perPage", "1")
                ])
            ))
            .await
            .map(|t| t["pagination"]["total"].as_u64().unwrap_or(0))
    };
    let events = match events {
        Ok(n) => n,
        Err(p) => return refused(&staff, &p, &back_here),
    };
    let verification = if events <= VERIFY_ON_PAGE || q.verify.is_some() {
        match verify(&staff, &id).await {
            Ok(v) => Some(v),
            Err(p) => return refused(&staff, &p, &back_here),
        }
    } else {
        None
    };
    show(
        "customer.html",
        with(
            base(&staff, "Customer", "customers"),
            json!({
                "id": id,
                "profile": profile,
                "timeline": timeline["data"],
                "pagination": timeline["pagination"],
                "events": events,
                "verification": verification,
                "filters": { "types": types, "from": q.from, "to": q.to },
            }),
        ),
    )
}

/// The longest customer chain verified on every view of its page.
const VERIFY_ON_PAGE: u64 = 2_000;

async fn verify(staff: &Staff, customer: &str) -> Result<Value, Problem> {
    staff
        .get(&format!(
            "/api/v1/omni/timeline/verify?{}",
            query(&[("entityType", "customer"), ("entityId", customer)])
        ))
        .await
        .map(|v| v["data"].clone())
}

/// The customer's timeline as the API exports it (JSON Lines, every link and the chain's head,
/// for an auditor to re-verify), as a download.
pub async fn customer_export(staff: Staff, Path(id): Path<String>) -> Response {
    match staff
        .send(
            Method::GET,
            &format!(
                "/api/v1/omni/timeline/export?{}",
                query(&[("entityType", "customer"), ("entityId", &id)])
            ),
            None,
            None,
            &[],
        )
        .await
    {
        Ok(res) if res.status().is_success() => {
            let mut res = res;
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
                "attachment; filename=\"timeline-{}.jsonl\"",
                id.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-',
                    "_"
                )
            )) {
                res.headers_mut()
                    .insert(axum::http::header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Ok(res) => {
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let doc = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            refused(
                &staff,
                &Problem::from_api(status, &doc),
                &format!("/console/customers/{}", seg(&id)),
            )
        }
        Err(p) => refused(&staff, &p, "/console/customers"),
    }
}

#[derive(Deserialize)]
pub struct DelegationsQuery {
    given: Option<String>,
    received: Option<String>,
}

/// Delegations I have given and received (each list a page at a time), and the form to grant
/// one.
pub async fn delegations(staff: Staff, Query(q): Query<DelegationsQuery>) -> Response {
    let list = |who: &str, page: Option<&str>| {
        format!(
            "/api/v1/omni/delegations?{}",
            query(&[
                (who, &staff.user_id),
                ("page", &page_of(page).to_string()),
                ("perPage", &PER_PAGE.to_string()),
            ])
        )
    };
    let given = list("delegatorId", q.given.as_deref());
    let received = list("delegateeId", q.received.as_deref());
    let (given, received) = match tokio::try_join!(staff.get(&given), staff.get(&received)) {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/work"),
    };
    show(
        "delegations.html",
        with(
            base(&staff, "Delegations", "delegations"),
            json!({
                "given": given["data"],
                "given_pages": given["pagination"],
                "received": received["data"],
                "received_pages": received["pagination"],
                "idem": idem(),
            }),
        ),
    )
}

/// Grant a delegation of my authority.
pub async fn grant(staff: Staff, headers: HeaderMap, body: Bytes) -> Response {
    let back = "/console/delegations";
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, back),
    };
    let mut b = json!({
        "delegateeId": f.get("delegateeId"),
        "scope": f.all("scope"),
        "validTo": f.get("validTo").map(instant),
    });
    if let Some(from) = f.get("validFrom") {
        b["validFrom"] = json!(instant(from));
    }
    if let Some(reason) = f.get("reason") {
        b["reason"] = json!(reason);
    }
    if let Some(amount) = f.get("maxAmount") {
        // The amount as typed, a number where it reads as one (the API holds it to the
        // currency's decimals and refuses anything else by name).
        let amount = serde_json::from_str::<Value>(amount)
            .ok()
            .filter(Value::is_number)
            .unwrap_or_else(|| json!(amount));
        b["maxApprovalAmount"] = json!({ "amount": amount, "currency": f.get("maxCurrency") });
    }
    act(
        &staff,
        "/api/v1/omni/delegations",
        Some(&b),
        f.get("idem"),
        back,
    )
    .await
}

/// Revoke a delegation.
pub async fn revoke(
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = "/console/delegations";
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, back),
    };
    let mut b = json!({});
    if let Some(reason) = f.get("reason") {
        b["reason"] = json!(reason);
    }
    act(
        &staff,
        &format!("/api/v1/omni/delegations/{}/revoke", seg(&id)),
        Some(&b),
        f.get("idem"),
        back,
    )
    .await
}

/// The refusal of a page for administrators shown to anyone else; `None` for an administrator.
fn not_admin(staff: &Staff) -> Option<Response> {
    if staff.is_admin {
        None
    } else {
        Some(refused(
            staff,
            &Problem::new(
                StatusCode::FORBIDDEN,
                "console_admin_only",
                "Administration is for members of staff with the administrator role.",
            ),
            "/console/work",
        ))
    }
}

/// Administration: webhook endpoints, notification providers, the identity provider.
pub async fn admin(staff: Staff, Query(q): Query<PageQuery>) -> Response {
    if let Some(r) = not_admin(&staff) {
        return r;
    }
    let page = page_of(q.page.as_deref()).to_string();
    let endpoints = format!(
        "/api/v1/omni/webhooks/endpoints?{}",
        query(&[("page", &page), ("perPage", "25")])
    );
    let (lists, identity) = tokio::join!(
        async {
            tokio::try_join!(
                staff.get(&endpoints),
                staff.get("/api/v1/omni/notification-providers")
            )
        },
        // A tenant without a provider has no settings to show: not a refusal.
        staff.get("/api/v1/omni/identity-provider"),
    );
    let (endpoints, providers) = match lists {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/work"),
    };
    show(
        "admin.html",
        with(
            base(&staff, "Administration", "admin"),
            json!({
                "endpoints": endpoints["data"],
                "pagination": endpoints["pagination"],
                "providers": providers["data"],
                "identity": identity.ok().map(|i| i["data"].clone()),
            }),
        ),
    )
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    status: Option<String>,
    page: Option<String>,
}

/// One webhook endpoint: its delivery statistics, its messages by status, and its actions.
pub async fn admin_endpoint(
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Response {
    if let Some(r) = not_admin(&staff) {
        return r;
    }
    let base_path = format!("/api/v1/omni/webhooks/endpoints/{}", seg(&id));
    let page = page_of(q.page.as_deref()).to_string();
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let mut pairs = vec![("page", page.as_str()), ("perPage", "25")];
    if let Some(s) = status {
        pairs.push(("status", s));
    }
    let stats = format!("{base_path}/stats");
    let messages = format!("{base_path}/messages?{}", query(&pairs));
    let (endpoint, stats, messages) = match tokio::try_join!(
        staff.get(&base_path),
        staff.get(&stats),
        staff.get(&messages)
    ) {
        Ok(all) => all,
        Err(p) => return refused(&staff, &p, "/console/admin"),
    };
    show(
        "endpoint.html",
        with(
            base(&staff, "Webhook endpoint", "admin"),
            json!({
                "endpoint": endpoint["data"],
                "stats": stats["data"],
                "messages": messages["data"],
                "pagination": messages["pagination"],
                "status": status,
                "idem": idem(),
            }),
        ),
    )
}

/// Rotate an endpoint's secret, or replay its failed messages since an instant.
pub async fn endpoint_action(
    staff: Staff,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(r) = not_admin(&staff) {
        return r;
    }
    let back = format!("/console/admin/endpoints/{}", seg(&id));
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, &back),
    };
    let b = match action.as_str() {
        "rotate-secret" => json!({}),
        "replay" => json!({ "since": f.get("since").map(instant) }),
        _ => return not_found().await,
    };
    match staff
        .call(
            Method::POST,
            &format!("/api/v1/omni/webhooks/endpoints/{}/{action}", seg(&id)),
            Some(&b),
            f.get("idem"),
        )
        .await
    {
        Ok(answer) if action == "rotate-secret" => show(
            "endpoint.html",
            with(
                base(&staff, "Webhook endpoint", "admin"),
                json!({ "rotated": answer["data"], "endpoint": { "id": id } }),
            ),
        ),
        Ok(_) => Redirect::to(&back).into_response(),
        Err(p) => refused(&staff, &p, &back),
    }
}

/// One webhook message: its payload and every attempt to deliver it.
pub async fn admin_message(staff: Staff, Path(id): Path<String>) -> Response {
    if let Some(r) = not_admin(&staff) {
        return r;
    }
    let path = format!("/api/v1/omni/webhooks/messages/{}", seg(&id));
    let attempts = format!("{path}/attempts");
    let (message, attempts) = match tokio::try_join!(staff.get(&path), staff.get(&attempts)) {
        Ok(both) => both,
        Err(p) => return refused(&staff, &p, "/console/admin"),
    };
    show(
        "message.html",
        with(
            base(&staff, "Webhook message", "admin"),
            json!({ "m": message["data"], "attempts": attempts["data"], "idem": idem() }),
        ),
    )
}

/// Send a webhook message again.
pub async fn retry_message(
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = not_admin(&staff) {
        return r;
    }
    let f = match form(&staff, &headers, &body) {
        Ok(f) => f,
        Err(p) => return refused(&staff, &p, "/console/admin"),
    };
    let back = f
        .get("endpointId")
        .map(|e| format!("/console/admin/endpoints/{}", seg(e)))
        .unwrap_or_else(|| "/console/admin".to_owned());
    act(
        &staff,
        &format!("/api/v1/omni/webhooks/messages/{}/retry", seg(&id)),
        None,
        f.get("idem"),
        &back,
    )
    .await
}

/// The signed-in person's event stream (`GET /users/{me}/stream`), for the page's live
/// updates: what is assigned to them, as it happens.
pub async fn stream(staff: Staff, headers: HeaderMap) -> Response {
    let path = format!("/api/v1/omni/users/{}/stream", seg(&staff.user_id));
    let last: Vec<(&'static str, &str)> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|l| ("last-event-id", l))
        .into_iter()
        .collect();
    match staff.send(Method::GET, &path, None, None, &last).await {
        Ok(res) => res,
        Err(p) => view::failure(&p),
    }
}
