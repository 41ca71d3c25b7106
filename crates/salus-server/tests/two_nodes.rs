//! Two `salus` processes on one database: fifty bookings of one time, sent at once and split
//! between the two, give exactly one appointment and forty-nine `409 slot_taken` — the
//! database decides, not either process. On SQLite (one file) and on PostgreSQL when
//! `SALUS_TEST_POSTGRES_URL` names a cluster (`cargo xtask test` runs it there too).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use salus_domain::patient::PatientRepository as _;
use serde_json::{Value, json};
use std::process::Child;

mod support;

use support::{PASSWORD, free_port};

const PATIENTS: usize = 50;

/// A node: `salus serve --demo` on `database_url` with fifty charts.
async fn start(dir: &std::path::Path, database_url: &str, port: u16) -> Child {
    let patients = PATIENTS.to_string();
    support::start_demo(
        dir,
        database_url,
        port,
        &[("SALUS_DEMO_PATIENTS", patients.as_str())],
    )
    .await
}

/// The demo front desk's first recovery code, from the file `serve --demo` hands over.
fn front_desk_recovery_code(dir: &std::path::Path) -> String {
    let file = std::fs::read_to_string(dir.join("salus-data/demo-credentials.txt")).unwrap();
    let mut lines = file
        .lines()
        .skip_while(|l| !l.contains("frontdesk@demo.salus.test"));
    lines
        .find_map(|l| l.trim().strip_prefix("recovery codes:"))
        .and_then(|codes| codes.split_whitespace().next())
        .expect("the front desk's recovery codes")
        .to_owned()
}

/// Signs the demo front desk in (password, then a recovery code): a session token that any
/// node accepts (sessions live in the database).
async fn front_desk(http: &reqwest::Client, base: &str, dir: &std::path::Path) -> String {
    let first: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "frontdesk@demo.salus.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second: Value = http
        .post(format!("{base}/api/v1/auth/login/second-factor"))
        .json(&json!({"challenge": first["challenge"], "code": front_desk_recovery_code(dir)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    second["token"]
        .as_str()
        .unwrap_or_else(|| panic!("front desk sign-in: {first} {second}"))
        .to_owned()
}

async fn race(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    // One node seeds the demo (and its schedule); the second starts on what is there.
    let mut a = start(dir.path(), database_url, ports[0]).await;
    let mut b = start(dir.path(), database_url, ports[1]).await;
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let http = reqwest::Client::new();
    let token = front_desk(&http, &bases[0], dir.path()).await;

    // Fifty charts of the demo clinic, each to be booked into the same time.
    let store = salus_store::Store::connect(database_url, salus_store::PoolSettings::default())
        .await
        .unwrap();
    let clinic = salus_server::importer::target_org(&store, Some("demo-clinic"))
        .await
        .unwrap();
    let mut charts = Vec::new();
    for n in 0..PATIENTS {
        let mrn = salus_domain::text::Mrn::parse(&format!("SYN{n:07}")).unwrap();
        charts.push(
            store
                .find_by_mrn(clinic.id, &mrn)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    let options: Value = http
        .get(format!(
            "{}/api/v1/booking/options?patient_id={}",
            bases[1], charts[0]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kind = options["visit_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Follow-up visit")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let slots: Value = http
        .get(format!(
            "{}/api/v1/slots?visit_type_id={kind}&limit=1&patient_id={}",
            bases[0], charts[0]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slot = slots["slots"][0]["id"].as_str().unwrap().to_owned();

    // All at once, alternating between the nodes.
    let tries = charts.iter().enumerate().map(|(n, chart)| {
        let (http, token, slot) = (http.clone(), token.clone(), slot.clone());
        let base = bases[n % 2].clone();
        let chart = chart.to_string();
        tokio::spawn(async move {
            let resp = http
                .post(format!("{base}/api/v1/appointments"))
                .bearer_auth(&token)
                .json(&json!({"slot_id": slot, "patient_id": chart, "reason": "Race"}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        })
    });
    let mut answers = Vec::new();
    for t in tries.collect::<Vec<_>>() {
        answers.push(t.await.unwrap());
    }
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let taken = answers
        .iter()
        .filter(|(s, c)| *s == 409 && c == "slot_taken")
        .count();
    assert_eq!((created, taken), (1, PATIENTS - 1), "{answers:?}");

    // The database holds one appointment in that time, whichever node is asked.
    for base in &bases {
        let mut booked = 0;
        for chart in &charts {
            let mine: Value = http
                .get(format!("{base}/api/v1/appointments?patient_id={chart}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            booked += mine["appointments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["slot_id"] == slot.as_str())
                .count();
        }
        assert_eq!(booked, 1, "one appointment in the time, asked at {base}");
    }
    for node in [&mut a, &mut b] {
        node.kill().unwrap();
        node.wait().unwrap();
    }
    eprintln!(
        "two nodes ({}): {PATIENTS} bookings of one time, 1 booked, {taken} slot_taken",
        database_url.split(':').next().unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bookings_of_one_time_across_two_processes_give_one_appointment() {
    let db_dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("SALUS_TEST_POSTGRES_URL") {
        Ok(_) => salus_tests::test_database_url().await,
        Err(_) => format!("sqlite://{}/two-nodes.db", db_dir.path().display()),
    };
    race(&url).await;
}
