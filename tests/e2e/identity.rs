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

/// A verified, signed-in patient account; answers its bearer token.
async fn patient(app: &TestApp, given: &str, family: &str, dob: &str, email: &str) -> String {
    let r = json!({"given_name": given, "family_name": family, "birth_date": dob, "email": email, "password": PASSWORD});
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

async fn chart(app: &TestApp, mrn: &str) -> salus_domain::patient::Patient {
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
    if other.birth_date != c.birth_date || other.name.family() != c.name.family() {
        assert_eq!(wrong.0, StatusCode::NOT_FOUND);
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
