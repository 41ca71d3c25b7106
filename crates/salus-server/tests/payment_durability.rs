//! Durability of payments: a payment acknowledged to the client survives a crash, and no
//! charge is lost or counted twice. Payers pay the demo patient's balance in small amounts
//! through the real `salus` process, whose sandbox processor answers after a delay (it records
//! each charge before answering, in its ledger file, as a processor would on its side); the
//! process is killed with SIGKILL while payments are between the processor's charge and its
//! answer. `salus billing reconcile` then settles what was left pending, and on the restarted
//! server every acknowledged payment is there once, every charge the processor made is one
//! succeeded payment, nothing is pending, the balance is the statements less what was charged,
//! and a retry of every key charges nothing more. On SQLite, and on PostgreSQL when
//! `SALUS_TEST_POSTGRES_URL` names a cluster.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use support::{free_port, sign_in};

const PAYERS: usize = 3;

async fn start(dir: &std::path::Path, database_url: &str, port: u16) -> Child {
    support::start_demo(
        dir,
        database_url,
        port,
        &[
            ("SALUS_DEMO_PATIENTS", "3"),
            ("SALUS_SANDBOX_DELAY_MS", "150"),
        ],
    )
    .await
}

/// Pays 0.10 under key `n`; the payment's id when the server answered 201 or 200 (paid).
async fn pay(http: &reqwest::Client, base: &str, token: &str, n: usize) -> Option<String> {
    let resp = http
        .post(format!("{base}/api/v1/billing/payments"))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("durable-{n:06}"))
        .json(&json!({"amount": "0.10", "card_token": "tok_sandbox_success"}))
        .send()
        .await
        .ok()?;
    if !matches!(resp.status().as_u16(), 200 | 201) {
        return None;
    }
    let b: Value = resp.json().await.ok()?;
    b["id"].as_str().map(str::to_owned)
}

async fn account(http: &reqwest::Client, base: &str, token: &str) -> Value {
    http.get(format!("{base}/api/v1/billing/account"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The processor's charges that took money, by key.
fn charged(dir: &std::path::Path) -> BTreeSet<String> {
    salus_server::sandbox::read_ledger(&dir.join("salus-data/sandbox-ledger.log"))
        .unwrap()
        .into_iter()
        .filter(|(k, o)| {
            k.starts_with("pay-")
                && matches!(o, salus_domain::billing::PaymentOutcome::Succeeded { .. })
        })
        .map(|(k, _)| k)
        .collect()
}

/// Cents of an amount the API wrote ("104.30").
fn cents(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

async fn crash_and_reconcile(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), database_url, port).await;
    let http = reqwest::Client::new();
    let token = sign_in(&http, &base).await;
    let billed = cents(
        account(&http, &base, &token).await["balance"]["billed"]
            .as_str()
            .unwrap(),
    );
    assert!(billed > 0, "the demo patient has statements");

    let acknowledged: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let payers: Vec<_> = (0..PAYERS)
        .map(|_| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (acknowledged, next, stop) = (acknowledged.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(id) = pay(&http, &base, &token, n).await {
                        acknowledged.lock().unwrap().insert(n, id);
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Killed while the processor has charged a payment whose answer has not come back (its
    // ledger shows more charges than were acknowledged).
    while charged(dir.path()).len() <= acknowledged.lock().unwrap().len() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.kill().unwrap();
    server.wait().unwrap();
    for p in payers {
        p.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let attempted = next.load(std::sync::atomic::Ordering::Relaxed);

    // The operator settles what the crash left pending, from the processor's answers.
    let reconciled = Command::new(env!("CARGO_BIN_EXE_salus"))
        .args(["billing", "reconcile", "--older-than-secs", "0"])
        .current_dir(dir.path())
        .env("SALUS_DATABASE_URL", database_url)
        .env("SALUS_LOG_LEVEL", "warn")
        .env_remove("SALUS_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&reconciled.stdout).into_owned();
    assert!(
        reconciled.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&reconciled.stderr)
    );

    let mut server = start(dir.path(), database_url, port).await;
    let token = sign_in(&http, &base).await;
    let a = account(&http, &base, &token).await;
    let payments = a["payments"].as_array().unwrap();
    let by_id: BTreeMap<&str, &Value> = payments
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    assert_eq!(by_id.len(), payments.len(), "no payment twice");
    for (n, id) in &acknowledged {
        assert_eq!(
            by_id.get(id.as_str()).map(|p| &p["state"]),
            Some(&json!("succeeded")),
            "acknowledged payment {n} is there, paid"
        );
    }
    assert!(
        payments.iter().all(|p| p["state"] != "pending"),
        "nothing left pending: {payments:?}"
    );
    let succeeded: BTreeSet<String> = payments
        .iter()
        .filter(|p| p["state"] == "succeeded")
        .map(|p| format!("pay-{}", p["id"].as_str().unwrap()))
        .collect();
    let charged_before_retries = charged(dir.path());
    assert_eq!(
        succeeded, charged_before_retries,
        "every charge the processor made is one succeeded payment, and no other"
    );
    assert!(
        succeeded.len() > acknowledged.len(),
        "the crash caught payments between the charge and the answer ({} charged, {} acknowledged)",
        succeeded.len(),
        acknowledged.len()
    );
    let paid = 10 * i64::try_from(succeeded.len()).unwrap();
    assert_eq!(cents(a["balance"]["owed"].as_str().unwrap()), billed - paid);

    // Every key again: an acknowledged one answers its payment, and none charges twice.
    // (A payment the crash caught before it reached the processor failed, taking nothing:
    // its key answers that.)
    for n in 0..attempted {
        let id = pay(&http, &base, &token, n).await;
        if let Some(first) = acknowledged.get(&n) {
            assert_eq!(
                id.as_ref(),
                Some(first),
                "a retry of {n} answers the first payment"
            );
        }
    }
    let after = account(&http, &base, &token).await;
    assert_eq!(
        after["payments"].as_array().unwrap().len(),
        attempted,
        "each key once"
    );
    assert!(charged_before_retries.is_subset(&charged(dir.path())));
    assert_eq!(
        charged(dir.path()).len(),
        after["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] == "succeeded")
            .count()
    );
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "payment durability ({}): {attempted} payments attempted, {} acknowledged before \
         SIGKILL, {} charged; reconcile: {}",
        database_url.split(':').next().unwrap_or_default(),
        acknowledged.len(),
        succeeded.len(),
        said.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_payments_survive_sigkill_and_every_charge_is_recorded_once() {
    let db_dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("SALUS_TEST_POSTGRES_URL") {
        Ok(_) => salus_tests::test_database_url().await,
        Err(_) => format!("sqlite://{}/paying.db", db_dir.path().display()),
    };
    crash_and_reconcile(&url).await;
}
