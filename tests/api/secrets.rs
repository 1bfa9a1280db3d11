//! Secrets at rest: webhook signing secrets and provider credentials are sealed under each
//! tenant's data key, itself wrapped under a key-encryption key the database does not hold.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::webhooks::{Receiver, app as webhook_app, endpoint};

const TWILIO_TOKEN: &str = "twilio-auth-token-3f9a7c1e5b";
const SMTP_PASSWORD: &str = "smtp-password-8d2e6b4a0c";
const OWN_SECRET: &str = "whsec_b3duLXNlY3JldC1vZi10aGUtYmFuay0xMjM0NQ==";
const ROTATED_SECRET: &str = "whsec_cm90YXRlZC1zZWNyZXQtb2YtdGhlLWJhbmstOTg3Ng==";

/// Whether one of the message's signatures is `secret`'s.
fn signed_by(secret: &str, got: &crate::webhooks::Received) -> bool {
    let secret = omnirail::webhooks::model::Secret::parse(secret).expect("a secret");
    let expected = secret.sign(
        &got.id,
        got.timestamp.parse().expect("a timestamp"),
        got.body.as_bytes(),
    );
    got.signature.split(' ').any(|s| s == expected)
}

/// Sets the tenant's SMS and e-mail providers, with credentials.
async fn providers(app: &TestApp) {
    let (s, body) = app
        .put(
            "/api/v1/omni/notification-providers/sms",
            &json!({ "type": "twilio", "accountSid": "AC0123456789abcdef0123456789abcdef",
                     "authToken": TWILIO_TOKEN, "from": "+15005550006" }),
        )
        .await;
    assert!(s.is_success(), "{body}");
    let (s, body) = app
        .put(
            "/api/v1/omni/notification-providers/email",
            &json!({ "type": "smtp", "host": "smtp.bank.example", "security": "starttls",
                     "username": "omnirail", "password": SMTP_PASSWORD,
                     "from": "Bank <no-reply@bank.example>" }),
        )
        .await;
    assert!(s.is_success(), "{body}");
}

#[tokio::test]
async fn a_dump_of_the_database_reveals_no_secret_and_every_secret_still_works() {
    let app = webhook_app().await;
    let receiver = Receiver::start().await;
    providers(&app).await;
    // A secret the bank chose, one made by Omnirail, and a rotation, each created with an
    // Idempotency-Key (whose record keeps the answer).
    let (s, own) = send(
        app.req(Method::POST, "/api/v1/omni/webhooks/endpoints")
            .header("idempotency-key", "ep-own")
            .json(&json!({ "url": receiver.url, "secret": OWN_SECRET, "eventTypes": ["omni.template.*"] })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{own}");
    let made = endpoint(&app, &receiver.url, json!(["omni.delegation.*"])).await;
    let made_secret = made["secret"].as_str().unwrap().to_owned();
    let own_id = own["data"]["id"].as_str().unwrap().to_owned();
    let (s, rotated) = send(
        app.req(
            Method::POST,
            &format!("/api/v1/omni/webhooks/endpoints/{own_id}/rotate-secret"),
        )
        .header("idempotency-key", "rotate-own")
        .json(&json!({ "secret": ROTATED_SECRET })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["data"]["secret"], ROTATED_SECRET);
    // The retried rotation is answered without the secret.
    let (s, again) = send(
        app.req(
            Method::POST,
            &format!("/api/v1/omni/webhooks/endpoints/{own_id}/rotate-secret"),
        )
        .header("idempotency-key", "rotate-own")
        .json(&json!({ "secret": ROTATED_SECRET })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert!(again["data"].get("secret").is_none(), "{again}");

    let stored = crate::security::everything_stored(&app).await;
    assert!(
        stored.contains("smtp.bank.example") || stored.contains("enc:v1:"),
        "the scan sees the data"
    );
    for secret in [
        OWN_SECRET,
        ROTATED_SECRET,
        made_secret.as_str(),
        TWILIO_TOKEN,
        SMTP_PASSWORD,
    ] {
        assert!(!stored.contains(secret), "{secret} is stored as is");
        // Nor the secret's own bytes, in the base64 that follows whsec_.
        let inner = secret.trim_start_matches("whsec_");
        assert!(!stored.contains(&inner[..16]), "{secret} is stored in part");
    }

    // The secrets still work: the messages are signed with them (the old and the new one
    // while the rotation overlaps), and the providers' settings read back without them.
    let (s, _) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({ "delegatorId": "usr_a", "delegateeId": "usr_b", "scope": ["approvals"],
                     "validTo": at(30 * DAY), "reason": "leave" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let got = receiver.wait(|got| got.len() >= 2).await;
    let template = got
        .iter()
        .find(|r| r.body.contains("omni.template.created"))
        .unwrap();
    assert!(signed_by(ROTATED_SECRET, template) && signed_by(OWN_SECRET, template));
    let delegation = got
        .iter()
        .find(|r| r.body.contains("omni.delegation.granted"))
        .unwrap();
    assert!(signed_by(&made_secret, delegation));
    let (s, sms) = app.get("/api/v1/omni/notification-providers/sms").await;
    assert_eq!(s, StatusCode::OK, "{sms}");
    assert_eq!(sms["data"]["settings"]["from"], "+15005550006", "{sms}");
    assert_eq!(sms["data"]["settings"]["authTokenSet"], true, "{sms}");
    assert!(!sms.to_string().contains(TWILIO_TOKEN));
}

#[tokio::test]
async fn secrets_stored_before_they_were_sealed_are_sealed_at_start_and_keep_working() {
    let app = webhook_app().await;
    let receiver = Receiver::start().await;
    let ep = endpoint(&app, &receiver.url, json!(["omni.template.*"])).await;
    let secret = ep["secret"].as_str().unwrap().to_owned();
    providers(&app).await;
    // As a database of before migration 0020 holds them.
    sqlx::query("UPDATE webhook_endpoints SET secret = $1")
        .bind(&secret)
        .execute(app.db.reader())
        .await
        .unwrap();
    let settings = json!({ "type": "twilio", "accountSid": "AC0123456789abcdef0123456789abcdef",
                            "authToken": TWILIO_TOKEN, "from": "+15005550006" });
    sqlx::query("UPDATE notification_providers SET settings = $1 WHERE channel = 'sms'")
        .bind(settings.to_string())
        .execute(app.db.reader())
        .await
        .unwrap();
    // Read as they are until sealed...
    let (s, _) = app.get("/api/v1/omni/notification-providers/sms").await;
    assert_eq!(s, StatusCode::OK);
    // ... which every start does (twice here: the second finds nothing to do).
    for _ in 0..2 {
        omnirail::seal_stored_secrets(&app.db, &app.config.secrets)
            .await
            .unwrap();
    }
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT secret FROM webhook_endpoints UNION ALL SELECT settings FROM notification_providers",
    )
    .fetch_all(app.db.reader())
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored.iter().all(|v| v.starts_with("enc:v1:")),
        "{stored:?}"
    );
    let (s, _) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED);
    let got = receiver.wait(|got| !got.is_empty()).await;
    assert!(signed_by(&secret, &got[0]));
    let (s, sms) = app.get("/api/v1/omni/notification-providers/sms").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sms["data"]["settings"]["type"], "twilio");
}

#[tokio::test]
async fn a_sealed_secret_opens_only_where_it_was_sealed() {
    let app = webhook_app().await;
    let receiver = Receiver::start().await;
    let first = endpoint(&app, &receiver.url, json!(["omni.template.*"])).await;
    let second = endpoint(&app, &receiver.url, json!(["omni.delegation.*"])).await;
    // The first endpoint's sealed secret, copied to the second.
    sqlx::query(
        "UPDATE webhook_endpoints SET secret = (SELECT secret FROM webhook_endpoints WHERE id = $1)
         WHERE id = $2",
    )
    .bind(first["id"].as_str().unwrap())
    .bind(second["id"].as_str().unwrap())
    .execute(app.db.reader())
    .await
    .unwrap();
    let (s, _) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({ "delegatorId": "usr_a", "delegateeId": "usr_b", "scope": ["approvals"],
                     "validTo": at(30 * DAY), "reason": "leave" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = second["id"].as_str().unwrap();
    let attempt = wait_until("the second endpoint's attempt", || async {
        let (_, messages) = app
            .get(&format!("/api/v1/omni/webhooks/endpoints/{id}/messages"))
            .await;
        messages["data"][0]["lastError"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(attempt, "the endpoint secret cannot be read");
    assert!(receiver.got().is_empty(), "nothing was sent unsigned");
}

#[tokio::test]
async fn the_kek_rotates_while_nodes_serve_and_a_node_without_it_does_not_start() {
    let mut app = webhook_app().await;
    let receiver = Receiver::start().await;
    let ep = endpoint(&app, &receiver.url, json!(["omni.template.*"])).await;
    let secret = ep["secret"].as_str().unwrap().to_owned();
    providers(&app).await;
    let old = app.config.secrets.kek.clone().unwrap();
    let new = omnirail::secrets::Kek::generate();
    let store = app.db.clone();
    let kek_ids = || async {
        sqlx::query_scalar::<_, String>("SELECT kek_id FROM tenant_data_keys")
            .fetch_all(store.reader())
            .await
            .unwrap()
    };
    let old_id = omnirail::secrets::Kek::parse(old.expose())
        .unwrap()
        .id()
        .to_owned();
    let new_id = omnirail::secrets::Kek::parse(&new).unwrap().id().to_owned();
    assert_eq!(kek_ids().await, [old_id]);

    // 1. Every node learns the new KEK, the old one kept for reading; 2. the data keys are
    // re-wrapped (the CLI's `omnirail secrets rewrap`); 3. the old KEK is dropped.
    app.config.secrets.kek = Some(omnirail::config::Hidden(new.clone()));
    app.config.secrets.previous_keks = vec![old.clone()];
    app.restart().await;
    let (s, _) = app.get("/api/v1/omni/notification-providers/sms").await;
    assert_eq!(s, StatusCode::OK);
    let vault = omnirail::secrets::Vault::from_config(&app.config.secrets).unwrap();
    assert_eq!(vault.rewrap(&app.db).await.unwrap(), (1, 1));
    assert_eq!(vault.rewrap(&app.db).await.unwrap(), (0, 1), "once");
    assert_eq!(kek_ids().await, std::slice::from_ref(&new_id));
    app.config.secrets.previous_keks = Vec::new();
    app.restart().await;
    let (s, sms) = app.get("/api/v1/omni/notification-providers/sms").await;
    assert_eq!(s, StatusCode::OK, "{sms}");
    let (s, _) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED);
    let got = receiver.wait(|got| !got.is_empty()).await;
    assert!(signed_by(&secret, &got[0]), "the secret did not change");

    // A node holding only the old KEK is refused at start, naming the KEK it lacks.
    let mut with_old = app.config.secrets.clone();
    with_old.kek = Some(old);
    let refused = omnirail::seal_stored_secrets(&app.db, &with_old)
        .await
        .unwrap_err();
    assert!(refused.contains(&new_id), "{refused}");
    // So is one with no KEK at all: none is made up for a database whose secrets are sealed.
    let dir = TempDir::new();
    let missing = omnirail::config::SecretsConfig {
        kek_file: dir.0.join("omnirail.kek").display().to_string(),
        ..Default::default()
    };
    let refused = omnirail::seal_stored_secrets(&app.db, &missing)
        .await
        .unwrap_err();
    assert!(refused.contains("does not exist"), "{refused}");
    assert!(!dir.0.join("omnirail.kek").exists());
}

#[tokio::test]
async fn a_database_without_secrets_gets_a_kek_file_of_its_own_on_first_start() {
    let db = TestDb::new().await;
    let store = db.open().await;
    let dir = TempDir::new();
    let file = dir.0.join("omnirail.kek");
    let config = omnirail::config::SecretsConfig {
        kek_file: file.display().to_string(),
        ..Default::default()
    };
    omnirail::seal_stored_secrets(&store, &config)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let kek = omnirail::secrets::Kek::parse(&text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    // The next start reads it, and keeps it.
    omnirail::seal_stored_secrets(&store, &config)
        .await
        .unwrap();
    assert_eq!(
        omnirail::secrets::Kek::parse(&std::fs::read_to_string(&file).unwrap())
            .unwrap()
            .id(),
        kek.id()
    );
    store.close().await;
}
