//! The operator console over HTTP, as a browser without script sees it: staff sign in through
//! the real OpenID provider (`oidc::Provider`), and every page and form is driven with the
//! session's cookie. The browser tests (`tests/console/`) drive the same pages in Chromium.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, seed_journey, seed_template, send};
use crate::oidc::{AUDIENCE, Provider};

/// A server whose tenant signs staff in at `provider`, and that provider.
async fn console_app() -> Option<(TestApp, Provider)> {
    console_app_with(|_| {}).await
}

/// As [`console_app`], with more of the server's configuration set by `adjust`.
async fn console_app_with(
    adjust: impl FnOnce(&mut omnirail::config::Config),
) -> Option<(TestApp, Provider)> {
    let app = TestApp::spawn_with(|c| {
        c.identity.allow_http = true;
        c.identity.allow_private_providers = true;
        adjust(c);
    })
    .await;
    let redirect = format!("{}/console/callback", app.base);
    let provider = Provider::start_with(json!({}), &["--redirect-uris", &redirect]).await?;
    let (s, body) = app
        .put(
            "/api/v1/omni/identity-provider",
            &json!({
                "issuer": provider.issuer(), "audience": AUDIENCE,
                "consoleClientId": "omnirail-test", "consoleScope": "openid staff"
            }),
        )
        .await;
    assert!(s.is_success(), "{body}");
    assert_eq!(body["data"]["consoleClientId"], "omnirail-test");
    assert!(
        body["data"]["authorizationEndpoint"]
            .as_str()
            .unwrap()
            .starts_with(&provider.issuer()),
        "{body}"
    );
    for (id, roles) in [
        ("usr_rm_001", json!(["relationship_manager"])),
        ("usr_credit_001", json!(["credit_analyst"])),
        ("usr_admin", json!(["admin"])),
    ] {
        let (s, b) = app
            .put(
                &format!("/api/v1/omni/users/{id}"),
                &json!({ "name": id, "roles": roles }),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }
    Some((app, provider))
}

/// A browser: its own cookies, no redirect followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Signs `login` in to the console in `browser`; answers the session cookie's `Set-Cookie`.
async fn sign_in(
    app: &TestApp,
    provider: &Provider,
    browser: &reqwest::Client,
    login: &str,
) -> String {
    let res = browser
        .get(app.url(&format!("/console/sign-in?tenant={}", app.tenant)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_provider = reqwest::Url::parse(&location(&res)).unwrap();
    let pairs: Vec<(String, String)> = to_provider.query_pairs().into_owned().collect();
    let param = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("client_id").as_deref(), Some("omnirail-test"));
    let back = provider.authorize(browser, to_provider, login).await;
    assert!(
        back.starts_with(&format!("{}/console/callback?", app.base)),
        "{back}"
    );
    let res = browser.get(&back).send().await.unwrap();
    let status = res.status();
    let set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("omnirail_console="))
        .unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(location(&res), "/console/work");
    set
}

async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let res = browser.get(app.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The CSRF token of the session, as its pages carry it.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// The relationship manager signed in, on the page of the seed journey assigned to them: the
/// server, its provider, the browser, the journey and the session's CSRF token.
async fn at_a_journey() -> Option<(TestApp, Provider, reqwest::Client, String, String)> {
    let (app, provider) = console_app().await?;
    let id = app.seed_journey().await;
    let b = browser();
    sign_in(&app, &provider, &b, "usr_rm_001").await;
    let (_, html) = page(&app, &b, &format!("/console/journeys/{id}")).await;
    let csrf = csrf_of(&html);
    Some((app, provider, b, id, csrf))
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let res = browser.post(app.url(path)).form(form).send().await.unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    (status, res.text().await.unwrap(), to)
}

async fn journey(app: &TestApp, id: &str) -> Value {
    let (s, body) = app.get(&format!("/api/v1/omni/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn staff_sign_in_at_the_provider_and_advance_their_work_as_themselves() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    let id = app.seed_journey().await;
    let b = browser();
    // Before signing in, every page sends the browser to sign in, and back afterwards.
    let res = b.get(app.url("/console/work")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/sign-in?next=%2Fconsole%2Fwork");

    let cookie = sign_in(&app, &provider, &b, "usr_rm_001").await;
    for part in ["HttpOnly", "SameSite=Lax", "Path=/console"] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    let token = cookie["omnirail_console=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM console_sessions WHERE token_hash = $1")
            .bind(omnirail::ids::sha256_hex(&token))
            .fetch_one(app.db.reader())
            .await
            .unwrap();
    assert_eq!(
        stored, 1,
        "the database keeps the token's hash, never the token"
    );

    let res = b.get(app.url("/console/work")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("/console/journeys/{id}")), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );

    let (s, html) = page(&app, &b, &format!("/console/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let csrf = csrf_of(&html);
    let (s, _, to) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/advance"),
        &[
            ("csrf", &csrf),
            ("idem", "console-test-advance"),
            ("completedStepId", "step_kyc"),
            ("stepOutcome", "passed"),
            ("stepData", r#"{"kycStatus": "verified"}"#),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        to.as_deref(),
        Some(format!("/console/journeys/{id}").as_str())
    );
    let j = journey(&app, &id).await;
    assert_eq!(j["currentStep"]["id"], "step_docs");
    // The event names the signed-in person, proven by the provider.
    let (_, t) = app
        .get(&format!(
            "/api/v1/omni/timeline?entityType=journey&entityId={id}&order=desc"
        ))
        .await;
    let advanced = &t["data"][0];
    assert_eq!(advanced["actorId"], "usr_rm_001", "{t}");
    assert_eq!(advanced["actorVerified"], true, "{t}");
    assert_eq!(advanced["actorIssuer"], provider.issuer().as_str());

    // The same form sent twice acts once (its idempotency key).
    let (s, _, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/advance"),
        &[
            ("csrf", &csrf),
            ("idem", "console-test-advance"),
            ("completedStepId", "step_kyc"),
            ("stepOutcome", "passed"),
            ("stepData", r#"{"kycStatus": "verified"}"#),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(journey(&app, &id).await["currentStep"]["id"], "step_docs");
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_or_from_another_site_changes_nothing() {
    // The provider is kept for the test's length (`_idp`).
    let Some((app, _idp, b, id, csrf)) = at_a_journey().await else {
        return;
    };
    let path = format!("/console/journeys/{id}/cancel");
    for (form, cross) in [
        (vec![("cancellationReason", "x")], false),
        (vec![("csrf", "forged"), ("cancellationReason", "x")], false),
        (
            vec![("csrf", csrf.as_str()), ("cancellationReason", "x")],
            true,
        ),
    ] {
        let mut req = b.post(app.url(&path)).form(&form);
        if cross {
            req = req.header("sec-fetch-site", "cross-site");
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let html = res.text().await.unwrap();
        assert!(html.contains("csrf_failed"), "{html}");
    }
    assert_eq!(journey(&app, &id).await["status"], "created");
}

#[tokio::test]
async fn refusals_show_the_apis_code_and_message_and_change_nothing() {
    // The provider is kept for the test's length (`_idp`).
    let Some((app, _idp, b, id, csrf)) = at_a_journey().await else {
        return;
    };
    // Not the current step: the API's own refusal.
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/advance"),
        &[
            ("csrf", &csrf),
            ("completedStepId", "step_docs"),
            ("stepOutcome", "passed"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("step_not_current"), "{html}");
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/advance"),
        &[
            ("csrf", &csrf),
            ("completedStepId", "step_kyc"),
            ("stepData", "{not json"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("validation_failed"), "{html}");
    assert_eq!(journey(&app, &id).await["currentStep"]["id"], "step_kyc");
    // Administration is for administrators.
    let (s, html) = page(&app, &b, "/console/admin").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("console_admin_only"));
}

#[tokio::test]
async fn sign_out_and_idleness_end_a_session_for_good() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    let b = browser();
    let cookie = sign_in(&app, &provider, &b, "usr_rm_001").await;
    let (_, html) = page(&app, &b, "/console/work").await;
    let csrf = csrf_of(&html);
    let (s, _, to) = post(&app, &b, "/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to.as_deref(), Some("/console/sign-in"));
    // The old cookie, sent again by hand, opens nothing.
    let old = cookie.split(';').next().unwrap().to_owned();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/console/work"))
        .header(header::COOKIE, old)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // A session unused for longer than the idle timeout ends.
    let b = browser();
    sign_in(&app, &provider, &b, "usr_rm_001").await;
    assert_eq!(page(&app, &b, "/console/work").await.0, StatusCode::OK);
    app.advance(std::time::Duration::from_secs(
        app.config.console.idle_timeout_secs + 1,
    ));
    let res = b.get(app.url("/console/work")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_sign_in_finishes_only_in_the_browser_that_started_it_and_once() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    let started = browser();
    let res = started
        .get(app.url(&format!("/console/sign-in?tenant={}", app.tenant)))
        .send()
        .await
        .unwrap();
    let to_provider = reqwest::Url::parse(&location(&res)).unwrap();
    let back = provider
        .authorize(&started, to_provider, "usr_rm_001")
        .await;
    // Another browser (an attacker's link to a victim) cannot finish it.
    let (s, html) = page(&app, &browser(), &back[app.base.len()..]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("console_sign_in_invalid"));
    // The one that started it can, once.
    let res = started.get(&back).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = started.get(&back).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A person the directory does not know is refused with the API's reason.
    let b = browser();
    let res = b
        .get(app.url(&format!("/console/sign-in?tenant={}", app.tenant)))
        .send()
        .await
        .unwrap();
    let to_provider = reqwest::Url::parse(&location(&res)).unwrap();
    let back = provider.authorize(&b, to_provider, "usr_stranger").await;
    let (s, html) = page(&app, &b, &back[app.base.len()..]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{html}");
    assert!(html.contains("actor_unknown_user"), "{html}");
    // A tenant without console sign-in says so, on a sign-in page whose form (to try another
    // organisation) may still lead to a provider: its CSP leaves out `form-action`.
    let res = browser()
        .get(app.url("/console/sign-in?tenant=ten_nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        !csp.contains("form-action") && csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("console_sign_in_unavailable")
    );
}

#[tokio::test]
async fn what_a_customer_typed_is_shown_as_text_and_another_tenants_data_is_not_found() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let mut body = seed_journey();
    body["customerId"] = json!("ent_script");
    let (s, j) = app.post("/api/v1/omni/journeys", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let (s, c) = app
        .put(
            "/api/v1/customers/ent_script",
            &json!({ "profile": { "name": "<script>alert(1)</script>" } }),
        )
        .await;
    assert!(s.is_success(), "{c}");
    let b = browser();
    sign_in(&app, &provider, &b, "usr_rm_001").await;
    let (s, html) = page(&app, &b, "/console/customers/ent_script").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("chain verified"), "{html}");
    // The export, as the API signs it, as a download.
    let res = b
        .get(app.url("/console/customers/ent_script/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let lines = res.text().await.unwrap();
    for line in lines.lines() {
        serde_json::from_str::<Value>(line).expect("JSON Lines");
    }
    assert!(lines.contains("chain_head"), "{lines}");

    // Another tenant's journey, by id: not found, as through the API.
    let other = app.other_tenant_key().await;
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let (s, theirs) = send(
        app.client
            .post(app.url("/api/v1/omni/templates"))
            .header("x-api-key", &other)
            .json(&seed_template()),
    )
    .await;
    assert!(s.is_success(), "{theirs}");
    let (s, theirs) = send(
        app.client
            .post(app.url("/api/v1/omni/journeys"))
            .header("x-api-key", &other)
            .json(&seed_journey()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    let (s, html) = page(
        &app,
        &b,
        &format!(
            "/console/journeys/{}",
            theirs["data"]["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("not_found"));
}

#[tokio::test]
async fn a_deputy_over_their_limit_is_refused_with_the_reason() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    for id in ["usr_manager_001", "usr_deputy_002"] {
        let (s, b) = app
            .put(&format!("/api/v1/omni/users/{id}"), &json!({ "name": id }))
            .await;
        assert!(s.is_success(), "{b}");
    }
    let (s, d) = app
        .post(
            "/api/v1/omni/delegations",
            &json!({
                "delegatorId": "usr_manager_001", "delegateeId": "usr_deputy_002",
                "scope": ["approvals"],
                "maxApprovalAmount": { "amount": 500000, "currency": "SAR" },
                "validFrom": crate::helpers::at(-3_600_000), "validTo": crate::helpers::at(86_400_000)
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let (s, a) = app
        .post(
            "/api/v1/omni/approvals",
            &json!({
                "entityType": "contract", "entityId": "ctr_001", "approvalType": "limit_increase",
                "requestedBy": "usr_rm_001",
                "approvers": [{ "userId": "usr_manager_001", "required": true }],
                "amount": { "amount": 2000000, "currency": "SAR" },
                "expiresAt": crate::helpers::at(86_400_000)
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let approval = a["data"]["id"].as_str().unwrap().to_owned();
    let b = browser();
    sign_in(&app, &provider, &b, "usr_deputy_002").await;
    let (s, html) = page(&app, &b, "/console/approvals").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains(&approval), "{html}");
    assert!(html.contains("On behalf of"), "{html}");
    assert!(html.contains("500000 SAR"), "{html}");
    let (_, html) = page(&app, &b, &format!("/console/approvals/{approval}")).await;
    let csrf = csrf_of(&html);
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/approvals/{approval}/decide"),
        &[
            ("csrf", &csrf),
            ("onBehalfOf", "usr_manager_001"),
            ("decision", "approve"),
            ("comment", "covering"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("delegation_limit_exceeded"), "{html}");
    let (_, a) = app.get(&format!("/api/v1/omni/approvals/{approval}")).await;
    assert_eq!(a["data"]["status"], "requested");
    assert_eq!(a["data"]["decisions"], json!([]));
}

#[tokio::test]
async fn the_live_stream_tells_the_signed_in_person_what_is_assigned_to_them() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    app.post("/api/v1/omni/templates", &seed_template()).await;
    let b = browser();
    sign_in(&app, &provider, &b, "usr_rm_001").await;
    let mut res = b.get(app.url("/console/stream")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    // A journey given to them: the tenant's default rule notifies the assignee in-app, and
    // their stream carries the notification.
    let id = app.seed_journey().await;
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_credit_001", "reason": "cover" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = app
        .post(
            &format!("/api/v1/omni/journeys/{id}/assign"),
            &json!({ "assigneeId": "usr_rm_001", "reason": "back from leave" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut got = String::new();
    while !got.contains("\n\n") {
        let chunk = tokio::time::timeout(crate::helpers::PATIENCE, res.chunk())
            .await
            .expect("an event within the bound")
            .unwrap()
            .expect("the stream stays open");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(got.contains(&id), "{got}");
}

#[tokio::test]
async fn the_consoles_client_settings_are_checked_before_anything_changes() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (
            json!({ "issuer": "https://idp.bank.example", "audience": "api://omnirail", "consoleScope": "openid" }),
            "consoleScope",
        ),
        (
            json!({ "issuer": "https://idp.bank.example", "audience": "api://omnirail",
                    "consoleClientId": "c", "consoleScope": "openid  staff" }),
            "consoleScope",
        ),
        (
            json!({ "issuer": "https://idp.bank.example", "audience": "api://omnirail", "consoleClientId": "" }),
            "consoleClientId",
        ),
    ] {
        let (s, res) = app.put("/api/v1/omni/identity-provider", &body).await;
        crate::helpers::assert_problem(s, &res, 422, "validation_failed");
        assert_eq!(res["errors"][0]["field"], field, "{res}");
    }
    let (s, res) = app.get("/api/v1/omni/identity-provider").await;
    crate::helpers::assert_problem(s, &res, 404, "not_found");
}

#[tokio::test]
async fn reassign_complete_cancel_and_delegations_go_through_the_apis_rules() {
    // The provider is kept for the test's length (`_idp`).
    let Some((app, _idp, b, id, csrf)) = at_a_journey().await else {
        return;
    };
    // Reassign with a reason: the event's actor is the signed-in person.
    let (s, _, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/assign"),
        &[
            ("csrf", &csrf),
            ("assigneeId", "usr_credit_001"),
            ("assigneeType", "user"),
            ("reason", "Specialist review"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let j = journey(&app, &id).await;
    assert_eq!(j["assigneeId"], "usr_credit_001");
    // Cancel with a reason.
    let (s, _, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/cancel"),
        &[("csrf", &csrf), ("cancellationReason", "Customer withdrew")],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let j = journey(&app, &id).await;
    assert_eq!(j["status"], "cancelled");
    assert_eq!(j["cancellationReason"], "Customer withdrew");
    // Completing a cancelled journey: the API's refusal.
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/journeys/{id}/complete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("invalid_transition"), "{html}");

    // A delegation granted from the console is the signed-in person's, and revoked from it.
    let (s, html, _) = post(
        &app,
        &b,
        "/console/delegations/grant",
        &[
            ("csrf", &csrf),
            ("delegateeId", "usr_credit_001"),
            ("scope", "approvals"),
            ("scope", "journey_assign"),
            ("maxAmount", "250000"),
            ("maxCurrency", "SAR"),
            ("validTo", &crate::helpers::at(86_400_000)[..16]),
            ("reason", "Leave"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{html}");
    let (_, list) = app
        .get("/api/v1/omni/delegations?delegatorId=usr_rm_001")
        .await;
    let d = &list["data"][0];
    assert_eq!(d["delegateeId"], "usr_credit_001", "{list}");
    assert_eq!(d["scope"], json!(["approvals", "journey_assign"]));
    let (_, html) = page(&app, &b, "/console/delegations").await;
    assert!(html.contains("Leave"), "{html}");
    let (s, _, _) = post(
        &app,
        &b,
        &format!("/console/delegations/{}/revoke", d["id"].as_str().unwrap()),
        &[("csrf", &csrf), ("reason", "Back early")],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, d) = app
        .get(&format!(
            "/api/v1/omni/delegations/{}",
            d["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(d["data"]["status"], "revoked");
    assert_eq!(d["data"]["revokedBy"], "usr_rm_001");
    // A grant the API refuses (no end of the period) shows its field.
    let (s, html, _) = post(
        &app,
        &b,
        "/console/delegations/grant",
        &[
            ("csrf", &csrf),
            ("delegateeId", "usr_credit_001"),
            ("scope", "approvals"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("validTo"), "{html}");
}

#[tokio::test]
async fn an_administrator_rotates_replays_and_retries_webhooks_from_the_console() {
    let Some((app, provider)) = console_app().await else {
        return;
    };
    let (s, ep) = app
        .post(
            "/api/v1/omni/webhooks/endpoints",
            &json!({ "url": "https://hooks.bank.example/omnirail", "eventTypes": ["omni.journey.*"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let endpoint = ep["data"]["id"].as_str().unwrap().to_owned();
    app.seed_journey().await;
    let b = browser();
    sign_in(&app, &provider, &b, "usr_admin").await;
    let (s, html) = page(&app, &b, "/console/admin").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("hooks.bank.example"), "{html}");
    let (s, html) = page(&app, &b, &format!("/console/admin/endpoints/{endpoint}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let csrf = csrf_of(&html);
    let at = html
        .find("/console/admin/messages/msg_")
        .expect("a message")
        + "/console/admin/messages/".len();
    let message = html[at..].split('"').next().unwrap().to_owned();
    let (s, html) = page(&app, &b, &format!("/console/admin/messages/{message}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Attempts"), "{html}");
    // Rotation shows the new secret once.
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/admin/endpoints/{endpoint}/rotate-secret"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("whsec_"), "{html}");
    // Replay and retry: the API's answers (nothing failed yet: retry is refused with its code).
    let (s, _, _) = post(
        &app,
        &b,
        &format!("/console/admin/endpoints/{endpoint}/replay"),
        &[("csrf", &csrf), ("since", "2026-01-01T00:00")],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, html, _) = post(
        &app,
        &b,
        &format!("/console/admin/messages/{message}/retry"),
        &[("csrf", &csrf), ("endpointId", &endpoint)],
    )
    .await;
    assert!(
        s == StatusCode::SEE_OTHER || s == StatusCode::CONFLICT,
        "{s} {html}"
    );
}

#[tokio::test]
async fn every_path_under_console_answers_as_the_console() {
    let app = TestApp::spawn().await;
    let b = browser();
    for path in ["/console", "/console/"] {
        let res = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
    }
    let res = b
        .get(app.url("/console/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("There is no such page in the console")
    );
    let res = b
        .get(app.url("/console/assets/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn behind_tls_the_cookies_are_secure_and_the_provider_sends_staff_back_there() {
    let Some((app, _idp)) = console_app_with(|c| {
        c.public_base_url = Some("https://omnirail.bank.example".into());
    })
    .await
    else {
        return;
    };
    let res = browser()
        .get(app.url(&format!("/console/sign-in?tenant={}", app.tenant)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("omnirail_console_sign_in="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let to = reqwest::Url::parse(&location(&res)).unwrap();
    let redirect = to
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        redirect.as_deref(),
        Some("https://omnirail.bank.example/console/callback")
    );
}
