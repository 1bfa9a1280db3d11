//! Deadlines that act (docs/sla.md): a journey's SLA and its current step's timeout, read
//! exactly at any moment and announced once when they pass, by the deadline worker of any node;
//! escalations; approval reminders; business calendars. Time moves by the servers' shared
//! clock, never by waiting: the worker runs every second of real time and finds the deadline
//! passed on the clock it reads.

use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc, Weekday};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::{free_port, serve_with_env};
use crate::helpers::{TestApp, assert_problem, wait_until};

const HOUR: u64 = 3600;

/// A server whose deadline worker runs every second.
async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.deadline_sweep_secs = 1).await
}

/// A template of two steps (the first with `timeout_hours`) and an SLA of `sla_hours`.
async fn template(app: &TestApp, id: &str, sla_hours: Option<u64>, timeout_hours: Option<u64>) {
    let mut first =
        json!({ "id": "step_form", "name": "Application form", "type": "form", "order": 1 });
    if let Some(h) = timeout_hours {
        first["timeoutHours"] = json!(h);
    }
    let mut body = json!({
        "id": id, "name": "Account opening", "status": "active",
        "steps": [first, { "id": "step_review", "name": "Review", "type": "review", "order": 2 }],
    });
    if let Some(h) = sla_hours {
        body["slaHours"] = json!(h);
    }
    let (s, res) = app.post("/api/v1/omni/templates", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
}

/// The relationship manager `usr_rm_001` in team `team_sme`, whose manager is `usr_mgr_001`.
async fn staff(app: &TestApp) {
    let (s, res) = app
        .put(
            "/api/v1/omni/users/usr_mgr_001",
            &json!({ "name": "Huda", "roles": ["manager"] }),
        )
        .await;
    assert!(s.is_success(), "{res}");
    let (s, res) = app
        .put(
            "/api/v1/omni/teams/team_sme",
            &json!({ "name": "SME", "members": ["usr_rm_001", "usr_mgr_001"] }),
        )
        .await;
    assert!(s.is_success(), "{res}");
}

async fn journey(app: &TestApp, template: &str, extra: Value) -> Value {
    let mut body = json!({ "templateId": template, "customerId": "ent_customer_456", "assigneeId": "usr_rm_001" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, res) = app.post("/api/v1/omni/journeys", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    res["data"].clone()
}

async fn get(app: &TestApp, id: &str) -> Value {
    let (s, res) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    res["data"].clone()
}

/// The journey's events of `kind` (`omni.journey.sla_breached`, ...), oldest first, with their
/// metadata.
async fn events(app: &TestApp, journey: &str, kind: &str) -> Vec<Value> {
    app.events_of("journey", journey)
        .await
        .into_iter()
        .filter(|e| e.event_type == kind)
        .map(|e| serde_json::from_str(&e.metadata).unwrap())
        .collect()
}

/// Waits until the journey has `n` events of `kind`.
async fn await_events(app: &TestApp, journey: &str, kind: &str, n: usize) -> Vec<Value> {
    wait_until(format!("{n} {kind} of {journey}"), || async {
        let found = events(app, journey, kind).await;
        (found.len() >= n).then_some(found)
    })
    .await
}

/// One more pass of a deadline worker, as another process would make it: how many journeys it
/// announced anything for.
async fn another_pass(app: &TestApp) -> usize {
    omnirail::journeys::announce_deadlines(&app.state())
        .await
        .unwrap()
}

fn ms(t: &Value) -> i64 {
    omnirail::time::parse_rfc3339(t.as_str().unwrap_or_else(|| panic!("not a time: {t}"))).unwrap()
}

async fn notified(app: &TestApp, template_code: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT recipient_id FROM notifications WHERE tenant_id = $1 AND template_code = $2
         ORDER BY recipient_id",
    )
    .bind(&app.tenant)
    .bind(template_code)
    .fetch_all(app.db.reader())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_journey_turns_at_risk_then_breaches_each_announced_once_and_escalated() {
    let app = app().await;
    staff(&app).await;
    template(&app, "tmpl_account", Some(10), None).await;
    let j = journey(&app, "tmpl_account", json!({})).await;
    let id = j["id"].as_str().unwrap();
    let start = ms(&j["createdAt"]);
    assert_eq!(j["dueAt"], Value::Null, "no explicit dueAt was given");
    assert_eq!(ms(&j["sla"]["dueAt"]), start + 10 * 3_600_000);
    assert_eq!(ms(&j["sla"]["atRiskAt"]), start + 8 * 3_600_000);
    assert_eq!(j["sla"]["status"], "on_track");
    assert_eq!(j["sla"]["breachedAt"], Value::Null);

    // At risk: read exactly at once, announced by the worker, the assignee told.
    app.advance_past(j["sla"]["atRiskAt"].as_str().unwrap());
    assert_eq!(get(&app, id).await["sla"]["status"], "at_risk");
    let at_risk = await_events(&app, id, "omni.journey.sla_at_risk", 1).await;
    assert_eq!(at_risk[0]["deadline"], j["sla"]["atRiskAt"]);
    let escalated = await_events(&app, id, "omni.journey.escalated", 1).await;
    assert_eq!(escalated[0]["trigger"], "at_risk");
    assert_eq!(escalated[0]["actions"], json!(["assignee_notified"]));
    assert_eq!(notified(&app, "JOURNEY_ESCALATED").await, ["usr_rm_001"]);

    // Breached: the managers of the assignee's team told, not the assignee again.
    app.advance_past(j["sla"]["dueAt"].as_str().unwrap());
    let now = get(&app, id).await;
    assert_eq!(now["sla"]["status"], "breached");
    assert_eq!(now["sla"]["breachedAt"], j["sla"]["dueAt"]);
    let breached = await_events(&app, id, "omni.journey.sla_breached", 1).await;
    assert_eq!(breached[0]["deadline"], j["sla"]["dueAt"]);
    let escalated = await_events(&app, id, "omni.journey.escalated", 2).await;
    assert_eq!(escalated[1]["trigger"], "breached");
    assert_eq!(escalated[1]["managers"], json!(["usr_mgr_001"]));
    assert_eq!(
        notified(&app, "JOURNEY_ESCALATED").await,
        ["usr_mgr_001", "usr_rm_001"]
    );

    // Once each: another pass finds nothing to announce.
    assert_eq!(another_pass(&app).await, 0);
    app.advance(Duration::from_secs(HOUR));
    assert_eq!(another_pass(&app).await, 0);
    assert_eq!(events(&app, id, "omni.journey.sla_at_risk").await.len(), 1);
    assert_eq!(events(&app, id, "omni.journey.sla_breached").await.len(), 1);
    assert_eq!(events(&app, id, "omni.journey.escalated").await.len(), 2);

    // Completed late, it stays breached.
    app.pass_steps(id, &["step_form", "step_review"]).await;
    let (s, done) = app
        .post(&format!("/api/v1/omni/journeys/{id}/complete"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["data"]["sla"]["status"], "breached");
}

#[tokio::test]
async fn a_step_overdue_is_announced_and_the_next_step_gets_its_own_deadline() {
    let app = app().await;
    template(&app, "tmpl_steps", None, Some(2)).await;
    let j = journey(&app, "tmpl_steps", json!({})).await;
    let id = j["id"].as_str().unwrap();
    assert_eq!(j["sla"]["status"], "none");
    assert_eq!(j["sla"]["dueAt"], Value::Null);
    assert_eq!(
        ms(&j["sla"]["stepDueAt"]),
        ms(&j["createdAt"]) + 2 * 3_600_000
    );
    assert_eq!(j["sla"]["stepOverdue"], false);

    app.advance_past(j["sla"]["stepDueAt"].as_str().unwrap());
    assert_eq!(get(&app, id).await["sla"]["stepOverdue"], true);
    let overdue = await_events(&app, id, "omni.journey.step_overdue", 1).await;
    assert_eq!(overdue[0]["stepId"], "step_form");
    assert_eq!(overdue[0]["deadline"], j["sla"]["stepDueAt"]);
    // No escalation rule names a step overdue by default.
    assert!(events(&app, id, "omni.journey.escalated").await.is_empty());

    // A failed attempt keeps the step current, and its deadline; passing it moves on to a step
    // without a timeout.
    let (s, failed) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": "step_form", "stepOutcome": "failed" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{failed}");
    assert_eq!(failed["data"]["sla"]["stepDueAt"], j["sla"]["stepDueAt"]);
    assert_eq!(failed["data"]["sla"]["stepOverdue"], true);
    app.pass_steps(id, &["step_form"]).await;
    let moved = get(&app, id).await;
    assert_eq!(moved["currentStep"]["id"], "step_review");
    assert_eq!(moved["sla"]["stepDueAt"], Value::Null);
    assert_eq!(moved["sla"]["stepOverdue"], false);
    app.advance(Duration::from_secs(100 * HOUR));
    assert_eq!(another_pass(&app).await, 0);
    assert_eq!(events(&app, id, "omni.journey.step_overdue").await.len(), 1);
}

#[tokio::test]
async fn completing_or_cancelling_a_journey_cancels_its_pending_deadlines() {
    let app = app().await;
    template(&app, "tmpl_account", Some(10), Some(1)).await;
    let done = journey(&app, "tmpl_account", json!({})).await;
    let done_id = done["id"].as_str().unwrap();
    app.pass_steps(done_id, &["step_form", "step_review"]).await;
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{done_id}/complete"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["sla"]["status"], "met");
    let cancelled = journey(&app, "tmpl_account", json!({})).await;
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{cancelled_id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["sla"]["status"], "none");
    assert_eq!(res["data"]["sla"]["stepDueAt"], Value::Null);

    app.advance(Duration::from_secs(20 * HOUR));
    assert_eq!(another_pass(&app).await, 0);
    for id in [done_id, cancelled_id] {
        let kinds: Vec<String> = app
            .events_of("journey", id)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .filter(|t| t.contains("sla") || t.contains("overdue") || t.contains("escalated"))
            .collect();
        assert!(kinds.is_empty(), "{id}: {kinds:?}");
    }
    assert_eq!(get(&app, done_id).await["sla"]["status"], "met");
    assert_eq!(get(&app, cancelled_id).await["sla"]["status"], "none");
}

#[tokio::test]
async fn a_due_date_moved_after_a_breach_is_a_new_deadline_announced_again() {
    let app = app().await;
    template(&app, "tmpl_account", Some(100), None).await;
    let j = journey(&app, "tmpl_account", json!({ "dueAt": app.at(3_600_000) })).await;
    let id = j["id"].as_str().unwrap();
    assert_eq!(
        j["sla"]["dueAt"], j["dueAt"],
        "an explicit dueAt wins over slaHours"
    );
    app.advance_past(j["dueAt"].as_str().unwrap());
    let first = await_events(&app, id, "omni.journey.sla_breached", 1).await;

    // Reassigned with a new due date: the SLA moves, on track again, and breaches again later.
    let new_due = app.at(10 * 3_600_000);
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_rm_002", "dueAt": new_due }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["dueAt"], json!(new_due));
    assert_eq!(res["data"]["sla"]["dueAt"], json!(new_due));
    assert_eq!(res["data"]["sla"]["status"], "on_track");
    let assigned = events(&app, id, "omni.journey.assigned").await;
    assert_eq!(assigned[0]["previousDueAt"], j["dueAt"]);
    app.advance_past(&new_due);
    let breaches = await_events(&app, id, "omni.journey.sla_breached", 2).await;
    assert_eq!(breaches[0], first[0]);
    assert_eq!(breaches[1]["deadline"], json!(new_due));
    assert_eq!(another_pass(&app).await, 0);
    assert_eq!(events(&app, id, "omni.journey.sla_breached").await.len(), 2);

    // A bad dueAt changes nothing.
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_rm_003", "dueAt": "tomorrow" }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    assert_eq!(res["errors"][0]["field"], "dueAt");
    assert_eq!(get(&app, id).await["assigneeId"], "usr_rm_002");
}

/// The next `weekday` at `hour`:00 UTC after the server's now.
fn next(app: &TestApp, weekday: Weekday, hour: u32) -> i64 {
    let now = app.clock.now_ms();
    let mut day = Utc.timestamp_millis_opt(now).unwrap().date_naive();
    loop {
        day = day.succ_opt().unwrap();
        if day.weekday() == weekday {
            return day
                .and_hms_opt(hour, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis();
        }
    }
}

#[tokio::test]
async fn business_hours_carry_a_deadline_over_the_weekend() {
    let app = app().await;
    let (s, res) = app
        .put(
            "/api/v1/omni/sla/policy",
            &json!({
                "calendar": {
                    "timeZone": "Europe/London",
                    "workingHours": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00" }]
                }
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    template(&app, "tmpl_account", Some(10), None).await;
    // Friday 13:00 UTC: in winter London is on UTC, in summer an hour ahead; either way the
    // journey starts in working hours, with `left` of them that day.
    let friday = next(&app, Weekday::Fri, 13);
    app.advance_past(&omnirail::time::to_rfc3339(friday));
    let j = journey(&app, "tmpl_account", json!({})).await;
    let id = j["id"].as_str().unwrap();
    let start = ms(&j["createdAt"]);
    let london = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .unwrap()
            .with_timezone(&chrono_tz::Europe::London)
    };
    let close = london(start).date_naive().and_hms_opt(17, 0, 0).unwrap();
    let close = close
        .and_local_timezone(chrono_tz::Europe::London)
        .earliest()
        .unwrap()
        .timestamp_millis();
    let left = close - start;
    let monday = london(start).date_naive() + chrono::Days::new(3);
    let monday_open = monday
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_local_timezone(chrono_tz::Europe::London)
        .earliest()
        .unwrap()
        .timestamp_millis();
    let due = monday_open + 10 * 3_600_000 - left;
    let at_risk = monday_open + 8 * 3_600_000 - left;
    assert_eq!(ms(&j["sla"]["dueAt"]), due, "{}", j["sla"]);
    assert_eq!(ms(&j["sla"]["atRiskAt"]), at_risk, "{}", j["sla"]);

    // Saturday noon: a day of wall-clock time, but only the hours before Friday's close count.
    app.advance(Duration::from_secs(23 * HOUR));
    assert_eq!(get(&app, id).await["sla"]["status"], "on_track");
    assert_eq!(another_pass(&app).await, 0);
    app.advance_past(j["sla"]["atRiskAt"].as_str().unwrap());
    assert_eq!(get(&app, id).await["sla"]["status"], "at_risk");
    await_events(&app, id, "omni.journey.sla_at_risk", 1).await;
    app.advance_past(j["sla"]["dueAt"].as_str().unwrap());
    await_events(&app, id, "omni.journey.sla_breached", 1).await;
}

#[tokio::test]
async fn a_templates_escalation_reassigns_and_raises_the_priority_with_its_reason() {
    let app = app().await;
    staff(&app).await;
    let (s, res) = app
        .put(
            "/api/v1/omni/sla/policy",
            &json!({ "escalations": [
                { "on": "breached", "templateId": "tmpl_account", "notify": ["manager"],
                  "reassignTo": { "assigneeType": "team", "assigneeId": "team_sme" },
                  "raisePriorityTo": "urgent" },
                { "on": "step_overdue", "notify": ["assignee"] }
            ] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    template(&app, "tmpl_account", Some(4), Some(2)).await;
    let j = journey(&app, "tmpl_account", json!({ "priority": "normal" })).await;
    let id = j["id"].as_str().unwrap();

    app.advance_past(j["sla"]["dueAt"].as_str().unwrap());
    // Found past both its step's timeout and its SLA: both announced, at-risk not (breached).
    await_events(&app, id, "omni.journey.sla_breached", 1).await;
    let escalated = await_events(&app, id, "omni.journey.escalated", 2).await;
    let breach = escalated
        .iter()
        .find(|e| e["trigger"] == "breached")
        .unwrap();
    assert_eq!(breach["reason"], "SLA breached");
    assert_eq!(breach["previousAssigneeId"], "usr_rm_001");
    assert_eq!(breach["assigneeId"], "team_sme");
    assert_eq!(breach["previousPriority"], "normal");
    assert_eq!(breach["priority"], "urgent");
    assert_eq!(breach["templateRule"], true);
    assert_eq!(
        breach["actions"],
        json!([
            "reassigned",
            "priority_raised",
            "assignee_notified",
            "managers_notified"
        ])
    );
    let overdue = escalated
        .iter()
        .find(|e| e["trigger"] == "step_overdue")
        .unwrap();
    assert_eq!(overdue["actions"], json!(["assignee_notified"]));
    assert!(
        events(&app, id, "omni.journey.sla_at_risk")
            .await
            .is_empty()
    );
    let now = get(&app, id).await;
    assert_eq!(now["assigneeType"], "team");
    assert_eq!(now["assigneeId"], "team_sme");
    assert_eq!(now["priority"], "urgent");
    assert_eq!(now["status"], "created");
    assert_eq!(another_pass(&app).await, 0);
}

#[tokio::test]
async fn the_policy_has_defaults_and_refuses_what_it_cannot_use() {
    let app = TestApp::spawn().await;
    let (s, res) = app.get("/api/v1/omni/sla/policy").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        res["data"],
        json!({
            "atRiskPercent": 80, "approvalReminderHours": 24, "calendar": null,
            "escalations": [
                { "on": "at_risk", "notify": ["assignee"] },
                { "on": "breached", "notify": ["manager"] }
            ],
            "source": "default", "updatedAt": null
        })
    );
    let bad = json!({
        "atRiskPercent": 100, "approvalReminderHours": -1,
        "calendar": { "timeZone": "Mars/Base", "workingHours": [], "holidays": ["someday"] },
        "escalations": [{ "on": "breached", "reassignTo": { "assigneeType": "robot", "assigneeId": "x" } }]
    });
    let (s, res) = app.put("/api/v1/omni/sla/policy", &bad).await;
    assert_problem(s, &res, 422, "validation_failed");
    let fields: Vec<&str> = res["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "calendar.timeZone",
            "calendar.workingHours",
            "calendar.holidays[0]",
            "atRiskPercent",
            "approvalReminderHours",
            "escalations[0].reassignTo.assigneeType",
        ]
    );
    for (body, code) in [
        (
            json!({ "escalations": [{ "on": "late", "notify": ["assignee"] }]}),
            "validation_failed",
        ),
        (
            json!({ "atRiskPercent": 50, "surprise": true }),
            "validation_failed",
        ),
        (json!({ "atRiskPercent": "50" }), "validation_failed"),
    ] {
        let (s, res) = app.put("/api/v1/omni/sla/policy", &body).await;
        assert_problem(s, &res, 422, code);
    }
    let (_, res) = app.get("/api/v1/omni/sla/policy").await;
    assert_eq!(res["data"]["source"], "default", "refusals changed nothing");

    let good = json!({ "atRiskPercent": 60, "approvalReminderHours": 0, "escalations": [] });
    let (s, res) = app.put("/api/v1/omni/sla/policy", &good).await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let (s, res) = app.put("/api/v1/omni/sla/policy", &good).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    let (_, res) = app.get("/api/v1/omni/sla/policy").await;
    assert_eq!(res["data"]["atRiskPercent"], 60);
    assert_eq!(res["data"]["escalations"], json!([]));
    assert_eq!(res["data"]["source"], "tenant");
    // Another tenant still has the defaults.
    let other = app.other_tenant_key().await;
    let res: Value = app
        .client
        .get(app.url("/api/v1/omni/sla/policy"))
        .header("x-api-key", other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["data"]["source"], "default");
}

#[tokio::test]
async fn approvers_who_have_not_decided_are_reminded_once_before_expiry() {
    let app = app().await;
    let expires = app.at(48 * 3_600_000);
    let (s, res) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({
                "entityType": "contract", "entityId": "ctr_001", "approvalType": "limit_increase",
                "requestedBy": "usr_rm_001",
                "approvers": [{ "userId": "usr_a", "required": true }, { "userId": "usr_b", "required": true }],
                "expiresAt": expires
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let id = res["data"]["id"].as_str().unwrap().to_owned();
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/approvals/{id}/decisions"),
            &json!({ "approverId": "usr_a", "decision": "approve" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    // 24 hours before expiry (the default), usr_b alone is reminded.
    app.advance(Duration::from_secs(24 * HOUR + 1));
    let reminders = wait_until("the reminder", || async {
        let found: Vec<String> = app
            .events_of("approval", &id)
            .await
            .into_iter()
            .filter(|e| e.event_type == "omni.approval.reminder")
            .map(|e| e.metadata)
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .await;
    let meta: Value = serde_json::from_str(&reminders[0]).unwrap();
    assert_eq!(meta["approvers"], json!(["usr_b"]));
    assert_eq!(meta["expiresAt"], json!(expires));
    assert_eq!(notified(&app, "APPROVAL_REMINDER").await, ["usr_b"]);
    app.advance(Duration::from_secs(HOUR));
    assert_eq!(
        omnirail::approvals::send_reminders(&app.state())
            .await
            .unwrap(),
        0
    );
    let count = app
        .events_of("approval", &id)
        .await
        .iter()
        .filter(|e| e.event_type == "omni.approval.reminder")
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_deadline_of_a_killed_node_is_announced_once_by_the_nodes_left() {
    let mut app = app().await;
    staff(&app).await;
    template(&app, "tmpl_account", Some(1), None).await;
    app.stop_server().await;

    // A node of its own (a process on the real clock) takes the journey, and is killed an hour
    // before its deadline.
    let port = free_port();
    let mut node_a = serve_with_env(app.config.database_url.expose(), port, &[]).await;
    let res: Value = app
        .client
        .post(format!("http://127.0.0.1:{port}/api/v1/omni/journeys"))
        .header("x-api-key", &app.key)
        .json(&json!({ "templateId": "tmpl_account", "customerId": "ent_customer_456", "assigneeId": "usr_rm_001" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = res["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{res}"))
        .to_owned();
    node_a.kill().unwrap(); // SIGKILL
    node_a.wait().unwrap();

    // Two nodes on the test's clock, which passes the deadline: one of them announces it.
    app.restart().await;
    let node_c = app.another_node().await;
    app.advance(Duration::from_secs(HOUR + 1));
    await_events(&app, &id, "omni.journey.sla_breached", 1).await;
    await_events(&app, &id, "omni.journey.escalated", 1).await;
    assert_eq!(another_pass(&app).await, 0);
    // Both nodes go on sweeping, and one is restarted: still once.
    node_c.stop().await;
    app.restart().await;
    app.advance(Duration::from_secs(HOUR));
    assert_eq!(another_pass(&app).await, 0);
    assert_eq!(
        events(&app, &id, "omni.journey.sla_breached").await.len(),
        1
    );
    assert_eq!(events(&app, &id, "omni.journey.escalated").await.len(), 1);
    assert!(
        events(&app, &id, "omni.journey.sla_at_risk")
            .await
            .is_empty()
    );
}

/// What a journey of the analytics test did: (template, teams, created, ended, status, due).
struct Done {
    template: &'static str,
    teams: Vec<&'static str>,
    created: i64,
    ended: Option<i64>,
    status: &'static str,
    due: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;

/// Finishes the journey as `how` (`completed` or `cancelled`), `after` hours from now.
async fn finish(app: &TestApp, id: &str, how: &str, after: u64) -> i64 {
    app.advance(Duration::from_secs(after * HOUR));
    if how == "completed" {
        let (s, res) = app
            .post(
                &format!("/api/v1/omni/journeys/{id}/advance"),
                &json!({ "completedStepId": "step_form" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{res}");
        app.pass_steps(id, &["step_review"]).await;
    }
    let (s, res) = app
        .post(
            &format!(
                "/api/v1/omni/journeys/{id}/{}",
                if how == "completed" {
                    "complete"
                } else {
                    "cancel"
                }
            ),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    ms(&res["data"]["updatedAt"])
}

async fn fold_all(app: &TestApp) {
    let state = app.state();
    // Two passes at once, as two nodes would make them: each journey is folded by one.
    let (a, b) = tokio::join!(
        omnirail::journeys::fold_sla_figures(&state),
        omnirail::journeys::fold_sla_figures(&state)
    );
    a.unwrap();
    b.unwrap();
    while omnirail::journeys::fold_sla_figures(&state).await.unwrap() > 0 {}
}

#[tokio::test]
async fn sla_figures_per_template_team_and_day_match_a_count_of_the_journeys() {
    let app = TestApp::spawn().await;
    staff(&app).await;
    let (s, res) = app
        .put(
            "/api/v1/omni/teams/team_retail",
            &json!({ "members": ["usr_rm_002"] }),
        )
        .await;
    assert!(s.is_success(), "{res}");
    template(&app, "tmpl_a", Some(10), None).await;
    template(&app, "tmpl_b", Some(100), None).await;
    let mut done: Vec<Done> = Vec::new();
    // (template, assignee, assignee type, teams, how it ends, hours after its start)
    type Plan = (
        &'static str,
        &'static str,
        &'static str,
        Vec<&'static str>,
        &'static str,
        u64,
    );
    let plan: [Plan; 7] = [
        (
            "tmpl_a",
            "usr_rm_001",
            "user",
            vec!["team_sme"],
            "completed",
            2,
        ),
        (
            "tmpl_a",
            "team_retail",
            "team",
            vec!["team_retail"],
            "completed",
            12,
        ),
        (
            "tmpl_a",
            "usr_rm_001",
            "user",
            vec!["team_sme"],
            "completed",
            30,
        ),
        ("tmpl_b", "usr_rm_003", "user", vec![], "cancelled", 1),
        (
            "tmpl_b",
            "usr_rm_002",
            "user",
            vec!["team_retail"],
            "completed",
            50,
        ),
        ("tmpl_a", "usr_rm_001", "user", vec!["team_sme"], "open", 0),
        ("tmpl_b", "usr_rm_003", "user", vec![], "open", 0),
    ];
    for (template_id, assignee, kind, teams, how, hours) in plan {
        let j = journey(&app, template_id, json!({ "assigneeId": assignee })).await;
        let id = j["id"].as_str().unwrap();
        if kind == "team" {
            let (s, res) = app
                .post(
                    &format!("/api/v1/omni/journeys/{id}/assign"),
                    &json!({ "assigneeId": assignee, "assigneeType": "team" }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{res}");
        }
        let ended = match how {
            "open" => None,
            _ => Some(finish(&app, id, how, hours).await),
        };
        done.push(Done {
            template: template_id,
            teams,
            created: ms(&j["createdAt"]),
            ended,
            status: how,
            due: Some(ms(&j["sla"]["dueAt"])),
        });
    }
    // Later, the last tmpl_a journey is breached and the last tmpl_b one on track.
    app.advance(Duration::from_secs(11 * HOUR));
    fold_all(&app).await;
    assert_eq!(
        omnirail::journeys::fold_sla_figures(&app.state())
            .await
            .unwrap(),
        0
    );

    let today = app.clock.now_ms().div_euclid(DAY_MS);
    let from = omnirail::time::to_rfc3339((today - 10) * DAY_MS)[..10].to_owned();
    for group_by in ["template", "team", "template_team"] {
        let (s, res) = app
            .get(&format!(
                "/api/v1/omni/analytics/sla?from={from}&period=day&groupBy={group_by}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{res}");
        // The figures as a brute-force count of what the test did.
        let by_template = group_by != "team";
        let by_team = group_by != "template";
        type Key = (String, Option<String>, Option<String>);
        let mut want: std::collections::BTreeMap<Key, [i64; 5]> = Default::default();
        for d in &done {
            let teams: Vec<Option<String>> = if !by_team || d.teams.is_empty() {
                vec![None]
            } else {
                d.teams.iter().map(|t| Some(t.to_string())).collect()
            };
            for team in teams {
                let template = by_template.then(|| d.template.to_owned());
                let day = |t: i64| {
                    omnirail::time::to_rfc3339(t.div_euclid(DAY_MS) * DAY_MS)[..10].to_owned()
                };
                want.entry((day(d.created), template.clone(), team.clone()))
                    .or_default()[0] += 1;
                if let Some(end) = d.ended {
                    let f = want.entry((day(end), template, team)).or_default();
                    let late = d.due.is_some_and(|due| end > due);
                    if d.status == "completed" {
                        f[1] += 1;
                        if !late {
                            f[2] += 1;
                        }
                    } else {
                        f[4] += 1;
                    }
                    if late {
                        f[3] += 1;
                    }
                }
            }
        }
        let got: std::collections::BTreeMap<Key, [i64; 5]> = res["data"]["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (
                        p["periodStart"].as_str().unwrap().to_owned(),
                        p["templateId"].as_str().map(str::to_owned),
                        p["teamId"].as_str().map(str::to_owned),
                    ),
                    ["started", "completed", "met", "breached", "cancelled"]
                        .map(|k| p[k].as_i64().unwrap()),
                )
            })
            .collect();
        assert_eq!(got, want, "{group_by}: {res}");
    }

    // Weeks and months are kept apart from days: the same journeys, per template.
    let totals = |res: &Value| {
        let mut t: std::collections::BTreeMap<String, [i64; 5]> = Default::default();
        for p in res["data"]["periods"].as_array().unwrap() {
            let f = t
                .entry(p["templateId"].as_str().unwrap().to_owned())
                .or_default();
            for (i, k) in ["started", "completed", "met", "breached", "cancelled"]
                .iter()
                .enumerate()
            {
                f[i] += p[k].as_i64().unwrap();
            }
        }
        t
    };
    let (_, by_day) = app
        .get(&format!(
            "/api/v1/omni/analytics/sla?from={from}&period=day"
        ))
        .await;
    for period in ["week", "month"] {
        let (s, res) = app
            .get(&format!(
                "/api/v1/omni/analytics/sla?from={from}&period={period}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{res}");
        assert_eq!(totals(&res), totals(&by_day), "{period}: {res}");
        assert_eq!(totals(&res)["tmpl_a"], [4, 3, 1, 2, 0], "{period}: {res}");
    }

    // Times to complete over the whole window, per template: tmpl_a took 2, 12 and 30 hours.
    let (_, res) = app
        .get(&format!(
            "/api/v1/omni/analytics/sla?from={from}&period=month&templateId=tmpl_a"
        ))
        .await;
    let periods = res["data"]["periods"].as_array().unwrap();
    let completed: i64 = periods
        .iter()
        .map(|p| p["completed"].as_i64().unwrap())
        .sum();
    assert_eq!(completed, 3, "{res}");
    if periods.len() == 1 {
        let median = periods[0]["medianHoursToComplete"].as_f64().unwrap();
        let p90 = periods[0]["p90HoursToComplete"].as_f64().unwrap();
        assert!((median - 12.0).abs() <= 12.0 * 0.05, "{median}");
        assert!((p90 - 30.0).abs() <= 30.0 * 0.05, "{p90}");
    }

    // Now: tmpl_a's open journey is breached (11 hours of 10), tmpl_b's on track.
    assert_eq!(
        res["data"]["now"],
        json!([{ "templateId": "tmpl_a", "teamId": null, "atRisk": 0, "breached": 1 }])
    );
    let (_, res) = app.get("/api/v1/omni/analytics/sla?groupBy=team").await;
    assert_eq!(
        res["data"]["now"],
        json!([{ "templateId": null, "teamId": "team_sme", "atRisk": 0, "breached": 1 }])
    );
    // One team's, per template; another team has none.
    let (_, res) = app.get("/api/v1/omni/analytics/sla?teamId=team_sme").await;
    assert_eq!(
        res["data"]["now"],
        json!([{ "templateId": "tmpl_a", "teamId": null, "atRisk": 0, "breached": 1 }])
    );
    let (_, res) = app
        .get("/api/v1/omni/analytics/sla?teamId=team_retail")
        .await;
    assert_eq!(res["data"]["now"], json!([]));
}

#[tokio::test]
async fn sla_analytics_refuses_what_it_cannot_answer() {
    let app = TestApp::spawn().await;
    for (query, code) in [
        ("period=year", "invalid_query_parameter"),
        ("groupBy=customer", "invalid_query_parameter"),
        ("from=2026-12-10&to=2026-12-01", "validation_failed"),
        ("from=2024-01-01&to=2026-01-01", "validation_failed"),
        ("from=yesterday", "validation_failed"),
        ("surprise=1", "validation_failed"),
    ] {
        let (s, res) = app
            .get(&format!("/api/v1/omni/analytics/sla?{query}"))
            .await;
        assert!(s.is_client_error(), "{query}: {s} {res}");
        assert_eq!(res["code"], code, "{query}: {res}");
    }
    let (s, res) = app.get("/api/v1/omni/analytics/sla").await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["periods"], json!([]));
    assert_eq!(res["data"]["period"], "week");
}

#[tokio::test]
async fn a_change_read_before_a_deadline_was_announced_does_not_unmark_it() {
    let app = TestApp::spawn().await;
    template(&app, "tmpl_account", Some(1), None).await;
    let j = journey(&app, "tmpl_account", json!({})).await;
    let id = j["id"].as_str().unwrap();
    // A change reads the journey, and before it writes, the deadline passes and is announced.
    let mut stale = omnirail::journeys::store::get_journey(app.db.reader(), &app.tenant, id)
        .await
        .unwrap()
        .unwrap();
    app.advance(Duration::from_secs(2 * HOUR));
    another_pass(&app).await;
    assert_eq!(events(&app, id, "omni.journey.sla_breached").await.len(), 1);
    stale.row_version += 1;
    stale.updated_at = app.clock.now_ms();
    let mut tx = app.db.begin().await.unwrap();
    assert!(
        omnirail::journeys::store::update_journey(&mut tx, &app.tenant, &stale)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    // What it wrote does not make the breach news again.
    another_pass(&app).await;
    another_pass(&app).await;
    assert_eq!(events(&app, id, "omni.journey.sla_breached").await.len(), 1);
}

#[tokio::test]
async fn a_templates_new_sla_is_a_new_version_that_only_new_journeys_run_by() {
    let app = TestApp::spawn().await;
    template(&app, "tmpl_account", Some(10), None).await;
    let before = journey(&app, "tmpl_account", json!({})).await;
    let (s, res) = app
        .patch(
            "/api/v1/omni/templates/tmpl_account",
            &json!({ "slaHours": 20 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["version"], 2);
    // This process last saw version 1: the new journey is written on version 2 all the same.
    let after = journey(&app, "tmpl_account", json!({})).await;
    assert_eq!(after["templateVersion"], 2);
    assert_eq!(
        ms(&after["sla"]["dueAt"]),
        ms(&after["createdAt"]) + 20 * 3_600_000
    );
    let again = get(&app, before["id"].as_str().unwrap()).await;
    assert_eq!(again["templateVersion"], 1);
    assert_eq!(again["sla"]["dueAt"], before["sla"]["dueAt"]);
    assert_eq!(
        ms(&before["sla"]["dueAt"]),
        ms(&before["createdAt"]) + 10 * 3_600_000
    );
    // A change that is not of steps or SLA makes no version.
    let (_, res) = app
        .patch(
            "/api/v1/omni/templates/tmpl_account",
            &json!({ "name": "Current account" }),
        )
        .await;
    assert_eq!(res["data"]["version"], 2);
}

#[tokio::test]
async fn an_approval_steps_request_expires_at_its_steps_deadline_in_working_hours() {
    let app = TestApp::spawn().await;
    let (s, res) = app
        .put(
            "/api/v1/omni/sla/policy",
            &json!({ "calendar": { "timeZone": "UTC", "workingHours": [
                { "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00" }
            ] } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let (s, res) = app
        .post(
            "/api/v1/omni/templates",
            &json!({ "id": "tmpl_credit", "name": "Credit", "steps": [
                { "id": "step_committee", "name": "Committee", "type": "approval", "order": 1,
                  "approvers": ["usr_credit_001"], "timeoutHours": 10 }
            ] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    app.advance_past(&omnirail::time::to_rfc3339(next(&app, Weekday::Fri, 13)));
    let j = journey(&app, "tmpl_credit", json!({})).await;
    // Friday's last four hours, then six on Monday.
    let due = ms(&j["sla"]["stepDueAt"]);
    let monday = Utc.timestamp_millis_opt(due).unwrap();
    assert_eq!(monday.weekday(), Weekday::Mon, "{}", j["sla"]);
    assert!(due - ms(&j["createdAt"]) > 60 * 3_600_000, "{}", j["sla"]);
    let approval = j["currentStep"]["approvalId"].as_str().unwrap();
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["expiresAt"], j["sla"]["stepDueAt"], "{a}");
}

/// Migration 0018's additions, taken away again: a store as an earlier version left it.
const BEFORE_0018: &str = "
DROP INDEX journeys_next_deadline;
DROP INDEX journeys_unfolded;
DROP INDEX journeys_open_sla;
ALTER TABLE journeys DROP COLUMN step_started_at;
ALTER TABLE journeys DROP COLUMN sla_due_at;
ALTER TABLE journeys DROP COLUMN sla_at_risk_at;
ALTER TABLE journeys DROP COLUMN step_due_at;
ALTER TABLE journeys DROP COLUMN at_risk_fired;
ALTER TABLE journeys DROP COLUMN breach_fired;
ALTER TABLE journeys DROP COLUMN step_overdue_fired;
ALTER TABLE journeys DROP COLUMN next_deadline_at;
ALTER TABLE journeys DROP COLUMN sla_folded;
ALTER TABLE approvals DROP COLUMN reminded_at;
ALTER TABLE journey_template_versions DROP COLUMN sla_hours;
DROP TABLE sla_policies;
DROP TABLE sla_figures;
DROP TABLE sla_durations;
DELETE FROM _sqlx_migrations WHERE version = 18";

#[tokio::test]
async fn migrating_stored_journeys_gives_them_the_deadlines_the_server_would_have() {
    let app = TestApp::spawn().await;
    let (s, res) = app
        .post(
            "/api/v1/omni/templates",
            &json!({ "id": "tmpl_m", "name": "M", "slaHours": 48, "steps": [
                { "id": "a", "name": "A", "type": "form", "order": 1, "timeoutHours": 5 },
                { "id": "b", "name": "B", "type": "form", "order": 2, "timeoutHours": 7 },
                { "id": "c", "name": "C", "type": "form", "order": 3 }
            ] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{res}");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            journey(&app, "tmpl_m", json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.advance(Duration::from_secs(60));
    app.pass_steps(&ids[1], &["a"]).await;
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{}/advance", ids[2]),
            &json!({ "completedStepId": "a", "stepOutcome": "failed" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    // One due long ago: past its due time when the migration runs.
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/journeys/{}/assign", ids[3]),
            &json!({ "assigneeId": "usr_rm_002", "dueAt": "2024-01-25T17:00:00Z" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    let mut before = Vec::new();
    for id in &ids {
        before.push(get(&app, id).await["sla"].clone());
    }
    for statement in BEFORE_0018.split(';') {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(app.db.reader())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let applied = app.db.migrate().await.unwrap();
    assert_eq!(applied, vec!["0018 deadlines".to_owned()]);
    for (id, sla) in ids.iter().zip(&before) {
        assert_eq!(&get(&app, id).await["sla"], sla, "{id}");
    }
    assert_eq!(before[3]["status"], "breached");
    // A deadline past before the migration is not announced after it; the others still are.
    assert_eq!(another_pass(&app).await, 0);
    assert!(
        events(&app, &ids[3], "omni.journey.sla_breached")
            .await
            .is_empty()
    );
    app.advance(Duration::from_secs(6 * HOUR));
    another_pass(&app).await;
    let overdue = events(&app, &ids[0], "omni.journey.step_overdue").await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["deadline"], before[0]["stepDueAt"]);
    // And the SLA figures are folded from the journeys already stored.
    while omnirail::journeys::fold_sla_figures(&app.state())
        .await
        .unwrap()
        > 0
    {}
    let (_, res) = app.get("/api/v1/omni/analytics/sla?period=month").await;
    let started: i64 = res["data"]["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["started"].as_i64().unwrap())
        .sum();
    assert_eq!(started, 4, "{res}");
}
