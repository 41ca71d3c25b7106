//! The security fixes of the first probe: nothing secret or clinical in the request log, the
//! throttle tells no registered address from an unknown one, bodies are bounded, free text is
//! bounded, inputs that make no sense are refused, HSTS over https.

use crate::auth::{body, verified_account};
use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::{TestApp, logcheck, spawn_app, spawn_app_with};
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, bearer: &str) -> (StatusCode, Value) {
    call(app, "GET", path, bearer, None).await
}

/// Requests that carried secrets and health terms in their addresses are logged by route
/// only; the values are nowhere in the log. (Every test app checks the whole log when it is
/// dropped; this test makes sure the risky requests are among them, and reads the lines.)
#[tokio::test]
async fn the_request_log_names_routes_never_queries_tokens_or_search_terms() {
    let app = spawn_app(2).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let (status, _) = get(&app, "/api/v1/records?kind=problem&q=HIV%20infection", &ann).await;
    assert_eq!(status, StatusCode::OK);
    let page = app
        .client
        .get("/staff/charts?mrn=SYN0000001")
        .header("cookie", format!("salus_session={doc}"))
        .send()
        .await;
    assert!(
        [StatusCode::OK, StatusCode::SEE_OTHER].contains(&page.0.status()),
        "{}",
        page.0.status()
    );
    let link = app
        .client
        .get("/reset?token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd")
        .send()
        .await;
    assert_eq!(link.0.status(), StatusCode::SEE_OTHER);
    logcheck::remember("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd");
    logcheck::remember("HIV infection");
    logcheck::remember("SYN0000001");

    let log = logcheck::captured();
    for route in [
        "route=/api/v1/records ",
        "route=/staff/charts ",
        "route=/reset ",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(route) && l.contains("status=")),
            "no line for {route}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("route=/api/v1/records ") && l.contains("request_id=")),
        "request lines carry the request id"
    );
    logcheck::assert_log_clean();
}

/// After a failed sign-in, the next attempt for a registered and for an unknown address gets
/// the same answers in the same order: 401, then 429 with the same wait.
#[tokio::test]
async fn the_throttle_answers_alike_for_registered_and_unknown_addresses() {
    let app = spawn_app(0).await;
    verified_account(&app).await;
    let mut answers = Vec::new();
    for email in ["ann@example.org", "nobody-here@example.org"] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let resp = app
                .client
                .post("/api/v1/auth/login")
                .body_json(&json!({"email": email, "password": "not the password at all"}))
                .send()
                .await;
            let retry = resp
                .0
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (status, b) = body(resp).await;
            seen.push((
                status,
                b["code"].as_str().unwrap_or_default().to_owned(),
                retry,
            ));
        }
        answers.push(seen);
    }
    assert_eq!(
        answers[0][..2],
        answers[1][..2],
        "registered: {:?}, unknown: {:?}",
        answers[0],
        answers[1]
    );
    assert_eq!(answers[1][0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[1][1].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answers[1][1].1, "too_many_attempts");
}

/// A body over the limit is refused with 413 and the usual error body, by its declared
/// length and, when it is sent in chunks, after reading no more than the limit.
#[tokio::test]
async fn bodies_over_the_limit_answer_413() {
    let app = spawn_app_with(0, |c| c.max_body_kib = 16).await;
    let big = format!(
        "{{\"email\": \"ann@example.org\", \"password\": \"{}\"}}",
        "x".repeat(20 * 1024)
    );
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .content_type("application/json")
        .header("content-length", big.len())
        .body(big.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, b) = body(resp).await;
    assert_eq!(b["code"], "payload_too_large", "{b}");

    // Chunked: no Content-Length to go by.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .content_type("application/json")
        .header("transfer-encoding", "chunked")
        .body(poem::Body::from_bytes_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, b) = body(resp).await;
    assert_eq!(b["code"], "payload_too_large", "{b}");

    // A page form over the limit gets a page.
    let form = format!("email=a&password={}", "x".repeat(20 * 1024));
    let resp = app
        .client
        .post("/login")
        .content_type("application/x-www-form-urlencoded")
        .header("content-length", form.len())
        .body(form)
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let html = crate::text(resp).await;
    assert!(html.contains("larger than this server accepts"), "{html}");

    // Within the limit, chunked or not, a request is read as usual.
    let small = json!({"email": "ann@example.org", "password": "not the password at all"});
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .content_type("application/json")
        .header("transfer-encoding", "chunked")
        .body(poem::Body::from_bytes_stream(futures_util::stream::iter(
            vec![Ok::<_, std::io::Error>(small.to_string().into_bytes())],
        )))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::UNAUTHORIZED);
}

/// Search text is bounded (a long pattern made SQLite give up with a 503), dates are bounded
/// to what a timestamp can hold, and a start after the end is refused.
#[tokio::test]
async fn free_text_and_dates_are_bounded() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let long = "a".repeat(50_000);
    let (status, b) = get(
        &app,
        &format!("/api/v1/records?kind=problem&q={long}"),
        &ann,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("search_too_long"))
    );
    let (status, _) = get(
        &app,
        &format!("/api/v1/records?kind=problem&q={}", "a".repeat(200)),
        &ann,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "200 characters are fine");
    let page = app
        .client
        .get(format!("/records/problems?q={long}"))
        .header("cookie", format!("salus_session={ann}"))
        .send()
        .await;
    assert_eq!(page.0.status(), StatusCode::BAD_REQUEST);
    assert!(
        crate::text(page)
            .await
            .contains("The search text is too long")
    );

    let count = |b: &Value| b["records"].as_array().map_or(0, Vec::len);
    let (s1, b1) = get(
        &app,
        "/api/v1/records?kind=observation&until=9999-12-30&limit=100",
        &ann,
    )
    .await;
    let (s2, b2) = get(
        &app,
        "/api/v1/records?kind=observation&until=9999-12-31&limit=100",
        &ann,
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert!(count(&b1) > 0);
    assert_eq!(count(&b1), count(&b2), "the last day of 9999 is no edge");
    for (query, code) in [
        ("until=10000-01-01", "invalid_date"),
        ("from=2024-02-01&until=2024-01-01", "invalid_date_range"),
    ] {
        let (status, b) = get(
            &app,
            &format!("/api/v1/records?kind=observation&{query}"),
            &ann,
        )
        .await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
}

/// A filed record may only name a visit of its own chart; a normal range must be a range.
#[tokio::test]
async fn filing_refuses_another_charts_visit_a_non_visit_and_an_upside_down_range() {
    let app = spawn_app(2).await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let chart = |mrn: &'static str| {
        let store = app.store.clone();
        async move {
            salus_domain::patient::PatientRepository::find_by_mrn(
                &store,
                org.id,
                &salus_domain::text::Mrn::parse(mrn).unwrap(),
            )
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
        }
    };
    let (a, b) = (chart("SYN0000000").await, chart("SYN0000001").await);
    let first = |kind: &'static str, patient: String| {
        let (app, doc) = (&app, &doc);
        async move {
            let (status, list) = get(
                app,
                &format!("/api/v1/records?kind={kind}&patient_id={patient}&limit=1"),
                doc,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            list["records"][0]["id"].as_str().unwrap().to_owned()
        }
    };
    let visit_of_a = first("encounter", a.clone()).await;
    let result_of_b = first("observation", b.clone()).await;
    let visit_of_b = first("encounter", b.clone()).await;
    let path = format!("/api/v1/patients/{b}/records");
    let note = |visit: &str| json!({"kind": "note", "title": "Follow-up", "text": "Seen.", "visit_id": visit});

    for (why, visit) in [
        ("another patient's visit", visit_of_a.as_str()),
        ("a result, not a visit", result_of_b.as_str()),
        ("no such record", "0190f2d4-5b4c-7d1e-9a2b-3c4d5e6f7a8b"),
    ] {
        let (status, body) = call(&app, "POST", &path, &doc, Some(note(visit))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_visit")),
            "{why}: {body}"
        );
    }
    let (status, filed) = call(&app, "POST", &path, &doc, Some(note(&visit_of_b))).await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["record"]["visit_id"], visit_of_b.as_str());

    let upside_down = json!({"kind": "lab_result", "title": "Potassium", "value": 4.1,
        "unit": "mmol/L", "reference_low": 5.1, "reference_high": 3.5});
    let (status, body) = call(&app, "POST", &path, &doc, Some(upside_down)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reference_range")),
        "{body}"
    );
}

/// `Strict-Transport-Security` when the portal's address is https, and only then.
#[tokio::test]
async fn hsts_is_sent_when_served_over_https() {
    let https = spawn_app_with(0, |c| c.public_url = "https://portal.example.org".into()).await;
    let resp = https.client.get("/").send().await;
    resp.assert_header(
        poem::http::header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    let api = https.client.get("/api/v1/organizations").send().await;
    api.assert_header(
        poem::http::header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    let plain = spawn_app(0).await;
    let resp = plain.client.get("/").send().await;
    assert!(
        !resp
            .0
            .headers()
            .contains_key(poem::http::header::STRICT_TRANSPORT_SECURITY)
    );
}

/// Error answers are the API's JSON whatever refused the request, a 405 names the methods,
/// optional fields are left out rather than `null`, and the document says so (and names the
/// downloads' real content types).
#[tokio::test]
async fn answers_and_the_document_agree() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let error = |resp: poem::test::TestResponse| async move {
        let status = resp.0.status();
        let kind = resp.0.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let (_, b) = body(resp).await;
        assert!(kind.starts_with("application/json"), "{status} {kind}");
        (status, b["code"].as_str().unwrap_or_default().to_owned())
    };
    let cases = [
        (
            app.client.post("/api/v1/auth/login").send().await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            app.client
                .get("/api/v1/records?kind=observation&limit=99999999999999")
                .header("authorization", format!("Bearer {ann}"))
                .send()
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            app.client
                .get("/api/v1/records/%FF%FE")
                .header("authorization", format!("Bearer {ann}"))
                .send()
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            app.client.get("/api/v1/auth/login").send().await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (resp, status, code) in cases {
        assert_eq!(error(resp).await, (status, code.to_owned()));
    }
    let resp = app.client.put("/api/v1/records").send().await;
    resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_header("allow", "GET");

    // A page refused by the router is a page, not plain text.
    let page = app.client.get("/records/item/%FF%FE").send().await;
    page.assert_status(StatusCode::BAD_REQUEST);
    assert!(crate::text(page).await.contains("<html"));

    // Optional fields are absent, never null.
    let (status, list) = get(&app, "/api/v1/records?kind=problem&limit=100", &ann).await;
    assert_eq!(status, StatusCode::OK);
    let first = &list["records"][0];
    assert!(first.is_object(), "{list}");
    for field in ["value", "flag", "reference_range"] {
        assert!(first.get(field).is_none(), "{field} in {first}");
    }
    assert!(list.get("next_cursor").is_none(), "{list}");

    let doc: Value = crate::openapi_spec(&app).await;
    let content = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(content("/v1/export/fhir"), ["application/fhir+json"]);
    assert_eq!(content("/v1/export/ips"), ["application/fhir+json"]);
    assert_eq!(content("/v1/export/pdf"), ["application/pdf"]);
    let login = doc["paths"]["/v1/auth/login"]["post"]["responses"]
        .as_object()
        .unwrap();
    for status in ["400", "413", "415", "429"] {
        assert!(login.contains_key(status), "login documents {status}");
    }
}

/// The per-address limit covers the page forms as well as the API, in one budget per client
/// address; forwarded addresses count only when the connection comes from a trusted proxy.
#[tokio::test]
async fn sign_in_forms_and_api_share_a_per_address_limit_behind_trusted_proxies_only() {
    let app = spawn_app_with(0, |c| {
        c.auth_requests_per_minute = 2;
        c.trusted_proxies = "10.0.0.0/8".into();
    })
    .await;
    let page = |peer: &'static str, forwarded: Option<&'static str>| {
        let app = &app;
        async move {
            let mut req = app
                .client
                .post("/login")
                .header("x-test-peer", peer)
                .content_type("application/x-www-form-urlencoded")
                .body("csrf=x&email=ann%40example.org&password=not+the+password");
            if let Some(f) = forwarded {
                req = req.header("x-forwarded-for", f);
            }
            let resp = req.send().await;
            let retry = resp.0.headers().contains_key("retry-after");
            (resp.0.status(), retry)
        }
    };
    let limited = (StatusCode::TOO_MANY_REQUESTS, true);

    // One address: two tries of the page form, then the page and the API both refuse.
    assert_ne!(page("198.51.100.7:1000", None).await, limited);
    assert_ne!(page("198.51.100.7:1001", None).await, limited);
    assert_eq!(page("198.51.100.7:1002", None).await, limited);
    let api = app
        .client
        .post("/api/v1/auth/login")
        .header("x-test-peer", "198.51.100.7:1003")
        .body_json(&json!({"email": "ann@example.org", "password": "not the password"}))
        .send()
        .await;
    api.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let (_, b) = body(api).await;
    assert_eq!(b["code"], "too_many_requests");

    // An untrusted peer cannot pick a fresh address with a header.
    assert_ne!(
        page("198.51.100.8:1000", Some("203.0.113.1")).await,
        limited
    );
    assert_ne!(
        page("198.51.100.8:1000", Some("203.0.113.2")).await,
        limited
    );
    assert_eq!(
        page("198.51.100.8:1000", Some("203.0.113.3")).await,
        limited
    );

    // Behind the trusted proxy each forwarded client has its own budget.
    for client in ["203.0.113.10", "203.0.113.11", "203.0.113.12"] {
        assert_ne!(
            page("10.0.0.1:443", Some(client)).await,
            limited,
            "{client}"
        );
    }
    assert_ne!(page("10.0.0.1:443", Some("203.0.113.10")).await, limited);
    assert_eq!(page("10.0.0.1:443", Some("203.0.113.10")).await, limited);
}

/// Audit entries written for a page carry the request's id, as the API's do.
#[tokio::test]
async fn page_requests_write_their_request_id_into_the_audit_log() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let resp = app
        .client
        .get("/records/problems")
        .header("cookie", format!("salus_session={ann}"))
        .header("x-request-id", "page-request-42")
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("x-request-id", "page-request-42");
    let row = app
        .store
        .connection()
        .query_one_raw(Statement::from_string(
            app.store.backend(),
            "SELECT request_id FROM audit_log ORDER BY seq DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let id: Option<String> = row.try_get("", "request_id").unwrap();
    assert_eq!(id.as_deref(), Some("page-request-42"));
}

/// A link whose token is not one of ours leaves no token behind, not even an earlier link's.
#[tokio::test]
async fn a_malformed_link_token_is_dropped_with_any_earlier_one() {
    let app = spawn_app(0).await;
    let resp = app
        .client
        .get("/reset?token=not%20a%20token")
        .header("cookie", "salus_link=AbCdEfGhIjKlMnOp0123")
        .send()
        .await;
    resp.assert_status(StatusCode::SEE_OTHER);
    resp.assert_header("location", "/reset");
    let cookie = resp.0.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("salus_link=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}
