//! Bad input: every case gets problem details with a stable code and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_problem, documented_operations, fill_path, seed_journey, send,
};

/// Counts of every table a journey request could touch.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "journeys",
        "journey_templates",
        "journey_step_history",
        "events",
        "idempotency_keys",
    ] {
        out.push(app.count(t).await);
    }
    out
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let before = footprint(&app).await;
    for body in ["{\"templateId\": ", "not json", "{} trailing", ""] {
        let req = app
            .req(Method::POST, &format!("/api/v1/omni/journeys/{id}/advance"))
            .header("content-type", "application/json")
            .body(body);
        let (s, res) = send(req).await;
        assert_problem(s, &res, 400, "malformed_json");
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_with_the_json_path() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    let before = footprint(&app).await;
    let cases = [
        (json!({ "customerId": "ent_1" }), "templateId"),
        (
            json!({ "templateId": 42, "customerId": "ent_1" }),
            "templateId",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": ["ent_1"] }),
            "customerId",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "priority": "asap" }),
            "priority",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "channel": "fax" }),
            "channel",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "context": "text" }),
            "context",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "dueAt": "next friday" }),
            "dueAt",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "dueAt": "2024-01-25" }),
            "dueAt",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "assigneeId": "" }),
            "assigneeId",
        ),
        (
            json!({ "templateId": "tmpl_onboarding_sme", "customerId": "x'; DROP TABLE journeys; --" }),
            "customerId",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
        assert_problem(s, &res, 422, "validation_failed");
        assert!(
            res["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "expected {field} in {res}"
        );
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn unknown_or_archived_template_is_422() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    let mut body = seed_journey();
    body["templateId"] = json!("tmpl_does_not_exist");
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_problem(s, &res, 422, "unknown_template");
    app.patch(
        "/api/v1/omni/templates/tmpl_onboarding_sme",
        &json!({ "status": "archived" }),
    )
    .await;
    let before = footprint(&app).await;
    let (s, res) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_problem(s, &res, 422, "template_not_active");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn empty_assignee_on_assign_is_422() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let before = footprint(&app).await;
    for body in [
        json!({ "assigneeId": "" }),
        json!({}),
        json!({ "assigneeId": "usr_1", "assigneeType": "robot" }),
    ] {
        let (s, res) = app
            .post(&format!("/api/v1/omni/journeys/{id}/assign"), &body)
            .await;
        assert_problem(s, &res, 422, "validation_failed");
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn bad_page_sizes_and_filters() {
    let app = TestApp::spawn().await;
    for (q, status) in [
        ("perPage=0", 422),
        ("perPage=101", 422),
        ("perPage=-1", 422),
        ("perPage=abc", 400),
        ("page=0", 422),
        ("page=x", 400),
        ("status=archived", 422),
        ("status=unknown", 422),
    ] {
        let (s, res) = app.get(&format!("/api/v1/omni/journeys?{q}")).await;
        assert_problem(s, &res, status, "invalid_query_parameter");
        assert!(res["errors"][0]["field"].is_string(), "{q}: {res}");
    }
    let (s, res) = app.get("/api/v1/omni/journeys?perPage=100").await;
    assert_eq!(s, StatusCode::OK, "{res}");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    let before = footprint(&app).await;
    let big = json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "context": { "blob": "x".repeat(2 * 1024 * 1024) } });
    let (s, res) = app.post("/api/v1/omni/journeys", &big).await;
    assert_problem(s, &res, 413, "payload_too_large");
    // Through the idempotency layer, too.
    let (s, res) = send(
        app.req(Method::POST, "/api/v1/omni/journeys")
            .header("idempotency-key", "big-1")
            .json(&big),
    )
    .await;
    assert_problem(s, &res, 413, "payload_too_large");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    let before = footprint(&app).await;
    let (s, res) = send(
        app.req(Method::POST, "/api/v1/omni/journeys")
            .header("content-type", "text/plain")
            .body(seed_journey().to_string()),
    )
    .await;
    assert_problem(s, &res, 415, "unsupported_media_type");
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_405_as_problem_details() {
    let app = TestApp::spawn().await;
    let (s, res) = app.get("/api/v1/omni/nothing-here").await;
    assert_problem(s, &res, 404, "route_not_found");
    let (s, res) = send(app.req(Method::DELETE, "/api/v1/omni/journeys")).await;
    assert_problem(s, &res, 405, "method_not_allowed");
    let res = app
        .req(Method::PUT, "/api/v1/omni/templates")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn ids_with_quotes_and_sql_are_simply_not_found() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    for id in [
        "jrn_' OR '1'='1",
        "\"; DROP TABLE journeys; --",
        "%E2%80%AE",
    ] {
        let (s, res) = app
            .get(&format!("/api/v1/omni/journeys/{}", id.replace(' ', "%20")))
            .await;
        assert_problem(s, &res, 404, "not_found");
        let (s, res) = app
            .post(
                &format!("/api/v1/omni/journeys/{}/cancel", id.replace(' ', "%20")),
                &json!({}),
            )
            .await;
        assert_problem(s, &res, 404, "not_found");
    }
    // NUL cannot be stored by every database: refused the same way on both.
    let (s, res) = app.get("/api/v1/omni/journeys/jrn_%00").await;
    assert_problem(s, &res, 400, "invalid_path");
    let (s, res) = app.get("/api/v1/omni/journeys?customerId=a%00").await;
    assert_problem(s, &res, 400, "invalid_query");
    let (s, res) = app.post("/api/v1/omni/journeys", &json!({ "templateId": "tmpl_onboarding_sme", "customerId": "ent_1", "context": { "n": "a\u{0}b" } })).await;
    assert_problem(s, &res, 422, "validation_failed");
    let (s, res) = app
        .get("/api/v1/omni/journeys?customerId=x'%20OR%20'1'='1")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res["pagination"]["total"], 0);
    assert_eq!(app.count("journeys").await, 1);
}

#[tokio::test]
async fn another_tenants_journey_is_404_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let other = app.other_tenant_key().await;
    let as_other = |m: Method, p: String| {
        app.client
            .request(m, app.url(&p))
            .header("x-api-key", &other)
    };

    let (s, missing) = send(as_other(
        Method::GET,
        "/api/v1/omni/journeys/jrn_missing".into(),
    ))
    .await;
    assert_problem(s, &missing, 404, "not_found");
    let (s, res) = send(as_other(Method::GET, format!("/api/v1/omni/journeys/{id}"))).await;
    assert_problem(s, &res, 404, "not_found");
    assert_eq!(res["detail"], missing["detail"]);
    let before = footprint(&app).await;
    for (action, body) in [
        ("advance", json!({ "completedStepId": "step_kyc" })),
        ("assign", json!({ "assigneeId": "usr_x" })),
        ("complete", json!({})),
        ("cancel", json!({})),
    ] {
        let (s, res) = send(
            as_other(Method::POST, format!("/api/v1/omni/journeys/{id}/{action}")).json(&body),
        )
        .await;
        assert_problem(s, &res, 404, "not_found");
    }
    assert_eq!(footprint(&app).await, before);
    let (_, list) = send(as_other(Method::GET, "/api/v1/omni/journeys".into())).await;
    assert_eq!(list["pagination"]["total"], 0);
    let (s, _) = send(as_other(
        Method::GET,
        "/api/v1/omni/templates/tmpl_onboarding_sme".into(),
    ))
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The other tenant may use the same template id for its own template.
    let (s, _) = send(
        as_other(Method::POST, "/api/v1/omni/templates".into())
            .json(&crate::helpers::seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn every_error_body_is_problem_json() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v1/omni/journeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");
}

/// Every operation on one object that documents 404 `not_found` answers it for an id this
/// tenant does not have, read from the OpenAPI document itself, so an operation added later is
/// covered without a test of its own. Operations reached with a session token (`/omni/*`) and
/// the provider callback are tested where they are written.
#[tokio::test]
async fn every_lookup_of_an_unknown_id_is_404_not_found() {
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (method, template, op) in documented_operations() {
        if !template.starts_with("/api/") || template.contains("/providers/") {
            continue;
        }
        let documents_404 = op["responses"]["404"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("`not_found`"));
        // A required body is checked before the lookup (a malformed request is refused
        // whatever it names): those are tested with their own bodies.
        let body_required = op["requestBody"]["required"] == json!(true);
        if !documents_404 || !template.contains('{') || body_required {
            continue;
        }
        // Each parameter a value of its kind that names nothing here.
        let path = fill_path(
            &template,
            &[
                ("{channel}", "email"),
                ("{eventType}", "omni.journey.cancelled"),
                ("{code}", "NO_SUCH_TEMPLATE"),
            ],
            "zz_unknown_1",
        );
        let mut req = app.req(method.clone(), &path);
        if op.get("requestBody").is_some() {
            req = req.json(&json!({}));
        }
        let (s, body) = send(req).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{method} {path}: {body}"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} operations checked");
}

/// Refusals that no scenario test meets on the way, each as the document states it.
#[tokio::test]
async fn documented_refusals_off_the_main_paths() {
    let app = TestApp::spawn().await;
    let an_hour_ago = crate::helpers::at(-3_600_000);
    for (method, path, body, status, code) in [
        (
            Method::PATCH,
            "/api/v1/omni/webhooks/endpoints/ep_unknown",
            json!({ "enabled": false }),
            404,
            "not_found",
        ),
        (
            Method::POST,
            "/api/v1/omni/webhooks/endpoints/ep_unknown/replay",
            json!({ "since": an_hour_ago }),
            404,
            "not_found",
        ),
        (
            Method::POST,
            "/api/v1/omni/delegations/del_unknown/revoke",
            json!({}),
            404,
            "not_found",
        ),
        (
            Method::POST,
            "/api/v1/sessions/handoff",
            json!({ "source_session_id": "ses_unknown", "target_channel": "MOBILE_IOS",
                    "context": {} }),
            404,
            "not_found",
        ),
        (
            Method::PUT,
            "/api/v1/omni/notification-rules/omni.journey.assigned",
            json!({ "recipients": ["assignee"], "channels": ["in_app"],
                    "templateCode": "NO_SUCH_TEMPLATE" }),
            422,
            "unknown_template",
        ),
        (
            Method::GET,
            "/api/v1/omni/notification-rules/omni.journey.created",
            Value::Null,
            422,
            "event_type_not_notifiable",
        ),
        (
            Method::GET,
            "/api/v1/omni/timeline/export?entityType=customer",
            Value::Null,
            400,
            "missing_query_parameter",
        ),
    ] {
        let mut req = app.req(method.clone(), path);
        if !body.is_null() {
            req = req.json(&body);
        }
        let (s, b) = send(req).await;
        assert_eq!(
            (s.as_u16(), b["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {b}"
        );
    }

    // A replay asked of a disabled endpoint.
    let ep =
        crate::webhooks::endpoint(&app, "https://hooks.bank.example/omnirail", json!([])).await;
    let path = format!(
        "/api/v1/omni/webhooks/endpoints/{}",
        ep["id"].as_str().unwrap()
    );
    let (s, _) = app.patch(&path, &json!({ "enabled": false })).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .post(&format!("{path}/replay"), &json!({ "since": an_hour_ago }))
        .await;
    assert_problem(s, &b, 409, "endpoint_disabled");
}
