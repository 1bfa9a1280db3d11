use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{DAY, TestApp, assert_problem, at};

/// Seed 001's create-delegation body, moved into the present so that it is valid today.
fn seed_delegation() -> Value {
    json!({
        "delegatorId": "usr_manager_001",
        "delegateeId": "usr_deputy_002",
        "scope": ["approvals", "journey_assign"],
        "maxApprovalAmount": { "amount": 500000, "currency": "SAR" },
        "validFrom": at(-DAY),
        "validTo": at(6 * DAY),
        "reason": "Annual leave coverage"
    })
}

async fn grant(app: &TestApp, body: &Value) -> Value {
    let (s, res) = app.post("/api/v1/omni/delegations", body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    res["data"].clone()
}

#[tokio::test]
async fn the_seed_delegation_is_granted_with_the_seed_fields() {
    let app = TestApp::spawn().await;
    let body = seed_delegation();
    let d = grant(&app, &body).await;
    assert!(d["id"].as_str().unwrap().starts_with("del_"));
    assert_eq!(d["status"], "active");
    assert_eq!(d["delegatorId"], "usr_manager_001");
    assert_eq!(d["delegateeId"], "usr_deputy_002");
    assert_eq!(d["scope"], json!(["approvals", "journey_assign"]));
    assert_eq!(
        d["maxApprovalAmount"],
        json!({ "amount": 500000, "currency": "SAR" })
    );
    assert_eq!(
        omnirail::time::parse_rfc3339(d["validFrom"].as_str().unwrap()),
        omnirail::time::parse_rfc3339(body["validFrom"].as_str().unwrap())
    );
    assert_eq!(d["reason"], "Annual leave coverage");
    assert!(d["createdAt"].as_str().unwrap().ends_with('Z'));

    let (s, got) = app
        .get(&format!(
            "/api/v1/omni/delegations/{}",
            d["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"], d);
    let events = app.events_of("delegation", d["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "omni.delegation.granted");
    assert_eq!(events[0].actor_id.as_deref(), Some("usr_manager_001"));
    // The seed's own dates lie in the past: that validTo is refused.
    let (s, res) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({
                "delegatorId": "usr_manager_001", "delegateeId": "usr_deputy_002",
                "scope": ["approvals", "journey_assign"],
                "maxApprovalAmount": { "amount": 500000, "currency": "SAR" },
                "validFrom": "2024-01-15T00:00:00Z", "validTo": "2024-01-22T23:59:59Z",
                "reason": "Annual leave coverage"
            }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "validTo");
}

#[tokio::test]
async fn status_is_derived_from_the_clock_and_revocation() {
    let app = TestApp::spawn().await;
    let mut later = seed_delegation();
    later["validFrom"] = json!(at(DAY));
    later["validTo"] = json!(at(2 * DAY));
    let scheduled = grant(&app, &later).await;
    assert_eq!(scheduled["status"], "scheduled");

    let mut short = seed_delegation();
    short["validFrom"] = json!(at(-1000));
    short["validTo"] = json!(app.at(3_600_000));
    let short = grant(&app, &short).await;
    assert_eq!(short["status"], "active");
    app.advance_past(short["validTo"].as_str().unwrap());
    let (_, read) = app
        .get(&format!(
            "/api/v1/omni/delegations/{}",
            short["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read["data"]["status"], "expired", "no sweep needed: {read}");

    let active = grant(&app, &seed_delegation()).await;
    let id = active["id"].as_str().unwrap();
    let (s, revoked) = app
        .post(
            &format!("/api/v1/omni/delegations/{id}/revoke"),
            &json!({ "revokedBy": "usr_manager_001", "reason": "Returned early" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["data"]["status"], "revoked");
    assert_eq!(revoked["data"]["revokedBy"], "usr_manager_001");
    assert_eq!(revoked["data"]["revocationReason"], "Returned early");
    let events = app.events_of("delegation", id).await;
    assert_eq!(events[1].event_type, "omni.delegation.revoked");

    let (s, body) = app
        .post(&format!("/api/v1/omni/delegations/{id}/revoke"), &json!({}))
        .await;
    assert_problem(s, &body, 409, "already_revoked");
    assert_eq!(app.events_of("delegation", id).await.len(), 2);

    // Filters use the derived status.
    for (status, want) in [
        ("scheduled", 1),
        ("active", 0),
        ("expired", 1),
        ("revoked", 1),
    ] {
        let (s, list) = app
            .get(&format!("/api/v1/omni/delegations?status={status}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["pagination"]["total"], want, "{status}: {list}");
    }
}

#[tokio::test]
async fn each_invalid_delegation_is_422_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "self",
            json!({ "delegateeId": "usr_manager_001" }),
            "delegateeId",
        ),
        (
            "order",
            json!({ "validFrom": at(2 * DAY), "validTo": at(DAY) }),
            "validTo",
        ),
        (
            "past",
            json!({ "validFrom": at(-3 * DAY), "validTo": at(-DAY) }),
            "validTo",
        ),
        (
            "scope",
            json!({ "scope": ["approvals", "loans"] }),
            "scope[1]",
        ),
        ("empty scope", json!({ "scope": [] }), "scope"),
        (
            "negative",
            json!({ "maxApprovalAmount": { "amount": -1, "currency": "SAR" } }),
            "maxApprovalAmount.amount",
        ),
        (
            "currency",
            json!({ "maxApprovalAmount": { "amount": 1, "currency": "XXY" } }),
            "maxApprovalAmount.currency",
        ),
        (
            "lowercase currency",
            json!({ "maxApprovalAmount": { "amount": 1, "currency": "sar" } }),
            "maxApprovalAmount.currency",
        ),
        ("bad date", json!({ "validTo": "next week" }), "validTo"),
    ];
    for (name, patch, field) in cases {
        let mut body = seed_delegation();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, res) = app.post("/api/v1/omni/delegations", &body).await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], field, "{name}: {res}");
    }
    assert_eq!(app.count("delegations").await, 0);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn authority_held_only_by_delegation_cannot_be_delegated_onward() {
    let app = TestApp::spawn().await;
    grant(&app, &seed_delegation()).await;
    // The deputy has no role of its own: passing on approvals is refused ...
    let mut onward = seed_delegation();
    onward["delegatorId"] = json!("usr_deputy_002");
    onward["delegateeId"] = json!("usr_third_003");
    onward["scope"] = json!(["all"]);
    let (s, body) = app.post("/api/v1/omni/delegations", &onward).await;
    assert_problem(s, &body, 422, "redelegation_forbidden");
    assert_eq!(app.count("delegations").await, 1);
    // ... once the directory gives the deputy authority of its own, it may delegate that.
    app.put(
        "/api/v1/omni/users/usr_deputy_002",
        &json!({ "roles": ["credit_analyst"] }),
    )
    .await;
    let (s, body) = app.post("/api/v1/omni/delegations", &onward).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn list_filters_by_delegator_delegatee_and_scope() {
    let app = TestApp::spawn().await;
    grant(&app, &seed_delegation()).await;
    let mut other = seed_delegation();
    other["delegatorId"] = json!("usr_manager_009");
    other["scope"] = json!(["approvals"]);
    grant(&app, &other).await;
    let total = |body: &Value| body["pagination"]["total"].as_i64().unwrap();
    let (_, l) = app
        .get("/api/v1/omni/delegations?delegatorId=usr_manager_001")
        .await;
    assert_eq!(total(&l), 1);
    let (_, l) = app
        .get("/api/v1/omni/delegations?delegateeId=usr_deputy_002")
        .await;
    assert_eq!(total(&l), 2);
    let (_, l) = app
        .get("/api/v1/omni/delegations?scope=journey_assign")
        .await;
    assert_eq!(total(&l), 1);
    let (_, l) = app.get("/api/v1/omni/delegations?scope=journeys").await;
    assert_eq!(total(&l), 1, "seed 001's word for journey_assign");
    let (_, l) = app.get("/api/v1/omni/delegations?scope=approvals").await;
    assert_eq!(total(&l), 2);
    let (s, body) = app.get("/api/v1/omni/delegations?status=pending").await;
    assert_problem(s, &body, 422, "invalid_query_parameter");
    let (s, body) = app.get("/api/v1/omni/delegations/del_missing").await;
    assert_problem(s, &body, 404, "not_found");
}
