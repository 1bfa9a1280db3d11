use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, seed_journey, seed_template};

#[tokio::test]
async fn seed_template_is_created_active_with_steps_in_order() {
    let app = TestApp::spawn().await;
    let (s, body) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let t = &body["data"];
    assert_eq!(t["id"], "tmpl_onboarding_sme");
    assert_eq!(t["status"], "active");
    assert_eq!(t["version"], 1);
    assert_eq!(t["category"], "onboarding");
    assert_eq!(t["estimatedDurationDays"], 5);
    assert_eq!(t["slaHours"], 120);
    assert_eq!(
        t["steps"][1]["documentsRequired"],
        json!(["trade_license", "financial_statements"])
    );
    assert_eq!(t["steps"][2]["approvalRoleRequired"], "credit_analyst");
    let (s, got) = app.get("/api/v1/omni/templates/tmpl_onboarding_sme").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, body);
    let events = app.events_of("template", "tmpl_onboarding_sme").await;
    assert_eq!(events[0].event_type, "omni.template.created");
}

#[tokio::test]
async fn generated_ids_and_steps_sorted_by_order() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .post(
            "/api/v1/omni/templates",
            &json!({ "name": "Card replacement", "category": "servicing", "steps": [
                { "id": "b", "name": "Ship", "type": "custom", "order": 20 },
                { "id": "a", "name": "Verify", "type": "review", "order": 10 }
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(body["data"]["id"].as_str().unwrap().starts_with("tmpl_"));
    assert_eq!(body["data"]["steps"][0]["id"], "a");
    assert_eq!(body["data"]["steps"][0]["required"], true);
}

#[tokio::test]
async fn invalid_templates_are_422_naming_each_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "steps": [] }), "name"),
        (
            json!({ "name": "", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "name",
        ),
        (
            json!({ "name": "x".repeat(10_000), "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "name",
        ),
        (json!({ "name": "T", "steps": [] }), "steps"),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "teleport", "order": 1 }] }),
            "steps[0].type",
        ),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }, { "id": "a", "name": "B", "type": "form", "order": 2 }] }),
            "steps[1].id",
        ),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }, { "id": "b", "name": "B", "type": "form", "order": 1 }] }),
            "steps[1].order",
        ),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 0 }] }),
            "steps[0].order",
        ),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1, "timeoutHours": 0 }] }),
            "steps[0].timeoutHours",
        ),
        (
            json!({ "name": "T", "slaHours": -5, "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "slaHours",
        ),
        (
            json!({ "name": "T", "estimatedDurationDays": 0, "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "estimatedDurationDays",
        ),
        (
            json!({ "name": "T", "steps": [{ "name": "A", "type": "form", "order": 1 }] }),
            "steps[0].id",
        ),
        (
            json!({ "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": "1" }] }),
            "steps[0].order",
        ),
        (
            json!({ "id": "tmpl_Bad-Id", "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "id",
        ),
        (
            json!({ "id": "x' OR '1'='1", "name": "T", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "id",
        ),
        (
            json!({ "name": "T", "status": "retired", "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] }),
            "status",
        ),
    ];
    for (body, field) in cases {
        let (s, res) = app.post("/api/v1/omni/templates", &body).await;
        assert_problem(s, &res, 422, "validation_failed");
        let fields: Vec<&str> = res["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected {field} in {res}");
    }
    assert_eq!(app.count("journey_templates").await, 0);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn duplicate_template_id_is_409() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let (s, body) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_problem(s, &body, 409, "template_exists");
}

#[tokio::test]
async fn status_moves_between_draft_active_and_archived_and_gates_journeys() {
    let app = TestApp::spawn().await;
    let mut t = seed_template();
    t["status"] = json!("draft");
    let (_, body) = app.post("/api/v1/omni/templates", &t).await;
    assert_eq!(body["data"]["status"], "draft");

    let (s, body) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_problem(s, &body, 422, "template_not_active");

    let (s, body) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "status": "active" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "active");
    assert_eq!(
        body["data"]["version"], 1,
        "a status change is not a new version"
    );
    let (s, _) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, body) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "status": "draft" }),
        )
        .await;
    assert_problem(s, &body, 409, "invalid_template_transition");
    assert_eq!(body["currentStatus"], "active");

    let (s, _) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "status": "archived" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_problem(s, &body, 422, "template_not_active");
    assert_eq!(app.count("journeys").await, 1);
}

#[tokio::test]
async fn list_filters_by_category_and_status_with_pagination() {
    let app = TestApp::spawn().await;
    for (i, (cat, status)) in [
        ("onboarding", "active"),
        ("servicing", "draft"),
        ("sales", "active"),
        ("onboarding", "archived"),
    ]
    .iter()
    .enumerate()
    {
        let body = json!({ "name": format!("T{i}"), "category": cat, "status": status,
                           "steps": [{ "id": "a", "name": "A", "type": "form", "order": 1 }] });
        let (s, _) = app.post("/api/v1/omni/templates", &body).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, body) = app.get("/api/v1/omni/templates").await;
    assert_eq!(
        body["pagination"],
        json!({ "page": 1, "perPage": 20, "total": 4 })
    );
    let (_, body) = app.get("/api/v1/omni/templates?category=onboarding").await;
    assert_eq!(body["pagination"]["total"], 2);
    let (_, body) = app
        .get("/api/v1/omni/templates?category=onboarding&status=active")
        .await;
    assert_eq!(body["pagination"]["total"], 1);
    let (_, body) = app.get("/api/v1/omni/templates?perPage=3&page=2").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (s, body) = app.get("/api/v1/omni/templates?status=retired").await;
    assert_problem(s, &body, 422, "invalid_query_parameter");
}

#[tokio::test]
async fn unknown_template_is_404() {
    let app = TestApp::spawn().await;
    let (s, body) = app.get("/api/v1/omni/templates/tmpl_nope").await;
    assert_problem(s, &body, 404, "not_found");
    let (s, body) = app
        .patch(
            "/api/v1/omni/templates/tmpl_nope",
            &json!({ "status": "active" }),
        )
        .await;
    assert_problem(s, &body, 404, "not_found");
}
