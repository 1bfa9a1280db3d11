//! Crash safety: servers are killed with SIGKILL at random moments under write load (journeys,
//! approvals, handoffs, notifications), five times, and restarted. Every write acknowledged
//! before a kill is there afterwards, whole; no request retried with its `Idempotency-Key` was
//! applied twice; every notification and webhook message is delivered, a webhook twice only
//! once the first sending's lease ran out unrecorded. One node on either database, and three
//! nodes on one PostgreSQL with a client spreading its requests over them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::cli::{free_port, serve_with_env, terminate};
use crate::helpers::{CHANGES_ONLY, PATIENCE, TestDb, tenant_with_key};
use crate::webhooks::{Receiver, worker_env};

const CLIENTS: usize = 6;
const KILLS: usize = 5;
/// How long a process holds the webhook messages and notification deliveries it claims
/// (10 s): a killed node's are sent by another, or by itself restarted, after that. Long
/// beside the time from a claim to its sending, even on a loaded machine (see the check of
/// duplicates below).
const LEASE_MS: &str = "10000";
/// Two arrivals of one message closer than this mean two claims held it at once.
const SAME_CLAIM: Duration = Duration::from_secs(5);
const STEPS: [&str; 3] = ["step_form", "step_docs", "step_review"];

/// One acknowledged request: how to send it again, and what it answered.
struct Acked {
    path: String,
    key: String,
    body: Value,
    status: StatusCode,
    answer: Value,
    /// Sends it took: more than one when a kill (or the restart) met it.
    attempts: u32,
}

/// Sends `body` to `path` with `key` until a server answers it (a kill in between is a
/// connection error, after which the same request is sent again, to the next node, as a client
/// behind a load balancer would); fails the test if none has within [`PATIENCE`].
async fn until_answered(
    client: &reqwest::Client,
    bases: &RwLock<Vec<String>>,
    api_key: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Acked {
    let mut attempts = 0;
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "{path} ({key}) unanswered after {PATIENCE:?} of sending it again"
        );
        attempts += 1;
        let url = {
            let bases = bases.read().await;
            format!(
                "{}{path}",
                bases[(attempts as usize + key.len()) % bases.len()]
            )
        };
        let res = client
            .post(url)
            .header("x-api-key", api_key)
            .header("idempotency-key", key)
            .json(body)
            .timeout(PATIENCE)
            .send()
            .await;
        if let Ok(res) = res {
            let status = res.status();
            // A 503 (the database busy while the process restarts) is no answer either.
            if status != StatusCode::SERVICE_UNAVAILABLE
                && let Ok(answer) = res.json::<Value>().await
            {
                return Acked {
                    path: path.to_owned(),
                    key: key.to_owned(),
                    body: body.clone(),
                    status,
                    answer,
                    attempts,
                };
            }
        }
        // Not synchronisation: a client's pause before it sends again.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a client does after each journey: requests an approval and decides it, hands its
/// customer's web session off to the phone and resumes it there, and sends the customer a
/// notification; every request acknowledged with the status it should have.
async fn other_rails(
    client: &reqwest::Client,
    bases: &RwLock<Vec<String>>,
    api_key: &str,
    c: usize,
    key: &str,
    acked: &mut Vec<Acked>,
) {
    let customer = format!("ent_crash_{c}");
    let requests: [(&str, &str, StatusCode); 6] = [
        ("/api/v1/omni/approvals", "approval", StatusCode::CREATED),
        (
            "/api/v1/omni/approvals/{}/decisions",
            "decide",
            StatusCode::CREATED,
        ),
        ("/api/v1/sessions", "session", StatusCode::CREATED),
        ("/api/v1/sessions/handoff", "handoff", StatusCode::CREATED),
        ("/api/v1/sessions/resume", "resume", StatusCode::OK),
        ("/api/v1/omni/notifications", "notify", StatusCode::CREATED),
    ];
    let context = json!({ "current_flow": "PAYMENT", "transaction_draft_id": "draft_abc789" });
    for (path, suffix, want) in requests {
        let last = &acked.last().unwrap().answer;
        let (path, body) = match suffix {
            "approval" => (
                path.to_owned(),
                json!({
                    "entityType": "contract", "entityId": format!("ctr_{key}"),
                    "approvalType": "limit_increase", "requestedBy": "usr_rm_001",
                    "approvers": [{ "userId": "usr_credit_001", "required": true }],
                    "amount": { "amount": 250000, "currency": "SAR" },
                    "expiresAt": "2099-01-01T00:00:00Z"
                }),
            ),
            "decide" => (
                path.replace("{}", last["data"]["id"].as_str().unwrap()),
                json!({ "approverId": "usr_credit_001", "decision": "approve" }),
            ),
            "session" => (
                path.to_owned(),
                json!({
                    "customer_id": customer, "channel": "WEB", "device_id": "device_web_001",
                    "context": context
                }),
            ),
            "handoff" => (
                path.to_owned(),
                json!({
                    "source_session_id": last["session_id"], "target_channel": "MOBILE_IOS",
                    "context": context
                }),
            ),
            "resume" => (
                path.to_owned(),
                json!({
                    "handoff_token": last["handoff_token"], "channel": "MOBILE_IOS",
                    "device_id": "device_ios_001"
                }),
            ),
            _ => (
                path.to_owned(),
                json!({
                    "recipientId": customer, "channels": ["in_app"],
                    "templateCode": "JOURNEY_STEP_REQUIRED",
                    "templateData": { "journeyName": "Crash onboarding", "stepName": "Documents",
                                      "dueDate": "2024-01-17" }
                }),
            ),
        };
        let done = until_answered(
            client,
            bases,
            api_key,
            &path,
            &format!("{key}-{suffix}"),
            &body,
        )
        .await;
        assert_eq!(done.status, want, "{path}: {}", done.answer);
        acked.push(done);
    }
}

/// A few hundred milliseconds, different each time.
fn jitter_ms() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    300 + u64::from(nanos % 900)
}

#[tokio::test]
async fn five_kill_9s_under_load_lose_no_acknowledged_write_and_apply_no_retry_twice() {
    run_on(TestDb::new().await, 1).await;
}

#[tokio::test]
async fn three_nodes_on_one_postgres_survive_their_kills_one_at_a_time() {
    let db = TestDb::new().await;
    if !db.url.starts_with("postgres") {
        eprintln!("several nodes share PostgreSQL only: this runs in the PostgreSQL pass");
        return;
    }
    run_on(db, 3).await;
}

/// Drives journeys through `nodes` servers on `db` while killing one at a time, `KILLS` times,
/// then checks what was acknowledged, what was recorded, and what was delivered.
async fn run_on(db: TestDb, nodes: usize) {
    let store = db.open().await;
    let (tenant, api_key) = tenant_with_key(&store, "Crash Bank").await;
    // An endpoint for every event: each committed event must have its message, delivered.
    let rx = Receiver::start().await;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, enabled, secret,
             created_at, updated_at)
         VALUES ('ep_all', $1, $2, '[]', 1, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 0, 0)",
    )
    .bind(&tenant)
    .bind(&rx.url)
    .execute(store.reader())
    .await
    .unwrap();

    let mut env = worker_env(LEASE_MS).to_vec();
    env.push(("OMNIRAIL_NOTIFICATION_LEASE_MS", LEASE_MS));
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..nodes {
        let port = free_port();
        servers.push(serve_with_env(&db.url, port, &env).await);
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    let bases = Arc::new(RwLock::new(urls));
    let client = reqwest::Client::new();
    let template = json!({ "id": "tmpl_crash", "name": "Crash onboarding", "steps": [
        { "id": "step_form", "name": "Form", "type": "form", "order": 1 },
        { "id": "step_docs", "name": "Documents", "type": "document_upload", "order": 2 },
        { "id": "step_review", "name": "Review", "type": "review", "order": 3 }
    ]});
    let made = until_answered(
        &client,
        &bases,
        &api_key,
        "/api/v1/omni/templates",
        "tmpl",
        &template,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.answer);

    // Clients drive journeys from creation to completion until the last kill, then finish the
    // journey in hand.
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (client, bases, api_key) = (client.clone(), bases.clone(), api_key.clone());
        let (stop, in_flight) = (stop.clone(), in_flight.clone());
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let create = json!({ "templateId": "tmpl_crash",
                    "customerId": format!("ent_crash_{c}"), "assigneeId": "usr_rm_001" });
                let key = format!("c{c}-j{n}");
                let created = until_answered(
                    &client,
                    &bases,
                    &api_key,
                    "/api/v1/omni/journeys",
                    &format!("{key}-create"),
                    &create,
                )
                .await;
                assert_eq!(created.status, StatusCode::CREATED, "{}", created.answer);
                let id = created.answer["data"]["id"].as_str().unwrap().to_owned();
                acked.push(created);
                for step in STEPS {
                    let advanced = until_answered(
                        &client,
                        &bases,
                        &api_key,
                        &format!("/api/v1/omni/journeys/{id}/advance"),
                        &format!("{key}-{step}"),
                        &json!({ "completedStepId": step, "advancedBy": "usr_rm_001" }),
                    )
                    .await;
                    assert_eq!(advanced.status, StatusCode::OK, "{}", advanced.answer);
                    acked.push(advanced);
                }
                let completed = until_answered(
                    &client,
                    &bases,
                    &api_key,
                    &format!("/api/v1/omni/journeys/{id}/complete"),
                    &format!("{key}-complete"),
                    &json!({ "completedBy": "usr_rm_001", "outcome": "approved" }),
                )
                .await;
                assert_eq!(completed.status, StatusCode::OK, "{}", completed.answer);
                acked.push(completed);
                other_rails(&client, &bases, &api_key, c, &key, &mut acked).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                n += 1;
            }
            acked
        }));
    }

    // One node at a time is killed and started again (on a new port, as a replaced instance
    // behind the balancer would be); the others carry on.
    for k in 0..KILLS {
        // Not synchronisation: the kill comes at a random moment of the load.
        tokio::time::sleep(Duration::from_millis(jitter_ms())).await;
        let victim = k % nodes;
        servers[victim].kill().unwrap(); // SIGKILL
        servers[victim].wait().unwrap();
        let port = free_port();
        servers[victim] = serve_with_env(&db.url, port, &env).await;
        bases.write().await[victim] = format!("http://127.0.0.1:{port}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.unwrap());
    }
    let load_done = Instant::now();
    assert_eq!(in_flight.load(Ordering::Relaxed), 0);
    let journeys = acked
        .iter()
        .filter(|a| a.path.ends_with("/journeys"))
        .count();
    assert!(journeys >= CLIENTS, "only {journeys} journeys under load");
    let resent = acked.iter().filter(|a| a.attempts > 1).count();
    eprintln!(
        "{nodes} node(s): {journeys} journeys, {} acknowledged requests, {resent} sent again after a kill",
        acked.len()
    );
    assert!(resent > 0, "no kill met a request in flight");

    let base = bases.read().await[0].clone();
    let get = |path: String| {
        let req = client
            .get(format!("{base}{path}"))
            .header("x-api-key", &api_key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Every acknowledged journey is there, completed, its history one entry per step.
    for created in acked.iter().filter(|a| a.path.ends_with("/journeys")) {
        let id = created.answer["data"]["id"].as_str().unwrap();
        let got = get(format!("/api/v1/omni/journeys/{id}")).await;
        assert_eq!(got["data"]["status"], "completed", "{got}");
        let history: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM journey_step_history WHERE journey_id = $1")
                .bind(id)
                .fetch_one(store.reader())
                .await
                .unwrap();
        assert_eq!(history, STEPS.len() as i64, "{id}'s history");
    }
    // Nothing beyond them: no create applied twice, no change recorded twice.
    let count = |sql: &'static str| {
        let store = &store;
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(store.reader())
                .await
                .unwrap()
        }
    };
    let n = journeys as i64;
    assert_eq!(count("SELECT COUNT(*) FROM journeys").await, n);
    for (event, per_journey) in [
        ("omni.journey.created", 1),
        ("omni.journey.advanced", STEPS.len() as i64),
        ("omni.journey.completed", 1),
    ] {
        let got: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = $1")
            .bind(event)
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(got, n * per_journey, "{event} events");
    }
    // Every acknowledged approval is decided once, every handoff resumed once (into one
    // session of its own), every notification stored once.
    for (what, sql) in [
        (
            "approvals",
            "SELECT COUNT(*) FROM approvals WHERE status = 'approved'",
        ),
        ("approvals", "SELECT COUNT(*) FROM approvals"),
        ("decisions", "SELECT COUNT(*) FROM approval_decisions"),
        (
            "handoffs",
            "SELECT COUNT(*) FROM handoffs WHERE used_at IS NOT NULL",
        ),
        ("handoffs", "SELECT COUNT(*) FROM handoffs"),
        (
            "resumed sessions",
            "SELECT COUNT(DISTINCT target_session_id) FROM handoffs",
        ),
        (
            "resumed sessions",
            "SELECT COUNT(*) FROM channel_sessions WHERE handoff_id IS NOT NULL",
        ),
        (
            "web sessions",
            "SELECT COUNT(*) FROM channel_sessions WHERE handoff_id IS NULL",
        ),
        (
            "notifications",
            "SELECT COUNT(*) FROM notifications WHERE source_event IS NULL",
        ),
    ] {
        assert_eq!(count(sql).await, n, "{what}: {sql}");
    }
    for event in [
        "omni.approval.requested",
        "omni.approval.approved",
        "omni.session.handoff_created",
        "omni.session.resumed",
    ] {
        let got: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = $1")
            .bind(event)
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(got, n, "{event} events");
    }
    // Besides those sent through the API, the notification rules notify one person of some
    // events (an assignment, say), which happen once a journey: n of each kind. Each
    // notification is one created event.
    let by_rules: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source_event, COUNT(*) FROM notifications WHERE source_event IS NOT NULL
         GROUP BY source_event",
    )
    .fetch_all(store.reader())
    .await
    .unwrap();
    for (event, got) in by_rules {
        assert_eq!(got, n, "notifications of {event}");
    }
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE event_type = 'omni.notification.created'").await,
        count("SELECT COUNT(*) FROM notifications").await
    );
    // The notifications are delivered by the living nodes, as the webhook messages are.
    let deadline = Instant::now() + PATIENCE;
    while count("SELECT COUNT(*) FROM notification_deliveries WHERE status = 'pending'").await > 0 {
        if Instant::now() > deadline {
            let held: Vec<(String, Option<i64>)> = sqlx::query_as(
                "SELECT channel, lease_until FROM notification_deliveries
                 WHERE status = 'pending' LIMIT 5",
            )
            .fetch_all(store.reader())
            .await
            .unwrap();
            panic!(
                "notifications undelivered {PATIENCE:?} after the load (now {}; channel, lease): {held:?}",
                omnirail::time::Clock::default().now_ms()
            );
        }
        // Not synchronisation: the pause between two looks at the deliveries.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every committed event has its webhook message, once (counted in one statement, so an
    // event committing meanwhile cannot come between the two counts); the issue of the
    // tenant's key came before its endpoint.
    assert_eq!(
        count(
            "SELECT (SELECT COUNT(*) FROM events WHERE event_type <> 'omni.api_key.created') \
             - (SELECT COUNT(*) FROM webhook_messages)"
        )
        .await,
        0
    );
    let messages = count("SELECT COUNT(*) FROM webhook_messages").await;
    // Each customer's hash chain verifies.
    for c in 0..CLIENTS {
        let v = get(format!(
            "/api/v1/omni/timeline/verify?entityType=customer&entityId=ent_crash_{c}"
        ))
        .await;
        assert_eq!(v["data"]["valid"], true, "ent_crash_{c}: {v}");
    }
    // The database file is whole.
    if store.backend() == omnirail::store::Backend::Sqlite {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let broken = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(store.reader())
            .await
            .unwrap();
        assert!(broken.is_empty(), "{} broken references", broken.len());
    }

    // Background work: the messages a killed node held are sent by the living once its lease
    // ends; every message is delivered, soon after the load ends.
    let deadline = load_done + PATIENCE;
    loop {
        let undelivered =
            count("SELECT COUNT(*) FROM webhook_messages WHERE status <> 'delivered'").await;
        if undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{undelivered} messages undelivered {PATIENCE:?} after the load"
        );
        // Not synchronisation: the pause between two looks at the messages.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("all delivered {:?} after the load", load_done.elapsed());
    // Each arrived. A second time only after the first sending's lease ran out with its
    // outcome unrecorded (its node killed, or too slow to record in time): a message is never
    // sent twice while a claim on it holds. A claimed message is sent within two rounds of its
    // endpoint's sends (the 900 ms timeout of worker_env), so a sending some 2 s into a 10 s
    // lease (5 s on a machine so loaded it takes that much longer), and another sending at
    // least 5 s after it; two nodes claiming the same message would send it twice within
    // milliseconds.
    let got = rx.got();
    let mut arrivals: HashMap<&str, Vec<Instant>> = HashMap::new();
    for r in &got {
        arrivals.entry(r.id.as_str()).or_default().push(r.at);
    }
    assert_eq!(arrivals.len() as i64, messages, "messages that arrived");
    let mut twice = 0;
    for (id, at) in &mut arrivals {
        at.sort();
        twice += usize::from(at.len() > 1);
        for pair in at.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= SAME_CLAIM,
                "{id} arrived again {gap:?} after it first arrived, within its first claim's lease"
            );
        }
    }
    eprintln!("{twice} of {messages} messages arrived twice, each after a lease ran out");

    // Sent again, every acknowledged request replays its first answer and changes nothing.
    // Events of changes only: a notification's delivery may still be recorded meanwhile.
    let changes: &'static str =
        Box::leak(format!("SELECT COUNT(*) FROM events WHERE {CHANGES_ONLY}").into_boxed_str());
    let events = count(changes).await;
    for a in &acked {
        let again = until_answered(&client, &bases, &api_key, &a.path, &a.key, &a.body).await;
        assert_eq!(
            (again.status, &again.answer),
            (a.status, &a.answer),
            "{}",
            a.key
        );
    }
    assert_eq!(count(changes).await, events);
    for mut server in servers {
        assert!(terminate(&mut server).success());
    }
    store.close().await;
}
