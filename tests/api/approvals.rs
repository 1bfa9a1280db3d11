use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{DAY, TestApp, assert_problem, at, seed_template, wait_until};

/// Seed 001's create-approval body, with `expiresAt` moved into the future.
fn seed_approval(journey: &str) -> Value {
    json!({
        "entityType": "journey",
        "entityId": journey,
        "approvalType": "credit_committee",
        "requestedBy": "usr_rm_001",
        "approvers": [
            { "userId": "usr_credit_001", "role": "primary", "required": true },
            { "userId": "usr_credit_002", "role": "secondary", "required": false }
        ],
        "approvalData": {
            "facilityAmount": { "amount": 2000000, "currency": "SAR" },
            "creditScore": 720,
            "recommendation": "approve"
        },
        "expiresAt": at(3 * DAY)
    })
}

/// A contract approval of `amount` SAR with the given approvers (user, required).
fn contract_approval(amount: i64, approvers: &[(&str, bool)]) -> Value {
    json!({
        "entityType": "contract",
        "entityId": "ctr_001",
        "approvalType": "limit_increase",
        "requestedBy": "usr_rm_001",
        "approvers": approvers.iter().map(|(u, r)| json!({ "userId": u, "required": r })).collect::<Vec<_>>(),
        "amount": { "amount": amount, "currency": "SAR" },
        "expiresAt": at(DAY)
    })
}

async fn request(app: &TestApp, body: &Value) -> String {
    let (s, res) = app.post("/api/v1/omni/approvals", body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    res["data"]["id"].as_str().unwrap().to_owned()
}

async fn decide(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/omni/approvals/{id}/decisions"), &body)
        .await
}

async fn delegate(app: &TestApp, from: &str, to: &str, extra: Value) -> String {
    let mut body = json!({
        "delegatorId": from, "delegateeId": to, "scope": ["approvals"],
        "maxApprovalAmount": { "amount": 500000, "currency": "SAR" },
        "validFrom": at(-DAY), "validTo": at(DAY)
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, res) = app.post("/api/v1/omni/delegations", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    res["data"]["id"].as_str().unwrap().to_owned()
}

async fn types_of(app: &TestApp, approval: &str) -> Vec<String> {
    app.events_of("approval", approval)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[tokio::test]
async fn the_seed_request_is_approved_when_its_required_approver_approves() {
    let app = TestApp::spawn().await;
    let journey = app.seed_journey().await;
    app.put(
        "/api/v1/omni/users/usr_credit_001",
        &json!({ "name": "Sara Al-Harbi", "roles": ["credit_analyst"] }),
    )
    .await;
    let (s, created) = app
        .post("/api/v1/omni/approvals", &seed_approval(&journey))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let a = &created["data"];
    let id = a["id"].as_str().unwrap();
    assert!(id.starts_with("apr_"));
    assert_eq!(a["status"], "requested");
    assert_eq!(a["entityType"], "journey");
    assert_eq!(a["entityId"], journey.as_str());
    assert_eq!(a["approvalType"], "credit_committee");
    assert_eq!(a["requestedBy"], "usr_rm_001");
    assert_eq!(a["approvers"][0]["userName"], "Sara Al-Harbi");
    assert_eq!(a["approvers"][0]["required"], true);
    assert_eq!(a["approvers"][1]["decision"], json!(null));
    assert_eq!(a["approvalData"]["creditScore"], 720);
    assert_eq!(a["amount"], json!({ "amount": 2000000, "currency": "SAR" }));
    assert_eq!(a["decisions"], json!([]));

    let (s, body) = decide(
        &app,
        id,
        json!({ "approverId": "usr_credit_001", "decision": "approve", "comment": "Within appetite" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let a = &body["data"];
    assert_eq!(a["status"], "approved");
    assert_eq!(a["approvers"][0]["decision"], "approve");
    assert_eq!(a["decisions"][0]["approverId"], "usr_credit_001");
    assert_eq!(a["decisions"][0]["approverName"], "Sara Al-Harbi");
    assert_eq!(a["decisions"][0]["onBehalfOf"], json!(null));
    assert_eq!(a["decisions"][0]["comment"], "Within appetite");
    assert!(a["decidedAt"].is_string());

    let (_, got) = app.get(&format!("/api/v1/omni/approvals/{id}")).await;
    assert_eq!(got["data"], body["data"]);
    assert_eq!(
        types_of(&app, id).await,
        ["omni.approval.requested", "omni.approval.approved"]
    );
    // The approval's events are on the journey's and the customer's timeline too.
    let on_customer = app.events_of("customer", "ent_customer_456").await;
    let last = on_customer.last().unwrap();
    assert_eq!(last.event_type, "omni.approval.approved");
    assert_eq!(last.actor_id.as_deref(), Some("usr_credit_001"));
    assert_eq!(last.summary, "Approval granted by Sara Al-Harbi");

    let (s, body) = decide(
        &app,
        id,
        json!({ "approverId": "usr_credit_002", "decision": "reject" }),
    )
    .await;
    assert_problem(s, &body, 409, "approval_not_open");
    assert_eq!(body["currentStatus"], "approved");
}

#[tokio::test]
async fn one_required_rejection_rejects_and_with_none_required_the_first_decides() {
    let app = TestApp::spawn().await;
    let id = request(
        &app,
        &contract_approval(1, &[("usr_a", true), ("usr_b", true)]),
    )
    .await;
    let (_, body) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    assert_eq!(body["data"]["status"], "requested");
    let (_, body) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_b", "decision": "reject" }),
    )
    .await;
    assert_eq!(body["data"]["status"], "rejected");
    assert_eq!(
        types_of(&app, &id).await,
        [
            "omni.approval.requested",
            "omni.approval.decision_recorded",
            "omni.approval.rejected"
        ]
    );

    let id = request(
        &app,
        &contract_approval(1, &[("usr_a", false), ("usr_b", false)]),
    )
    .await;
    let (_, body) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_b", "decision": "approve" }),
    )
    .await;
    assert_eq!(body["data"]["status"], "approved");
}

#[tokio::test]
async fn maker_checker_and_slot_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let mut body = contract_approval(1, &[("usr_a", true)]);
    body["approvers"] = json!([{ "userId": "usr_rm_001", "required": true }]);
    let (s, res) = app.post("/api/v1/omni/approvals", &body).await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "approvers[0].userId");
    assert_eq!(app.count("approvals").await, 0);

    let id = request(
        &app,
        &contract_approval(1, &[("usr_a", true), ("usr_b", true)]),
    )
    .await;
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_rm_001", "decision": "approve" }),
    )
    .await;
    assert_problem(s, &res, 403, "maker_checker_violation");
    // Not even as a deputy holding a valid delegation.
    delegate(&app, "usr_a", "usr_rm_001", json!({})).await;
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_rm_001", "decision": "approve", "onBehalfOf": "usr_a" }),
    )
    .await;
    assert_problem(s, &res, 403, "maker_checker_violation");
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_z", "decision": "approve" }),
    )
    .await;
    assert_problem(s, &res, 403, "not_an_approver");
    assert_eq!(app.count("approval_decisions").await, 0);

    let (s, _) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_a", "decision": "reject" }),
    )
    .await;
    assert_problem(s, &res, 409, "already_decided");
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_a", "decision": "maybe" }),
    )
    .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(app.count("approval_decisions").await, 1);
    let (s, res) = decide(
        &app,
        "apr_missing",
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    assert_problem(s, &res, 404, "not_found");
}

#[tokio::test]
async fn a_deputy_decides_only_within_an_active_delegation_of_enough_authority() {
    let app = TestApp::spawn().await;
    let deputy = |id: &str| json!({ "approverId": "usr_deputy", "decision": "approve", "onBehalfOf": "usr_boss", "comment": id });
    let on = |amount| contract_approval(amount, &[("usr_boss", true)]);

    // No delegation at all.
    let id = request(&app, &on(400_000)).await;
    let (s, res) = decide(&app, &id, deputy("none")).await;
    assert_problem(s, &res, 403, "no_delegation");

    // Not yet valid; another deputy's delegation of the wrong scope.
    delegate(
        &app,
        "usr_boss",
        "usr_deputy",
        json!({ "validFrom": at(DAY), "validTo": at(2 * DAY) }),
    )
    .await;
    let (s, res) = decide(&app, &id, deputy("early")).await;
    assert_problem(s, &res, 403, "delegation_not_yet_active");
    delegate(
        &app,
        "usr_boss",
        "usr_other",
        json!({ "scope": ["journey_assign"] }),
    )
    .await;
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_other", "decision": "approve", "onBehalfOf": "usr_boss" }),
    )
    .await;
    assert_problem(s, &res, 403, "delegation_scope_excluded");

    // An approvals delegation up to 500,000 SAR: over the limit, other currency, within.
    let del = delegate(&app, "usr_boss", "usr_deputy", json!({})).await;
    let over = request(&app, &on(2_000_000)).await;
    let (s, res) = decide(&app, &over, deputy("over")).await;
    assert_problem(s, &res, 403, "delegation_limit_exceeded");
    let mut usd = on(1_000);
    usd["amount"]["currency"] = json!("USD");
    let usd = request(&app, &usd).await;
    let (s, res) = decide(&app, &usd, deputy("usd")).await;
    assert_problem(s, &res, 403, "delegation_currency_mismatch");
    assert_eq!(app.count("approval_decisions").await, 0);

    let (s, res) = decide(&app, &id, deputy("within")).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let a = &res["data"];
    assert_eq!(a["status"], "approved");
    assert_eq!(a["approvers"][0]["decision"], "approve");
    assert_eq!(a["decisions"][0]["approverId"], "usr_deputy");
    assert_eq!(a["decisions"][0]["onBehalfOf"], "usr_boss");
    assert_eq!(a["decisions"][0]["delegationId"], del.as_str());
    let approved = app.events_of("approval", &id).await;
    let meta: Value = serde_json::from_str(&approved[1].metadata).unwrap();
    assert_eq!(meta["decidedBy"], "usr_deputy");
    assert_eq!(meta["onBehalfOf"], "usr_boss");

    // After revocation, the deputy's authority is gone at once.
    let next = request(&app, &on(1_000)).await;
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/delegations/{del}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, res) = decide(&app, &next, deputy("revoked")).await;
    assert_problem(s, &res, 403, "delegation_revoked");
}

#[tokio::test]
async fn after_valid_to_a_deputy_has_no_authority() {
    let app = TestApp::spawn().await;
    let del = delegate(
        &app,
        "usr_boss",
        "usr_deputy",
        json!({ "validFrom": at(-1000), "validTo": app.at(3_600_000) }),
    )
    .await;
    let id = request(&app, &contract_approval(1, &[("usr_boss", true)])).await;
    app.advance(std::time::Duration::from_secs(2 * 3600));
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_deputy", "decision": "approve", "onBehalfOf": "usr_boss" }),
    )
    .await;
    assert_problem(s, &res, 403, "delegation_expired");
    // Nor can an expired delegation be revoked: it has already ended.
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/delegations/{del}/revoke"),
            &json!({}),
        )
        .await;
    assert_problem(s, &res, 409, "delegation_expired");
}

#[tokio::test]
async fn past_expires_at_a_request_reads_expired_at_once_and_the_sweep_records_it_once() {
    let app = TestApp::spawn_with(|c| c.approval_sweep_secs = 3600).await;
    let mut body = contract_approval(1, &[("usr_a", true)]);
    body["expiresAt"] = json!(app.at(3_600_000));
    let id = request(&app, &body).await;
    app.advance_past(body["expiresAt"].as_str().unwrap());
    let (_, got) = app.get(&format!("/api/v1/omni/approvals/{id}")).await;
    assert_eq!(got["data"]["status"], "expired", "read before any sweep");
    let (_, list) = app.get("/api/v1/omni/approvals?status=expired").await;
    assert_eq!(list["pagination"]["total"], 1);
    let (_, list) = app.get("/api/v1/omni/approvals?status=requested").await;
    assert_eq!(list["pagination"]["total"], 0);
    let (s, res) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    assert_problem(s, &res, 409, "approval_not_open");
    assert_eq!(res["currentStatus"], "expired");

    // Sweeps by this process and by a fresh one (as after a restart) record the expiry once.
    let state = app.state();
    assert_eq!(omnirail::approvals::sweep_expired(&state).await.unwrap(), 1);
    let restarted = app.state();
    assert_eq!(
        omnirail::approvals::sweep_expired(&restarted)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        types_of(&app, &id).await,
        ["omni.approval.requested", "omni.approval.expired"]
    );
    let (_, got) = app.get(&format!("/api/v1/omni/approvals/{id}")).await;
    assert_eq!(got["data"]["status"], "expired");
    assert!(got["data"]["decidedAt"].is_string());
}

#[tokio::test]
async fn the_background_sweep_closes_expired_requests() {
    let app = TestApp::spawn_with(|c| c.approval_sweep_secs = 1).await;
    let mut body = contract_approval(1, &[("usr_a", true)]);
    body["expiresAt"] = json!(app.at(3_600_000));
    let id = request(&app, &body).await;
    app.advance_past(body["expiresAt"].as_str().unwrap());
    let types = wait_until("the sweep to record the expiry", || async {
        let types = types_of(&app, &id).await;
        (types.len() >= 2).then_some(types)
    })
    .await;
    assert_eq!(types, ["omni.approval.requested", "omni.approval.expired"]);
}

#[tokio::test]
async fn racing_approvers_on_the_last_slot_make_exactly_one_final_transition() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        // Two required approvers deciding at once: both decisions land, one closes the request.
        let id = request(
            &app,
            &contract_approval(1, &[("usr_a", true), ("usr_b", true)]),
        )
        .await;
        let (a, b) = tokio::join!(
            decide(
                &app,
                &id,
                json!({ "approverId": "usr_a", "decision": "approve" })
            ),
            decide(
                &app,
                &id,
                json!({ "approverId": "usr_b", "decision": "approve" })
            ),
        );
        assert_eq!(
            (a.0, b.0),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{round}: {a:?} {b:?}"
        );
        let types = types_of(&app, &id).await;
        assert_eq!(
            types
                .iter()
                .filter(|t| *t == "omni.approval.approved")
                .count(),
            1,
            "{types:?}"
        );
        let (_, got) = app.get(&format!("/api/v1/omni/approvals/{id}")).await;
        assert_eq!(got["data"]["status"], "approved");

        // With none required, the first decision decides and the other is refused.
        let id = request(
            &app,
            &contract_approval(1, &[("usr_a", false), ("usr_b", false)]),
        )
        .await;
        let (a, b) = tokio::join!(
            decide(
                &app,
                &id,
                json!({ "approverId": "usr_a", "decision": "approve" })
            ),
            decide(
                &app,
                &id,
                json!({ "approverId": "usr_b", "decision": "reject" })
            ),
        );
        let mut statuses = [a.0.as_u16(), b.0.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
        let finals = types_of(&app, &id)
            .await
            .into_iter()
            .filter(|t| t == "omni.approval.approved" || t == "omni.approval.rejected")
            .count();
        assert_eq!(finals, 1);
    }
}

#[tokio::test]
async fn list_filters_by_status_approver_requester_and_entity_type() {
    let app = TestApp::spawn().await;
    let journey = app.seed_journey().await;
    request(&app, &seed_approval(&journey)).await;
    let closed = request(&app, &contract_approval(1, &[("usr_a", true)])).await;
    decide(
        &app,
        &closed,
        json!({ "approverId": "usr_a", "decision": "reject" }),
    )
    .await;
    let total = |b: &Value| b["pagination"]["total"].as_i64().unwrap();
    let (_, l) = app.get("/api/v1/omni/approvals").await;
    assert_eq!(total(&l), 2);
    assert_eq!(l["data"][0]["id"], closed.as_str(), "newest first");
    assert_eq!(l["data"][0]["decisions"][0]["decision"], "reject");
    let (_, l) = app.get("/api/v1/omni/approvals?status=requested").await;
    assert_eq!(total(&l), 1);
    let (_, l) = app.get("/api/v1/omni/approvals?status=rejected").await;
    assert_eq!(total(&l), 1);
    let (_, l) = app
        .get("/api/v1/omni/approvals?approverId=usr_credit_002")
        .await;
    assert_eq!(total(&l), 1);
    let (_, l) = app
        .get("/api/v1/omni/approvals?requesterId=usr_rm_001")
        .await;
    assert_eq!(total(&l), 2);
    let (_, l) = app.get("/api/v1/omni/approvals?entityType=contract").await;
    assert_eq!(total(&l), 1);
    let (s, b) = app.get("/api/v1/omni/approvals?status=pending").await;
    assert_problem(s, &b, 422, "invalid_query_parameter");
}

#[tokio::test]
async fn invalid_requests_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut past = contract_approval(1, &[("usr_a", true)]);
    past["expiresAt"] = json!(at(-DAY));
    let mut twice = contract_approval(1, &[("usr_a", true), ("usr_a", false)]);
    twice["approvalData"] = json!({ "facilityAmount": { "amount": "2m", "currency": "SAR" } });
    let none = contract_approval(1, &[]);
    let mut unknown_journey = contract_approval(1, &[("usr_a", true)]);
    unknown_journey["entityType"] = json!("journey");
    unknown_journey["entityId"] = json!("jrn_missing");
    for (body, code, field) in [
        (&past, "validation_failed", "expiresAt"),
        (&twice, "validation_failed", "approvers[1].userId"),
        (&none, "validation_failed", "approvers"),
        (&unknown_journey, "unknown_entity", ""),
    ] {
        let (s, res) = app.post("/api/v1/omni/approvals", body).await;
        assert_problem(s, &res, 422, code);
        if !field.is_empty() {
            assert_eq!(res["errors"][0]["field"], field, "{res}");
        }
    }
    assert_eq!(app.count("approvals").await, 0);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn another_tenants_approval_is_not_found() {
    let app = TestApp::spawn().await;
    let id = request(&app, &contract_approval(1, &[("usr_a", true)])).await;
    let other = app.other_tenant_key().await;
    let (s, body) = crate::helpers::send(
        app.client
            .post(app.url(&format!("/api/v1/omni/approvals/{id}/decisions")))
            .header("x-api-key", other)
            .json(&json!({ "approverId": "usr_a", "decision": "approve" })),
    )
    .await;
    assert_problem(s, &body, 404, "not_found");
}

/// A template whose second step is approved by two named approvers.
fn committee_template() -> Value {
    json!({
        "id": "tmpl_committee",
        "name": "Facility",
        "steps": [
            { "id": "step_docs", "name": "Documents", "type": "document_upload", "order": 1 },
            { "id": "step_committee", "name": "Credit Committee", "type": "approval", "order": 2,
              "approvers": ["usr_a", "usr_b"], "timeoutHours": 72 },
            { "id": "step_sign", "name": "Signature", "type": "signature", "order": 3 }
        ]
    })
}

async fn committee_journey(app: &TestApp) -> (String, String) {
    let (s, b) = app
        .post("/api/v1/omni/templates", &committee_template())
        .await;
    assert!(s == StatusCode::CREATED || s == StatusCode::CONFLICT, "{b}");
    let (s, j) = app
        .post(
            "/api/v1/omni/journeys",
            &json!({ "templateId": "tmpl_committee", "customerId": "ent_9",
                     "assigneeId": "usr_rm_001",
                     "context": { "requestedAmount": { "amount": 750000, "currency": "SAR" } } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let id = j["data"]["id"].as_str().unwrap().to_owned();
    let (s, j) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_docs", "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let approval = j["data"]["currentStep"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, approval)
}

#[tokio::test]
async fn an_approval_step_drives_its_journey_end_to_end() {
    let app = TestApp::spawn().await;
    let (journey, approval) = committee_journey(&app).await;
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    let a = &a["data"];
    assert_eq!(a["status"], "requested");
    assert_eq!(a["entityType"], "journey");
    assert_eq!(a["entityId"], journey.as_str());
    assert_eq!(a["journeyStepId"], "step_committee");
    assert_eq!(a["requestedBy"], "usr_rm_001");
    assert_eq!(a["approvers"].as_array().unwrap().len(), 2);
    assert_eq!(a["approvers"][0]["required"], true);
    assert_eq!(a["amount"], json!({ "amount": 750000, "currency": "SAR" }));
    let expires = omnirail::time::parse_rfc3339(a["expiresAt"].as_str().unwrap()).unwrap();
    let created = omnirail::time::parse_rfc3339(a["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, 72 * 3_600_000, "the step's timeoutHours");

    // While the request is open, the step cannot be advanced by hand.
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/advance"),
            &json!({ "completedStepId": "step_committee" }),
        )
        .await;
    assert_problem(s, &res, 409, "approval_pending");
    assert_eq!(res["approvalId"], approval.as_str());

    decide(
        &app,
        &approval,
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(
        j["data"]["currentStep"]["id"], "step_committee",
        "one of two"
    );
    let (s, res) = decide(
        &app,
        &approval,
        json!({ "approverId": "usr_b", "decision": "approve" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    let j = &j["data"];
    assert_eq!(j["currentStep"]["id"], "step_sign");
    assert_eq!(j["completedSteps"], 2);
    let attempt = &j["steps"][1]["history"][0];
    assert_eq!(attempt["outcome"], "passed");
    assert_eq!(attempt["actorId"], "usr_b", "the approver is the actor");
    assert_eq!(attempt["data"]["approvalId"], approval.as_str());
    let events = app.events_of("journey", &journey).await;
    let advanced = events
        .iter()
        .rev()
        .find(|e| e.event_type == "omni.journey.advanced")
        .unwrap();
    assert_eq!(
        advanced.summary,
        "Journey advanced: Credit Committee approved"
    );
    assert_eq!(advanced.actor_id.as_deref(), Some("usr_b"));
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/advance"),
            &json!({ "completedStepId": "step_sign" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, done) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
}

#[tokio::test]
async fn a_rejected_approval_fails_its_step_which_then_cannot_be_passed_by_hand() {
    let app = TestApp::spawn().await;
    let (journey, approval) = committee_journey(&app).await;
    let (s, _) = decide(
        &app,
        &approval,
        json!({ "approverId": "usr_b", "decision": "reject", "comment": "Leverage too high" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(j["data"]["currentStep"]["id"], "step_committee");
    assert_eq!(j["data"]["currentStep"]["status"], "failed");
    assert_eq!(j["data"]["currentStep"]["approvalId"], approval.as_str());
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/advance"),
            &json!({ "completedStepId": "step_committee", "stepOutcome": "passed" }),
        )
        .await;
    assert_problem(s, &res, 409, "approval_required");
}

#[tokio::test]
async fn reaching_an_approval_step_nobody_can_approve_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_kyc" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let events = app.event_count().await;
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_docs", "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_problem(s, &res, 409, "no_eligible_approvers");
    assert_eq!(res["stepId"], "step_credit");
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.count("approvals").await, 0);
    // A journey that would start on such a step is not created either.
    let mut first = crate::helpers::seed_template();
    first["id"] = json!("tmpl_credit_first");
    first["steps"] = json!([{ "id": "step_credit", "name": "Credit Assessment",
        "type": "approval", "order": 1, "approvalRoleRequired": "credit_analyst" }]);
    let (s, t) = app.post("/api/v1/omni/templates", &first).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let mut body = crate::helpers::seed_journey();
    body["templateId"] = json!("tmpl_credit_first");
    let journeys = app.count("journeys").await;
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_problem(s, &res, 409, "no_eligible_approvers");
    assert_eq!(app.count("journeys").await, journeys);
    assert_eq!(
        app.event_count().await,
        events + 1,
        "the template's event only"
    );
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(j["data"]["currentStep"]["id"], "step_docs");

    // The role's holders are the approvers; the first decision decides.
    app.seed_credit_analyst().await;
    let (s, j) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_docs", "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let approval = j["data"]["currentStep"]["approvalId"].as_str().unwrap();
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["approvers"][0]["userId"], "usr_credit_001");
    assert_eq!(a["data"]["approvers"][0]["required"], false);
    assert_eq!(
        a["data"]["expiresAt"].is_null(),
        seed_template()["steps"][2]["timeoutHours"].is_null()
    );
}

#[tokio::test]
async fn reassignment_needs_the_assignee_a_manager_or_their_deputy() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await; // assigned to usr_rm_001
    let assign =
        |to: &str, by: &str| json!({ "assigneeId": to, "assignedBy": by, "reason": "cover" });
    let path = format!("/api/v1/omni/journeys/{id}/assign");

    let (s, res) = app.post(&path, &assign("usr_x", "usr_x")).await;
    assert_problem(s, &res, 403, "assignment_not_authorized");
    assert_eq!(res["reason"], "no_delegation");
    // A deputy under an approvals-only delegation may not.
    delegate(&app, "usr_rm_001", "usr_dep", json!({})).await;
    let (s, res) = app.post(&path, &assign("usr_dep", "usr_dep")).await;
    assert_problem(s, &res, 403, "assignment_not_authorized");
    assert_eq!(res["reason"], "delegation_scope_excluded");
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(
        j["data"]["assigneeId"], "usr_rm_001",
        "refusals change nothing"
    );

    // Under journey_assign, the deputy may.
    delegate(
        &app,
        "usr_rm_001",
        "usr_dep",
        json!({ "scope": ["journey_assign"] }),
    )
    .await;
    let (s, res) = app.post(&path, &assign("usr_dep", "usr_dep")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    // The current assignee may.
    let (s, res) = app.post(&path, &assign("usr_rm_002", "usr_dep")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    // A manager may.
    app.put(
        "/api/v1/omni/users/usr_mgr",
        &json!({ "roles": ["manager"] }),
    )
    .await;
    let (s, res) = app.post(&path, &assign("usr_rm_001", "usr_mgr")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    // Without assignedBy there is no one to check (an integration acting for the bank).
    let (s, _) = app
        .post(&path, &json!({ "assigneeId": "usr_rm_003" }))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn only_a_manager_assigns_a_journey_nobody_holds() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let mut body = crate::helpers::seed_journey();
    body.as_object_mut().unwrap().remove("assigneeId");
    let (s, j) = app.post("/api/v1/omni/journeys", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let path = format!(
        "/api/v1/omni/journeys/{}/assign",
        j["data"]["id"].as_str().unwrap()
    );
    let (s, res) = app
        .post(
            &path,
            &json!({ "assigneeId": "usr_rm_001", "assignedBy": "usr_rm_001" }),
        )
        .await;
    assert_problem(s, &res, 403, "assignment_not_authorized");
    app.put(
        "/api/v1/omni/users/usr_mgr",
        &json!({ "roles": ["manager"] }),
    )
    .await;
    let (s, res) = app
        .post(
            &path,
            &json!({ "assigneeId": "usr_rm_001", "assignedBy": "usr_mgr" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
}

#[tokio::test]
async fn an_expired_step_approval_fails_its_step_once() {
    let app = TestApp::spawn_with(|c| c.approval_sweep_secs = 3600).await;
    let (journey, approval) = committee_journey(&app).await;
    // The step's request expires after its timeoutHours: the clock moves past that.
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    app.advance_past(a["data"]["expiresAt"].as_str().unwrap());
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/advance"),
            &json!({ "completedStepId": "step_committee" }),
        )
        .await;
    assert_problem(s, &res, 409, "approval_required");
    let state = app.state();
    assert_eq!(omnirail::approvals::sweep_expired(&state).await.unwrap(), 1);
    assert_eq!(omnirail::approvals::sweep_expired(&state).await.unwrap(), 0);
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(j["data"]["currentStep"]["id"], "step_committee");
    assert_eq!(j["data"]["currentStep"]["status"], "failed");
    let attempt = &j["data"]["steps"][1]["history"][0];
    assert_eq!(attempt["outcome"], "failed");
    assert_eq!(attempt["data"]["approvalStatus"], "expired");
    let failed: Vec<_> = app
        .events_of("journey", &journey)
        .await
        .into_iter()
        .filter(|e| e.summary == "Journey step failed: Credit Committee (approval expired)")
        .collect();
    assert_eq!(failed.len(), 1);
}

async fn read_approval(app: &TestApp, id: &str) -> Value {
    let (s, res) = app.get(&format!("/api/v1/omni/approvals/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    res
}

/// A request's creation and each decision answer the request as it now stands, built from
/// what they wrote: it must be exactly what reading the request answers afterwards (status,
/// times, approvers, every decision with its names), on creation, for a decision that leaves
/// it open and for the one that closes it, by a deputy.
#[tokio::test]
async fn a_requests_answers_are_the_request_as_read_afterwards() {
    let app = TestApp::spawn().await;
    for (id, name) in [
        ("usr_boss", "Bea Boss"),
        ("usr_deputy", "Dan Deputy"),
        ("usr_second", "Sam Second"),
        ("usr_rm_001", "Rita Manager"),
    ] {
        let (s, res) = app
            .put(
                &format!("/api/v1/omni/users/{id}"),
                &json!({ "name": name }),
            )
            .await;
        assert!(s.is_success(), "{res}");
    }
    delegate(&app, "usr_boss", "usr_deputy", json!({})).await;
    let (s, created) = app
        .post(
            "/api/v1/omni/approvals",
            &contract_approval(1_000, &[("usr_second", true), ("usr_boss", true)]),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["approvers"][1]["userName"], "Bea Boss");
    assert_eq!(created, read_approval(&app, &id).await);
    app.advance(std::time::Duration::from_secs(60));
    let (s, open) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_second", "decision": "approve", "comment": "fine" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{open}");
    assert_eq!(open["data"]["status"], "requested");
    assert_eq!(open, read_approval(&app, &id).await);
    app.advance(std::time::Duration::from_secs(60));
    let (s, closed) = decide(
        &app,
        &id,
        json!({ "approverId": "usr_deputy", "decision": "approve", "onBehalfOf": "usr_boss" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{closed}");
    let a = &closed["data"];
    assert_eq!(a["status"], "approved");
    assert_eq!(a["decisions"][1]["onBehalfOfName"], "Bea Boss", "{a}");
    assert_ne!(a["updatedAt"], open["data"]["updatedAt"]);
    assert_eq!(a["decidedAt"], a["updatedAt"]);
    assert_eq!(closed, read_approval(&app, &id).await);
}

#[tokio::test]
async fn decidable_by_lists_what_a_user_can_decide_now_in_person_or_as_a_deputy() {
    let app = TestApp::spawn().await;
    let mine = request(
        &app,
        &contract_approval(1, &[("usr_a", true), ("usr_b", true)]),
    )
    .await;
    let bosss = request(&app, &contract_approval(2, &[("usr_boss", true)])).await;
    let decided = request(
        &app,
        &contract_approval(3, &[("usr_a", true), ("usr_b", true)]),
    )
    .await;
    let (s, b) = decide(
        &app,
        &decided,
        json!({ "approverId": "usr_a", "decision": "approve" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let closed = request(&app, &contract_approval(4, &[("usr_a", true)])).await;
    decide(
        &app,
        &closed,
        json!({ "approverId": "usr_a", "decision": "reject" }),
    )
    .await;
    let mut by_a_for_b = contract_approval(6, &[("usr_b", true)]);
    by_a_for_b["requestedBy"] = json!("usr_a");
    request(&app, &by_a_for_b).await;

    let ids = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, l) = app.get("/api/v1/omni/approvals?decidableBy=usr_a").await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(
        ids(&l),
        vec![mine.clone()],
        "decided, closed and own requests are left out"
    );

    // A delegation of approvals from the boss puts the boss's request on the deputy's list; one
    // from usr_b brings usr_b's open place, but not on the request usr_a made (maker-checker).
    delegate(&app, "usr_boss", "usr_a", json!({})).await;
    delegate(&app, "usr_b", "usr_a", json!({})).await;
    let (_, l) = app.get("/api/v1/omni/approvals?decidableBy=usr_a").await;
    assert_eq!(ids(&l), vec![decided.clone(), bosss.clone(), mine.clone()]);
    assert_eq!(l["pagination"]["total"], 3);
    // A delegation of other authority does not.
    delegate(
        &app,
        "usr_b",
        "usr_c",
        json!({ "scope": ["journey_assign"] }),
    )
    .await;
    let (_, l) = app.get("/api/v1/omni/approvals?decidableBy=usr_c").await;
    assert_eq!(ids(&l), Vec::<String>::new());
    // Nor does one that has not started yet.
    delegate(
        &app,
        "usr_b",
        "usr_d",
        json!({ "validFrom": at(DAY), "validTo": at(2 * DAY) }),
    )
    .await;
    let (_, l) = app.get("/api/v1/omni/approvals?decidableBy=usr_d").await;
    assert_eq!(ids(&l), Vec::<String>::new());
    // Once past its expiry a request is no longer decidable.
    app.advance(std::time::Duration::from_secs(2 * 86_400));
    let (_, l) = app.get("/api/v1/omni/approvals?decidableBy=usr_a").await;
    assert_eq!(l["pagination"]["total"], 0, "{l}");
}
