//! Refill requests through the API: asked from an active medication only, to a saved or a
//! new pharmacy; one waiting per medication (the database decides, also under a race); the
//! clinicians' queue, approve and deny; only the asker cancels; every illegal move a 409 with
//! a stable code; the email says only that a request changed; the authorisation matrix.

use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::spawn_app_with;
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::{Value, json};

/// A chart imported from a small FHIR bundle: a patient with an active and a stopped
/// medication (the synthetic demo charts may have neither).
pub(crate) async fn chart_with_medications(app: &crate::TestApp, mrn: &str) {
    let patient = format!("urn:uuid:{}", uuid::Uuid::now_v7());
    let med = |status: &str, name: &str| {
        json!({"fullUrl": format!("urn:uuid:{}", uuid::Uuid::now_v7()), "resource": {
            "resourceType": "MedicationRequest", "id": uuid::Uuid::now_v7().to_string(),
            "status": status, "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "314076", "display": name}], "text": name},
            "subject": {"reference": patient},
            "authoredOn": "2026-10-01T09:00:00Z",
            "dosageInstruction": [{"text": "One tablet a day"}]}})
    };
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": patient, "resource": {"resourceType": "Patient", "id": mrn.to_lowercase(),
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}],
            "name": [{"use": "official", "given": ["Rosa"], "family": "Diaz"}],
            "gender": "female", "birthDate": "1961-03-14"}},
        med("active", "Lisinopril 10 MG Oral Tablet"),
        med("stopped", "Amoxicillin 500 MG Oral Capsule"),
    ]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meds.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    salus_server::importer::import_file(&app.store, &org, &path, false, app.clock.clone())
        .await
        .unwrap();
}

/// The first medication of the signed-in chart with one of these statuses.
async fn medication(app: &crate::TestApp, bearer: &str, status: &str) -> String {
    let (_, page) = call(
        app,
        "GET",
        &format!("/api/v1/records?kind=medication&status={status}&limit=1"),
        bearer,
        None,
    )
    .await;
    page["records"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the fixture patient has no {status} medication: {page}"))
        .to_owned()
}

fn ask(medication: &str) -> Value {
    json!({
        "medication_id": medication,
        "pharmacy": {"name": "Main St Pharmacy", "address": "1 Main St, Springfield",
                     "phone": "555-0100", "save": true},
        "quantity": 30,
        "note": "Running low"
    })
}

#[tokio::test]
async fn a_refill_is_asked_from_an_active_medication_and_answered_once_by_a_clinician() {
    let app = spawn_app_with(2, |_| {}).await;
    chart_with_medications(&app, "MEDS00001").await;
    let (ann, _) = linked_patient(&app, "MEDS00001", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "clerk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let active = medication(&app, &ann, "active").await;
    let stopped = medication(&app, &ann, "stopped").await;

    // Asked for an active medication, to a new pharmacy that is saved.
    let (status, _) = call(&app, "GET", "/api/v1/pharmacies", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, first) = call(&app, "POST", "/api/v1/refills", &ann, Some(ask(&active))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["state"], "requested");
    assert_eq!(first["quantity"], 30);
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (_, saved) = call(&app, "GET", "/api/v1/pharmacies", &ann, None).await;
    assert_eq!(
        saved["pharmacies"][0]["name"], "Main St Pharmacy",
        "{saved}"
    );
    let pharmacy = saved["pharmacies"][0]["id"].as_str().unwrap().to_owned();

    // Refused: a second while one waits, a stopped medication, someone else's, bad input.
    for (who, body, status, code) in [
        (
            &ann,
            ask(&active),
            StatusCode::CONFLICT,
            "refill_already_requested",
        ),
        (
            &ann,
            ask(&stopped),
            StatusCode::CONFLICT,
            "medication_not_active",
        ),
        (&bo, ask(&active), StatusCode::NOT_FOUND, "not_found"),
        (
            &ann,
            json!({"medication_id": active, "quantity": 0, "pharmacy_id": pharmacy}),
            StatusCode::BAD_REQUEST,
            "invalid_quantity",
        ),
        (
            &ann,
            json!({"medication_id": active, "quantity": 30}),
            StatusCode::BAD_REQUEST,
            "invalid_pharmacy",
        ),
    ] {
        let (got, b) = call(&app, "POST", "/api/v1/refills", who, Some(body)).await;
        assert_eq!(
            (got, b["code"].as_str().unwrap_or_default()),
            (status, code),
            "{b}"
        );
    }

    // The clinicians' queue; the front desk has none; the patient does not approve.
    let (_, queue) = call(&app, "GET", "/api/v1/staff/refills", &doc, None).await;
    let listed = &queue["refills"][0];
    assert_eq!(listed["id"], first_id.as_str(), "{queue}");
    assert!(
        listed["patient_name"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
    let (status, _) = call(&app, "GET", "/api/v1/staff/refills", &clerk, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let approve = json!({"quantity": 30, "refills": 2, "instructions": "One a day with food"});
    let approve_path = format!("/api/v1/refills/{first_id}/approve");
    let (status, _) = call(&app, "POST", &approve_path, &ann, Some(approve.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/refills/{first_id}/deny"),
        &doc,
        Some(json!({"reason": "because"})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_reason")
    );

    // Approved once; the email says only that a request changed.
    let before = app.emails().len();
    let (status, approved) = call(&app, "POST", &approve_path, &doc, Some(approve.clone())).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["approved_refills"], 2);
    let mails = app.emails()[before..].join("\n");
    assert!(mails.contains("A refill request changed"), "{mails}");
    let medication_name = first["medication_name"].as_str().unwrap();
    assert!(!mails.contains(medication_name), "no medication in email");
    assert!(!mails.contains("Main St"), "no pharmacy in email");
    for (who, path, body) in [
        (&doc, approve_path.clone(), Some(approve.clone())),
        (&ann, format!("/api/v1/refills/{first_id}/cancel"), None),
    ] {
        let (status, b) = call(&app, "POST", &path, who, body).await;
        assert_eq!(
            (status, b["code"].as_str().unwrap()),
            (StatusCode::CONFLICT, "refill_not_pending")
        );
    }

    // Asked again (the saved pharmacy), cancelled by the asker, then nothing moves it.
    let (status, second) = call(
        &app,
        "POST",
        "/api/v1/refills",
        &ann,
        Some(json!({"medication_id": active, "quantity": 60, "pharmacy_id": pharmacy})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap();
    let (status, cancelled) = call(
        &app,
        "POST",
        &format!("/api/v1/refills/{second_id}/cancel"),
        &ann,
        None,
    )
    .await;
    assert_eq!(
        (status, cancelled["state"].as_str().unwrap()),
        (StatusCode::OK, "cancelled")
    );
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/refills/{second_id}/approve"),
        &doc,
        Some(approve),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str().unwrap()),
        (StatusCode::CONFLICT, "refill_not_pending")
    );

    // The patient's list and one request show the answer.
    let (_, mine) = call(&app, "GET", "/api/v1/refills", &ann, None).await;
    let states: Vec<&str> = mine["refills"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(states, ["cancelled", "approved"], "newest first: {mine}");
    let (_, one) = call(
        &app,
        "GET",
        &format!("/api/v1/refills/{first_id}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(one["instructions"], "One a day with food");
    assert!(one.get("patient_name").is_none(), "staff lists only");

    // The access history: the request, the clinician's look and answer, on the medication.
    let (_, history) = call(&app, "GET", "/api/v1/me/access-history", &ann, None).await;
    let actions: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in ["request_refill", "decide_refill"] {
        assert!(actions.contains(&expected), "{expected}: {history}");
    }
}

#[tokio::test]
async fn one_request_waits_per_medication_and_one_answer_wins_under_a_race() {
    let app = spawn_app_with(1, |_| {}).await;
    chart_with_medications(&app, "MEDS00001").await;
    let (ann, _) = linked_patient(&app, "MEDS00001", "ann@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let active = medication(&app, &ann, "active").await;
    let asks = (0..12).map(|_| call(&app, "POST", "/api/v1/refills", &ann, Some(ask(&active))));
    let answers = futures_util::future::join_all(asks).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s != StatusCode::CREATED)
            .all(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "refill_already_requested"),
        "{answers:?}"
    );
    let id = created[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/refills/{id}/approve");
    let body = json!({"quantity": 30, "refills": 0});
    let approvals = (0..12).map(|_| call(&app, "POST", &path, &doc, Some(body.clone())));
    let answers = futures_util::future::join_all(approvals).await;
    let won = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(won, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .all(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "refill_not_pending")
    );
}

#[tokio::test]
async fn authorisation_matrix_covers_every_refills_operation_of_the_spec() {
    let app = spawn_app_with(2, |_| {}).await;
    chart_with_medications(&app, "MEDS00001").await;
    let (ann, _) = linked_patient(&app, "MEDS00001", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "clerk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let other_org = staff(
        &app,
        "riverside-family",
        "doc@riverside.example",
        StaffRole::Clinician,
    )
    .await;
    let active = medication(&app, &ann, "active").await;
    let (_, r) = call(&app, "POST", "/api/v1/refills", &ann, Some(ask(&active))).await;
    let r = r["id"].as_str().unwrap().to_owned();
    let with = crate::records::proxy_of(
        &app,
        &ann,
        "with@example.org",
        &["medication"],
        &["read", "request_refill"],
    )
    .await;
    let without = crate::records::proxy_of(
        &app,
        &ann,
        "without@example.org",
        &["medication"],
        &["read"],
    )
    .await;
    let actors: [crate::MatrixActor; 8] = [
        ("owner", Some(ann), None),
        ("other patient", Some(bo), None),
        ("proxy with the grant", Some(with.0), Some(with.1)),
        ("proxy without it", Some(without.0), Some(without.1)),
        ("clinician", Some(doc), None),
        ("front desk", Some(clerk), None),
        ("another organisation", Some(other_org), None),
        ("anonymous", None, None),
    ];
    let rows: Vec<crate::MatrixRow<8>> = vec![
        (
            "get",
            "/v1/pharmacies",
            "/api/v1/pharmacies".into(),
            None,
            [200, 200, 200, 404, 403, 403, 403, 401],
        ),
        (
            "get",
            "/v1/refills",
            "/api/v1/refills".into(),
            None,
            [200, 200, 200, 404, 403, 403, 403, 401],
        ),
        (
            "get",
            "/v1/refills/{id}",
            format!("/api/v1/refills/{r}"),
            None,
            [200, 404, 200, 404, 200, 404, 404, 401],
        ),
        (
            "post",
            "/v1/refills/{id}/deny",
            format!("/api/v1/refills/{r}/deny"),
            Some(json!({"reason": "needs_visit"})),
            [403, 404, 403, 404, 200, 404, 404, 401],
        ),
        // Denied now: no move is left, whoever asks.
        (
            "post",
            "/v1/refills/{id}/approve",
            format!("/api/v1/refills/{r}/approve"),
            Some(json!({"quantity": 30, "refills": 1})),
            [403, 404, 403, 404, 409, 404, 404, 401],
        ),
        (
            "post",
            "/v1/refills/{id}/cancel",
            format!("/api/v1/refills/{r}/cancel"),
            None,
            [409, 404, 409, 404, 403, 404, 404, 401],
        ),
        // The owner asks again (nothing waits now); the proxy's then waits behind it.
        (
            "post",
            "/v1/refills",
            "/api/v1/refills".into(),
            Some(ask(&active)),
            [201, 404, 409, 404, 403, 403, 403, 401],
        ),
        (
            "get",
            "/v1/staff/refills",
            "/api/v1/staff/refills".into(),
            None,
            [403, 403, 403, 403, 200, 403, 200, 401],
        ),
    ];
    crate::check_matrix(&app, "Refills", &actors, &rows).await;
}
