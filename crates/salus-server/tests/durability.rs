//! Durability: a message or a refill request acknowledged to the client survives a crash.
//! Senders write in a loop through the real `salus` process (and one more asks for refills and
//! cancels them), which is killed with SIGKILL mid-stream and started
//! again on the same database; then every acknowledged message is there exactly once (and
//! a retry of every send, acknowledged or not, with its idempotency key stores nothing twice),
//! and the audit log's hash chain verifies. On SQLite, and on PostgreSQL when
//! `SALUS_TEST_POSTGRES_URL` names a cluster (`cargo xtask test` runs it there too).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use support::{free_port, sign_in};

const SENDERS: usize = 4;

/// `salus serve --demo` on `database_url`: the demo patient is the fullest of three charts
/// (it takes a medication now), and may start many conversations.
async fn start(dir: &std::path::Path, database_url: &str, port: u16) -> Child {
    support::start_demo(
        dir,
        database_url,
        port,
        &[
            ("SALUS_DEMO_PATIENTS", "3"),
            ("SALUS_THREADS_PER_DAY", "1000"),
        ],
    )
    .await
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One refill request for `medication`: its id when acknowledged.
async fn refill(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    medication: &str,
) -> Option<String> {
    let resp = http
        .post(format!("{base}/api/v1/refills"))
        .bearer_auth(token)
        .json(&json!({"medication_id": medication, "quantity": 30,
            "pharmacy": {"name": "Main St Pharmacy", "address": "1 Main St", "phone": "555-0100"}}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    Some(body["id"].as_str()?.to_owned())
}

/// Cancels a refill request: whether the server acknowledged it.
async fn cancel(http: &reqwest::Client, base: &str, token: &str, id: &str) -> bool {
    http.post(format!("{base}/api/v1/refills/{id}/cancel"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
}

/// One send with its key: the message id when the server acknowledged it.
async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    thread: &str,
    n: usize,
) -> Option<String> {
    let resp = http
        .post(format!("{base}/api/v1/threads/{thread}/messages"))
        .bearer_auth(token)
        .header("idempotency-key", format!("durable-{n}"))
        .json(&json!({"body": format!("message {n}")}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    Some(body["id"].as_str()?.to_owned())
}

async fn crash_and_recover(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), database_url, port).await;
    let http = reqwest::Client::new();
    let token = sign_in(&http, &base).await;
    let pools = get(&http, &format!("{base}/api/v1/pools"), &token).await;
    let pool = pools["pools"][0]["id"].as_str().unwrap().to_owned();
    let started: Value = http
        .post(format!("{base}/api/v1/threads"))
        .bearer_auth(&token)
        .json(&json!({"pool_id": pool, "subject": "Crash test", "body": "first"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let thread = started["thread"]["id"].as_str().unwrap().to_owned();

    // Senders write back to back; each send has its own number (and key).
    let acknowledged: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (http, base, token, thread) =
                (http.clone(), base.clone(), token.clone(), thread.clone());
            let (acknowledged, next, stop) = (acknowledged.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(id) = send(&http, &base, &token, &thread, n).await {
                        acknowledged.lock().unwrap().insert(n, id);
                    }
                }
            })
        })
        .collect();
    // Beside them, refill requests of an active medication: asked, then cancelled (one may
    // wait at a time), each answer kept.
    let medication = get(
        &http,
        &format!("{base}/api/v1/records?kind=medication&status=active&limit=1"),
        &token,
    )
    .await["records"][0]["id"]
        .as_str()
        .expect("the demo patient takes a medication")
        .to_owned();
    let refills: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
    let refiller = {
        let (http, base, token, refills, stop) = (
            http.clone(),
            base.clone(),
            token.clone(),
            refills.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(id) = refill(&http, &base, &token, &medication).await else {
                    continue;
                };
                refills.lock().unwrap().push((id.clone(), "requested"));
                if cancel(&http, &base, &token, &id).await {
                    refills.lock().unwrap().push((id, "cancelled"));
                }
            }
        })
    };
    // Let a few hundred sends land, then kill the server mid-stream.
    while acknowledged.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // No new sends from here; those in flight meet the SIGKILL (no shutdown, nothing flushed
    // beyond what was committed) and are not acknowledged.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.kill().unwrap();
    server.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    refiller.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    let attempted = next.load(std::sync::atomic::Ordering::Relaxed);
    assert!(acknowledged.len() >= 150);

    // The same database, a new process.
    let mut server = start(dir.path(), database_url, port).await;
    let token = sign_in(&http, &base).await;
    let view = get(&http, &format!("{base}/api/v1/threads/{thread}"), &token).await;
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for m in view["messages"].as_array().unwrap() {
        *stored
            .entry(m["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (n, id) in &acknowledged {
        assert_eq!(
            stored.get(&format!("message {n}")),
            Some(&1),
            "acknowledged message {n} ({id}) is there exactly once"
        );
        assert!(
            view["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == id.as_str()),
            "with the id it was acknowledged with"
        );
    }
    assert!(
        stored.values().all(|c| *c == 1),
        "nothing twice: {stored:?}"
    );

    // Every acknowledged refill request is there once, at least as far as it was
    // acknowledged (a request whose cancel was in flight may be either).
    let asked = refills.lock().unwrap().clone();
    assert!(!asked.is_empty(), "refill requests were made");
    let listed = get(&http, &format!("{base}/api/v1/refills"), &token).await;
    let listed = listed["refills"].as_array().unwrap();
    for (id, state) in &asked {
        let found: Vec<&Value> = listed.iter().filter(|r| r["id"] == id.as_str()).collect();
        assert_eq!(found.len(), 1, "acknowledged refill {id} is there once");
        if *state == "cancelled" {
            assert_eq!(
                found[0]["state"], "cancelled",
                "its acknowledged cancel too"
            );
        }
    }

    // Every send retried with its key, acknowledged before or not: the acknowledged ones
    // answer their first message, the rest are stored now, each once.
    for n in 0..attempted {
        let id = send(&http, &base, &token, &thread, n).await.unwrap();
        if let Some(first) = acknowledged.get(&n) {
            assert_eq!(&id, first, "a retry of {n} answers the first message");
        }
    }
    let view = get(&http, &format!("{base}/api/v1/threads/{thread}"), &token).await;
    assert_eq!(
        view["messages"].as_array().unwrap().len(),
        attempted + 1,
        "each send once, and the first message"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // The audit chain still verifies after the crash.
    let verified = Command::new(env!("CARGO_BIN_EXE_salus"))
        .args(["audit", "verify"])
        .current_dir(dir.path())
        .env("SALUS_DATABASE_URL", database_url)
        .env("SALUS_LOG_LEVEL", "warn")
        .env_remove("SALUS_CONFIG")
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "audit chain: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    eprintln!(
        "durability ({}): {} sends attempted, {} acknowledged before SIGKILL, all there once; \
         {} refill requests and cancels acknowledged, all there",
        database_url.split(':').next().unwrap_or_default(),
        attempted,
        acknowledged.len(),
        asked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once_and_the_audit_chain_holds() {
    let db_dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("SALUS_TEST_POSTGRES_URL") {
        Ok(_) => salus_tests::test_database_url().await,
        Err(_) => format!("sqlite://{}/durable.db", db_dir.path().display()),
    };
    crash_and_recover(&url).await;
}
