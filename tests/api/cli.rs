//! The `omnirail` binary as an operator runs it.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PATIENCE, TestDb, Watchdog, eventually, send};

const BIN: &str = env!("CARGO_BIN_EXE_omnirail");

fn omnirail(db: &TestDb, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--database-url", &db.url])
        .env_remove("OMNIRAIL_DATABASE_URL")
        .env("OMNIRAIL_SECRETS__KEK", crate::helpers::test_kek(&db.url))
        .output()
        .expect("run omnirail")
}

fn last_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

/// A port on 127.0.0.1 for a server a test starts as a process (ours, moto, an SMTP server),
/// that nothing else can hold meanwhile. A port the kernel handed out for `bind(0)` and that
/// was closed again could be handed to another test before the process binds it, and a
/// health check would then reach that test's server; so ports come instead from below the
/// kernel's ephemeral range (which it never hands out on its own), each once per test run,
/// skipping any that another program holds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    // Below the ephemeral range, above the well-known ports; each test process its own
    // starting point, so two processes running at once are unlikely to meet.
    let low = ephemeral_start.saturating_sub(12_000).max(10_000);
    let span = ephemeral_start.saturating_sub(low).max(1);
    let _ = NEXT.compare_exchange(
        0,
        std::process::id() % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = low + NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = u16::try_from(port).expect("a port below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// Starts `serve` on the database at `url` and returns it once it answers.
pub async fn serve(url: &str, port: u16) -> std::process::Child {
    serve_with_env(url, port, &[]).await
}

/// [`serve`], with more environment variables for the process.
pub async fn serve_with_env(url: &str, port: u16, env: &[(&str, &str)]) -> std::process::Child {
    serve_logging_to(url, port, env, Stdio::null()).await
}

/// Starts `serve` on the database at `url`, without waiting for it to answer.
fn spawn_serve(
    url: &str,
    port: u16,
    env: &[(&str, &str)],
    log: impl Into<Stdio>,
) -> std::process::Child {
    Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ])
        .env_remove("OMNIRAIL_DATABASE_URL")
        .env("OMNIRAIL_SECRETS__KEK", crate::helpers::test_kek(url))
        // As the in-process test servers: few connections (many servers share PostgreSQL),
        // and a wait for one as long as a loaded machine may need.
        .env(
            "OMNIRAIL_DB_MAX_CONNECTIONS",
            crate::helpers::TEST_POOL.to_string(),
        )
        .env(
            "OMNIRAIL_DB_ACQUIRE_TIMEOUT_SECS",
            PATIENCE.as_secs().to_string(),
        )
        // Not the working directory: these servers upload nothing, and leave no folder here.
        .env(
            "OMNIRAIL_DOCUMENT_STORE",
            std::env::temp_dir().join("omnirail-test-documents"),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start serve")
}

/// [`serve_with_env`], writing its log (stderr) to `log`.
pub async fn serve_logging_to(
    url: &str,
    port: u16,
    env: &[(&str, &str)],
    log: impl Into<Stdio>,
) -> std::process::Child {
    let mut child = spawn_serve(url, port, env, log);
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited before it answered: {status}");
        }
        // Not synchronisation: the pause between two looks at a process coming up.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not come up within {PATIENCE:?}");
}

pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        // Not synchronisation: the pause between two looks at a process stopping.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("serve did not stop on SIGTERM within {PATIENCE:?}");
}

#[tokio::test]
async fn tenant_and_key_commands_print_ids_and_keys_that_work() {
    let db = TestDb::new().await;
    let migrate = omnirail(&db, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let tenant = last_line(&omnirail(&db, &["tenant", "create", "--name", "Acme Bank"]));
    assert!(tenant.starts_with("ten_"), "{tenant}");
    let out = omnirail(
        &db,
        &["key", "create", "--tenant", &tenant, "--name", "backend"],
    );
    let key = last_line(&out);
    assert!(key.starts_with("omk_") && key.len() >= 40, "{key}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key_id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    let port = free_port();
    let mut child = serve(&db.url, port).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/omni/journeys");
    for _ in 0..2 {
        let (s, _) = send(client.get(&url).header("x-api-key", &key)).await;
        assert_eq!(s, StatusCode::OK);
    }

    // The plan is set from the command line; Starter has no channel management.
    let channels = format!("http://127.0.0.1:{port}/api/v1/channels");
    let (s, _) = send(client.get(&channels).header("x-api-key", &key)).await;
    assert_eq!(s, StatusCode::OK);
    let set = omnirail(&db, &["tenant", "set-plan", &tenant, "starter"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let (s, body) = send(client.get(&channels).header("x-api-key", &key)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "plan_not_included");
    assert!(
        !omnirail(&db, &["tenant", "set-plan", &tenant, "gold"])
            .status
            .success()
    );
    assert!(
        !omnirail(&db, &["tenant", "set-plan", "ten_nope", "custom"])
            .status
            .success()
    );

    let revoke = omnirail(&db, &["key", "revoke", &key_id]);
    assert!(revoke.status.success());
    // Another process revoked it: announced to `serve` on PostgreSQL, seen in the keys'
    // revocation mark on SQLite.
    let (s, body) = eventually(
        || client.get(&url).header("x-api-key", &key),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        !omnirail(&db, &["key", "revoke", &key_id]).status.success(),
        "a second revoke fails"
    );
    assert!(
        !omnirail(&db, &["key", "create", "--tenant", "ten_nope"])
            .status
            .success()
    );

    // A key with scopes and an expiry: it does what they allow, and the list says so.
    let out = omnirail(
        &db,
        &[
            "key",
            "create",
            "--tenant",
            &tenant,
            "--name",
            "kiosk",
            "--scope",
            "onboarding:write",
            "--scope",
            "journeys:read",
            "--expires",
            "2099-01-01T00:00:00Z",
        ],
    );
    let kiosk = last_line(&out);
    let (s, _) = send(client.get(&url).header("x-api-key", &kiosk)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = send(
        client
            .post(&url)
            .header("x-api-key", &kiosk)
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["requiredScope"], "journeys:write", "{body}");
    let listed = last_line(&omnirail(&db, &["key", "list", "--tenant", &tenant]));
    let columns: Vec<&str> = listed.split('\t').collect();
    assert_eq!(columns[1], "active until 2099-01-01T00:00:00Z", "{listed}");
    assert_eq!(columns[3], "journeys:read onboarding:write", "{listed}");
    assert_eq!(columns[5], "kiosk", "{listed}");
    for bad in [
        &["--scope", "journeys:delete"][..],
        &["--expires", "2001-01-01T00:00:00Z"],
        &["--expires", "soon"],
    ] {
        let mut args = vec!["key", "create", "--tenant", &tenant];
        args.extend_from_slice(bad);
        let out = omnirail(&db, &args);
        assert!(!out.status.success(), "{bad:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("omk_"));
    }

    assert!(terminate(&mut child).success());
}

#[tokio::test]
async fn serve_bootstraps_a_tenant_once_and_exits_cleanly_on_sigterm() {
    let db = TestDb::new().await;
    // A busy port stops serve before it creates anything.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().to_string();
    let out = omnirail(&db, &["serve", "--listen", &taken]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("omk_"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {taken}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour where stderr is no terminal: {stderr}"
    );
    assert_eq!(last_line(&omnirail(&db, &["tenant", "list"])), "");
    drop(busy);

    let port = free_port();
    let mut child = serve(&db.url, port).await;
    let status = terminate(&mut child);
    assert!(status.success(), "exit status {status}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("omk_"), "{stdout}");
    // The key's id is printed beside it, and the operator can find both again.
    let key_id = stdout
        .split("key id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the key id")
        .to_owned();
    let tenants = omnirail(&db, &["tenant", "list"]);
    let tenant = last_line(&tenants);
    assert!(tenant.starts_with("ten_default\t"), "{tenant}");
    let keys = last_line(&omnirail(&db, &["key", "list", "--tenant", "ten_default"]));
    assert!(keys.starts_with(&format!("{key_id}\tactive\t")), "{keys}");
    assert!(
        !keys.contains("omk_"),
        "a key list never shows a key: {keys}"
    );

    // The printed key works; a second start prints no new key.
    let mut child = serve(&db.url, port).await;
    let (s, _) = send(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/omni/templates"))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(terminate(&mut child).success());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("omk_"));
}

/// From the moment its port takes connections, `serve` stops cleanly on SIGTERM, even while it
/// is still bootstrapping and has not answered anything yet: its signal handlers are in place
/// before the port is bound. (They were once installed only when the server first looked at
/// its shutdown signal, and a SIGTERM arriving before that killed the process.)
#[tokio::test]
async fn sigterm_as_soon_as_the_port_takes_connections_stops_serve_cleanly() {
    let db = TestDb::new().await;
    for _ in 0..3 {
        let port = free_port();
        let mut child = spawn_serve(&db.url, port, &[], Stdio::null());
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "serve exited before its port took connections"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not bind its port within {PATIENCE:?}"
            );
            // Not synchronisation: the pause between two looks at a port opening.
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = terminate(&mut child);
        assert!(status.success(), "exit status {status}");
    }
}

#[tokio::test]
async fn configuration_layers_and_never_logs_the_database_password() {
    let _watchdog = Watchdog::default();
    let dir = std::env::temp_dir().join(omnirail::ids::new_id("omnirail-cfg-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("omnirail.toml");
    std::fs::write(&file, "database_url = \"postgres://app:s3cret-pass@127.0.0.1:1/omni\"\ndb_acquire_timeout_secs = 1\n").unwrap();
    // `migrate` with the file, extra arguments, and OMNIRAIL_DATABASE_URL set or unset.
    let migrate = |extra: &[&str], env_url: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["migrate", "--config", file.to_str().unwrap()])
            .args(extra);
        match env_url {
            Some(url) => cmd.env("OMNIRAIL_DATABASE_URL", url),
            None => cmd.env_remove("OMNIRAIL_DATABASE_URL"),
        };
        cmd.output().unwrap()
    };
    let out = migrate(&[], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Where and why, at once (not a pool timeout), once, and without the password.
    assert!(
        stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1 (database omni)"),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
    assert_eq!(stderr.matches("cannot connect").count(), 1, "{stderr}");
    assert!(!stderr.contains("s3cret-pass"), "{stderr}");

    // The environment overrides the file; a flag overrides both.
    let sqlite = format!("sqlite://{}", dir.join("env.db").display());
    let out = migrate(&[], Some(&sqlite));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("env.db").exists());
    let flag = format!("sqlite://{}", dir.join("flag.db").display());
    let out = migrate(
        &["--database-url", &flag],
        Some("postgres://nobody@127.0.0.1:1/x"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("flag.db").exists());

    let out = Command::new(BIN)
        .args(["migrate", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn migrate_says_what_it_applied() {
    let db = TestDb::new().await;
    let out = omnirail(&db, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("applied "), "{stdout}");
    assert!(stdout.contains("0001 foundation"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("already exists"),
        "no database notices: {stderr}"
    );
    let again = omnirail(&db, &["migrate"]);
    assert_eq!(
        last_line(&again),
        "database schema is up to date: nothing to apply"
    );
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "no database notices: {}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test]
async fn a_missing_database_says_so() {
    let Ok(admin) = std::env::var("OMNIRAIL_TEST_DATABASE_URL") else {
        eprintln!("PostgreSQL only: this runs in the PostgreSQL pass");
        return;
    };
    let _watchdog = Watchdog::default();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            &format!("{base}/omnirail_no_such_db"),
        ])
        .env_remove("OMNIRAIL_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("database \"omnirail_no_such_db\" does not exist"),
        "{stderr}"
    );
    for internal in ["line", "file:", "routine", ".c"] {
        assert!(!stderr.contains(internal), "{internal} in {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn an_s3_document_store_without_a_region_stops_serve_at_start() {
    let db = TestDb::new().await;
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .env_remove("OMNIRAIL_DATABASE_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("OMNIRAIL_DOCUMENT_STORE", "s3://omnirail-docs/bank-a")
        .output()
        .expect("run omnirail");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no region; set AWS_REGION"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("omk_"));
}

#[tokio::test]
async fn secrets_commands_make_a_kek_and_rewrap_the_data_keys_under_it() {
    let db = TestDb::new().await;
    let out = Command::new(BIN)
        .args(["secrets", "generate-kek"])
        .output()
        .unwrap();
    let kek = last_line(&out);
    let parsed = omnirail::secrets::Kek::parse(&kek).expect("a KEK");
    assert_ne!(
        last_line(
            &Command::new(BIN)
                .args(["secrets", "generate-kek"])
                .output()
                .unwrap()
        ),
        kek,
        "a new one each time"
    );
    // The database's data keys, under the test's KEK: re-wrapped under the new one, with the
    // old one among the previous.
    let store = db.open().await;
    let tenant = omnirail::auth::create_tenant(&store, "Acme").await.unwrap();
    let config = omnirail::config::SecretsConfig {
        kek: Some(omnirail::config::Hidden(crate::helpers::test_kek(&db.url))),
        ..Default::default()
    };
    let vault = omnirail::secrets::Vault::from_config(&config).unwrap();
    vault.seal(&store, &tenant, "test", "s3cret").await.unwrap();
    let rewrap = Command::new(BIN)
        .args(["secrets", "rewrap", "--database-url", &db.url])
        .env("OMNIRAIL_SECRETS__KEK", &kek)
        .env(
            "OMNIRAIL_SECRETS__PREVIOUS_KEKS",
            format!("[\"{}\"]", crate::helpers::test_kek(&db.url)),
        )
        .output()
        .unwrap();
    assert_eq!(
        last_line(&rewrap),
        format!(
            "re-wrapped 1 of 1 data keys under key-encryption key {}",
            parsed.id()
        )
    );
    // Without the KEK its data keys are under, it says which one it lacks.
    let other = omnirail::secrets::Kek::generate();
    let refused = Command::new(BIN)
        .args(["secrets", "rewrap", "--database-url", &db.url])
        .env("OMNIRAIL_SECRETS__KEK", &other)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(parsed.id()),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    store.close().await;
}
