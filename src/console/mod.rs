//! The operator console: the screens bank staff work their journeys and approvals on, served by
//! the same process under `/console` (docs/console.md).
//!
//! - Server-rendered HTML (minijinja, escaped everywhere), one stylesheet and one small script,
//!   all inside the binary; no inline script or style, and a Content-Security-Policy that
//!   allows nothing else (`default-src 'self'`).
//! - Staff sign in at the tenant's own OpenID Connect provider ([`sign_in`]): authorization
//!   code with PKCE, then a session whose random token only the browser holds (an `HttpOnly`
//!   cookie; the database keeps its SHA-256), ended by sign-out, idleness or age ([`session`]).
//! - Every read and every action is a call to the API, made in-process for the signed-in
//!   person ([`Staff::call`]): the tenant is the session's, the actor is the person the sign-in
//!   proved, and the handler is the API's own, so the console obeys exactly the API's rules
//!   (maker-checker, delegation limits, assignment rights) and shows its refusals, code and
//!   message. The browser never holds an API key.
//! - Every form carries the session's CSRF token; a POST without it, or from another site, is
//!   refused before anything runs.

mod pages;
mod session;
mod sign_in;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tower::ServiceExt;

use crate::AppState;
use crate::actor::{Actor, ProvenActor};
use crate::auth::{InProcess, Tenant};
use crate::ids::sha256_hex;

pub use view::Problem;

/// The session cookie's name.
const COOKIE: &str = "omnirail_console";
/// The cookie that binds a sign-in under way to the browser that started it.
const SIGN_IN_COOKIE: &str = "omnirail_console_sign_in";

/// The API the console calls in-process: the API's routes with their own layers (key or
/// in-process tenant, actor, idempotency, the call's scope), without the console.
#[derive(Clone)]
pub struct ApiHandle(Router);

/// The console's routes, calling `api` for every read and action.
pub fn router(api: Router) -> Router<AppState> {
    let api = ApiHandle(api);
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(sign_in::start))
        .route("/callback", get(sign_in::callback))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/work", get(pages::my_work))
        .route("/journeys/{id}", get(pages::journey))
        .route("/journeys/{id}/{action}", post(pages::journey_action))
        .route("/approvals", get(pages::approvals))
        .route("/approvals/{id}", get(pages::approval))
        .route("/approvals/{id}/decide", post(pages::decide))
        .route("/customers", get(pages::customer_search))
        .route("/customers/{id}", get(pages::customer))
        .route("/customers/{id}/export", get(pages::customer_export))
        .route("/delegations", get(pages::delegations))
        .route("/delegations/grant", post(pages::grant))
        .route("/delegations/{id}/revoke", post(pages::revoke))
        .route("/admin", get(pages::admin))
        .route("/admin/endpoints/{id}", get(pages::admin_endpoint))
        .route(
            "/admin/endpoints/{id}/{action}",
            post(pages::endpoint_action),
        )
        .route("/admin/messages/{id}", get(pages::admin_message))
        .route("/admin/messages/{id}/retry", post(pages::retry_message))
        .route("/stream", get(pages::stream))
        .route("/assets/console.css", get(view::stylesheet))
        .route("/assets/console.js", get(view::script))
        .route("/assets/favicon.svg", get(view::icon))
        .fallback(pages::not_found)
        .layer(axum::Extension(api))
        .layer(from_fn(security_headers));
    // Nested, so that its fallback (and its headers) answer every path under `/console`;
    // `/console/` is the home page too.
    Router::new()
        .route(
            "/console/",
            get(|| async { Redirect::to("/console") }).layer(from_fn(security_headers)),
        )
        .nest("/console", pages)
}

/// The console's Content-Security-Policy: nothing but this origin's own files, no inline
/// script or style, no framing, and forms sent only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; object-src 'none'";

/// The sign-in page's: the same, except that its one form (the organisation's id) leads, by a
/// redirect, to the organisation's own provider, which `form-action` would block and which is
/// not known before the form is sent.
const CSP_SIGN_IN: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                           img-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                           base-uri 'none'; object-src 'none'";

/// Every console answer forbids framing, sniffing, referrers and every source but this one
/// ([`CSP`], unless the page set its own); none is cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The signed-in member of staff a console request is made by.
#[derive(Clone)]
pub struct Staff {
    pub tenant: String,
    pub user_id: String,
    pub csrf: String,
    pub is_admin: bool,
    /// The server's clock when the request came (tests move it).
    pub now: i64,
    proven: Arc<ProvenActor>,
    api: ApiHandle,
}

/// The session cookie's value, if the request carries one.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    /// The session the cookie names, if it has not ended; otherwise the browser is sent to
    /// sign in (and back here afterwards, for a page).
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let api = parts
            .extensions
            .get::<ApiHandle>()
            .cloned()
            .ok_or_else(|| view::failure(&Problem::internal()))?;
        let to_sign_in = || {
            // The address as the browser asked for it (the router nested under `/console`
            // sees it without that prefix).
            let uri = parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or(&parts.uri, |o| &o.0);
            let back = (parts.method == Method::GET)
                .then(|| uri.path_and_query().map(|p| p.as_str().to_owned()))
                .flatten();
            let target = match back {
                Some(back) => format!(
                    "/console/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
                ),
                None => "/console/sign-in".to_owned(),
            };
            Redirect::to(&target).into_response()
        };
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(to_sign_in());
        };
        let now = app.db.now_ms();
        let row = session::find(&app.db, token)
            .await
            .map_err(|e| view::failure(&Problem::from_store(e)))?;
        let idle_ms = secs_ms(app.config.console.idle_timeout_secs);
        let Some(row) = row.filter(|r| now < r.expires_at && now - r.last_seen_at < idle_ms) else {
            return Err(to_sign_in());
        };
        // Marked used at most once a minute: a page's reads do not each write.
        if now - row.last_seen_at >= 60_000 {
            session::touch(&app.db, token, now)
                .await
                .map_err(|e| view::failure(&Problem::from_store(e)))?;
        }
        let roles =
            crate::directory::store::roles_of(app.db.reader(), &row.tenant_id, &row.user_id)
                .await
                .map_err(|e| view::failure(&Problem::from_store(e)))?;
        Ok(Staff {
            is_admin: roles.contains(&app.config.console.admin_role),
            proven: Arc::new(ProvenActor {
                user_id: row.user_id.clone(),
                issuer: row.issuer,
                subject: row.subject,
                token_id: row.token_id,
            }),
            tenant: row.tenant_id,
            user_id: row.user_id,
            csrf: row.csrf,
            now,
            api,
        })
    }
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Staff {
    /// Calls the API as this person: `path` under the API's root, `body` as JSON, `idem` as the
    /// call's `Idempotency-Key` (a form's own, so that sending it twice acts once). Answers the
    /// JSON the API answered, or its refusal.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Option<&str>,
    ) -> Result<Value, Problem> {
        let res = self.send(method, path, body, idem, &[]).await?;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|_| Problem::internal())?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| Problem::internal())?
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(Problem::from_api(status, &value))
        }
    }

    /// Reads `path` of the API as this person.
    pub async fn get(&self, path: &str) -> Result<Value, Problem> {
        self.call(Method::GET, path, None, None).await
    }

    /// Calls the API as this person and answers its response as it is (a stream, an export),
    /// with `headers` besides.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Response, Problem> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = idem {
            req = req.header("idempotency-key", key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).map_err(|_| Problem::internal())?)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|_| Problem::internal())?;
        // A member of staff reaches what a `full` key does; an administrator also what an
        // `admin` key does (the console's administration page reads the providers).
        let mut tenant =
            Tenant::without_key(self.tenant.clone(), format!("console:{}", self.user_id));
        if self.is_admin {
            tenant.scopes = crate::auth::scopes::Scopes::ADMIN;
        }
        req.extensions_mut().insert(InProcess(tenant));
        req.extensions_mut()
            .insert(Actor(Some(Arc::clone(&self.proven))));
        let res = self.api.0.clone().oneshot(req).await;
        Ok(match res {
            Ok(res) => res,
            Err(never) => match never {},
        })
    }

    /// Holds a form's CSRF token to the session's, before any action.
    pub fn check_csrf(&self, headers: &HeaderMap, given: Option<&str>) -> Result<(), Problem> {
        // A browser says where a request comes from; another site's page is refused whatever
        // it carries.
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        let same = given.is_some_and(|g| sha256_hex(g) == sha256_hex(&self.csrf));
        if cross_site || !same {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "This form is not from a page of this session (it is stale, or from another \
                 site). Reload the page and try again.",
            ));
        }
        Ok(())
    }
}
