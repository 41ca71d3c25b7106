//! Consent through the API: a patient invites a proxy, the invitee accepts once with the
//! invited address, the patient narrows and revokes.

use crate::identity::{call, patient_of};
use crate::records::linked_patient;
use crate::spawn_app;
use poem::http::StatusCode;
use serde_json::{Value, json};

/// Cara, an account without a record of her own.
async fn cara(app: &crate::TestApp) -> String {
    patient_of(
        app,
        None,
        "Cara",
        "Carer",
        "1990-02-03",
        "carer@example.org",
    )
    .await
}

/// The token of the invitation link in `mail`.
pub(crate) fn invitation_token(mail: &str) -> String {
    mail.split("/grants/accept?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Ann invites carer@example.org to see `kinds`; answers the token of the emailed link.
async fn invite(app: &crate::TestApp, ann: &str, kinds: &[&str]) -> String {
    let before = app.emails().len();
    let (status, b) = call(
        app,
        "POST",
        "/api/v1/grants",
        ann,
        Some(invitation("carer@example.org", kinds)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let mail = app.emails()[before..].join("\n");
    invitation_token(&mail)
}

fn invitation(email: &str, kinds: &[&str]) -> Value {
    json!({"email": email, "relationship": "my daughter",
           "scope": {"kinds": kinds, "actions": ["read"]}})
}

#[tokio::test]
async fn a_patient_invites_a_proxy_who_accepts_once_then_narrows_and_revokes_the_grant() {
    let app = spawn_app(1).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let carer = cara(&app).await;
    let bob = patient_of(&app, None, "Bob", "Other", "1970-05-06", "bob@example.org").await;

    // Refused as typed, nothing stored.
    for (body, code) in [
        (
            json!({"email": "carer@example.org", "scope": {"kinds": [], "actions": ["read"]}}),
            "invalid_kinds",
        ),
        (
            json!({"email": "carer@example.org", "scope": {"kinds": ["observation"], "actions": ["release"]}}),
            "invalid_actions",
        ),
        (
            json!({"email": "carer@example.org", "scope": {"kinds": ["observation"], "actions": ["read"], "until": "2099-01-01"}}),
            "invalid_until",
        ),
        (
            json!({"email": "not an address", "scope": {"kinds": ["observation"], "actions": ["read"]}}),
            "invalid_email",
        ),
    ] {
        let (status, b) = call(&app, "POST", "/api/v1/grants", &ann, Some(body)).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{b}"
        );
    }
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/grants",
        &carer,
        Some(invitation("x@example.org", &["observation"])),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "an account without a record grants nothing"
    );

    let emails_before = app.emails().len();
    let (status, grant) = call(
        &app,
        "POST",
        "/api/v1/grants",
        &ann,
        Some(invitation(
            "carer@example.org",
            &["observation", "medication"],
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert_eq!(grant["status"], "pending");
    assert_eq!(grant["patient_id"], chart.as_str());
    let mail = app.emails()[emails_before..].join("\n");
    let chart_name = crate::identity::chart(&app, "SYN0000000").await.name;
    assert!(mail.contains("Someone invited you"), "{mail}");
    assert!(
        !mail.contains(chart_name.family()) && !mail.contains(chart_name.given()),
        "the invitation names no patient"
    );
    let token = invitation_token(&mail);

    // Only the invited address may accept, and not the patient herself.
    for who in [&bob, &ann] {
        let (status, b) = call(
            &app,
            "POST",
            "/api/v1/grants/accept",
            who,
            Some(json!({"token": token})),
        )
        .await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("wrong_account")),
            "{b}"
        );
    }
    let (status, accepted) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "active");
    assert!(
        accepted["email"].is_null(),
        "the proxy's view leaves the invitation details out"
    );
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invitation_invalid")),
        "used once"
    );

    let (_, mine) = call(&app, "GET", "/api/v1/me/acting-for", &carer, None).await;
    assert_eq!(mine["grants"][0]["patient_id"], chart.as_str(), "{mine}");
    let id = mine["grants"][0]["id"].as_str().unwrap().to_owned();
    let (_, listed) = call(&app, "GET", "/api/v1/grants", &ann, None).await;
    assert_eq!(listed["grants"][0]["status"], "active");
    assert_eq!(listed["grants"][0]["email"], "carer@example.org");

    // Narrowed: the proxy's view shows less at once.
    let path = format!("/api/v1/grants/{id}");
    let narrow = json!({"kinds": ["medication"], "actions": ["read"]});
    let (status, b) = call_with(&app, "PATCH", &path, &carer, Some(narrow.clone())).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "the proxy cannot change it"
    );
    let (status, changed) = call_with(&app, "PATCH", &path, &ann, Some(narrow)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, mine) = call(&app, "GET", "/api/v1/me/acting-for", &carer, None).await;
    assert_eq!(mine["grants"][0]["kinds"], json!(["medication"]));

    // Revoked: gone from the proxy's list at once; once only.
    let (status, _) = call_with(&app, "DELETE", &path, &ann, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, mine) = call(&app, "GET", "/api/v1/me/acting-for", &carer, None).await;
    assert_eq!(mine["grants"], json!([]));
    let (status, b) = call_with(&app, "DELETE", &path, &ann, None).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("grant_ended"))
    );
    let (_, listed) = call(&app, "GET", "/api/v1/grants", &ann, None).await;
    assert_eq!(listed["grants"][0]["status"], "revoked");

    let events = app.auth_events().await;
    for e in [
        "consent.invited",
        "consent.accepted",
        "consent.changed",
        "consent.revoked",
    ] {
        assert!(events.iter().any(|a| a == e), "{e} in {events:?}");
    }
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let carer = cara(&app).await;
    let token = invite(&app, &ann, &["observation"]).await;
    app.advance_minutes(7 * 24 * 60 + 1);
    // The carer's session idled out meanwhile: sign in again.
    let (_, b) = crate::auth::post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "carer@example.org", "password": crate::auth::PASSWORD}),
    )
    .await;
    let carer_again = b["token"].as_str().unwrap_or(&carer).to_owned();
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer_again,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invitation_invalid")),
        "{b}"
    );
    let (_, ann_again) = crate::auth::post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": crate::auth::PASSWORD}),
    )
    .await;
    let (_, listed) = call(
        &app,
        "GET",
        "/api/v1/grants",
        ann_again["token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(listed["grants"][0]["status"], "expired");
}

/// A request with any method.
async fn call_with(
    app: &crate::TestApp,
    method: &str,
    path: &str,
    bearer: &str,
    json: Option<Value>,
) -> (StatusCode, Value) {
    let req = match method {
        "PATCH" => app.client.patch(path),
        "DELETE" => app.client.delete(path),
        _ => return call(app, method, path, bearer, json).await,
    }
    .header("authorization", format!("Bearer {bearer}"));
    let resp = match json {
        Some(j) => req.body_json(&j).send().await,
        None => req.send().await,
    };
    crate::auth::body(resp).await
}

/// A request as a proxy acting under `grant`.
async fn as_proxy(
    app: &crate::TestApp,
    path: &str,
    bearer: &str,
    grant: &str,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .get(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("x-acting-for", grant)
        .send()
        .await;
    crate::auth::body(resp).await
}

#[tokio::test]
async fn a_proxy_sees_only_what_the_grant_allows_and_a_change_or_revocation_counts_at_the_next_request()
 {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc =
        crate::identity::staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    // A result about sexual health, online at once under the demo clinic's policy.
    let (status, filed) = call(
        &app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        &doc,
        Some(json!({"kind": "lab_result", "title": "Chlamydia trachomatis DNA", "value": 0, "unit": "",
                    "sensitive": ["sexual_reproductive_health"]})),
    )
    .await;
    assert_eq!(
        (status, filed["release"].as_str()),
        (StatusCode::CREATED, Some("released")),
        "{filed}"
    );
    let labelled = filed["record"]["id"].as_str().unwrap().to_owned();

    let carer = cara(&app).await;
    let token = invite(&app, &ann, &["observation"]).await;
    let (_, accepted) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer,
        Some(json!({"token": token})),
    )
    .await;
    let grant = accepted["id"].as_str().unwrap().to_owned();

    // Without naming the grant the carer acts on no chart.
    let (status, _) = call(
        &app,
        "GET",
        "/api/v1/records?kind=observation",
        &carer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Under it: lab results, but not the labelled one, and nothing else.
    let (status, page) = as_proxy(
        &app,
        "/api/v1/records?kind=observation&limit=100",
        &carer,
        &grant,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty());
    assert!(
        !ids.contains(&labelled.as_str()),
        "a label not granted stays hidden"
    );
    let (status, _) = as_proxy(&app, &format!("/api/v1/records/{labelled}"), &carer, &grant).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/records?kind=medication",
        "/api/v1/export/fhir",
        "/api/v1/me/access-history",
    ] {
        let (status, b) = as_proxy(&app, path, &carer, &grant).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {b}");
    }

    // Narrowed to medications: the next request shows medications and no results.
    let (status, _) = call_with(
        &app,
        "PATCH",
        &format!("/api/v1/grants/{grant}"),
        &ann,
        Some(json!({"kinds": ["medication"], "actions": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        as_proxy(&app, "/api/v1/records?kind=observation", &carer, &grant)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        as_proxy(&app, "/api/v1/records?kind=medication", &carer, &grant)
            .await
            .0,
        StatusCode::OK
    );

    // Revoked: the next request is refused, and the attempt is in Ann's history.
    let (status, _) = call_with(
        &app,
        "DELETE",
        &format!("/api/v1/grants/{grant}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, b) = as_proxy(&app, "/api/v1/records?kind=medication", &carer, &grant).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant_not_in_force"))
    );
    // The carer's own history lists what they did for Ann, the refused try included.
    let (status, mine) = call(&app, "GET", "/api/v1/me/acting-history", &carer, None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = mine["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"] == "allowed" && e["action"] == "view_chart"),
        "{mine}"
    );
    assert_eq!(
        entries[0]["outcome"], "denied",
        "newest first: the refused try"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["grant_id"] == grant.as_str() && e["patient_name"].is_string())
    );
    let (status, b) = as_proxy(&app, "/api/v1/records?kind=medication", &ann, &grant).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant_not_in_force")),
        "not Ann's grant to act under"
    );
    let (_, history) = call(
        &app,
        "GET",
        "/api/v1/me/access-history?limit=200",
        &ann,
        None,
    )
    .await;
    let proxy: Vec<&Value> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_kind"] == "proxy")
        .collect();
    assert!(
        proxy
            .iter()
            .any(|e| e["outcome"] == "allowed" && e["grant_id"] == grant.as_str()),
        "{history}"
    );
    assert!(
        proxy.iter().any(|e| e["outcome"] == "denied"),
        "the refused attempt after revocation: {history}"
    );
    assert!(
        proxy.iter().all(|e| e["who"] == "Cara Carer"),
        "named: {history}"
    );
}

#[tokio::test]
async fn the_front_desk_records_a_proxy_for_a_patient_of_its_organisation_marked_as_made_by_staff()
{
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let carer = cara(&app).await;
    let desk = crate::identity::staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let doc =
        crate::identity::staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let elsewhere = crate::identity::staff(
        &app,
        "riverside-family",
        "desk@riverside.example",
        StaffRole::FrontDesk,
    )
    .await;
    let path = format!("/api/v1/staff/patients/{chart}/grants");
    let body = invitation("carer@example.org", &["observation"]);
    let (status, b) = call(&app, "POST", &path, &doc, Some(body.clone())).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "clinicians do not"
    );
    let (status, b) = call(&app, "POST", &path, &elsewhere, Some(body.clone())).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "not their chart"
    );
    let (status, b) = call(&app, "POST", &path, &ann, Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a patient uses /grants: {b}");

    let before = app.emails().len();
    let (status, grant) = call(&app, "POST", &path, &desk, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert_eq!(grant["made_by_staff"], true);
    let mail = app.emails()[before..].join("\n");
    let token = invitation_token(&mail);
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Ann sees it among her grants, as made by staff, and may end it.
    let (_, listed) = call(&app, "GET", "/api/v1/grants", &ann, None).await;
    assert_eq!(listed["grants"][0]["made_by_staff"], true, "{listed}");
    assert_eq!(listed["grants"][0]["status"], "active");
}

#[tokio::test]
async fn a_share_link_or_an_ended_grant_opens_no_operation_of_the_api() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (carer, gone) =
        crate::records::proxy_of(&app, &ann, "gone@example.org", &["observation"], &["read"]).await;
    let (status, _) = call_with(
        &app,
        "DELETE",
        &format!("/api/v1/grants/{gone}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, link) = call(
        &app,
        "POST",
        "/api/v1/share-links",
        &ann,
        Some(json!({"kinds": ["observation"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let link_token = link["url"]
        .as_str()
        .unwrap()
        .split("/share/")
        .nth(1)
        .unwrap()
        .to_owned();
    crate::logcheck::remember(&link_token);
    let link_grant = link["grant"]["id"].as_str().unwrap().to_owned();

    // Every operation of the spec that takes a session, old and new.
    let spec: Value = crate::openapi_spec(&app).await;
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"].as_array().is_none_or(Vec::is_empty) {
                continue;
            }
            // Any id will do: the session is refused before anything is looked up.
            let concrete = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "0190a5f0-0000-7000-8000-000000000000"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("/api{concrete}");
            let send = |bearer: &str, acting: Option<&str>| {
                let mut req = match method.as_str() {
                    "get" => app.client.get(&url),
                    "post" => app.client.post(&url),
                    "put" => app.client.put(&url),
                    "patch" => app.client.patch(&url),
                    "delete" => app.client.delete(&url),
                    other => panic!("a method the matrix does not know: {other}"),
                }
                .header("authorization", format!("Bearer {bearer}"));
                if let Some(g) = acting {
                    req = req.header("x-acting-for", g);
                }
                async move {
                    if matches!(method.as_str(), "post" | "put" | "patch") {
                        req.body_json(&json!({})).send().await
                    } else {
                        req.send().await
                    }
                }
            };
            let (status, b) = crate::auth::body(send(&link_token, None).await).await;
            assert_eq!(
                (status, b["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{method} {path} with a share link's token as a session"
            );
            for (who, grant) in [
                ("an ended grant", gone.as_str()),
                ("a share link's grant", link_grant.as_str()),
            ] {
                let (status, b) = crate::auth::body(send(&carer, Some(grant)).await).await;
                assert_eq!(
                    (status, b["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("grant_not_in_force")),
                    "{method} {path} acting under {who}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} operations checked");

    // A proxy in scope acts on Ann's records only: never on her grants.
    let (inside, grant) = crate::records::proxy_of(
        &app,
        &ann,
        "in@example.org",
        &["observation"],
        &["read", "export"],
    )
    .await;
    let scope = json!({"kinds": ["observation"], "actions": ["read"]});
    for (method, path, body) in [
        ("GET", "/api/v1/grants".to_owned(), None),
        (
            "POST",
            "/api/v1/grants".to_owned(),
            Some(invitation("x@example.org", &["observation"])),
        ),
        (
            "POST",
            "/api/v1/share-links".to_owned(),
            Some(json!({"kinds": ["observation"]})),
        ),
        ("PATCH", format!("/api/v1/grants/{grant}"), Some(scope)),
        ("DELETE", format!("/api/v1/grants/{grant}"), None),
    ] {
        let req = match method {
            "GET" => app.client.get(&path),
            "POST" => app.client.post(&path),
            "PATCH" => app.client.patch(&path),
            _ => app.client.delete(&path),
        }
        .header("authorization", format!("Bearer {inside}"))
        .header("x-acting-for", grant.as_str());
        let resp = match body {
            Some(b) => req.body_json(&b).send().await,
            None => req.send().await,
        };
        let (status, b) = crate::auth::body(resp).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {path} as Ann's proxy"
        );
    }
}

#[tokio::test]
async fn the_patients_own_fhir_export_carries_each_grant_in_force_as_a_consent_the_validator_accepts()
 {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let carer = cara(&app).await;
    let before = app.emails().len();
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/grants",
        &ann,
        Some(
            json!({"email": "carer@example.org", "relationship": "my daughter",
            "scope": {"kinds": ["observation", "medication"], "actions": ["read", "export"],
                      "labels": ["hiv"]}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let token = invitation_token(&app.emails()[before..].join("\n"));
    let (status, accepted) = call(
        &app,
        "POST",
        "/api/v1/grants/accept",
        &carer,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Pending (not in force yet) and a share link (in force).
    invite_only(&app, &ann, "later@example.org").await;
    let (status, link) = call(
        &app,
        "POST",
        "/api/v1/share-links",
        &ann,
        Some(json!({"kinds": ["immunization"], "recipient": "School nurse"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    crate::logcheck::remember(
        link["url"]
            .as_str()
            .unwrap()
            .split("/share/")
            .nth(1)
            .unwrap(),
    );

    let fhir = |bearer: String, acting: Option<String>| {
        let app = &app;
        async move {
            let mut req = app
                .client
                .get("/api/v1/export/fhir")
                .header("authorization", format!("Bearer {bearer}"));
            if let Some(g) = acting {
                req = req.header("x-acting-for", g);
            }
            let resp = req.send().await.0;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.into_body().into_vec().await.unwrap()
        }
    };
    let own = fhir(ann.clone(), None).await;
    let bundle: Value = serde_json::from_slice(&own).unwrap();
    let consents: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Consent")
        .collect();
    assert_eq!(
        consents.len(),
        2,
        "the proxy and the share link, not the pending invitation"
    );
    let proxy = consents
        .iter()
        .find(|c| c["id"] == accepted["id"])
        .expect("the proxy's grant");
    assert_eq!(proxy["scope"]["coding"][0]["code"], "patient-privacy");
    assert_eq!(proxy["status"], "active");
    let provision = &proxy["provision"];
    assert_eq!(
        provision["actor"][0]["reference"]["display"],
        "carer@example.org (my daughter)"
    );
    let classes: Vec<&str> = provision["class"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(classes, ["Observation", "MedicationRequest"]);
    assert_eq!(provision["securityLabel"][0]["code"], "HIV");
    assert!(provision["period"]["start"].is_string() && provision["period"]["end"].is_string());
    assert!(
        provision["action"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["coding"][0]["code"] == "disclose"),
        "the grant allows downloading"
    );

    // The proxy's export of Ann's record carries nobody's consents.
    // It holds exactly what the grant covers: lab results and medications.
    let theirs = fhir(carer, accepted["id"].as_str().map(str::to_owned)).await;
    let theirs: Value = serde_json::from_slice(&theirs).unwrap();
    let types: std::collections::BTreeSet<&str> = theirs["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert_eq!(
        types,
        ["MedicationRequest", "Observation", "Patient"].into(),
        "the kinds granted, and no Consent"
    );

    if let Some(python) = salus_tests::fhir_validator() {
        match salus_tests::validate_fhir(&python, &[&own]) {
            Ok(report) => eprintln!("{report}"),
            Err(report) => panic!("the FHIR validator refused the export:\n{report}"),
        }
    }
}

/// Ann invites `email` (who does not accept).
async fn invite_only(app: &crate::TestApp, ann: &str, email: &str) {
    let (status, b) = call(
        app,
        "POST",
        "/api/v1/grants",
        ann,
        Some(invitation(email, &["observation"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
}
