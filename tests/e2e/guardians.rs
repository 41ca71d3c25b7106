//! Guardians of minors through the API: the front desk records one for a patient under 18,
//! the guardian sees the record except what the organisation's policy keeps private for a
//! 12–17-year-old, and at 18 the access ends by itself and the patient is told.

use crate::identity::{call, patient_of, staff};
use crate::spawn_app;
use chrono::Datelike as _;
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::json;

/// Imports a chart born on `born` into the demo clinic (with an email address of its own);
/// answers its id.
pub(crate) async fn chart_born(app: &crate::TestApp, mrn: &str, born: chrono::NaiveDate) -> String {
    // Its own source identity, so two charts are two.
    let full_url = format!("urn:uuid:{}", uuid::Uuid::now_v7());
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{
        "fullUrl": full_url,
        "resource": {"resourceType": "Patient", "id": mrn.to_lowercase(),
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}],
            "name": [{"use": "official", "given": ["Tess"], "family": "Young"}],
            "gender": "female", "birthDate": born.to_string(),
            "telecom": [{"system": "email", "value": "tess@example.org"}]}}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teen.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    salus_server::importer::import_file(&app.store, &org, &path, false, app.clock.clone())
        .await
        .unwrap();
    salus_domain::patient::PatientRepository::find_by_mrn(
        &app.store,
        org.id,
        &salus_domain::text::Mrn::parse(mrn).unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
    .id
    .to_string()
}

/// A lab result filed by `doc` in `chart`, online at once; answers its id.
async fn result(
    app: &crate::TestApp,
    doc: &str,
    chart: &str,
    title: &str,
    labels: &[&str],
) -> String {
    let (status, filed) = call(
        app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        doc,
        Some(
            json!({"kind": "lab_result", "title": title, "value": 1, "unit": "",
                    "sensitive": labels}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    filed["record"]["id"].as_str().unwrap().to_owned()
}

/// The ids of the lab results `bearer` sees acting under `grant`.
async fn results_seen(
    app: &crate::TestApp,
    bearer: &str,
    grant: &str,
) -> (StatusCode, Vec<String>) {
    let resp = app
        .client
        .get("/api/v1/records?kind=observation")
        .header("authorization", format!("Bearer {bearer}"))
        .header("x-acting-for", grant)
        .send()
        .await;
    let (status, b) = crate::auth::body(resp).await;
    let ids = b["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    (status, ids)
}

#[tokio::test]
async fn a_guardian_of_a_fifteen_year_old_sees_what_the_policy_allows_until_the_eighteenth_birthday()
 {
    let app = spawn_app(1).await;
    let now = salus_domain::Clock::now(app.clock.as_ref()).date_naive();
    // Fifteen, and eighteen in ten days' time.
    let born = now.with_year(now.year() - 18).unwrap() + chrono::Duration::days(10);
    let teen = chart_born(&app, "TEEN00001", born).await;
    let adult = chart_born(&app, "ADULT0001", now.with_year(now.year() - 30).unwrap()).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let admin = staff(
        &app,
        "demo-clinic",
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let parent = patient_of(
        &app,
        None,
        "Pat",
        "Parent",
        "1980-01-01",
        "parent@example.org",
    )
    .await;
    let plain = result(&app, &doc, &teen, "Hemoglobin", &[]).await;
    let private = result(
        &app,
        &doc,
        &teen,
        "Chlamydia trachomatis DNA",
        &["sexual_reproductive_health"],
    )
    .await;

    let path = format!("/api/v1/staff/patients/{teen}/guardians");
    let body = json!({"email": "parent@example.org", "relationship": "mother", "note": "birth certificate"});
    for (who, b, expect) in [
        (&doc, body.clone(), (StatusCode::FORBIDDEN, "forbidden")),
        (
            &desk,
            json!({"email": "nobody@example.org"}),
            (StatusCode::BAD_REQUEST, "no_such_account"),
        ),
        (
            &desk,
            json!({"email": "not an address"}),
            (StatusCode::BAD_REQUEST, "invalid_email"),
        ),
    ] {
        let (status, answer) = call(&app, "POST", &path, who, Some(b)).await;
        assert_eq!(
            (status, answer["code"].as_str().unwrap_or_default()),
            (expect.0, expect.1),
            "{answer}"
        );
    }
    let (status, answer) = call(
        &app,
        "POST",
        &format!("/api/v1/staff/patients/{adult}/guardians"),
        &desk,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_a_minor"))
    );

    let before = app.emails().len();
    let (status, grant) = call(&app, "POST", &path, &desk, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert_eq!(
        (grant["kind"].as_str(), grant["status"].as_str()),
        (Some("guardian"), Some("active"))
    );
    assert_eq!(grant["made_by_staff"], true);
    let mail = app.emails()[before..].join("\n");
    assert!(
        mail.contains("recorded you as the parent or guardian"),
        "{mail}"
    );
    assert!(
        !mail.contains("Tess") && !mail.contains("Young"),
        "no name in the email"
    );
    let (_, listed) = call(&app, "GET", &path, &desk, None).await;
    assert_eq!(listed["grants"][0]["id"], grant["id"]);

    // The guardian switches to the teenager's record: the policy keeps sexual health private.
    let (_, mine) = call(&app, "GET", "/api/v1/me/acting-for", &parent, None).await;
    assert_eq!(mine["grants"][0]["patient_name"], "Tess Young", "{mine}");
    let id = grant["id"].as_str().unwrap();
    let (status, seen) = results_seen(&app, &parent, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(seen.contains(&plain), "{seen:?}");
    assert!(
        !seen.contains(&private),
        "hidden from the guardian of a 15-year-old"
    );

    // The administrator keeps nothing private: the guardian's next request shows it.
    let policy = "/api/v1/staff/guardian-policy";
    let (status, _) = call(
        &app,
        "PUT",
        policy,
        &desk,
        Some(json!({"hidden_labels": []})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the front desk reads it only"
    );
    let (status, set) = call(
        &app,
        "PUT",
        policy,
        &admin,
        Some(json!({"hidden_labels": []})),
    )
    .await;
    assert_eq!(
        (status, set["hidden_labels"].clone()),
        (StatusCode::OK, json!([]))
    );
    assert!(results_seen(&app, &parent, id).await.1.contains(&private));
    let back = json!({"hidden_labels": ["mental_health", "substance_use", "sexual_reproductive_health", "hiv"]});
    let (status, _) = call(&app, "PUT", policy, &admin, Some(back.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, read) = call(&app, "GET", policy, &desk, None).await;
    assert_eq!(read, back);
    assert!(!results_seen(&app, &parent, id).await.1.contains(&private));

    // Every look is in the teenager's access history, as the guardian's under the grant.
    let history = salus_domain::audit::AccessLog::history(
        &app.store,
        salus_domain::PatientId::parse(&teen).unwrap(),
        None,
        100,
    )
    .await
    .unwrap();
    assert!(history.iter().any(|e| e.accessor.kind == "proxy"
        && e.accessor.grant.map(|g| g.to_string()).as_deref() == Some(id)
        && e.action == "view_chart"));

    // On the 18th birthday the access ends by itself, and Tess is told once.
    app.advance_minutes(11 * 24 * 60);
    let (_, again) = crate::auth::post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "parent@example.org", "password": crate::auth::PASSWORD}),
    )
    .await;
    let parent = again["token"].as_str().unwrap().to_owned();
    let (status, _) = results_seen(&app, &parent, id).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "ended at 18");
    let before = app.emails().len();
    assert_eq!(
        app.consent().tell_patients_who_came_of_age().await.unwrap(),
        1
    );
    assert_eq!(
        app.consent().tell_patients_who_came_of_age().await.unwrap(),
        0,
        "once"
    );
    let told = app.emails()[before..].join("\n");
    assert!(
        told.contains("tess@example.org") && told.contains("Now that you are 18"),
        "{told}"
    );
    assert!(!told.contains("Chlamydia") && !told.contains("Hemoglobin"));
}
