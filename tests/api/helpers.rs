//! A real server on a random port, on its own fresh database.
//!
//! Without `OMNIRAIL_TEST_DATABASE_URL` each test gets a new SQLite file in a temporary
//! folder. With it (a PostgreSQL URL whose user may create databases), each test creates its
//! own database and drops it at the end, so tests run in parallel and leave nothing behind.
//!
//! Nothing here waits for a fixed time: a test that needs time to pass moves its server's
//! clock ([`TestApp::advance`]); a test that waits for something asynchronous waits for the
//! state it expects ([`wait_until`]), up to [`PATIENCE`], and says what it waited for. Every
//! test holds a [`Watchdog`] (each [`TestDb`] holds one), so a hang fails it by name.

use std::path::PathBuf;
use std::time::Duration;

use omnirail::config::{Config, DatabaseUrl};
use omnirail::store::Db;
use omnirail::time::Clock;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Seed 001's SME onboarding template (with a client-given id).
pub fn seed_template() -> Value {
    json!({
        "id": "tmpl_onboarding_sme",
        "name": "SME Onboarding",
        "description": "End-to-end onboarding journey for SME customers",
        "category": "onboarding",
        "steps": [
            { "id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "order": 1, "required": true, "timeoutHours": 48 },
            { "id": "step_docs", "name": "Document Collection", "type": "document_upload", "order": 2, "required": true, "documentsRequired": ["trade_license", "financial_statements"] },
            { "id": "step_credit", "name": "Credit Assessment", "type": "approval", "order": 3, "required": true, "approvalRoleRequired": "credit_analyst" }
        ],
        "estimatedDurationDays": 5,
        "slaHours": 120
    })
}

/// Seed 001's create-journey body.
pub fn seed_journey() -> Value {
    json!({
        "templateId": "tmpl_onboarding_sme",
        "customerId": "ent_customer_456",
        "channel": "web",
        "context": { "productType": "murabaha", "requestedAmount": { "amount": 2000000, "currency": "SAR" } },
        "assigneeId": "usr_rm_001",
        "priority": "normal",
        "dueAt": "2024-01-25T17:00:00Z"
    })
}

/// A fresh database for one test, removed when dropped. It holds the test's [`Watchdog`]:
/// every test that runs a server has one.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
    _watchdog: Watchdog,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn new() -> Self {
        let _watchdog = Watchdog::default();
        match std::env::var("OMNIRAIL_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = omnirail::ids::new_id("omnirail_test_");
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .expect("connect to OMNIRAIL_TEST_DATABASE_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { admin_url, name },
                    _watchdog,
                }
            }
            _ => {
                let dir = std::env::temp_dir().join(omnirail::ids::new_id("omnirail-test-"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                Self {
                    url: format!("sqlite://{}", dir.join("omnirail.db").display()),
                    cleanup: Cleanup::Sqlite(dir),
                    _watchdog,
                }
            }
        }
    }
}

impl TestDb {
    /// The database with its schema, as `serve` opens it: for a test that runs the binary.
    pub async fn open(&self) -> Db {
        let config = Config {
            database_url: DatabaseUrl(self.url.clone()),
            ..Config::default()
        };
        Db::open(&config).await.expect("open test database")
    }
}

/// The key-encryption key of the secrets at rest of every server of one test database, in
/// process or not (derived from its URL: nodes of one database share their KEK).
pub fn test_kek(database_url: &str) -> String {
    use base64::Engine;
    let digest = omnirail::ids::sha256_hex(format!("omnirail test kek\n{database_url}"));
    base64::engine::general_purpose::STANDARD.encode(hex::decode(digest).unwrap())
}

/// A new tenant and an API key of it: `(tenant id, key)`.
pub async fn tenant_with_key(db: &Db, name: &str) -> (String, String) {
    let tenant = omnirail::auth::create_tenant(db, name).await.unwrap();
    let key = omnirail::keys::create_key(db, &tenant, Some("test"))
        .await
        .unwrap()
        .secret;
    (tenant, key)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: drop the database from a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut conn) =
                            <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await
                        {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// How long a test waits for something asynchronous (a delivery, a sweep, a server coming
/// up) before it fails: far beyond what it takes on a loaded machine, so that only a real
/// fault reaches it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How long one test may run before the whole test process is stopped, naming it: a hang
/// fails in minutes, not at CI's limit. The longest tests (the crash tests) take under a
/// minute even on a loaded machine.
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Stops the test process, naming the test, if it is not dropped within its limit.
pub struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
}

impl Watchdog {
    /// A watchdog for the current test (libtest names each test's thread after it).
    pub fn new(limit: Duration) -> Self {
        let name = std::thread::current().name().unwrap_or("a test").to_owned();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                eprintln!(
                    "\nFATAL: test {name} still running after {limit:?}: stopping the test run"
                );
                std::process::exit(101);
            }
        });
        Self { done: Some(done) }
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Self::new(TEST_LIMIT)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// Polls `check` until it answers `Some`, and returns that; fails the test, saying it was
/// waiting for `what`, if [`PATIENCE`] runs out first.
pub async fn wait_until<T, F: Future<Output = Option<T>>>(
    what: impl std::fmt::Display,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}"
        );
        // Not synchronisation: the pause between two looks.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A condition on `events` that leaves out a delivery's outcome (`omni.notification.sent`,
/// `.delivered`, `.failed`): the notification worker records it when it gets to the delivery,
/// which may fall between two counts of a test that changes nothing. A change that creates a
/// notification records its own event and `.created`, which count.
pub const CHANGES_ONLY: &str = "event_type NOT IN ('omni.notification.sent', \
     'omni.notification.delivered', 'omni.notification.failed')";

async fn events_of_changes(db: &Db, tenant: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND {CHANGES_ONLY}"
    )))
    .bind(tenant)
    .fetch_one(db.reader())
    .await
    .unwrap()
}

/// A running server and a client holding a key of its tenant.
pub struct TestApp {
    pub base: String,
    pub key: String,
    pub tenant: String,
    pub db: Db,
    pub config: Config,
    /// The events the setup recorded (the issue of the test's key).
    setup_events: i64,
    /// The server's clock (and `db`'s): [`TestApp::advance`] moves it.
    pub clock: Clock,
    pub client: reqwest::Client,
    server: Option<Server>,
    /// The folder the server keeps documents in, removed when dropped.
    pub documents: TempDir,
    // Declared last: dropped after the server's pools.
    _database: TestDb,
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(omnirail::ids::new_id("omnirail-docs-"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let test_db = TestDb::new().await;
        let documents = TempDir::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            database_url: DatabaseUrl(test_db.url.clone()),
            listen: "127.0.0.1:0".into(),
            document_store: documents.0.display().to_string(),
            public_base_url: Some(base.clone()),
            // Many servers run at once, on one PostgreSQL server of 100 connections: few
            // connections each, and a wait for one as long as a loaded machine may need (a
            // test of the pool's own limits sets both).
            db_max_connections: TEST_POOL,
            db_acquire_timeout_secs: PATIENCE.as_secs(),
            // Seed 001's journey is due in 2024: a deadline worker announcing its breach would
            // add events and notifications to tests about other things. Tests of deadlines
            // set the sweep they need (tests/api/sla.rs).
            deadline_sweep_secs: 3600,
            // Tests of retention run the sweep themselves (tests/api/retention.rs).
            retention_sweep_secs: 3600,
            secrets: omnirail::config::SecretsConfig {
                kek: Some(omnirail::config::Hidden(test_kek(&test_db.url))),
                ..Default::default()
            },
            ..Config::default()
        };
        adjust(&mut config);
        let clock = Clock::default();
        let db = Db::open(&config)
            .await
            .expect("open test database")
            .with_clock(clock.clone());
        let (tenant, key) = tenant_with_key(&db, "Test Bank").await;
        let setup_events = events_of_changes(&db, &tenant).await;
        let server = Server::start(&db, &config, listener);
        Self {
            setup_events,
            base,
            key,
            tenant,
            db,
            config,
            clock,
            client: reqwest::Client::new(),
            server: Some(server),
            documents,
            _database: test_db,
        }
    }

    /// Stops the server (as `serve` stops on SIGTERM) until [`TestApp::restart`].
    pub async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Stops the server (as `serve` stops on SIGTERM) and starts a new one on the same
    /// database, clock and configuration, on a new port: what the first process had in
    /// memory is gone, what it stored is there.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = format!("http://{}", listener.local_addr().unwrap());
        self.config.public_base_url = Some(self.base.clone());
        self.server = Some(Server::start(&self.db, &self.config, listener));
    }

    /// Another node: a server on the same database (through its own pool on PostgreSQL),
    /// configuration and clock, on its own port, running its own workers.
    pub async fn another_node(&self) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let db = if self.config.database_url.expose().starts_with("postgres") {
            Db::open(&self.config)
                .await
                .expect("open the database again")
                .with_clock(self.clock.clone())
        } else {
            self.db.clone()
        };
        Node {
            server: Server::start(&db, &self.config, listener),
        }
    }

    /// Moves the server's clock forward: what falls due in that time (an expiry, a TTL, a
    /// schedule) is due at once, with no real waiting.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Moves the server's clock to just past `instant` (RFC 3339), if it is not there yet.
    pub fn advance_past(&self, instant: &str) {
        let target = omnirail::time::parse_rfc3339(instant)
            .unwrap_or_else(|| panic!("not RFC 3339: {instant}"));
        let ahead = target + 1 - self.clock.now_ms();
        if ahead > 0 {
            self.advance(Duration::from_millis(ahead.unsigned_abs()));
        }
    }

    /// An RFC 3339 instant `ms` milliseconds from now by the server's clock.
    pub fn at(&self, ms: i64) -> String {
        omnirail::time::to_rfc3339(self.clock.now_ms() + ms)
    }

    /// A fresh state of the server's (its database, configuration and clock, new caches), as
    /// another process or a restart would have: for calling a background sweep directly.
    pub fn state(&self) -> omnirail::AppState {
        omnirail::AppState::new(self.db.clone(), self.config.clone()).expect("app state")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request carrying the tenant's key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &self.key)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.req(Method::POST, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.req(Method::PATCH, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        send(self.req(Method::PUT, path).json(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.req(Method::GET, path)).await
    }

    /// The timeline export of the entity `query` names (`entityType=...&entityId=...`), as
    /// text.
    pub async fn export(&self, query: &str) -> String {
        let res = self
            .req(
                Method::GET,
                &format!("/api/v1/omni/timeline/export?{query}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    /// Moves the tenant to `plan`, as `omnirail tenant set-plan` does.
    pub async fn set_plan(&self, plan: &str) {
        let plan = omnirail::channels::model::Plan::parse(plan).unwrap();
        let mut tx = self.db.begin().await.unwrap();
        assert!(
            omnirail::channels::set_plan(&mut tx, &self.tenant, plan)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
    }

    /// Creates the seed's template and a journey from the seed's body; returns the journey id.
    pub async fn seed_journey(&self) -> String {
        let (s, _) = self.post("/api/v1/omni/templates", &seed_template()).await;
        assert!(s == StatusCode::CREATED || s == StatusCode::CONFLICT, "{s}");
        let (s, body) = self.post("/api/v1/omni/journeys", &seed_journey()).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Puts the seed template's credit analyst in the staff directory, so the template's
    /// approval step (`approvalRoleRequired: credit_analyst`) has an approver.
    pub async fn seed_credit_analyst(&self) {
        let (s, body) = self
            .put(
                "/api/v1/omni/users/usr_credit_001",
                &json!({ "name": "Sara Al-Harbi", "roles": ["credit_analyst"] }),
            )
            .await;
        assert!(s.is_success(), "{body}");
    }

    /// Approves the approval the journey's current step waits on, as `usr_credit_001`.
    pub async fn approve_current_step(&self, journey: &str) -> Value {
        let (_, j) = self.get(&format!("/api/v1/omni/journeys/{journey}")).await;
        let approval = j["data"]["currentStep"]["approvalId"]
            .as_str()
            .unwrap_or_else(|| panic!("no approval on the current step: {j}"))
            .to_owned();
        let (s, body) = self
            .post(
                &format!("/api/v1/omni/approvals/{approval}/decisions"),
                &json!({ "approverId": "usr_credit_001", "decision": "approve" }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body
    }

    /// Passes the seed journey's steps by hand, and its approval step by approval.
    pub async fn pass_steps(&self, journey: &str, steps: &[&str]) {
        for step in steps {
            if *step == "step_credit" {
                self.approve_current_step(journey).await;
                continue;
            }
            let (s, body) = self
                .post(
                    &format!("/api/v1/omni/journeys/{journey}/advance"),
                    &json!({ "completedStepId": step, "advancedBy": "usr_rm_001" }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
    }

    /// A second tenant's key on the same server.
    pub async fn other_tenant_key(&self) -> String {
        let t = omnirail::auth::create_tenant(&self.db, "Other Bank")
            .await
            .unwrap();
        omnirail::keys::create_key(&self.db, &t, None)
            .await
            .unwrap()
            .secret
    }

    /// How many events of changes the tenant has recorded since the test's setup (which
    /// issued its key), for checking that a refused request recorded none ([`CHANGES_ONLY`]: a
    /// loaded machine once slipped a delivery's outcome between two counts).
    pub async fn event_count(&self) -> i64 {
        events_of_changes(&self.db, &self.tenant).await - self.setup_events
    }

    /// Rows in a table, for checking that a refused request changed nothing.
    pub async fn count(&self, table: &'static str) -> i64 {
        let sql = match table {
            "journeys" => "SELECT COUNT(*) FROM journeys",
            "journey_templates" => "SELECT COUNT(*) FROM journey_templates",
            "journey_step_history" => "SELECT COUNT(*) FROM journey_step_history",
            "events" => "SELECT COUNT(*) FROM events",
            "idempotency_keys" => "SELECT COUNT(*) FROM idempotency_keys",
            "users" => "SELECT COUNT(*) FROM users",
            "delegations" => "SELECT COUNT(*) FROM delegations",
            "approvals" => "SELECT COUNT(*) FROM approvals",
            "approval_decisions" => "SELECT COUNT(*) FROM approval_decisions",
            "channel_sessions" => "SELECT COUNT(*) FROM channel_sessions",
            "onboardings" => "SELECT COUNT(*) FROM onboardings",
            "onboarding_tokens" => "SELECT COUNT(*) FROM onboarding_tokens",
            "onboarding_documents" => "SELECT COUNT(*) FROM onboarding_documents",
            "onboarding_configurations" => "SELECT COUNT(*) FROM onboarding_configurations",
            "notifications" => "SELECT COUNT(*) FROM notifications",
            "notification_deliveries" => "SELECT COUNT(*) FROM notification_deliveries",
            other => panic!("no count for {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(self.db.reader())
            .await
            .unwrap()
    }

    /// Events concerning one entity, oldest first.
    pub async fn events_of(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> Vec<omnirail::events::StoredEvent> {
        omnirail::events::for_entity(self.db.reader(), &self.tenant, entity_type, entity_id)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
        }
    }
}

/// A second server of a [`TestApp`] ([`TestApp::another_node`]).
pub struct Node {
    server: Server,
}

impl Node {
    /// Stops it and waits until it has (its workers too).
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// `omnirail::serve` running in this process, until told to stop.
struct Server {
    shutdown: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl Server {
    fn start(db: &Db, config: &Config, listener: TcpListener) -> Self {
        let (shutdown, stop) = oneshot::channel::<()>();
        let (db, config) = (db.clone(), config.clone());
        let running = tokio::spawn(async move {
            omnirail::serve(db, config, listener, async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        Self { shutdown, running }
    }

    /// Stops it and waits until it has (its workers too).
    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.running.await.expect("server stopped");
    }
}

/// Sends and reads the body as JSON (or `null` when it is empty or not JSON). With
/// `OMNIRAIL_TEST_RESPONSE_LOG` set, also appends what was asked and answered to that file, one
/// JSON line each, for `.ci/error-coverage`.
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let (client, req) = req.build_split();
    let req = req.expect("request built");
    let (method, path) = (req.method().to_string(), req.url().path().to_owned());
    let res = client.execute(req).await.expect("request sent");
    let status = res.status();
    let bytes = res.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log_response(&method, &path, status, &body);
    (status, body)
}

/// With `OMNIRAIL_TEST_RESPONSE_LOG` set, appends an answer to that file (one JSON line, in
/// one write, so lines from tests running at once never mix).
pub fn log_response(method: &str, path: &str, status: StatusCode, body: &Value) {
    use std::io::Write;
    let Ok(log) = std::env::var("OMNIRAIL_TEST_RESPONSE_LOG") else {
        return;
    };
    let line =
        json!({ "method": method, "path": path, "status": status.as_u16(), "code": body["code"] });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the response log");
    file.write_all(format!("{line}\n").as_bytes())
        .expect("write the response log");
}

/// Sends `make()` until it answers `want` (at most [`PATIENCE`]): for effects that reach
/// other connections asynchronously, such as a key revocation announced on PostgreSQL.
pub async fn eventually(
    make: impl Fn() -> RequestBuilder,
    want: StatusCode,
) -> (StatusCode, Value) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = send(make()).await;
        if status == want || std::time::Instant::now() > deadline {
            return (status, body);
        }
        // Not synchronisation: the pause between two requests.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every operation of the committed OpenAPI document (a test keeps it equal to the served
/// one): its method, path template and description. For tests that must cover every operation,
/// including one added later.
pub fn documented_operations() -> Vec<(Method, String, Value)> {
    let doc: Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("the document");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) {
                out.push((method, path.clone(), op.clone()));
            }
        }
    }
    out
}

/// `template` with each `{parameter}` filled: with its value in `values`, else `otherwise`.
pub fn fill_path(template: &str, values: &[(&str, &str)], otherwise: &str) -> String {
    let mut path = template.to_owned();
    for (name, value) in values {
        path = path.replace(name, value);
    }
    while let Some(start) = path.find('{') {
        let end = start + path[start..].find('}').expect("a closed parameter");
        path.replace_range(start..=end, otherwise);
    }
    path
}

/// Asserts a problem-details answer with the given status and code.
pub fn assert_problem(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    // Logged without its operation: the errors of the layers every route shares count as
    // reached wherever a test saw them, however it sent the request.
    log_response("", "", status, body);
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with(want_code)),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

/// An RFC 3339 instant `ms` milliseconds from now by the system's clock (negative: in the
/// past), for times far from now. A time less than a minute ahead is refused: whether it is
/// still ahead when the server reads it depends on how loaded the machine is. Such a test
/// gives a time well ahead and moves its server's clock past it ([`TestApp::advance`]).
pub fn at(ms: i64) -> String {
    assert!(
        !(0..60_000).contains(&ms),
        "at({ms}): a time less than a minute ahead races the machine's load; use TestApp::at and TestApp::advance"
    );
    omnirail::time::to_rfc3339(Clock::default().now_ms() + ms)
}

/// Connections of each test server's pool (see `TestApp::spawn_with`).
pub const TEST_POOL: u32 = 4;

pub const DAY: i64 = 86_400_000;
