//! A real OpenID Connect provider for one test: panva's `oidc-provider` (OpenID Certified) on
//! Node.js, run by `tests/oidc/provider.mjs`. Tokens come out of a real authorization-code flow
//! with PKCE, driven over HTTP through the provider's development sign-in pages, as a browser
//! would: never minted by the test.
//!
//! `OMNIRAIL_TEST_OIDC_PROVIDER` names `provider.mjs` with its `node_modules` beside it
//! (`.ci/run` installs them with `npm ci`); without it, `tests/oidc/provider.mjs` is used when
//! its packages are installed there. Neither: the test is skipped, except in CI, where that is
//! a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{TempDir, wait_until};

/// The audience the provider's tokens are for unless a flow asks for another.
pub const AUDIENCE: &str = "api://omnirail";

/// A running provider, stopped when dropped.
pub struct Provider {
    script: PathBuf,
    port: u16,
    keys: TempDir,
    roles: String,
    /// More options for `provider.mjs`, kept across restarts.
    options: Vec<String>,
    child: Option<Child>,
    http: reqwest::Client,
}

fn script() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("OMNIRAIL_TEST_OIDC_PROVIDER") {
        return Some(PathBuf::from(path));
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    if here.join("node_modules/oidc-provider").is_dir() {
        return Some(here.join("provider.mjs"));
    }
    // In CI the provider is always there: a missing one is a failure, not a skip.
    assert!(
        std::env::var_os("CI").is_none(),
        "OMNIRAIL_TEST_OIDC_PROVIDER must name tests/oidc/provider.mjs in CI (.ci/run installs \
         its packages)"
    );
    eprintln!(
        "skipped: no OpenID provider (run `npm ci --prefix tests/oidc`, or set \
         OMNIRAIL_TEST_OIDC_PROVIDER as .ci/run does)"
    );
    None
}

impl Provider {
    /// A provider signing with key `k1`; `roles` gives logins their `roles` claim.
    pub async fn start(roles: Value) -> Option<Self> {
        Self::start_with(roles, &[]).await
    }

    /// As [`Provider::start`], with more options of `provider.mjs` (`--clock-ahead-secs`).
    pub async fn start_with(roles: Value, options: &[&str]) -> Option<Self> {
        let mut provider = Provider {
            script: script()?,
            port: crate::cli::free_port(),
            keys: TempDir::new(),
            roles: roles.to_string(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            child: None,
            http: reqwest::Client::new(),
        };
        provider.run("k1").await;
        Some(provider)
    }

    /// The issuer, as its tokens' `iss` and its discovery document state it.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self, kids: &str) {
        let child = Command::new("node")
            .arg(&self.script)
            .args(["--port", &self.port.to_string(), "--kids", kids])
            .arg("--keys-dir")
            .arg(&self.keys.0)
            .args(["--roles", &self.roles])
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node with tests/oidc/provider.mjs");
        self.child = Some(child);
        // Its own counter answers once it listens: asking it counts no fetch.
        let url = format!("{}/_test/stats", self.issuer());
        let http = self.http.clone();
        wait_until("the OpenID provider to answer", || async {
            let res = http.get(&url).send().await.ok()?;
            res.status().is_success().then_some(())
        })
        .await;
    }

    /// Stops the provider: its port answers nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the provider on its port, publishing the keys `kids` names (made on first use)
    /// and signing with the first: `"k2"` rotates to a new key and drops `k1`.
    pub async fn rotate(&mut self, kids: &str) {
        self.stop();
        self.run(kids).await;
    }

    /// How often its discovery document and its key set have been fetched since it started.
    pub async fn fetches(&self) -> (u64, u64) {
        let stats: Value = self
            .http
            .get(format!("{}/_test/stats", self.issuer()))
            .send()
            .await
            .expect("provider stats")
            .json()
            .await
            .expect("provider stats JSON");
        (
            stats["discovery"].as_u64().unwrap_or(0),
            stats["jwks"].as_u64().unwrap_or(0),
        )
    }

    /// Signs `login` in at the provider in `browser` (which keeps the provider's cookies and
    /// follows no redirect), from its authorization URL through its sign-in and consent pages;
    /// answers where the provider then sends the browser (the client's redirect URI, with the
    /// code and state).
    pub async fn authorize(
        &self,
        browser: &reqwest::Client,
        authorize: reqwest::Url,
        login: &str,
    ) -> String {
        let location = |res: &reqwest::Response| -> String {
            let to = res
                .headers()
                .get("location")
                .unwrap_or_else(|| panic!("no redirect from the provider: {}", res.status()))
                .to_str()
                .unwrap()
                .to_owned();
            if to.starts_with('/') {
                format!("{}{to}", self.issuer())
            } else {
                to
            }
        };
        let res = browser.get(authorize).send().await.unwrap();
        let mut at = location(&res);
        // The sign-in page, then the consent page; each form posts back to its own address.
        for form in [
            vec![("prompt", "login"), ("login", login), ("password", "any")],
            vec![("prompt", "consent")],
        ] {
            let page = browser.get(&at).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK, "interaction page {at}");
            let html = page.text().await.unwrap();
            let prompt = form[0].1;
            assert!(
                html.contains(&format!("name=\"prompt\" value=\"{prompt}\"")),
                "expected the {prompt} page at {at}: {html}"
            );
            let res = browser.post(&at).form(&form).send().await.unwrap();
            let resume = location(&res);
            let res = browser.get(&resume).send().await.unwrap();
            at = location(&res);
        }
        at
    }

    /// An access token for `login`, for Omnirail's audience.
    pub async fn token(&self, login: &str) -> String {
        self.token_for(login, AUDIENCE).await
    }

    /// An access token for `login` and the resource `audience`: the authorization-code flow
    /// with PKCE, through the provider's sign-in and consent pages.
    pub async fn token_for(&self, login: &str, audience: &str) -> String {
        // A browser of its own: the provider's interaction cookies, no redirect followed.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // 64 characters of [0-9a-f]: a verifier as RFC 7636 shapes it (43 to 128 unreserved).
        let verifier = hex::encode(Sha256::digest(omnirail::ids::new_id("pkce_").as_bytes()));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1/callback";
        let authorize = reqwest::Url::parse_with_params(
            &format!("{}/auth", self.issuer()),
            &[
                ("client_id", "omnirail-test"),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", "openid staff"),
                ("resource", audience),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("state", "omnirail-test"),
            ],
        )
        .unwrap();
        let at = self.authorize(&browser, authorize, login).await;
        let back = reqwest::Url::parse(&at).unwrap();
        assert!(at.starts_with(redirect), "not back at the client: {at}");
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code in {at}"))
            .1
            .into_owned();
        let res = browser
            .post(format!("{}/token", self.issuer()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "omnirail-test"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
                ("resource", audience),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "token endpoint: {body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}
