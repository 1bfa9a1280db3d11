//! The `omnirail` command line: `serve`, `migrate`, `tenant create|set-plan|list`,
//! `key create|revoke|list`, `secrets generate-kek|rewrap`.
//!
//! Logs go to stderr; stdout carries only what a script reads (a new tenant id, a new key).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::{Config, LogFormat, Overrides};
use crate::store::Db;
use crate::{auth, keys};

#[derive(Debug, Parser)]
#[command(name = "omnirail", version, about = "Omnichannel engagement engine")]
pub struct Cli {
    /// TOML configuration file (read after defaults, before OMNIRAIL_* variables and flags).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// sqlite://FILE or postgres://USER@HOST/DB (default sqlite://omnirail.db).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log as human-readable text or as JSON lines.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and its background workers.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Bring the database schema up to date.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The key-encryption key of the secrets at rest.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Print a new random key-encryption key (base64 of 32 bytes), for a KEK file or a secret
    /// store; touches no database.
    GenerateKek,
    /// Re-wrap every tenant's data key under the current KEK (`secrets.kek_file` or
    /// `secrets.kek`), reading those wrapped under one of `secrets.previous_kek_files` or
    /// `secrets.previous_keks`. Nodes keep serving throughout.
    Rewrap,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id on the last line.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Set a tenant's plan: starter, professional, enterprise or custom.
    SetPlan { tenant: String, plan: String },
    /// List the tenants: id, plan, creation time and name, one a line.
    List,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Issue an API key; prints it, once, on the last line.
    Create {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        #[arg(long)]
        name: Option<String>,
        /// What the key may do, once per scope (`--scope journeys:write --scope
        /// onboarding:write`): admin, full, read, <area>:read, <area>:write. Default: admin.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// When the key stops working, RFC 3339 (`2027-06-30T00:00:00Z`); default: never.
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
    },
    /// Revoke an API key by its id (`key_...`).
    Revoke { key_id: String },
    /// List a tenant's API keys (never the keys themselves): id, state, creation time, scopes,
    /// last use, name; tab-separated.
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    crate::wire();
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        database_url: cli.database_url.clone(),
        log_format: cli.log_format,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("omnirail: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("omnirail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Secrets {
        command: SecretsCommand::GenerateKek,
    } = cli.command
    {
        println!("{}", crate::secrets::Kek::generate());
        return ExitCode::SUCCESS;
    }
    let log_format = config.log_format;
    match runtime.block_on(execute(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: as a log line where logs are read as JSON, else as a plain line.
            match log_format {
                LogFormat::Json => tracing::error!("{e}"),
                LogFormat::Text => eprintln!("omnirail: {e}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // PostgreSQL's notices ("relation _sqlx_migrations already exists, skipping") are the
    // database talking to itself; a level set for them in log_level still wins.
    let filter = if config.log_level.contains("sqlx::postgres::notice") {
        filter
    } else {
        filter.add_directive(
            "sqlx::postgres::notice=warn"
                .parse()
                .expect("a valid directive"),
        )
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn execute(command: Command, config: Config) -> Result<(), String> {
    let db = Db::connect(&config)
        .await
        .map_err(|e| crate::store::connect_error(&config.database_url, &e))?;
    let applied = db
        .migrate()
        .await
        .map_err(|e| format!("cannot bring the database schema up to date: {e}"))?;
    if !applied.is_empty() {
        tracing::info!(migrations = %applied.join(", "), "database schema brought up to date");
    }
    match command {
        Command::Serve { .. } => serve(db, config).await,
        Command::Secrets {
            command: SecretsCommand::GenerateKek,
        } => Ok(()),
        Command::Secrets {
            command: SecretsCommand::Rewrap,
        } => {
            let vault = crate::secrets::Vault::from_config(&config.secrets)?;
            vault.check(&db).await?;
            let (rewrapped, total) = vault.rewrap(&db).await.map_err(|e| e.to_string())?;
            println!(
                "re-wrapped {rewrapped} of {total} data keys under key-encryption key {}",
                vault.current_kek_id()
            );
            Ok(())
        }
        Command::Migrate => {
            if applied.is_empty() {
                println!("database schema is up to date: nothing to apply");
            } else {
                println!("applied {} migrations:", applied.len());
                for m in &applied {
                    println!("  {m}");
                }
            }
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::List,
        } => {
            for (id, name, plan, created) in auth::tenants(&db).await.map_err(|e| e.to_string())? {
                println!("{id}\t{plan}\t{}\t{name}", crate::time::to_rfc3339(created));
            }
            Ok(())
        }
        Command::Key {
            command: KeyCommand::List { tenant },
        } => {
            if !auth::tenant_exists(&db, &tenant)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no tenant {tenant}"));
            }
            let now = db.now_ms();
            for key in keys::keys(&db, &tenant).await.map_err(|e| e.to_string())? {
                let state = match (key.revoked_at, key.expires_at) {
                    (Some(at), _) => format!("revoked {}", crate::time::to_rfc3339(at)),
                    (None, Some(at)) if at <= now => {
                        format!("expired {}", crate::time::to_rfc3339(at))
                    }
                    (None, Some(at)) => format!("active until {}", crate::time::to_rfc3339(at)),
                    (None, None) => "active".to_owned(),
                };
                let last_use = key.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |at| format!("used {}", crate::time::to_rfc3339(at)),
                );
                println!(
                    "{}\t{state}\t{}\t{}\t{last_use}\t{}",
                    key.id,
                    crate::time::to_rfc3339(key.created_at),
                    key.scopes,
                    key.name.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err("tenant name must be 1 to 200 characters".into());
            }
            let id = auth::create_tenant(&db, name)
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::SetPlan { tenant, plan },
        } => {
            let parsed = crate::channels::model::Plan::parse(&plan).ok_or_else(|| {
                format!("unknown plan {plan}: expected starter, professional, enterprise or custom")
            })?;
            let mut conn = db.begin().await.map_err(|e| e.to_string())?;
            if !crate::channels::set_plan(&mut conn, &tenant, parsed)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no tenant {tenant}"));
            }
            conn.commit().await.map_err(|e| e.to_string())?;
            println!("tenant {tenant} is on the {plan} plan");
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    tenant,
                    name,
                    scopes,
                    expires,
                },
        } => {
            let scopes = if scopes.is_empty() {
                auth::scopes::Scopes::ADMIN
            } else {
                auth::scopes::Scopes::parse(scopes.iter().map(String::as_str)).map_err(|s| {
                    format!(
                        "no scope {s}; one of: {}",
                        auth::scopes::every_scope().join(", ")
                    )
                })?
            };
            let expires_at = match expires.as_deref() {
                None => None,
                Some(text) => match crate::time::parse_rfc3339(text) {
                    Some(at) if at > db.now_ms() => Some(at),
                    Some(_) => return Err("--expires must be in the future".into()),
                    None => {
                        return Err("--expires must be RFC 3339, e.g. 2027-06-30T00:00:00Z".into());
                    }
                },
            };
            if !auth::tenant_exists(&db, &tenant)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no tenant {tenant}"));
            }
            let new = keys::NewKey {
                name: name.as_deref(),
                scopes,
                expires_at,
                created_by: None,
            };
            let key = keys::issue(&db, &tenant, &new)
                .await
                .map_err(|e| e.to_string())?;
            println!("key id {} (use it to revoke); the key, shown once:", key.id);
            println!("{}", key.secret);
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Revoke { key_id },
        } => {
            if keys::revoke_key(&db, &key_id)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("revoked {key_id}");
                Ok(())
            } else {
                Err(format!("no active key {key_id}"))
            }
        }
    }
}

async fn serve(db: Db, config: Config) -> Result<(), String> {
    // The signal handlers first, before the port is bound: from the moment anyone can connect,
    // SIGTERM or SIGINT stops the process cleanly. Installed later (when the shutdown future is
    // first polled), a signal arriving in between took the default action and killed it.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot handle signals: {e}"))?;
    // A document store that cannot be opened stops the process before anything else happens.
    crate::onboarding::documents::Documents::open(&config.document_store)?;
    // The port first: a busy port stops the process before it creates anything.
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    // The secrets at rest: a node without its database's KEK stops before it creates anything.
    crate::seal_stored_secrets(&db, &config.secrets).await?;
    if let Some((tenant, key)) = keys::bootstrap(&db).await.map_err(|e| e.to_string())? {
        println!(
            "Created tenant {tenant} with its first API key, key id {} (revoke it with \
             `omnirail key revoke {}`); the key, shown once, keep it:",
            key.id, key.id
        );
        println!("{}", key.secret);
    }
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, database = %config.database_url, documents = %config.document_store, "omnirail listening");
    crate::serve(db.clone(), config, listener, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    tracing::info!("omnirail stopped");
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

/// Resolves on Ctrl-C (its handler is installed when first polled: no SIGTERM here).
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
