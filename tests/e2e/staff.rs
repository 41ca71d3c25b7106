//! Staff administration end to end: an administrator invites, the colleague sets up their own
//! password and authenticator, and only then signs in.

use crate::auth::{code_now, post};
use crate::identity::{call, staff};
use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::json;

/// The token of the newest invitation email.
fn invitation_token(app: &TestApp) -> String {
    let mail = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.contains("/staff/setup?token="))
        .expect("an invitation email");
    mail.split("/staff/setup?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_administrator_invites_and_the_colleague_sets_up_password_and_authenticator() {
    let app = spawn_app(0).await;
    let admin = staff(
        &app,
        "demo-clinic",
        "admin@clinic.test",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let invite = json!({"email": "new.doc@clinic.test", "given_name": "Nia",
                        "family_name": "Okafor", "role": "clinician"});
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/invitations",
        &admin,
        Some(invite.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["status"], "invited");
    let token = invitation_token(&app);

    // Listed as invited; cannot sign in yet (no password of their own).
    let (_, list) = call(&app, "GET", "/api/v1/staff", &admin, None).await;
    let entry = list["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "new.doc@clinic.test")
        .unwrap()
        .clone();
    assert_eq!(
        (entry["status"].as_str(), entry["role"].as_str()),
        (Some("invited"), Some("clinician"))
    );

    let (status, b) = post(
        &app,
        "/api/v1/staff/setup/start",
        &json!({"token": "not-a-token"}),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_or_expired_token"))
    );
    let (status, setup) = post(&app, "/api/v1/staff/setup/start", &json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    assert_eq!(setup["email"], "new.doc@clinic.test");
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = setup["secret_base32"].as_str().unwrap();

    let finish =
        |password: &str, code: &str| json!({"token": token, "password": password, "code": code});
    let (status, b) = post(
        &app,
        "/api/v1/staff/setup",
        &finish("okafor tulip kettle", &code_now(&app, secret)),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password_contains_name"))
    );
    let (_, b) = post(
        &app,
        "/api/v1/staff/setup",
        &finish("tulip kettle orbit", "000000"),
    )
    .await;
    assert_eq!(b["code"], "wrong_code");
    let (status, done) = post(
        &app,
        "/api/v1/staff/setup",
        &finish("tulip kettle orbit", &code_now(&app, secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let recovery = done["recovery_codes"].as_array().unwrap();
    assert_eq!(recovery.len(), 10);
    // The link works once.
    let (_, again) = post(
        &app,
        "/api/v1/staff/setup",
        &finish("tulip kettle orbit", &code_now(&app, secret)),
    )
    .await;
    assert_eq!(again["code"], "invalid_or_expired_token");

    // Signs in with their own password and second factor (the current code was just used, so
    // a recovery code).
    let (status, b) = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "new.doc@clinic.test", "password": "tulip kettle orbit"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let (status, b) = post(
        &app,
        "/api/v1/auth/login/second-factor",
        &json!({"challenge": b["challenge"], "code": recovery[0]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let (_, me) = call(
        &app,
        "GET",
        "/api/v1/me",
        b["token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(me["role"], "clinician");

    let (_, list) = call(&app, "GET", "/api/v1/staff", &admin, None).await;
    assert!(
        list["staff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "new.doc@clinic.test" && m["status"] == "active")
    );

    // An address with an account cannot be invited again.
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/invitations",
        &admin,
        Some(invite),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
}

#[tokio::test]
async fn only_administrators_invite_or_list_staff_and_only_for_their_organisation() {
    let app = spawn_app(0).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@clinic.test",
        StaffRole::FrontDesk,
    )
    .await;
    let invite =
        json!({"email": "x@clinic.test", "given_name": "X", "family_name": "Y", "role": "billing"});
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/invitations",
        &desk,
        Some(invite.clone()),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = call(&app, "GET", "/api/v1/staff", &desk, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&app, "GET", "/api/v1/staff", "no-such-session", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another organisation's administrator does not see this organisation's staff.
    let other = staff(
        &app,
        "riverside-family",
        "admin@riverside.test",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let (_, list) = call(&app, "GET", "/api/v1/staff", &other, None).await;
    let emails: Vec<&str> = list["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@riverside.test"]);

    let bad =
        json!({"email": "not an email", "given_name": "X", "family_name": "Y", "role": "billing"});
    let (status, b) = call(&app, "POST", "/api/v1/staff/invitations", &other, Some(bad)).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_email"))
    );
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/invitations",
        &other,
        Some(json!({"email": "a@b.test"})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body")),
        "{b}"
    );
}
