//! Identity proofing end to end: the front-desk queue and activation codes.

use crate::auth::{body, code_now, post, token_from_outbox};
use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use salus_domain::account::{NewStaff, SecretText, StaffRole};
use salus_domain::patient::PatientRepository;
use serde_json::{Value, json};

const PASSWORD: &str = "tulip kettle orbit";

pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: &str,
    json: Option<Value>,
) -> (StatusCode, Value) {
    let req = match method {
        "GET" => app.client.get(path),
        "PUT" => app.client.put(path),
        "DELETE" => app.client.delete(path),
        _ => app.client.post(path),
    }
    .header("authorization", format!("Bearer {bearer}"));
    let resp = match json {
        Some(j) => req.body_json(&j).send().await,
        None => req.send().await,
    };
    body(resp).await
}

/// A signed-in staff member of `org` with `role`.
pub(crate) async fn staff(app: &TestApp, org: &str, email: &str, role: StaffRole) -> String {
    let auth = app.auth();
    let org = salus_server::importer::target_org(&app.store, Some(org))
        .await
        .unwrap();
    let creds = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse(email).unwrap(),
                name: salus_domain::patient::PersonName::new("Front", "Desk").unwrap(),
                role,
                organization: org.id,
                password: SecretText::new(PASSWORD),
            },
            None,
        )
        .await
        .unwrap();
    let (_, b) = post(
        app,
        "/api/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    // Each staff member has their own secret, so the current code is fresh for them.
    let code = code_now(app, &creds.totp.secret_base32);
    let (status, b) = post(
        app,
        "/api/v1/auth/login/second-factor",
        &json!({"challenge": b["challenge"], "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

/// A verified, signed-in patient account that chose no clinic; answers its bearer token.
async fn patient(app: &TestApp, given: &str, family: &str, dob: &str, email: &str) -> String {
    patient_of(app, None, given, family, dob, email).await
}

/// A verified, signed-in patient account that asked `clinic` (a slug) to confirm them.
pub(crate) async fn patient_of(
    app: &TestApp,
    clinic: Option<&str>,
    given: &str,
    family: &str,
    dob: &str,
    email: &str,
) -> String {
    let r = json!({"clinic": clinic, "given_name": given, "family_name": family, "birth_date": dob, "email": email, "password": PASSWORD});
    assert_eq!(
        post(app, "/api/v1/auth/register", &r).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(
            app,
            "/api/v1/auth/verify",
            &json!({"token": token_from_outbox(app)})
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, b) = post(
        app,
        "/api/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

/// The demo clinic's chart with this record number.
pub(crate) async fn chart(app: &TestApp, mrn: &str) -> salus_domain::patient::Patient {
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    app.store
        .find_by_mrn(org.id, &salus_domain::text::Mrn::parse(mrn).unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn front_desk_confirms_a_queued_account_against_matching_charts() {
    let app = spawn_app(2).await;
    let c = chart(&app, "SYN0000001").await;
    let dob = c.birth_date.to_string();
    let ann = patient(
        &app,
        c.name.given(),
        c.name.family(),
        &dob,
        "ann@example.org",
    )
    .await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;

    // Patients and clinicians may not see the queue.
    assert_eq!(
        call(&app, "GET", "/api/v1/staff/identity-queue", &ann, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (status, q) = call(&app, "GET", "/api/v1/staff/identity-queue", &desk, None).await;
    assert_eq!(status, StatusCode::OK);
    let entry = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["email"] == "ann@example.org")
        .expect("queued");
    assert_eq!(entry["candidates"][0]["patient_id"], c.id.to_string());
    let account = entry["account_id"].as_str().unwrap().to_owned();
    // Showing the chart's demographics was recorded against that chart.
    let history = salus_domain::audit::AccessLog::history(&app.store, c.id, None, 50)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.action == "view_demographics"
                && e.accessor.role == Some(StaffRole::FrontDesk)),
        "{history:?}"
    );

    // Confirming a chart that does not match is refused.
    let other = chart(&app, "SYN0000000").await;
    let path = format!("/api/v1/staff/identity-queue/{account}");
    let wrong = call(
        &app,
        "POST",
        &path,
        &desk,
        Some(json!({"decision": "confirm", "patient_id": other.id.to_string()})),
    )
    .await;
    if other.birth_date != c.birth_date {
        assert_eq!(wrong.0, StatusCode::NOT_FOUND, "born on another day");
    }
    let (status, _) = call(
        &app,
        "POST",
        &path,
        &desk,
        Some(json!({"decision": "confirm", "patient_id": c.id.to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, me) = call(&app, "GET", "/api/v1/me", &ann, None).await;
    assert_eq!(me["chart_linked"], true);
    let (_, q) = call(&app, "GET", "/api/v1/staff/identity-queue", &desk, None).await;
    assert!(
        q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["email"] != "ann@example.org"),
        "no longer queued"
    );
}

#[tokio::test]
async fn activation_codes_need_the_right_birth_date_and_work_once_within_the_organisation() {
    let app = spawn_app(1).await;
    let c = chart(&app, "SYN0000000").await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let clinician = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let elsewhere = staff(
        &app,
        "riverside-family",
        "desk@riverside.example",
        StaffRole::FrontDesk,
    )
    .await;
    let path = format!("/api/v1/staff/patients/{}/activation-code", c.id);

    assert_eq!(
        call(&app, "POST", &path, &clinician, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, "POST", &path, &elsewhere, None).await.0,
        StatusCode::NOT_FOUND,
        "not their chart"
    );
    let (status, issued) = call(&app, "POST", &path, &desk, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(issued["valid_days"], 30);
    let code = issued["code"].as_str().unwrap().to_owned();

    // Someone else's birth date: refused, one answer.
    let bob = patient(&app, "Bob", "Ray", "1970-05-06", "bob@example.org").await;
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/me/activate",
        &bob,
        Some(json!({"code": code, "birth_date": "1970-05-06"})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code_rejected"))
    );

    let ann = patient(&app, "Ann", "Lee", "1980-01-02", "ann@example.org").await;
    let redeem = json!({"code": code.to_lowercase().replace('-', " "), "birth_date": c.birth_date.to_string()});
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/me/activate",
        &ann,
        Some(redeem.clone()),
    )
    .await;
    assert_eq!((status, b), (StatusCode::OK, json!({"status": "linked"})));
    let (_, me) = call(&app, "GET", "/api/v1/me", &ann, None).await;
    assert_eq!(me["chart_linked"], true);

    let carol = patient(&app, "Carol", "Sun", "1990-03-04", "carol@example.org").await;
    let (status, b) = call(&app, "POST", "/api/v1/me/activate", &carol, Some(redeem)).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code_rejected")),
        "used up"
    );
}

/// The entry of the front desk's queue for `email`, if listed.
async fn queued(app: &TestApp, desk: &str, email: &str) -> Option<Value> {
    let (status, q) = call(app, "GET", "/api/v1/staff/identity-queue", desk, None).await;
    assert_eq!(status, StatusCode::OK, "{q}");
    q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["email"] == email)
        .cloned()
}

#[tokio::test]
async fn an_account_that_matches_no_chart_waits_visibly_and_the_front_desk_finds_its_chart() {
    let app = spawn_app(3).await;
    let c = chart(&app, "SYN0000002").await;
    let dob = c.birth_date.to_string();
    // Married since the chart was opened: the family name on the account is not the chart's.
    let ann = patient_of(
        &app,
        Some("demo-clinic"),
        c.name.given(),
        "Newname",
        &dob,
        "ann@example.org",
    )
    .await;
    let (status, me) = call(&app, "GET", "/api/v1/me/identity", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["state"], "waiting", "{me}");
    assert_eq!(me["clinic"]["slug"], "demo-clinic");
    assert!(
        me["clinic"]["phone"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "the patient is told whom to call: {me}"
    );
    assert!(me["since"].is_string());

    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let elsewhere = staff(
        &app,
        "riverside-family",
        "desk@riverside.example",
        StaffRole::FrontDesk,
    )
    .await;
    let entry = queued(&app, &desk, "ann@example.org")
        .await
        .expect("waiting although no chart matches exactly");
    assert_eq!(entry["candidates"], json!([]));
    assert!(entry["requested_at"].is_string(), "{entry}");
    assert!(
        queued(&app, &elsewhere, "ann@example.org").await.is_none(),
        "another clinic does not see who asked this one"
    );
    let account = entry["account_id"].as_str().unwrap().to_owned();

    // The desk searches its charts by the name on the chart and the birth date.
    let search = |name: &str, dob: &str| json!({"name": name, "birth_date": dob});
    let given = c.name.given().to_uppercase();
    let (status, found) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &desk,
        Some(search(&given, &dob)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let ids: Vec<&str> = found["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["patient_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&c.id.to_string().as_str()), "{found}");
    let history = salus_domain::audit::AccessLog::history(&app.store, c.id, None, 50)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.action == "view_demographics"
                && e.accessor.role == Some(StaffRole::FrontDesk)),
        "the search shows in the patient's access history: {history:?}"
    );
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &desk,
        Some(search("a", &dob)),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_name"))
    );
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &desk,
        Some(search(&given, "not a date")),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_birth_date"))
    );
    let (_, none) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &elsewhere,
        Some(search(&given, &dob)),
    )
    .await;
    assert_eq!(
        none["charts"],
        json!([]),
        "another clinic's charts are not searched"
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/v1/staff/chart-search",
            &ann,
            Some(search(&given, &dob))
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "patients do not search charts"
    );

    // Another clinic may not connect her; this one does, to the chart it found.
    let path = format!("/api/v1/staff/identity-queue/{account}");
    let confirm = json!({"decision": "confirm", "patient_id": c.id.to_string()});
    assert_eq!(
        call(&app, "POST", &path, &elsewhere, Some(confirm.clone()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, b) = call(&app, "POST", &path, &desk, Some(confirm)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    let (_, me) = call(&app, "GET", "/api/v1/me/identity", &ann, None).await;
    assert_eq!(me["state"], "linked");
    let (status, _) = call(&app, "GET", "/api/v1/records?kind=observation", &ann, None).await;
    assert_eq!(status, StatusCode::OK, "her records are online");
    let events = app.auth_events().await;
    assert!(
        events.iter().any(|e| e == "identity.chart_linked"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "identity.reviewed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_declined_account_sees_why_and_whom_to_call_and_can_ask_again() {
    let app = spawn_app(1).await;
    let bob = patient(&app, "Bob", "Ray", "1970-05-06", "bob@example.org").await;
    let (_, me) = call(&app, "GET", "/api/v1/me/identity", &bob, None).await;
    assert_eq!(me["state"], "no_clinic", "{me}");
    let (status, b) = call(
        &app,
        "PUT",
        "/api/v1/me/clinic",
        &bob,
        Some(json!({"clinic": "no-such-clinic"})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_clinic"))
    );
    let (status, me) = call(
        &app,
        "PUT",
        "/api/v1/me/clinic",
        &bob,
        Some(json!({"clinic": "demo-clinic"})),
    )
    .await;
    assert_eq!(
        (status, me["state"].as_str()),
        (StatusCode::OK, Some("waiting"))
    );

    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let entry = queued(&app, &desk, "bob@example.org")
        .await
        .expect("queued");
    let path = format!(
        "/api/v1/staff/identity-queue/{}",
        entry["account_id"].as_str().unwrap()
    );
    let (status, _) = call(
        &app,
        "POST",
        &path,
        &desk,
        Some(json!({"decision": "reject"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, me) = call(&app, "GET", "/api/v1/me/identity", &bob, None).await;
    assert_eq!(me["state"], "declined", "{me}");
    assert!(me["clinic"]["phone"].is_string(), "{me}");
    assert!(queued(&app, &desk, "bob@example.org").await.is_none());

    // Asking again puts him back in the queue.
    let (_, me) = call(
        &app,
        "PUT",
        "/api/v1/me/clinic",
        &bob,
        Some(json!({"clinic": "demo-clinic"})),
    )
    .await;
    assert_eq!(me["state"], "waiting");
    assert!(queued(&app, &desk, "bob@example.org").await.is_some());
}

#[tokio::test]
async fn clinicians_find_charts_by_name_and_birth_date_and_billing_finds_none() {
    let app = spawn_app(2).await;
    let c = chart(&app, "SYN0000001").await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let billing = staff(&app, "demo-clinic", "bill@example.org", StaffRole::Billing).await;
    let q = json!({"name": c.name.family(), "birth_date": c.birth_date.to_string()});
    let (status, found) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &doc,
        Some(q.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found["charts"][0]["patient_id"],
        c.id.to_string(),
        "{found}"
    );
    assert_eq!(found["charts"][0]["mrn"], "SYN0000001");
    let (status, none) = call(
        &app,
        "POST",
        "/api/v1/staff/chart-search",
        &billing,
        Some(q),
    )
    .await;
    assert_eq!(
        (status, none["charts"].clone()),
        (StatusCode::OK, json!([]))
    );
}
