//! Local stand-ins for the notification providers, each checking requests as the real one
//! would: Twilio's Messages API (Basic auth with the account, form fields, E.164 numbers),
//! Google's OAuth token endpoint (an RS256 JWT bearer grant signed by the service account's
//! key) and FCM's HTTP v1 send (a bearer token the token endpoint issued), and a real SMTP
//! server (Python's aiosmtpd, from PyPI) writing what it receives to a Maildir.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::TempDir;

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-test-auth-token";
pub const TWILIO_FROM: &str = "+15005550006";
pub const FCM_PROJECT: &str = "omnirail-test";
pub const FCM_CLIENT: &str = "fcm@omnirail-test.iam.gserviceaccount.com";
/// A device token the FCM stand-in answers `UNREGISTERED` for.
pub const STALE_TOKEN: &str = "stale-device-token";

/// In a stand-in's plan: answer 200 without the message's id (an odd answer that still
/// means the provider took the message).
pub const OK_WITHOUT_ID: u16 = 299;

/// What a stand-in answers and what it received.
#[derive(Default)]
pub struct Recorder {
    /// Statuses to answer, in order; when empty, success.
    plan: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Value>>,
    tokens: Mutex<Vec<String>>,
    /// The stand-in's own address (the token endpoint is the JWT's audience).
    base: Mutex<String>,
}

impl Recorder {
    fn next_status(&self) -> u16 {
        self.plan.lock().unwrap().pop_front().unwrap_or(200)
    }

    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

/// An HTTP stand-in on a random port.
pub struct Provider {
    pub base: String,
    pub recorder: Arc<Recorder>,
}

impl Provider {
    /// Answers `plan`'s statuses first (503, 400, ...), then success.
    pub fn fail_with(&self, plan: &[u16]) {
        self.recorder.plan.lock().unwrap().extend(plan);
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

fn form_of(raw: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(raw).unwrap_or_default()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Twilio's Messages API.
pub async fn twilio() -> Provider {
    let recorder = Arc::new(Recorder::default());
    let router = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_messages),
        )
        .with_state(recorder.clone());
    Provider {
        base: serve(router).await,
        recorder,
    }
}

async fn twilio_messages(
    State(rec): State<Arc<Recorder>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if sid != TWILIO_SID || auth != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    let form = form_of(&raw);
    let to = field(&form, "To").unwrap_or_default();
    let e164 = to.starts_with('+') && to.len() > 8 && to[1..].bytes().all(|b| b.is_ascii_digit());
    if !e164 || field(&form, "Body").is_none_or(str::is_empty) || field(&form, "From").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": 21604, "message": "A 'To', 'From' and 'Body' are required", "status": 400})),
        )
            .into_response();
    }
    let status = rec.next_status();
    rec.seen.lock().unwrap().push(json!(
        form.iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>()
    ));
    match status {
        200 => {
            let n = rec.seen.lock().unwrap().len();
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "sid": format!("SM{n:032x}"), "status": "queued", "to": to,
                    "body": field(&form, "Body"),
                })),
            )
                .into_response()
        }
        OK_WITHOUT_ID => (StatusCode::OK, "OK").into_response(),
        400 => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})),
        )
            .into_response(),
        other => (
            StatusCode::from_u16(other).unwrap(),
            axum::Json(json!({"code": 20500, "message": "Internal Server Error", "status": other})),
        )
            .into_response(),
    }
}

/// Twilio's signature of a status callback, computed here independently of Omnirail's code:
/// base64 of HMAC-SHA1 over the URL and the sorted parameters, keyed by the auth token.
pub fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    use hmac::Mac;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The settings that point Omnirail's `sms` channel at `twilio`.
pub fn twilio_settings(twilio: &Provider) -> Value {
    json!({
        "type": "twilio", "accountSid": TWILIO_SID, "authToken": TWILIO_TOKEN,
        "from": TWILIO_FROM, "baseUrl": twilio.base,
    })
}

/// Google's token endpoint and FCM's HTTP v1 send, on one server.
pub async fn fcm() -> Provider {
    let recorder = Arc::new(Recorder::default());
    let router = Router::new()
        .route("/token", post(google_token))
        .route("/v1/projects/{project}/messages:send", post(fcm_send))
        .with_state(recorder.clone());
    let base = serve(router).await;
    *recorder.base.lock().unwrap() = base.clone();
    Provider { base, recorder }
}

#[derive(serde::Deserialize)]
struct Grant {
    iss: String,
    scope: String,
    aud: String,
    iat: i64,
    exp: i64,
}

async fn google_token(State(rec): State<Arc<Recorder>>, RawForm(raw): RawForm) -> Response {
    let form = form_of(&raw);
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if field(&form, "grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse("grant_type");
    }
    let Some(assertion) = field(&form, "assertion") else {
        return refuse("assertion");
    };
    let public = std::fs::read("tests/fixtures/fcm-test-key.pub.pem").unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", rec.base.lock().unwrap())]);
    validation.set_issuer(&[FCM_CLIENT]);
    let Ok(grant) = jsonwebtoken::decode::<Grant>(assertion, &key, &validation) else {
        return refuse("signature");
    };
    let claims = grant.claims;
    if claims.scope != "https://www.googleapis.com/auth/firebase.messaging"
        || claims.exp - claims.iat > 3600
        || claims.iss != FCM_CLIENT
        || claims.aud.is_empty()
    {
        return refuse("claims");
    }
    let token = format!("ya29.test-{}", rec.tokens.lock().unwrap().len() + 1);
    rec.tokens.lock().unwrap().push(token.clone());
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

async fn fcm_send(
    State(rec): State<Arc<Recorder>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if !bearer.is_some_and(|b| rec.tokens.lock().unwrap().contains(&b)) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}})),
        )
            .into_response();
    }
    let message = &body.0["message"];
    let token = message["token"].as_str().unwrap_or_default();
    if project != FCM_PROJECT
        || token.is_empty()
        || !message["notification"]["title"].is_string()
        || !message["notification"]["body"].is_string()
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT"}})),
        )
            .into_response();
    }
    if token == STALE_TOKEN {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": 404, "status": "NOT_FOUND",
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})),
        )
            .into_response();
    }
    let status = rec.next_status();
    if status == OK_WITHOUT_ID {
        rec.seen.lock().unwrap().push(body.0.clone());
        return axum::Json(json!({})).into_response();
    }
    if status != 200 {
        return (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"error": {"code": status, "status": "UNAVAILABLE"}})),
        )
            .into_response();
    }
    rec.seen.lock().unwrap().push(body.0.clone());
    let n = rec.seen.lock().unwrap().len();
    axum::Json(json!({"name": format!("projects/{FCM_PROJECT}/messages/{n}")})).into_response()
}

/// The settings that point Omnirail's `push` channel at `fcm`.
pub fn fcm_settings(fcm: &Provider) -> Value {
    json!({
        "type": "fcm",
        "serviceAccount": {
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "test-key-1",
            "private_key": std::fs::read_to_string("tests/fixtures/fcm-test-key.pem").unwrap(),
            "client_email": FCM_CLIENT,
            "token_uri": format!("{}/token", fcm.base),
        },
        "baseUrl": fcm.base,
    })
}

/// A real SMTP server (aiosmtpd) writing each message it receives into a Maildir.
/// `OMNIRAIL_TEST_SMTP_PYTHON` names a Python with aiosmtpd (`.ci/run` installs one).
pub struct SmtpServer {
    child: std::process::Child,
    pub port: u16,
    pub maildir: TempDir,
}

impl SmtpServer {
    pub async fn start() -> Option<Self> {
        let Ok(python) = std::env::var("OMNIRAIL_TEST_SMTP_PYTHON") else {
            // In CI the server is always there: a missing one is a failure, not a skip.
            assert!(
                std::env::var_os("CI").is_none(),
                "OMNIRAIL_TEST_SMTP_PYTHON must name a Python with aiosmtpd in CI (.ci/run installs it)"
            );
            eprintln!("skipped: OMNIRAIL_TEST_SMTP_PYTHON is not set (.ci/run sets it)");
            return None;
        };
        let port = crate::cli::free_port();
        let maildir = TempDir::new();
        let child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.0.join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let server = SmtpServer {
            child,
            port,
            maildir,
        };
        crate::helpers::wait_until("aiosmtpd to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                .then_some(())
        })
        .await;
        Some(server)
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.0.join("mail").join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
