//! Notifications (seed 001; issue 7): each channel end to end against its local provider,
//! retries, permanent failures, scheduling across a restart, quiet hours, templates, rules,
//! read flags and filters, the in-app inbox, and tenant isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, at, send, wait_until};
use crate::providers::{self, SmtpServer, TWILIO_FROM};

/// A server whose providers may be local and whose retries are quick.
async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.notification_allow_insecure_providers = true;
        c.notification_allow_private_providers = true;
        c.notification_retry_base_ms = 40;
        c.notification_poll_ms = 50;
        c.notification_max_attempts = 4;
    })
    .await
}

/// Reads the notification until `done` holds (at most [`crate::helpers::PATIENCE`]).
async fn wait_for(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_until(
        format_args!("notification {id} to reach the expected state"),
        || async {
            let (status, body) = app.get(&format!("/api/v1/omni/notifications/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            done(&body["data"]).then(|| body["data"].clone())
        },
    )
    .await
}

fn settled(n: &Value) -> bool {
    n["deliveries"]
        .as_array()
        .is_some_and(|ds| ds.iter().all(|d| d["status"] != "pending"))
}

fn delivery<'a>(n: &'a Value, channel: &str) -> &'a Value {
    n["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("no {channel} delivery in {n}"))
}

pub async fn put_customer(app: &TestApp, id: &str, body: Value) {
    let (status, body) = app.put(&format!("/api/v1/customers/{id}"), &body).await;
    assert!(status.is_success(), "{body}");
}

pub async fn notify(app: &TestApp, body: Value) -> Value {
    let (status, body) = app.post("/api/v1/omni/notifications", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

pub fn in_app(recipient: &str) -> Value {
    on(recipient, json!(["in_app"]))
}

/// The built-in step template for `recipient` on `channels`.
fn on(recipient: &str, channels: Value) -> Value {
    json!({
        "recipientId": recipient, "channels": channels, "templateCode": "JOURNEY_STEP_REQUIRED",
        "templateData": {"stepName": "Document Collection"},
    })
}

/// A server whose SMS goes to a Twilio stand-in answering `plan` first, and `customer` with a
/// phone number.
async fn with_twilio(plan: &[u16], customer: &str) -> (TestApp, providers::Provider) {
    let app = app().await;
    let twilio = providers::twilio().await;
    twilio.fail_with(plan);
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-providers/sms",
            &providers::twilio_settings(&twilio),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    put_customer(
        &app,
        customer,
        json!({"profile": {"phone": "+966501234567"}}),
    )
    .await;
    (app, twilio)
}

#[tokio::test]
async fn seed_body_is_accepted_and_channels_without_providers_fail_clearly() {
    let app = app().await;
    let (status, body) = app
        .post(
            "/api/v1/omni/notifications",
            &json!({ "recipientId": "ent_customer_456", "recipientType": "customer", "channels": ["push", "email"], "templateCode": "JOURNEY_STEP_REQUIRED", "templateData": { "journeyName": "SME Onboarding", "stepName": "Document Collection", "dueDate": "2024-01-17" }, "priority": "normal", "scheduleAt": null}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let n = &body["data"];
    assert!(n["id"].as_str().unwrap().starts_with("ntf_"));
    assert_eq!(n["recipientId"], "ent_customer_456");
    assert_eq!(n["channels"], json!(["email", "push"]));
    assert_eq!(n["status"], "pending");
    assert_eq!(n["read"], false);
    assert_eq!(
        delivery(n, "email")["content"]["subject"],
        "Action needed: Document Collection"
    );
    assert_eq!(
        delivery(n, "push")["content"]["body"],
        "Your SME Onboarding needs Document Collection by 2024-01-17."
    );
    // Sending happens in the worker: with no provider configured, never reported as sent.
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    assert_eq!(n["status"], "failed", "{n}");
    for channel in ["push", "email"] {
        let d = delivery(&n, channel);
        assert_eq!(d["status"], "failed");
        assert_eq!(d["errorCode"], "provider_not_configured");
        assert_eq!(d["sentAt"], Value::Null);
    }
    // On the customer's timeline: created, then a failure per channel.
    let (_, timeline) = app
        .get("/api/v1/omni/timeline?entityId=ent_customer_456&entityType=customer&order=asc")
        .await;
    let types: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "notification.created",
            "notification.failed",
            "notification.failed"
        ]
    );
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server() {
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };
    let app = app().await;
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-providers/email",
            &json!({"type": "smtp", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "from": "Omnirail Bank <no-reply@bank.example>"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    put_customer(
        &app,
        "cust_mail",
        json!({"profile": {"name": "Ahmed", "email": "ahmed@example.com"}}),
    )
    .await;
    let n = notify(
        &app,
        json!({"recipientId": "cust_mail", "channels": ["email"], "templateCode": "JOURNEY_STEP_REQUIRED",
               "templateData": {"stepName": "<Income proof>", "journeyName": "SME Onboarding"}}),
    )
    .await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "email");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(d["provider"], "smtp");
    assert_eq!(d["attempts"], 1);
    let message_id = d["providerMessageId"].as_str().unwrap();
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(
        m.contains("From: \"Omnirail Bank\" <no-reply@bank.example>")
            || m.contains("From: Omnirail Bank <no-reply@bank.example>"),
        "{m}"
    );
    assert!(m.contains("To: ahmed@example.com"), "{m}");
    assert!(m.contains("Subject: Action needed: <Income proof>"), "{m}");
    assert!(m.contains(&format!("Message-ID: {message_id}")), "{m}");
    assert!(m.contains("multipart/alternative"), "{m}");
    // The HTML part is escaped; the text part is not.
    assert!(m.contains("&lt;Income proof&gt;"), "{m}");
    assert!(
        m.contains("Your SME Onboarding needs <Income proof>."),
        "{m}"
    );
}

#[tokio::test]
async fn sms_through_twilio_then_a_signed_status_callback_marks_it_delivered() {
    let app = app().await;
    let twilio = providers::twilio().await;
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-providers/sms",
            &providers::twilio_settings(&twilio),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The auth token is never answered back.
    assert_eq!(body["data"]["settings"]["authTokenSet"], true);
    assert!(!body.to_string().contains(providers::TWILIO_TOKEN));
    put_customer(
        &app,
        "cust_sms",
        json!({"profile": {"phone": "+966501234567"}}),
    )
    .await;
    let body = on("cust_sms", json!(["sms"]));
    let n = notify(&app, body).await;
    let id = n["id"].as_str().unwrap();
    let n = wait_for(&app, id, settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(n["status"], "sent");
    assert_eq!(d["provider"], "twilio");
    let sid = d["providerMessageId"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM"));
    let seen = twilio.recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["To"], "+966501234567");
    assert_eq!(seen[0]["From"], TWILIO_FROM);
    assert_eq!(seen[0]["Body"], "Document Collection is needed.");
    let callback = app.url("/api/v1/omni/notifications/providers/twilio/status");
    assert_eq!(seen[0]["StatusCallback"], callback);

    // Twilio reports delivery; the request carries no API key, only Twilio's signature.
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", providers::TWILIO_SID),
    ];
    let post = |signature: String| {
        app.client
            .post(&callback)
            .header("x-twilio-signature", signature)
            .form(&params)
    };
    let (status, body) = send(post("AAAA".into())).await;
    assert_problem(status, &body, 403, "invalid_signature");
    // A form without the message, and a provider that reports nothing here.
    let (status, body) = send(app.client.post(&callback).form(&[("AccountSid", "AC1")])).await;
    assert_problem(status, &body, 400, "invalid_callback");
    let elsewhere = app.url("/api/v1/omni/notifications/providers/fcm/status");
    let (status, body) = send(app.client.post(elsewhere).form(&params)).await;
    assert_problem(status, &body, 404, "not_found");
    assert_eq!(wait_for(&app, id, |_| true).await["status"], "sent");
    let (status, _) = send(post(providers::twilio_signature(&callback, &params))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let n = wait_for(&app, id, |_| true).await;
    assert_eq!(n["status"], "delivered");
    assert_eq!(delivery(&n, "sms")["status"], "delivered");
    assert!(delivery(&n, "sms")["deliveredAt"].is_string());
    let events = app.events_of("notification", id).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "omni.notification.created",
            "omni.notification.sent",
            "omni.notification.delivered"
        ]
    );
    // The same report again changes nothing.
    let (status, _) = send(post(providers::twilio_signature(&callback, &params))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.events_of("notification", id).await.len(), 3);
}

#[tokio::test]
async fn a_provider_that_fails_twice_then_succeeds_is_retried() {
    let (app, twilio) = with_twilio(&[503, 503], "cust_retry").await;
    let body = on("cust_retry", json!(["sms"]));
    let n = notify(&app, body).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["errorCode"], Value::Null);
    // Each failed attempt reached the provider; only the third was accepted.
    assert_eq!(twilio.recorder.seen().len(), 3);
}

#[tokio::test]
async fn a_provider_that_took_the_message_without_naming_it_is_never_sent_it_twice() {
    let (app, twilio) = with_twilio(&[providers::OK_WITHOUT_ID], "cust_odd").await;
    let n = notify(&app, on("cust_odd", json!(["sms"]))).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["errorCode"], Value::Null);
    assert!(
        d["lastError"]
            .as_str()
            .unwrap()
            .contains("without a message sid"),
        "{d}"
    );
    // Settled: nothing is due any more, so no worker can send it again.
    let (due,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM notification_deliveries WHERE next_attempt_at IS NOT NULL \
         AND status = 'pending'",
    )
    .fetch_one(app.db.reader())
    .await
    .unwrap();
    assert_eq!(due, 0);
    assert_eq!(twilio.recorder.seen().len(), 1);

    // The same of a push through FCM.
    let fcm = providers::fcm().await;
    fcm.fail_with(&[providers::OK_WITHOUT_ID]);
    app.put(
        "/api/v1/omni/notification-providers/push",
        &providers::fcm_settings(&fcm),
    )
    .await;
    app.put(
        "/api/v1/customers/cust_odd/devices/iphone",
        &json!({"platform": "ios", "push_token": "token-iphone"}),
    )
    .await;
    let n = notify(&app, on("cust_odd", json!(["push"]))).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "push");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(d["attempts"], 1);
    assert!(
        d["lastError"]
            .as_str()
            .unwrap()
            .contains("without a message name"),
        "{d}"
    );
    assert_eq!(fcm.recorder.seen().len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried_and_a_dead_provider_gives_up() {
    let (app, twilio) = with_twilio(&[400], "cust_bad").await;
    let body = on("cust_bad", json!(["sms"]));
    let n = notify(&app, body.clone()).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "failed", "{n}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["errorCode"], "provider_rejected");
    assert!(d["lastError"].as_str().unwrap().contains("21211"), "{d}");
    assert_eq!(n["status"], "failed");

    // Nothing listens at the provider's address: retried up to the limit, then failed.
    let mut dead = providers::twilio_settings(&twilio);
    dead["baseUrl"] = json!(format!("http://127.0.0.1:{}", crate::cli::free_port()));
    app.put("/api/v1/omni/notification-providers/sms", &dead)
        .await;
    let n = notify(&app, body).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "failed", "{n}");
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["errorCode"], "provider_unavailable");

    // Missing contact data fails that delivery with its reason.
    put_customer(&app, "cust_nophone", json!({})).await;
    let body = on("cust_nophone", json!(["sms", "in_app"]));
    let n = notify(&app, body).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    assert_eq!(delivery(&n, "sms")["errorCode"], "no_phone_number");
    assert_eq!(delivery(&n, "in_app")["status"], "delivered");
    assert_eq!(n["status"], "delivered");
}

#[tokio::test]
async fn push_goes_through_fcm_to_each_registered_device() {
    let app = app().await;
    let fcm = providers::fcm().await;
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-providers/push",
            &providers::fcm_settings(&fcm),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!body.to_string().contains("PRIVATE KEY"), "{body}");
    for (device, token) in [("iphone", "token-iphone"), ("old", providers::STALE_TOKEN)] {
        let (status, body) = app
            .put(
                &format!("/api/v1/customers/cust_push/devices/{device}"),
                &json!({"platform": "ios", "push_token": token}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let body = on("cust_push", json!(["push"]));
    let n = notify(&app, body).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "push");
    assert_eq!(d["status"], "sent", "{n}");
    assert_eq!(d["provider"], "fcm");
    assert_eq!(
        d["providerMessageId"],
        format!("projects/{}/messages/1", providers::FCM_PROJECT)
    );
    let seen = fcm.recorder.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["message"]["token"], "token-iphone");
    assert_eq!(
        seen[0]["message"]["notification"]["title"],
        "Action needed: Document Collection"
    );
    assert_eq!(seen[0]["message"]["data"]["notificationId"], n["id"]);
    // The token FCM no longer knows is forgotten.
    let (_, devices) = app.get("/api/v1/customers/cust_push/devices").await;
    let ids: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["iphone"]);
    // A customer without devices: no_push_device.
    let body = on("cust_nodevice", json!(["push"]));
    let n = notify(&app, body).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    assert_eq!(delivery(&n, "push")["errorCode"], "no_push_device");
}

#[tokio::test]
async fn quiet_hours_hold_all_but_critical() {
    let app = app().await;
    // A window around now, in UTC: from an hour ago to an hour ahead.
    let now = chrono::Utc::now();
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let start = hhmm(now - chrono::Duration::hours(1));
    let end = hhmm(now + chrono::Duration::hours(1));
    put_customer(
        &app,
        "cust_quiet",
        json!({"preferences": {"quiet_hours": {"start": start, "end": end, "timezone": "UTC"}}}),
    )
    .await;
    let held = notify(&app, in_app("cust_quiet")).await;
    let mut critical = in_app("cust_quiet");
    critical["priority"] = json!("critical");
    let critical = notify(&app, critical).await;
    let critical = wait_for(&app, critical["id"].as_str().unwrap(), settled).await;
    assert_eq!(delivery(&critical, "in_app")["status"], "delivered");
    let held = wait_for(&app, held["id"].as_str().unwrap(), |n| {
        delivery(n, "in_app")["nextAttemptAt"] != n["createdAt"]
    })
    .await;
    let d = delivery(&held, "in_app");
    assert_eq!(d["status"], "pending", "{held}");
    assert_eq!(d["attempts"], 0);
    let next = omnirail::time::parse_rfc3339(d["nextAttemptAt"].as_str().unwrap()).unwrap();
    let want_end = (now + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string();
    assert_eq!(next, omnirail::time::parse_rfc3339(&want_end).unwrap());
    // Bad quiet hours are refused.
    let (status, body) = app
        .put(
            "/api/v1/customers/cust_quiet",
            &json!({"preferences": {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "Mars/Base"}}}),
        )
        .await;
    assert_problem(status, &body, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "preferences.quiet_hours.start",
            "preferences.quiet_hours.timezone"
        ]
    );
}

#[tokio::test]
async fn templates_render_in_the_recipients_language_and_name_missing_variables() {
    let app = app().await;
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-templates/DOCS_NEEDED",
            &json!({
                "name": "Documents needed", "defaultLanguage": "en",
                "content": {
                    "en": {"sms": {"text": "Hello {{ name }}, we need {{ document }}."},
                           "in_app": {"title": "Documents", "body": "Upload {{ document }}"}},
                    "ar": {"sms": {"text": "مرحبا {{ name }}، نحتاج {{ document }}."}}
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["source"], "tenant");
    put_customer(
        &app,
        "cust_ar",
        json!({"preferences": {"preferred_language": "ar-SA"}}),
    )
    .await;
    let n = notify(
        &app,
        json!({"recipientId": "cust_ar", "channels": ["sms", "in_app"], "templateCode": "DOCS_NEEDED",
               "templateData": {"name": "Fatima", "document": "ID"}}),
    )
    .await;
    assert_eq!(n["language"], "ar");
    assert_eq!(
        delivery(&n, "sms")["content"]["text"],
        "مرحبا Fatima، نحتاج ID."
    );
    // No Arabic in-app content: the default language's.
    assert_eq!(delivery(&n, "in_app")["content"]["body"], "Upload ID");

    let before = app.count("notifications").await;
    let (status, body) = app
        .post(
            "/api/v1/omni/notifications",
            &json!({"recipientId": "cust_ar", "channels": ["sms"], "templateCode": "DOCS_NEEDED",
                    "templateData": {"name": "Fatima"}}),
        )
        .await;
    assert_problem(status, &body, 422, "template_variable_missing");
    assert_eq!(body["errors"][0]["field"], "templateData.document");
    let (status, body) = app
        .post(
            "/api/v1/omni/notifications",
            &json!({"recipientId": "cust_ar", "channels": ["push"], "templateCode": "DOCS_NEEDED",
                    "templateData": {"name": "F", "document": "ID"}}),
        )
        .await;
    assert_problem(status, &body, 422, "template_channel_missing");
    let (status, body) = app
        .post(
            "/api/v1/omni/notifications",
            &json!({"recipientId": "cust_ar", "templateCode": "NO_SUCH_TEMPLATE"}),
        )
        .await;
    assert_problem(status, &body, 422, "unknown_template");
    assert_eq!(app.count("notifications").await, before);

    // A syntax error is refused where it is.
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-templates/BROKEN",
            &json!({"defaultLanguage": "en", "content": {"en": {"sms": {"text": "{{ name "}}}}),
        )
        .await;
    assert_problem(status, &body, 422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "content.en.sms.text");
    // Built-ins are readable, and overridable by the tenant.
    let (status, body) = app
        .get("/api/v1/omni/notification-templates/JOURNEY_ASSIGNED")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["source"], "builtin");
    let (_, list) = app.get("/api/v1/omni/notification-templates").await;
    // The six built-ins and the tenant's own (BROKEN was refused).
    assert_eq!(list["data"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn read_flags_filters_and_cancel() {
    let app = app().await;
    let a = notify(&app, in_app("cust_a")).await;
    let b = notify(&app, in_app("cust_a")).await;
    let mut later = in_app("cust_b");
    later["scheduleAt"] = json!(at(3_600_000));
    let later = notify(&app, later).await;
    for n in [&a, &b] {
        let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
        assert_eq!(n["status"], "delivered");
    }
    let path = format!(
        "/api/v1/omni/notifications/{}/read",
        a["id"].as_str().unwrap()
    );
    let (status, body) = app.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["read"], true);
    let read_at = body["data"]["readAt"].clone();
    let (_, again) = app.post(&path, &json!({})).await;
    assert_eq!(again["data"]["readAt"], read_at);

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, read) = app.get("/api/v1/omni/notifications?read=true").await;
    assert_eq!(ids(&read), [a["id"].as_str().unwrap()]);
    let (_, unread) = app
        .get("/api/v1/omni/notifications?read=false&recipientId=cust_a")
        .await;
    assert_eq!(ids(&unread), [b["id"].as_str().unwrap()]);
    let (_, pending) = app.get("/api/v1/omni/notifications?status=pending").await;
    assert_eq!(ids(&pending), [later["id"].as_str().unwrap()]);
    let (_, delivered) = app
        .get("/api/v1/omni/notifications?channel=in_app&status=delivered&perPage=1")
        .await;
    assert_eq!(
        delivered["pagination"],
        json!({"page": 1, "perPage": 1, "total": 2})
    );
    let (_, none) = app.get("/api/v1/omni/notifications?channel=sms").await;
    assert_eq!(none["pagination"]["total"], 0);
    for bad in ["status=lost", "channel=fax", "read=maybe", "perPage=500"] {
        let (status, body) = app.get(&format!("/api/v1/omni/notifications?{bad}")).await;
        assert_problem(status, &body, 422, "invalid_query_parameter");
    }

    // A scheduled notification can be cancelled, once; a delivered one cannot.
    let cancel = |n: &Value| {
        format!(
            "/api/v1/omni/notifications/{}/cancel",
            n["id"].as_str().unwrap()
        )
    };
    let (status, body) = app.post(&cancel(&later), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(delivery(&body["data"], "in_app")["status"], "cancelled");
    let (status, body) = app.post(&cancel(&later), &json!({})).await;
    assert_problem(status, &body, 409, "notification_not_cancellable");
    let (status, body) = app.post(&cancel(&a), &json!({})).await;
    assert_problem(status, &body, 409, "notification_not_cancellable");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = app().await;
    let before = app.count("notifications").await;
    for (body, field) in [
        (
            json!({"recipientId": "bad id", "templateCode": "JOURNEY_ASSIGNED"}),
            "recipientId",
        ),
        (
            json!({"recipientId": "c1", "channels": [], "templateCode": "JOURNEY_ASSIGNED"}),
            "channels",
        ),
        (
            json!({"recipientId": "c1", "channels": ["sms", "sms"], "templateCode": "JOURNEY_ASSIGNED"}),
            "channels",
        ),
        (
            json!({"recipientId": "c1", "templateCode": "lower"}),
            "templateCode",
        ),
        (
            json!({"recipientId": "c1", "templateCode": "JOURNEY_ASSIGNED", "templateData": [1]}),
            "templateData",
        ),
        (
            json!({"recipientId": "c1", "templateCode": "JOURNEY_ASSIGNED", "scheduleAt": "soon"}),
            "scheduleAt",
        ),
    ] {
        let (status, problem) = app.post("/api/v1/omni/notifications", &body).await;
        assert_problem(status, &problem, 422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = app
        .post(
            "/api/v1/omni/notifications",
            &json!({"recipientId": "c1", "channels": ["fax"], "templateCode": "JOURNEY_ASSIGNED"}),
        )
        .await;
    assert_problem(status, &problem, 422, "validation_failed");
    assert_eq!(app.count("notifications").await, before);
    // Provider settings: the wrong provider for a channel, plain SMTP when not allowed.
    let (status, problem) = app
        .put(
            "/api/v1/omni/notification-providers/email",
            &json!({"type": "twilio", "accountSid": providers::TWILIO_SID, "authToken": "x", "from": TWILIO_FROM}),
        )
        .await;
    assert_problem(status, &problem, 422, "provider_channel_mismatch");
    let strict = TestApp::spawn().await;
    let (status, problem) = strict
        .put(
            "/api/v1/omni/notification-providers/email",
            &json!({"type": "smtp", "host": "mail.bank.example", "security": "none", "from": "a@b.example"}),
        )
        .await;
    assert_problem(status, &problem, 422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "security");
    let (status, problem) = strict
        .put(
            "/api/v1/omni/notification-providers/in_app",
            &json!({"type": "smtp", "host": "mail.example", "from": "a@b.example"}),
        )
        .await;
    assert_problem(status, &problem, 422, "validation_failed");
}

#[tokio::test]
async fn providers_inside_the_network_are_refused_when_set_and_when_sent() {
    // Plain http is allowed here (the stand-ins speak it); addresses inside are not.
    let app = TestApp::spawn_with(|c| {
        c.notification_allow_insecure_providers = true;
        c.notification_retry_base_ms = 40;
        c.notification_poll_ms = 50;
        c.notification_max_attempts = 2;
    })
    .await;
    let twilio = providers::twilio().await;
    let fcm = providers::fcm().await;
    let mut metadata = providers::fcm_settings(&fcm);
    metadata["serviceAccount"]["token_uri"] = json!("http://169.254.169.254/token");
    metadata["baseUrl"] = json!("https://fcm.googleapis.com");
    let mut internal = providers::twilio_settings(&twilio);
    internal["baseUrl"] = json!("https://twilio-gateway.internal");
    for (channel, settings, field) in [
        ("sms", providers::twilio_settings(&twilio), "baseUrl"),
        ("sms", internal, "baseUrl"),
        ("push", metadata, "serviceAccount.token_uri"),
        (
            "email",
            json!({"type": "smtp", "host": "10.0.0.25", "from": "a@b.example"}),
            "host",
        ),
        (
            "email",
            json!({"type": "smtp", "host": "localhost", "from": "a@b.example"}),
            "host",
        ),
    ] {
        let path = format!("/api/v1/omni/notification-providers/{channel}");
        let (status, problem) = app.put(&path, &settings).await;
        assert_problem(status, &problem, 422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("notification_allow_private_providers"),
            "{problem}"
        );
        let (status, _) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    }

    // Settings stored another way (or while the configuration allowed them) are checked again
    // before each send: the delivery fails for good and the stand-in is never reached.
    sqlx::query(
        "INSERT INTO notification_providers
             (tenant_id, channel, kind, settings, created_at, updated_at)
         VALUES ($1, 'sms', 'twilio', $2, 0, 0)",
    )
    .bind(&app.tenant)
    .bind(providers::twilio_settings(&twilio).to_string())
    .execute(app.db.reader())
    .await
    .unwrap();
    put_customer(
        &app,
        "cust_inside",
        json!({"profile": {"phone": "+966501234567"}}),
    )
    .await;
    let n = notify(&app, on("cust_inside", json!(["sms"]))).await;
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    let d = delivery(&n, "sms");
    assert_eq!(d["status"], "failed", "{n}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["errorCode"], "provider_not_allowed");
    assert!(
        d["lastError"]
            .as_str()
            .unwrap()
            .starts_with("baseUrl must not point"),
        "{d}"
    );
    assert!(
        twilio.recorder.seen().is_empty(),
        "the stand-in was never reached"
    );
}

#[tokio::test]
async fn default_rules_notify_assignees_and_approvers() {
    let app = app().await;
    let journey = app.seed_journey().await;
    let (status, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/assign"),
            &json!({"assigneeId": "usr_rm_002", "reason": "Workload"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = app
        .get("/api/v1/omni/notifications?recipientId=usr_rm_002")
        .await;
    let n = &list["data"][0];
    assert_eq!(n["recipientType"], "user");
    assert_eq!(n["sourceEvent"], "omni.journey.assigned");
    assert_eq!(n["channels"], json!(["in_app"]));
    assert_eq!(
        delivery(n, "in_app")["content"]["body"],
        format!("Journey {journey} has been assigned to you: Workload.")
    );
    let n = wait_for(&app, n["id"].as_str().unwrap(), settled).await;
    assert_eq!(n["status"], "delivered", "{n}");

    let (status, body) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({"entityType": "contract", "entityId": "ctr_1", "approvalType": "credit_committee",
                    "requestedBy": "usr_rm_001",
                    "approvers": [{"userId": "usr_credit_002"}, {"userId": "usr_credit_001"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for approver in ["usr_credit_001", "usr_credit_002"] {
        let (_, list) = app
            .get(&format!(
                "/api/v1/omni/notifications?recipientId={approver}"
            ))
            .await;
        let n = &list["data"][0];
        assert_eq!(n["templateCode"], "APPROVAL_REQUESTED", "{list}");
        assert_eq!(n["channels"], json!(["email", "in_app"]));
    }
    // The tenant turns the assignment rule off.
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-rules/omni.journey.assigned",
            &json!({"recipients": ["assignee"], "channels": ["in_app"], "templateCode": "JOURNEY_ASSIGNED", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.post(
        &format!("/api/v1/omni/journeys/{journey}/assign"),
        &json!({"assigneeId": "usr_rm_003"}),
    )
    .await;
    let (_, list) = app
        .get("/api/v1/omni/notifications?recipientId=usr_rm_003")
        .await;
    assert_eq!(list["pagination"]["total"], 0);
    // Back on, by email and in-app at high priority: the stored rule is the one applied.
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-rules/omni.journey.assigned",
            &json!({"recipients": ["assignee"], "channels": ["email", "in_app"],
                    "templateCode": "JOURNEY_ASSIGNED", "priority": "high", "enabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post(
        &format!("/api/v1/omni/journeys/{journey}/assign"),
        &json!({"assigneeId": "usr_rm_004"}),
    )
    .await;
    let (_, list) = app
        .get("/api/v1/omni/notifications?recipientId=usr_rm_004")
        .await;
    assert_eq!(list["pagination"]["total"], 1, "{list}");
    assert_eq!(
        list["data"][0]["channels"],
        json!(["email", "in_app"]),
        "{list}"
    );
    assert_eq!(list["data"][0]["priority"], "high", "{list}");
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-rules/omni.journey.created",
            &json!({"recipients": ["customer"], "channels": ["in_app"], "templateCode": "JOURNEY_ASSIGNED"}),
        )
        .await;
    assert_problem(status, &body, 422, "event_type_not_notifiable");
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-rules/omni.approval.approved",
            &json!({"recipients": ["customer"], "channels": ["in_app"], "templateCode": "APPROVAL_DECIDED"}),
        )
        .await;
    assert_problem(status, &body, 422, "validation_failed");
    // The rules in force: the default ones and the one the tenant set.
    let (_, rules) = app.get("/api/v1/omni/notification-rules").await;
    let mut events: Vec<&str> = rules["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventType"].as_str().unwrap())
        .collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            "omni.approval.approver_assigned",
            "omni.approval.reminder",
            "omni.approval.requested",
            "omni.journey.assigned",
            "omni.journey.escalated"
        ],
        "{rules}"
    );
}

/// Each recipient a rule can name, as the event's producer states it: a team assignee's members,
/// no one when an assignment asks not to tell, the staff requester of a decided approval (never
/// a customer or the system), and a request's approvers.
#[tokio::test]
async fn rules_reach_team_members_requesters_and_respect_a_quiet_assignment() {
    let app = app().await;
    let journey = app.seed_journey().await;
    let sourced = |list: &Value, event: &str| -> usize {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["sourceEvent"] == event)
            .count()
    };
    let (status, body) = app
        .put(
            "/api/v1/omni/teams/team_sme_desk",
            &json!({ "name": "SME desk", "members": ["usr_desk_1", "usr_desk_2"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/assign"),
            &json!({ "assigneeId": "team_sme_desk", "assigneeType": "team" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for member in ["usr_desk_1", "usr_desk_2"] {
        let (_, list) = app
            .get(&format!("/api/v1/omni/notifications?recipientId={member}"))
            .await;
        assert_eq!(sourced(&list, "omni.journey.assigned"), 1, "{list}");
    }
    let (_, list) = app
        .get("/api/v1/omni/notifications?recipientId=team_sme_desk")
        .await;
    assert_eq!(
        list["pagination"]["total"], 0,
        "a team is told through its members"
    );

    let (status, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/assign"),
            &json!({ "assigneeId": "usr_quiet", "notifyAssignee": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = app
        .get("/api/v1/omni/notifications?recipientId=usr_quiet")
        .await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");

    // A decision tells the requester and the approvers when the tenant's rule says so.
    let (status, body) = app
        .put(
            "/api/v1/omni/notification-rules/omni.approval.approved",
            &json!({"recipients": ["requester", "approvers"], "channels": ["in_app"], "templateCode": "APPROVAL_DECIDED"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({"entityType": "contract", "entityId": "ctr_9", "approvalType": "credit_committee",
                    "requestedBy": "usr_rm_009", "approvers": [{"userId": "usr_credit_009"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/omni/approvals/{id}/decisions"),
            &json!({ "approverId": "usr_credit_009", "decision": "approve" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (who, requested, approved) in [("usr_rm_009", 0, 1), ("usr_credit_009", 1, 1)] {
        let (_, list) = app
            .get(&format!(
                "/api/v1/omni/notifications?recipientId={who}&perPage=100"
            ))
            .await;
        assert_eq!(
            sourced(&list, "omni.approval.requested"),
            requested,
            "{who}: {list}"
        );
        assert_eq!(
            sourced(&list, "omni.approval.approved"),
            approved,
            "{who}: {list}"
        );
    }
}

#[tokio::test]
async fn notifications_are_the_tenants_own() {
    let app = app().await;
    let n = notify(&app, in_app("cust_x")).await;
    let other = app.other_tenant_key().await;
    let id = n["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/omni/notifications/{id}")),
        (
            Method::POST,
            format!("/api/v1/omni/notifications/{id}/read"),
        ),
        (
            Method::POST,
            format!("/api/v1/omni/notifications/{id}/cancel"),
        ),
    ] {
        let (status, body) = send(
            app.client
                .request(method, app.url(&path))
                .header("x-api-key", &other),
        )
        .await;
        assert_problem(status, &body, 404, "not_found");
    }
    let (_, list) = send(
        app.client
            .get(app.url("/api/v1/omni/notifications"))
            .header("x-api-key", &other),
    )
    .await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn in_app_reaches_the_live_streams_and_the_customers_own_inbox() {
    let app = app().await;
    crate::onboarding::configure(&app).await;
    let (status, started) = send(
        app.req(Method::POST, "/omni/start")
            .header("api-version", "1.0")
            .json(&json!({"countryCode": "ALL", "configurationId": "cfg_sme"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let customer = started["customerId"].as_str().unwrap().to_owned();
    let token = started["token"].as_str().unwrap().to_owned();

    // The customer's stream and a staff user's stream carry their in-app notifications.
    let mut customer_stream =
        crate::streams::Sse::open(&app, &format!("/api/v1/customers/{customer}/stream"), None)
            .await;
    app.put("/api/v1/omni/users/usr_rm_009", &json!({"name": "Sara"}))
        .await;
    let mut user_stream =
        crate::streams::Sse::open(&app, "/api/v1/omni/users/usr_rm_009/stream", None).await;
    let for_customer = notify(&app, in_app(&customer)).await;
    let mut for_user = in_app("usr_rm_009");
    for_user["recipientType"] = json!("user");
    let for_user = notify(&app, for_user).await;
    for (stream, n) in [
        (&mut customer_stream, &for_customer),
        (&mut user_stream, &for_user),
    ] {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let frame = stream.event().await.expect("an event on the stream");
            let data = frame.data.unwrap();
            if data["payload"]["id"] == n["id"] {
                seen.push(data["eventType"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(seen, ["notification.created", "notification.delivered"]);
    }

    // The session token reads the customer's inbox, and only theirs.
    let omni = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("api-version", "1.0")
            .bearer_auth(&token)
    };
    let (status, inbox) = send(omni(Method::GET, "/omni/notifications")).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["pagination"]["total"], 1);
    let item = &inbox["data"][0];
    assert_eq!(item["id"], for_customer["id"]);
    assert_eq!(item["title"], "Action needed: Document Collection");
    assert_eq!(item["read"], false);
    let path = format!("/omni/notifications/{}/read", item["id"].as_str().unwrap());
    let (status, read) = send(omni(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["read"], true);
    let (_, unread) = send(omni(Method::GET, "/omni/notifications?read=false")).await;
    assert_eq!(unread["pagination"]["total"], 0);
    let other = format!(
        "/omni/notifications/{}/read",
        for_user["id"].as_str().unwrap()
    );
    let (status, body) = send(omni(Method::POST, &other)).await;
    assert_problem(status, &body, 404, "not_found");
    // An API key does not open the inbox.
    let (status, _) = send(
        app.req(Method::GET, "/omni/notifications")
            .header("api-version", "1.0"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, n) = app
        .get(&format!(
            "/api/v1/omni/notifications/{}",
            for_customer["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(n["data"]["read"], true);
}

#[tokio::test]
async fn a_schedule_survives_a_restart() {
    let mut app = app().await;
    let mut body = in_app("cust_sched");
    let schedule_at = app.at(3_600_000);
    body["scheduleAt"] = json!(schedule_at);
    let created = notify(&app, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The process stops before the notification is due, and is not running when it falls
    // due; one started afterwards finds it due and delivers it.
    app.restart().await;
    let n = app.get(&format!("/api/v1/omni/notifications/{id}")).await.1;
    assert_eq!(n["data"]["status"], "pending", "{n}");
    app.advance_past(&schedule_at);
    let n = wait_for(&app, &id, |n| n["status"] == "delivered").await;
    assert_eq!(n["status"], "delivered", "{n}");
    let delivered =
        omnirail::time::parse_rfc3339(delivery(&n, "in_app")["deliveredAt"].as_str().unwrap())
            .unwrap();
    assert!(delivered >= omnirail::time::parse_rfc3339(&schedule_at).unwrap());
    assert_eq!(n["scheduleAt"], schedule_at);
}

/// Every failed delivery attempt is one `warn` log line naming its notification, delivery and
/// cause (read from the log of a `serve` process).
#[tokio::test]
async fn a_failed_attempt_is_logged_once_with_its_ids_and_cause() {
    use crate::cli::{free_port, serve_logging_to, terminate};
    let db = crate::helpers::TestDb::new().await;
    let (_, key) = crate::helpers::tenant_with_key(&db.open().await, "Log Bank").await;
    let twilio = providers::twilio().await;
    twilio.fail_with(&[503]);
    let log_path = std::env::temp_dir().join(omnirail::ids::new_id("omnirail-log-"));
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = serve_logging_to(
        &db.url,
        port,
        &[
            ("OMNIRAIL_NOTIFICATION_ALLOW_INSECURE_PROVIDERS", "true"),
            ("OMNIRAIL_NOTIFICATION_ALLOW_PRIVATE_PROVIDERS", "true"),
            ("OMNIRAIL_NOTIFICATION_RETRY_BASE_MS", "40"),
            ("OMNIRAIL_NOTIFICATION_POLL_MS", "50"),
        ],
        log,
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .header("x-api-key", &key)
            .json(&body)
    };
    let (s, b) = send(call(
        reqwest::Method::PUT,
        "/api/v1/omni/notification-providers/sms",
        providers::twilio_settings(&twilio),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = send(call(
        reqwest::Method::PUT,
        "/api/v1/customers/cust_log",
        json!({"profile": {"phone": "+966501234567"}}),
    ))
    .await;
    assert!(s.is_success(), "{b}");
    let (s, n) = send(call(
        reqwest::Method::POST,
        "/api/v1/omni/notifications",
        on("cust_log", json!(["sms"])),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let id = n["data"]["id"].as_str().unwrap().to_owned();
    crate::helpers::wait_until("the retried SMS to be sent", || async {
        let (_, n) = send(
            client
                .get(format!("{base}/api/v1/omni/notifications/{id}"))
                .header("x-api-key", &key),
        )
        .await;
        (n["data"]["deliveries"][0]["status"] == "sent").then_some(())
    })
    .await;
    assert!(terminate(&mut child).success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("notification delivery attempt failed"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    for part in ["WARN", id.as_str(), "dlv_", "503", "attempt=1"] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
}
