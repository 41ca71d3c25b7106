//! HTTP tests of the API on mocked ports: status and body of every answer.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use poem::test::TestClient;
use salus_domain::organization::{
    DirectoryService, MockOrganizationRepository, Organization, PortalFeature, ReleasePolicy,
};
use salus_domain::text::{OrgName, Slug};
use salus_domain::{OrganizationId, RepoError};
use salus_http::{ApiState, routes};
use std::collections::BTreeSet;
use std::sync::Arc;

fn client(repo: MockOrganizationRepository) -> TestClient<impl poem::Endpoint> {
    let state = ApiState {
        directory: DirectoryService::new(Arc::new(repo)),
        auth: salus_domain::account::service_without_expectations(),
        records: salus_domain::chart::records_without_expectations(),
        consent: salus_domain::consent::consent_without_expectations(),
        messaging: salus_domain::messaging::messaging_without_expectations(),
        scheduling: salus_domain::scheduling::scheduling_without_expectations(),
        billing: salus_domain::billing::billing_without_expectations(),
    };
    TestClient::new(poem::Route::new().nest("/api", routes(state)))
}

fn org(slug: &str, features: &[PortalFeature]) -> Organization {
    Organization {
        id: OrganizationId::from_uuid(uuid::Uuid::from_u128(7)),
        name: OrgName::parse("Northside Clinic").unwrap(),
        slug: Slug::parse(slug).unwrap(),
        features: features.iter().copied().collect::<BTreeSet<_>>(),
        release_policy: ReleasePolicy::default(),
        phone: None,
        time_zone: salus_domain::chrono_tz::Tz::UTC,
        guardian_policy: salus_domain::organization::GuardianPolicy::default(),
    }
}

#[tokio::test]
async fn directory_lists_organizations_with_features() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| {
        Ok(vec![org(
            "northside",
            &[PortalFeature::Records, PortalFeature::BillPay],
        )])
    });
    let resp = client(repo).get("/api/v1/organizations").send().await;
    resp.assert_status_is_ok();
    resp.assert_json(serde_json::json!({
        "organizations": [
            {"slug": "northside", "name": "Northside Clinic", "features": ["records", "bill_pay"]}
        ]
    }))
    .await;
}

#[tokio::test]
async fn storage_failure_is_503_with_a_stable_code() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| Err(RepoError::Unavailable));
    let resp = client(repo).get("/api/v1/organizations").send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_json(serde_json::json!({
        "code": "storage_unavailable",
        "message": "The service is temporarily unavailable."
    }))
    .await;
}

#[tokio::test]
async fn api_answers_are_never_cached_and_carry_a_request_id() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| Ok(vec![]));
    let resp = client(repo)
        .get("/api/v1/organizations")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    resp.assert_header("cache-control", "no-store");
    resp.assert_header("x-request-id", "abc-123");
    let resp = client(MockOrganizationRepository::new())
        .get("/api/v1/nope")
        .header("x-request-id", "bad id!")
        .send()
        .await;
    let id = resp
        .0
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "bad id!");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
}

#[tokio::test]
async fn requests_without_credentials_or_with_bad_bodies_get_json_errors() {
    let c = client(MockOrganizationRepository::new());
    let resp = c.get("/api/v1/me").send().await;
    resp.assert_status(poem::http::StatusCode::UNAUTHORIZED);
    resp.assert_json(
        serde_json::json!({"code": "unauthorized", "message": "Sign in to continue."}),
    )
    .await;
    let resp = c
        .post("/api/v1/auth/login")
        .content_type("application/json")
        .body("{not json")
        .send()
        .await;
    resp.assert_status(poem::http::StatusCode::BAD_REQUEST);
    resp.assert_json(serde_json::json!({"code": "invalid_body", "message": "The request body is not valid JSON for this endpoint."})).await;
    let resp = c
        .post("/api/v1/auth/login")
        .body_json(&serde_json::json!({"email": "a@b.org", "password": "x", "extra": 1}))
        .send()
        .await;
    resp.assert_status(poem::http::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let resp = client(MockOrganizationRepository::new())
        .get("/api/v1/nope")
        .send()
        .await;
    resp.assert_status(poem::http::StatusCode::NOT_FOUND);
    resp.assert_json(serde_json::json!({"code": "not_found", "message": "No such API endpoint."}))
        .await;

    let resp = client(MockOrganizationRepository::new())
        .post("/api/v1/organizations")
        .send()
        .await;
    resp.assert_status(poem::http::StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_json(serde_json::json!({"code": "method_not_allowed", "message": "This endpoint does not accept that method."})).await;
}

#[tokio::test]
async fn spec_and_docs_are_served() {
    let c = client(MockOrganizationRepository::new());
    let resp = c.get("/api/openapi.json").send().await;
    resp.assert_status_is_ok();
    let spec: serde_json::Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(spec["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert!(spec["paths"]["/v1/organizations"]["get"].is_object());
    let docs = c.get("/api/docs").send().await;
    docs.assert_status_is_ok();
    docs.assert_content_type("text/html; charset=utf-8");
}
