use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, seed_template, send};

const ANALYTICS: &str = "/api/v1/analytics/channels";

/// What the test itself expects, written down call by call as it makes them.
#[derive(Default)]
struct Ledger {
    transactions: BTreeMap<&'static str, i64>,
    users: BTreeSet<(&'static str, String)>,
    journey_channels: BTreeMap<String, BTreeSet<&'static str>>,
}

impl Ledger {
    /// A call that changed something, made through `channel` (upper case), touching `journey`.
    fn call(&mut self, channel: &'static str, journey: Option<&str>) {
        *self.transactions.entry(channel).or_default() += 1;
        if let Some(j) = journey {
            self.journey_channels
                .entry(j.to_owned())
                .or_default()
                .insert(channel);
        }
    }

    fn session(&mut self, channel: &'static str, customer: &str) {
        self.call(channel, None);
        self.users.insert((channel, customer.to_owned()));
    }

    /// The answer the server should give, channels without figures left out.
    fn figures(&self) -> BTreeMap<String, (i64, i64)> {
        let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (c, n) in &self.transactions {
            out.entry((*c).to_owned()).or_default().1 = *n;
        }
        for (c, _) in &self.users {
            out.entry((*c).to_owned()).or_default().0 += 1;
        }
        out
    }

    fn cross_channel(&self) -> i64 {
        self.journey_channels
            .values()
            .filter(|c| c.len() >= 2)
            .count() as i64
    }
}

/// The server's figures, channels without figures left out.
fn figures(answer: &Value) -> BTreeMap<String, (i64, i64)> {
    answer["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let (u, t) = (
                c["active_users"].as_i64().unwrap(),
                c["transactions"].as_i64().unwrap(),
            );
            (c["channel"].as_str().unwrap().to_owned(), (u, t))
        })
        .filter(|(_, f)| *f != (0, 0))
        .collect()
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    header: Option<&str>,
    body: &Value,
) -> Value {
    let mut req = app.req(method, path).json(body);
    if let Some(channel) = header {
        req = req.header("x-omni-channel", channel);
    }
    let (s, b) = send(req).await;
    assert!(s.is_success(), "{path}: {s} {b}");
    b
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn figures_match_a_ledger_the_test_keeps_itself() {
    let app = TestApp::spawn().await;
    let mut ledger = Ledger::default();
    let post = Method::POST;
    // A manager (a directory entry records no event: no transaction).
    let (s, b) = app
        .put(
            "/api/v1/omni/users/usr_mgr",
            &json!({ "roles": ["manager"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A template made with no channel stated: a direct API integration.
    call(
        &app,
        post.clone(),
        "/api/v1/omni/templates",
        None,
        &seed_template(),
    )
    .await;
    ledger.call("API", None);

    let channels = ["WEB", "MOBILE_IOS", "MOBILE_ANDROID"];
    for i in 0..9 {
        let customer = format!("ent_c{}", i % 5);
        let home = channels[i % 3];
        let other = channels[(i + 1) % 3];
        // The body's channel wins over the header's.
        let b = call(
            &app,
            post.clone(),
            "/api/v1/sessions",
            Some("BRANCH"),
            &json!({ "customer_id": customer, "channel": home, "device_id": format!("d{i}") }),
        )
        .await;
        ledger.session(home, &customer);
        let session = b["session_id"].as_str().unwrap().to_owned();

        // A journey: its channel in the body, in the header, or neither (web by default).
        let mut body = json!({ "templateId": "tmpl_onboarding_sme", "customerId": customer });
        let (header, made) = match i % 3 {
            0 => {
                body["channel"] = json!(home.to_ascii_lowercase());
                (None, home)
            }
            1 => (Some(home), home),
            _ => (None, "WEB"),
        };
        let b = call(&app, post.clone(), "/api/v1/omni/journeys", header, &body).await;
        let journey = b["data"]["id"].as_str().unwrap().to_owned();
        ledger.call(made, Some(&journey));

        // Advanced from another device for some; with no channel stated, through its own.
        let advance = json!({ "completedStepId": "step_kyc", "stepOutcome": "passed" });
        let path = format!("/api/v1/omni/journeys/{journey}/advance");
        if i % 2 == 0 {
            call(&app, post.clone(), &path, Some(other), &advance).await;
            ledger.call(other, Some(&journey));
        } else {
            call(&app, post.clone(), &path, None, &advance).await;
            ledger.call(made, Some(&journey));
        }

        // A member of staff reassigns some from a branch: a transaction of the branch, but
        // not the customer's own action, so it does not make the journey cross-channel.
        if i % 3 == 0 {
            let path = format!("/api/v1/omni/journeys/{journey}/assign");
            let body = json!({ "assigneeId": "usr_branch_1", "assignedBy": "usr_mgr" });
            call(&app, post.clone(), &path, Some("branch"), &body).await;
            ledger.call("BRANCH", None);
        }

        if i % 4 == 0 {
            // Handed off to Android and resumed there; the handoff is made on the session's own
            // channel, the resume on the target.
            let b = call(
                &app,
                post.clone(),
                "/api/v1/sessions/handoff",
                None,
                &json!({ "source_session_id": session, "target_channel": "MOBILE_ANDROID" }),
            )
            .await;
            ledger.call(home, None);
            let token = b["handoff_token"].as_str().unwrap();
            call(&app, post.clone(), "/api/v1/sessions/resume", None,
                &json!({ "handoff_token": token, "channel": "mobile_android", "device_id": "phone" })).await;
            ledger.session("MOBILE_ANDROID", &customer);
        } else if i % 4 == 1 {
            // Ended from the call center.
            call(
                &app,
                Method::DELETE,
                &format!("/api/v1/sessions/{session}"),
                Some("call_center"),
                &json!({}),
            )
            .await;
            ledger.call("CALL_CENTER", None);
        }
    }

    // What changed nothing counts for nothing: a refused call, an idempotent replay, a read.
    let (s, _) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": "ent_c1", "channel": "FAX", "device_id": "d" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let body = json!({ "customer_id": "ent_c9", "channel": "WEB", "device_id": "once" });
    for _ in 0..2 {
        let (s, _) = send(
            app.req(post.clone(), "/api/v1/sessions")
                .header("idempotency-key", "k1")
                .json(&body),
        )
        .await;
        assert!(s.is_success());
    }
    ledger.session("WEB", "ent_c9");
    app.get("/api/v1/customers/ent_c1").await;

    assert!(
        ledger.cross_channel() >= 3,
        "the data set has cross-channel journeys"
    );
    let (s, got) = app.get(ANALYTICS).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(figures(&got), ledger.figures());
    assert_eq!(got["cross_channel_journeys"], ledger.cross_channel());
    let mut keys: Vec<_> = got.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["channels", "cross_channel_journeys"],
        "seed 000's shape, no envelope"
    );
    let first = &got["channels"][0];
    assert_eq!(
        first["channel"], "WEB",
        "channels in seed order, upper case"
    );

    // Every channel the plan includes is listed, with zeros where nothing happened.
    let listed: Vec<&str> = got["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "WEB",
            "MOBILE_IOS",
            "MOBILE_ANDROID",
            "API",
            "WEBHOOK",
            "BRANCH",
            "CALL_CENTER"
        ]
    );

    // Today alone is the same window; a window that ended yesterday has nothing.
    let (_, same) = app
        .get(&format!("{ANALYTICS}?from={}&to={}", today(), today()))
        .await;
    assert_eq!(same, got);
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let (s, past) = app
        .get(&format!("{ANALYTICS}?from=2024-01-01&to={yesterday}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(figures(&past).is_empty(), "{past}");
    assert_eq!(past["cross_channel_journeys"], 0);

    // The timeline shows the channel each change was made through.
    let (_, timeline) = app
        .get("/api/v1/omni/timeline?entityType=customer&entityId=ent_c1&perPage=100")
        .await;
    let channels: BTreeSet<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["channel"].as_str())
        .collect();
    assert!(channels.contains("call_center"), "{channels:?}");
}

#[tokio::test]
async fn the_idle_sweep_is_no_transaction_and_its_session_still_counts() {
    let app = TestApp::spawn_with(|c| c.session_idle_timeout_secs = 1).await;
    let body = json!({ "customer_id": "ent_idle", "channel": "WEB", "device_id": "d" });
    let (s, b) = app.post("/api/v1/sessions", &body).await;
    assert_eq!(s, StatusCode::CREATED);
    let session = b["session_id"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_secs(2));
    let state = app.state();
    omnirail::sessions::sweep_idle(&state).await.unwrap();
    let events = app.events_of("session", &session).await;
    assert!(events.iter().any(|e| e.event_type == "omni.session.ended"));
    let (_, got) = app.get(ANALYTICS).await;
    assert_eq!(figures(&got), BTreeMap::from([("WEB".to_owned(), (1, 1))]));
}

#[tokio::test]
async fn bad_windows_and_channels_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    for query in [
        "from=2024-13-01",
        "to=yesterday",
        "from=2024-01-15T00:00:00Z",
        "from=2024-02-02&to=2024-02-01",
    ] {
        let (s, b) = app.get(&format!("{ANALYTICS}?{query}")).await;
        assert_problem(s, &b, 422, "validation_failed");
    }
    let (s, b) = send(
        app.req(Method::POST, "/api/v1/sessions")
            .header("x-omni-channel", "pigeon")
            .json(&json!({ "customer_id": "ent_1", "channel": "WEB", "device_id": "d" })),
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "X-Omni-Channel");
    assert_eq!(app.count("channel_sessions").await, 0);
    let (_, got) = app.get(ANALYTICS).await;
    assert!(figures(&got).is_empty(), "{got}");

    app.set_plan("starter").await;
    let (s, b) = app.get(ANALYTICS).await;
    assert_problem(s, &b, 403, "plan_not_included");
}

/// Cross-channel journeys over windows of several days, against every window counted by brute
/// force from the touches themselves (days cannot be chosen over HTTP, so this drives the
/// store directly).
#[tokio::test]
async fn cross_channel_journeys_are_exact_for_every_window_of_days() {
    let app = TestApp::spawn().await;
    // (journey, day, channel), in the order they happen.
    let touches = [
        ("jrn_a", 1, "web"),
        ("jrn_b", 1, "web"),
        ("jrn_c", 1, "web"),
        ("jrn_b", 2, "web"),
        ("jrn_b", 2, "mobile_ios"),
        ("jrn_c", 2, "mobile_ios"),
        ("jrn_a", 3, "mobile_ios"),
        ("jrn_d", 3, "api"),
        ("jrn_c", 5, "web"),
        ("jrn_d", 5, "api"),
        ("jrn_a", 6, "mobile_ios"),
        ("jrn_d", 6, "branch"),
    ];
    // Some touches are also their call's first change, which counts a transaction in the same
    // statement: the counts must not disturb the touches, nor the touches the counts.
    let counted = |i: usize| i.is_multiple_of(3);
    let mut tx = app.db.begin().await.unwrap();
    for (i, (journey, day, channel)) in touches.into_iter().enumerate() {
        let chain = counted(i).then_some("customer:ent_1");
        omnirail::analytics::count_and_touch(&mut tx, &app.tenant, day, channel, chain, journey)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    for from in 0..=7 {
        for to in from..=7 {
            let mut channels: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for (j, d, c) in touches {
                if (from..=to).contains(&d) {
                    channels.entry(j).or_default().insert(c);
                }
            }
            let want = channels.values().filter(|c| c.len() >= 2).count() as i64;
            let got = omnirail::analytics::report(app.db.reader(), &app.tenant, from, to, 1, 0)
                .await
                .unwrap();
            assert_eq!(got.cross_channel_journeys, want, "days {from}..={to}");
            let mut transactions: BTreeMap<&str, i64> = BTreeMap::new();
            for (i, (_, d, c)) in touches.into_iter().enumerate() {
                if counted(i) && (from..=to).contains(&d) {
                    *transactions.entry(c).or_default() += 1;
                }
            }
            let got: BTreeMap<&str, i64> = got
                .channels
                .iter()
                .map(|(c, f)| (c.as_str(), f.transactions))
                .filter(|(_, n)| *n > 0)
                .collect();
            assert_eq!(got, transactions, "days {from}..={to}");
        }
    }
}

#[tokio::test]
async fn the_timeline_shows_the_channel_analytics_counts() {
    let app = TestApp::spawn().await;
    // An approval and a delegation over the back-office API, no channel stated: both made
    // through the API, in the timeline as in the figures.
    let (s, a) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({ "entityType": "contract", "entityId": "ctr_1", "approvalType": "limit",
                     "requestedBy": "usr_rm_001", "approvers": [{ "userId": "usr_boss" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (s, _) = send(
        app.req(Method::POST, "/api/v1/omni/approvals")
            .header("x-omni-channel", "branch")
            .json(
                &json!({ "entityType": "contract", "entityId": "ctr_2", "approvalType": "limit",
                           "requestedBy": "usr_rm_001", "approvers": [{ "userId": "usr_boss" }] }),
            ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let channel_of = |contract: &'static str| {
        let app = &app;
        async move {
            let (_, t) = app
                .get(&format!(
                    "/api/v1/omni/timeline?entityType=contract&entityId={contract}"
                ))
                .await;
            t["data"][0]["channel"].clone()
        }
    };
    assert_eq!(channel_of("ctr_1").await, "api");
    assert_eq!(channel_of("ctr_2").await, "branch");
    let (_, got) = app.get(ANALYTICS).await;
    assert_eq!(figures(&got).get("API").map(|f| f.1), Some(1), "{got}");
    assert_eq!(figures(&got).get("BRANCH").map(|f| f.1), Some(1), "{got}");
}
