//! Retention periods, the sweep that applies them, and the erasure of a customer.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::notifications::{in_app, notify, put_customer};
use crate::onboarding::{add_data, configure, pdf, start, upload};
use crate::webhooks::{Receiver, app as webhook_app, endpoint};

const RETENTION: &str = "/api/v1/omni/retention";

/// Starts an onboarding for `customer`, with `first_name`'s KYC answers and a document named
/// `file`; returns (token, interviewId, journeyId, the document's id).
async fn onboarding_with_a_document(
    app: &TestApp,
    customer: &str,
    first_name: &str,
    id_number: &str,
    file: &str,
) -> (String, String, String, String) {
    let (token, interview, journey) = start(app, customer).await;
    let (s, b) = add_data(
        app,
        &token,
        "step_kyc",
        json!({ "firstName": first_name, "lastName": "Al-Qahtani", "dateOfBirth": "1988-07-14",
                "nationality": "SA", "idNumber": id_number }),
    )
    .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = upload(
        app,
        &token,
        "step_docs",
        "trade_license",
        pdf(2000),
        file,
        "application/pdf",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let document = b["document"]["id"].as_str().unwrap().to_owned();
    (token, interview, journey, document)
}

async fn sweep(app: &TestApp) -> omnirail::retention::sweep::Swept {
    omnirail::retention::sweep::sweep(&app.state(), "node_test")
        .await
        .unwrap()
}

async fn rows(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.db.reader())
        .await
        .unwrap()
}

/// Files in the test's document folder.
fn files(app: &TestApp) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { count(&p) } else { 1 }
                })
                .sum()
        })
    }
    count(&app.documents.0)
}

#[tokio::test]
async fn retention_has_defaults_and_refuses_periods_it_cannot_keep() {
    let app = TestApp::spawn().await;
    let (s, body) = app.get(RETENTION).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({ "webhookMessagesDays": 30, "notificationsDays": null, "endedSessionsDays": null,
                "onboardingDocumentsDays": null, "idempotencyHours": null,
                "idempotencyWindowHours": 24, "source": "default", "updatedAt": null })
    );
    let (s, body) = app
        .put(
            RETENTION,
            &json!({ "webhookMessagesDays": 0, "notificationsDays": 3651, "endedSessionsDays": 90,
                     "onboardingDocumentsDays": -1, "idempotencyHours": 12 }),
        )
        .await;
    assert_problem(s, &body, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "webhookMessagesDays",
            "notificationsDays",
            "onboardingDocumentsDays",
            "idempotencyHours"
        ]
    );
    for bad in [
        json!({ "keepForever": true }),
        json!({ "notificationsDays": "a year" }),
    ] {
        let (s, body) = app.put(RETENTION, &bad).await;
        assert_problem(s, &body, 422, "validation_failed");
    }
    let (_, body) = app.get(RETENTION).await;
    assert_eq!(body["data"]["source"], "default", "nothing was stored");
    let (s, body) = app
        .put(RETENTION, &json!({ "notificationsDays": 365 }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["webhookMessagesDays"], 30);
    assert_eq!(body["data"]["notificationsDays"], 365);
    let (s, body) = app
        .put(RETENTION, &json!({ "webhookMessagesDays": 7 }))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, body) = app.get(RETENTION).await;
    assert_eq!(body["data"]["webhookMessagesDays"], 7);
    assert_eq!(
        body["data"]["notificationsDays"],
        Value::Null,
        "a PUT is whole"
    );
    assert_eq!(body["data"]["source"], "tenant");
}

#[tokio::test]
async fn the_sweep_deletes_what_outlived_its_period_and_keeps_the_record() {
    let app = webhook_app().await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver.url, json!([])).await;
    configure(&app).await;
    onboarding_with_a_document(&app, "ent_retained", "Layla", "1012345678", "license.pdf").await;
    put_customer(
        &app,
        "ent_retained",
        json!({ "profile": { "name": "Layla" } }),
    )
    .await;
    let n = notify(&app, in_app("ent_retained")).await;
    let (s, session) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": "ent_retained", "channel": "WEB", "device_id": "d1" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    let (s, _) = send(app.req(Method::DELETE, &format!("/api/v1/sessions/{session_id}"))).await;
    assert!(s.is_success(), "{s}");
    let messages = wait_until("every message delivered", || async {
        let pending = rows(
            &app,
            "SELECT COUNT(*) FROM webhook_messages WHERE status = 'pending'",
        )
        .await;
        let all = rows(&app, "SELECT COUNT(*) FROM webhook_messages").await;
        (pending == 0 && all > 0).then_some(all)
    })
    .await;
    let events = rows(&app, "SELECT COUNT(*) FROM events").await;
    assert_eq!(files(&app), 1);

    // Nothing is due yet: the pass only reads (no lease is taken).
    assert_eq!(sweep(&app).await.total(), 0);
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM worker_leases").await, 0);

    // A month on: webhook messages (30 days by default) go, with their attempts; what the
    // tenant set no period for stays.
    app.advance(Duration::from_secs(31 * 86_400));
    let swept = sweep(&app).await;
    assert_eq!(swept.webhook_messages, messages as u64, "{swept:?}");
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM webhook_attempts").await, 0);
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM notifications").await, 1);
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM channel_sessions").await, 1);
    assert_eq!(files(&app), 1);

    // With periods: notifications, ended sessions and the ended onboarding's documents go too.
    let (s, body) = app
        .put(
            RETENTION,
            &json!({ "notificationsDays": 30, "endedSessionsDays": 30, "onboardingDocumentsDays": 30 }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let swept = sweep(&app).await;
    assert_eq!(
        (swept.notifications, swept.sessions, swept.documents),
        (1, 1, 1),
        "{swept:?}"
    );
    assert_eq!(
        rows(&app, "SELECT COUNT(*) FROM notification_deliveries").await,
        0
    );
    assert_eq!(
        rows(&app, "SELECT COUNT(*) FROM onboarding_documents").await,
        0
    );
    assert_eq!(files(&app), 0, "the file went with its record");
    let (s, _) = app
        .get(&format!(
            "/api/v1/omni/notifications/{}",
            n["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The record stays: every event, and the chains verify.
    assert!(rows(&app, "SELECT COUNT(*) FROM events").await >= events);
    let (_, v) = app
        .get("/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_retained")
        .await;
    assert_eq!(v["data"]["valid"], true, "{v}");
    assert_eq!(sweep(&app).await.total(), 0, "once");
}

#[tokio::test]
async fn the_sweep_works_in_batches_on_one_node_at_a_time() {
    let app = TestApp::spawn().await;
    // 1,200 expired idempotency records.
    let old = app.clock.now_ms() - 25 * 3_600_000;
    let mut tx = app.db.begin().await.unwrap();
    for i in 0..1_200 {
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, idem_key, request_hash, status_code,
             response_body, created_at) VALUES ($1, $2, 'h', 201, '{}', $3)",
        )
        .bind(&app.tenant)
        .bind(format!("k{i}"))
        .bind(old)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // Another node holds the sweep's lease: this one leaves the work to it.
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO worker_leases (name, holder, until) VALUES ('retention', 'node_other', $1)",
    )
    .bind(app.clock.now_ms() + 60_000)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sweep(&app).await.total(), 0);
    assert_eq!(
        rows(&app, "SELECT COUNT(*) FROM idempotency_keys").await,
        1_200
    );
    // Its lease lapses (it stopped): this node takes over, in batches of at most 500.
    app.advance(Duration::from_secs(61));
    let swept = sweep(&app).await;
    assert_eq!(swept.idempotency_records, 1_200);
    assert!(swept.more, "full batches say more may be waiting");
    assert_eq!(rows(&app, "SELECT COUNT(*) FROM idempotency_keys").await, 0);
    let holder: String = sqlx::query_scalar("SELECT holder FROM worker_leases")
        .fetch_one(app.db.reader())
        .await
        .unwrap();
    assert_eq!(holder, "node_test");
}

/// Every column of every table as text (a logical dump of the database, either kind).
async fn dump(app: &TestApp) -> String {
    let postgres = app.config.database_url.expose().starts_with("postgres");
    let tables: Vec<String> = if postgres {
        sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(app.db.reader())
        .await
        .unwrap()
    } else {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(app.db.reader())
        .await
        .unwrap()
    };
    let mut all = String::new();
    for table in tables {
        let sql = if postgres {
            format!("SELECT t::text FROM \"{table}\" t")
        } else {
            let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{table}')"
            )))
            .fetch_all(app.db.reader())
            .await
            .unwrap();
            let joined: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!(
                        "COALESCE(CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") \
                         ELSE CAST(\"{c}\" AS TEXT) END, '')"
                    )
                })
                .collect();
            format!("SELECT {} FROM \"{table}\"", joined.join(" || '|' || "))
        };
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(app.db.reader())
            .await
            .unwrap();
        all.push_str(&rows.join("\n"));
        all.push('\n');
    }
    all
}

#[tokio::test]
async fn erasing_a_customer_removes_their_personal_data_and_the_chain_still_verifies() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let customer = "ent_erased_01";
    let (token, interview, journey, document) =
        onboarding_with_a_document(&app, customer, "Nourah", "1098765432", "nourah-license.pdf")
            .await;
    put_customer(
        &app,
        customer,
        json!({ "profile": { "name": "Nourah Al-Qahtani", "email": "nourah@example.sa",
                             "phone": "+966501234567" } }),
    )
    .await;
    let (s, b) = app
        .put(
            &format!("/api/v1/customers/{customer}/devices/phone-nourah"),
            &json!({ "platform": "ios", "push_token": "apns-token-nourah-0001" }),
        )
        .await;
    assert!(s.is_success(), "{b}");
    notify(
        &app,
        json!({ "recipientId": customer, "channels": ["in_app"], "templateCode": "JOURNEY_STEP_REQUIRED",
                "templateData": {"stepName": "Nourah's income proof"} }),
    )
    .await;
    let (s, b) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": customer, "channel": "WEB", "device_id": "nourah-laptop",
                     "context": { "draft": "transfer to Nourah's savings" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let personal = [
        "Nourah",
        "nourah@example.sa",
        "+966501234567",
        "1098765432",
        "apns-token-nourah-0001",
        "nourah-laptop",
    ];
    // The in-app notification delivered (its outcome is recorded asynchronously), so that
    // nothing is under way while the dumps are compared.
    wait_until("the notification delivered", || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notification_deliveries WHERE status = 'pending'",
        )
        .fetch_one(app.db.reader())
        .await
        .unwrap();
        (pending == 0).then_some(())
    })
    .await;
    let before = dump(&app).await;
    for p in personal {
        assert!(before.contains(p), "the dump sees {p}");
    }
    assert_eq!(files(&app), 1);

    // Refused without a reason, for an unknown customer; nothing changes.
    let path = format!("/api/v1/customers/{customer}/erasure");
    let (s, body) = app.post(&path, &json!({ "reason": " " })).await;
    assert_problem(s, &body, 422, "validation_failed");
    let (s, body) = app
        .post(
            "/api/v1/customers/ent_nobody/erasure",
            &json!({ "reason": "DSR" }),
        )
        .await;
    assert_problem(s, &body, 404, "not_found");
    assert_eq!(
        dump(&app).await,
        before,
        "a refused erasure changes nothing"
    );

    let (s, erased) = app
        .post(
            &path,
            &json!({ "reason": "Data subject request under GDPR Art. 17", "reference": "DSR-2026-0042" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{erased}");
    assert_eq!(erased["customer_id"], customer);
    assert_eq!(erased["devices"], 1, "{erased}");
    assert_eq!(erased["notifications"], 1, "{erased}");
    assert_eq!(erased["sessions"], 1, "{erased}");
    assert_eq!(erased["onboardings"], 1, "{erased}");
    assert_eq!(erased["documents"], 1, "{erased}");
    assert!(erased["events"].as_u64().unwrap() >= 4, "{erased}");
    assert_eq!(erased["events_kept"], 0, "{erased}");

    let after = dump(&app).await;
    for p in personal {
        let found: Vec<&str> = after.lines().filter(|l| l.contains(p)).collect();
        assert!(found.is_empty(), "{p} is still stored: {found:#?}");
    }
    assert_eq!(files(&app), 0, "the document's file is gone");
    let (s, _) = app
        .get(&format!(
            "/api/v1/omni/onboarding/{interview}/documents/{document}"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The session token no longer works.
    let (s, _) = send(
        app.client
            .get(app.url("/omni/session"))
            .header("api-version", "1.0")
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The record stays: the journey, and every event, whose chain verifies, offline too.
    let (s, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let query = format!("entityType=customer&entityId={customer}");
    let (_, v) = app
        .get(&format!("/api/v1/omni/timeline/verify?{query}"))
        .await;
    assert_eq!(v["data"]["valid"], true, "{v}");
    let (_, t) = app
        .get(&format!(
            "/api/v1/omni/timeline?{query}&order=asc&perPage=200"
        ))
        .await;
    let items = t["data"].as_array().unwrap();
    let last = items.last().unwrap();
    assert_eq!(last["eventType"], "customer.erased");
    assert_eq!(last["metadata"]["reference"], "DSR-2026-0042");
    assert!(
        items[..items.len() - 1]
            .iter()
            .all(|e| e["summary"] == "(erased)"),
        "{t}"
    );
    let export = app.export(&query).await;
    crate::timeline::verify_offline(&export, true);
    assert!(!export.contains("Nourah"));

    // Erasing again erases what came since, and nothing else.
    let (s, again) = app.post(&path, &json!({ "reason": "repeat" })).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["documents"], 0);
    assert_eq!(
        again["events"], 0,
        "the first erasure's record stays: {again}"
    );
}

/// A tenant's idempotency window: a retry within it replays the first answer, the sweep keeps
/// the record as long, and deletes it after.
#[tokio::test]
async fn a_tenants_idempotency_window_is_how_long_retries_replay_and_records_are_kept() {
    let app = TestApp::spawn().await;
    let (s, body) = app.put(RETENTION, &json!({ "idempotencyHours": 48 })).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["idempotencyWindowHours"], 48);
    let create = || {
        app.req(Method::POST, "/api/v1/omni/templates")
            .header("idempotency-key", "tmpl-once")
            .json(&seed_template())
    };
    let (s, first) = send(create()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // Thirty hours on, past the deployment's 24 but within the tenant's 48: replayed, kept.
    app.advance(Duration::from_secs(30 * 3_600));
    let res = create().send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(sweep(&app).await.idempotency_records, 0);
    // Past 48 hours: swept, and the key is free again.
    app.advance(Duration::from_secs(19 * 3_600));
    assert_eq!(sweep(&app).await.idempotency_records, 1);
    let (s, body) = send(create()).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a new request, refused as a duplicate id: {body}"
    );
}
