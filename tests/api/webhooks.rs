//! Webhooks over HTTP, against a real receiver each test starts: subscription, Standard
//! Webhooks signatures checked with the reference library, retries, redirects, replay, secret
//! rotation, disabling, SSRF refusals, and delivery across crashes and processes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, at, send, wait_until};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }
}

struct Inbox {
    got: Mutex<Vec<Received>>,
    /// Statuses to answer, in turn; 200 once they run out.
    plan: Mutex<VecDeque<u16>>,
    /// Answered to every request once the plan is spent, instead of 200.
    always: Mutex<Option<u16>>,
    /// Requests beyond this many are held unanswered until it is lifted (`None`).
    hold_after: tokio::sync::watch::Sender<Option<usize>>,
}

/// A webhook receiver on a random local port.
pub struct Receiver {
    pub url: String,
    inbox: Arc<Inbox>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inbox = Arc::new(Inbox {
            got: Mutex::default(),
            plan: Mutex::default(),
            always: Mutex::default(),
            hold_after: tokio::sync::watch::Sender::new(None),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inbox }
    }

    fn answer_first(&self, statuses: &[u16]) {
        self.inbox.plan.lock().unwrap().extend(statuses);
    }

    fn answer_always(&self, status: Option<u16>) {
        *self.inbox.always.lock().unwrap() = status;
    }

    /// Answers the first `n` requests from now on as planned, and holds every later one
    /// unanswered (as a slow receiver would, for as long as the test needs) until
    /// [`Receiver::release`].
    fn hold_after(&self, n: usize) {
        let held = self.got().len() + n;
        self.inbox.hold_after.send_replace(Some(held));
    }

    /// Answers the held requests, and every later one at once.
    fn release(&self) {
        self.inbox.hold_after.send_replace(None);
    }

    pub fn got(&self) -> Vec<Received> {
        self.inbox.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received, and returns it; fails the test after
    /// [`PATIENCE`], saying what had arrived.
    pub async fn wait(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        wait_until(
            format_args!("the messages the test expects at {}", self.url),
            || async {
                let got = self.got();
                done(&got).then_some(got)
            },
        )
        .await
    }
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let arrived = {
        let mut got = inbox.got.lock().unwrap();
        got.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        got.len()
    };
    let _ = inbox
        .hold_after
        .subscribe()
        .wait_for(|held| held.is_none_or(|n| arrived <= n))
        .await;
    let planned = inbox.plan.lock().unwrap().pop_front();
    let status = planned.or(*inbox.always.lock().unwrap()).unwrap_or(200);
    let status = AxumStatus::from_u16(status).unwrap();
    let body = if status.is_success() {
        "thanks"
    } else {
        "not now"
    };
    (status, body)
}

/// A server that may deliver to the receivers tests start on 127.0.0.1 over plain HTTP, with
/// a compressed retry schedule.
pub async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_private_targets = true;
        c.webhooks.retry_schedule_ms = vec![100, 100, 100];
        c.webhooks.poll_ms = 50;
    })
    .await
}

pub async fn endpoint(app: &TestApp, url: &str, event_types: Value) -> Value {
    let (s, body) = app
        .post(
            "/api/v1/omni/webhooks/endpoints",
            &json!({ "url": url, "eventTypes": event_types, "description": "core banking" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

/// Verifies each message with the Standard Webhooks reference library (PyPI
/// `standardwebhooks`), under every secret given, and checks that a one-byte change fails.
/// `OMNIRAIL_TEST_WEBHOOKS_PYTHON` names a Python that has it (`.ci/run` installs one).
fn verify_with_reference_library(secrets: &[&str], got: &[Received]) {
    let Ok(python) = std::env::var("OMNIRAIL_TEST_WEBHOOKS_PYTHON") else {
        // In CI the library is always there: a missing one is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "OMNIRAIL_TEST_WEBHOOKS_PYTHON must name a Python with standardwebhooks in CI"
        );
        eprintln!("skipped: OMNIRAIL_TEST_WEBHOOKS_PYTHON is not set (.ci/run sets it)");
        return;
    };
    let cases: Vec<Value> = got
        .iter()
        .map(|r| {
            json!({ "id": r.id, "timestamp": r.timestamp, "signature": r.signature, "body": r.body })
        })
        .collect();
    let input = json!({ "secrets": secrets, "cases": cases }).to_string();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
spec = json.load(sys.stdin)
checked = 0
for secret in spec["secrets"]:
    wh = Webhook(secret)
    for c in spec["cases"]:
        headers = {"webhook-id": c["id"], "webhook-timestamp": c["timestamp"], "webhook-signature": c["signature"]}
        wh.verify(c["body"], headers)
        body = bytearray(c["body"].encode())
        body[len(body) // 2] ^= 1
        try:
            wh.verify(bytes(body), headers)
            sys.exit("a changed body verified: " + c["id"])
        except WebhookVerificationError:
            pass
        checked += 1
print("verified", checked)
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        format!("verified {}", secrets.len() * got.len())
    );
}

const SEED_EVENTS: [&str; 10] = [
    "omni.journey.created",
    "omni.journey.advanced",
    "omni.journey.assigned",
    "omni.journey.completed",
    "omni.journey.cancelled",
    "omni.approval.requested",
    "omni.approval.approved",
    "omni.approval.rejected",
    "omni.delegation.granted",
    "omni.delegation.revoked",
];

fn types(got: &[Received]) -> HashSet<String> {
    got.iter().map(Received::event_type).collect()
}

#[tokio::test]
async fn every_seed_event_reaches_a_subscribed_endpoint_signed_and_no_other() {
    let app = app().await;
    let all = Receiver::start().await;
    let delegations = Receiver::start().await;
    let sessions = Receiver::start().await;
    let a = endpoint(&app, &all.url, json!(SEED_EVENTS)).await;
    let d_ep = endpoint(&app, &delegations.url, json!(["omni.delegation.*"])).await;
    let s_ep = endpoint(&app, &sessions.url, json!(["omni.session.*"])).await;

    // Every event of seed 001: a journey from created to completed, with an assignment and
    // its approval step approved; another cancelled; an approval rejected; a delegation
    // granted and revoked.
    app.seed_credit_analyst().await;
    let journey = app.seed_journey().await;
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/assign"),
            &json!({ "assigneeId": "usr_rm_002", "assigneeType": "user", "reason": "leave", "notifyAssignee": false }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    app.pass_steps(&journey, &["step_kyc", "step_docs", "step_credit"])
        .await;
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/complete"),
            &json!({ "completedBy": "usr_rm_001", "outcome": "success" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, other) = app
        .post("/api/v1/omni/journeys", &crate::helpers::seed_journey())
        .await;
    let other = other["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{other}/cancel"),
            &json!({ "cancellationReason": "Customer withdrew application", "cancelledBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, approval) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({
                "entityType": "payment", "entityId": "pay_001", "approvalType": "payment_release",
                "requestedBy": "usr_rm_001",
                "approvers": [{ "userId": "usr_credit_001", "role": "primary", "required": true }],
                "expiresAt": at(3_600_000)
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{approval}");
    let (s, body) = app
        .post(
            &format!(
                "/api/v1/omni/approvals/{}/decisions",
                approval["data"]["id"].as_str().unwrap()
            ),
            &json!({ "approverId": "usr_credit_001", "decision": "reject" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, delegation) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({
                "delegatorId": "usr_manager_001", "delegateeId": "usr_deputy_002",
                "scope": ["approvals"], "validFrom": at(-1000), "validTo": at(3_600_000),
                "reason": "Annual leave coverage"
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{delegation}");
    let (s, body) = app
        .post(
            &format!(
                "/api/v1/omni/delegations/{}/revoke",
                delegation["data"]["id"].as_str().unwrap()
            ),
            &json!({ "revokedBy": "usr_manager_001", "reason": "Back early" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let want: HashSet<String> = SEED_EVENTS.iter().map(|s| s.to_string()).collect();
    let got = all.wait(|g| types(g).is_superset(&want)).await;
    assert_eq!(
        types(&got),
        want,
        "the subscribed endpoint got exactly the seed's events"
    );
    let d = delegations.wait(|g| g.len() >= 2).await;
    assert_eq!(
        types(&d),
        HashSet::from([
            "omni.delegation.granted".into(),
            "omni.delegation.revoked".into()
        ])
    );
    // Messages are written with their events: the other endpoints were written exactly these.
    let d_ep = d_ep["id"].as_str().unwrap();
    assert_eq!(messages(&app, d_ep, "").await.len(), 2);
    assert_eq!(delegations.got().len(), 2);
    assert!(
        messages(&app, s_ep["id"].as_str().unwrap(), "")
            .await
            .is_empty()
    );
    assert!(sessions.got().is_empty(), "{:?}", sessions.got());

    // The body is {type, timestamp, data}; the data is the object as the API shows it.
    // Two journeys were created and their messages are sent concurrently, in either order.
    let created = got
        .iter()
        .map(Received::json)
        .find(|m| m["type"] == "omni.journey.created" && m["data"]["id"] == journey.as_str())
        .expect("the first journey's created event");
    assert_eq!(created["data"]["templateId"], "tmpl_onboarding_sme");
    assert!(omnirail::time::parse_rfc3339(created["timestamp"].as_str().unwrap()).is_some());
    // Signatures verify with the reference library and fail after a one-byte change.
    verify_with_reference_library(&[a["secret"].as_str().unwrap()], &got);
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "one webhook-id per message");
}

/// The messages of an endpoint, as the API lists them.
async fn messages(app: &TestApp, endpoint: &str, query: &str) -> Vec<Value> {
    let (s, body) = app
        .get(&format!(
            "/api/v1/omni/webhooks/endpoints/{endpoint}/messages{query}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Polls the message until `status`.
async fn message_reaches(app: &TestApp, id: &str, status: &str) -> Value {
    wait_until(format_args!("message {id} to be {status}"), || async {
        let (_, m) = app
            .get(&format!("/api/v1/omni/webhooks/messages/{id}"))
            .await;
        (m["data"]["status"] == status).then(|| m["data"].clone())
    })
    .await
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_message_three_times_with_one_id() {
    let app = app().await;
    let rx = Receiver::start().await;
    rx.answer_first(&[500, 500]);
    let ep = endpoint(&app, &rx.url, json!(["omni.journey.created"])).await;
    let ep = ep["id"].as_str().unwrap();
    app.seed_journey().await;
    let got = rx.wait(|g| g.len() >= 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|r| r.id == got[0].id));
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same bytes each time"
    );

    let m = message_reaches(&app, &got[0].id, "delivered").await;
    assert_eq!(m["attempts"], 3);
    assert_eq!(m["eventType"], "omni.journey.created");
    assert_eq!(m["payload"], got[0].json());
    let (s, attempts) = app
        .get(&format!(
            "/api/v1/omni/webhooks/messages/{}/attempts",
            got[0].id
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    let attempts = attempts["data"].as_array().unwrap();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(attempts[0]["succeeded"], false);
    assert_eq!(attempts[0]["responseBody"], "not now");
    assert_eq!(attempts[0]["error"], "HTTP 500");
    assert_eq!(attempts[2]["succeeded"], true);
    assert_eq!(attempts[2]["responseBody"], "thanks");
    assert!(attempts[2]["durationMs"].as_i64().unwrap() >= 0);

    let listed = messages(&app, ep, "?status=delivered").await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("payload").is_none());
    assert!(messages(&app, ep, "?status=failed").await.is_empty());
    let (s, stats) = app
        .get(&format!("/api/v1/omni/webhooks/endpoints/{ep}/stats"))
        .await;
    assert_eq!(s, StatusCode::OK, "{stats}");
    assert_eq!(stats["data"]["attempts"], 3);
    assert_eq!(stats["data"]["succeeded"], 1);
    assert_eq!(stats["data"]["failed"], 2);
    let rate = stats["data"]["successRate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(stats["data"]["messages"]["delivered"], 1);
}

#[tokio::test]
async fn redirects_fail_the_schedule_ends_in_failed_and_retry_and_replay_send_again() {
    let app = app().await;
    let rx = Receiver::start().await;
    rx.answer_always(Some(302));
    let ep = endpoint(&app, &rx.url, json!(["omni.template.*"])).await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    let since = at(-1000);
    let (s, _) = app
        .post("/api/v1/omni/templates", &crate::helpers::seed_template())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // One attempt, then the three retries of the schedule: four, all failed.
    let got = rx.wait(|g| g.len() >= 4).await;
    let m = message_reaches(&app, &got[0].id, "failed").await;
    assert_eq!(m["attempts"], 4);
    assert_eq!(m["lastStatusCode"], 302);
    assert!(m["lastError"].as_str().unwrap().contains("redirect"), "{m}");
    assert!(
        m["nextAttemptAt"].is_null(),
        "nothing after the schedule is spent"
    );
    assert_eq!(rx.got().len(), 4);

    rx.answer_always(None);
    let (s, retried) = app
        .post(
            &format!("/api/v1/omni/webhooks/messages/{}/retry", got[0].id),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["data"]["status"], "pending");
    message_reaches(&app, &got[0].id, "delivered").await;
    assert_eq!(rx.got().len(), 5);

    // A failed message is sent again by a replay since before it; a later `since` finds none.
    rx.answer_always(Some(503));
    let (s, archived) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "status": "archived" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{archived}");
    let got = rx.wait(|g| g.len() >= 9).await;
    let second = got[5].id.clone();
    message_reaches(&app, &second, "failed").await;
    rx.answer_always(None);
    let (s2, none) = app
        .post(
            &format!("/api/v1/omni/webhooks/endpoints/{ep}/replay"),
            &json!({ "since": app.at(0) }),
        )
        .await;
    assert_eq!(s2, StatusCode::ACCEPTED, "{none}");
    assert_eq!(none["data"]["replayed"], 0);
    let (s2, replayed) = app
        .post(
            &format!("/api/v1/omni/webhooks/endpoints/{ep}/replay"),
            &json!({ "since": since }),
        )
        .await;
    assert_eq!(s2, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["data"]["replayed"], 1, "{replayed}");
    message_reaches(&app, &second, "delivered").await;

    for (body, field) in [
        (json!({ "since": "yesterday" }), "since"),
        (json!({ "since": at(3_600_000) }), "since"),
        (json!({}), "since"),
    ] {
        let (s, res) = app
            .post(
                &format!("/api/v1/omni/webhooks/endpoints/{ep}/replay"),
                &body,
            )
            .await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], field, "{res}");
    }
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    let app = app().await;
    let rx = Receiver::start().await;
    let ep = endpoint(&app, &rx.url, json!([])).await;
    let old = ep["secret"].as_str().unwrap().to_owned();
    let id = ep["id"].as_str().unwrap();
    let asked = app.clock.now_ms();
    let (s, rotated) = app
        .post(
            &format!("/api/v1/omni/webhooks/endpoints/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new = rotated["data"]["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    let until =
        omnirail::time::parse_rfc3339(rotated["data"]["previousSecretExpiresAt"].as_str().unwrap())
            .unwrap();
    // A day after the rotation (a second's slack: the answer's times are in whole seconds).
    assert!(
        (asked + 86_400_000 - 1_000..=app.clock.now_ms() + 86_400_000).contains(&until),
        "{until}"
    );
    app.seed_journey().await;
    let got = rx.wait(|g| g.len() >= 2).await;
    assert!(got.len() >= 2);
    assert!(got.iter().all(|r| r.signature.split(' ').count() == 2));
    verify_with_reference_library(&[&old, &new], &got);
    // Once the overlap has passed, the new secret alone signs: the message of a journey made
    // afterwards (found by its id: messages of the earlier events may still be arriving).
    app.advance_past(rotated["data"]["previousSecretExpiresAt"].as_str().unwrap());
    let later = app.seed_journey().await;
    let created_later = |r: &Received| {
        let m = r.json();
        m["type"] == "omni.journey.created" && m["data"]["id"] == later.as_str()
    };
    let got = rx.wait(|g| g.iter().any(created_later)).await;
    let message = got.iter().find(|r| created_later(r)).unwrap();
    assert_eq!(message.signature.split(' ').count(), 1, "{message:?}");

    // A secret of one's own; a malformed one is refused.
    let mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/webhooks/endpoints/{id}/rotate-secret"),
            &json!({ "secret": "whsec_short" }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/webhooks/endpoints/{id}/rotate-secret"),
            &json!({ "secret": mine }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["secret"], mine);
}

#[tokio::test]
async fn an_endpoint_failing_continuously_is_disabled_and_that_is_an_event() {
    let app = TestApp::spawn_with(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_private_targets = true;
        c.webhooks.retry_schedule_ms = vec![200; 100];
        c.webhooks.poll_ms = 50;
    })
    .await;
    let dead = Receiver::start().await;
    dead.answer_always(Some(500));
    let watcher = Receiver::start().await;
    let ep = endpoint(&app, &dead.url, json!(["omni.journey.*"])).await;
    let id = ep["id"].as_str().unwrap();
    endpoint(&app, &watcher.url, json!(["omni.webhook.*"])).await;
    app.seed_journey().await;
    // Failing, then failing still once `disable_after_secs` (five days) has passed.
    dead.wait(|g| g.len() >= 2).await;
    assert!(watcher.got().is_empty(), "disabled before its time");
    app.advance(Duration::from_secs(5 * 24 * 3600 + 1));
    let got = watcher.wait(|g| !g.is_empty()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let event = got[0].json();
    assert_eq!(event["type"], "omni.webhook.endpoint_disabled");
    assert_eq!(event["data"]["endpointId"], id);
    let (_, e) = app
        .get(&format!("/api/v1/omni/webhooks/endpoints/{id}"))
        .await;
    assert_eq!(e["data"]["enabled"], false, "{e}");
    assert!(
        e["data"]["disabledReason"]
            .as_str()
            .unwrap()
            .contains("failed")
    );
    assert!(e["data"].get("secret").is_none());
    // Disabled: nothing more is sent (the message waits with no next attempt), a retry is
    // refused.
    let waiting = messages(&app, id, "?status=pending").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0]["nextAttemptAt"].is_null(), "{waiting:?}");
    let (s, res) = app
        .post(
            &format!("/api/v1/omni/webhooks/messages/{}/retry", dead.got()[0].id),
            &json!({}),
        )
        .await;
    assert_problem(s, &res, 409, "endpoint_disabled");
    // Enabled again, its pending message goes out.
    dead.answer_always(None);
    let (s, e) = app
        .patch(
            &format!("/api/v1/omni/webhooks/endpoints/{id}"),
            &json!({ "enabled": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert!(e["data"]["disabledReason"].is_null());
    message_reaches(&app, &dead.got()[0].id, "delivered").await;
}

/// A slow endpoint that answers nothing while the test holds it, a fast one, and 20 journeys
/// whose creation both subscribe to.
async fn slow_and_fast(app: &TestApp) -> (Receiver, Receiver) {
    let slow = Receiver::start().await;
    slow.hold_after(0);
    let fast = Receiver::start().await;
    endpoint(app, &slow.url, json!(["omni.journey.created"])).await;
    endpoint(app, &fast.url, json!(["omni.journey.created"])).await;
    app.seed_journey().await;
    for _ in 0..19 {
        let (s, body) = app
            .post("/api/v1/omni/journeys", &crate::helpers::seed_journey())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    (slow, fast)
}

#[tokio::test]
async fn a_slow_endpoint_never_delays_another() {
    let app = TestApp::spawn_with(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_private_targets = true;
        c.webhooks.max_in_flight = 8;
        c.webhooks.max_in_flight_per_endpoint = 2;
        c.webhooks.poll_ms = 50;
        // The slow endpoint's attempts wait for as long as the test holds them.
        c.webhooks.timeout_ms = 3_600_000;
    })
    .await;
    let (slow, fast) = slow_and_fast(&app).await;
    // The slow endpoint answers nothing while the test holds it, and is sent two at a time.
    // The fast one's messages arrive meanwhile, all of them.
    let got = fast.wait(|g| g.len() >= 20).await;
    assert_eq!(got.len(), 20);
    let slow_got = slow.got().len();
    assert!(
        slow_got <= 2,
        "the slow endpoint was sent {slow_got} at once"
    );
    slow.release();
    slow.wait(|g| g.len() >= 20).await;
}

/// The per-endpoint limit holds across nodes: two nodes together send a slow endpoint at most
/// `max_in_flight_per_endpoint` messages at once, and its backlog never holds up another
/// endpoint's messages on either node.
#[tokio::test]
async fn a_slow_endpoint_is_sent_no_more_than_its_limit_by_all_nodes_together() {
    let app = TestApp::spawn_with(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_private_targets = true;
        c.webhooks.max_in_flight = 8;
        c.webhooks.max_in_flight_per_endpoint = 2;
        c.webhooks.poll_ms = 20;
        c.webhooks.timeout_ms = 3_600_000;
        // The held attempts' leases outlast the test however slow the machine: a lapsed
        // lease is a node presumed dead, whose messages the others take.
        c.webhooks.lease_ms = 4 * 3_600_000;
    })
    .await;
    let second = app.another_node().await;
    let (slow, fast) = slow_and_fast(&app).await;
    let got = fast.wait(|g| g.len() >= 20).await;
    assert_eq!(got.len(), 20);
    // Both nodes have polled many times meanwhile; together they hold two of the slow one's.
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
         WHERE e.url = $1 AND m.lease_until IS NOT NULL",
    )
    .bind(&slow.url)
    .fetch_one(app.db.reader())
    .await
    .unwrap();
    let slow_got = slow.got().len();
    assert!(
        held <= 2 && slow_got <= 2,
        "held {held}, sent {slow_got} at once"
    );
    slow.release();
    slow.wait(|g| g.len() >= 20).await;
    second.stop().await;
}

#[tokio::test]
async fn targets_inside_the_network_are_refused_when_set_and_when_sent() {
    let app = TestApp::spawn().await;
    for (url, why) in [
        ("http://hooks.bank.example/x", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::1]:8443/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://10.0.0.7/hook", "private"),
        ("https://localhost/hook", "loopback"),
        ("https://user:pass@hooks.bank.example/", "credentials"),
        ("hooks.bank.example", "https"),
    ] {
        let (s, res) = app
            .post("/api/v1/omni/webhooks/endpoints", &json!({ "url": url }))
            .await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], "url", "{res}");
        assert!(
            res["errors"][0]["message"].as_str().unwrap().contains(why),
            "{url}: {res}"
        );
    }
    let (s, _) = app
        .post(
            "/api/v1/omni/webhooks/endpoints",
            &json!({ "url": "https://hooks.bank.example/omnirail" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // An endpoint that reached the database pointing inside (written there directly, as by an
    // older version's rules) is still refused at the attempt, which is logged.
    let checked = TestApp::spawn_with(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.retry_schedule_ms = vec![];
        c.webhooks.poll_ms = 50;
    })
    .await;
    let rx = Receiver::start().await;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, enabled, secret,
             created_at, updated_at) VALUES ('ep_inside', $1, $2, '[]', 1, $3, 0, 0)",
    )
    .bind(&checked.tenant)
    .bind(&rx.url)
    .bind("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    .execute(checked.db.reader())
    .await
    .unwrap();
    checked.seed_journey().await;
    let failed = wait_until("both messages to the inside target to fail", || async {
        let listed = messages(&checked, "ep_inside", "?status=failed").await;
        (listed.len() >= 2).then_some(listed)
    })
    .await;
    assert_eq!(failed.len(), 2, "template and journey events, both refused");
    assert!(
        failed[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("target refused"),
        "{failed:?}"
    );
    assert!(rx.got().is_empty(), "the receiver was never reached");
}

#[tokio::test]
async fn endpoints_are_managed_validated_and_kept_to_their_tenant() {
    let app = app().await;
    let rx = Receiver::start().await;
    let ep = endpoint(&app, &rx.url, json!(["omni.journey.*"])).await;
    let id = ep["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    assert!(ep["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(ep["enabled"], true);
    assert_eq!(ep["eventTypes"], json!(["omni.journey.*"]));
    let (s, got) = app
        .get(&format!("/api/v1/omni/webhooks/endpoints/{id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        got["data"].get("secret").is_none(),
        "the secret is shown once"
    );
    let (_, list) = app.get("/api/v1/omni/webhooks/endpoints").await;
    assert_eq!(list["pagination"]["total"], 1);
    let (_, list) = app
        .get("/api/v1/omni/webhooks/endpoints?enabled=false")
        .await;
    assert_eq!(list["pagination"]["total"], 0);
    let (_, catalogue) = app.get("/api/v1/omni/webhooks/event-types").await;
    for t in SEED_EVENTS {
        assert!(catalogue["data"].as_array().unwrap().contains(&json!(t)));
    }

    // Bad input: each named, nothing stored.
    let long = "x".repeat(10_000);
    for (body, field) in [
        (
            json!({ "url": rx.url, "eventTypes": ["omni.journey.exploded"] }),
            "eventTypes[0]",
        ),
        (
            json!({ "url": rx.url, "eventTypes": ["omni.journey.*", "omni.journey.*"] }),
            "eventTypes[1]",
        ),
        (json!({ "url": rx.url, "secret": "whsec_!!" }), "secret"),
        (json!({ "url": rx.url, "description": long }), "description"),
        (json!({ "eventTypes": [] }), "url"),
        (json!({ "url": 42 }), "url"),
        (
            json!({ "url": rx.url, "eventTypes": "omni.journey.*" }),
            "eventTypes",
        ),
        (
            json!({ "url": rx.url, "event_types": ["omni.journey.*"] }),
            "event_types",
        ),
    ] {
        let (s, res) = app.post("/api/v1/omni/webhooks/endpoints", &body).await;
        assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], field, "{body}: {res}");
    }
    let (s, res) = send(
        app.req(Method::POST, "/api/v1/omni/webhooks/endpoints")
            .header("content-type", "application/json")
            .body("{\"url\": "),
    )
    .await;
    assert_problem(s, &res, 400, "malformed_json");
    let (_, list) = app.get("/api/v1/omni/webhooks/endpoints").await;
    assert_eq!(list["pagination"]["total"], 1);
    for q in ["?status=sideways", "?perPage=0", "?perPage=201"] {
        let (s, res) = app
            .get(&format!("/api/v1/omni/webhooks/endpoints/{id}/messages{q}"))
            .await;
        assert_problem(s, &res, 422, "invalid_query_parameter");
    }

    // Idempotent creation: the same key and body answer the first endpoint again.
    let body = json!({ "url": rx.url, "eventTypes": ["omni.session.*"] });
    let create = || {
        app.req(Method::POST, "/api/v1/omni/webhooks/endpoints")
            .header("idempotency-key", "ep-once")
            .json(&body)
    };
    let (s1, mut first) = send(create()).await;
    let (s2, again) = send(create()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    // The retry answers the same endpoint, without its secret: it is never stored unsealed.
    assert!(first["data"]["secret"].is_string(), "{first}");
    first["data"].as_object_mut().unwrap().remove("secret");
    assert_eq!(first, again);
    let (_, list) = app.get("/api/v1/omni/webhooks/endpoints").await;
    assert_eq!(list["pagination"]["total"], 2);

    // Another tenant sees none of it, and its events reach no endpoint of ours.
    let other = app.other_tenant_key().await;
    let as_other = |m: Method, path: &str| {
        app.client
            .request(m, app.url(path))
            .header("x-api-key", &other)
    };
    for path in [
        format!("/api/v1/omni/webhooks/endpoints/{id}"),
        format!("/api/v1/omni/webhooks/endpoints/{id}/messages"),
        format!("/api/v1/omni/webhooks/endpoints/{id}/stats"),
    ] {
        let (s, res) = send(as_other(Method::GET, &path)).await;
        assert_problem(s, &res, 404, "not_found");
    }
    let (s, res) = send(as_other(
        Method::DELETE,
        &format!("/api/v1/omni/webhooks/endpoints/{id}"),
    ))
    .await;
    assert_problem(s, &res, 404, "not_found");
    let (s, _) = send(
        as_other(Method::POST, "/api/v1/omni/templates").json(&crate::helpers::seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) =
        send(as_other(Method::POST, "/api/v1/omni/journeys").json(&crate::helpers::seed_journey()))
            .await;
    assert_eq!(s, StatusCode::CREATED);

    // A change that is refused writes no message: only the committed create is sent.
    let journey = app.seed_journey().await;
    let (s, _) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/advance"),
            &json!({ "completedStepId": "step_docs" }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(messages(&app, &id, "").await.len(), 1);
    let got = rx.wait(|g| !g.is_empty()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].json()["data"]["id"], journey.as_str());

    // Narrowing the subscription; then deleting the endpoint stops everything.
    let (s, e) = app
        .patch(
            &format!("/api/v1/omni/webhooks/endpoints/{id}"),
            &json!({ "eventTypes": ["omni.journey.completed"], "description": "" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["data"]["eventTypes"], json!(["omni.journey.completed"]));
    assert!(e["data"]["description"].is_null());
    let (s, res) = app
        .patch(
            &format!("/api/v1/omni/webhooks/endpoints/{id}"),
            &json!({ "url": "ftp://x.example/" }),
        )
        .await;
    assert_problem(s, &res, 422, "validation_failed");
    let (s, _) = send(app.req(
        Method::DELETE,
        &format!("/api/v1/omni/webhooks/endpoints/{id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, res) = app
        .get(&format!("/api/v1/omni/webhooks/endpoints/{id}"))
        .await;
    assert_problem(s, &res, 404, "not_found");
    app.seed_journey().await;
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_messages WHERE endpoint_id = $1")
            .bind(&id)
            .fetch_one(app.db.reader())
            .await
            .unwrap();
    assert_eq!(left, 0, "no message for a deleted endpoint");
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test]
async fn an_endpoint_deleted_while_events_and_deliveries_flow_goes_whole_and_fails_no_event() {
    let app = app().await;
    let rx = Receiver::start().await;
    let ep = endpoint(&app, &rx.url, json!([])).await;
    let id = ep["id"].as_str().unwrap().to_owned();
    app.seed_journey().await;
    // Eight clients create journeys (each event a message for the endpoint, sent and recorded
    // at once) until the endpoint is gone.
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (req, deleted) = (
            app.req(Method::POST, "/api/v1/omni/journeys"),
            deleted.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut after = 0;
            while after < 5 {
                let r = req
                    .try_clone()
                    .unwrap()
                    .json(&crate::helpers::seed_journey());
                answers.push(send(r).await);
                after += usize::from(deleted.load(std::sync::atomic::Ordering::Relaxed));
            }
            answers
        }));
    }
    rx.wait(|g| g.len() >= 20).await;
    let (s, b) = send(app.req(
        Method::DELETE,
        &format!("/api/v1/omni/webhooks/endpoints/{id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    deleted.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        for (s, b) in c.await.unwrap() {
            assert_eq!(
                s,
                StatusCode::CREATED,
                "a journey created while the endpoint went: {b}"
            );
        }
    }
    // Nothing of the endpoint is left, and nothing new can point at it (foreign keys).
    for table in ["webhook_messages", "webhook_attempts"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE endpoint_id = $1");
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&id)
            .fetch_one(app.db.reader())
            .await
            .unwrap();
        assert_eq!(left, 0, "{table} of the deleted endpoint");
    }
}

/// Creates `n` journeys through `bases` in turn, 16 at a time; returns how many were made.
async fn create_journeys(bases: &[String], key: &str, n: usize) -> usize {
    use futures::StreamExt;
    let client = reqwest::Client::new();
    futures::stream::iter(0..n)
        .map(|i| {
            let req = client
                .post(format!("{}/api/v1/omni/journeys", bases[i % bases.len()]))
                .header("x-api-key", key)
                .json(&crate::helpers::seed_journey());
            async move { send(req).await.0 == StatusCode::CREATED }
        })
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// A tenant on `db` with an endpoint at `url` subscribed to journey creations, written
/// directly (no server runs yet); returns the tenant's key.
async fn prepared_tenant(db: &crate::helpers::TestDb, url: &str) -> String {
    let store = db.open().await;
    let (tenant, key) = crate::helpers::tenant_with_key(&store, "Bank").await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, enabled, secret,
             created_at, updated_at) VALUES ('ep_bulk', $1, $2, '[\"omni.journey.created\"]', 1, $3, 0, 0)",
    )
    .bind(&tenant)
    .bind(url)
    .bind(secret)
    .execute(store.reader())
    .await
    .unwrap();
    store.close().await;
    key
}

/// A delivering `serve` for the receivers on 127.0.0.1, holding what it claims `lease_ms`.
pub fn worker_env(lease_ms: &'static str) -> [(&'static str, &'static str); 5] {
    [
        ("OMNIRAIL_WEBHOOKS__ALLOW_HTTP", "true"),
        ("OMNIRAIL_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("OMNIRAIL_WEBHOOKS__LEASE_MS", lease_ms),
        ("OMNIRAIL_WEBHOOKS__TIMEOUT_MS", "900"),
        ("OMNIRAIL_WEBHOOKS__POLL_MS", "50"),
    ]
}

/// Messages in all, and delivered.
async fn delivered_count(db: &crate::helpers::TestDb) -> (i64, i64) {
    let store = db.open().await;
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM webhook_messages",
    )
    .fetch_one(store.reader())
    .await
    .unwrap();
    store.close().await;
    counts
}

#[tokio::test]
async fn a_server_killed_with_1000_messages_in_flight_loses_none() {
    let db = crate::helpers::TestDb::new().await;
    let rx = Receiver::start().await;
    // A receiver that answers 50 messages, then holds the rest unanswered until the server
    // has died: the 1,000 committed messages are still being sent when it dies.
    rx.hold_after(50);
    let key = prepared_tenant(&db, &rx.url).await;
    let port = crate::cli::free_port();
    let mut first = crate::cli::serve_with_env(&db.url, port, &worker_env("3000")).await;
    let base = format!("http://127.0.0.1:{port}");
    let (s, _) = send(
        reqwest::Client::new()
            .post(format!("{base}/api/v1/omni/templates"))
            .header("x-api-key", &key)
            .json(&crate::helpers::seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let made = create_journeys(std::slice::from_ref(&base), &key, 1000).await;
    assert_eq!(made, 1000);
    // Killed with every message committed, some delivered, some being sent, most waiting.
    rx.wait(|g| g.len() > 50).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = rx.got().len();
    eprintln!("arrived before the kill: {at_kill} of 1000, 50 of them answered");
    rx.release();
    let port = crate::cli::free_port();
    let mut second = crate::cli::serve_with_env(&db.url, port, &worker_env("3000")).await;
    let got = rx
        .wait(|g| {
            g.iter()
                .map(|r| r.id.as_str())
                .collect::<HashSet<_>>()
                .len()
                >= 1000
        })
        .await;
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 1000, "every message delivered at least once");
    wait_until("every message recorded as delivered", || async {
        let (all, delivered) = delivered_count(&db).await;
        assert_eq!(all, 1000);
        (delivered == all).then_some(())
    })
    .await;
    crate::cli::terminate(&mut second);
}

#[tokio::test]
async fn two_processes_share_1000_messages_and_send_each_once() {
    let db = crate::helpers::TestDb::new().await;
    let rx = Receiver::start().await;
    let key = prepared_tenant(&db, &rx.url).await;
    let ports = [crate::cli::free_port(), crate::cli::free_port()];
    // A lease longer than the run: only two processes claiming one message could send it twice.
    let env = worker_env("120000");
    let mut a = crate::cli::serve_with_env(&db.url, ports[0], &env).await;
    let mut b = crate::cli::serve_with_env(&db.url, ports[1], &env).await;
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let (s, _) = send(
        reqwest::Client::new()
            .post(format!("{}/api/v1/omni/templates", bases[0]))
            .header("x-api-key", &key)
            .json(&crate::helpers::seed_template()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(create_journeys(&bases, &key, 1000).await, 1000);
    wait_until("every message recorded as delivered", || async {
        let (all, delivered) = delivered_count(&db).await;
        (delivered == all).then_some(())
    })
    .await;
    // Once both processes have stopped, nothing more can arrive: count what did.
    crate::cli::terminate(&mut a);
    crate::cli::terminate(&mut b);
    let got = rx.got();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        *seen.entry(r.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    assert_eq!(seen.len(), 1000);
}
