//! Claims of docs/security.md that no other test already proves.

use reqwest::StatusCode;
use serde_json::json;

use omnirail::store::Backend;

use crate::cli::{free_port, serve_logging_to, terminate};
use crate::helpers::{TestApp, TestDb, send, tenant_with_key};

/// Runs `serve` at debug level with the log in a file, makes requests carrying every kind of
/// secret (an API key in both headers, a wrong key, a webhook secret of the client's and one
/// generated, a handoff token), and reads the whole log: none of them is in it.
#[tokio::test]
async fn secrets_never_reach_the_log_even_at_debug_level() {
    let db = TestDb::new().await;
    let (_, key) = tenant_with_key(&db.open().await, "Log Bank").await;
    let log_path = std::env::temp_dir().join(omnirail::ids::new_id("omnirail-log-"));
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = serve_logging_to(&db.url, port, &[("OMNIRAIL_LOG_LEVEL", "debug")], log).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let wrong_key = "omk_this-key-is-wrong-and-secret-0123456789abcdef";
    let (s, _) = send(
        client
            .get(format!("{base}/api/v1/omni/templates"))
            .header("x-api-key", wrong_key),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = send(
        client
            .get(format!("{base}/api/v1/omni/templates"))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let own_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut secrets: Vec<String> = vec![key.clone(), wrong_key.into(), own_secret.into()];
    for body in [
        json!({ "url": "https://hooks.bank.example/a", "secret": own_secret }),
        json!({ "url": "https://hooks.bank.example/b" }),
    ] {
        let (s, res) = send(
            client
                .post(format!("{base}/api/v1/omni/webhooks/endpoints"))
                .header("x-api-key", &key)
                .json(&body),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{res}");
        secrets.push(res["data"]["secret"].as_str().unwrap().to_owned());
    }
    let (s, session) = send(
        client
            .post(format!("{base}/api/v1/sessions"))
            .header("x-api-key", &key)
            .json(&json!({ "customer_id": "ent_log_001", "channel": "WEB", "device_id": "d1" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let source = session["session_id"].as_str().unwrap().to_owned();
    let (s, handoff) = send(
        client
            .post(format!("{base}/api/v1/sessions/handoff"))
            .header("x-api-key", &key)
            .json(&json!({ "source_session_id": source, "target_channel": "MOBILE_IOS" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{handoff}");
    secrets.push(handoff["handoff_token"].as_str().unwrap().to_owned());
    // A person's actor token beside the key (refused: this tenant has no identity provider;
    // tests/api/identity.rs checks real ones).
    let actor_token =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c3Jfcm1fMDAxIn0.c2VjcmV0LXNpZ25hdHVyZQ";
    let (s, _) = send(
        client
            .get(format!("{base}/api/v1/omni/templates"))
            .header("x-api-key", &key)
            .bearer_auth(actor_token),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    secrets.push(actor_token.into());

    assert!(terminate(&mut child).success());
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logged.contains("/api/v1/omni/webhooks/endpoints"),
        "the log holds the requests: {logged}"
    );
    for secret in &secrets {
        assert!(!logged.contains(secret.as_str()), "{secret} is in the log");
    }
}

/// Every text the database holds, as one string per row: on SQLite the database file and its
/// write-ahead log as bytes, on PostgreSQL every row of every table of the test's database.
pub async fn everything_stored(app: &TestApp) -> String {
    if app.db.backend() == Backend::Sqlite {
        let file = app
            .config
            .database_url
            .expose()
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let mut all = Vec::new();
        for path in [file.clone(), format!("{file}-wal")] {
            all.extend(std::fs::read(path).unwrap_or_default());
        }
        return String::from_utf8_lossy(&all).into_owned();
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
    )
    .fetch_all(app.db.reader())
    .await
    .unwrap();
    let mut all = String::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{table}\" t"
        )))
        .fetch_all(app.db.reader())
        .await
        .unwrap();
        all.extend(rows.into_iter().map(|r| r + "\n"));
    }
    all
}

/// API keys, handoff tokens and onboarding session tokens are kept as SHA-256 digests only:
/// nothing a reader of the database (or of a backup) finds would let them act.
#[tokio::test]
async fn keys_and_tokens_are_stored_only_as_digests() {
    let app = TestApp::spawn().await;
    crate::onboarding::configure(&app).await;
    let (onboarding_token, _, _) = crate::onboarding::start(&app, "ent_digest_001").await;
    let (s, session) = app
        .post(
            "/api/v1/sessions",
            &json!({ "customer_id": "ent_digest_002", "channel": "WEB", "device_id": "d1" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let (s, handoff) = app
        .post(
            "/api/v1/sessions/handoff",
            &json!({ "source_session_id": session["session_id"], "target_channel": "MOBILE_IOS" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{handoff}");
    let handoff_token = handoff["handoff_token"].as_str().unwrap().to_owned();
    let stored = everything_stored(&app).await;
    assert!(stored.contains("ent_digest_002"), "the scan sees the data");
    for secret in [&app.key, &onboarding_token, &handoff_token] {
        assert!(
            !stored.contains(secret.as_str()),
            "{secret} is stored as is"
        );
        let digest = omnirail::ids::sha256_hex(secret);
        assert!(stored.contains(&digest), "{secret}'s digest is stored");
    }
}

#[tokio::test]
async fn browsers_of_the_allowed_origins_only_may_call_across_origins() {
    let allowed = "https://onboard.bank.example";
    let app = crate::helpers::TestApp::spawn_with(|c| {
        c.cors_allowed_origins = vec![allowed.to_owned()];
    })
    .await;
    let url = app.url("/api/v1/omni/journeys");
    // The preflight is answered before authentication: it carries no credentials.
    let preflight = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "x-api-key, content-type, idempotency-key",
            )
    };
    let res = preflight(allowed).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], allowed);
    let headers = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        headers.contains("x-api-key") && headers.contains("idempotency-key"),
        "{headers}"
    );
    let res = preflight("https://evil.example").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // The call itself, from the allowed origin, says so and exposes what clients read.
    let res = app
        .req(reqwest::Method::GET, "/api/v1/omni/journeys")
        .header("origin", allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], allowed);
    assert!(
        res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("retry-after")
    );
    // Without the setting, no origin is allowed.
    let closed = crate::helpers::TestApp::spawn().await;
    let res = closed
        .req(reqwest::Method::GET, "/api/v1/omni/journeys")
        .header("origin", allowed)
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
