//! SLA analytics benchmark for `bench/sla.sh` (never run by the tests).
//!
//! `sla_bench seed`: a tenant with `--journeys` journeys (default 1,000,000) over the last 365
//! days, on 10 templates with a 120-hour SLA, assigned to 500 users in 50 teams (one in five to
//! a team), each taking 0 to 200 hours (so some late): those done by now completed (one in ten
//! cancelled), the others open (their deadlines marked announced, so the deadline worker stays
//! idle): about 11,000, as a bank starting 2,700 journeys a day would have under way. Written in bulk by SQL, not
//! through the API: what is measured is the fold worker, which then folds every one of them, and
//! the report it makes possible. Prints the tenant's API key on the last line.
//!
//! `sla_bench measure`: waits until the running server's fold worker has folded every journey
//! (and says how long that took), then makes sequential requests of `GET /analytics/sla` for the
//! dashboards a bank would open: 90 days by week per template, per team, and per template and
//! team; a year by month per template; prints p50/p99 of each.

mod support;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use omnirail::config::{Config, DatabaseUrl};
use omnirail::store::{Backend, Db};

use support::{bench_tenant, get, percentiles};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1_000_000)]
        journeys: i64,
    },
    Measure {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        /// The server's database (bench/harness.sh gives it as BENCH_URL).
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
}

#[tokio::main]
async fn main() {
    match Args::parse().command {
        Cmd::Seed {
            database_url,
            journeys,
        } => seed(database_url, journeys).await,
        Cmd::Measure {
            base,
            key,
            database_url,
            requests,
        } => {
            let url = database_url
                .or_else(|| std::env::var("BENCH_URL").ok())
                .expect("--database-url or BENCH_URL");
            measure(base, key, url, requests).await
        }
    }
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

async fn exec(db: &Db, sql: String) {
    let mut tx = db.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .expect("seed statement");
    tx.commit().await.expect("commit");
}

/// `SELECT i FROM <0..n>` in the database's own dialect.
fn series(backend: Backend, n: i64) -> String {
    match backend {
        Backend::Postgres => format!(
            "SELECT i FROM generate_series(CAST(0 AS BIGINT), {}) AS g(i)",
            n - 1
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) \
             SELECT i FROM s",
            n - 1
        ),
    }
}

async fn seed(database_url: String, journeys: i64) {
    let (db, tenant, key) = bench_tenant(database_url).await;
    let now = db.now_ms();
    let backend = db.backend();
    let started = Instant::now();
    let steps = r#"[{"id":"step_form","name":"Form","type":"form","order":1,"required":true}]"#;
    for t in 0..10 {
        for table in ["journey_templates", "journey_template_versions"] {
            let sql = if table == "journey_templates" {
                format!(
                    "INSERT INTO journey_templates (tenant_id, id, version, name, status, steps, \
                     sla_hours, created_at, updated_at) VALUES ('{tenant}', 'tmpl_bench_{t}', 1, \
                     'Bench {t}', 'active', '{steps}', 120, {now}, {now})"
                )
            } else {
                format!(
                    "INSERT INTO journey_template_versions (tenant_id, template_id, version, name, \
                     steps, created_at, sla_hours) VALUES ('{tenant}', 'tmpl_bench_{t}', 1, \
                     'Bench {t}', '{steps}', {now}, 120)"
                )
            };
            exec(&db, sql).await;
        }
    }
    let s = |n| series(backend, n);
    exec(&db, format!("INSERT INTO teams (tenant_id, id, name, created_at, updated_at) SELECT '{tenant}', 'team_' || i, 'Team ' || i, {now}, {now} FROM ({}) x", s(50))).await;
    exec(&db, format!("INSERT INTO users (tenant_id, id, created_at, updated_at) SELECT '{tenant}', 'usr_' || i, {now}, {now} FROM ({}) x", s(500))).await;
    exec(&db, format!("INSERT INTO team_members (tenant_id, team_id, user_id) SELECT '{tenant}', 'team_' || (i % 50), 'usr_' || i FROM ({}) x", s(500))).await;
    // Each journey i: started (i * 31,536,007 ms) mod 365 days ago, spread over the year,
    // taking (i * 104,729 ms) mod 200 hours; one in ten is cancelled. One not yet done by now is
    // open, as work under way is: some on track, some at risk, some breached.
    let created = format!("({now} - ((i * 31536007) % {}))", 365 * DAY);
    let took = format!("((i * 104729) % {})", 200 * HOUR);
    let done = format!("({created} + {took} <= {now})");
    let status = format!(
        "(CASE WHEN NOT {done} THEN 'in_progress' WHEN i % 10 = 7 THEN 'cancelled' \
         ELSE 'completed' END)"
    );
    let ended = format!("(CASE WHEN {done} THEN {created} + {took} ELSE {created} END)");
    let batch = 100_000;
    let mut from = 0;
    while from < journeys {
        let n = batch.min(journeys - from);
        let numbers = format!("SELECT i + {from} AS i FROM ({}) y", s(n));
        let sql = format!(
            "INSERT INTO journeys (id, tenant_id, template_id, template_version, customer_id, channel, \
             status, current_step_index, current_step_status, assignee_id, assignee_type, priority, \
             context, row_version, created_at, updated_at, step_started_at, sla_due_at, \
             sla_at_risk_at, at_risk_fired, breach_fired, sla_folded) \
             SELECT 'jrn_bench_' || i, '{tenant}', 'tmpl_bench_' || (i % 10), 1, 'ent_' || (i % 100000), \
             'web', {status}, CASE WHEN {done} THEN 1 ELSE 0 END, 'pending', \
             CASE WHEN i % 5 = 0 THEN 'team_' || (i % 50) ELSE 'usr_' || (i % 500) END, \
             CASE WHEN i % 5 = 0 THEN 'team' ELSE 'user' END, 'normal', '{{}}', 1, {created}, \
             {ended}, {created}, \
             {created} + {}, {created} + {}, {created} + {}, {created} + {}, 0 \
             FROM ({}) x",
            120 * HOUR,
            96 * HOUR,
            96 * HOUR,
            120 * HOUR,
            numbers,
        );
        exec(&db, sql).await;
        from += n;
    }
    eprintln!(
        "{journeys} journeys seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{key}");
}

async fn measure(base: String, key: String, database_url: String, requests: usize) {
    let config = Config {
        database_url: DatabaseUrl(database_url),
        ..Config::default()
    };
    let db = Db::open(&config).await.expect("open");
    let started = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM journeys WHERE (sla_folded = 0 OR (sla_folded = 1 AND status IN ('completed', 'cancelled')))",
        )
        .fetch_one(db.reader())
        .await
        .expect("count");
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "{left} journeys still unfolded after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "fold worker: every journey folded in {:.1} s (from the server's start)",
        started.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::new();
    let today = db.now_ms().div_euclid(DAY);
    let day = |d: i64| omnirail::time::to_rfc3339(d * DAY)[..10].to_owned();
    let quarter = format!("from={}&to={}", day(today - 89), day(today));
    let year = format!("from={}&to={}", day(today - 364), day(today));
    let dashboards = [
        (
            "90 days by week, per template",
            format!("{quarter}&period=week&groupBy=template"),
        ),
        (
            "90 days by week, per team",
            format!("{quarter}&period=week&groupBy=team"),
        ),
        (
            "90 days by week, per template and team",
            format!("{quarter}&period=week&groupBy=template_team"),
        ),
        (
            "a year by month, per template",
            format!("{year}&period=month&groupBy=template"),
        ),
        (
            "a year by month, one team",
            format!("{year}&period=month&groupBy=team&teamId=team_7"),
        ),
    ];
    println!("| report | rows | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (label, query) in dashboards {
        let url = format!("{base}/api/v1/omni/analytics/sla?{query}");
        let (_, first) = get(&client, &url, &key).await;
        let rows = first["data"]["periods"].as_array().map_or(0, Vec::len);
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            times.push(get(&client, &url, &key).await.0);
        }
        let (p50, p99) = percentiles(times);
        println!("| {label} | {rows} | {p50:.1} | {p99:.1} |");
    }
}
