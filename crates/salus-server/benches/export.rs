//! `cargo xtask bench export`: the FHIR export of one chart through the real `salus` server
//! process — sign-in check, authorisation, audit entry, batched reads, mapping, streaming.
//!
//! - Throughput (resources/s) exporting a chart of about 1,000 records: the median of
//!   several downloads (target, design.md: >= 20,000 resources/s).
//! - Peak server memory exporting a chart of about 50,000 records, next to the server's
//!   peak before it (target: bounded — the export streams, so the peak must not grow with
//!   the chart).
//!
//! Charts are built from the synthetic generator (several synthetic patients' records moved
//! onto one chart) in a fresh SQLite file under `target/bench-data/`.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark driver reports on stdout"
)]

mod support;

use salus_domain::account::{
    Account, AccountRepository, AccountState, ChartLink, PasswordHasher as _, Role, SecretText,
};
use salus_domain::import::ImportService;
use salus_server::adapters::Argon2Hasher;
use salus_store::{PoolSettings, Store, UuidV7Ids};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{PASSWORD, Server, data_dir};

/// A database with one chart of at least `records` records and an account for it.
async fn chart_db(records: usize) -> (PathBuf, usize) {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("export-{records}.db"));
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
    let mut draft = salus_server::synthetic::patient_draft(org.id, 0, 1, now, &UuidV7Ids);
    let chart = draft.patients[0].clone();
    let mut n = 1;
    while draft.records.len() < records {
        let more = salus_server::synthetic::patient_draft(org.id, n, 1, now, &UuidV7Ids);
        draft.records.extend(more.records);
        draft.practitioners.extend(more.practitioners);
        draft
            .provider_organizations
            .extend(more.provider_organizations);
        n += 1;
    }
    // Exactly `records`: trim the last patient's records other than visits (which others
    // point to) from the end.
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
    let count = draft.records.len();
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock);
    service.import(org.id, draft).await.unwrap();
    let hash = Argon2Hasher::new(1, 1)
        .hash(SecretText::new(PASSWORD))
        .await
        .unwrap();
    AccountRepository::create(
        &store,
        &Account {
            id: salus_domain::AccountId::generate(&UuidV7Ids),
            email: salus_domain::text::Email::parse("export@bench.test").unwrap(),
            name: chart.name.clone(),
            birth_date: Some(chart.birth_date),
            role: Role::Patient,
            state: AccountState::Active { verified_at: now },
            chart: ChartLink::Linked { patient: chart.id },
            password: hash,
            created_at: now,
        },
    )
    .await
    .unwrap();
    (db, count)
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

async fn signed_in(http: &reqwest::Client, server: &Server) -> String {
    for _ in 0..200 {
        if http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"email": "export@bench.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let outbox = tempfile::tempdir().unwrap();

        // Throughput on a chart of about 1,000 records.
        let (db, records) = chart_db(1_000).await;
        let server = Server::start(&db, outbox.path());
        let token = signed_in(&http, &server).await;
        let idle = server.peak_mb();
        let _ = export_once(&http, &server.base, &token).await; // warm the caches
        let mut rates = Vec::new();
        let mut resources = 0;
        for _ in 0..9 {
            let (n, _, t) = export_once(&http, &server.base, &token).await;
            resources = n;
            rates.push(n as f64 / t.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "FHIR export, chart of {records} records ({resources} resources): median {:.0} resources/s (runs {:.0} .. {:.0}; target >= 20,000)",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
        println!(
            "  peak server memory {idle:.1} MB before, {:.1} MB after ten exports",
            server.peak_mb()
        );
        drop(server);

        // Memory on a chart of about 50,000 records.
        let (db, records) = chart_db(50_000).await;
        let server = Server::start(&db, outbox.path());
        let token = signed_in(&http, &server).await;
        let before = server.peak_mb();
        let (n, bytes, t) = export_once(&http, &server.base, &token).await;
        let after = server.peak_mb();
        println!(
            "FHIR export, chart of {records} records: {n} resources, {:.1} MB in {:.2} s ({:.0} resources/s)",
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
