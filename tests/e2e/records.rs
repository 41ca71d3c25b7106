//! Records online end to end: a patient sees every kind of their own records and nothing of
//! anybody else's; every request is audited exactly once; clinicians file and release.

use crate::auth::{PASSWORD, post, token_from_outbox};
use crate::identity::{call, staff};
use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use salus_domain::account::{AccountRepository, IdentityRepository, StaffRole};
use salus_domain::patient::PatientRepository;
use salus_domain::record::{RecordKind, RecordRepository};
use serde_json::{Value, json};

/// A verified patient account linked to the demo clinic's chart `mrn`; its bearer token and
/// the chart's id.
pub(crate) async fn linked_patient(app: &TestApp, mrn: &str, email: &str) -> (String, String) {
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let chart = app
        .store
        .find_by_mrn(org.id, &salus_domain::text::Mrn::parse(mrn).unwrap())
        .await
        .unwrap()
        .unwrap();
    let r = json!({"given_name": chart.name.given(), "family_name": chart.name.family(),
        "birth_date": chart.birth_date.to_string(), "email": email, "password": PASSWORD});
    assert_eq!(
        post(app, "/api/v1/auth/register", &r).await.0,
        StatusCode::ACCEPTED
    );
    let verified = post(
        app,
        "/api/v1/auth/verify",
        &json!({"token": token_from_outbox(app)}),
    )
    .await;
    assert_eq!(verified.0, StatusCode::OK);
    let account = app
        .store
        .find_by_email(&salus_domain::text::Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(app.store.link(account.id, chart.id).await.unwrap());
    let (status, b) = post(
        app,
        "/api/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    (
        b["token"].as_str().unwrap().to_owned(),
        chart.id.to_string(),
    )
}

/// Entries in the audit log so far.
pub(crate) async fn audit_entries(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .store
        .connection()
        .query_one_raw(Statement::from_string(
            app.store.backend(),
            "SELECT COUNT(*) AS n FROM audit_log",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn get(app: &TestApp, path: &str, bearer: &str) -> (StatusCode, Value) {
    call(app, "GET", path, bearer, None).await
}

#[tokio::test]
async fn a_patient_sees_every_kind_of_their_records_and_nobody_else_does() {
    let app = spawn_app(2).await;
    let (ann, ann_chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;

    let (status, summary) = get(&app, "/api/v1/summary", &ann).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert!(!summary["recent_results"].as_array().unwrap().is_empty());
    assert!(!summary["recent_visits"].as_array().unwrap().is_empty());
    let counts = summary["counts"].as_array().unwrap();
    assert!(!counts.is_empty());

    let mut one_of_each = Vec::new();
    for kind in RecordKind::ALL {
        let path = format!("/api/v1/records?kind={}&limit=5", kind.code());
        let (status, page) = get(&app, &path, &ann).await;
        assert_eq!(status, StatusCode::OK, "{kind:?}: {page}");
        let records = page["records"].as_array().unwrap();
        let expected = counts
            .iter()
            .find(|c| c["kind"] == kind.code())
            .map_or(0, |c| c["count"].as_u64().unwrap());
        assert_eq!(records.len() as u64, expected.min(5), "{kind:?}");
        // Newest first.
        let dates: Vec<&str> = records.iter().filter_map(|r| r["date"].as_str()).collect();
        assert!(
            dates.windows(2).all(|w| w[0] >= w[1]),
            "{kind:?}: {dates:?}"
        );
        if let Some(first) = records.first() {
            assert!(first["source"].is_object());
            one_of_each.push(first["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(one_of_each.len() >= 7, "synthetic charts have most kinds");

    let missing = uuid::Uuid::now_v7().to_string();
    let (_, not_there) = get(&app, &format!("/api/v1/records/{missing}"), &ann).await;
    for id in &one_of_each {
        let (status, view) = get(&app, &format!("/api/v1/records/{id}"), &ann).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["record"]["id"], id.as_str());
        // Not yours = not found, with the very same body as a missing id.
        let (status, theirs) = get(&app, &format!("/api/v1/records/{id}"), &bo).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(theirs, not_there);
    }
    let (status, listed) = get(
        &app,
        &format!("/api/v1/records?kind=observation&patient_id={ann_chart}"),
        &bo,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{listed}");
    let (status, _) = get(
        &app,
        &format!("/api/v1/summary?patient_id={ann_chart}"),
        &bo,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ann's access history shows her own views and Bo's refused attempts.
    let (status, history) = get(&app, "/api/v1/me/access-history?limit=100", &ann).await;
    assert_eq!(status, StatusCode::OK);
    let entries = history["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "you" && e["action"] == "read" && e["outcome"] == "allowed")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["who"] == "you" && e["action"] == "view_access_history")
    );
    let bo_tries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["who"] != "you" && e["outcome"] == "denied")
        .collect();
    assert!(bo_tries.len() >= one_of_each.len(), "{history}");
    // Bo's own history has none of Ann's record ids.
    let (_, bo_history) = get(&app, "/api/v1/me/access-history?limit=100", &bo).await;
    assert!(
        bo_history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !one_of_each.iter().any(|id| e["record_id"] == id.as_str()))
    );

    assert_eq!(
        app.store.verify_audit_chain().await.unwrap().first_break,
        None
    );
}

#[tokio::test]
async fn every_records_request_writes_exactly_one_audit_entry() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, page) = get(&app, "/api/v1/records?kind=observation&limit=1", &ann).await;
    let id = page["records"][0]["id"].as_str().unwrap().to_owned();
    let missing = uuid::Uuid::now_v7().to_string();
    for path in [
        "/api/v1/summary".to_owned(),
        "/api/v1/records?kind=medication&status=active".to_owned(),
        "/api/v1/records?kind=observation&q=glucose&from=2000-01-01".to_owned(),
        format!("/api/v1/records/{id}"),
        format!("/api/v1/records/{missing}"),
        "/api/v1/me/access-history".to_owned(),
        "/api/v1/export/fhir".to_owned(),
        "/api/v1/export/ips".to_owned(),
        "/api/v1/export/pdf".to_owned(),
        "/api/v1/export/pdf?kind=medication".to_owned(),
    ] {
        let before = audit_entries(&app).await;
        // Status only: some answers are files, not JSON.
        let status = app
            .client
            .get(&path)
            .header("authorization", format!("Bearer {ann}"))
            .send()
            .await
            .0
            .status();
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert_eq!(audit_entries(&app).await - before, 1, "{path}");
    }
    // Refused before any health data is touched: no entry.
    let before = audit_entries(&app).await;
    let (status, b) = get(&app, "/api/v1/records?kind=nonsense", &ann).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_kind"))
    );
    let (status, b) = get(
        &app,
        "/api/v1/records?kind=observation&from=yesterday",
        &ann,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_date"))
    );
    let (status, b) = get(&app, "/api/v1/records?kind=observation&cursor=zzz", &ann).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );
    assert_eq!(audit_entries(&app).await, before);
}

#[tokio::test]
async fn lists_page_with_a_cursor_and_filter_by_status_date_and_text() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, summary) = get(&app, "/api/v1/summary", &ann).await;
    let total = summary["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "observation")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get(
            &app,
            &format!("/api/v1/records?kind=observation&limit=40&cursor={cursor}"),
            &ann,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for r in page["records"].as_array().unwrap() {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_owned()),
                "no repeats"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen.len() as u64,
        total,
        "the cursor walks every record once"
    );

    let (_, active) = get(&app, "/api/v1/records?kind=medication&status=active", &ann).await;
    assert!(
        active["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "active")
    );
    let (status, b) = get(
        &app,
        "/api/v1/records?kind=medication&status=resolved",
        &ann,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_status"))
    );

    let (_, page) = get(&app, "/api/v1/records?kind=observation&limit=1", &ann).await;
    let first = &page["records"][0];
    let title = first["title"].as_str().unwrap();
    let word: String = title.split_whitespace().next().unwrap().to_lowercase();
    let (_, found) = get(
        &app,
        &format!("/api/v1/records?kind=observation&q={}", urlencode(&word)),
        &ann,
    )
    .await;
    let found = found["records"].as_array().unwrap();
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|r| r["title"].as_str().unwrap().to_lowercase().contains(&word))
    );
    let day = &first["date"].as_str().unwrap()[..10];
    let (_, that_day) = get(
        &app,
        &format!("/api/v1/records?kind=observation&from={day}&until={day}&limit=100"),
        &ann,
    )
    .await;
    let that_day = that_day["records"].as_array().unwrap();
    assert!(that_day.iter().any(|r| r["id"] == first["id"]));
    assert!(
        that_day
            .iter()
            .all(|r| r["date"].as_str().unwrap().starts_with(day))
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_result_shows_its_trend_and_a_visit_its_records() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, page) = get(&app, "/api/v1/records?kind=observation&limit=100", &ann).await;
    // A numeric result whose test appears more than once.
    let records = page["records"].as_array().unwrap();
    let repeated = records
        .iter()
        .find(|r| {
            r["value"].is_string()
                && records.iter().filter(|o| o["title"] == r["title"]).count() > 1
        })
        .expect("a repeated numeric test");
    let id = repeated["id"].as_str().unwrap();
    let (status, answer) = get(&app, &format!("/api/v1/records/{id}/trend"), &ann).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["record_id"], repeated["id"]);
    let trend = answer["points"].as_array().unwrap();
    assert!(trend.len() >= 2, "{answer}");
    assert!(trend.iter().any(|p| p["record_id"] == repeated["id"]));
    let dates: Vec<&str> = trend.iter().filter_map(|p| p["date"].as_str()).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    // The view carries the record and its context; the trend is its own request.
    let (_, view) = get(&app, &format!("/api/v1/records/{id}"), &ann).await;
    assert!(view.get("trend").is_none(), "{view}");
    // A visit has no trend: an empty one, not an error.
    let (_, visits) = get(&app, "/api/v1/records?kind=encounter&limit=1", &ann).await;
    let visit = visits["records"][0]["id"].as_str().unwrap();
    let (status, none) = get(&app, &format!("/api/v1/records/{visit}/trend"), &ann).await;
    assert_eq!(status, 200);
    assert_eq!(none["points"].as_array().map(Vec::len), Some(0));

    // A lab result names the report that groups it, and that report lists it among its
    // results, in the report's order.
    let mut grouped = 0;
    for r in records {
        let (_, v) = get(
            &app,
            &format!("/api/v1/records/{}", r["id"].as_str().unwrap()),
            &ann,
        )
        .await;
        for report in v["related"].as_array().unwrap() {
            assert_eq!(report["kind"], "diagnostic_report", "{v}");
            let (_, rv) = get(
                &app,
                &format!("/api/v1/records/{}", report["id"].as_str().unwrap()),
                &ann,
            )
            .await;
            let results = rv["related"].as_array().unwrap();
            assert!(results.iter().any(|x| x["id"] == r["id"]), "{rv}");
            assert!(results.iter().all(|x| x["kind"] == "observation"), "{rv}");
            grouped += 1;
        }
        if grouped >= 3 {
            break;
        }
    }
    assert!(grouped > 0, "lab results name their report");

    let (_, visits) = get(&app, "/api/v1/records?kind=encounter&limit=50", &ann).await;
    let mut linked = 0;
    for v in visits["records"].as_array().unwrap() {
        let (_, view) = get(
            &app,
            &format!("/api/v1/records/{}", v["id"].as_str().unwrap()),
            &ann,
        )
        .await;
        for r in view["related"].as_array().unwrap() {
            assert_eq!(r["visit_id"], v["id"]);
            linked += 1;
        }
    }
    assert!(linked > 0, "visits link their records");
}

#[tokio::test]
async fn clinicians_file_and_release_and_the_patient_is_told_without_health_data() {
    let app = spawn_app(1).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let elsewhere = staff(
        &app,
        "riverside-family",
        "doc@riverside.test",
        StaffRole::Clinician,
    )
    .await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@clinic.test",
        StaffRole::FrontDesk,
    )
    .await;
    let result = json!({"kind": "lab_result", "title": "Hemoglobin A1c", "loinc": "4548-4",
        "value": 8.1, "unit": "%", "reference_low": 4.0, "reference_high": 5.6});
    let path = format!("/api/v1/patients/{chart}/records");

    for (who, token) in [
        ("other organisation", &elsewhere),
        ("front desk", &desk),
        ("patient", &ann),
    ] {
        let (status, _) = call(&app, "POST", &path, token, Some(result.clone())).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "{who}: {status}"
        );
    }
    let emails_before = app.emails().len();
    let (status, filed) = call(&app, "POST", &path, &doc, Some(result.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["release"], "released");
    assert_eq!(filed["record"]["flag"], "high");
    assert_eq!(filed["record"]["abnormal"], true);
    let mail = app.emails()[emails_before..]
        .iter()
        .find(|m| m.contains("To: ann@example.org"))
        .cloned()
        .expect("the patient is told");
    assert!(
        !mail.contains("A1c") && !mail.contains("8.1"),
        "no health data in email: {mail}"
    );
    let id = filed["record"]["id"].as_str().unwrap();
    let (status, seen) = get(&app, &format!("/api/v1/records/{id}"), &ann).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["record"]["value"], "8.1 %");
    assert_eq!(seen["record"]["reference_range"], "4 to 5.6");

    // A note labelled mental health is held by the demo clinic's policy until released.
    let note = json!({"kind": "note", "title": "Counselling follow-up", "text": "Doing better.",
        "sensitive": ["mental_health"]});
    let (status, held) = call(&app, "POST", &path, &doc, Some(note)).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["release"], "held");
    let id = held["record"]["id"].as_str().unwrap();
    assert_eq!(
        get(&app, &format!("/api/v1/records/{id}"), &ann).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, notes) = get(&app, "/api/v1/records?kind=clinical_note&limit=100", &ann).await;
    assert!(
        !notes["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    );
    // The clinician sees it, and releases it.
    assert_eq!(
        get(&app, &format!("/api/v1/records/{id}"), &doc).await.0,
        StatusCode::OK
    );
    let release = format!("/api/v1/records/{id}/release");
    assert_eq!(
        call(&app, "POST", &release, &elsewhere, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "POST", &release, &doc, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, b) = call(&app, "POST", &release, &doc, None).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_held"))
    );
    let (status, seen) = get(&app, &format!("/api/v1/records/{id}"), &ann).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["record"]["sensitive"], json!(["mental_health"]));

    // The patient's history names the clinician and their role.
    let (_, history) = get(&app, "/api/v1/me/access-history?limit=100", &ann).await;
    assert!(
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["role"] == "clinician"
                && e["action"] == "create"
                && e["who"] == "Front Desk")
    );

    let bad = json!({"kind": "lab_result", "title": "Glucose"});
    let (status, b) = call(&app, "POST", &path, &doc, Some(bad)).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_record"))
    );
}

/// Who asks, in the authorisation matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Owner,
    OtherPatient,
    StaffSameOrg,
    StaffOtherOrg,
    Anonymous,
}

/// Method, path in the spec, path requested, body, expected status per actor.
type MatrixRow = (
    &'static str,
    &'static str,
    String,
    Option<Value>,
    [(Who, u16); 5],
);

#[tokio::test]
async fn authorisation_matrix_covers_every_records_endpoint_of_the_spec() {
    use Who::{Anonymous, OtherPatient, Owner, StaffOtherOrg, StaffSameOrg};
    let app = spawn_app(2).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let other_doc = staff(
        &app,
        "riverside-family",
        "doc@riverside.test",
        StaffRole::Clinician,
    )
    .await;
    let (_, page) = get(&app, "/api/v1/records?kind=observation&limit=1", &ann).await;
    let record = page["records"][0]["id"].as_str().unwrap().to_owned();
    // A held record of Ann's chart, for the release endpoint.
    let held_note = json!({"kind": "note", "title": "Held", "text": "x", "sensitive": ["genetic"]});
    let (_, held) = call(
        &app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        &doc,
        Some(held_note),
    )
    .await;
    let held = held["record"]["id"].as_str().unwrap().to_owned();
    let note = json!({"kind": "note", "title": "Visit note", "text": "Seen today."});
    let ann_chart = salus_domain::patient::PatientRepository::find(
        &app.store,
        salus_domain::PatientId::parse(&chart).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let search =
        json!({"name": ann_chart.name.family(), "birth_date": ann_chart.birth_date.to_string()});

    // (method, spec path, request path, body, expected status per actor). Actors run in the
    // order below, so the clinician's successful release comes after every refusal.
    let rows: Vec<MatrixRow> = vec![
        (
            "get",
            "/v1/summary",
            format!("/api/v1/summary?patient_id={chart}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "get",
            "/v1/records",
            format!("/api/v1/records?kind=observation&patient_id={chart}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "get",
            "/v1/records/{id}",
            format!("/api/v1/records/{record}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "get",
            "/v1/records/{id}/trend",
            format!("/api/v1/records/{record}/trend"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        // Everyone sees only their own history; staff have no chart of their own (403).
        (
            "get",
            "/v1/me/access-history",
            "/api/v1/me/access-history".to_owned(),
            None,
            [
                (Owner, 200),
                (OtherPatient, 200),
                (StaffSameOrg, 403),
                (StaffOtherOrg, 403),
                (Anonymous, 401),
            ],
        ),
        // Downloads are the patient's own (and, later, a proxy's with an export grant).
        (
            "get",
            "/v1/export/fhir",
            format!("/api/v1/export/fhir?patient_id={chart}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 404),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "get",
            "/v1/export/pdf",
            format!("/api/v1/export/pdf?patient_id={chart}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 404),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "get",
            "/v1/export/ips",
            format!("/api/v1/export/ips?patient_id={chart}"),
            None,
            [
                (Owner, 200),
                (OtherPatient, 404),
                (StaffSameOrg, 404),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
            ],
        ),
        (
            "post",
            "/v1/patients/{patient_id}/records",
            format!("/api/v1/patients/{chart}/records"),
            Some(note),
            [
                (Owner, 404),
                (OtherPatient, 404),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
                (StaffSameOrg, 201),
            ],
        ),
        // Clinicians' queue of held records: their organisation's only (another's is empty).
        (
            "get",
            "/v1/staff/held-records",
            "/api/v1/staff/held-records".to_owned(),
            None,
            [
                (Owner, 404),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 200),
                (Anonymous, 401),
            ],
        ),
        // Staff search their own organisation's charts (another's finds nothing: 200, empty).
        (
            "post",
            "/v1/staff/chart-search",
            "/api/v1/staff/chart-search".to_owned(),
            Some(search),
            [
                (Owner, 404),
                (OtherPatient, 404),
                (StaffSameOrg, 200),
                (StaffOtherOrg, 200),
                (Anonymous, 401),
            ],
        ),
        (
            "post",
            "/v1/records/{id}/release",
            format!("/api/v1/records/{held}/release"),
            None,
            [
                (Owner, 404),
                (OtherPatient, 404),
                (StaffOtherOrg, 404),
                (Anonymous, 401),
                (StaffSameOrg, 204),
            ],
        ),
    ];

    // Every operation the spec lists under Records has a row, and every row is in the spec.
    let spec: Value = crate::openapi_spec(&app).await;
    let in_spec = crate::operations_tagged(&spec, "Records");
    let in_table: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.0.to_owned(), r.1.to_owned()))
        .collect();
    assert_eq!(
        in_spec, in_table,
        "a records endpoint without a row in the matrix (or a stale row)"
    );

    // Proxies of Ann: one whose grant covers the row's records (lab results, view and
    // download), one whose grant covers only medications (view), one whose grant was revoked.
    let proxy_in = proxy_of(
        &app,
        &ann,
        "in@example.org",
        &["observation"],
        &["read", "export"],
    )
    .await;
    let proxy_out = proxy_of(&app, &ann, "out@example.org", &["medication"], &["read"]).await;
    let proxy_gone = proxy_of(&app, &ann, "gone@example.org", &["observation"], &["read"]).await;
    let (status, _) = call_with_method(
        &app,
        "DELETE",
        &format!("/api/v1/grants/{}", proxy_gone.1),
        &ann,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // (in scope, out of scope, revoked) per operation.
    let proxy_expect: std::collections::BTreeMap<(&str, &str), [u16; 3]> = [
        (("get", "/v1/summary"), [200, 200, 403]),
        (("get", "/v1/records"), [200, 404, 403]),
        (("get", "/v1/records/{id}"), [200, 404, 403]),
        (("get", "/v1/records/{id}/trend"), [200, 404, 403]),
        (("get", "/v1/me/access-history"), [404, 404, 403]),
        (("get", "/v1/export/fhir"), [200, 404, 403]),
        (("get", "/v1/export/pdf"), [200, 404, 403]),
        (("get", "/v1/export/ips"), [200, 404, 403]),
        (("get", "/v1/staff/held-records"), [404, 404, 403]),
        (("post", "/v1/staff/chart-search"), [404, 404, 403]),
        (
            ("post", "/v1/patients/{patient_id}/records"),
            [404, 404, 403],
        ),
        (("post", "/v1/records/{id}/release"), [404, 404, 403]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        proxy_expect
            .keys()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect::<std::collections::BTreeSet<_>>(),
        in_table,
        "every operation has its proxy expectations"
    );
    for (method, spec_path, path, body, _) in &rows {
        let expected = proxy_expect[&(*method, *spec_path)];
        for ((token, grant), status) in [&proxy_in, &proxy_out, &proxy_gone]
            .into_iter()
            .zip(expected)
        {
            let req = match *method {
                "get" => app.client.get(path),
                _ => app.client.post(path),
            }
            .header("authorization", format!("Bearer {token}"))
            .header("x-acting-for", grant.as_str());
            let resp = match body {
                Some(b) => req.body_json(b).send().await,
                None => req.send().await,
            };
            let got = resp.0.status().as_u16();
            assert_eq!(
                got, status,
                "{method} {path} as a proxy under grant {grant}"
            );
        }
    }

    for (method, _, path, body, expected) in rows {
        let mut whos: Vec<Who> = expected.iter().map(|e| e.0).collect();
        whos.dedup();
        assert_eq!(whos.len(), 5, "{path}: one expectation per actor");
        for (who, status) in expected {
            let token = match who {
                Owner => Some(&ann),
                OtherPatient => Some(&bo),
                StaffSameOrg => Some(&doc),
                StaffOtherOrg => Some(&other_doc),
                Anonymous => None,
            };
            let mut req = match method {
                "get" => app.client.get(&path),
                _ => app.client.post(&path),
            };
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let resp = match &body {
                Some(b) => req.body_json(b).send().await,
                None => req.send().await,
            };
            let got = resp.0.status().as_u16();
            assert_eq!(got, status, "{method} {path} as {who:?}");
        }
    }
}

/// The instant of a FHIR dateTime, for comparing with the API's RFC 3339 dates.
fn instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[tokio::test]
async fn fixture_patients_see_every_imported_record_with_the_values_of_their_bundle() {
    let bundles = salus_tests::synthea_bundles();
    if bundles.is_empty() {
        return; // synthea_bundles() already said so loudly (and failed under CI=true).
    }
    let app = spawn_app(0).await;
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    for (n, path) in bundles.iter().enumerate() {
        salus_server::importer::import_file(&app.store, &org, path, false, crate::clock())
            .await
            .unwrap();
        let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        let mrn = &crate::bundle_mrn(&bundle);
        let (token, chart) = linked_patient(&app, mrn, &format!("p{n}@example.org")).await;

        // Every kind the store holds for the chart is listed in full.
        let stored = app
            .store
            .count_by_kind(salus_domain::PatientId::parse(&chart).unwrap(), None)
            .await
            .unwrap();
        let mut listed = std::collections::BTreeMap::new();
        let mut results = Vec::new();
        for kind in RecordKind::ALL {
            let mut cursor = String::new();
            loop {
                let (status, page) = get(
                    &app,
                    &format!(
                        "/api/v1/records?kind={}&limit=100&cursor={cursor}",
                        kind.code()
                    ),
                    &token,
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{page}");
                let records = page["records"].as_array().unwrap();
                *listed.entry(*kind).or_insert(0u64) += records.len() as u64;
                if *kind == RecordKind::Observation {
                    results.extend(records.iter().cloned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = c.to_owned(),
                    None => break,
                }
            }
        }
        listed.retain(|_, n| *n > 0);
        assert_eq!(
            listed,
            stored,
            "{}: every stored record is visible",
            path.display()
        );

        // Every numeric result of the bundle is there with its value and unit, at its time.
        let shown: std::collections::BTreeSet<(chrono::DateTime<chrono::Utc>, String)> = results
            .iter()
            .filter_map(|r| {
                Some((
                    instant(r["date"].as_str()?)?,
                    r["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let mut checked = 0;
        for o in entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Observation" && r["valueQuantity"].is_object())
        {
            let q = &o["valueQuantity"];
            // As a patient reads it: the bundle's number, with the unit as people write it
            // (units and their rounding are unit-tested in the domain).
            let text =
                salus_domain::record::ObservationValue::Quantity(salus_domain::record::Quantity {
                    value: q["value"].as_f64().unwrap(),
                    unit: q["unit"].as_str().map(str::to_owned),
                })
                .text();
            let at = instant(o["effectiveDateTime"].as_str().unwrap()).unwrap();
            assert!(
                shown.contains(&(at, text.clone())),
                "{}: {} = {text} at {at} is not shown",
                path.display(),
                o["code"]["text"]
            );
            checked += 1;
        }
        assert!(checked > 0, "{}: numeric results compared", path.display());
    }
}

#[tokio::test]
async fn the_patient_hears_of_a_record_when_they_can_see_it_not_when_it_is_filed() {
    let app = spawn_app(1).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let path = format!("/api/v1/patients/{chart}/records");
    let told = |app: &TestApp| {
        app.emails()
            .iter()
            .filter(|m| m.contains("To: ann@example.org") && m.contains("something new"))
            .count()
    };
    let records = app.records();

    // Held (the demo clinic holds mental-health notes): nothing until a clinician releases it.
    let note = json!({"kind": "note", "title": "Counselling", "text": "Doing better.",
        "sensitive": ["mental_health"]});
    let (status, held) = call(&app, "POST", &path, &doc, Some(note)).await;
    assert_eq!(
        (status, held["release"].as_str()),
        (StatusCode::CREATED, Some("held"))
    );
    assert_eq!(told(&app), 0, "a held record tells nobody");
    let id = held["record"]["id"].as_str().unwrap();
    let release = format!("/api/v1/records/{id}/release");
    assert_eq!(
        call(&app, "POST", &release, &doc, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(told(&app), 1, "told at the release");

    // Delayed (HIV results go online after 72 hours there): nothing until the time comes,
    // then once, however often the server looks.
    let result = json!({"kind": "lab_result", "title": "HIV viral load", "value": 20.0,
        "unit": "copies/mL", "sensitive": ["hiv"]});
    let (status, later) = call(&app, "POST", &path, &doc, Some(result)).await;
    assert_eq!(
        (status, later["release"].as_str()),
        (StatusCode::CREATED, Some("released_later"))
    );
    assert_eq!(records.send_due_notices().await.unwrap(), 0);
    assert_eq!(told(&app), 1, "not told days early");
    let id = later["record"]["id"].as_str().unwrap();
    assert_eq!(
        get(&app, &format!("/api/v1/records/{id}"), &ann).await.0,
        StatusCode::NOT_FOUND,
        "not online yet"
    );
    app.advance_minutes(71 * 60);
    assert_eq!(records.send_due_notices().await.unwrap(), 0);
    app.advance_minutes(61);
    // Two nodes look at once: one of them sends it.
    let other_node = app.records();
    let (one, two) = tokio::join!(records.send_due_notices(), other_node.send_due_notices());
    assert_eq!(one.unwrap() + two.unwrap(), 1);
    assert_eq!(told(&app), 2, "told when it goes online, once");
    let (_, signed) = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": PASSWORD}),
    )
    .await;
    let ann = signed["token"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&app, &format!("/api/v1/records/{id}"), &ann).await.0,
        StatusCode::OK,
        "and it is online"
    );
    assert_eq!(
        records.send_due_notices().await.unwrap(),
        0,
        "told only once"
    );
    assert_eq!(told(&app), 2);

    // Released at once: told at once. (The clinician signs in again: days have passed.)
    let doc = staff(
        &app,
        "demo-clinic",
        "doc2@clinic.test",
        StaffRole::Clinician,
    )
    .await;
    let plain = json!({"kind": "lab_result", "title": "Potassium", "value": 4.1, "unit": "mmol/L"});
    let (status, now) = call(&app, "POST", &path, &doc, Some(plain)).await;
    assert_eq!(
        (status, now["release"].as_str()),
        (StatusCode::CREATED, Some("released"))
    );
    assert_eq!(told(&app), 3);
}

#[tokio::test]
async fn clinicians_see_every_held_record_of_their_organisation_until_it_is_released() {
    let app = spawn_app(2).await;
    let (_, ann) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, bo) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let other = staff(
        &app,
        "riverside-family",
        "doc@riverside.test",
        StaffRole::Clinician,
    )
    .await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@clinic.test",
        StaffRole::FrontDesk,
    )
    .await;
    let held_note = |title: &str| json!({"kind": "note", "title": title, "text": "x", "sensitive": ["genetic"]});
    let mut ids = Vec::new();
    for (chart, title) in [
        (&ann, "Genetic counselling"),
        (&bo, "Genetic panel discussion"),
    ] {
        let (status, filed) = call(
            &app,
            "POST",
            &format!("/api/v1/patients/{chart}/records"),
            &doc,
            Some(held_note(title)),
        )
        .await;
        assert_eq!(
            (status, filed["release"].as_str()),
            (StatusCode::CREATED, Some("held"))
        );
        ids.push(filed["record"]["id"].as_str().unwrap().to_owned());
    }
    let (status, held) = get(&app, "/api/v1/staff/held-records", &doc).await;
    assert_eq!(status, StatusCode::OK, "{held}");
    let listed: Vec<(&str, &str)> = held["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["record"]["id"].as_str().unwrap(),
                h["patient"]["patient_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(listed.contains(&(ids[0].as_str(), ann.as_str())), "{held}");
    assert!(listed.contains(&(ids[1].as_str(), bo.as_str())), "{held}");
    for (who, token) in [("another organisation", &other), ("the front desk", &desk)] {
        let (status, none) = get(&app, "/api/v1/staff/held-records", token).await;
        assert_eq!(
            (status, none["records"].clone()),
            (StatusCode::OK, json!([])),
            "{who}"
        );
    }
    // The list is a look at each chart in it.
    let history = salus_domain::audit::AccessLog::history(
        &app.store,
        salus_domain::PatientId::parse(&bo).unwrap(),
        None,
        50,
    )
    .await
    .unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.action == "view_chart" && e.accessor.role == Some(StaffRole::Clinician))
    );

    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/records/{}/release", ids[0]),
        &doc,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, held) = get(&app, "/api/v1/staff/held-records", &doc).await;
    let still: Vec<&str> = held["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["record"]["id"].as_str().unwrap())
        .collect();
    assert!(!still.contains(&ids[0].as_str()) && still.contains(&ids[1].as_str()));
}

/// An account that Ann invited (to `kinds`, with `actions`) and that accepted: its token and
/// the grant's id.
pub(crate) async fn proxy_of(
    app: &TestApp,
    ann: &str,
    email: &str,
    kinds: &[&str],
    actions: &[&str],
) -> (String, String) {
    let token = crate::identity::patient_of(app, None, "Pat", "Proxy", "1985-04-05", email).await;
    let before = app.emails().len();
    let (status, b) = call(
        app,
        "POST",
        "/api/v1/grants",
        ann,
        Some(json!({"email": email, "scope": {"kinds": kinds, "actions": actions}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let mail = app.emails()[before..].join("\n");
    let invitation = crate::consent::invitation_token(&mail);
    let (status, grant) = call(
        app,
        "POST",
        "/api/v1/grants/accept",
        &token,
        Some(json!({"token": invitation})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    (token, grant["id"].as_str().unwrap().to_owned())
}

/// A request without a body with any method.
async fn call_with_method(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: &str,
) -> (StatusCode, Value) {
    let req = match method {
        "DELETE" => app.client.delete(path),
        "PATCH" => app.client.patch(path),
        _ => app.client.get(path),
    }
    .header("authorization", format!("Bearer {bearer}"));
    crate::auth::body(req.send().await).await
}
