//! Tenants' providers as this process reaches them: discovery, and each tenant's signing keys,
//! kept in memory.
//!
//! A provider's discovery document (`{issuer}/.well-known/openid-configuration`) is read when a
//! tenant puts its settings; its `jwks_uri` is stored with them. Signing keys are fetched from
//! there when a token first needs them, and again when a token names a key not yet known (the
//! provider rotated its keys), but at most once per `identity.key_refresh_secs` for a tenant,
//! whatever the tokens name: a flood of made-up key ids costs the provider one fetch a minute.
//! Every fetch goes through the outbound guard of webhooks (`webhooks::guard`). Each process
//! keeps its own keys; settings changed on another process are noticed by their update time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::provider::Settings;
use crate::config::IdentityConfig;
use crate::webhooks::guard;

/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The signature algorithms a token may use: RSA with SHA-256, ECDSA on P-256, RSA-PSS. No
/// `none`, no HMAC (whose secret the provider would have to share), nothing weaker.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];

/// The settings that allow what the outbound guard refuses of a provider's URLs.
const ALLOWANCES: guard::Allowances = guard::Allowances {
    http: "identity.allow_http",
    private: "identity.allow_private_providers",
};

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub jwks_uri: String,
    pub keys: Vec<Jwk>,
    /// Where a browser signs in, and where a code is exchanged for tokens, when the document
    /// names them (the console needs both).
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// The result of looking for a token's key.
pub enum Lookup {
    Found(DecodingKey),
    /// The provider's keys, fetched now or lately, have none that fits.
    Unknown,
    /// The keys could not be fetched, and none that fits is cached: retry after these seconds.
    Unavailable(u64),
}

#[derive(Default)]
struct Entry {
    /// The settings the keys belong to: their key set URL and update time.
    source: Option<(String, i64)>,
    keys: Vec<Jwk>,
    /// When keys were last fetched (or tried), by the server's clock, and whether that worked.
    fetched: Option<(i64, bool)>,
}

/// Discovery and signing keys for every tenant, shared by the process.
pub struct ProviderKeys {
    http: reqwest::Client,
    allow_http: bool,
    allow_private: bool,
    refresh_ms: i64,
    tenants: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl std::fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKeys").finish_non_exhaustive()
    }
}

impl ProviderKeys {
    pub fn new(config: &IdentityConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // A redirect could lead anywhere the guard did not look: not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("omnirail/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_providers {
            builder = builder.dns_resolver(guard::GuardedResolver);
        }
        Ok(Self {
            http: builder
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            allow_http: config.allow_http,
            allow_private: config.allow_private_providers,
            refresh_ms: i64::try_from(config.key_refresh_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            tenants: Mutex::default(),
        })
    }

    /// Why `url` may not be fetched, as a field message; `None` if it may.
    pub fn url_problem(&self, url: &str) -> Option<String> {
        guard::url_problem(url, self.allow_http, self.allow_private, ALLOWANCES)
    }

    /// Reads the provider's discovery document and its signing keys. The document must name
    /// `issuer` exactly (OpenID Connect Discovery 1.0, section 4.3).
    pub async fn discover(&self, issuer: &str) -> Result<Discovered, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        #[derive(Deserialize)]
        struct Document {
            issuer: String,
            jwks_uri: String,
            authorization_endpoint: Option<String>,
            token_endpoint: Option<String>,
        }
        let doc: Document = serde_json::from_slice(&self.fetch(&url).await?)
            .map_err(|e| format!("{url} is not a discovery document: {e}"))?;
        if doc.issuer != issuer {
            return Err(format!(
                "{url} names the issuer {:?}, not {issuer:?}",
                doc.issuer
            ));
        }
        if let Some(problem) = self.url_problem(&doc.jwks_uri) {
            return Err(format!("its jwks_uri {} {problem}", doc.jwks_uri));
        }
        let keys = self.fetch_keys(&doc.jwks_uri).await?;
        if keys.is_empty() {
            return Err(format!(
                "{} has no RS256, ES256 or PS256 signing key",
                doc.jwks_uri
            ));
        }
        Ok(Discovered {
            jwks_uri: doc.jwks_uri,
            keys,
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
        })
    }

    /// Keeps keys just discovered for `settings`, so the first token needs no fetch.
    pub async fn prime(&self, settings: &Settings, keys: Vec<Jwk>, now: i64) {
        let entry = self.entry(&settings.tenant_id);
        let mut e = entry.lock().await;
        e.source = Some((settings.jwks_uri.clone(), settings.updated_at));
        e.keys = keys;
        e.fetched = Some((now, true));
    }

    /// The key a token of `settings`' provider names (`kid`, for `alg`), fetching the keys when
    /// none fits and the last fetch is old enough.
    pub async fn lookup(
        &self,
        settings: &Settings,
        kid: Option<&str>,
        alg: Algorithm,
        now: i64,
    ) -> Lookup {
        let entry = self.entry(&settings.tenant_id);
        let mut e = entry.lock().await;
        let source = (settings.jwks_uri.clone(), settings.updated_at);
        if e.source.as_ref() != Some(&source) {
            *e = Entry {
                source: Some(source),
                ..Entry::default()
            };
        }
        if let Some(key) = find(&e.keys, kid, alg) {
            return Lookup::Found(key);
        }
        let due = e
            .fetched
            .is_none_or(|(at, _)| now.saturating_sub(at) >= self.refresh_ms);
        if due {
            match self.fetch_keys(&settings.jwks_uri).await {
                Ok(keys) => {
                    e.keys = keys;
                    e.fetched = Some((now, true));
                }
                Err(error) => {
                    tracing::warn!(tenant = %settings.tenant_id, %error, "identity provider keys not fetched");
                    e.fetched = Some((now, false));
                }
            }
            if let Some(key) = find(&e.keys, kid, alg) {
                return Lookup::Found(key);
            }
        }
        match e.fetched {
            Some((at, false)) => {
                // Seconds until the next fetch may be tried, rounded up; at least one.
                let wait_ms = at.saturating_add(self.refresh_ms).saturating_sub(now);
                let secs = wait_ms.saturating_add(999).div_euclid(1000).max(1);
                Lookup::Unavailable(u64::try_from(secs).unwrap_or(1))
            }
            _ => Lookup::Unknown,
        }
    }

    fn entry(&self, tenant: &str) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants.entry(tenant.to_owned()).or_default().clone()
    }

    /// The signing keys at `url` that a token may be checked with; others (encryption keys,
    /// HMAC secrets, unknown types) are left out.
    async fn fetch_keys(&self, url: &str) -> Result<Vec<Jwk>, String> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_slice(&self.fetch(url).await?)
            .map_err(|e| format!("{url} is not a JSON Web Key Set: {e}"))?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| {
                !matches!(
                    k.common.public_key_use,
                    Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
                ) && family(k).is_some()
            })
            .collect())
    }

    /// Exchanges an authorization code at `token_endpoint` (RFC 6749 section 4.1.3, with the
    /// PKCE verifier of RFC 7636), through the outbound guard, and answers the access token.
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<String, String> {
        if let Some(problem) = self.url_problem(token_endpoint) {
            return Err(format!("{token_endpoint} {problem}"));
        }
        let res = self
            .http
            .post(token_endpoint)
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| format!("{token_endpoint}: {}", guard::describe(&e)))?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| format!("{token_endpoint}: {}", guard::describe(&e)))?;
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<String>,
            error: Option<String>,
        }
        let answer: Option<Answer> = serde_json::from_slice(&body).ok();
        match answer {
            Some(Answer {
                access_token: Some(token),
                ..
            }) if status.is_success() => Ok(token),
            Some(Answer { error: Some(e), .. }) => {
                Err(format!("the provider refused the code ({e})"))
            }
            _ => Err(format!(
                "{token_endpoint} answered {status} without a token"
            )),
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        if let Some(problem) = self.url_problem(url) {
            return Err(format!("{url} {problem}"));
        }
        let mut res = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", guard::describe(&e)))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", guard::describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url} answered more than 1 MiB"));
            }
        }
        Ok(body)
    }
}

/// The algorithms a key may check: RSA keys RS256 and PS256, P-256 keys ES256.
fn family(k: &Jwk) -> Option<&'static [Algorithm]> {
    match &k.algorithm {
        AlgorithmParameters::RSA(_) => Some(&[Algorithm::RS256, Algorithm::PS256]),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(&[Algorithm::ES256])
        }
        _ => None,
    }
}

/// The key among `keys` that `kid` names and that may check `alg` (a key that states its own
/// `alg` checks only that one). Without a `kid`, the only key that fits, if just one does.
fn find(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |k: &&Jwk| {
        family(k).is_some_and(|algs| algs.contains(&alg))
            && k.common
                .key_algorithm
                .is_none_or(|stated| same_algorithm(stated, alg))
    };
    let mut candidates = keys.iter().filter(fits);
    let key = match kid {
        Some(kid) => candidates.find(|k| k.common.key_id.as_deref() == Some(kid))?,
        None => {
            let first = candidates.next()?;
            if candidates.next().is_some() {
                return None;
            }
            first
        }
    };
    DecodingKey::from_jwk(key).ok()
}

fn same_algorithm(stated: KeyAlgorithm, alg: Algorithm) -> bool {
    matches!(
        (stated, alg),
        (KeyAlgorithm::RS256, Algorithm::RS256)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::PS256, Algorithm::PS256)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa(kid: &str, alg: Option<&str>) -> Jwk {
        let mut k = json!({ "kty": "RSA", "kid": kid, "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB" });
        if let Some(alg) = alg {
            k["alg"] = json!(alg);
        }
        serde_json::from_value(k).unwrap()
    }

    #[test]
    fn a_token_gets_only_the_key_it_names_that_may_check_its_algorithm() {
        let keys = vec![rsa("k1", Some("RS256")), rsa("k2", None)];
        assert!(find(&keys, Some("k1"), Algorithm::RS256).is_some());
        assert!(find(&keys, Some("k2"), Algorithm::PS256).is_some());
        assert!(
            find(&keys, Some("k1"), Algorithm::PS256).is_none(),
            "a key stating RS256 checks only RS256"
        );
        assert!(
            find(&keys, Some("k2"), Algorithm::ES256).is_none(),
            "RSA is not ECDSA"
        );
        assert!(find(&keys, Some("k3"), Algorithm::RS256).is_none());
        assert!(
            find(&keys, None, Algorithm::RS256).is_none(),
            "no kid and two keys that fit: none is guessed"
        );
        assert!(find(&keys[..1], None, Algorithm::RS256).is_some());
    }
}
