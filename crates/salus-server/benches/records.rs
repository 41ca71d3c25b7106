//! `cargo xtask bench records`: authenticated, audited record reads against the real `salus`
//! server process, next to a raw SQL query of the same page over the same database in the
//! same run, at several database sizes.
//!
//! For each scale (patients; default 1,000, 10,000 and 100,000, or `BENCH_RECORDS_SCALES`):
//! - a seeded SQLite database (synthetic charts of a few hundred records each), kept under
//!   `target/bench-data/` so later runs skip the seeding;
//! - `salus serve` on it, and 200 patient accounts linked to random charts, signed in;
//! - "lab results page" (`GET /api/v1/records?kind=observation&limit=25`) and "record detail"
//!   (`GET /api/v1/records/{id}`), each at 16 and 64 concurrent connections: requests/s, p50,
//!   p99; every request is authenticated, authorised and written to the audit log; the load
//!   comes from `wrk` (Debian package `wrk`), random signed-in patients per request;
//! - the raw SQL of the same page and of the same detail, run by this process straight on
//!   the database file with the same concurrency: requests/s (the ceiling); app and raw
//!   phases alternate for five rounds, each starting from a checkpointed database, and every
//!   figure is the median over the rounds;
//! - the server's peak resident memory (`VmHWM`).
//!
//! Targets (design.md): app >= 50% of the raw ceiling; latency at 1,000 vs 100,000 patients
//! within 1.5x; peak server memory <= 100 MB.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark driver reports on stdout"
)]

mod support;

use rand::Rng as _;
use salus_store::{PoolSettings, Store};
use sea_orm::{DbBackend, Statement};
use std::sync::Arc;
use std::time::Duration;
use support::{
    ACCOUNTS, Hit, MakeQuery, Server, accounts, checkpoint, load, median, ms, raw, seeded,
};

const PHASE: Duration = Duration::from_secs(5);
/// App/raw phase pairs per workload; figures are medians over them.
const ROUNDS: usize = 5;
const CONNECTIONS: [usize; 2] = [16, 64];

fn main() {
    let scales: Vec<u32> = std::env::var("BENCH_RECORDS_SCALES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut summary = Vec::new();
    for patients in scales {
        let db = seeded(patients);
        let outbox = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let url = format!("sqlite://{}", db.display());
            let store = Store::connect(
                &url,
                PoolSettings {
                    max_connections: 64,
                    ..PoolSettings::default()
                },
            )
            .await
            .unwrap();
            store.migrate().await.unwrap();
            let charts = accounts(&store, patients).await;
            let server = Server::start(&db, outbox.path());
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .build()
                .unwrap();
            server.ready(&http).await;
            // Sign every account in; collect the ids of its first results for detail reads.
            let mut tokens = Vec::new();
            let mut details: Vec<(String, String)> = Vec::new();
            for n in 0..ACCOUNTS {
                let token =
                    support::patient_token(&http, &server.base, &format!("bench{n}@bench.test"))
                        .await;
                let page: serde_json::Value = http
                    .get(format!("{}/api/v1/records?kind=observation&limit=25", server.base))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for rec in page["records"].as_array().unwrap() {
                    details.push((rec["id"].as_str().unwrap().to_owned(), token.clone()));
                }
                tokens.push(token);
            }
            let charts = Arc::new(charts);
            let base = server.base.clone();
            let page_req: Vec<Hit> = tokens
                .iter()
                .map(|t| Hit::get("/api/v1/records?kind=observation&limit=25", t))
                .collect();
            let detail_req: Vec<Hit> = details
                .iter()
                .map(|(id, t)| Hit::get(&format!("/api/v1/records/{id}"), t))
                .collect();
            let raw_page: MakeQuery = {
                let charts = charts.clone();
                Arc::new(move |rng| {
                    let p = charts[rng.random_range(0..charts.len())];
                    vec![Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        "SELECT * FROM clinical_records WHERE patient_id = ? AND kind = 'observation' \
                         AND release_state = 'released' AND released_at <= ? \
                         ORDER BY sort_at DESC, id DESC LIMIT 26",
                        [p.as_uuid().into(), salus_domain::Clock::now(&salus_domain::SystemClock).into()],
                    )]
                })
            };
            // A record view reads the record and its context in one statement: the same
            // statement, raw.
            let ids: Vec<salus_domain::RecordId> = details
                .iter()
                .map(|(id, _)| salus_domain::RecordId::parse(id).unwrap())
                .collect();
            let ids = Arc::new(ids);
            let raw_detail: MakeQuery = {
                let ids = ids.clone();
                Arc::new(move |rng| {
                    let id = ids[rng.random_range(0..ids.len())];
                    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
                    vec![salus_store::context_statement(DbBackend::Sqlite, id, Some(now))]
                })
            };
            println!("\n{patients} patients ({} MB database)", std::fs::metadata(&db).map_or(0, |m| m.len()) / 1_000_000);
            for conns in CONNECTIONS {
                for (name, app_req, raw_req) in [
                    ("lab results page", &page_req, raw_page.clone()),
                    ("record detail   ", &detail_req, raw_detail.clone()),
                ] {
                    // App and raw phases alternate; each figure is the median of the rounds,
                    // so a burst of noise from a neighbour on this shared machine moves one
                    // round, not the result.
                    let mut rounds = Vec::new();
                    for _ in 0..ROUNDS {
                        // Each phase starts from the same file: the write-ahead log folded
                        // back into the database (the audit entries of the last phase).
                        checkpoint(&store).await;
                        let f = load(&base, conns, app_req, PHASE);
                        checkpoint(&store).await;
                        let ceiling = raw(&store, conns, PHASE, raw_req.clone()).await;
                        rounds.push((f, ceiling));
                    }
                    let per_round: Vec<String> =
                        rounds.iter().map(|(f, c)| format!("{:.2}", f.rps / c)).collect();
                    let rps = median(rounds.iter().map(|r| r.0.rps));
                    let p50 = median(rounds.iter().map(|r| ms(r.0.p50)));
                    let p99 = median(rounds.iter().map(|r| ms(r.0.p99)));
                    let ceiling = median(rounds.iter().map(|r| r.1));
                    let ratio = median(rounds.iter().map(|(f, c)| f.rps / c));
                    println!(
                        "  {name} {conns:>2} conns: {rps:>7.0} req/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms | raw SQL {ceiling:>7.0} q/s | ratio {ratio:.2} (rounds {})",
                        per_round.join(" ")
                    );
                    summary.push((patients, name, conns, rps, p50, p99, ceiling));
                }
            }
            println!("  peak server memory {:.1} MB", server.peak_mb());
        });
    }
    // Latency at the largest scale against the smallest, per workload and concurrency.
    if let (Some(small), Some(large)) = (
        summary.iter().map(|s| s.0).min(),
        summary.iter().map(|s| s.0).max(),
    ) && small != large
    {
        println!("\nlatency {large} vs {small} patients (target <= 1.5x):");
        for s in summary.iter().filter(|s| s.0 == small) {
            if let Some(l) = summary
                .iter()
                .find(|l| l.0 == large && l.1 == s.1 && l.2 == s.2)
            {
                println!(
                    "  {} {:>2} conns: p50 {:.2}x  p99 {:.2}x",
                    s.1,
                    s.2,
                    l.4 / s.4,
                    l.5 / s.5
                );
            }
        }
    }
}
