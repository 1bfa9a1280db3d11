//! Signing staff in at the tenant's OpenID Connect provider, and out.
//!
//! 1. `GET /console/sign-in?tenant=ten_...` makes a random `state` and PKCE verifier (RFC 7636,
//!    `S256`), keeps the verifier on the server and the state in a short-lived cookie of the
//!    browser, and sends the browser to the provider's `authorization_endpoint`.
//! 2. The provider sends it back to `/console/callback` with a code. The state must be the
//!    cookie's (a sign-in someone else started cannot be finished in this browser) and is
//!    used once; the code is exchanged with the verifier at the `token_endpoint`.
//! 3. The access token is checked exactly as an actor token is (issuer, signature, audience,
//!    times, a user of the directory: `identity::token::verify`), and a session begins.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::view::{self, Problem};
use super::{COOKIE, SIGN_IN_COOKIE, Staff, cookie, secs_ms, session};
use crate::AppState;
use crate::identity::provider;
use crate::ids::new_secret;

#[derive(Deserialize)]
pub struct StartQuery {
    tenant: Option<String>,
    next: Option<String>,
}

/// Where the provider sends the browser back: under `public_base_url` when it is set (behind a
/// proxy or TLS terminator), else at the host the browser asked for, over plain HTTP.
fn redirect_uri(app: &AppState, headers: &HeaderMap) -> String {
    match &app.config.public_base_url {
        Some(base) => format!("{}/console/callback", base.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}/console/callback")
        }
    }
}

/// Whether cookies must be `Secure`: the console is reached over TLS.
fn secure(app: &AppState) -> bool {
    app.config
        .public_base_url
        .as_deref()
        .is_some_and(|b| b.starts_with("https://"))
}

fn set_cookie(res: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A page of the console to come back to after signing in: a path under `/console/`, nothing
/// else (never another site).
fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.starts_with("/console/")
            && !n.starts_with("/console//")
            && !n.contains('\\')
            && n.len() <= 512
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
}

/// The sign-in page (with a refusal, when `context` has one). Its form leads to the
/// organisation's provider by a redirect, so its CSP is [`super::CSP_SIGN_IN`].
fn sign_in_page(status: StatusCode, context: serde_json::Value) -> Response {
    let mut page = view::page(status, "sign_in.html", context);
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::CSP_SIGN_IN),
    );
    page
}

/// The sign-in page (no tenant given), or the start of a sign-in at the tenant's provider.
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    let Some(tenant) = q.tenant.filter(|t| !t.trim().is_empty()) else {
        return sign_in_page(StatusCode::OK, json!({ "title": "Sign in", "next": next }));
    };
    let tenant = tenant.trim().to_owned();
    let refused = |detail: &str| {
        sign_in_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "title": "Sign in", "next": next, "tenant": &tenant,
                "problem": Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "console_sign_in_unavailable",
                    detail,
                ),
            }),
        )
    };
    let settings = match provider::get(&app.db, &tenant).await {
        Ok(s) => s,
        Err(e) => return view::failure(&Problem::from_store(e)),
    };
    let Some((client, audience)) = settings.and_then(|s| Some((s.console?, s.audience))) else {
        return refused(
            "This organisation has no console sign-in: its identity provider is not set, or \
             names no consoleClientId (PUT /api/v1/omni/identity-provider).",
        );
    };
    let state = new_secret("");
    let verifier = new_secret("");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let now = app.db.now_ms();
    if let Err(e) = session::start_sign_in(&app.db, &state, &tenant, &verifier, next, now).await {
        return view::failure(&Problem::from_store(e));
    }
    let mut url = match url::Url::parse(&client.authorization_endpoint) {
        Ok(url) => url,
        Err(_) => return refused("The provider's authorization_endpoint is not a URL."),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &redirect_uri(&app, &headers))
        .append_pair("scope", &client.scope)
        // RFC 8707: the access token is for Omnirail (providers without it ignore it).
        .append_pair("resource", &audience)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut res = Redirect::to(url.as_str()).into_response();
    set_cookie(
        &mut res,
        format!(
            "{SIGN_IN_COOKIE}={state}; Path=/console/callback; HttpOnly; SameSite=Lax; Max-Age=600{}",
            if secure(&app) { "; Secure" } else { "" }
        ),
    );
    res
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: a code to exchange, or its refusal.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let refused = |status: StatusCode, code: &str, detail: String| {
        sign_in_page(
            status,
            json!({ "title": "Sign in", "problem": Problem::new(status, code, detail) }),
        )
    };
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or_default();
        return refused(
            StatusCode::UNAUTHORIZED,
            "console_sign_in_refused",
            format!("The identity provider did not sign you in ({error}). {why}"),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "console_sign_in_invalid",
            "This address is where the identity provider sends you back; it needs its code \
             and state. Start again from the sign-in page."
                .into(),
        );
    };
    if cookie(&headers, SIGN_IN_COOKIE) != Some(state.as_str()) {
        return refused(
            StatusCode::BAD_REQUEST,
            "console_sign_in_invalid",
            "This sign-in was not started in this browser, or has already been used. Start \
             again from the sign-in page."
                .into(),
        );
    }
    let now = app.db.now_ms();
    let started = match session::take_sign_in(&app.db, &state, now).await {
        Ok(s) => s,
        Err(e) => return view::failure(&Problem::from_store(e)),
    };
    let Some((tenant, verifier, next)) = started else {
        return refused(
            StatusCode::BAD_REQUEST,
            "console_sign_in_invalid",
            "This sign-in has expired or has already been used. Start again from the sign-in \
             page."
                .into(),
        );
    };
    let client = match provider::get(&app.db, &tenant).await {
        Ok(s) => s.and_then(|s| s.console),
        Err(e) => return view::failure(&Problem::from_store(e)),
    };
    let Some(client) = client else {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "console_sign_in_unavailable",
            "This organisation's console sign-in was removed while you were signing in.".into(),
        );
    };
    let redirect = redirect_uri(&app, &headers);
    let exchanged = app
        .identity
        .exchange_code(
            &client.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("client_id", &client.client_id),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let token = match exchanged {
        Ok(token) => token,
        Err(why) => {
            return refused(
                StatusCode::BAD_GATEWAY,
                "console_sign_in_failed",
                format!("The identity provider's token could not be obtained: {why}"),
            );
        }
    };
    let proven = match crate::identity::token::verify(&app, &tenant, &token).await {
        Ok(p) => p,
        Err(e) => {
            let p = Problem::from_api_error(e);
            return refused(p.status, &p.code, p.detail);
        }
    };
    let session_token = new_secret("");
    let csrf = new_secret("");
    let console = &app.config.console;
    let made = session::create(
        &app.db,
        &session::NewSession {
            token: &session_token,
            tenant: &tenant,
            user: &proven.user_id,
            issuer: &proven.issuer,
            subject: proven.subject.as_deref(),
            token_id: proven.token_id.as_deref(),
            csrf: &csrf,
            now,
            expires_at: now.saturating_add(secs_ms(console.max_age_secs)),
        },
        secs_ms(console.idle_timeout_secs),
    )
    .await;
    if let Err(e) = made {
        return view::failure(&Problem::from_store(e));
    }
    let target = safe_next(next.as_deref()).unwrap_or("/console/work");
    let mut res = Redirect::to(target).into_response();
    let secure = if secure(&app) { "; Secure" } else { "" };
    set_cookie(
        &mut res,
        format!(
            "{COOKIE}={session_token}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            console.max_age_secs
        ),
    );
    set_cookie(
        &mut res,
        format!(
            "{SIGN_IN_COOKIE}=; Path=/console/callback; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
        ),
    );
    res
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// Ends the session, and the cookie with it.
pub async fn sign_out(
    State(app): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignOutForm>,
) -> Response {
    if let Err(p) = staff.check_csrf(&headers, form.csrf.as_deref()) {
        return view::failure(&p);
    }
    if let Some(token) = cookie(&headers, COOKIE)
        && let Err(e) = session::end(&app.db, token).await
    {
        return view::failure(&Problem::from_store(e));
    }
    let mut res = Redirect::to("/console/sign-in").into_response();
    set_cookie(
        &mut res,
        format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0{}",
            if secure(&app) { "; Secure" } else { "" }
        ),
    );
    res
}
