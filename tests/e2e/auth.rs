//! Accounts end to end: the whole journey, enumeration, throttling, single-use tokens.

use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "tulip kettle orbit";

fn registration(email: &str) -> Value {
    json!({"given_name": "Ann", "family_name": "Lee", "birth_date": "1980-01-02",
           "email": email, "password": PASSWORD})
}

pub(crate) async fn body(resp: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    let text = resp.0.into_body().into_string().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

pub(crate) async fn post(app: &TestApp, path: &str, json: &Value) -> (StatusCode, Value) {
    body(app.client.post(path).body_json(json).send().await).await
}

/// The token in the newest verification email.
pub(crate) fn token_from_outbox(app: &TestApp) -> String {
    let mail = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.contains("/verify?token="))
        .expect("a verification email");
    assert!(
        !mail.contains("1980"),
        "emails carry no personal or health data"
    );
    mail.split("/verify?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn register_verify_sign_in_me_sign_out_and_the_old_token_is_refused() {
    // Production hashing: the stored parameters are checked below.
    let app = crate::spawn_app_with(0, |c| c.cheap_password_hashing_for_tests = false).await;
    let (status, b) = post(
        &app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    assert_eq!(
        (status, b),
        (StatusCode::ACCEPTED, json!({"status": "check_your_email"}))
    );

    // Signing in before verifying is refused with a clear message.
    let login = json!({"email": "ann@example.org", "password": PASSWORD});
    let (status, b) = post(&app, "/api/v1/auth/login", &login).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(b["code"], "email_not_verified");

    let token = token_from_outbox(&app);
    let (status, b) = post(&app, "/api/v1/auth/verify", &json!({"token": token})).await;
    assert_eq!((status, b), (StatusCode::OK, json!({"status": "verified"})));
    // Single use.
    let (status, b) = post(&app, "/api/v1/auth/verify", &json!({"token": token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(b["code"], "invalid_or_expired_token");

    let (status, b) = post(&app, "/api/v1/auth/login", &login).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["idle_timeout_secs"], 900);
    let bearer = b["token"].as_str().unwrap().to_owned();

    let me = app
        .client
        .get("/api/v1/me")
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await;
    me.assert_header("cache-control", "no-store");
    let (status, b) = body(me).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b["email"], "ann@example.org");
    assert_eq!(b["given_name"], "Ann");
    assert_eq!(b["role"], "patient");
    assert_eq!(b["chart_linked"], false);

    let out = app
        .client
        .post("/api/v1/auth/logout")
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await;
    out.assert_status(StatusCode::NO_CONTENT);
    let (status, b) = body(
        app.client
            .get("/api/v1/me")
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, b["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );

    // The password is stored as argon2id with the required parameters, never in clear.
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .store
        .connection()
        .query_one_raw(Statement::from_string(
            app.store.backend(),
            "SELECT password_hash FROM accounts",
        ))
        .await
        .unwrap()
        .unwrap();
    let phc: String = row.try_get("", "password_hash").unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");

    // Every step was audited, without secrets.
    let actions = app.auth_events().await;
    for expected in [
        "auth.registered",
        "auth.sign_in_unverified",
        "auth.email_verified",
        "auth.email_verification_failed",
        "auth.sign_in",
        "auth.signed_out",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn registration_does_not_reveal_known_emails() {
    let app = spawn_app(0).await;
    let first = post(
        &app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    let again = post(
        &app,
        "/api/v1/auth/register",
        &registration("ANN@example.org"),
    )
    .await;
    assert_eq!(first, again, "same status and body");
    let mails = app.emails();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].contains("tried to create a patient portal account"),
        "the owner is told instead"
    );

    // Unknown email and wrong password: the same answer.
    let token = token_from_outbox(&app);
    post(&app, "/api/v1/auth/verify", &json!({"token": token})).await;
    let unknown = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "nobody@example.org", "password": PASSWORD}),
    )
    .await;
    let wrong = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": "not the password"}),
    )
    .await;
    assert_eq!(unknown, wrong);
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_reason() {
    let app = spawn_app(0).await;
    for (password, code) in [
        ("short", "password_too_short"),
        ("qwerty123456", "password_common"),
        ("ann-lee-forever", "password_contains_name"),
        ("born 1980-01-02 ok", "password_contains_birth_date"),
    ] {
        let mut r = registration("ann@example.org");
        r["password"] = json!(password);
        let (status, b) = post(&app, "/api/v1/auth/register", &r).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{password}"
        );
    }
    let mut r = registration("not an email");
    r["password"] = json!(PASSWORD);
    assert_eq!(
        post(&app, "/api/v1/auth/register", &r).await.1["code"],
        "invalid_email"
    );
    assert!(app.emails().is_empty(), "nothing was registered");
}

#[tokio::test]
async fn repeated_failures_slow_down_then_lock_the_account() {
    let app = spawn_app(0).await;
    post(
        &app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    post(
        &app,
        "/api/v1/auth/verify",
        &json!({"token": token_from_outbox(&app)}),
    )
    .await;
    let wrong = json!({"email": "ann@example.org", "password": "not the password"});
    let (status, _) = post(&app, "/api/v1/auth/login", &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Straight away, the next attempt must wait (even with the right password).
    let right = json!({"email": "ann@example.org", "password": PASSWORD});
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .body_json(&right)
        .send()
        .await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    resp.assert_header_exist("retry-after");
    let (_, b) = body(resp).await;
    assert_eq!(b["code"], "too_many_attempts");
}

#[tokio::test]
async fn twenty_concurrent_uses_of_one_token_succeed_exactly_once() {
    let app = spawn_app(0).await;
    post(
        &app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    let token = token_from_outbox(&app);
    let request = json!({"token": token});
    let attempts = (0..20).map(|_| post(&app, "/api/v1/auth/verify", &request));
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (1, 19));
}

/// A verified account "ann@example.org" with password [`PASSWORD`].
pub(crate) async fn verified_account(app: &TestApp) {
    post(
        app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    let (status, _) = post(
        app,
        "/api/v1/auth/verify",
        &json!({"token": token_from_outbox(app)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

async fn sign_in(app: &TestApp, password: &str) -> (StatusCode, Option<String>) {
    let (status, b) = post(
        app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": password}),
    )
    .await;
    (status, b["token"].as_str().map(str::to_owned))
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get("/api/v1/me")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .0
        .status()
}

#[tokio::test]
async fn resending_the_confirmation_is_throttled_and_does_not_reveal_accounts() {
    let app = spawn_app(0).await;
    post(
        &app,
        "/api/v1/auth/register",
        &registration("ann@example.org"),
    )
    .await;
    let known = post(
        &app,
        "/api/v1/auth/resend-verification",
        &json!({"email": "ann@example.org"}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/auth/resend-verification",
        &json!({"email": "bob@example.org"}),
    )
    .await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, StatusCode::ACCEPTED);
    // The registration email was sent moments ago: no second one within the minute.
    assert_eq!(app.emails().len(), 1);
}

#[tokio::test]
async fn password_reset_ends_sessions_and_the_link_works_once() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, old_session) = sign_in(&app, PASSWORD).await;
    let old_session = old_session.unwrap();

    let known = post(
        &app,
        "/api/v1/auth/password-reset",
        &json!({"email": "ann@example.org"}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/auth/password-reset",
        &json!({"email": "bob@example.org"}),
    )
    .await;
    assert_eq!(known, unknown, "no enumeration");
    let mail = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.contains("/reset?token="))
        .expect("a reset email");
    let token = mail
        .split("/reset?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // A refused password leaves the link usable.
    let (status, b) = post(
        &app,
        "/api/v1/auth/password-reset/confirm",
        &json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password_too_short"))
    );
    let new_password = "maple lantern quartz";
    let (status, b) = post(
        &app,
        "/api/v1/auth/password-reset/confirm",
        &json!({"token": token, "password": new_password}),
    )
    .await;
    assert_eq!(
        (status, b),
        (StatusCode::OK, json!({"status": "password_changed"}))
    );
    let (status, b) = post(
        &app,
        "/api/v1/auth/password-reset/confirm",
        &json!({"token": token, "password": new_password}),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_or_expired_token"))
    );

    assert_eq!(
        me_status(&app, &old_session).await,
        StatusCode::UNAUTHORIZED,
        "sessions ended"
    );
    assert!(
        app.emails()
            .last()
            .unwrap()
            .contains("password of your patient portal account was just changed")
    );
    assert_eq!(sign_in(&app, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, a) = sign_in(&app, PASSWORD).await;
    let (_, b) = sign_in(&app, PASSWORD).await;
    let (a, b) = (a.unwrap(), b.unwrap());

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let wrong = app
        .client
        .post("/api/v1/me/password")
        .header("authorization", format!("Bearer {a}"))
        .body_json(&change("not it at all", "maple lantern quartz"))
        .send()
        .await;
    let (status, body_) = body(wrong).await;
    assert_eq!(
        (status, body_["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("wrong_current_password"))
    );

    let ok = app
        .client
        .post("/api/v1/me/password")
        .header("authorization", format!("Bearer {a}"))
        .body_json(&change(PASSWORD, "maple lantern quartz"))
        .send()
        .await;
    ok.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        me_status(&app, &a).await,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        me_status(&app, &b).await,
        StatusCode::UNAUTHORIZED,
        "the other one ended"
    );
}

#[tokio::test]
async fn sessions_can_be_listed_and_ended_but_only_your_own() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, a) = sign_in(&app, PASSWORD).await;
    let (_, b) = sign_in(&app, PASSWORD).await;
    let (_, c) = sign_in(&app, PASSWORD).await;
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let auth = |t: &str| format!("Bearer {t}");

    let (status, list) = body(
        app.client
            .get("/api/v1/me/sessions")
            .header("authorization", auth(&a))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let gone = app
        .client
        .delete(format!("/api/v1/me/sessions/{other}"))
        .header("authorization", auth(&a))
        .send()
        .await;
    gone.assert_status(StatusCode::NO_CONTENT);
    let again = app
        .client
        .delete(format!("/api/v1/me/sessions/{other}"))
        .header("authorization", auth(&a))
        .send()
        .await;
    again.assert_status(StatusCode::NOT_FOUND);
    let bogus = app
        .client
        .delete("/api/v1/me/sessions/not-an-id")
        .header("authorization", auth(&a))
        .send()
        .await;
    bogus.assert_status(StatusCode::NOT_FOUND);

    let (status, n) = body(
        app.client
            .post("/api/v1/me/sessions/revoke-others")
            .header("authorization", auth(&a))
            .send()
            .await,
    )
    .await;
    assert_eq!((status, n), (StatusCode::OK, json!({"revoked": 1})));
    assert_eq!(me_status(&app, &a).await, StatusCode::OK);
    assert_eq!(me_status(&app, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &c).await, StatusCode::UNAUTHORIZED);

    // Another account cannot end Ann's session.
    post(
        &app,
        "/api/v1/auth/register",
        &json!({"given_name": "Bob", "family_name": "Ray", "birth_date": "1970-05-06",
        "email": "bob@example.org", "password": PASSWORD}),
    )
    .await;
    post(
        &app,
        "/api/v1/auth/verify",
        &json!({"token": token_from_outbox(&app)}),
    )
    .await;
    let (_, bob) = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "bob@example.org", "password": PASSWORD}),
    )
    .await;
    let bob = bob["token"].as_str().unwrap().to_owned();
    let (_, list) = body(
        app.client
            .get("/api/v1/me/sessions")
            .header("authorization", auth(&a))
            .send()
            .await,
    )
    .await;
    let ann_session = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let foreign = app
        .client
        .delete(format!("/api/v1/me/sessions/{ann_session}"))
        .header("authorization", auth(&bob))
        .send()
        .await;
    foreign.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(me_status(&app, &a).await, StatusCode::OK);
}

/// The current 6-digit code of a base32 TOTP secret, as an authenticator app shows it.
/// The authenticator code for the app's clock (time in the tests moves only through it).
pub(crate) fn code_now(app: &TestApp, secret_base32: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    let totp =
        totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes, None, "x".into()).unwrap();
    let now = u64::try_from(salus_domain::Clock::now(app.clock.as_ref()).timestamp()).unwrap();
    totp.generate(now)
}

#[tokio::test]
async fn staff_sign_in_needs_the_totp_code_which_works_once() {
    use salus_domain::account::{NewStaff, SecretText, StaffRole};
    let app = spawn_app(0).await;
    let auth = app.auth();
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let creds = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse("doc@example.org").unwrap(),
                name: salus_domain::patient::PersonName::new("Mira", "Osei").unwrap(),
                role: StaffRole::Clinician,
                organization: org.id,
                password: SecretText::new(PASSWORD),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(creds.recovery_codes.len(), 10);
    let login = json!({"email": "doc@example.org", "password": PASSWORD});

    let (status, b) = post(&app, "/api/v1/auth/login", &login).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["second_factor"], "totp");
    assert!(b.get("token").is_none(), "no session before the code");
    let code = code_now(&app, &creds.totp.secret_base32);
    let (status, signed) = post(
        &app,
        "/api/v1/auth/login/second-factor",
        &json!({"challenge": b["challenge"], "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let token = signed["token"].as_str().unwrap();
    let (_, me) = body(
        app.client
            .get("/api/v1/me")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(me["role"], "clinician");

    // A recovery code works instead of the app, once.
    let (_, b) = post(&app, "/api/v1/auth/login", &login).await;
    let recovery = creds.recovery_codes[3].expose().to_lowercase();
    let (status, _) = post(
        &app,
        "/api/v1/auth/login/second-factor",
        &json!({"challenge": b["challenge"], "code": recovery}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The same TOTP code again (same time step): refused as a replay.
    let (_, b) = post(&app, "/api/v1/auth/login", &login).await;
    let (status, b) = post(
        &app,
        "/api/v1/auth/login/second-factor",
        &json!({"challenge": b["challenge"], "code": code}),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn a_patient_can_add_an_authenticator_app() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, token) = sign_in(&app, PASSWORD).await;
    let bearer = format!("Bearer {}", token.unwrap());

    let (status, e) = body(
        app.client
            .post("/api/v1/me/totp")
            .header("authorization", &bearer)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Salus:ann%40example.org?")
    );
    let secret = e["secret"].as_str().unwrap().to_owned();

    let wrong = app
        .client
        .post("/api/v1/me/totp/confirm")
        .header("authorization", &bearer)
        .body_json(&json!({"code": "000000"}))
        .send()
        .await;
    let (status, b) = body(wrong).await;
    if code_now(&app, &secret) != "000000" {
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("wrong_code"))
        );
    }
    let ok = app
        .client
        .post("/api/v1/me/totp/confirm")
        .header("authorization", &bearer)
        .body_json(&json!({"code": code_now(&app, &secret)}))
        .send()
        .await;
    let (status, codes) = body(ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);

    // From now on sign-in asks for a code.
    let (status, b) = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(b["second_factor"], "totp");
    let again = app
        .client
        .post("/api/v1/me/totp")
        .header("authorization", &bearer)
        .send()
        .await;
    again.assert_status(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_saturated_hasher_answers_503_with_retry_after_instead_of_queueing() {
    let app = crate::spawn_app_with(0, |cfg| {
        cfg.hash_workers = 1;
        cfg.hash_queue = 1;
        // Real hashing work, so the five requests really wait for the one worker.
        cfg.cheap_password_hashing_for_tests = false;
    })
    .await;
    let requests: Vec<Value> = (0..5)
        .map(|i| registration(&format!("p{i}@example.org")))
        .collect();
    let sent = requests
        .iter()
        .map(|r| app.client.post("/api/v1/auth/register").body_json(r).send());
    let responses = futures_util::future::join_all(sent).await;
    let mut busy = 0;
    for resp in responses {
        if resp.0.status() == StatusCode::SERVICE_UNAVAILABLE {
            busy += 1;
            resp.assert_header("retry-after", "1");
            let (_, b) = body(resp).await;
            assert_eq!(b["code"], "busy");
        } else {
            assert_eq!(resp.0.status(), StatusCode::ACCEPTED);
        }
    }
    assert!(
        busy >= 2,
        "with one hashing slot and one waiting place, the other concurrent sign-ups are turned away"
    );
}

#[tokio::test]
async fn reauthentication_checks_the_password() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, token) = sign_in(&app, PASSWORD).await;
    let bearer = format!("Bearer {}", token.unwrap());
    let reauth = |password: &str| {
        app.client
            .post("/api/v1/me/reauthenticate")
            .header("authorization", &bearer)
            .body_json(&json!({"password": password}))
            .send()
    };
    reauth(PASSWORD).await.assert_status(StatusCode::NO_CONTENT);
    let (status, b) = body(reauth("not it at all").await).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    let (status, b) = body(
        app.client
            .post("/api/v1/me/reauthenticate")
            .body_json(&json!({"password": PASSWORD}))
            .send()
            .await,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "no session"
    );
}

/// Medians of two kinds of request timed in alternation, so that load from other tests
/// running at the same time falls on both alike.
async fn paired_medians<A, B, FA, FB>(
    n: usize,
    mut a: FA,
    mut b: FB,
) -> (std::time::Duration, std::time::Duration)
where
    FA: FnMut(usize) -> A,
    FB: FnMut(usize) -> B,
    A: std::future::Future<Output = ()>,
    B: std::future::Future<Output = ()>,
{
    let (mut ta, mut tb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = std::time::Instant::now();
        a(i).await;
        ta.push(t.elapsed());
        let t = std::time::Instant::now();
        b(i).await;
        tb.push(t.elapsed());
    }
    ta.sort();
    tb.sort();
    (ta[n / 2], tb[n / 2])
}

/// Registering a known address and a new one, and signing in with an unknown address and a
/// wrong password, take about the same time: both sides of each pair do the same password
/// hashing. The tolerance is wide (a factor of 3) because the machine is shared and other
/// tests run alongside; a skipped hash would show as a factor of ten or more.
#[tokio::test]
async fn timing_does_not_tell_known_from_unknown_addresses() {
    const N: usize = 7;
    // With the production hashing cost: it is what makes both sides take the same time.
    let app = crate::spawn_app_with(0, |c| c.cheap_password_hashing_for_tests = false).await;
    for i in 0..N {
        let email = format!("known{i}@example.org");
        post(&app, "/api/v1/auth/register", &registration(&email)).await;
        post(
            &app,
            "/api/v1/auth/verify",
            &json!({"token": token_from_outbox(&app)}),
        )
        .await;
    }
    let app = &app;
    let register = |email: String| async move {
        assert_eq!(
            post(app, "/api/v1/auth/register", &registration(&email))
                .await
                .0,
            StatusCode::ACCEPTED
        );
    };
    let (new, known) = paired_medians(
        N,
        |i| register(format!("new{i}@example.org")),
        |i| register(format!("known{i}@example.org")),
    )
    .await;
    let ratio = known.as_secs_f64() / new.as_secs_f64();
    assert!(
        (0.33..=3.0).contains(&ratio),
        "register: known {known:?} vs new {new:?}"
    );

    let login = |email: String, password: &'static str| async move {
        let l = json!({"email": email, "password": password});
        assert_eq!(
            post(app, "/api/v1/auth/login", &l).await.0,
            StatusCode::UNAUTHORIZED
        );
    };
    // A different known account each time, so no account's throttling delay kicks in.
    let (unknown, wrong) = paired_medians(
        N,
        |i| login(format!("nobody{i}@example.org"), PASSWORD),
        |i| login(format!("known{i}@example.org"), "not the password"),
    )
    .await;
    let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.33..=3.0).contains(&ratio),
        "login: wrong password {wrong:?} vs unknown {unknown:?}"
    );
}

#[tokio::test]
async fn the_strength_meter_uses_the_registration_rules() {
    let app = spawn_app(0).await;
    let check = |password: &str, extra: Value| {
        let mut body = json!({"password": password});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let (status, strong) = post(
        &app,
        "/api/v1/password-check",
        &check("tulip kettle orbit canyon", json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(strong["acceptable"], true);
    assert!(strong["score"].as_u64().unwrap() >= 3, "{strong}");
    assert!(strong["problem_code"].is_null());

    let (_, common) = post(
        &app,
        "/api/v1/password-check",
        &check("password1234", json!({})),
    )
    .await;
    assert_eq!(common["acceptable"], false);
    assert_eq!(common["problem_code"], "password_common");
    assert_eq!(common["score"], 0);
    assert_eq!(common["strength"], "very weak");

    let (_, short) = post(&app, "/api/v1/password-check", &check("kettle", json!({}))).await;
    assert_eq!(short["problem_code"], "password_too_short");

    // What the person typed about themselves counts against the password.
    let me = json!({"given_name": "Ann", "family_name": "Lee",
                    "email": "zorbit@example.org", "birth_date": "1980-01-02"});
    let (_, named) = post(
        &app,
        "/api/v1/password-check",
        &check("zorbit kettle orbit", me.clone()),
    )
    .await;
    assert_eq!(named["problem_code"], "password_contains_email");
    let (_, dated) = post(
        &app,
        "/api/v1/password-check",
        &check("tulip 19800102 orbit", me),
    )
    .await;
    assert_eq!(dated["problem_code"], "password_contains_birth_date");

    let (status, bad) = post(
        &app,
        "/api/v1/password-check",
        &check("tulip kettle orbit", json!({"birth_date": "02/01/1980"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["code"], "invalid_birth_date");
}

/// The newest email sent to `to`.
fn mail_to(app: &TestApp, to: &str) -> String {
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.contains(&format!("To: {to}")))
        .unwrap_or_else(|| panic!("an email to {to}"))
}

#[tokio::test]
async fn changing_the_email_needs_the_password_and_a_link_from_the_new_inbox() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let (_, token) = sign_in(&app, PASSWORD).await;
    let token = token.unwrap();
    let change = |new_email: &str, password: &str| {
        let req = app
            .client
            .post("/api/v1/me/email")
            .header("authorization", format!("Bearer {token}"))
            .body_json(&json!({"new_email": new_email, "password": password}));
        async move { body(req.send().await).await }
    };

    let (_, b) = change("ANN@example.org", PASSWORD).await;
    assert_eq!(b["code"], "same_address");
    let (_, b) = change("not an address", PASSWORD).await;
    assert_eq!(b["code"], "invalid_email");

    let (status, b) = change("ann.lee@example.net", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let (status, b) = change("ann.lee@example.net", PASSWORD).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_soon"))
    );

    let old_notice = mail_to(&app, "ann@example.org");
    assert!(
        old_notice.contains("asked to change its email address"),
        "{old_notice}"
    );
    assert!(
        !old_notice.contains("ann.lee@example.net"),
        "the notice does not help an attacker"
    );
    let link = mail_to(&app, "ann.lee@example.net");
    let confirm_token = link
        .split("/account/email/confirm?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // Until confirmed, the old address still signs in.
    assert_eq!(sign_in(&app, PASSWORD).await.0, StatusCode::OK);
    let (status, b) = post(
        &app,
        "/api/v1/me/email/confirm",
        &json!({"token": confirm_token}),
    )
    .await;
    assert_eq!(
        (status, b["status"].as_str()),
        (StatusCode::OK, Some("changed"))
    );
    let (status, _) = post(
        &app,
        "/api/v1/me/email/confirm",
        &json!({"token": confirm_token}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the link works once");
    let changed = mail_to(&app, "ann@example.org");
    assert!(
        changed.contains("now signs in with a different email address"),
        "{changed}"
    );

    assert_eq!(sign_in(&app, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann.lee@example.net", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn moving_to_an_address_with_an_account_tells_its_owner_and_answers_the_same() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    post(
        &app,
        "/api/v1/auth/register",
        &registration("bo@example.org"),
    )
    .await;
    let token = sign_in(&app, PASSWORD).await.1.unwrap();
    let resp = app
        .client
        .post("/api/v1/me/email")
        .header("authorization", format!("Bearer {token}"))
        .body_json(&json!({"new_email": "bo@example.org", "password": PASSWORD}))
        .send()
        .await;
    let (status, b) = body(resp).await;
    assert_eq!(
        (status, b["status"].as_str()),
        (StatusCode::ACCEPTED, Some("check_your_email"))
    );
    let notice = mail_to(&app, "bo@example.org");
    assert!(notice.contains("already has an account"), "{notice}");
    assert!(
        !notice.contains("/account/email/confirm"),
        "no link that could take the address"
    );

    // A wrong password refuses the change (and counts as a failed sign-in).
    let resp = app
        .client
        .post("/api/v1/me/email")
        .header("authorization", format!("Bearer {token}"))
        .body_json(&json!({"new_email": "ann.lee@example.net", "password": "not the password"}))
        .send()
        .await;
    let (status, b) = body(resp).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("wrong_password"))
    );
    assert!(
        !app.emails()
            .iter()
            .any(|m| m.contains("To: ann.lee@example.net"))
    );
}

/// Time in the end-to-end suite moves only through the app's clock: a throttling delay ends
/// when the clock passes it, a session ends after 15 idle minutes, and nothing depends on how
/// fast the machine runs the requests.
#[tokio::test]
async fn throttling_and_idle_sessions_follow_the_apps_clock() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let wrong = json!({"email": "ann@example.org", "password": "not the password"});
    assert_eq!(
        post(&app, "/api/v1/auth/login", &wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    // However long the machine takes, the clock has not moved: the delay still holds.
    assert_eq!(
        post(&app, "/api/v1/auth/login", &wrong).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock.advance(chrono::Duration::seconds(2));
    let (status, token) = sign_in(&app, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the one-second delay is over");
    let token = token.unwrap();

    app.advance_minutes(14);
    assert_eq!(
        me_status(&app, &token).await,
        StatusCode::OK,
        "used within 15 minutes"
    );
    app.advance_minutes(14);
    assert_eq!(
        me_status(&app, &token).await,
        StatusCode::OK,
        "each use counts"
    );
    app.advance_minutes(16);
    assert_eq!(
        me_status(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "16 idle minutes end the session"
    );
}

#[tokio::test]
async fn the_authenticator_is_turned_off_only_by_patients_who_have_one_and_sessions_are_named() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        )
        .body_json(&json!({"email": "ann@example.org", "password": "tulip kettle orbit"}))
        .send()
        .await;
    let (_, b) = body(resp).await;
    let ann = b["token"].as_str().unwrap().to_owned();
    let (status, sessions) =
        crate::identity::call(&app, "GET", "/api/v1/me/sessions", &ann, None).await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    assert_eq!(sessions["sessions"][0]["device"], "Safari on iPhone");

    let delete = |token: String| {
        let app = &app;
        async move {
            body(
                app.client
                    .delete("/api/v1/me/totp")
                    .header("authorization", format!("Bearer {token}"))
                    .send()
                    .await,
            )
            .await
        }
    };
    let (status, b) = delete(ann.clone()).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_second_factor"))
    );
    let (status, b) =
        crate::identity::call(&app, "POST", "/api/v1/me/totp/recovery-codes", &ann, None).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_second_factor"))
    );
    let doc =
        crate::identity::staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let (status, b) = delete(doc.clone()).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("second_factor_required")),
        "staff keep their authenticator"
    );
    let (status, b) =
        crate::identity::call(&app, "POST", "/api/v1/me/totp/recovery-codes", &doc, None).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["recovery_codes"].as_array().unwrap().len(), 10);
    // Later than the re-authentication window, both need the password again.
    app.advance_minutes(6);
    let (status, b) =
        crate::identity::call(&app, "POST", "/api/v1/me/totp/recovery-codes", &doc, None).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("reauthentication_required"))
    );
}
