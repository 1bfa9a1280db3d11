//! Onboarding sessions (seed 002): start with an API key, continue with a session token, data,
//! documents, finish, cross-device resume, and the bank's view.

use base64::Engine;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, assert_problem, seed_template, send};

/// A PDF, by its first bytes.
pub fn pdf(len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec();
    b.resize(len.max(b.len()), b' ');
    b
}

/// A PNG, by its first bytes.
fn png() -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    b.extend_from_slice(&[
        0, 0, 0, 0x0D, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2,
    ]);
    b.extend_from_slice(&[0u8; 64]);
    b
}

/// The seed's template, the credit analyst who approves its last step, and a configuration
/// serving every country; returns the configuration's id.
pub async fn configure(app: &TestApp) -> String {
    let (s, body) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    app.seed_credit_analyst().await;
    let (s, body) = app
        .post(
            "/api/v1/omni/onboarding/configurations",
            &json!({ "id": "cfg_sme", "name": "SME onboarding", "templateId": "tmpl_onboarding_sme", "countries": ["ALL"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// `POST /omni/start` as seed 002 sends it.
fn start_req(app: &TestApp, body: &Value) -> RequestBuilder {
    app.client
        .post(app.url("/omni/start"))
        .header("api-version", "1.0")
        .header("x-api-key", &app.key)
        .json(body)
}

/// Starts an onboarding for `customer`; returns (token, interviewId, journeyId).
pub async fn start(app: &TestApp, customer: &str) -> (String, String, String) {
    let (s, body) = send(start_req(
        app,
        &json!({ "countryCode": "ALL", "configurationId": "cfg_sme", "externalCustomerId": customer }),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let field = |k: &str| body[k].as_str().unwrap().to_owned();
    (field("token"), field("interviewId"), field("journeyId"))
}

/// A call with a session token.
fn omni(app: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("api-version", "1.0")
        .bearer_auth(token)
}

pub async fn add_data(
    app: &TestApp,
    token: &str,
    step: &str,
    fields: Value,
) -> (StatusCode, Value) {
    send(
        omni(app, Method::POST, "/omni/add/data", token)
            .json(&json!({ "stepId": step, "fields": fields })),
    )
    .await
}

pub async fn upload(
    app: &TestApp,
    token: &str,
    step: &str,
    doc_type: &str,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
) -> (StatusCode, Value) {
    let file = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    let form = Form::new()
        .text("stepId", step.to_owned())
        .text("documentType", doc_type.to_owned())
        .part("file", file);
    send(omni(app, Method::POST, "/omni/add/document", token).multipart(form)).await
}

const KYC: fn() -> Value = || {
    json!({ "firstName": "Layla", "lastName": "Al-Saud", "dateOfBirth": "1990-02-28",
            "nationality": "SA", "idNumber": "1012345678" })
};

/// Every write the customer can make with `token` (data, a document, finish, a handoff) is
/// refused with 409 `code`.
async fn customer_writes_refused(app: &TestApp, token: &str, code: &str) {
    let (s, b) = add_data(app, token, "step_kyc", json!({ "firstName": "Other" })).await;
    assert_problem(s, &b, 409, code);
    let (s, b) = upload(
        app,
        token,
        "step_docs",
        "trade_license",
        pdf(100),
        "x.pdf",
        "application/pdf",
    )
    .await;
    assert_problem(s, &b, 409, code);
    for path in ["/omni/finish", "/omni/handoff"] {
        let (s, b) = send(omni(app, Method::POST, path, token)).await;
        assert_problem(s, &b, 409, code);
    }
}

#[tokio::test]
async fn seed_request_verbatim_starts_a_session_whose_token_works() {
    let app = TestApp::spawn().await;
    let config = configure(&app).await;
    // Seed 002's curl, with its placeholders filled in.
    let body = format!(
        "{{\n\"countryCode\": \"ALL\",\n\"configurationId\": \"{config}\",\n\"externalCustomerId\" : \"ent_customer_456\"\n}}\n"
    );
    let res = app
        .client
        .post(app.url("/omni/start"))
        .header("Content-Type", "application/json")
        .header("api-version", "1.0")
        .header("x-api-key", &app.key)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let started: Value = res.json().await.unwrap();
    let token = started["token"].as_str().unwrap();
    assert!(
        token.starts_with("ost_") && token.len() >= 4 + 43,
        "{started}"
    );
    assert!(started["interviewId"].as_str().unwrap().starts_with("onb_"));
    assert!(started["journeyId"].as_str().unwrap().starts_with("jrn_"));
    assert_eq!(started["customerId"], "ent_customer_456");
    assert!(started["expiresAt"].as_str().unwrap().ends_with('Z'));

    // The token is stored only as a hash.
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM onboarding_tokens")
        .fetch_one(app.db.reader())
        .await
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored, hex::encode(Sha256::digest(token.as_bytes())));

    let (s, session) = send(omni(&app, Method::GET, "/omni/session", token)).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["status"], "started");
    assert_eq!(session["interviewId"], started["interviewId"]);
    let current = &session["currentStep"];
    assert_eq!(current["id"], "step_kyc");
    assert_eq!(current["customerFacing"], true);
    let names: Vec<&str> = current["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "firstName",
            "lastName",
            "dateOfBirth",
            "nationality",
            "idNumber"
        ]
    );
    assert_eq!(current["missing"].as_array().unwrap().len(), 5);

    // The journey runs on the template, for the customer, and the start is on its timeline.
    let (_, journey) = app
        .get(&format!(
            "/api/v1/omni/journeys/{}",
            started["journeyId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(journey["data"]["templateId"], "tmpl_onboarding_sme");
    assert_eq!(journey["data"]["customerId"], "ent_customer_456");
    assert_eq!(journey["data"]["channel"], "web");
    let events = app
        .events_of("onboarding", started["interviewId"].as_str().unwrap())
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "omni.onboarding.started");
}

#[tokio::test]
async fn each_header_and_body_error_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (s, _) = app
        .post(
            "/api/v1/omni/onboarding/configurations",
            &json!({ "id": "cfg_gcc", "name": "GCC", "templateId": "tmpl_onboarding_sme", "countries": ["sa", "AE"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let good = json!({ "countryCode": "ALL", "configurationId": "cfg_sme" });
    let before = app.event_count().await;

    let post = |headers: &[(&str, &str)], body: &Value| {
        let mut req = app.client.post(app.url("/omni/start")).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(req)
    };
    let key = app.key.as_str();
    let (s, b) = post(&[("x-api-key", key)], &good).await;
    assert_problem(s, &b, 400, "api_version_required");
    let (s, b) = post(&[("x-api-key", key), ("api-version", "2.0")], &good).await;
    assert_problem(s, &b, 400, "api_version_unsupported");
    assert_eq!(b["supportedVersions"], json!(["1.0"]));
    let (s, b) = post(&[("api-version", "1.0")], &good).await;
    assert_problem(s, &b, 401, "unauthenticated");
    let (s, b) = post(&[("api-version", "1.0"), ("x-api-key", "omk_nope")], &good).await;
    assert_problem(s, &b, 401, "invalid_api_key");

    let v1 = [("api-version", "1.0"), ("x-api-key", key)];
    let (s, b) = post(&v1, &json!({ "countryCode": "ALL" })).await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "configurationId");
    let (s, b) = post(&v1, &json!({ "configurationId": "cfg_sme" })).await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "countryCode");
    let (s, b) = post(
        &v1,
        &json!({ "countryCode": "ALL", "configurationId": "cfg_none" }),
    )
    .await;
    assert_problem(s, &b, 422, "unknown_configuration");
    let (s, b) = post(
        &v1,
        &json!({ "countryCode": "XX", "configurationId": "cfg_sme" }),
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    let (s, b) = post(
        &v1,
        &json!({ "countryCode": "QA", "configurationId": "cfg_gcc" }),
    )
    .await;
    assert_problem(s, &b, 422, "country_not_served");
    assert_eq!(b["countries"], json!(["AE", "SA"]));
    let (s, b) = post(
        &v1,
        &json!({ "countryCode": "ALL", "configurationId": "cfg_gcc" }),
    )
    .await;
    assert_problem(s, &b, 422, "country_not_served");

    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let bad_bodies = [
        (json!({ "customFields": many }), "customFields"),
        (
            json!({ "customFields": { "k".repeat(65): "v" } }),
            "customFields.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        ),
        (
            json!({ "customFields": { "note": "x".repeat(1025) } }),
            "customFields.note",
        ),
        (
            json!({ "customFields": ["not", "an", "object"] }),
            "customFields",
        ),
        (
            json!({ "externalCustomerId": "has space" }),
            "externalCustomerId",
        ),
        (json!({ "language": "english" }), "language"),
        (
            json!({ "redirectUrl": "ftp://bank.example/done" }),
            "redirectUrl",
        ),
        (json!({ "channel": "fax" }), "channel"),
    ];
    for (extra, field) in bad_bodies {
        let mut body = good.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, b) = post(&v1, &body).await;
        assert_problem(s, &b, 422, "validation_failed");
        assert_eq!(b["errors"][0]["field"], field, "{b}");
    }
    let (s, b) = send(
        app.client
            .post(app.url("/omni/start"))
            .header("api-version", "1.0")
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body("{\"countryCode\": "),
    )
    .await;
    assert_problem(s, &b, 400, "malformed_json");

    assert_eq!(app.count("onboardings").await, 0);
    assert_eq!(app.count("journeys").await, 0);
    assert_eq!(app.event_count().await, before);

    // Within bounds, everything is kept.
    let (s, b) = post(
        &v1,
        &json!({ "countryCode": "sa", "configurationId": "cfg_gcc", "language": "ar-SA",
                 "redirectUrl": "https://bank.example/onboarding/done", "channel": "MOBILE_ANDROID",
                 "customFields": { "segment": "sme", "score": 720, "vip": false } }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["channel"], "mobile_android");
    assert!(b["customerId"].as_str().unwrap().starts_with("cust_"));
    let (_, o) = app
        .get(&format!(
            "/api/v1/omni/onboarding/{}",
            b["interviewId"].as_str().unwrap()
        ))
        .await;
    let o = &o["data"];
    assert_eq!(o["countryCode"], "SA");
    assert_eq!(o["language"], "ar-SA");
    assert_eq!(
        o["customFields"],
        json!({ "segment": "sme", "score": 720, "vip": false })
    );
    assert_eq!(o["status"], "started");
    assert_eq!(o["externalCustomerId"], Value::Null);
}

#[tokio::test]
async fn a_whole_onboarding_from_start_to_staff_approval_and_completed() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token, interview, journey) = start(&app, "ent_customer_456").await;

    // Part of the KYC data: kept, the step waits for the rest.
    let (s, session) = add_data(
        &app,
        &token,
        "step_kyc",
        json!({ "firstName": "Layla", "lastName": "Al-Saud" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["status"], "in_progress");
    assert_eq!(session["currentStep"]["id"], "step_kyc");
    assert_eq!(
        session["currentStep"]["missing"],
        json!(["dateOfBirth", "nationality", "idNumber"])
    );

    // Bad values: every one listed, nothing kept.
    let (s, b) = add_data(
        &app,
        &token,
        "step_kyc",
        json!({ "dateOfBirth": "1990-13-01", "nationality": "XX", "favouriteColour": "blue", "idNumber": "1012345678" }),
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
            "fields.dateOfBirth",
            "fields.favouriteColour",
            "fields.nationality"
        ]
    );
    let (_, session) = send(omni(&app, Method::GET, "/omni/session", &token)).await;
    assert_eq!(
        session["data"],
        json!({ "step_kyc": { "firstName": "Layla", "lastName": "Al-Saud" } })
    );

    // The rest completes the step.
    let (s, session) = add_data(&app, &token, "step_kyc", KYC()).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["stepsDone"][0]["id"], "step_kyc");
    assert_eq!(session["stepsDone"][0]["status"], "passed");
    let current = &session["currentStep"];
    assert_eq!(current["id"], "step_docs");
    assert_eq!(
        current["documentsRequired"],
        json!(["trade_license", "financial_statements"])
    );
    assert_eq!(
        current["missing"],
        json!(["trade_license", "financial_statements"])
    );

    // Two documents.
    let license = pdf(5000);
    let (s, b) = upload(
        &app,
        &token,
        "step_docs",
        "trade_license",
        license.clone(),
        "license.pdf",
        "application/pdf",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["stepCompleted"], false);
    assert_eq!(b["document"]["contentType"], "application/pdf");
    assert_eq!(b["document"]["sizeBytes"], 5000);
    assert_eq!(
        b["document"]["sha256"],
        hex::encode(Sha256::digest(&license))
    );
    assert_eq!(b["document"]["fileName"], "license.pdf");
    let license_id = b["document"]["id"].as_str().unwrap().to_owned();
    let (s, b) = upload(
        &app,
        &token,
        "step_docs",
        "financial_statements",
        png(),
        "statements.png",
        "image/png",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["stepCompleted"], true);
    let session = &b["session"];
    assert_eq!(session["currentStep"]["id"], "step_credit");
    assert_eq!(session["currentStep"]["customerFacing"], false);
    assert_eq!(session["documents"].as_array().unwrap().len(), 2);

    // The customer's own document, back through the session.
    let res = omni(
        &app,
        Method::GET,
        &format!("/omni/documents/{license_id}"),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(
        res.bytes().await.unwrap().as_ref() == license.as_slice(),
        "the bytes differ"
    );

    // Finish: read-only afterwards.
    let (s, session) = send(omni(&app, Method::POST, "/omni/finish", &token)).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["status"], "finished");
    assert!(session["finishedAt"].is_string());
    customer_writes_refused(&app, &token, "session_finished").await;
    let (s, _) = send(omni(&app, Method::GET, "/omni/session", &token)).await;
    assert_eq!(s, StatusCode::OK);

    // The customer's own step opened the approval: it names the customer, as a customer, and
    // the customer never joins the staff directory (issue 20).
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    let approval = j["data"]["currentStep"]["approvalId"].as_str().unwrap();
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["requestedBy"], "ent_customer_456");
    assert_eq!(a["data"]["requestedByType"], "customer");
    let (_, users) = app.get("/api/v1/omni/users?perPage=100").await;
    let ids: Vec<&str> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"ent_customer_456"), "{ids:?}");

    // Staff: the approval step, then complete.
    app.approve_current_step(&journey).await;
    let (s, b) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/complete"),
            &json!({ "completedBy": "usr_credit_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // The bank's view.
    let (s, o) = app
        .get(&format!("/api/v1/omni/onboarding/{interview}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let o = &o["data"];
    assert_eq!(o["status"], "completed");
    assert_eq!(o["journeyStatus"], "completed");
    assert_eq!(o["externalCustomerId"], "ent_customer_456");
    assert_eq!(o["data"]["step_kyc"], KYC());
    let statuses: Vec<&str> = o["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "passed", "passed"]);
    assert_eq!(o["documents"].as_array().unwrap().len(), 2);
    let res = app
        .req(
            Method::GET,
            &format!("/api/v1/omni/onboarding/{interview}/documents/{license_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.headers()["content-length"], "5000");
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&license));
    assert_eq!(
        res.headers()["repr-digest"],
        format!("sha-256=:{digest}:").as_str()
    );
    assert!(
        res.bytes().await.unwrap().as_ref() == license.as_slice(),
        "the bytes differ"
    );

    // Listing, with its filters.
    let ids = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["interviewId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, b) = app
        .get("/api/v1/omni/onboarding?status=completed&externalCustomerId=ent_customer_456")
        .await;
    assert_eq!(ids(&b), vec![interview.clone()]);
    assert_eq!(b["pagination"]["total"], 1);
    let (_, b) = app.get("/api/v1/omni/onboarding?status=started").await;
    assert!(ids(&b).is_empty());
    let (_, b) = app
        .get("/api/v1/omni/onboarding?externalCustomerId=ent_other")
        .await;
    assert!(ids(&b).is_empty());
    let (s, b) = app.get("/api/v1/omni/onboarding?status=done").await;
    assert_problem(s, &b, 422, "invalid_query_parameter");

    // Every step is on the onboarding's timeline.
    let types: Vec<String> = app
        .events_of("onboarding", &interview)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "omni.onboarding.started",
            "omni.onboarding.data_added",
            "omni.onboarding.data_added",
            "omni.journey.advanced",
            "omni.onboarding.document_added",
            "omni.onboarding.document_added",
            "omni.journey.advanced",
            "omni.onboarding.finished",
        ]
        .into_iter()
        .filter(|t| t.starts_with("omni.onboarding"))
        .collect::<Vec<_>>()
    );
    let (s, t) = app
        .get(&format!(
            "/api/v1/omni/timeline?entityType=onboarding&entityId={interview}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["pagination"]["total"], 6);
}

#[tokio::test]
async fn a_token_reaches_only_its_own_session() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token_a, interview_a, _) = start(&app, "ent_a").await;
    let (token_b, interview_b, _) = start(&app, "ent_b").await;
    let (s, b) = upload(
        &app,
        &token_b,
        "step_kyc",
        "x",
        pdf(10),
        "x.pdf",
        "application/pdf",
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    add_data(&app, &token_b, "step_kyc", KYC()).await;
    let (s, b) = upload(
        &app,
        &token_b,
        "step_docs",
        "trade_license",
        pdf(100),
        "b.pdf",
        "application/pdf",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let doc_b = b["document"]["id"].as_str().unwrap().to_owned();

    // Its session only: B's document is not found through A's token.
    let (s, session) = send(omni(&app, Method::GET, "/omni/session", &token_a)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(session["interviewId"], interview_a.as_str());
    let (s, b) = send(omni(
        &app,
        Method::GET,
        &format!("/omni/documents/{doc_b}"),
        &token_a,
    ))
    .await;
    assert_problem(s, &b, 404, "not_found");
    let (s, _) = send(omni(
        &app,
        Method::GET,
        &format!("/omni/documents/{doc_b}"),
        &token_b,
    ))
    .await;
    assert_eq!(s, StatusCode::OK);

    // No staff API, in either header.
    for path in [
        format!("/api/v1/omni/onboarding/{interview_a}"),
        "/api/v1/omni/journeys".to_owned(),
        format!("/api/v1/omni/onboarding/{interview_b}/documents/{doc_b}"),
    ] {
        let (s, b) = send(app.client.get(app.url(&path)).bearer_auth(&token_a)).await;
        assert_problem(s, &b, 401, "invalid_api_key");
        let (s, b) = send(app.client.get(app.url(&path)).header("x-api-key", &token_a)).await;
        assert_problem(s, &b, 401, "invalid_api_key");
    }
    // Nor may an API key stand in for a session token.
    let (s, b) = send(omni(&app, Method::GET, "/omni/session", &app.key)).await;
    assert_problem(s, &b, 401, "invalid_session_token");
    let (s, b) = send(
        app.client
            .get(app.url("/omni/session"))
            .header("api-version", "1.0"),
    )
    .await;
    assert_problem(s, &b, 401, "unauthenticated");
    let (s, b) = send(
        app.client
            .get(app.url("/omni/session"))
            .bearer_auth(&token_a),
    )
    .await;
    assert_problem(s, &b, 400, "api_version_required");

    // Another tenant sees neither onboarding nor document.
    let other = app.other_tenant_key().await;
    let (s, b) = send(
        app.client
            .get(app.url(&format!("/api/v1/omni/onboarding/{interview_b}")))
            .header("x-api-key", &other),
    )
    .await;
    assert_problem(s, &b, 404, "not_found");
    let (s, _) = send(
        app.client
            .get(app.url(&format!(
                "/api/v1/omni/onboarding/{interview_b}/documents/{doc_b}"
            )))
            .header("x-api-key", &other),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // After expiry (the tokens' lifetime, a day by default): 410, and nothing changes.
    app.advance(std::time::Duration::from_secs(24 * 3600 + 1));
    let (s, b) = send(omni(&app, Method::GET, "/omni/session", &token_a)).await;
    assert_problem(s, &b, 410, "session_expired");
    let events = app.event_count().await;
    let (s, b) = add_data(&app, &token_a, "step_kyc", KYC()).await;
    assert_problem(s, &b, 410, "session_expired");
    let (s, b) = send(omni(&app, Method::POST, "/omni/handoff", &token_a)).await;
    assert_problem(s, &b, 410, "session_expired");
    assert_eq!(app.event_count().await, events);
    let (_, o) = app
        .get(&format!("/api/v1/omni/onboarding/{interview_a}"))
        .await;
    assert_eq!(o["data"]["status"], "expired");
    let (_, b) = app.get("/api/v1/omni/onboarding?status=expired").await;
    assert_eq!(b["pagination"]["total"], 2);
}

#[tokio::test]
async fn uploads_are_bounded_and_known_by_content() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token, _, _) = start(&app, "ent_customer_456").await;
    // Sends a document to the document step.
    let (app_ref, token_ref) = (&app, token.as_str());
    let on_docs =
        move |doc_type: &'static str, bytes: Vec<u8>, name: &'static str, mime: &'static str| {
            upload(app_ref, token_ref, "step_docs", doc_type, bytes, name, mime)
        };

    // Not yet the document step; a staff step; not a step at all.
    let (s, b) = on_docs("trade_license", pdf(100), "a.pdf", "application/pdf").await;
    assert_problem(s, &b, 409, "step_not_current");
    assert_eq!(b["currentStepId"], "step_kyc");
    let (s, b) = add_data(&app, &token, "step_docs", json!({ "note": "early" })).await;
    assert_problem(s, &b, 409, "step_not_current");
    let (s, b) = upload(
        &app,
        &token,
        "step_credit",
        "trade_license",
        pdf(100),
        "a.pdf",
        "application/pdf",
    )
    .await;
    assert_problem(s, &b, 403, "step_not_customer_facing");
    let (s, b) = add_data(&app, &token, "step_credit", json!({ "x": 1 })).await;
    assert_problem(s, &b, 403, "step_not_customer_facing");
    let (s, b) = add_data(&app, &token, "step_nope", json!({ "x": 1 })).await;
    assert_problem(s, &b, 422, "validation_failed");
    add_data(&app, &token, "step_kyc", KYC()).await;
    let (s, b) = add_data(&app, &token, "step_docs", json!({ "x": 1 })).await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "stepId");

    let limit = 10 * 1024 * 1024;
    let (s, b) = on_docs(
        "trade_license",
        pdf(limit + 1),
        "big.pdf",
        "application/pdf",
    )
    .await;
    assert_problem(s, &b, 413, "document_too_large");
    let (s, b) = on_docs(
        "trade_license",
        png(),
        "license.pdf",
        "application/octet-stream",
    )
    .await;
    assert_problem(s, &b, 422, "document_type_mismatch");
    assert_eq!(b["detectedContentType"], "image/png");
    assert_eq!(b["claimedContentType"], "application/pdf");
    let (s, b) = on_docs("trade_license", png(), "license", "application/pdf").await;
    assert_problem(s, &b, 422, "document_type_mismatch");
    let (s, b) = on_docs(
        "trade_license",
        b"GIF89a\x01\x00\x01\x00".to_vec(),
        "l.gif",
        "image/gif",
    )
    .await;
    assert_problem(s, &b, 415, "unsupported_document_type");
    let (s, b) = on_docs(
        "trade_license",
        b"just text".to_vec(),
        "l.pdf",
        "application/pdf",
    )
    .await;
    assert_problem(s, &b, 415, "unsupported_document_type");
    let (s, b) = on_docs("passport", pdf(100), "p.pdf", "application/pdf").await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "documentType");
    let (s, b) = on_docs("trade_license", vec![], "e.pdf", "application/pdf").await;
    assert_problem(s, &b, 422, "validation_failed");
    let (s, b) = send(
        omni(&app, Method::POST, "/omni/add/document", &token).multipart(
            Form::new()
                .text("stepId", "step_docs")
                .text("documentType", "trade_license"),
        ),
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "file");
    let (s, b) = send(
        omni(&app, Method::POST, "/omni/add/document", &token)
            .json(&json!({ "stepId": "step_docs" })),
    )
    .await;
    assert_problem(s, &b, 415, "unsupported_media_type");

    // A JSON body is bounded as everywhere else; only documents may be larger.
    let big = json!({ "stepId": "step_docs", "fields": { "note": "x".repeat(2 * 1024 * 1024) } });
    let (s, b) = send(omni(&app, Method::POST, "/omni/add/data", &token).json(&big)).await;
    assert_problem(s, &b, 413, "payload_too_large");

    // Nothing of the refused uploads was kept, in the database or the store.
    assert_eq!(app.count("onboarding_documents").await, 0);
    assert_eq!(std::fs::read_dir(&app.documents.0).unwrap().count(), 0);

    // Exactly the limit is accepted; a PNG sent without a type is known as a PNG.
    let (s, b) = on_docs("trade_license", pdf(limit), "big.pdf", "application/pdf").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["document"]["sizeBytes"], limit);
    let (s, b) = on_docs(
        "financial_statements",
        png(),
        "scan",
        "application/octet-stream",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["document"]["contentType"], "image/png");
    assert_eq!(b["stepCompleted"], true);
}

#[tokio::test]
async fn cross_device_resume_shares_one_onboarding() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (web, interview, _) = start(&app, "ent_customer_456").await;
    add_data(&app, &web, "step_kyc", json!({ "firstName": "Layla" })).await;

    let (s, h) = send(omni(&app, Method::POST, "/omni/handoff", &web)).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let handoff = h["handoffToken"].as_str().unwrap().to_owned();
    assert!(handoff.starts_with("ho_"));
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h["qrPayload"].as_str().unwrap())
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["handoffToken"], handoff.as_str());
    assert_eq!(payload["interviewId"], interview.as_str());

    let resume = |body: Value, version: Option<&str>| {
        let mut req = app.client.post(app.url("/omni/resume")).json(&body);
        if let Some(v) = version {
            req = req.header("api-version", v);
        }
        send(req)
    };
    let body =
        json!({ "handoffToken": handoff, "channel": "MOBILE_IOS", "device_id": "iphone_15_abc" });
    let (s, b) = resume(body.clone(), None).await;
    assert_problem(s, &b, 400, "api_version_required");
    let (s, b) = resume(
        json!({ "handoffToken": "ho_unknown", "channel": "web", "deviceId": "d1" }),
        Some("1.0"),
    )
    .await;
    assert_problem(s, &b, 404, "not_found");
    let (s, b) = resume(
        json!({ "handoffToken": handoff, "channel": "web", "deviceId": "bad device" }),
        Some("1.0"),
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    let (s, phone) = resume(body.clone(), Some("1.0")).await;
    assert_eq!(s, StatusCode::CREATED, "{phone}");
    assert_eq!(phone["interviewId"], interview.as_str());
    assert_eq!(phone["channel"], "mobile_ios");
    let phone = phone["token"].as_str().unwrap().to_owned();
    assert_ne!(phone, web);
    let (s, b) = resume(body, Some("1.0")).await;
    assert_problem(s, &b, 409, "handoff_used");

    // Both devices act on one onboarding and see the same state.
    let (s, _) = add_data(&app, &phone, "step_kyc", KYC()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, on_web) = send(omni(&app, Method::GET, "/omni/session", &web)).await;
    let (_, on_phone) = send(omni(&app, Method::GET, "/omni/session", &phone)).await;
    assert_eq!(on_web["currentStep"]["id"], "step_docs");
    assert_eq!(on_web["data"], on_phone["data"]);
    assert_eq!(on_web["channel"], "web");
    assert_eq!(on_phone["channel"], "mobile_ios");
    let events = app.events_of("onboarding", &interview).await;
    let last_data = events
        .iter()
        .rev()
        .find(|e| e.event_type == "omni.onboarding.data_added")
        .unwrap();
    assert_eq!(last_data.channel.as_deref(), Some("mobile_ios"));
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "omni.onboarding.resumed")
    );
}

#[tokio::test]
async fn an_expired_handoff_is_gone() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (web, _, _) = start(&app, "ent_customer_456").await;
    let (_, h) = send(omni(&app, Method::POST, "/omni/handoff", &web)).await;
    // Past the handoff's lifetime (five minutes by default).
    app.advance(std::time::Duration::from_secs(301));
    let (s, b) = send(
        app.client
            .post(app.url("/omni/resume"))
            .header("api-version", "1.0")
            .json(&json!({ "handoffToken": h["handoffToken"], "channel": "mobile_android", "deviceId": "pixel" })),
    )
    .await;
    assert_problem(s, &b, 410, "handoff_expired");
    assert_eq!(app.count("onboarding_tokens").await, 1);
}

#[tokio::test]
async fn finish_needs_the_required_customer_steps_and_skips_optional_ones() {
    let app = TestApp::spawn().await;
    let template = json!({
        "id": "tmpl_retail", "name": "Retail onboarding", "category": "onboarding",
        "steps": [
            { "id": "profile", "name": "Profile", "type": "form", "order": 1, "fields": [
                { "name": "employment", "type": "string", "options": ["salaried", "self_employed"] },
                { "name": "monthlyIncome", "type": "number" },
                { "name": "email", "type": "email" },
                { "name": "mobile", "type": "phone", "required": false },
            ]},
            { "id": "extras", "name": "Anything else", "type": "form", "order": 2, "required": false },
            { "id": "review", "name": "Back-office review", "type": "review", "order": 3 },
        ]
    });
    let (s, b) = app.post("/api/v1/omni/templates", &template).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = app
        .post(
            "/api/v1/omni/onboarding/configurations",
            &json!({ "id": "cfg_sme", "name": "Retail", "templateId": "tmpl_retail", "countries": ["SA"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = send(start_req(
        &app,
        &json!({ "countryCode": "SA", "configurationId": "cfg_sme" }),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();

    let (s, b) = send(omni(&app, Method::POST, "/omni/finish", &token)).await;
    assert_problem(s, &b, 409, "onboarding_incomplete");
    assert_eq!(b["pendingSteps"], json!(["profile"]));

    let (s, b) = add_data(
        &app,
        &token,
        "profile",
        json!({ "employment": "student", "monthlyIncome": "5000", "email": "x", "mobile": "0501" }),
    )
    .await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"].as_array().unwrap().len(), 4, "{b}");
    let (s, b) = add_data(&app, &token, "profile", json!({ "employment": "salaried", "monthlyIncome": 18500.5, "email": "layla@bank.example" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let current = &b["currentStep"];
    assert_eq!(current["id"], "extras");
    assert_eq!(current["freeForm"], true);

    // The optional free-form step is skipped at finish; the journey waits on staff review.
    let (s, b) = send(omni(&app, Method::POST, "/omni/finish", &token)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["currentStep"]["id"], "review");
    assert_eq!(b["stepsDone"][1]["status"], "skipped");

    // A review step cannot declare fields.
    let mut bad = template.clone();
    bad["id"] = json!("tmpl_bad");
    bad["steps"][2]["fields"] = json!([{ "name": "x" }]);
    bad["steps"][0]["fields"][1]["maxLength"] = json!(5);
    let (s, b) = app.post("/api/v1/omni/templates", &bad).await;
    assert_problem(s, &b, 422, "validation_failed");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["steps[0].fields[1].maxLength", "steps[2].fields"]);
}

#[tokio::test]
async fn configurations_name_an_active_onboarding_template() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let mut other = seed_template();
    other["id"] = json!("tmpl_servicing");
    other["category"] = json!("servicing");
    app.post("/api/v1/omni/templates", &other).await;
    let mut draft = seed_template();
    draft["id"] = json!("tmpl_draft");
    draft["status"] = json!("draft");
    let (s, b) = app.post("/api/v1/omni/templates", &draft).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let app = &app;
    let make = |template: &str, countries: Value| {
        let body = json!({ "name": "X", "templateId": template, "countries": countries });
        async move {
            app.post("/api/v1/omni/onboarding/configurations", &body)
                .await
        }
    };
    let (s, b) = make("tmpl_servicing", json!(["ALL"])).await;
    assert_problem(s, &b, 422, "template_not_onboarding");
    let (s, b) = make("tmpl_draft", json!(["ALL"])).await;
    assert_problem(s, &b, 422, "template_not_active");
    let (s, b) = make("tmpl_nope", json!(["ALL"])).await;
    assert_problem(s, &b, 422, "unknown_template");
    let (s, b) = make("tmpl_onboarding_sme", json!(["ALL", "SA"])).await;
    assert_problem(s, &b, 422, "validation_failed");
    let (s, b) = make("tmpl_onboarding_sme", json!(["SA", "ZZ"])).await;
    assert_problem(s, &b, 422, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "countries[1]");
    let (s, b) = make("tmpl_onboarding_sme", json!([])).await;
    assert_problem(s, &b, 422, "validation_failed");
    let (s, b) = app
        .post(
            "/api/v1/omni/onboarding/configurations",
            &json!({ "id": "cfg_sme", "name": "Again", "templateId": "tmpl_onboarding_sme", "countries": ["ALL"] }),
        )
        .await;
    assert_problem(s, &b, 409, "configuration_exists");
    assert_eq!(app.count("onboarding_configurations").await, 1);

    let (s, b) = make("tmpl_onboarding_sme", json!(["ae", "SA", "AE"])).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cfg_"));
    assert_eq!(b["data"]["countries"], json!(["AE", "SA"]));
    let (s, b) = app
        .get(&format!("/api/v1/omni/onboarding/configurations/{id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["data"]["templateId"], "tmpl_onboarding_sme");
    let (_, b) = app
        .get("/api/v1/omni/onboarding/configurations?perPage=1")
        .await;
    assert_eq!(b["pagination"]["total"], 2);
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    let other_key = app.other_tenant_key().await;
    let (s, _) = send(
        app.client
            .get(app.url(&format!("/api/v1/omni/onboarding/configurations/{id}")))
            .header("x-api-key", other_key),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn idempotency_keys_replay_within_one_session_only() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let body = json!({ "countryCode": "ALL", "configurationId": "cfg_sme", "externalCustomerId": "ent_1" });
    let (s1, a) = send(start_req(&app, &body).header("Idempotency-Key", "start-1")).await;
    let (s2, b) = send(start_req(&app, &body).header("Idempotency-Key", "start-1")).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a, b);
    assert_eq!(app.count("onboardings").await, 1);

    let token_a = a["token"].as_str().unwrap();
    let (token_b, _, _) = start(&app, "ent_2").await;
    let data = json!({ "stepId": "step_kyc", "fields": { "firstName": "Layla" } });
    let keyed = |token: &str| {
        omni(&app, Method::POST, "/omni/add/data", token)
            .header("Idempotency-Key", "k1")
            .json(&data)
    };
    let (s, first) = send(keyed(token_a)).await;
    assert_eq!(s, StatusCode::OK);
    let (_, again) = send(keyed(token_a)).await;
    assert_eq!(first, again);
    // The same key from another session is that session's own: it runs there.
    let (s, other) = send(keyed(&token_b)).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(other["interviewId"], first["interviewId"]);
    let data_added = |id: &str| {
        let app = &app;
        let id = id.to_owned();
        async move {
            app.events_of("onboarding", &id)
                .await
                .into_iter()
                .filter(|e| e.event_type == "omni.onboarding.data_added")
                .count()
        }
    };
    assert_eq!(data_added(first["interviewId"].as_str().unwrap()).await, 1);
    assert_eq!(data_added(other["interviewId"].as_str().unwrap()).await, 1);
}

#[tokio::test]
async fn concurrent_uploads_of_the_two_documents_complete_the_step_once() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token, _, journey) = start(&app, "ent_customer_456").await;
    add_data(&app, &token, "step_kyc", KYC()).await;
    let (a, b) = tokio::join!(
        upload(
            &app,
            &token,
            "step_docs",
            "trade_license",
            pdf(2000),
            "a.pdf",
            "application/pdf"
        ),
        upload(
            &app,
            &token,
            "step_docs",
            "financial_statements",
            png(),
            "b.png",
            "image/png"
        ),
    );
    assert_eq!(
        (a.0, b.0),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{} {}",
        a.1,
        b.1
    );
    assert_ne!(
        a.1["stepCompleted"], b.1["stepCompleted"],
        "exactly one completes the step"
    );
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(j["data"]["currentStep"]["id"], "step_credit");
    assert_eq!(
        j["data"]["steps"][1]["history"].as_array().unwrap().len(),
        1
    );
}

/// An S3-compatible server for one test: moto's, from PyPI (`OMNIRAIL_TEST_MOTO_SERVER` names
/// its `moto_server`; `.ci/run` installs it). Stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    async fn start() -> Option<Self> {
        let Ok(bin) = std::env::var("OMNIRAIL_TEST_MOTO_SERVER") else {
            // In CI the server is always there: a missing one is a failure, not a skip.
            assert!(
                std::env::var_os("CI").is_none(),
                "OMNIRAIL_TEST_MOTO_SERVER must name moto_server in CI (.ci/run installs it)"
            );
            eprintln!("skipped: OMNIRAIL_TEST_MOTO_SERVER is not set (.ci/run sets it)");
            return None;
        };
        let port = crate::cli::free_port();
        let child = std::process::Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        crate::helpers::wait_until("moto_server to answer", || async {
            client
                .get(&server.endpoint)
                .send()
                .await
                .is_ok()
                .then_some(())
        })
        .await;
        Some(server)
    }
}

impl S3Server {
    /// A `serve` process on `app`'s database that keeps its documents in this server's bucket
    /// `omnirail-docs` (created here), under the prefix `bank-a`: the process and its port.
    async fn node(&self, app: &TestApp) -> (std::process::Child, u16) {
        let bucket = format!("{}/omnirail-docs", self.endpoint);
        let (s, _) = send(reqwest::Client::new().put(bucket)).await;
        assert!(s.is_success(), "bucket not created: {s}");
        let port = crate::cli::free_port();
        let node = crate::cli::serve_with_env(
            app.config.database_url.expose(),
            port,
            &[
                ("OMNIRAIL_DOCUMENT_STORE", "s3://omnirail-docs/bank-a"),
                ("AWS_ENDPOINT", &self.endpoint),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
            ],
        )
        .await;
        (node, port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn documents_go_to_s3_compatible_storage_by_configuration() {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    configure(&app).await;
    let client = reqwest::Client::new();

    // A second node on the same database keeps its documents in the bucket.
    let (mut node, port) = s3.node(&app).await;
    let base = format!("http://127.0.0.1:{port}");
    let (token, interview, _) = start(&app, "ent_customer_456").await;
    let on_node = |method: Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .header("api-version", "1.0")
            .bearer_auth(&token)
    };
    let (s, b) = send(
        on_node(Method::POST, "/omni/add/data")
            .json(&json!({ "stepId": "step_kyc", "fields": KYC() })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let content = pdf(300_000);
    let form = Form::new()
        .text("stepId", "step_docs")
        .text("documentType", "trade_license")
        .part(
            "file",
            Part::bytes(content.clone()).file_name("license.pdf"),
        );
    let (s, b) = send(on_node(Method::POST, "/omni/add/document").multipart(form)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let doc = b["document"]["id"].as_str().unwrap().to_owned();

    // The object is in the bucket, under the configured prefix, and nowhere on local disk.
    let listing = client
        .get(format!(
            "{}/omnirail-docs?list-type=2&prefix=bank-a/",
            s3.endpoint
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = format!("bank-a/{}/{interview}/{doc}", app.tenant);
    assert!(listing.contains(&key), "{listing}");
    assert_eq!(std::fs::read_dir(&app.documents.0).unwrap().count(), 0);

    // The bank reads it back through the node.
    let res = client
        .get(format!(
            "{base}/api/v1/omni/onboarding/{interview}/documents/{doc}"
        ))
        .header("x-api-key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.bytes().await.unwrap().as_ref() == content.as_slice(),
        "the bytes differ"
    );
    assert!(crate::cli::terminate(&mut node).success());
}

#[tokio::test]
async fn of_concurrent_resumes_of_one_handoff_exactly_one_wins() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (web, _, _) = start(&app, "ent_customer_456").await;
    let (_, h) = send(omni(&app, Method::POST, "/omni/handoff", &web)).await;
    let body =
        json!({ "handoffToken": h["handoffToken"], "channel": "mobile_ios", "deviceId": "iphone" });
    let tries = (0..20).map(|_| {
        send(
            app.client
                .post(app.url("/omni/resume"))
                .header("api-version", "1.0")
                .json(&body),
        )
    });
    let answers = futures::future::join_all(tries).await;
    let won = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{answers:?}");
    for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_problem(*s, b, 409, "handoff_used");
    }
    assert_eq!(app.count("onboarding_tokens").await, 2);
}

#[tokio::test]
async fn a_cancelled_journey_closes_its_onboarding_and_an_archived_template_starts_none() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token, _, journey) = start(&app, "cust_closed").await;
    let (s, b) = app
        .post(
            &format!("/api/v1/omni/journeys/{journey}/cancel"),
            &json!({ "cancellationReason": "Customer withdrew", "cancelledBy": "usr_rm_001" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The customer's session is still open, but its onboarding is over.
    customer_writes_refused(&app, &token, "onboarding_closed").await;

    // A body that says it is multipart and is not.
    let (token, _, _) = start(&app, "cust_garbled").await;
    let (s, b) = send(
        omni(&app, Method::POST, "/omni/add/document", &token)
            .header("content-type", "multipart/form-data; boundary=zz")
            .body("not a multipart body"),
    )
    .await;
    assert_problem(s, &b, 400, "invalid_multipart");

    // The configuration's template archived: no new onboarding starts on it.
    let (s, b) = app
        .patch(
            "/api/v1/omni/templates/tmpl_onboarding_sme",
            &json!({ "status": "archived" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(start_req(
        &app,
        &json!({ "countryCode": "ALL", "configurationId": "cfg_sme", "externalCustomerId": "cust_late" }),
    ))
    .await;
    assert_problem(s, &b, 422, "template_not_active");
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { files_under(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Uploads that change nothing leave nothing in the document store, whichever it is:
/// `base` is the node that takes the uploads, `objects` counts what its store holds.
async fn uploads_that_change_nothing_leave_nothing<F, Fut>(app: &TestApp, base: &str, objects: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    configure(app).await;
    let (token, _, _) = start(app, "ent_customer_456").await;
    let on_node = |method: Method, path: &str| {
        app.client
            .request(method, format!("{base}{path}"))
            .header("api-version", "1.0")
            .bearer_auth(&token)
    };
    let (s, b) = send(
        on_node(Method::POST, "/omni/add/data")
            .json(&json!({ "stepId": "step_kyc", "fields": KYC() })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let form = |kind: &str, bytes: Vec<u8>, name: &str| {
        Form::new()
            .text("stepId", "step_docs")
            .text("documentType", kind.to_owned())
            .part("file", Part::bytes(bytes).file_name(name.to_owned()))
    };

    // One upload sent eight times at once with one Idempotency-Key (the same bytes, so one
    // fixed multipart boundary): one document, one file, however the eight interleave (the
    // losers' files are removed).
    let mut body = Vec::new();
    for (name, value) in [("stepId", "step_docs"), ("documentType", "trade_license")] {
        body.extend_from_slice(
            format!(
                "--b0und\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        b"--b0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n",
    );
    body.extend_from_slice(&pdf(500));
    body.extend_from_slice(b"\r\n--b0und--\r\n");
    let sends = (0..8).map(|_| {
        send(
            on_node(Method::POST, "/omni/add/document")
                .header("idempotency-key", "upload-1")
                .header("content-type", "multipart/form-data; boundary=b0und")
                .body(body.clone()),
        )
    });
    for (s, b) in futures::future::join_all(sends).await {
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    assert_eq!(app.count("onboarding_documents").await, 1);
    assert_eq!(objects().await, 1);

    // An upload racing the customer's own finish: whichever wins, the store holds a file for
    // each document and no other (a refused upload's file is removed).
    let (upload, finish) = tokio::join!(
        send(on_node(Method::POST, "/omni/add/document").multipart(form(
            "financial_statements",
            png(),
            "b.png"
        )),),
        send(on_node(Method::POST, "/omni/finish")),
    );
    assert!(
        upload.0.is_success() || upload.0.is_client_error(),
        "{upload:?}"
    );
    assert!(
        finish.0.is_success() || finish.0.is_client_error(),
        "{finish:?}"
    );
    let documents = usize::try_from(app.count("onboarding_documents").await).unwrap();
    assert_eq!(objects().await, documents);
}

#[tokio::test]
async fn uploads_that_change_nothing_leave_no_file_in_a_folder() {
    let app = TestApp::spawn().await;
    let base = app.url("");
    let folder = app.documents.0.clone();
    uploads_that_change_nothing_leave_nothing(&app, &base, || {
        let folder = folder.clone();
        async move { files_under(&folder) }
    })
    .await;
}

#[tokio::test]
async fn uploads_that_change_nothing_leave_no_object_in_s3() {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let (mut node, port) = s3.node(&app).await;
    let listing = format!("{}/omnirail-docs?list-type=2&prefix=bank-a/", s3.endpoint);
    uploads_that_change_nothing_leave_nothing(&app, &format!("http://127.0.0.1:{port}"), || {
        let (client, listing) = (client.clone(), listing.clone());
        async move {
            let text = client
                .get(&listing)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.matches("<Key>").count()
        }
    })
    .await;
    let _ = node.kill();
    let _ = node.wait();
}

#[tokio::test]
async fn a_customers_step_never_fails_for_the_banks_set_up() {
    let app = TestApp::spawn().await;
    // No user holds credit_analyst, which the template's approval step asks for.
    let (s, body) = app.post("/api/v1/omni/templates", &seed_template()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, config) = app
        .post(
            "/api/v1/omni/onboarding/configurations",
            &json!({ "id": "cfg_sme", "name": "SME", "templateId": "tmpl_onboarding_sme", "countries": ["ALL"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{config}");
    // The readiness check says so at once, and on every read.
    let warning = json!([{
        "code": "no_eligible_approver", "stepId": "step_credit", "role": "credit_analyst",
        "message": "Step step_credit is approved by role credit_analyst, which no user holds: onboardings that reach it wait until a user is given the role"
    }]);
    assert_eq!(config["data"]["warnings"], warning);
    let (_, config) = app
        .get("/api/v1/omni/onboarding/configurations/cfg_sme")
        .await;
    assert_eq!(config["data"]["warnings"], warning);

    // The customer's last document completes their step all the same.
    let (token, _, journey) = start(&app, "ent_customer_456").await;
    let (s, b) = add_data(&app, &token, "step_kyc", KYC()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for (kind, bytes, name, mime) in [
        ("trade_license", pdf(500), "a.pdf", "application/pdf"),
        ("financial_statements", png(), "b.png", "image/png"),
    ] {
        let (s, b) = upload(&app, &token, "step_docs", kind, bytes, name, mime).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    // The request waits for a credit analyst, and the bank is told.
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(j["data"]["currentStep"]["id"], "step_credit");
    let approval = j["data"]["currentStep"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["status"], "requested");
    assert_eq!(a["data"]["approvers"], json!([]));
    assert_eq!(a["data"]["awaitingRole"], "credit_analyst");
    assert_eq!(a["data"]["requestedByType"], "customer");
    let types = |events: Vec<omnirail::events::StoredEvent>| {
        events.into_iter().map(|e| e.event_type).collect::<Vec<_>>()
    };
    let seen = types(app.events_of("approval", &approval).await);
    assert_eq!(
        seen,
        ["omni.approval.requested", "omni.approval.unassignable"]
    );

    // The first user given the role becomes its approver and decides; the journey moves on.
    let (s, b) = app
        .put(
            "/api/v1/omni/users/usr_credit_001",
            &json!({ "name": "Sara", "roles": ["credit_analyst"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["approvers"][0]["userId"], "usr_credit_001");
    assert!(a["data"]["awaitingRole"].is_null(), "{a}");
    let seen = types(app.events_of("approval", &approval).await);
    assert_eq!(seen.last().unwrap(), "omni.approval.approver_assigned");
    // And is told, as of any new request.
    let (_, told) = app
        .get("/api/v1/omni/notifications?recipientId=usr_credit_001")
        .await;
    assert_eq!(
        told["data"][0]["templateCode"], "APPROVAL_REQUESTED",
        "{told}"
    );
    let (s, b) = app
        .post(
            &format!("/api/v1/omni/approvals/{approval}/decisions"),
            &json!({ "approverId": "usr_credit_001", "decision": "approve" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, j) = app.get(&format!("/api/v1/omni/journeys/{journey}")).await;
    assert_eq!(j["data"]["steps"][2]["status"], "passed", "{j}");
    let (_, config) = app
        .get("/api/v1/omni/onboarding/configurations/cfg_sme")
        .await;
    assert_eq!(config["data"]["warnings"], json!([]));
}

/// The parts a multipart body documents are the ones the server reads: an upload built from the
/// OpenAPI document alone (as an SDK generator builds it) is accepted. (The document once said
/// `step_id` where the server reads `stepId`, which the Python SDK's test caught.)
#[tokio::test]
async fn a_multipart_body_built_from_the_document_is_accepted() {
    let app = TestApp::spawn().await;
    configure(&app).await;
    let (token, _, _) = start(&app, "ent_parts").await;
    let (s, b) = add_data(&app, &token, "step_kyc", KYC()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (method, path, op) in crate::helpers::documented_operations() {
        let Some(reference) =
            op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].as_str()
        else {
            continue;
        };
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/omni/add/document")
        );
        let schema = &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()];
        let mut form = Form::new();
        for (name, property) in schema["properties"].as_object().unwrap() {
            form = match (name.as_str(), property["format"].as_str()) {
                (_, Some("binary")) => form.part(
                    name.clone(),
                    Part::bytes(pdf(100))
                        .file_name("licence.pdf")
                        .mime_str("application/pdf")
                        .unwrap(),
                ),
                (n, _) if n.to_ascii_lowercase().contains("step") => {
                    form.text(name.clone(), "step_docs")
                }
                _ => form.text(name.clone(), "trade_license"),
            };
        }
        let (s, b) =
            send(omni(&app, Method::POST, "/omni/add/document", &token).multipart(form)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        checked += 1;
    }
    assert_eq!(checked, 1);
}
