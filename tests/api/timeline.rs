use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

const CUSTOMER: &str = "/api/v1/omni/timeline?entityType=customer&entityId=ent_customer_456";

async fn advance(app: &TestApp, id: &str, step: &str) {
    let (s, b) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/advance"),
            &json!({ "completedStepId": step, "advancedBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

fn types(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_seed_request_answers_the_seed_shape_oldest_first() {
    let app = TestApp::spawn().await;
    app.put(
        "/api/v1/omni/users/usr_rm_001",
        &json!({ "name": "Ahmed Al-Rashidi", "roles": ["relationship_manager"] }),
    )
    .await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    let (s, body) = app
        .get(
            "/api/v1/omni/timeline?entityId=ent_customer_456&entityType=customer&page=1&perPage=50",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["pagination"],
        json!({ "page": 1, "perPage": 50, "total": 2 })
    );
    assert_eq!(types(&body), ["journey.created", "journey.advanced"]);
    let e = &body["data"][1];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "actorId",
            "actorIssuer",
            "actorName",
            "actorVerified",
            "channel",
            "eventType",
            "id",
            "keyId",
            "metadata",
            "summary",
            "timestamp"
        ]
    );
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    assert!(e["keyId"].as_str().unwrap().starts_with("key_"), "{e}");
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e["actorId"], "usr_rm_001");
    assert_eq!(e["actorName"], "Ahmed Al-Rashidi");
    // Named by the caller, not proven by a token (tests/api/identity.rs proves some).
    assert_eq!(e["actorVerified"], false);
    assert_eq!(e["actorIssuer"], Value::Null);
    assert_eq!(e["channel"], "web");
    assert_eq!(e["summary"], "Journey advanced: KYC Verification completed");
    assert_eq!(e["metadata"]["stepId"], "step_kyc");
    assert_eq!(e["metadata"]["outcome"], "passed");

    let (_, desc) = app.get(&format!("{CUSTOMER}&order=desc")).await;
    assert_eq!(types(&desc), ["journey.advanced", "journey.created"]);
    // The journey's own timeline holds the same events.
    let (_, j) = app
        .get(&format!(
            "/api/v1/omni/timeline?entityType=journey&entityId={id}"
        ))
        .await;
    assert_eq!(j["pagination"]["total"], 2);
}

#[tokio::test]
async fn event_type_and_date_filters_and_pagination() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    app.pass_steps(&id, &["step_kyc", "step_docs", "step_credit"])
        .await;
    let (_, all) = app.get(CUSTOMER).await;
    assert_eq!(
        types(&all),
        [
            "journey.created",
            "journey.advanced",
            "journey.advanced",
            "approval.requested",
            "approval.approved",
            "journey.advanced"
        ],
        "a customer's timeline holds their journeys' approvals"
    );
    let total = |b: &Value| b["pagination"]["total"].as_i64().unwrap();
    for (filter, want) in [
        ("journey.created", 1),
        ("omni.journey.created", 1),
        ("journey.*", 4),
        ("omni.approval.*", 2),
        ("journey.created,approval.approved", 2),
        ("approval.request*", 1),
        ("*", 6),
        ("session.*", 0),
    ] {
        let (s, b) = app.get(&format!("{CUSTOMER}&eventTypes={filter}")).await;
        assert_eq!(s, StatusCode::OK, "{filter}: {b}");
        assert_eq!(total(&b), want, "{filter}");
    }
    // Dates bound the range, inclusively.
    let third = all["data"][2]["timestamp"].as_str().unwrap();
    let (_, b) = app.get(&format!("{CUSTOMER}&fromDate={third}")).await;
    // Events from the third on (earlier ones may share its millisecond).
    assert!((4..=6).contains(&total(&b)), "{b}");
    assert!(
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["timestamp"].as_str().unwrap() >= third),
        "{b}"
    );
    let (_, b) = app
        .get(&format!("{CUSTOMER}&toDate=2000-01-01T00:00:00Z"))
        .await;
    assert_eq!(total(&b), 0);
    let (_, b) = app
        .get(&format!(
            "{CUSTOMER}&fromDate=2000-01-01T00:00:00Z&toDate=2999-01-01T00:00:00Z&eventTypes=journey.advanced"
        ))
        .await;
    assert_eq!(total(&b), 3);
    // Pagination edges.
    let (_, p2) = app.get(&format!("{CUSTOMER}&perPage=4&page=2")).await;
    assert_eq!(types(&p2), ["approval.approved", "journey.advanced"]);
    assert_eq!(
        p2["pagination"],
        json!({ "page": 2, "perPage": 4, "total": 6 })
    );
    let (_, past) = app.get(&format!("{CUSTOMER}&perPage=4&page=3")).await;
    assert_eq!(past["data"], json!([]));
    assert_eq!(past["pagination"]["total"], 6);
    let (_, max) = app.get(&format!("{CUSTOMER}&perPage=200")).await;
    assert_eq!(max["pagination"]["perPage"], 200);
    for bad in ["perPage=201", "perPage=0", "page=0"] {
        let (s, b) = app.get(&format!("{CUSTOMER}&{bad}")).await;
        assert_problem(s, &b, 422, "invalid_query_parameter");
    }
}

#[tokio::test]
async fn bad_queries_are_refused_with_the_parameter_named() {
    let app = TestApp::spawn().await;
    let (s, b) = app.get("/api/v1/omni/timeline?entityType=customer").await;
    assert_problem(s, &b, 400, "missing_query_parameter");
    assert_eq!(
        b["errors"],
        json!([{ "field": "entityId", "message": "is required" }])
    );
    let (s, b) = app.get("/api/v1/omni/timeline?entityId=ent_1").await;
    assert_problem(s, &b, 400, "missing_query_parameter");
    assert_eq!(b["errors"][0]["field"], "entityType");
    let (s, b) = app.get("/api/v1/omni/timeline").await;
    assert_problem(s, &b, 400, "missing_query_parameter");
    assert_eq!(b["errors"].as_array().unwrap().len(), 2);
    // The message lists every entity type the timeline takes (the OpenAPI document's too).
    let (s, b) = app
        .get("/api/v1/omni/timeline?entityType=planet&entityId=x")
        .await;
    assert_problem(s, &b, 422, "invalid_query_parameter");
    assert_eq!(
        b["errors"][0]["message"],
        "must be one of: customer, journey, contract, approval, user, onboarding, notification, api_key"
    );
    for path in ["/api/v1/omni/timeline", "/api/v1/omni/timeline/verify"] {
        for empty in ["", "%20"] {
            let (s, b) = app
                .get(&format!("{path}?entityType=customer&entityId={empty}"))
                .await;
            assert_problem(s, &b, 422, "invalid_query_parameter");
            assert_eq!(b["errors"][0]["field"], "entityId");
        }
    }
    for (query, field) in [
        ("entityType=planet&entityId=x", "entityType"),
        (
            "entityType=customer&entityId=x&fromDate=yesterday",
            "fromDate",
        ),
        ("entityType=customer&entityId=x&order=random", "order"),
        (
            "entityType=customer&entityId=x&eventTypes=Journey%20Created",
            "eventTypes",
        ),
    ] {
        let (s, b) = app.get(&format!("/api/v1/omni/timeline?{query}")).await;
        assert_problem(s, &b, 422, "invalid_query_parameter");
        assert_eq!(b["errors"][0]["field"], field, "{query}");
    }
    let (s, b) = app
        .get("/api/v1/omni/timeline?entityType=customer&entityId=x&fromDate=2024-02-01T00:00:00Z&toDate=2024-01-01T00:00:00Z")
        .await;
    assert_problem(s, &b, 422, "invalid_date_range");
    let (s, b) = app.get("/api/v1/omni/timeline/verify?entityId=x").await;
    assert_problem(s, &b, 400, "missing_query_parameter");
}

#[tokio::test]
async fn timelines_are_isolated_between_customers_and_tenants() {
    let app = TestApp::spawn().await;
    app.seed_journey().await;
    let mut other = crate::helpers::seed_journey();
    other["customerId"] = json!("ent_other");
    let (s, _) = app.post("/api/v1/omni/journeys", &other).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, mine) = app.get(CUSTOMER).await;
    assert_eq!(mine["pagination"]["total"], 1);
    let (_, theirs) = app
        .get("/api/v1/omni/timeline?entityType=customer&entityId=ent_other")
        .await;
    assert_eq!(theirs["pagination"]["total"], 1);
    assert_ne!(mine["data"][0]["id"], theirs["data"][0]["id"]);

    // An unknown entity, or another tenant's, answers an empty page, not 404.
    let (s, none) = app
        .get("/api/v1/omni/timeline?entityType=contract&entityId=ctr_unknown")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(none["data"], json!([]));
    let key = app.other_tenant_key().await;
    let (s, b) =
        crate::helpers::send(app.client.get(app.url(CUSTOMER)).header("x-api-key", key)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["pagination"]["total"], 0);
}

async fn verify(app: &TestApp) -> Value {
    let (s, b) = app
        .get("/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_customer_456")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["data"].clone()
}

async fn event_ids(app: &TestApp) -> Vec<String> {
    let (_, b) = app.get(CUSTOMER).await;
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_intact_chain_verifies_with_its_head() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    advance(&app, &id, "step_docs").await;
    let v = verify(&app).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        v["events"], 4,
        "created, two advances, the approval requested"
    );
    assert_eq!(v["head"].as_str().unwrap().len(), 64);
    assert_eq!(v["brokenAt"], Value::Null);
    // The journey's events live on its customer's chain.
    let (_, j) = app
        .get(&format!(
            "/api/v1/omni/timeline/verify?entityType=journey&entityId={id}"
        ))
        .await;
    assert_eq!(j["data"]["valid"], true);
    assert_eq!(j["data"]["head"], v["head"]);
}

#[tokio::test]
async fn editing_a_stored_event_is_detected_and_named() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    advance(&app, &id, "step_docs").await;
    let ids = event_ids(&app).await;
    sqlx::query("UPDATE events SET summary = 'Journey advanced: nothing to see' WHERE id = $1")
        .bind(&ids[1])
        .execute(app.db.reader())
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["brokenAt"]["eventId"], ids[1].as_str());
    assert_eq!(v["brokenAt"]["reason"], "content_mismatch");
}

#[tokio::test]
async fn deleting_a_stored_event_is_detected_and_named() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    advance(&app, &id, "step_docs").await;
    let ids = event_ids(&app).await;
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM events WHERE id = $1")
        .bind(&ids[1])
        .fetch_one(app.db.reader())
        .await
        .unwrap();
    sqlx::query("DELETE FROM event_entities WHERE event_seq = $1")
        .bind(seq)
        .execute(app.db.reader())
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE seq = $1")
        .bind(seq)
        .execute(app.db.reader())
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(
        v["brokenAt"]["eventId"],
        ids[2].as_str(),
        "the link after the gap"
    );
    assert_eq!(v["brokenAt"]["reason"], "sequence_gap");

    // Deleting the last event breaks the stored head.
    let app = TestApp::spawn().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    let ids = event_ids(&app).await;
    sqlx::query(
        "DELETE FROM event_entities WHERE event_seq = (SELECT seq FROM events WHERE id = $1)",
    )
    .bind(&ids[1])
    .execute(app.db.reader())
    .await
    .unwrap();
    sqlx::query("DELETE FROM events WHERE id = $1")
        .bind(&ids[1])
        .execute(app.db.reader())
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["brokenAt"]["reason"], "head_mismatch");
    assert_eq!(v["brokenAt"]["eventId"], Value::Null);
}

#[tokio::test]
async fn the_export_re_verifies_independently() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    app.pass_steps(&id, &["step_kyc", "step_docs", "step_credit"])
        .await;
    let res = app
        .req(
            reqwest::Method::GET,
            "/api/v1/omni/timeline/export?entityType=customer&entityId=ent_customer_456",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "six events and the chain's head");
    assert_eq!(lines[0]["chainSeq"], 1);
    assert_eq!(lines[6]["record"], "chain_head");
    assert_eq!(lines[6]["length"], 6);
    assert_eq!(lines[6]["headHash"], verify(&app).await["head"]);

    // The reference script in tools/ (Python's hashlib, no Omnirail code) agrees...
    verify_offline(&text, true);
    // ... and sees a change to the export.
    let tampered = text.replacen("KYC Verification", "KYC Skipped", 1);
    verify_offline(&tampered, false);
}

/// Runs the reference script in tools/ (Python's hashlib, no Omnirail code) on an export, and
/// checks that it finds every chain valid, or one broken by a changed link.
pub fn verify_offline(export: &str, valid: bool) {
    let dir = std::env::temp_dir().join(omnirail::ids::new_id("export-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chain.jsonl");
    std::fs::write(&file, export).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/verify_timeline_export.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.success(), valid, "{stdout}");
    if !valid {
        assert!(stdout.contains("content_mismatch"), "{stdout}");
    }
}

#[tokio::test]
async fn a_users_events_span_chains_that_verify_one_by_one() {
    let app = TestApp::spawn().await;
    for to in ["usr_d1", "usr_d2"] {
        let (s, b) = app
            .post(
                "/api/v1/omni/delegations",
                &json!({ "delegatorId": "usr_m", "delegateeId": to, "scope": ["approvals"],
                         "validTo": crate::helpers::at(crate::helpers::DAY) }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (_, t) = app
        .get("/api/v1/omni/timeline?entityType=user&entityId=usr_m")
        .await;
    assert_eq!(t["pagination"]["total"], 2);
    assert_eq!(t["data"][0]["eventType"], "delegation.granted");
    let (s, v) = app
        .get("/api/v1/omni/timeline/verify?entityType=user&entityId=usr_m")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = &v["data"];
    assert_eq!(v["valid"], true);
    assert_eq!(v["events"], 2);
    assert_eq!(
        v["chains"].as_array().unwrap().len(),
        2,
        "one chain per delegation"
    );
    assert_eq!(v["head"], Value::Null, "several chains: see chains");
    assert!(
        v["chains"][0]["chainKey"]
            .as_str()
            .unwrap()
            .starts_with("delegation:")
    );
}

#[tokio::test]
async fn an_actor_is_named_as_they_were_when_the_event_happened() {
    let app = TestApp::spawn().await;
    let rename = |name: &'static str| {
        let app = &app;
        async move {
            let (s, b) = app
                .put("/api/v1/omni/users/usr_rm_001", &json!({ "name": name }))
                .await;
            assert!(s.is_success(), "{b}");
            // The next event happens later than the rename, not in the same millisecond.
            app.advance(std::time::Duration::from_secs(1));
        }
    };
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    // Unnamed when the first step passes; then named, then renamed.
    advance(&app, &id, "step_kyc").await;
    app.advance(std::time::Duration::from_secs(1));
    rename("Ahmed Al-Rashidi").await;
    advance(&app, &id, "step_docs").await;
    app.advance(std::time::Duration::from_secs(1));
    rename("Ahmed Al-Otaibi").await;
    let (s, b) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_credit_001", "assignedBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, body) = app.get(&format!("{CUSTOMER}&order=asc")).await;
    let names: Vec<(&str, &Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actorId"] == "usr_rm_001")
        .map(|e| (e["eventType"].as_str().unwrap(), &e["actorName"]))
        .collect();
    assert_eq!(
        names,
        [
            ("journey.advanced", &Value::Null),
            ("journey.advanced", &json!("Ahmed Al-Rashidi")),
            ("approval.requested", &json!("Ahmed Al-Rashidi")),
            ("journey.assigned", &json!("Ahmed Al-Otaibi")),
        ]
    );
    // The directory shows the name of now.
    let (_, user) = app.get("/api/v1/omni/users/usr_rm_001").await;
    assert_eq!(user["data"]["name"], "Ahmed Al-Otaibi");
}

/// Events name one to seven entities: each is indexed under every one, counted once for each,
/// and links its customer's chain, whichever way the database writes them (SQLite's one
/// command holds six; PostgreSQL's statement three; the rest go after).
#[tokio::test]
async fn events_with_many_entities_are_indexed_counted_and_chained() {
    use omnirail::events::{self, EventType, NewEvent};
    let app = TestApp::spawn().await;
    // Recorded here, not by the server: the spine's reactions are wired as the server's are.
    omnirail::wire();
    let others: Vec<String> = (0..6).map(|i| format!("jrn_many_{i}")).collect();
    for n in 0..=6 {
        let mut entities = vec![("customer", "ent_many")];
        entities.extend(others[..n].iter().map(|j| ("journey", j.as_str())));
        let mut tx = app.db.begin().await.unwrap();
        events::record(
            &mut tx,
            NewEvent {
                tenant_id: &app.tenant,
                event_type: EventType::JourneyAdvanced,
                actor_id: None,
                channel: None,
                summary: format!("An event naming {} entities", n + 1),
                metadata: json!({ "entities": n + 1 }),
                payload: json!({}),
                occurred_at: app.db.now_ms(),
                entities,
                parties: Default::default(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(app.events_of("customer", "ent_many").await.len(), 7);
    // jrn_many_0 is named by the events of 2 to 7 entities, jrn_many_5 only by the last.
    for (i, journey) in others.iter().enumerate() {
        assert_eq!(
            app.events_of("journey", journey).await.len(),
            6 - i,
            "{journey}"
        );
        let (s, page) = app
            .get(&format!(
                "/api/v1/omni/timeline?entityType=journey&entityId={journey}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(page["pagination"]["total"], 6 - i, "{page}");
    }
    let (_, v) = app
        .get("/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_many")
        .await;
    assert_eq!(v["data"]["valid"], true, "{v}");
    assert_eq!(v["data"]["events"], 7, "{v}");
}

/// The timeline's tables as they were before migration 0016 gave each one B-tree: what a
/// store written by an earlier version holds.
const BEFORE_0016_SQLITE: &str = "
CREATE TABLE ee_old (
    tenant_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL REFERENCES events(seq), occurred_at INTEGER NOT NULL,
    event_type TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, entity_type, entity_id, event_seq));
INSERT INTO ee_old SELECT tenant_id, entity_type, entity_id, event_seq, occurred_at, event_type
    FROM event_entities;
DROP TABLE event_entities;
ALTER TABLE ee_old RENAME TO event_entities;
CREATE INDEX event_entities_time
    ON event_entities(tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type);
CREATE TABLE eec_old (
    tenant_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL,
    events INTEGER NOT NULL, PRIMARY KEY (tenant_id, entity_type, entity_id));
INSERT INTO eec_old SELECT tenant_id, entity_type, entity_id, events FROM entity_event_counts;
DROP TABLE entity_event_counts;
ALTER TABLE eec_old RENAME TO entity_event_counts;
CREATE TABLE ec_old (
    tenant_id TEXT NOT NULL REFERENCES tenants(id), chain_key TEXT NOT NULL,
    length INTEGER NOT NULL, head_hash TEXT NOT NULL, PRIMARY KEY (tenant_id, chain_key));
INSERT INTO ec_old SELECT tenant_id, chain_key, length, head_hash FROM event_chains;
DROP TABLE event_chains;
ALTER TABLE ec_old RENAME TO event_chains;
DELETE FROM _sqlx_migrations WHERE version = 16";
const BEFORE_0016_POSTGRES: &str = "
ALTER TABLE event_entities DROP CONSTRAINT event_entities_pkey;
ALTER TABLE event_entities ADD PRIMARY KEY (tenant_id, entity_type, entity_id, event_seq);
CREATE INDEX event_entities_time
    ON event_entities(tenant_id, entity_type, entity_id, occurred_at, event_seq, event_type);
DELETE FROM _sqlx_migrations WHERE version = 16";

/// The customer's timeline whole, its second page of two, filtered by type, and each
/// journey's.
async fn timeline_pages(app: &TestApp, journeys: &[&str]) -> Vec<Value> {
    let mut paths = vec![
        CUSTOMER.to_owned(),
        format!("{CUSTOMER}&perPage=2&page=2"),
        format!("{CUSTOMER}&eventTypes=journey.created&order=desc"),
    ];
    for id in journeys {
        paths.push(format!(
            "/api/v1/omni/timeline?entityType=journey&entityId={id}"
        ));
    }
    let mut seen = Vec::new();
    for path in paths {
        let (s, b) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        seen.push(b);
    }
    seen
}

#[tokio::test]
async fn migrating_a_timeline_to_one_index_per_table_keeps_every_page_and_its_chain() {
    let app = TestApp::spawn().await;
    app.seed_credit_analyst().await;
    let id = app.seed_journey().await;
    advance(&app, &id, "step_kyc").await;
    let other = app.seed_journey().await;
    let before = timeline_pages(&app, &[&id, &other]).await;
    let total = before[0]["pagination"]["total"].as_i64().unwrap();
    assert_eq!(
        total, 3,
        "two journeys created, one advanced: {}",
        before[0]
    );
    let sql = if app.db.backend() == omnirail::store::Backend::Postgres {
        BEFORE_0016_POSTGRES
    } else {
        BEFORE_0016_SQLITE
    };
    for statement in sql.split(';') {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(app.db.reader())
            .await
            .unwrap();
    }
    let applied = app.db.migrate().await.unwrap();
    assert_eq!(applied, vec!["0016 fewer pages per event".to_owned()]);
    assert_eq!(timeline_pages(&app, &[&id, &other]).await, before);
    let v = verify(&app).await;
    assert_eq!(
        (v["valid"].clone(), v["events"].clone()),
        (json!(true), json!(total))
    );
    // The migrated tables take new events where the old ones left off.
    advance(&app, &other, "step_kyc").await;
    let (_, b) = app.get(CUSTOMER).await;
    assert_eq!(b["pagination"]["total"], total + 1, "{b}");
    let v = verify(&app).await;
    assert_eq!(
        (v["valid"].clone(), v["events"].clone()),
        (json!(true), json!(total + 1))
    );
}
