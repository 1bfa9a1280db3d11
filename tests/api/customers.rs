use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn put_creates_then_replaces_a_customer() {
    let app = TestApp::spawn().await;
    let body = json!({
        "profile": { "name": "John Doe", "email": "john@example.com", "phone": "+44123456789" },
        "preferences": { "notification_channel": "push", "preferred_language": "en" }
    });
    let (s, c) = app.put("/api/v1/customers/cust_123456", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["customer_id"], "cust_123456");
    assert_eq!(c["profile"]["email"], "john@example.com");
    assert_eq!(c["preferences"]["notification_channel"], "PUSH");
    let (s, c2) = app
        .put(
            "/api/v1/customers/cust_123456",
            &json!({ "profile": { "name": "John Q. Doe" }, "preferences": { "preferred_language": "ar-SA" } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c2}");
    assert_eq!(c2["profile"]["email"], json!(null));
    assert_eq!(c2["preferences"]["preferred_language"], "ar-SA");
    assert_eq!(c2["created_at"], c["created_at"]);
}

#[tokio::test]
async fn invalid_customers_are_422_naming_each_field() {
    let app = TestApp::spawn().await;
    let (s, b) = app
        .put(
            "/api/v1/customers/cust_1",
            &json!({
                "profile": { "email": "john at example", "phone": "07123 456789" },
                "preferences": { "notification_channel": "PIGEON", "preferred_language": "english" }
            }),
        )
        .await;
    assert_problem(s, &b, 422, "validation_failed");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "profile.email",
            "profile.phone",
            "preferences.notification_channel",
            "preferences.preferred_language"
        ]
    );
    let (s, b) = app.get("/api/v1/customers/cust_1/profile/unified").await;
    assert_problem(s, &b, 404, "not_found");
}

#[tokio::test]
async fn the_unified_profile_has_the_seed_shape_with_activity_per_channel() {
    let app = TestApp::spawn().await;
    // A journey names the customer before the bank describes it; sessions fill its channels.
    app.seed_journey().await;
    for (channel, device) in [("WEB", "d1"), ("MOBILE_IOS", "d2"), ("mobile_ios", "d3")] {
        let (s, b) = app
            .post(
                "/api/v1/sessions",
                &json!({ "customer_id": "ent_customer_456", "channel": channel, "device_id": device }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, p) = app
        .get("/api/v1/customers/ent_customer_456/profile/unified")
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["channels", "customer_id", "preferences", "profile"]);
    assert_eq!(
        p["profile"],
        json!({ "name": null, "email": null, "phone": null })
    );
    assert_eq!(p["channels"]["web"]["sessions"], 1);
    assert_eq!(p["channels"]["mobile_ios"]["sessions"], 2);
    assert!(
        p["channels"]["mobile_ios"]["last_active"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        p["preferences"],
        json!({ "notification_channel": null, "preferred_language": null })
    );

    app.put(
        "/api/v1/customers/ent_customer_456",
        &json!({ "profile": { "name": "John Doe" }, "preferences": { "notification_channel": "EMAIL" } }),
    )
    .await;
    let (_, p) = app
        .get("/api/v1/customers/ent_customer_456/profile/unified")
        .await;
    assert_eq!(p["profile"]["name"], "John Doe");
    assert_eq!(p["preferences"]["notification_channel"], "EMAIL");
    assert_eq!(
        p["channels"]["web"]["sessions"], 1,
        "the journeys are still there"
    );

    let key = app.other_tenant_key().await;
    let (s, _) = crate::helpers::send(
        app.client
            .get(app.url("/api/v1/customers/ent_customer_456/profile/unified"))
            .header("x-api-key", key),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
