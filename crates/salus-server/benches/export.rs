//! `cargo xtask bench export`: the FHIR export of a chart through the real `salus` server
//! process — sign-in check, re-authentication window, authorisation, audit entry, batched
//! reads, mapping, streaming.
//!
//! - Under load: 100 patients with charts of 200 records each download their whole record
//!   (a 201-resource bundle), `wrk` at 16 connections, random patient per request; next to it,
//!   on the same server, the lab results page (the yardstick of `bench records`), and the raw
//!   SQL of the export's reads run by this process on the same file (the ceiling). Five
//!   rounds of 5 s each; medians. Targets (issue 18): >= 400 exports/s, or >= 0.2x the page.
//! - Peak server memory exporting a chart of 50,000 records, next to the server's peak
//!   before it (target: bounded — the export streams, so the peak must not grow with the
//!   chart).
//!
//! Charts are built from the synthetic generator (several synthetic patients' records moved
//! onto one chart) in fresh SQLite files under `target/bench-data/`.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark driver reports on stdout"
)]

mod support;

use rand::Rng as _;
use salus_domain::PatientId;
use salus_domain::account::{PasswordHasher as _, SecretText};
use salus_domain::import::ImportService;
use salus_server::adapters::Argon2Hasher;
use salus_store::{PoolSettings, Store, UuidV7Ids};
use sea_orm::DbBackend;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Hit, MakeQuery, PASSWORD, Server, checkpoint, data_dir, load, median, ms, raw};

/// A database with `charts` charts of exactly `records` records each (synthetic patients'
/// records moved onto one chart until there are enough) and a signed-up account for each
/// (`export{n}@bench.test`). Built afresh under `target/bench-data/` on every run.
async fn charts_db(charts: u32, records: usize) -> (PathBuf, Vec<PatientId>) {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("export-{charts}x{records}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = Store::connect(
        &format!("sqlite://{}", db.display()),
        PoolSettings::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let clock: Arc<dyn salus_domain::Clock> = Arc::new(salus_domain::SystemClock);
    salus_server::demo::seed(
        &store,
        &salus_server::demo::SeedOptions {
            fixtures: None,
            synthetic_patients: 0,
            seed: 1,
        },
        clock.clone(),
    )
    .await
    .unwrap();
    let org = salus_server::importer::target_org(&store, Some("demo-clinic"))
        .await
        .unwrap();
    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
    let hash = Argon2Hasher::new(1, 1)
        .hash(SecretText::new(PASSWORD))
        .await
        .unwrap();
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock);
    let mut n = 0;
    let mut ids = Vec::new();
    for c in 0..charts {
        let mut draft = salus_server::synthetic::patient_draft(org.id, n, 1, now, &UuidV7Ids);
        n += 1;
        let chart = draft.patients[0].clone();
        while draft.records.len() < records {
            let more = salus_server::synthetic::patient_draft(org.id, n, 1, now, &UuidV7Ids);
            n += 1;
            draft.records.extend(more.records);
            draft.practitioners.extend(more.practitioners);
            draft
                .provider_organizations
                .extend(more.provider_organizations);
        }
        // Exactly `records`: the last records other than visits (which others point to)
        // come off the end.
        while draft.records.len() > records {
            let Some(i) = draft
                .records
                .iter()
                .rposition(|r| r.body.kind() != salus_domain::record::RecordKind::Encounter)
            else {
                break;
            };
            draft.records.remove(i);
        }
        for r in &mut draft.records {
            r.patient_id = chart.id;
        }
        assert_eq!(draft.records.len(), records);
        service.import(org.id, draft).await.unwrap();
        let email = salus_domain::text::Email::parse(&format!("export{c}@bench.test")).unwrap();
        support::patient_account(&store, email, &chart, &hash).await;
        ids.push(chart.id);
    }
    (db, ids)
}

/// Downloads the export once, reading it as it streams: (resources, bytes, time).
async fn export_once(http: &reqwest::Client, base: &str, token: &str) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut resp = http
        .get(format!("{base}/api/v1/export/fhir"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    let elapsed = started.elapsed();
    let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (
        bundle["entry"].as_array().unwrap().len(),
        body.len(),
        elapsed,
    )
}

async fn signed_in(http: &reqwest::Client, server: &Server, email: &str) -> String {
    server.ready(http).await;
    support::patient_token(http, &server.base, email).await
}

/// Charts of the loaded phase (each exported by a random one of its signed-in patients).
const CHARTS: u32 = 100;
/// Records per chart: with the patient, a 201-resource bundle.
const RECORDS: usize = 200;
const CONNECTIONS: usize = 16;
const PHASE: Duration = Duration::from_secs(5);
const ROUNDS: usize = 5;

/// Many patients downloading their 200-record charts at once, next to the lab results page
/// on the same server and the raw SQL of the export's reads.
async fn under_load(http: &reqwest::Client, outbox: &std::path::Path) {
    let (db, charts) = charts_db(CHARTS, RECORDS).await;
    let store = Store::connect(
        &format!("sqlite://{}", db.display()),
        PoolSettings {
            max_connections: CONNECTIONS as u32,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    let server = Server::start(&db, outbox);
    let mut tokens = Vec::new();
    for c in 0..CHARTS {
        tokens.push(signed_in(http, &server, &format!("export{c}@bench.test")).await);
    }
    let (resources, bytes, _) = export_once(http, &server.base, &tokens[0]).await;
    assert_eq!(resources, RECORDS + 1, "the patient and every record");
    let list: Vec<Hit> = tokens
        .iter()
        .map(|t| Hit::get("/api/v1/records?kind=observation&limit=25", t))
        .collect();
    let export: Vec<Hit> = tokens
        .iter()
        .map(|t| Hit::get("/api/v1/export/fhir", t))
        .collect();
    let charts = Arc::new(charts);
    let raw_export: MakeQuery = Arc::new(move |rng| {
        let chart = charts[rng.random_range(0..charts.len())];
        let now = salus_domain::Clock::now(&salus_domain::SystemClock);
        salus_store::export_statements(DbBackend::Sqlite, chart, Some(now))
    });
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        checkpoint(&store).await;
        let l = load(&server.base, CONNECTIONS, &list, PHASE);
        checkpoint(&store).await;
        let e = load(&server.base, CONNECTIONS, &export, PHASE);
        checkpoint(&store).await;
        let r = raw(&store, CONNECTIONS, PHASE, raw_export.clone()).await;
        rounds.push((l, e, r));
    }
    let list_rps = median(rounds.iter().map(|r| r.0.rps));
    let rps = median(rounds.iter().map(|r| r.1.rps));
    let p50 = median(rounds.iter().map(|r| ms(r.1.p50)));
    let p99 = median(rounds.iter().map(|r| ms(r.1.p99)));
    let ceiling = median(rounds.iter().map(|r| r.2));
    let ratio = median(rounds.iter().map(|r| r.1.rps / r.0.rps));
    println!(
        "FHIR export of a {}-resource chart ({:.0} kB), {CONNECTIONS} conns: {rps:.0} req/s = {:.0} resources/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
        RECORDS + 1,
        bytes as f64 / 1e3,
        rps * (RECORDS + 1) as f64
    );
    println!(
        "  lab results page on the same server: {list_rps:.0} req/s; export / page {ratio:.2} (target >= 400 req/s or >= 0.2; rounds {})",
        rounds
            .iter()
            .map(|r| format!("{:.2}", r.1.rps / r.0.rps))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  raw SQL of the export's reads: {ceiling:.0} charts/s; export / raw {:.2}",
        rps / ceiling
    );
    println!("  peak server memory {:.1} MB", server.peak_mb());
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .unwrap();
        let outbox = tempfile::tempdir().unwrap();
        under_load(&http, outbox.path()).await;

        // Memory on a chart of 50,000 records: the export streams, so the peak must not grow
        // with the chart.
        let (db, _) = charts_db(1, 50_000).await;
        let server = Server::start(&db, outbox.path());
        let token = signed_in(&http, &server, "export0@bench.test").await;
        let before = server.peak_mb();
        let (n, bytes, t) = export_once(&http, &server.base, &token).await;
        let after = server.peak_mb();
        println!(
            "FHIR export, chart of 50000 records: {n} resources, {:.1} MB in {:.2} s ({:.0} resources/s)",
            bytes as f64 / 1e6,
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        );
        println!(
            "  peak server memory {before:.1} MB before the export, {after:.1} MB after (+{:.1} MB for a {:.0} MB document)",
            after - before,
            bytes as f64 / 1e6
        );
    });
}
