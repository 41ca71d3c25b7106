//! End-to-end: the assembled application over a real store (SQLite, or PostgreSQL when
//! `SALUS_TEST_POSTGRES_URL` is set), seeded and imported the way an operator does it.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use poem::http::StatusCode;
use poem::test::TestClient;
use salus_domain::organization::OrganizationRepository;
use salus_domain::record::RecordRepository;
use salus_domain::text::Slug;
use salus_domain::{Clock, FixedClock};
use salus_server::demo::{self, DEMO_SLUG, SeedOptions};
use salus_server::importer;
use salus_store::{PoolSettings, Store};
use std::sync::Arc;

mod auth;
mod billing;
mod consent;
mod contract;
mod export;
mod guardians;
mod identity;
mod logcheck;
mod messaging;
mod records;
mod refills;
mod scheduling;
mod security;
mod staff;
mod web;

struct TestApp {
    store: Store,
    client: TestClient<poem::endpoint::BoxEndpoint<'static>>,
    /// Where the app writes its emails (the test outbox).
    outbox: tempfile::TempDir,
    /// The app's clock: it starts at the wall clock's now and moves only when a test moves
    /// it (sessions idling out, throttling delays, link lifetimes, re-authentication).
    clock: Arc<FixedClock>,
    /// The app's settings (the outbox above included).
    cfg: salus_server::Config,
}

impl TestApp {
    /// The account use cases over the app's store and clock (to create staff directly).
    fn auth(&self) -> salus_domain::account::AuthService {
        salus_server::app::api_state(
            &self.store,
            &salus_server::Config::default(),
            self.clock.clone(),
        )
        .unwrap()
        .auth
    }

    /// The records use cases over the app's store and clock (for what the server runs on a
    /// timer, such as the notices of delayed releases).
    fn records(&self) -> salus_domain::chart::RecordsService {
        salus_server::app::api_state(&self.store, &self.cfg, self.clock.clone())
            .unwrap()
            .records
    }

    /// The consent use cases over the app's store and clock (for what the server runs on a
    /// timer, such as telling patients who came of age).
    fn consent(&self) -> salus_domain::consent::ConsentService {
        salus_server::app::api_state(&self.store, &self.cfg, self.clock.clone())
            .unwrap()
            .consent
    }

    /// The scheduling use cases over the app's store and clock (for what the server runs on
    /// a timer: generating slots, sending reminders).
    fn scheduling(&self) -> salus_domain::scheduling::SchedulingService {
        salus_server::app::api_state(&self.store, &self.cfg, self.clock.clone())
            .unwrap()
            .scheduling
    }

    /// The bill-pay use cases over the app's store and clock (for what the server runs on a
    /// timer: reconciling payments without an answer).
    fn billing(&self) -> salus_domain::billing::BillingService {
        salus_server::app::api_state(&self.store, &self.cfg, self.clock.clone())
            .unwrap()
            .billing
    }

    /// The actions of the audit log so far, oldest first.
    async fn auth_events(&self) -> Vec<String> {
        use sea_orm::ConnectionTrait as _;
        self.store
            .connection()
            .query_all_raw(sea_orm::Statement::from_string(
                self.store.backend(),
                "SELECT action FROM audit_log ORDER BY seq",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("", "action").unwrap())
            .collect()
    }

    /// Moves the app's clock forward.
    fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(chrono::Duration::minutes(minutes));
    }

    /// The emails written so far, oldest first, as text.
    fn emails(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.outbox.path())
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        let mails: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        mails.iter().for_each(|m| logcheck::remember_email(m));
        mails
    }
}

/// Every test app, when it is done, checks that the server log so far holds no secret and no
/// health data (see `logcheck`).
impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.emails();
            logcheck::assert_log_clean();
        }
    }
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock::new(
        chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
    ))
}

/// The record number (MR identifier) of the Patient of a FHIR bundle.
fn bundle_mrn(bundle: &serde_json::Value) -> String {
    let patient = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Patient")
        .unwrap();
    patient["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"]["coding"][0]["code"] == "MR")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Another fresh database, migrated, with the demo organisations and no charts.
async fn fresh_store() -> Store {
    let url = salus_tests::test_database_url().await;
    let store = Store::connect(&url, PoolSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    let opts = SeedOptions {
        fixtures: None,
        synthetic_patients: 0,
        seed: 1,
    };
    demo::seed(&store, &opts, clock()).await.unwrap();
    store
}

/// A fresh database, migrated, with the demo organisations and `patients` synthetic charts.
async fn spawn_app(patients: u32) -> TestApp {
    spawn_app_with(patients, |_| {}).await
}

/// As [`spawn_app`], with settings changed by `tune`.
async fn spawn_app_with(patients: u32, tune: impl FnOnce(&mut salus_server::Config)) -> TestApp {
    let url = salus_tests::test_database_url().await;
    let store = Store::connect(&url, PoolSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    let opts = SeedOptions {
        fixtures: None,
        synthetic_patients: patients,
        seed: 1,
    };
    demo::seed(&store, &opts, clock()).await.unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let mut cfg = salus_server::Config {
        outbox_dir: outbox.path().display().to_string(),
        // The suite tests behaviour, not argon2 (the production parameters have their own
        // test in salus-server, and the timing test uses them).
        cheap_password_hashing_for_tests: true,
        // The sandbox processor answers at once and keeps its ledger in memory, unless a
        // test gives it a file.
        sandbox_delay_ms: 0,
        sandbox_ledger: String::new(),
        ..salus_server::Config::default()
    };
    tune(&mut cfg);
    logcheck::install();
    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
    let app_clock = Arc::new(FixedClock::new(now));
    let app = salus_server::app(store.clone(), &cfg, app_clock.clone()).unwrap();
    let ep = logcheck::harvesting(poem::EndpointExt::boxed(
        poem::EndpointExt::map_to_response(app),
    ));
    TestApp {
        store,
        client: TestClient::new(ep),
        outbox,
        clock: app_clock,
        cfg,
    }
}

async fn text(resp: poem::test::TestResponse) -> String {
    resp.0.into_body().into_string().await.unwrap()
}

#[tokio::test]
async fn health_directory_landing_page_and_spec() {
    let app = spawn_app(0).await;
    let health = app.client.get("/healthz").send().await;
    health.assert_status_is_ok();
    health
        .assert_json(serde_json::json!({"status": "ok", "database": "ok"}))
        .await;

    let orgs = app.client.get("/api/v1/organizations").send().await;
    orgs.assert_status_is_ok();
    orgs.assert_json(serde_json::json!({"organizations": [
        {"slug": "riverside-family", "name": "Riverside Family Practice", "features": ["records", "scheduling"]},
        {"slug": "demo-clinic", "name": "Salus Demo Clinic",
         "features": ["records", "messaging", "scheduling", "bill_pay", "proxy_access"]}
    ]}))
    .await;

    let page = app.client.get("/").send().await;
    page.assert_status_is_ok();
    let html = text(page).await;
    assert!(html.contains("Riverside Family Practice") && html.contains("Salus Demo Clinic"));

    let spec = app.client.get("/api/openapi.json").send().await;
    spec.assert_status_is_ok();
    let unknown = app.client.get("/api/v1/unknown").send().await;
    unknown.assert_status(StatusCode::NOT_FOUND);
    unknown
        .assert_json(serde_json::json!({"code": "not_found", "message": "No such API endpoint."}))
        .await;
}

/// The (method, path) of every operation of the spec with this tag.
fn operations_tagged(
    spec: &serde_json::Value,
    tag: &str,
) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            if op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == tag))
            {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

/// The app's OpenAPI document.
/// Who asks in an authorisation matrix: a name, a bearer token, a grant to act under.
type MatrixActor<'a> = (&'a str, Option<String>, Option<String>);

/// A row of an authorisation matrix: method, spec path, request path, body, the status each
/// actor gets.
type MatrixRow<const N: usize> = (
    &'static str,
    &'static str,
    String,
    Option<serde_json::Value>,
    [u16; N],
);

/// An authorisation matrix: every operation of the spec's `tag` has a row (method, spec path,
/// request path, body, the status each actor gets), and each row's request, sent as each
/// actor in order, answers that status.
async fn check_matrix<const N: usize>(
    app: &TestApp,
    tag: &str,
    actors: &[MatrixActor<'_>; N],
    rows: &[MatrixRow<N>],
) {
    let spec = openapi_spec(app).await;
    let in_table: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.0.to_owned(), r.1.to_owned()))
        .collect();
    assert_eq!(
        operations_tagged(&spec, tag),
        in_table,
        "a {tag} operation without a row (or a stale row)"
    );
    for (method, _, path, body, expected) in rows {
        for ((who, bearer, grant), status) in actors.iter().zip(expected) {
            let mut req = match *method {
                "get" => app.client.get(path),
                "put" => app.client.put(path),
                "delete" => app.client.delete(path),
                _ => app.client.post(path),
            };
            if let Some(b) = bearer {
                req = req.header("authorization", format!("Bearer {b}"));
            }
            if let Some(g) = grant {
                req = req.header("x-acting-for", g.as_str());
            }
            // A JSON string stands for a CSV body (the imports'); anything else is JSON.
            let resp = match body {
                Some(serde_json::Value::String(csv)) => {
                    req.content_type("text/csv").body(csv.clone()).send().await
                }
                Some(b) => req.body_json(b).send().await,
                None => req.send().await,
            };
            assert_eq!(
                resp.0.status().as_u16(),
                *status,
                "{method} {path} as {who}"
            );
        }
    }
}

async fn openapi_spec(app: &TestApp) -> serde_json::Value {
    let resp = app.client.get("/api/openapi.json").send().await;
    serde_json::from_str(&text(resp).await).unwrap()
}

#[tokio::test]
async fn healthz_reports_an_unreachable_database() {
    let app = spawn_app(0).await;
    app.store.connection().close_by_ref().await.unwrap();
    let resp = app.client.get("/healthz").send().await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_json(serde_json::json!({"status": "unavailable", "database": "unreachable"}))
        .await;
}

#[tokio::test]
async fn seeding_is_idempotent_and_synthetic_charts_have_hundreds_of_records() {
    let app = spawn_app(3).await;
    let again = demo::seed(
        &app.store,
        &SeedOptions {
            fixtures: None,
            synthetic_patients: 3,
            seed: 1,
        },
        clock(),
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        demo::SeedReport::default(),
        "nothing new the second time"
    );
    let demo_org = app
        .store
        .find_by_slug(&Slug::parse(DEMO_SLUG).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        salus_domain::patient::PatientRepository::count(&app.store, demo_org.id)
            .await
            .unwrap(),
        3
    );
    let mrn = salus_domain::text::Mrn::parse("SYN0000001").unwrap();
    let chart =
        salus_domain::patient::PatientRepository::find_by_mrn(&app.store, demo_org.id, &mrn)
            .await
            .unwrap()
            .expect("synthetic chart 1");
    let per_kind = app.store.count_by_kind(chart.id, None).await.unwrap();
    let total: u64 = per_kind.values().sum();
    assert!((100..=600).contains(&total), "{total} records");
}

#[tokio::test]
async fn operator_import_of_fixtures_twice_and_a_malformed_file() {
    let bundles = salus_tests::synthea_bundles();
    let Some(first) = bundles.first() else { return };
    let app = spawn_app(0).await;
    let org = importer::target_org(&app.store, Some(DEMO_SLUG))
        .await
        .unwrap();
    let one = importer::import_file(&app.store, &org, first, false, clock())
        .await
        .unwrap();
    assert!(one.outcome.created.total() > 0);
    let two = importer::import_file(&app.store, &org, first, false, clock())
        .await
        .unwrap();
    assert_eq!(two.outcome.created.total(), 0);
    assert_eq!(two.outcome.already_present, one.outcome.created);

    // A copy of the bundle whose 3rd entry lost its resourceType: refused, named, nothing stored.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first).unwrap()).unwrap();
    json["entry"][2]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("resourceType");
    json["entry"][0]["resource"]["id"] = serde_json::json!("someone-else");
    json["entry"][0]["fullUrl"] = serde_json::json!("urn:uuid:someone-else");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = importer::import_file(&app.store, &org, &bad, false, clock())
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("entry 2 (unknown): missing required element `resourceType`"),
        "{msg}"
    );
    let count = salus_domain::patient::PatientRepository::count(&app.store, org.id)
        .await
        .unwrap();
    assert_eq!(count, 1, "the malformed bundle stored nothing");

    // Without --org and with two organisations, the operator is asked to choose.
    let err = importer::target_org(&app.store, None).await.unwrap_err();
    assert!(err.to_string().contains("--org"));
    let missing = salus_domain::RecordId::from_uuid(uuid::Uuid::nil());
    assert!(
        RecordRepository::find(&app.store, missing)
            .await
            .unwrap()
            .is_none()
    );
}
