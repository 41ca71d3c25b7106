//! `cargo xtask bench messaging`: secure messages through the real `salus` server process on a
//! database of 10,000 synthetic patients (or `BENCH_MESSAGING_PATIENTS`).
//!
//! - 200 patient accounts, each with three conversations of a few messages with one care
//!   team answered by one clinician (so the staff inbox holds 600 conversations);
//! - at 16 and 64 concurrent connections (`wrk`): the lab results page (the yardstick), the
//!   patient's conversations (`GET /api/v1/threads`), one conversation opened
//!   (`GET /api/v1/threads/{id}`), the staff inbox (`GET /api/v1/staff/inbox`) and sending
//!   (`POST /api/v1/threads/{id}/messages`): requests/s, p50, p99, each the median of three
//!   rounds; every request is authenticated, authorised and audited;
//! - the server's peak resident memory (`VmHWM`).
//!
//! Targets (issue 15): the inbox within 2x the lab results page's latency at the same load;
//! peak server memory <= 100 MB.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark driver reports on stdout"
)]

mod support;

use salus_domain::messaging::{CarePool, MessageRepository as _};
use salus_store::{PoolSettings, Store};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{ACCOUNTS, Hit, Server, accounts, load, median, ms, seeded};

const PHASE: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const THREADS_EACH: usize = 3;

async fn json(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.unwrap()
}

fn main() {
    let patients: u32 = std::env::var("BENCH_MESSAGING_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let db = seeded(patients);
    let outbox = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let store = Store::connect(&url, PoolSettings::default()).await.unwrap();
        store.migrate().await.unwrap();
        accounts(&store, patients).await;
        // Every run starts from no conversations (a run's sends lengthen them).
        for table in [
            "message_receipts",
            "message_keys",
            "message_attachments",
            "messages",
            "message_threads",
        ] {
            sea_orm::ConnectionTrait::execute_unprepared(
                store.connection(),
                &format!("DELETE FROM {table}"),
            )
            .await
            .unwrap();
        }
        // A new clinician each run (their authenticator's secret is known only at creation)
        // answers the team the patients write to.
        let org = salus_server::importer::target_org(&store, Some("demo-clinic"))
            .await
            .unwrap();
        let cfg = salus_server::Config {
            cheap_password_hashing_for_tests: true,
            ..salus_server::Config::default()
        };
        let clock: std::sync::Arc<dyn salus_domain::Clock> =
            std::sync::Arc::new(salus_domain::SystemClock);
        let auth = salus_server::app::api_state(&store, &cfg, clock).unwrap().auth;
        let doc_email = format!("doc-{}@bench.test", uuid::Uuid::now_v7().simple());
        let doc = auth
            .create_staff(
                salus_domain::account::NewStaff {
                    email: salus_domain::text::Email::parse(&doc_email).unwrap(),
                    name: salus_domain::patient::PersonName::new("Mira", "Osei").unwrap(),
                    role: salus_domain::account::StaffRole::Clinician,
                    organization: org.id,
                    password: salus_domain::account::SecretText::new(support::PASSWORD),
                },
                None,
            )
            .await
            .unwrap();
        let pool = store.pools_of(org.id).await.unwrap().into_iter().next();
        let pool = CarePool {
            staff: [doc.account].into(),
            ..pool.unwrap_or(CarePool {
                id: salus_domain::PoolId::generate(&salus_store::UuidV7Ids),
                organization: org.id,
                name: salus_domain::text::PoolName::parse("Primary care").unwrap(),
                answer_days: 2,
                staff: Default::default(),
                active: true,
            })
        };
        if store.pool(pool.id).await.unwrap().is_some() {
            store.update_pool(&pool).await.unwrap();
        } else {
            store.create_pool(&pool).await.unwrap();
        }
        let server = Server::start(&db, outbox.path());
        let http = reqwest::Client::new();
        server.ready(&http).await;
        let base = server.base.clone();
        let sign_in = |email: String| {
            let (http, base) = (http.clone(), base.clone());
            async move { support::patient_token(&http, &base, &email).await }
        };
        // Conversations: three per account, a question and a reply from each side.
        let mut tokens = Vec::new();
        let mut threads: Vec<(String, String)> = Vec::new();
        for n in 0..ACCOUNTS {
            let token = sign_in(format!("bench{n}@bench.test")).await;
            let mut mine = Vec::new();
            {
                let pools = json(
                    http.get(format!("{base}/api/v1/pools"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                let pool = pools["pools"][0]["id"].as_str().unwrap().to_owned();
                for t in 0..THREADS_EACH {
                    let sent = json(
                        http.post(format!("{base}/api/v1/threads"))
                            .bearer_auth(&token)
                            .json(&serde_json::json!({"pool_id": pool,
                                "subject": format!("Question {t}"),
                                "body": "My blood pressure readings at home were higher this week. Should I change the dose?"}))
                            .send()
                            .await
                            .unwrap(),
                    )
                    .await;
                    mine.push(sent["thread"]["id"].as_str().unwrap().to_owned());
                }
            }
            threads.extend(mine.into_iter().map(|id| (id, token.clone())));
            tokens.push(token);
        }
        eprintln!("{} conversations ready", threads.len());
        // The clinician's session: password, then the authenticator's current code.
        let doc_token =
            support::staff_token(&http, &base, &doc_email, &doc.totp.secret_base32).await;
        let lab: Vec<Hit> = tokens
            .iter()
            .map(|t| Hit::get("/api/v1/records?kind=observation&limit=25", t))
            .collect();
        let inbox: Vec<Hit> = tokens.iter().map(|t| Hit::get("/api/v1/threads", t)).collect();
        let open: Vec<Hit> = threads
            .iter()
            .map(|(id, t)| Hit::get(&format!("/api/v1/threads/{id}"), t))
            .collect();
        let staff = vec![Hit::get("/api/v1/staff/inbox", &doc_token)];
        let body = serde_json::json!({"body": "Thank you, I will measure again tomorrow morning."});
        let send: Vec<Hit> = threads
            .iter()
            .map(|(id, t)| Hit::post(&format!("/api/v1/threads/{id}/messages"), t, &body))
            .collect();
        println!(
            "\n{patients} patients, {} conversations; server peak before load {:.0} MB",
            threads.len(),
            server.peak_mb()
        );
        // Reads at both loads first, then sends (which lengthen the conversations).
        let mut lab_p50 = BTreeMap::new();
        let phases = [
            ("lab results page ", &lab),
            ("my conversations ", &inbox),
            ("open conversation", &open),
            ("staff inbox      ", &staff),
        ];
        let mut plan: Vec<(usize, &str, &Vec<Hit>)> = Vec::new();
        for conns in [16usize, 64] {
            plan.extend(phases.iter().map(|(name, hits)| (conns, *name, *hits)));
        }
        plan.extend([16usize, 64].map(|conns| (conns, "send a message   ", &send)));
        for (conns, name, hits) in plan {
            let rounds: Vec<_> = (0..ROUNDS).map(|_| load(&base, conns, hits, PHASE)).collect();
            let rps = median(rounds.iter().map(|f| f.rps));
            let p50 = median(rounds.iter().map(|f| ms(f.p50)));
            let p99 = median(rounds.iter().map(|f| ms(f.p99)));
            let vs_lab = if name.starts_with("lab") {
                lab_p50.insert(conns, p50);
                String::new()
            } else {
                format!(" | p50 {:.2}x the lab page", p50 / lab_p50[&conns])
            };
            println!(
                "  {name} {conns:>2} conns: {rps:>7.0} req/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms{vs_lab} | peak so far {:.0} MB",
                server.peak_mb()
            );
        }
        println!("  peak server memory {:.1} MB (target <= 100)", server.peak_mb());
    });
}
