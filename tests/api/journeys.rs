use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, seed_journey, seed_template};

async fn advance(app: &TestApp, id: &str, step: &str, outcome: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/omni/journeys/{id}/advance"),
        &json!({ "completedStepId": step, "stepOutcome": outcome, "advancedBy": "usr_rm_001" }),
    )
    .await
}

#[tokio::test]
async fn seed_journey_is_created_with_the_seed_response_fields() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let (status, body) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let j = &body["data"];
    assert!(j["id"].as_str().unwrap().starts_with("jrn_"));
    assert_eq!(j["status"], "created");
    assert_eq!(j["templateId"], "tmpl_onboarding_sme");
    assert_eq!(j["customerId"], "ent_customer_456");
    assert_eq!(j["channel"], "web");
    assert_eq!(j["currentStepIndex"], 0);
    assert_eq!(
        j["currentStep"],
        json!({ "id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "status": "pending" })
    );
    assert_eq!(j["totalSteps"], 3);
    assert_eq!(j["completedSteps"], 0);
    assert_eq!(j["assigneeId"], "usr_rm_001");
    assert_eq!(j["priority"], "normal");
    assert_eq!(j["dueAt"], "2024-01-25T17:00:00Z");
    assert_eq!(j["templateVersion"], 1);
    assert_eq!(j["context"]["requestedAmount"]["currency"], "SAR");
    assert!(j["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(j["createdAt"], j["updatedAt"]);
}

#[tokio::test]
async fn journey_runs_from_created_to_completed_and_records_each_event() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;

    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_kyc", "stepOutcome": "passed",
                     "stepData": { "kycStatus": "verified", "kycReference": "kyc_ref_001" }, "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "in_progress");
    assert_eq!(body["data"]["currentStepIndex"], 1);
    assert_eq!(body["data"]["currentStep"]["id"], "step_docs");
    assert_eq!(body["data"]["completedSteps"], 1);

    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_rm_002", "assigneeType": "user", "reason": "Original RM on leave", "notifyAssignee": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "assigned");
    assert_eq!(body["data"]["assigneeId"], "usr_rm_002");

    // Advancing an assigned journey resumes it.
    let (s, body) = advance(&app, &id, "step_docs", "passed").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "in_progress");
    // The approval step passes by its approval.
    assert!(
        body["data"]["currentStep"]["approvalId"].is_string(),
        "{body}"
    );
    app.approve_current_step(&id).await;
    let (_, body) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(body["data"]["currentStep"], Value::Null);
    assert_eq!(body["data"]["currentStepIndex"], 3);

    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/complete"),
            &json!({ "completionNotes": "All steps completed, contract activated", "completedBy": "usr_rm_001", "outcome": "success" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["outcome"], "success");
    assert_eq!(
        body["data"]["completionNotes"],
        "All steps completed, contract activated"
    );

    let types: Vec<String> = app
        .events_of("journey", &id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "omni.journey.created",
            "omni.journey.advanced",
            "omni.journey.assigned",
            "omni.journey.advanced",
            "omni.approval.requested",
            "omni.approval.approved",
            "omni.journey.advanced",
            "omni.journey.completed"
        ]
    );
    // The same events concern the customer, with their actor, channel and a human summary.
    let customer = app.events_of("customer", "ent_customer_456").await;
    assert_eq!(customer.len(), 8);
    assert_eq!(customer[1].actor_id.as_deref(), Some("usr_rm_001"));
    assert_eq!(customer[1].channel.as_deref(), Some("web"));
    assert_eq!(
        customer[1].summary,
        "Journey advanced: KYC Verification completed"
    );
    let meta: Value = serde_json::from_str(&customer[1].metadata).unwrap();
    assert_eq!(meta["stepId"], "step_kyc");
    assert_eq!(meta["outcome"], "passed");
    assert_eq!(meta["journeyId"], id.as_str());
    assert!(customer.iter().all(|e| e.id.starts_with("evt_")));
}

#[tokio::test]
async fn get_shows_context_and_each_steps_history() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc", "failed").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_kyc", "stepData": { "kycStatus": "verified" }, "advancedBy": "usr_rm_007" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let j = &body["data"];
    assert_eq!(j["context"]["productType"], "murabaha");
    let steps = j["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["status"], "passed");
    let history = steps[0]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["outcome"], "failed");
    assert_eq!(history[0]["actorId"], "usr_rm_001");
    assert_eq!(history[1]["outcome"], "passed");
    assert_eq!(history[1]["data"]["kycStatus"], "verified");
    assert_eq!(history[1]["actorId"], "usr_rm_007");
    assert_eq!(steps[1]["status"], "pending");
    assert_eq!(steps[1]["history"], json!([]));
}

#[tokio::test]
async fn a_failed_step_stays_current_and_can_be_retried() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (s, body) = advance(&app, &id, "step_kyc", "failed").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "in_progress");
    assert_eq!(body["data"]["currentStep"]["id"], "step_kyc");
    assert_eq!(body["data"]["currentStep"]["status"], "failed");
    assert_eq!(body["data"]["completedSteps"], 0);
    let (s, body) = advance(&app, &id, "step_kyc", "passed").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["data"]["currentStep"]["id"], "step_docs");
}

#[tokio::test]
async fn optional_steps_can_be_skipped_but_required_ones_cannot() {
    let app = TestApp::spawn().await;
    let mut t = seed_template();
    t["id"] = json!("tmpl_optional");
    t["steps"][1]["required"] = json!(false);
    app.seed_credit_analyst().await;
    let (s, _) = app.post("/api/v1/omni/templates", &t).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, j) = app
        .post(
            "/api/v1/omni/journeys",
            &json!({ "templateId": "tmpl_optional", "customerId": "ent_1" }),
        )
        .await;
    let id = j["data"]["id"].as_str().unwrap().to_owned();

    let before = app.event_count().await;
    let (s, body) = advance(&app, &id, "step_kyc", "skipped").await;
    assert_problem(s, &body, 422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "stepOutcome");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused advance records nothing"
    );

    advance(&app, &id, "step_kyc", "passed").await;
    let (s, body) = advance(&app, &id, "step_docs", "skipped").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["currentStep"]["id"], "step_credit");
    assert_eq!(body["data"]["completedSteps"], 2);
}

#[tokio::test]
async fn complete_with_required_steps_pending_is_409_naming_them() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc", "passed").await;
    let (s, body) = app
        .post(&format!("/api/v1/omni/journeys/{id}/complete"), &json!({}))
        .await;
    assert_problem(s, &body, 409, "required_steps_pending");
    assert_eq!(body["pendingSteps"], json!(["step_docs", "step_credit"]));
    let (_, after) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(after["data"]["status"], "in_progress");
}

#[tokio::test]
async fn complete_from_created_is_an_invalid_transition() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (s, body) = app
        .post(&format!("/api/v1/omni/journeys/{id}/complete"), &json!({}))
        .await;
    assert_problem(s, &body, 409, "invalid_transition");
    assert_eq!(body["currentStatus"], "created");
}

#[tokio::test]
async fn nothing_changes_a_cancelled_or_completed_journey() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/cancel"),
            &json!({ "cancellationReason": "Customer withdrew application", "cancelledBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(
        body["data"]["cancellationReason"],
        "Customer withdrew application"
    );
    // Nothing of a cancelled journey is pending any more (issue 20).
    assert_eq!(body["data"]["currentStep"]["id"], "step_kyc");
    assert_eq!(body["data"]["currentStep"]["status"], "cancelled");
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    let statuses: Vec<&str> = j["data"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cancelled", "cancelled", "cancelled"]);

    let before = app.event_count().await;
    let attempts = [
        ("advance", json!({ "completedStepId": "step_kyc" })),
        ("assign", json!({ "assigneeId": "usr_x" })),
        ("complete", json!({})),
        ("cancel", json!({})),
    ];
    for (action, body) in &attempts {
        let (s, res) = app
            .post(&format!("/api/v1/omni/journeys/{id}/{action}"), body)
            .await;
        assert_problem(s, &res, 409, "invalid_transition");
        assert_eq!(res["currentStatus"], "cancelled", "{action}");
    }

    // Completed, too.
    app.seed_credit_analyst().await;
    let id2 = app.seed_journey().await;
    app.pass_steps(&id2, &["step_kyc", "step_docs", "step_credit"])
        .await;
    let (s, _) = app
        .post(&format!("/api/v1/omni/journeys/{id2}/complete"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let before2 = app.event_count().await;
    for (action, body) in &attempts {
        let (s, res) = app
            .post(&format!("/api/v1/omni/journeys/{id2}/{action}"), body)
            .await;
        assert_problem(s, &res, 409, "invalid_transition");
        assert_eq!(res["currentStatus"], "completed", "{action}");
    }
    assert_eq!(app.event_count().await, before2);
    assert!(before2 > before);
}

#[tokio::test]
async fn advancing_a_step_that_is_not_current_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (_, before) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    let events = app.event_count().await;
    let (s, body) = advance(&app, &id, "step_docs", "passed").await;
    assert_problem(s, &body, 409, "step_not_current");
    assert_eq!(body["currentStepId"], "step_kyc");
    let (_, after) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(before, after);
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn assigning_a_created_journey_keeps_it_created_and_teams_are_accepted() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "team_sme_desk", "assigneeType": "team" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "created");
    assert_eq!(body["data"]["assigneeType"], "team");
    assert_eq!(body["data"]["assigneeId"], "team_sme_desk");
}

#[tokio::test]
async fn fifty_parallel_advances_of_one_step_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let req = app
            .req(
                reqwest::Method::POST,
                &format!("/api/v1/omni/journeys/{id}/advance"),
            )
            .json(&json!({ "completedStepId": "step_kyc", "stepOutcome": "passed" }));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    let mut ok = 0;
    let mut conflict = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => conflict += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, conflict), (1, 49));
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(j["data"]["completedSteps"], 1);
    assert_eq!(
        j["data"]["steps"][0]["history"].as_array().unwrap().len(),
        1
    );
    let advanced = app
        .events_of("journey", &id)
        .await
        .iter()
        .filter(|e| e.event_type == "omni.journey.advanced")
        .count();
    assert_eq!(advanced, 1);
}

#[tokio::test]
async fn list_filters_and_paginates() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    for i in 0..5 {
        let mut body = seed_journey();
        body["customerId"] = json!(format!("ent_{}", i % 2));
        body["assigneeId"] = json!(format!("usr_{}", i % 3));
        let (s, _) = app.post("/api/v1/omni/journeys", &body).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, body) = app.get("/api/v1/omni/journeys?perPage=2&page=2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["pagination"],
        json!({ "page": 2, "perPage": 2, "total": 5 })
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(
        body["data"][0].get("context").is_none(),
        "lists omit the context"
    );

    let (_, body) = app.get("/api/v1/omni/journeys").await;
    assert_eq!(
        body["pagination"],
        json!({ "page": 1, "perPage": 20, "total": 5 })
    );
    let (_, body) = app.get("/api/v1/omni/journeys?customerId=ent_0").await;
    assert_eq!(body["pagination"]["total"], 3);
    let (_, body) = app
        .get("/api/v1/omni/journeys?assigneeId=usr_0&customerId=ent_0")
        .await;
    assert_eq!(body["pagination"]["total"], 1);
    let (_, body) = app
        .get("/api/v1/omni/journeys?templateId=tmpl_onboarding_sme&status=created")
        .await;
    assert_eq!(body["pagination"]["total"], 5);
    let (_, body) = app.get("/api/v1/omni/journeys?status=completed").await;
    assert_eq!(body["pagination"]["total"], 0);
    assert_eq!(body["data"], json!([]));
    let (_, body) = app.get("/api/v1/omni/journeys?page=9").await;
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["pagination"]["total"], 5);
}

#[tokio::test]
async fn running_journeys_keep_their_template_version() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let old = app.seed_journey().await;
    let mut steps = seed_template()["steps"].clone();
    steps
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "step_sign", "name": "Signature", "type": "signature", "order": 4 }));
    let (s, body) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "steps": steps }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    let (_, new) = app.post("/api/v1/omni/journeys", &seed_journey()).await;
    assert_eq!(new["data"]["templateVersion"], 2);
    assert_eq!(new["data"]["totalSteps"], 4);
    app.pass_steps(&old, &["step_kyc", "step_docs", "step_credit"])
        .await;
    let (s, body) = app
        .post(&format!("/api/v1/omni/journeys/{old}/complete"), &json!({}))
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the old journey completes on version 1's three steps: {body}"
    );
    assert_eq!(body["data"]["templateVersion"], 1);
    assert_eq!(body["data"]["totalSteps"], 3);
}

#[tokio::test]
async fn uppercase_channels_are_accepted_and_answered_lowercase() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let mut body = seed_journey();
    body["channel"] = json!("MOBILE_IOS");
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    assert_eq!(res["data"]["channel"], "mobile_ios");
}

#[tokio::test]
async fn list_by_several_assignees_by_team_membership_and_by_due_date() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let (s, b) = app
        .put(
            "/api/v1/omni/users/usr_me",
            &json!({ "teams": ["team_sme"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // (assignee, due in hours from now, or none)
    let mut ids = Vec::new();
    for (assignee, kind, due) in [
        ("usr_me", "user", Some(48)),
        ("team_sme", "team", Some(-2)),
        ("usr_other", "user", Some(-5)),
        ("usr_me", "user", None),
        ("team_other", "team", Some(1)),
    ] {
        let mut body = seed_journey();
        body["assigneeId"] = json!(assignee);
        body["dueAt"] = due.map_or(Value::Null, |h: i64| {
            json!(crate::helpers::at(h * 3_600_000))
        });
        let (s, j) = app.post("/api/v1/omni/journeys", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{j}");
        let id = j["data"]["id"].as_str().unwrap().to_owned();
        if kind == "team" {
            let (s, j) = app
                .post(
                    &format!("/api/v1/omni/journeys/{id}/assign"),
                    &json!({ "assigneeId": assignee, "assigneeType": "team", "reason": "queue" }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{j}");
        }
        ids.push(id);
    }
    let listed = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, b) = app
        .get("/api/v1/omni/journeys?assignedTo=usr_me&sort=dueAt")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        listed(&b),
        vec![ids[1].clone(), ids[0].clone(), ids[3].clone()],
        "the user's and their team's, overdue first, undated last"
    );
    let (_, b) = app
        .get("/api/v1/omni/journeys?assigneeId=usr_other,team_other&sort=dueAt")
        .await;
    assert_eq!(listed(&b), vec![ids[2].clone(), ids[4].clone()]);
    let (_, b) = app
        .get("/api/v1/omni/journeys?assignedTo=usr_me&overdue=true")
        .await;
    assert_eq!(listed(&b), vec![ids[1].clone()]);
    let (_, b) = app.get("/api/v1/omni/journeys?overdue=false").await;
    assert_eq!(b["pagination"]["total"], 3);
    let (_, b) = app
        .get("/api/v1/omni/journeys?status=created,assigned&sort=-createdAt")
        .await;
    assert_eq!(b["pagination"]["total"], 5);
    assert_eq!(listed(&b)[0], ids[4], "newest first");

    let many = (0..21)
        .map(|i| format!("usr_{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for query in [
        "sort=due",
        "status=created,,assigned",
        "status=created,done",
        "overdue=yes",
        &format!("assigneeId={many}"),
    ] {
        let (s, b) = app.get(&format!("/api/v1/omni/journeys?{query}")).await;
        assert_problem(s, &b, 422, "invalid_query_parameter");
    }
}
