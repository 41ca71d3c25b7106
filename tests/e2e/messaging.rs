//! Messages through the API: pools set up by the administrator, a patient's conversation
//! answered from the pool's inbox, read receipts, claims, closing, idempotent sends, the
//! daily limit, proxies with and without the messaging grant, and the audit trail.

use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::spawn_app_with;
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::{Value, json};

/// The account id of a signed-in session.
async fn id_of(app: &crate::TestApp, bearer: &str) -> String {
    let (_, me) = call(app, "GET", "/api/v1/me", bearer, None).await;
    me["id"].as_str().unwrap().to_owned()
}

/// A send with an `Idempotency-Key`.
async fn send_keyed(
    app: &crate::TestApp,
    path: &str,
    bearer: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("idempotency-key", key)
        .body_json(&body)
        .send()
        .await;
    crate::auth::body(resp).await
}

/// What staff did in a patient's access history: (action, outcome) pairs, and the history.
async fn staff_in_history(app: &crate::TestApp, patient: &str) -> (Vec<(String, String)>, Value) {
    let (_, history) = call(app, "GET", "/api/v1/me/access-history", patient, None).await;
    let actions = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_kind"] == "staff")
        .filter_map(|e| {
            Some((
                e["action"].as_str()?.to_owned(),
                e["outcome"].as_str()?.to_owned(),
            ))
        })
        .collect();
    (actions, history)
}

fn has(actions: &[(String, String)], action: &str, outcome: &str) -> bool {
    actions.iter().any(|(a, o)| a == action && o == outcome)
}

/// The cast of the messaging tests: two patients with charts (Ann, Bo), an administrator, a
/// clinician who answers the "Primary care" pool and a front desk clerk who does not.
pub(crate) struct Cast {
    pub(crate) ann: String,
    pub(crate) bo: String,
    pub(crate) admin: String,
    pub(crate) doc: String,
    pub(crate) clerk: String,
    pub(crate) pool: String,
}

pub(crate) async fn cast(app: &crate::TestApp) -> Cast {
    let (ann, _) = linked_patient(app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(app, "SYN0000001", "bo@example.org").await;
    let admin = staff(
        app,
        "demo-clinic",
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let doc = staff(app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let clerk = staff(
        app,
        "demo-clinic",
        "clerk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let doc_id = id_of(app, &doc).await;
    let (_, pool) = call(
        app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(json!({"name": "Primary care", "answer_days": 2, "staff_ids": [doc_id]})),
    )
    .await;
    let pool = pool["id"].as_str().unwrap().to_owned();
    Cast {
        ann,
        bo,
        admin,
        doc,
        clerk,
        pool,
    }
}

#[tokio::test]
async fn a_patient_writes_to_a_care_pool_whose_staff_answer_with_receipts_claims_and_closing() {
    let app = spawn_app_with(2, |c| c.threads_per_day = 3).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let admin = staff(
        &app,
        "demo-clinic",
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let billing = staff(&app, "demo-clinic", "bill@example.org", StaffRole::Billing).await;
    let elsewhere = staff(
        &app,
        "riverside-family",
        "doc@riverside.example",
        StaffRole::Clinician,
    )
    .await;
    let (doc_id, billing_id) = (id_of(&app, &doc).await, id_of(&app, &billing).await);

    // The administrator sets up two teams; nobody else may.
    let primary = json!({"name": "Primary care", "answer_days": 2, "staff_ids": [doc_id]});
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &doc,
        Some(primary.clone()),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, pool) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(primary.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    let (status, b) = call(&app, "POST", "/api/v1/staff/pools", &admin, Some(primary)).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("pool_name_taken"))
    );
    let elsewhere_id = id_of(&app, &elsewhere).await;
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(json!({"name": "Other", "answer_days": 1, "staff_ids": [elsewhere_id]})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_in_pool")),
        "staff of another clinic"
    );
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(json!({"name": "Billing", "answer_days": 5, "staff_ids": [billing_id]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let pool_id = pool["id"].as_str().unwrap().to_owned();

    // Ann sees the teams and writes; a retry with the same key stores nothing new.
    let (status, pools) = call(&app, "GET", "/api/v1/pools", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pools["pools"].as_array().unwrap().len(), 2, "{pools}");
    let first = json!({"pool_id": pool_id, "subject": "Dizzy since the new tablets",
                       "body": "Hello,\nI feel dizzy in the mornings.\n\nAnn"});
    let (status, sent) = send_keyed(&app, "/api/v1/threads", &ann, "key-1", first.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let thread = sent["thread"]["id"].as_str().unwrap().to_owned();
    let (status, again) = send_keyed(&app, "/api/v1/threads", &ann, "key-1", first.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        again["thread"]["id"], sent["thread"]["id"],
        "the first answer"
    );
    assert_eq!(again["message"]["id"], sent["message"]["id"]);
    let other = json!({"pool_id": pool_id, "subject": "Something else", "body": "Other text"});
    let (status, b) = send_keyed(&app, "/api/v1/threads", &ann, "key-1", other).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    let (_, mine) = call(&app, "GET", "/api/v1/threads", &ann, None).await;
    assert_eq!(
        mine["threads"].as_array().unwrap().len(),
        1,
        "stored once: {mine}"
    );
    for (body, code) in [
        (
            json!({"pool_id": pool_id, "subject": "", "body": "x"}),
            "invalid_subject",
        ),
        (
            json!({"pool_id": pool_id, "subject": "x", "body": " "}),
            "invalid_body",
        ),
        (
            json!({"pool_id": pool_id, "subject": "x", "body": "a".repeat(10_001)}),
            "invalid_body",
        ),
        (
            json!({"pool_id": thread, "subject": "x", "body": "x"}),
            "invalid_pool",
        ),
    ] {
        let (status, b) = call(&app, "POST", "/api/v1/threads", &ann, Some(body)).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }

    // Not Bo's, not another team's, not another clinic's.
    let path = format!("/api/v1/threads/{thread}");
    for who in [&bo, &billing, &elsewhere] {
        let (status, _) = call(&app, "GET", &path, who, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, inbox) = call(&app, "GET", "/api/v1/staff/inbox?state=new", &billing, None).await;
    assert_eq!(inbox["threads"], json!([]), "the billing team's inbox");

    // The doctor's inbox: new, unread; opening it is Ann's read receipt.
    let (status, inbox) = call(&app, "GET", "/api/v1/staff/inbox?state=new", &doc, None).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["threads"][0]["id"], thread.as_str());
    assert_eq!(inbox["threads"][0]["unread"], 1);
    assert_eq!(
        (inbox["new"].as_u64(), inbox["unread"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(inbox["threads"][0]["patient_name"].is_string());
    let (_, view) = call(&app, "GET", &path, &doc, None).await;
    assert_eq!(
        view["messages"][0]["body"], "Hello,\nI feel dizzy in the mornings.\n\nAnn",
        "line breaks kept"
    );
    let (_, view) = call(&app, "GET", &path, &ann, None).await;
    assert!(
        view["messages"][0]["read_at"].is_string(),
        "Ann sees the doctor read it: {view}"
    );

    // Claimed, answered (Ann is emailed that there is a message, nothing more).
    let (status, _) = call(
        &app,
        "POST",
        &format!("{path}/claim"),
        &doc,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, inbox) = call(&app, "GET", "/api/v1/staff/inbox?state=mine", &doc, None).await;
    assert_eq!(inbox["threads"][0]["id"], thread.as_str());
    let (status, b) = call(
        &app,
        "POST",
        &format!("{path}/claim"),
        &doc,
        Some(json!({"assignee_id": billing_id})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_in_pool"))
    );
    let before = app.emails().len();
    let (status, _) = send_keyed(
        &app,
        &format!("{path}/messages"),
        &doc,
        "r-1",
        json!({"body": "Please halve the dose and call us on Monday."}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mail = app.emails()[before..].join("\n");
    assert!(
        mail.contains("ann@example.org") && mail.contains("You have a new message"),
        "{mail}"
    );
    assert!(!mail.contains("Dizzy") && !mail.contains("dose") && !mail.contains("Primary care"));
    let (_, mine) = call(&app, "GET", "/api/v1/threads", &ann, None).await;
    assert_eq!(mine["threads"][0]["unread"], 1, "{mine}");
    assert_eq!(mine["threads"][0]["last_from"], "staff");
    let (_, view) = call(&app, "GET", &path, &ann, None).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 2);
    let (_, mine) = call(&app, "GET", "/api/v1/threads", &ann, None).await;
    assert_eq!(mine["threads"][0]["unread"], 0, "read now");
    let (_, inbox) = call(&app, "GET", "/api/v1/staff/inbox?state=waiting", &doc, None).await;
    assert_eq!(
        inbox["threads"][0]["id"],
        thread.as_str(),
        "waiting for the patient"
    );

    // Closed: Ann starts a new one to write again; the doctor may reopen.
    let (status, _) = call(&app, "POST", &format!("{path}/close"), &ann, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "patients do not close");
    let (status, _) = call(&app, "POST", &format!("{path}/close"), &doc, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, b) = call(
        &app,
        "POST",
        &format!("{path}/messages"),
        &ann,
        Some(json!({"body": "Thanks"})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("thread_closed"))
    );
    let (status, _) = call(&app, "POST", &format!("{path}/reopen"), &doc, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        "POST",
        &format!("{path}/messages"),
        &ann,
        Some(json!({"body": "Thanks"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // At most three new conversations a day here; the fourth is refused with the reason.
    for n in 0..2 {
        let body = json!({"pool_id": pool_id, "subject": format!("Question {n}"), "body": "?"});
        let (status, _) = call(&app, "POST", "/api/v1/threads", &ann, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let body = json!({"pool_id": pool_id, "subject": "One more", "body": "?"});
    let (status, b) = call(&app, "POST", "/api/v1/threads", &ann, Some(body.clone())).await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_threads"))
    );
    app.advance_minutes(24 * 60 + 1);
    let (_, again) = crate::auth::post(
        &app,
        "/api/v1/auth/login",
        &json!({"email": "ann@example.org", "password": crate::auth::PASSWORD}),
    )
    .await;
    let ann = again["token"].as_str().unwrap().to_owned();
    let (status, _) = call(&app, "POST", "/api/v1/threads", &ann, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "a new day");

    // Ann's access history: the doctor read her messages and wrote.
    let (actions, history) = staff_in_history(&app, &ann).await;
    assert!(has(&actions, "read_messages", "allowed"), "{history}");
    assert!(has(&actions, "message", "allowed"), "{history}");
    assert!(
        has(&actions, "read_messages", "denied"),
        "the billing team's try: {history}"
    );
}

#[tokio::test]
async fn a_proxy_reads_and_writes_only_with_the_messaging_grant() {
    let app = spawn_app_with(1, |_| {}).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let admin = staff(
        &app,
        "demo-clinic",
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let doc_id = id_of(&app, &doc).await;
    let (_, pool) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(json!({"name": "Primary care", "answer_days": 2, "staff_ids": [doc_id]})),
    )
    .await;
    let (reader, reading) = crate::records::proxy_of(
        &app,
        &ann,
        "reader@example.org",
        &["observation"],
        &["read"],
    )
    .await;
    let (writer, writing) = crate::records::proxy_of(
        &app,
        &ann,
        "writer@example.org",
        &["observation"],
        &["read", "message"],
    )
    .await;
    let as_proxy =
        |bearer: String, grant: String, method: &'static str, path: String, body: Option<Value>| {
            let app = &app;
            async move {
                let req = match method {
                    "GET" => app.client.get(&path),
                    _ => app.client.post(&path),
                }
                .header("authorization", format!("Bearer {bearer}"))
                .header("x-acting-for", grant);
                let resp = match body {
                    Some(b) => req.body_json(&b).send().await,
                    None => req.send().await,
                };
                crate::auth::body(resp).await
            }
        };
    let start = json!({"pool_id": pool["id"], "subject": "For my mother", "body": "She asks about her results."});
    let (status, _) = as_proxy(
        reader.clone(),
        reading.clone(),
        "POST",
        "/api/v1/threads".into(),
        Some(start.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no messaging grant");
    let (status, _) = as_proxy(reader, reading, "GET", "/api/v1/threads".into(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, sent) = as_proxy(
        writer.clone(),
        writing.clone(),
        "POST",
        "/api/v1/threads".into(),
        Some(start),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let (_, listed) = as_proxy(writer, writing, "GET", "/api/v1/threads".into(), None).await;
    assert_eq!(listed["threads"].as_array().unwrap().len(), 1);
    // Ann sees it too, written by her proxy.
    let thread = sent["thread"]["id"].as_str().unwrap();
    let (_, view) = call(
        &app,
        "GET",
        &format!("/api/v1/threads/{thread}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(view["messages"][0]["author_name"], "Pat Proxy", "{view}");
}

#[tokio::test]
async fn authorisation_matrix_covers_every_messages_operation_of_the_spec() {
    let app = spawn_app_with(2, |_| {}).await;
    let Cast {
        ann,
        bo,
        admin,
        doc,
        clerk,
        pool,
    } = cast(&app).await;
    let other_org = staff(
        &app,
        "riverside-family",
        "doc@riverside.example",
        StaffRole::Clinician,
    )
    .await;
    let (_, sent) = call(
        &app,
        "POST",
        "/api/v1/threads",
        &ann,
        Some(json!({"pool_id": pool, "subject": "Question", "body": "Text"})),
    )
    .await;
    let thread = sent["thread"]["id"].as_str().unwrap().to_owned();
    let (_, with_file) = send_files(
        &app,
        &format!("/api/v1/threads/{thread}/messages"),
        &ann,
        None,
        &[("body", "A file")],
        &[("scan.pdf", &pdf_of(100), "application/pdf")],
    )
    .await;
    let file = with_file["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let with = crate::records::proxy_of(
        &app,
        &ann,
        "with@example.org",
        &["observation"],
        &["read", "message"],
    )
    .await;
    let without = crate::records::proxy_of(
        &app,
        &ann,
        "without@example.org",
        &["observation"],
        &["read"],
    )
    .await;

    // Who asks: (name, bearer, grant to act under).
    let actors: [crate::MatrixActor; 9] = [
        ("owner", Some(ann.clone()), None),
        ("other patient", Some(bo), None),
        ("proxy with the grant", Some(with.0), Some(with.1)),
        ("proxy without it", Some(without.0), Some(without.1)),
        ("staff of the pool", Some(doc), None),
        ("staff of another pool", Some(clerk), None),
        ("another organisation", Some(other_org), None),
        ("administrator", Some(admin), None),
        ("anonymous", None, None),
    ];
    let new_thread = json!({"pool_id": pool, "subject": "Another", "body": "Text"});
    let new_pool = |n: &str| json!({"name": n, "answer_days": 3, "staff_ids": []});
    // (method, spec path, request path, body, expected per actor in the order above).
    let rows: Vec<crate::MatrixRow<9>> = vec![
        (
            "get",
            "/v1/pools",
            "/api/v1/pools".into(),
            None,
            [200, 200, 200, 404, 403, 403, 403, 403, 401],
        ),
        (
            "get",
            "/v1/threads",
            "/api/v1/threads".into(),
            None,
            [200, 200, 200, 404, 403, 403, 403, 403, 401],
        ),
        (
            "post",
            "/v1/threads",
            "/api/v1/threads".into(),
            Some(new_thread),
            [201, 201, 201, 404, 403, 403, 403, 403, 401],
        ),
        (
            "get",
            "/v1/threads/{id}",
            format!("/api/v1/threads/{thread}"),
            None,
            [200, 404, 200, 404, 200, 404, 404, 404, 401],
        ),
        (
            "post",
            "/v1/threads/{id}/messages",
            format!("/api/v1/threads/{thread}/messages"),
            Some(json!({"body": "More"})),
            [201, 404, 201, 404, 201, 404, 404, 404, 401],
        ),
        (
            "get",
            "/v1/attachments/{id}",
            format!("/api/v1/attachments/{file}"),
            None,
            [200, 404, 200, 404, 200, 404, 404, 404, 401],
        ),
        (
            "get",
            "/v1/staff/inbox",
            "/api/v1/staff/inbox".into(),
            None,
            [403, 403, 403, 403, 200, 200, 200, 200, 401],
        ),
        (
            "post",
            "/v1/threads/{id}/claim",
            format!("/api/v1/threads/{thread}/claim"),
            Some(json!({})),
            [403, 404, 403, 404, 204, 404, 404, 404, 401],
        ),
        (
            "post",
            "/v1/threads/{id}/close",
            format!("/api/v1/threads/{thread}/close"),
            None,
            [403, 404, 403, 404, 204, 404, 404, 404, 401],
        ),
        (
            "post",
            "/v1/threads/{id}/reopen",
            format!("/api/v1/threads/{thread}/reopen"),
            None,
            [403, 404, 403, 404, 204, 404, 404, 404, 401],
        ),
        (
            "get",
            "/v1/staff/pools",
            "/api/v1/staff/pools".into(),
            None,
            [403, 403, 403, 403, 403, 403, 403, 200, 401],
        ),
        (
            "post",
            "/v1/staff/pools",
            "/api/v1/staff/pools".into(),
            Some(new_pool("Billing")),
            [403, 403, 403, 403, 403, 403, 403, 201, 401],
        ),
        (
            "put",
            "/v1/staff/pools/{id}",
            format!("/api/v1/staff/pools/{pool}"),
            Some(new_pool("Primary care")),
            [403, 403, 403, 403, 403, 403, 403, 200, 401],
        ),
    ];
    crate::check_matrix(&app, "Messages", &actors, &rows).await;
}

/// A minimal PDF of about `size` bytes (the signature, then filler).
pub(crate) fn pdf_of(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..size.saturating_sub(9)).map(|i| b'a' + (i % 26) as u8));
    bytes
}

/// The signature and header chunk of a PNG, enough for its content to say what it is.
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

/// A multipart send: text fields, then files (each with the declared type `declared`).
pub(crate) async fn send_files(
    app: &crate::TestApp,
    path: &str,
    bearer: &str,
    key: Option<&str>,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8], &str)],
) -> (StatusCode, Value) {
    use poem::test::{TestForm, TestFormField};
    let mut form = TestForm::new();
    for (k, v) in fields {
        form = form.text(*k, *v);
    }
    for (name, bytes, declared) in files {
        form = form.field(
            TestFormField::bytes(bytes.to_vec())
                .name("files")
                .filename(*name)
                .content_type(*declared),
        );
    }
    let mut req = app
        .client
        .post(path)
        .header("authorization", format!("Bearer {bearer}"));
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    crate::auth::body(req.multipart(form).send().await).await
}

/// A download: status, headers that matter, bytes.
pub(crate) async fn download(
    app: &crate::TestApp,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, poem::http::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(path);
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let resp = req.send().await;
    let status = resp.0.status();
    let headers = resp.0.headers().clone();
    let bytes = resp.0.into_body().into_vec().await.unwrap();
    (status, headers, bytes)
}

#[tokio::test]
async fn files_are_accepted_by_content_stored_with_their_message_and_downloaded_only_by_its_readers()
 {
    let app = spawn_app_with(2, |c| c.attachment_max_mb = 1).await;
    let Cast {
        ann,
        bo,
        doc,
        clerk,
        pool,
        ..
    } = cast(&app).await;

    // A new conversation with a PDF (several chunks long) and a PNG declared as a PDF: the
    // content decides.
    let scan = pdf_of(600 * 1024);
    let (status, sent) = send_files(
        &app,
        "/api/v1/threads",
        &ann,
        Some("start-1"),
        &[
            ("pool_id", &pool),
            ("subject", "My scan"),
            ("body", "See attached"),
        ],
        &[
            ("C:\\scans\\knee scan.pdf", &scan, "application/pdf"),
            ("photo", PNG, "application/pdf"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let thread = sent["thread"]["id"].as_str().unwrap().to_owned();
    let files = sent["message"]["attachments"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "knee scan.pdf");
    assert_eq!(files[0]["media_type"], "application/pdf");
    assert_eq!(files[0]["size"], 600 * 1024);
    assert_eq!(files[1]["name"], "photo.png");
    assert_eq!(files[1]["media_type"], "image/png");
    let pdf_path = format!("/api/v1/attachments/{}", files[0]["id"].as_str().unwrap());

    // The same key and files: the first answer, nothing stored twice; other files: refused.
    let (again, replay) = send_files(
        &app,
        "/api/v1/threads",
        &ann,
        Some("start-1"),
        &[
            ("pool_id", &pool),
            ("subject", "My scan"),
            ("body", "See attached"),
        ],
        &[
            ("C:\\scans\\knee scan.pdf", &scan, "application/pdf"),
            ("photo", PNG, "application/pdf"),
        ],
    )
    .await;
    assert_eq!(again, StatusCode::CREATED);
    assert_eq!(replay["message"]["id"], sent["message"]["id"]);
    let (reused, body) = send_files(
        &app,
        "/api/v1/threads",
        &ann,
        Some("start-1"),
        &[
            ("pool_id", &pool),
            ("subject", "My scan"),
            ("body", "See attached"),
        ],
        &[("knee scan.pdf", &pdf_of(1000), "application/pdf")],
    )
    .await;
    assert_eq!(reused, StatusCode::CONFLICT);
    assert_eq!(body["code"], "idempotency_key_reused");

    // Refused by content, count and size, each with its code; nothing is stored.
    let reply = format!("/api/v1/threads/{thread}/messages");
    let html = b"<html><script>alert(1)</script></html>".as_slice();
    let one = pdf_of(100);
    for (files, status, code) in [
        (
            vec![("results.pdf", html, "application/pdf")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_file_type",
        ),
        (
            vec![("a.pdf", one.as_slice(), "application/pdf"); 6],
            StatusCode::BAD_REQUEST,
            "too_many_files",
        ),
        (
            vec![("big.pdf", &pdf_of(1024 * 1024 + 1)[..], "application/pdf")],
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
        ),
        (
            vec![("empty.pdf", &b""[..], "application/pdf")],
            StatusCode::BAD_REQUEST,
            "empty_file",
        ),
    ] {
        let (got, body) = send_files(&app, &reply, &ann, None, &[("body", "More")], &files).await;
        assert_eq!(
            (got, body["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    // A body larger than five files at the limit is refused before it is read.
    let huge = pdf_of(7 * 1024 * 1024);
    let (got, body) = send_files(
        &app,
        &reply,
        &ann,
        None,
        &[("body", "More")],
        &[("huge.pdf", &huge, "application/pdf")],
    )
    .await;
    assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (_, view) = call(
        &app,
        "GET",
        &format!("/api/v1/threads/{thread}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(
        view["messages"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );

    // The patient and the pool's staff download it, byte for byte, as an attachment.
    for reader in [&ann, &doc] {
        let (status, headers, bytes) = download(&app, &pdf_path, Some(reader)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/pdf");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"knee scan.pdf\""),
            "{disposition}"
        );
        assert!(bytes == scan, "the same bytes ({} read)", bytes.len());
    }
    // Anyone else learns nothing.
    for outsider in [&bo, &clerk] {
        let (status, _, _) = download(&app, &pdf_path, Some(outsider)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        download(&app, &pdf_path, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let missing = format!("/api/v1/attachments/{}", uuid::Uuid::now_v7());
    assert_eq!(
        download(&app, &missing, Some(&ann)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&app, "/api/v1/attachments/nope", Some(&ann))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The clinician's download is in the patient's access history; the outsiders' are refused.
    let (actions, history) = staff_in_history(&app, &ann).await;
    assert!(has(&actions, "read_messages", "allowed"), "{history}");
    assert!(
        has(&actions, "read_messages", "denied"),
        "the front desk's try: {history}"
    );
}

#[tokio::test]
async fn the_staff_inbox_pages_fifty_at_a_time_newest_first_without_gaps_or_repeats() {
    let app = spawn_app_with(1, |c| c.threads_per_day = 100).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let admin = staff(
        &app,
        "demo-clinic",
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let doc_id = id_of(&app, &doc).await;
    let (_, pool) = call(
        &app,
        "POST",
        "/api/v1/staff/pools",
        &admin,
        Some(json!({"name": "Primary care", "answer_days": 2, "staff_ids": [doc_id]})),
    )
    .await;
    let pool = pool["id"].as_str().unwrap().to_owned();
    let mut started = Vec::new();
    for n in 0..55 {
        // Each a second after the last, so "newest first" is one order.
        app.clock.advance(chrono::Duration::seconds(1));
        let (status, sent) = call(
            &app,
            "POST",
            "/api/v1/threads",
            &ann,
            Some(json!({"pool_id": pool, "subject": format!("Question {n}"), "body": "Text"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        started.push(sent["thread"]["id"].as_str().unwrap().to_owned());
    }
    let ids = |page: &Value| -> Vec<String> {
        page["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first) = call(&app, "GET", "/api/v1/staff/inbox?state=new", &doc, None).await;
    assert_eq!(first["new"], 55, "the count is of all of them");
    assert_eq!(first["unread"], 55);
    let older = first["older"].as_str().unwrap().to_owned();
    let (_, second) = call(
        &app,
        "GET",
        &format!("/api/v1/staff/inbox?state=new&before={older}"),
        &doc,
        None,
    )
    .await;
    assert!(second.get("older").is_none(), "the last page: {second}");
    let mut listed = ids(&first);
    assert_eq!(listed.len(), 50);
    listed.extend(ids(&second));
    started.reverse();
    assert_eq!(listed, started, "newest first, each once");
}
