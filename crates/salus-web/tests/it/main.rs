//! Page tests on mocked ports: status, headers and the words a patient reads.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use poem::EndpointExt;
use poem::http::StatusCode;
use poem::test::TestClient;
use salus_domain::organization::{
    DirectoryService, MockOrganizationRepository, Organization, PortalFeature, ReleasePolicy,
};
use salus_domain::text::{OrgName, Slug};
use salus_domain::{OrganizationId, RepoError};
use salus_web::{HSTS, PAGE_CSP, WebState, routes, security_headers};
use std::sync::Arc;

fn client(repo: MockOrganizationRepository) -> TestClient<impl poem::Endpoint> {
    let state = WebState {
        directory: DirectoryService::new(Arc::new(repo)),
        auth: salus_domain::account::service_without_expectations(),
        records: salus_domain::chart::records_without_expectations(),
        consent: salus_domain::consent::consent_without_expectations(),
        messaging: salus_domain::messaging::messaging_without_expectations(),
        scheduling: salus_domain::scheduling::scheduling_without_expectations(),
        billing: salus_domain::billing::billing_without_expectations(),
        card_form_url: "/sandbox/card".into(),
        secure_cookies: true,
        csrf_key: [7; 32],
    };
    TestClient::new(security_headers(routes(state), true).map_to_response())
}

fn org(name: &str, features: &[PortalFeature]) -> Organization {
    Organization {
        id: OrganizationId::from_uuid(uuid::Uuid::from_u128(1)),
        name: OrgName::parse(name).unwrap(),
        slug: Slug::parse("some-clinic").unwrap(),
        features: features.iter().copied().collect(),
        release_policy: ReleasePolicy::default(),
        phone: None,
        time_zone: salus_domain::chrono_tz::Tz::UTC,
        guardian_policy: salus_domain::organization::GuardianPolicy::default(),
    }
}

async fn body(resp: poem::test::TestResponse) -> String {
    resp.0.into_body().into_string().await.unwrap()
}

#[tokio::test]
async fn landing_page_lists_organizations_and_their_features() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| {
        Ok(vec![org(
            "Harbor Health",
            &[PortalFeature::Records, PortalFeature::Scheduling],
        )])
    });
    let resp = client(repo).get("/").send().await;
    resp.assert_status_is_ok();
    resp.assert_header(poem::http::header::CONTENT_SECURITY_POLICY, PAGE_CSP);
    resp.assert_header(poem::http::header::REFERRER_POLICY, "no-referrer");
    resp.assert_header(poem::http::header::STRICT_TRANSPORT_SECURITY, HSTS);
    let html = body(resp).await;
    assert!(
        html.contains(">Harbor Health</a></h2>") && html.contains("href=\"/clinics/"),
        "each clinic links to its page: {html}"
    );
    assert!(html.contains("Medical records online"));
    // Only what Salus has pages for is listed (appointments are switched on for this clinic,
    // but there is nothing to use yet); an offered feature carries a check mark.
    assert!(
        !html.contains("Book appointments") && !html.contains("Pay bills"),
        "{html}"
    );
    let records = html.find("Medical records online").unwrap();
    assert!(!html[records..].starts_with("Medical records online<span"));
}

#[tokio::test]
async fn names_are_escaped() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list()
        .returning(|| Ok(vec![org("<script>alert(1)</script>", &[])]));
    let html = body(client(repo).get("/").send().await).await;
    assert!(!html.contains("<script>alert(1)"));
    assert!(
        html.contains("&#60;script&#62;alert(1)") || html.contains("&lt;script&gt;alert(1)"),
        "{html}"
    );
}

#[tokio::test]
async fn empty_directory_says_so() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| Ok(vec![]));
    let html = body(client(repo).get("/").send().await).await;
    assert!(html.contains("No organisation offers a portal here yet."));
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let c = client(MockOrganizationRepository::new());
    let resp = c
        .post("/login")
        .content_type("application/x-www-form-urlencoded")
        .body("csrf=forged&email=a%40b.org&password=whatever+whatever")
        .send()
        .await;
    resp.assert_status(StatusCode::FORBIDDEN);
    let html = body(resp).await;
    assert!(html.contains("This form has expired"), "{html}");
    assert!(html.contains("value=\"a@b.org\""), "what was typed is kept");
}

#[tokio::test]
async fn sign_in_page_sets_a_strict_csrf_cookie_and_embeds_its_token() {
    let resp = client(MockOrganizationRepository::new())
        .get("/login")
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("cache-control", "no-store");
    let cookie = resp
        .0
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-salus_csrf="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    let html = body(resp).await;
    assert!(html.contains("name=\"csrf\" value=\""));
    assert!(
        html.contains("<label for=\"password\">Password</label>"),
        "fields are labelled"
    );
}

#[tokio::test]
async fn storage_failure_is_a_friendly_503() {
    let mut repo = MockOrganizationRepository::new();
    repo.expect_list().returning(|| Err(RepoError::Unavailable));
    let resp = client(repo).get("/").send().await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(resp).await.contains("Temporarily unavailable"));
}

#[tokio::test]
async fn unknown_page_is_a_404_page_and_css_is_served() {
    let c = client(MockOrganizationRepository::new());
    let resp = c.get("/no/such/page").send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    resp.assert_header(poem::http::header::CONTENT_SECURITY_POLICY, PAGE_CSP);
    assert!(body(resp).await.contains("Page not found"));
    let css = c.get("/static/salus.css").send().await;
    css.assert_status_is_ok();
    css.assert_content_type("text/css; charset=utf-8");
    assert!(body(css).await.contains("@media print"));
}
