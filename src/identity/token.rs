//! Checking an actor token: an access token (a JWT) from the tenant's provider.
//!
//! In order: its shape and algorithm (RS256, ES256 or PS256 only), its issuer (before any key
//! is looked for, so another provider's tokens never make this one's keys be fetched), its
//! signature with the provider's key that its `kid` names, its audience, its `exp` and `nbf`
//! (with `identity.leeway_secs`, by the server's clock), the claim that names the staff user,
//! and that user in the tenant's directory. Each refusal is 401 with its own `code`; a provider
//! whose keys cannot be fetched is 503 `identity_provider_unavailable` with `Retry-After`. The
//! token itself is never stored or logged: only its issuer, subject and `jti`.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use super::ProvenActor;
use super::keys::{ALGORITHMS, Lookup};
use super::provider::{self, Settings};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ids::is_external_id;

type Claims = Map<String, Value>;

fn malformed(detail: &str) -> ApiError {
    ApiError::unauthorized(
        "actor_token_malformed",
        format!("The actor token is not a signed JWT: {detail}"),
    )
}

/// Checks `token` for `tenant` and answers the person it proves, syncing their roles from the
/// token when the provider's settings name a roles claim.
pub async fn verify(app: &AppState, tenant: &str, token: &str) -> ApiResult<ProvenActor> {
    let (alg, kid) = header(token)?;
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| malformed("its claims are not a JSON object"))?;
    let settings = provider::get(&app.db, tenant).await?.ok_or_else(|| {
        ApiError::unauthorized(
            "identity_provider_not_configured",
            "This tenant has no identity provider (PUT /api/v1/omni/identity-provider), so no \
             actor token can be checked",
        )
    })?;
    if unverified.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
        return Err(ApiError::unauthorized(
            "actor_token_issuer",
            format!(
                "The actor token was not issued by this tenant's identity provider ({})",
                settings.issuer
            ),
        ));
    }
    let now = app.db.now_ms();
    let key = match app
        .identity
        .lookup(&settings, kid.as_deref(), alg, now)
        .await
    {
        Lookup::Found(key) => key,
        Lookup::Unknown => {
            return Err(ApiError::unauthorized(
                "actor_token_key_unknown",
                "The actor token is signed with a key its provider does not publish",
            ));
        }
        Lookup::Unavailable(retry_after) => {
            let mut e = ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                "The tenant's identity provider cannot be reached for its signing keys; retry later",
            );
            e.retry_after = Some(retry_after);
            return Err(e);
        }
    };
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims: Claims = match jsonwebtoken::decode(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {
            return Err(ApiError::unauthorized(
                "actor_token_signature",
                "The actor token's signature does not verify",
            ));
        }
        Err(_) => return Err(malformed("it cannot be checked with its provider's key")),
    };
    check_claims(&settings, &claims, now, app.config.identity.leeway_secs)?;
    let user_id = claim(&claims, &settings.user_claim)
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => n.as_u64().map(|n| n.to_string()),
            _ => None,
        })
        .filter(|id| is_external_id(id))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "actor_token_claim_missing",
                format!(
                    "The actor token has no {:?} claim naming a staff user id",
                    settings.user_claim
                ),
            )
        })?;
    if !crate::directory::store::user_exists(app.db.reader(), tenant, &user_id).await? {
        return Err(ApiError::unauthorized(
            "actor_unknown_user",
            format!("{user_id}, whom the actor token names, is not a staff user of this tenant"),
        ));
    }
    if let Some(name) = &settings.roles_claim
        && let Some(roles) = roles(claim(&claims, name))
    {
        sync_roles(app, tenant, &user_id, roles).await?;
    }
    Ok(ProvenActor {
        user_id,
        issuer: settings.issuer,
        subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
        token_id: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
    })
}

/// A claim by name: a top-level claim of that name, else, for a name with dots, the value found
/// by walking into objects (`realm_access.roles`).
fn claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |v, part| v.get(part))
    })
}

/// The token's algorithm (one of [`ALGORITHMS`]) and key id.
fn header(token: &str) -> ApiResult<(Algorithm, Option<String>)> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("it does not have three parts"));
    };
    let header: Claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| malformed("its header is not base64url JSON"))?;
    let named = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = ALGORITHMS
        .into_iter()
        .find(|a| format!("{a:?}") == named)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "actor_token_algorithm",
                format!(
                    "The actor token is signed with {named:?}; only RS256, ES256 and PS256 are \
                     accepted"
                ),
            )
        })?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg, kid))
}

/// Audience, expiry and not-before, by the server's clock (`now`, ms) with `leeway` seconds.
fn check_claims(settings: &Settings, claims: &Claims, now: i64, leeway: u64) -> ApiResult<()> {
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == settings.audience,
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str() == Some(settings.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(ApiError::unauthorized(
            "actor_token_audience",
            format!(
                "The actor token is not meant for this API (audience {:?})",
                settings.audience
            ),
        ));
    }
    let leeway = i64::try_from(leeway).unwrap_or(0);
    let now_secs = now.div_euclid(1000);
    let seconds = |name: &str| claims.get(name).and_then(Value::as_f64).map(|f| f as i64);
    let exp = seconds("exp").ok_or_else(|| {
        ApiError::unauthorized(
            "actor_token_claim_missing",
            "The actor token has no exp: a token that never expires is not accepted",
        )
    })?;
    if now_secs > exp.saturating_add(leeway) {
        return Err(ApiError::unauthorized(
            "actor_token_expired",
            "The actor token has expired",
        ));
    }
    if let Some(nbf) = seconds("nbf")
        && now_secs.saturating_add(leeway) < nbf
    {
        return Err(ApiError::unauthorized(
            "actor_token_not_yet_valid",
            "The actor token is not valid yet (nbf)",
        ));
    }
    Ok(())
}

/// Roles from a claim: an array of strings, or one string of roles separated by spaces. Only
/// role names the directory accepts are kept.
fn roles(claim: Option<&Value>) -> Option<Vec<String>> {
    let names: Vec<String> = match claim? {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => return None,
    };
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|r| crate::api::is_slug(r))
        .take(50)
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// Makes the user's directory roles those of the token, when they differ; a role newly held
/// makes them the approver of requests that waited for it.
async fn sync_roles(app: &AppState, tenant: &str, user: &str, roles: Vec<String>) -> ApiResult<()> {
    let held = crate::directory::store::roles_of(app.db.reader(), tenant, user).await?;
    if held == roles {
        return Ok(());
    }
    let now = app.db.now_ms();
    let mut tx = app.db.begin().await?;
    crate::directory::store::set_roles(&mut tx, tenant, user, &roles, now).await?;
    crate::approvals::assign_awaiting(&mut tx, tenant, user, &roles, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The actor a request's token proves, for [`super::require_actor`].
pub async fn actor(app: &AppState, tenant: &str, token: &str) -> ApiResult<super::Actor> {
    Ok(super::Actor(Some(Arc::new(
        verify(app, tenant, token).await?,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings {
            tenant_id: "ten_1".into(),
            issuer: "https://idp.bank.example".into(),
            audience: "api://omnirail".into(),
            user_claim: "sub".into(),
            roles_claim: None,
            actor_tokens: provider::ActorTokens::Optional,
            jwks_uri: "https://idp.bank.example/jwks".into(),
            console: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    fn code(r: ApiResult<()>) -> Option<&'static str> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn audience_expiry_and_not_before_are_held_to_the_clock_with_leeway() {
        let s = settings();
        let now = 1_000_000_000_000; // ms
        let at = |aud: Value, exp: Value, nbf: Value| {
            let mut c = json!({ "aud": aud, "exp": exp });
            if !nbf.is_null() {
                c["nbf"] = nbf;
            }
            code(check_claims(&s, &claims(c), now, 60))
        };
        let secs = now / 1000;
        assert_eq!(
            at(json!("api://omnirail"), json!(secs + 1), Value::Null),
            None
        );
        assert_eq!(
            at(json!(["x", "api://omnirail"]), json!(secs), Value::Null),
            None
        );
        assert_eq!(
            at(json!("api://other"), json!(secs + 1), Value::Null),
            Some("actor_token_audience")
        );
        assert_eq!(
            at(Value::Null, json!(secs + 1), Value::Null),
            Some("actor_token_audience")
        );
        // A minute's leeway either side, and not a second more.
        assert_eq!(
            at(json!("api://omnirail"), json!(secs - 60), Value::Null),
            None
        );
        assert_eq!(
            at(json!("api://omnirail"), json!(secs - 61), Value::Null),
            Some("actor_token_expired")
        );
        assert_eq!(
            at(json!("api://omnirail"), json!(secs + 9), json!(secs + 60)),
            None
        );
        assert_eq!(
            at(json!("api://omnirail"), json!(secs + 99), json!(secs + 61)),
            Some("actor_token_not_yet_valid")
        );
        assert_eq!(
            at(json!("api://omnirail"), Value::Null, Value::Null),
            Some("actor_token_claim_missing")
        );
    }

    #[test]
    fn only_rs256_es256_and_ps256_are_accepted() {
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        for (alg, ok) in [
            ("RS256", true),
            ("ES256", true),
            ("PS256", true),
            ("none", false),
            ("HS256", false),
            ("RS512", false),
            ("", false),
        ] {
            let token = format!("{}.e30.sig", b64(json!({ "alg": alg, "kid": "k1" })));
            match header(&token) {
                Ok((_, kid)) => {
                    assert!(ok, "{alg} accepted");
                    assert_eq!(kid.as_deref(), Some("k1"));
                }
                Err(e) => {
                    assert!(!ok, "{alg} refused");
                    assert_eq!(e.code, "actor_token_algorithm");
                }
            }
        }
        for bad in ["", "a.b", "a.b.c.d", "!!!.e30.sig"] {
            assert_eq!(
                header(bad).unwrap_err().code,
                "actor_token_malformed",
                "{bad}"
            );
        }
    }

    #[test]
    fn claims_are_found_by_name_or_by_path_and_roles_kept_if_valid() {
        let c = claims(json!({
            "sub": "usr_1",
            "realm_access": { "roles": ["manager", "Bad Role", "credit_analyst", "manager"] },
            "https://bank.example/roles": "teller  manager",
            "a.b": 1,
        }));
        assert_eq!(claim(&c, "sub"), Some(&json!("usr_1")));
        assert_eq!(
            claim(&c, "a.b"),
            Some(&json!(1)),
            "a name with dots that is a claim"
        );
        assert_eq!(
            roles(claim(&c, "realm_access.roles")),
            Some(vec!["credit_analyst".to_owned(), "manager".to_owned()])
        );
        assert_eq!(
            roles(claim(&c, "https://bank.example/roles")),
            Some(vec!["manager".to_owned(), "teller".to_owned()])
        );
        assert_eq!(roles(claim(&c, "missing.path")), None);
        assert_eq!(roles(Some(&json!(7))), None);
    }
}
