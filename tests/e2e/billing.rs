//! Bills through the API: statements posted by billing staff (and refused with nothing stored
//! when a line does not add up), the balance, payments with the sandbox's test cards — paid,
//! declined, insufficient funds, no answer then reconciled —, a key used again, twenty
//! payments with one key at once charging once, refunds and adjustments with a reason, the
//! receipt email, the access history, and the authorisation matrix.

use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::spawn_app_with;
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use serde_json::{Value, json};

/// The columns of a statements import.
const HEADER: &str = "mrn,statement_number,issued,due,service_date,description,charge,insurance_paid,adjustments,patient_share";

/// An app whose sandbox processor keeps its ledger in `dir` and answers after `delay_ms`.
async fn app_with_sandbox(dir: &tempfile::TempDir, delay_ms: u32) -> crate::TestApp {
    let ledger = dir.path().join("sandbox-ledger.log").display().to_string();
    spawn_app_with(3, |c| {
        c.sandbox_ledger = ledger;
        c.sandbox_delay_ms = delay_ms;
    })
    .await
}

/// Charges that took money, as the sandbox processor's ledger file keeps them.
fn charges_taken(dir: &tempfile::TempDir) -> usize {
    salus_server::sandbox::read_ledger(&dir.path().join("sandbox-ledger.log"))
        .unwrap()
        .iter()
        .filter(|(key, o)| {
            key.starts_with("pay-")
                && matches!(o, salus_domain::billing::PaymentOutcome::Succeeded { .. })
        })
        .count()
}

/// Posts a statement of two lines (patient's share 30.00 + 45.10) for `patient`.
pub(crate) async fn post_statement(
    app: &crate::TestApp,
    clerk: &str,
    patient: &str,
    number: &str,
) -> (StatusCode, Value) {
    call(
        app,
        "POST",
        "/api/v1/staff/billing/statements",
        clerk,
        Some(
            json!({"patient_id": patient, "number": number, "issued": "2026-11-20",
            "due": "2026-12-20", "lines": [
                {"service_date": "2026-11-02", "description": "Office visit, established patient",
                 "charge": "200.00", "insurance_paid": "150.00", "adjustments": "20.00",
                 "patient_share": "30.00"},
                {"service_date": "2026-11-02", "description": "Lipid panel",
                 "charge": "45.10", "insurance_paid": "0", "adjustments": "0",
                 "patient_share": "45.10"}]}),
        ),
    )
    .await
}

/// Pays `amount` with the sandbox card of `token` under `key`.
async fn pay(
    app: &crate::TestApp,
    bearer: &str,
    key: &str,
    amount: &str,
    token: &str,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .post("/api/v1/billing/payments")
        .header("authorization", format!("Bearer {bearer}"))
        .header("idempotency-key", key)
        .body_json(&json!({"amount": amount, "card_token": token}))
        .send()
        .await;
    crate::auth::body(resp).await
}

async fn balance(app: &crate::TestApp, bearer: &str) -> Value {
    let (status, b) = call(app, "GET", "/api/v1/billing/account", bearer, None).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b["balance"].clone()
}

#[tokio::test]
async fn statements_payments_declines_a_lost_answer_refunds_and_adjustments_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_sandbox(&dir, 0).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        StaffRole::Billing,
    )
    .await;
    let (ann, patient) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    assert_eq!(balance(&app, &ann).await["owed"], "0.00");

    // A line that does not add up, a bad amount, a bad date: refused, nothing stored.
    for (line, code) in [
        (
            json!({"service_date": "2026-11-02", "description": "Visit", "charge": "100.00",
                   "insurance_paid": "80.00", "adjustments": "0", "patient_share": "25.00"}),
            "line_does_not_add_up",
        ),
        (
            json!({"service_date": "2026-11-02", "description": "Visit", "charge": "1OO",
                   "insurance_paid": "0", "adjustments": "0", "patient_share": "100"}),
            "invalid_amount",
        ),
        (
            json!({"service_date": "02/11/2026", "description": "Visit", "charge": "1",
                   "insurance_paid": "0", "adjustments": "0", "patient_share": "1"}),
            "invalid_date",
        ),
    ] {
        let (status, b) = call(
            &app,
            "POST",
            "/api/v1/staff/billing/statements",
            &clerk,
            Some(
                json!({"patient_id": patient, "number": "ST-1", "issued": "2026-11-20",
                "due": "2026-12-20", "lines": [line]}),
            ),
        )
        .await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }
    assert_eq!(balance(&app, &ann).await["billed"], "0.00");

    let (status, st) = post_statement(&app, &clerk, &patient, "ST-1").await;
    assert_eq!(status, StatusCode::CREATED, "{st}");
    assert_eq!(st["totals"]["patient_share"], "75.10");
    assert_eq!(st["totals"]["charges"], "245.10");
    let (status, b) = post_statement(&app, &clerk, &patient, "ST-1").await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("statement_exists"))
    );

    let (status, account) = call(&app, "GET", "/api/v1/billing/account", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["currency"], "USD");
    assert_eq!(account["balance"]["owed"], "75.10");
    assert!(account.get("patient_name").is_none(), "staff fields only");
    let id = st["id"].as_str().unwrap();
    let (status, one) = call(
        &app,
        "GET",
        &format!("/api/v1/billing/statements/{id}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["lines"][1]["description"], "Lipid panel");

    // Amounts the balance does not allow; a missing key.
    for (amount, status, code) in [
        ("75.11", StatusCode::CONFLICT, "amount_above_balance"),
        ("0", StatusCode::BAD_REQUEST, "amount_not_positive"),
        ("10.001", StatusCode::BAD_REQUEST, "too_many_decimals"),
    ] {
        let (s, b) = pay(&app, &ann, "key-refused-1", amount, "tok_sandbox_success").await;
        assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{amount}");
    }
    let (s, b) = call(
        &app,
        "POST",
        "/api/v1/billing/payments",
        &ann,
        Some(json!({"amount": "1", "card_token": "tok_sandbox_success"})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );

    // Declined and insufficient funds: nothing taken, said in words.
    let (s, b) = pay(
        &app,
        &ann,
        "key-declined-1",
        "10.00",
        "tok_sandbox_declined",
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("card_declined"))
    );
    let (s, b) = pay(
        &app,
        &ann,
        "key-funds-1",
        "10.00",
        "tok_sandbox_insufficient_funds",
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds"))
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds")
    );
    let (s, b) = pay(
        &app,
        &ann,
        "key-error-1",
        "10.00",
        "tok_sandbox_processor_error",
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("processor_error"))
    );
    assert_eq!(balance(&app, &ann).await["owed"], "75.10");

    // Paid; the same key again answers the same payment; another amount under it is refused.
    let (s, paid) = pay(&app, &ann, "key-paid-1", "25.10", "tok_sandbox_success").await;
    assert_eq!(s, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["state"], "succeeded");
    assert!(paid["reference"].as_str().unwrap().starts_with("SBX-CH-"));
    let (s, again) = pay(&app, &ann, "key-paid-1", "25.10", "tok_sandbox_success").await;
    assert_eq!((s, &again["id"]), (StatusCode::OK, &paid["id"]));
    let (s, b) = pay(&app, &ann, "key-paid-1", "30.00", "tok_sandbox_success").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    assert_eq!(charges_taken(&dir), 1);
    assert_eq!(balance(&app, &ann).await["owed"], "50.00");
    let receipts: Vec<String> = app
        .emails()
        .into_iter()
        .filter(|m| m.contains("Payment received"))
        .collect();
    assert_eq!(receipts.len(), 1);
    assert!(!receipts[0].contains("25.10") && !receipts[0].contains("Lipid"));
    let pid = paid["id"].as_str().unwrap().to_owned();
    let (s, receipt) = call(
        &app,
        "GET",
        &format!("/api/v1/billing/payments/{pid}"),
        &ann,
        None,
    )
    .await;
    assert_eq!((s, &receipt["amount"]), (StatusCode::OK, &json!("25.10")));

    // The statement and the receipt as PDFs, with their text.
    for (path, text) in [
        (
            format!("/api/v1/billing/statements/{id}/pdf"),
            "Lipid panel",
        ),
        (
            format!("/api/v1/billing/payments/{pid}/receipt"),
            "Payment received",
        ),
    ] {
        let resp = app
            .client
            .get(&path)
            .header("authorization", format!("Bearer {ann}"))
            .send()
            .await;
        resp.assert_status_is_ok();
        resp.assert_content_type("application/pdf");
        let bytes = resp.0.into_body().into_vec().await.unwrap();
        let pdf = String::from_utf8_lossy(&bytes);
        assert!(pdf.starts_with("%PDF") && pdf.contains(text), "{path}");
    }
    let declined = account_payment(&app, &ann, "declined").await;
    let (s, _) = call(
        &app,
        "GET",
        &format!("/api/v1/billing/payments/{declined}/receipt"),
        &ann,
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a payment that took nothing has no receipt"
    );

    // Charged, but the answer is lost: pending (not payable again), then reconciled.
    let (s, lost) = pay(&app, &ann, "key-lost-1", "20.00", "tok_sandbox_no_answer").await;
    assert_eq!(
        (s, &lost["state"]),
        (StatusCode::ACCEPTED, &json!("pending"))
    );
    let b = balance(&app, &ann).await;
    assert_eq!(
        (&b["owed"], &b["pending"], &b["payable"]),
        (&json!("50.00"), &json!("20.00"), &json!("30.00"))
    );
    let report = app
        .billing()
        .reconcile(chrono::Duration::zero())
        .await
        .unwrap();
    assert_eq!(report.settled, 1);
    let b = balance(&app, &ann).await;
    assert_eq!(
        (&b["owed"], &b["pending"]),
        (&json!("30.00"), &json!("0.00"))
    );
    assert_eq!(charges_taken(&dir), 2);

    // Refunds: once per key, never more than the payment; adjustments with a reason.
    let refund = |amount: &'static str| {
        let (app, clerk, pid) = (&app, clerk.clone(), pid.clone());
        async move {
            let resp = app
                .client
                .post(format!("/api/v1/staff/billing/payments/{pid}/refunds"))
                .header("authorization", format!("Bearer {clerk}"))
                .header("idempotency-key", format!("refund-{amount}"))
                .body_json(&json!({"amount": amount, "reason": "Charged for a cancelled test"}))
                .send()
                .await;
            crate::auth::body(resp).await
        }
    };
    let (s, r) = refund("5.00").await;
    assert_eq!(
        (s, &r["state"]),
        (StatusCode::CREATED, &json!("succeeded")),
        "{r}"
    );
    let (_, r2) = refund("5.00").await;
    assert_eq!(r2["id"], r["id"], "the same refund key refunds once");
    let (s, b) = refund("20.11").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("refund_above_payment"))
    );
    let (s, b) = call(
        &app,
        "POST",
        "/api/v1/staff/billing/adjustments",
        &clerk,
        Some(
            json!({"patient_id": patient, "kind": "credit", "amount": "5.00",
                    "reason": "Courtesy discount"}),
        ),
    )
    .await;
    assert_eq!((s, &b["amount"]), (StatusCode::CREATED, &json!("-5.00")));
    let (s, b) = call(
        &app,
        "GET",
        "/api/v1/staff/billing/accounts?mrn=SYN0000000",
        &clerk,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["balance"]["owed"], "30.00",
        "30.00 + 5.00 refunded − 5.00 credit"
    );
    assert_eq!(b["mrn"], "SYN0000000");
    assert_eq!(b["refunds"][0]["reason"], "Charged for a cancelled test");

    // Every money movement in the patient's access history.
    let (_, history) = call(
        &app,
        "GET",
        "/api/v1/me/access-history?limit=100",
        &ann,
        None,
    )
    .await;
    let actions: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for step in [
        "post_statement",
        "pay_bill",
        "refund_payment",
        "adjust_balance",
        "view_bills",
    ] {
        assert!(actions.contains(&step), "{step} in {actions:?}");
    }
}

#[tokio::test]
async fn twenty_payments_with_one_key_at_once_charge_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_sandbox(&dir, 50).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        StaffRole::Billing,
    )
    .await;
    let (ann, patient) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    assert_eq!(
        post_statement(&app, &clerk, &patient, "ST-2").await.0,
        StatusCode::CREATED
    );
    let tries = (0..20).map(|_| {
        pay(
            &app,
            &ann,
            "double-click-key",
            "75.10",
            "tok_sandbox_success",
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, b)| {
            matches!(
                *s,
                StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED
            ) && b["id"] == answers[0].1["id"]
        }),
        "every answer is the one payment: {answers:?}"
    );
    assert_eq!(charges_taken(&dir), 1);
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &ann, None).await;
    assert_eq!(account["payments"].as_array().unwrap().len(), 1);
    assert_eq!(account["balance"]["owed"], "0.00");
}

#[tokio::test]
async fn every_billing_operation_answers_each_kind_of_actor_as_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_sandbox(&dir, 0).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        StaffRole::Billing,
    )
    .await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let other_org = staff(
        &app,
        "riverside-family",
        "billing@riverside.example",
        StaffRole::Billing,
    )
    .await;
    let (ann, patient) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let with = crate::records::proxy_of(
        &app,
        &ann,
        "with@example.org",
        &["encounter"],
        &["read", "pay_bills"],
    )
    .await;
    let without =
        crate::records::proxy_of(&app, &ann, "without@example.org", &["encounter"], &["read"])
            .await;
    let (_, st) = post_statement(&app, &clerk, &patient, "ST-9").await;
    let st = st["id"].as_str().unwrap().to_owned();
    let (_, paid) = pay(&app, &ann, "matrix-paid-1", "10.00", "tok_sandbox_success").await;
    let paid = paid["id"].as_str().unwrap().to_owned();
    let actors: [crate::MatrixActor; 9] = [
        ("owner", Some(ann), None),
        ("other patient", Some(bo), None),
        ("proxy with the grant", Some(with.0), Some(with.1)),
        ("proxy without it", Some(without.0), Some(without.1)),
        ("clinician", Some(doc), None),
        ("front desk", Some(desk), None),
        ("billing staff", Some(clerk), None),
        ("another organisation's billing", Some(other_org), None),
        ("anonymous", None, None),
    ];
    let mine = format!("?patient_id={patient}");
    let nil = uuid::Uuid::nil();
    let rows: Vec<crate::MatrixRow<9>> = vec![
        (
            "get",
            "/v1/billing/account",
            format!("/api/v1/billing/account{mine}"),
            None,
            [200, 404, 200, 404, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/billing/statements/{id}",
            format!("/api/v1/billing/statements/{st}"),
            None,
            [200, 404, 200, 404, 404, 404, 200, 404, 401],
        ),
        // Without an Idempotency-Key: whoever may pay learns the key is missing; staff never pay.
        (
            "post",
            "/v1/billing/payments",
            "/api/v1/billing/payments".into(),
            Some(
                json!({"amount": "1.00", "card_token": "tok_sandbox_success", "patient_id": patient}),
            ),
            [400, 404, 400, 404, 403, 403, 403, 403, 401],
        ),
        (
            "post",
            "/v1/billing/plans",
            "/api/v1/billing/plans".into(),
            Some(
                json!({"instalments": 3, "card_token": "tok_sandbox_success", "patient_id": patient}),
            ),
            [400, 404, 400, 404, 403, 403, 403, 403, 401],
        ),
        (
            "post",
            "/v1/billing/plans/{id}/cancel",
            format!("/api/v1/billing/plans/{nil}/cancel"),
            None,
            [404, 404, 404, 404, 404, 404, 404, 404, 401],
        ),
        (
            "get",
            "/v1/billing/payments/{id}",
            format!("/api/v1/billing/payments/{paid}"),
            None,
            [200, 404, 200, 404, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/billing/payments/{id}/receipt",
            format!("/api/v1/billing/payments/{paid}/receipt"),
            None,
            [200, 404, 200, 404, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/billing/statements/{id}/pdf",
            format!("/api/v1/billing/statements/{st}/pdf"),
            None,
            [200, 404, 200, 404, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/staff/billing/accounts",
            "/api/v1/staff/billing/accounts?mrn=SYN0000000".into(),
            None,
            [403, 403, 403, 403, 403, 403, 200, 404, 401],
        ),
        (
            "post",
            "/v1/staff/billing/statements",
            "/api/v1/staff/billing/statements".into(),
            Some(
                json!({"patient_id": patient, "number": "ST-10", "issued": "2026-11-20",
                "due": "2026-12-20", "lines": [{"service_date": "2026-11-02",
                "description": "Visit", "charge": "1", "insurance_paid": "0",
                "adjustments": "0", "patient_share": "1"}]}),
            ),
            [403, 403, 403, 403, 403, 403, 201, 404, 401],
        ),
        (
            "post",
            "/v1/staff/billing/adjustments",
            "/api/v1/staff/billing/adjustments".into(),
            Some(
                json!({"patient_id": patient, "kind": "charge", "amount": "1.00",
                        "reason": "Missed a line"}),
            ),
            [403, 403, 403, 403, 403, 403, 201, 404, 401],
        ),
        // Without an Idempotency-Key: billing staff of the organisation learn it is missing.
        (
            "post",
            "/v1/staff/billing/payments/{id}/refunds",
            format!("/api/v1/staff/billing/payments/{paid}/refunds"),
            Some(json!({"amount": "1.00", "reason": "Goodwill"})),
            [403, 403, 403, 403, 403, 403, 400, 404, 401],
        ),
        (
            "post",
            "/v1/staff/billing/imports",
            "/api/v1/staff/billing/imports".into(),
            Some(Value::String(format!(
                "{HEADER}\nSYN0000000,IMP-9,2026-11-20,2026-12-20,2026-11-02,Visit,1,0,0,1\n"
            ))),
            [403, 403, 403, 403, 403, 403, 201, 400, 401],
        ),
        (
            "get",
            "/v1/staff/billing/settings",
            "/api/v1/staff/billing/settings".into(),
            None,
            [403, 403, 403, 403, 403, 403, 200, 200, 401],
        ),
        (
            "put",
            "/v1/staff/billing/settings",
            "/api/v1/staff/billing/settings".into(),
            Some(json!({"currency": "USD", "min_instalment": "25.00"})),
            [403, 403, 403, 403, 403, 403, 200, 200, 401],
        ),
    ];
    crate::check_matrix(&app, "Billing", &actors, &rows).await;
}

async fn import(app: &crate::TestApp, clerk: &str, csv: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .post("/api/v1/staff/billing/imports")
        .header("authorization", format!("Bearer {clerk}"))
        .content_type("text/csv")
        .body(csv.to_owned())
        .send()
        .await;
    crate::auth::body(resp).await
}

#[tokio::test]
async fn a_csv_import_stores_every_statement_or_none_and_names_each_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_sandbox(&dir, 0).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        StaffRole::Billing,
    )
    .await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, posted) = post_statement(
        &app,
        &clerk,
        &crate::scheduling::chart(&app, "SYN0000000")
            .await
            .id
            .to_string(),
        "ST-OLD",
    )
    .await;
    assert_eq!(posted["number"], "ST-OLD");
    // Row 2 and 3 are good; every other row has one problem.
    let bad = format!(
        "{HEADER}
SYN0000000,IMP-1,2026-11-20,2026-12-20,2026-11-02,Office visit,200.00,150.00,20.00,30.00
SYN0000000,IMP-1,2026-11-20,2026-12-20,2026-11-02,Lipid panel,45.10,0,0,45.10
SYN0000001,IMP-2,2026-11-20,2026-12-20,2026-11-03,Visit,100.00,80.00,0,25.00
NOBODY,IMP-3,2026-11-20,2026-12-20,2026-11-03,Visit,10,0,0,10
SYN0000001,IMP-4,2026-11-20,2026-12-20,03/11/2026,Visit,10,0,0,10
SYN0000001,IMP-5,2026-11-20,2026-12-20,2026-11-03,Visit,ten,0,0,10
SYN0000001,IMP-1,2026-11-21,2026-12-20,2026-11-03,Visit,10,0,0,10
SYN0000001,ST-OLD,2026-11-20,2026-12-20,2026-11-03,Visit,10,0,0,10
"
    );
    let (status, b) = import(&app, &clerk, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["code"], "invalid_rows");
    let problems: Vec<(u64, &str, &str)> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["column"].as_str().unwrap(),
                r["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            (4, "charge", "line_does_not_add_up"),
            (5, "mrn", "unknown_mrn"),
            (6, "service_date", "invalid_date"),
            (7, "charge", "invalid_amount"),
            (8, "statement_number", "statement_disagrees"),
            (9, "statement_number", "statement_exists"),
        ]
    );
    assert!(
        !b.to_string().contains("Office visit"),
        "the report names rows and columns, not their values"
    );
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &ann, None).await;
    assert_eq!(
        account["statements"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );

    // A missing column is named; then the good rows alone are stored, once.
    let (status, b) = import(&app, &clerk, "mrn,statement_number\nSYN0000000,X-1\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(b["rows"][0]["code"], "missing_column");
    let good: String = bad.lines().take(3).map(|l| format!("{l}\n")).collect();
    let (status, b) = import(&app, &clerk, &good).await;
    assert_eq!(
        (status, &b["statements"], &b["lines"]),
        (StatusCode::CREATED, &json!(1), &json!(2))
    );
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &ann, None).await;
    assert_eq!(
        account["balance"]["owed"], "150.20",
        "75.10 posted, 75.10 imported"
    );
    let (status, b) = import(&app, &clerk, &good).await;
    assert_eq!(
        (status, &b["rows"][0]["code"]),
        (StatusCode::BAD_REQUEST, &json!("statement_exists"))
    );
    let (status, _) = import(&app, &ann, &good).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The id of the first payment of the bearer's account in `state`.
async fn account_payment(app: &crate::TestApp, bearer: &str, state: &str) -> String {
    let (_, account) = call(app, "GET", "/api/v1/billing/account", bearer, None).await;
    account["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["state"] == state)
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned()
}

async fn start_plan(
    app: &crate::TestApp,
    bearer: &str,
    instalments: u8,
    token: &str,
) -> (StatusCode, Value) {
    call(
        app,
        "POST",
        "/api/v1/billing/plans",
        bearer,
        Some(json!({"instalments": instalments, "card_token": token})),
    )
    .await
}

#[tokio::test]
async fn payment_plans_charge_each_instalment_once_retry_a_failure_once_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_sandbox(&dir, 0).await;
    let clerk = staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        StaffRole::Billing,
    )
    .await;
    let (ann, ann_chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (_, bo_chart) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let (_, cy_chart) = linked_patient(&app, "SYN0000002", "cy@example.org").await;
    for (chart, number) in [(&ann_chart, "P-1"), (&bo_chart, "P-2"), (&cy_chart, "P-3")] {
        assert_eq!(
            post_statement(&app, &clerk, chart, number).await.0,
            StatusCode::CREATED
        );
    }
    // The organisation's smallest instalment (25.00 by default) and the 3–12 range.
    for (n, code) in [
        (12, "instalment_too_small"),
        (13, "invalid_instalments"),
        (2, "invalid_instalments"),
    ] {
        let (s, b) = start_plan(&app, &ann, n, "tok_sandbox_success").await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{n}"
        );
    }
    // Three instalments of 75.10: the first today.
    let (s, plan) = start_plan(&app, &ann, 3, "tok_sandbox_success").await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    assert_eq!(plan["amounts"], json!(["25.04", "25.03", "25.03"]));
    assert_eq!(
        (plan["paid"].as_u64(), plan["state"].as_str()),
        (Some(1), Some("active"))
    );
    let (s, b) = start_plan(&app, &ann, 3, "tok_sandbox_success").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("plan_exists"))
    );
    assert_eq!(balance(&app, &ann).await["owed"], "50.06");
    let billing = app.billing();
    assert_eq!(
        billing.charge_due_instalments().await.unwrap(),
        0,
        "nothing due yet"
    );
    // A month later, the second; the task running twice charges it once.
    app.advance_minutes(31 * 24 * 60);
    assert_eq!(billing.charge_due_instalments().await.unwrap(), 1);
    assert_eq!(billing.charge_due_instalments().await.unwrap(), 0);
    let ann = again(&app, "ann@example.org").await;
    assert_eq!(balance(&app, &ann).await["owed"], "25.03");
    app.advance_minutes(31 * 24 * 60);
    assert_eq!(billing.charge_due_instalments().await.unwrap(), 1);
    billing.charge_due_instalments().await.unwrap();
    let ann = again(&app, "ann@example.org").await;
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &ann, None).await;
    assert_eq!(account["balance"]["owed"], "0.00");
    assert_eq!(account["plans"][0]["state"], "completed");
    assert_eq!(charges_taken(&dir), 3);

    // A card that is declined: tried again the next day, then the plan stops, for the patient
    // and for billing staff to see.
    let bo = again(&app, "bo@example.org").await;
    let (s, plan) = start_plan(&app, &bo, 3, "tok_sandbox_declined").await;
    assert_eq!((s, plan["paid"].as_u64()), (StatusCode::CREATED, Some(0)));
    assert_eq!(
        billing.charge_due_instalments().await.unwrap(),
        0,
        "not again the same day"
    );
    app.advance_minutes(24 * 60);
    billing.charge_due_instalments().await.unwrap();
    app.advance_minutes(24 * 60);
    billing.charge_due_instalments().await.unwrap();
    let bo = again(&app, "bo@example.org").await;
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &bo, None).await;
    let plan = &account["plans"][0];
    assert_eq!(
        (plan["state"].as_str(), plan["failed_instalment"].as_u64()),
        (Some("failed"), Some(1))
    );
    let declined = account["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "declined")
        .count();
    assert_eq!(declined, 2, "the first try and one retry");
    assert_eq!(account["balance"]["owed"], "75.10");
    // Billing staff see it too (through the use case: their session ended with the days).
    let clerk_actor = staff_actor(&app, "billing@example.org").await;
    let seen = billing
        .account(
            &clerk_actor,
            Some(salus_domain::PatientId::parse(&bo_chart).unwrap()),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(
        seen.ledger.plans[0].state,
        salus_domain::billing::PlanState::Failed { instalment: 1, .. }
    ));

    // The patient stops a plan; a stopped plan cannot be stopped again.
    let cy = again(&app, "cy@example.org").await;
    let (_, plan) = start_plan(&app, &cy, 3, "tok_sandbox_success").await;
    let id = plan["id"].as_str().unwrap();
    let path = format!("/api/v1/billing/plans/{id}/cancel");
    let refused = billing
        .cancel_plan(&clerk_actor, salus_domain::PlanId::parse(id).unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        "forbidden",
        "the patient's side stops a plan"
    );
    assert_eq!(
        call(&app, "POST", &path, &cy, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, b) = call(&app, "POST", &path, &cy, None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("plan_ended"))
    );
    app.advance_minutes(31 * 24 * 60);
    billing.charge_due_instalments().await.unwrap();
    let cy = again(&app, "cy@example.org").await;
    let (_, account) = call(&app, "GET", "/api/v1/billing/account", &cy, None).await;
    assert_eq!(
        account["payments"].as_array().unwrap().len(),
        1,
        "nothing after it stopped"
    );
}

/// Signs a patient in again (moving the clock by days ends every session).
async fn again(app: &crate::TestApp, email: &str) -> String {
    let (status, b) = crate::auth::post(
        app,
        "/api/v1/auth/login",
        &json!({"email": email, "password": crate::auth::PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

/// The actor of a member of staff, for what is checked after their session ended.
async fn staff_actor(app: &crate::TestApp, email: &str) -> salus_domain::access::Actor {
    let account = salus_domain::account::AccountRepository::find_by_email(
        &app.store,
        &salus_domain::text::Email::parse(email).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    salus_domain::access::Actor::for_account(&account).unwrap()
}
