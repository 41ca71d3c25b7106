//! Downloads of the patient's records: the whole chart as a FHIR file and the International
//! Patient Summary. The page asks for the password again first (downloads need it within
//! the last few minutes, a rule the domain enforces); the domain decides what the export
//! holds and writes it to the access history.

use crate::account::{FORM_EXPIRED, see_other, session_token};
use crate::records::{failure, signed_in};
use crate::{WebState, render};
use askama::Template;
use futures_util::StreamExt as _;
use poem::http::{StatusCode, header};
use poem::web::cookie::CookieJar;
use poem::web::{CsrfToken, CsrfVerifier, Data, Form, Query};
use poem::{Body, IntoResponse, Response, handler};
use salus_domain::account::{HashError, LoginError, SecretText, SessionError};
use salus_domain::export::{ChartExport, ExportFormat, ExportRequest};
use salus_domain::record::RecordKind;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "download.html")]
struct DownloadPage<'a> {
    csrf: &'a str,
    fresh: bool,
    message: Option<&'a str>,
    /// (code, label) of every kind of record, for the per-kind printout.
    kinds: Vec<(&'static str, &'static str)>,
}

async fn page(
    state: &WebState,
    csrf: &CsrfToken,
    jar: &CookieJar,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(token) = session_token(state, jar) else {
        return see_other("/login");
    };
    let fresh = match state.auth.authenticate_recent(&token).await {
        Ok(who) => who.is_some(),
        Err(SessionError::Invalid) => return see_other("/login"),
        Err(SessionError::Repo(e)) => return crate::unavailable("session check failed", &e),
    };
    let mut r = render(&DownloadPage {
        csrf: &csrf.0,
        fresh,
        message,
        kinds: RecordKind::ALL
            .iter()
            .map(|k| (k.code(), k.label()))
            .collect(),
    });
    r.set_status(status);
    r
}

#[handler]
pub(crate) async fn download_page(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
) -> Response {
    page(&state, csrf, jar, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    password: String,
}

/// Re-enters the password, then shows the downloads.
#[handler]
pub(crate) async fn confirm(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let Some(token) = session_token(&state, jar) else {
        return see_other("/login");
    };
    if !verifier.is_valid(&f.csrf) {
        return page(&state, csrf, jar, Some(FORM_EXPIRED), StatusCode::FORBIDDEN).await;
    }
    let (message, status) = match state
        .auth
        .reauthenticate(&token, SecretText::new(f.password), rid.get())
        .await
    {
        Ok(()) => return see_other("/records/download"),
        Err(LoginError::SessionEnded) => return see_other("/login"),
        Err(LoginError::Throttled { .. }) => (
            "Too many attempts. Please wait and try again.",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(LoginError::Busy(HashError::Busy { .. })) => (
            "The service is busy. Please try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(_) => ("The password is not correct.", StatusCode::UNAUTHORIZED),
    };
    page(&state, csrf, jar, Some(message), status).await
}

/// The export the signed-in patient may take, or the page to go to instead.
async fn start(
    rid: &crate::RequestId,
    state: &WebState,
    jar: &CookieJar,
    format: ExportFormat,
    kinds: Vec<RecordKind>,
) -> Result<ChartExport, Response> {
    let (actor, authenticated_at) = signed_in(state, jar).await?;
    let request = ExportRequest {
        patient: None,
        format,
        kinds,
        authenticated_at,
    };
    state
        .records
        .export(&actor, request, rid.get())
        .await
        .map_err(failure)
}

fn file(body: Body, content_type: &str, name: &str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        poem::http::HeaderValue::from_str(content_type).unwrap_or(
            poem::http::HeaderValue::from_static("application/octet-stream"),
        ),
    );
    if let Ok(v) = poem::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[handler]
pub(crate) async fn fhir(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    jar: &CookieJar,
) -> Response {
    let export = match start(&rid, &state, jar, ExportFormat::Fhir, Vec::new()).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let day = export.generated_at().format("%Y-%m-%d").to_string();
    let stream = salus_fhir::export::bundle_stream(export, uuid::Uuid::now_v7()).map(|r| {
        r.map_err(|_| {
            tracing::warn!("a FHIR download stopped part-way: the store failed");
            std::io::Error::other("the store failed during a download")
        })
    });
    file(
        Body::from_bytes_stream(stream),
        "application/fhir+json",
        &format!("health-record-{day}.json"),
    )
}

#[handler]
pub(crate) async fn ips(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    jar: &CookieJar,
) -> Response {
    let export = match start(&rid, &state, jar, ExportFormat::Ips, Vec::new()).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let day = export.generated_at().format("%Y-%m-%d").to_string();
    match salus_fhir::ips::ips_document(export, uuid::Uuid::now_v7(), uuid::Uuid::now_v7()).await {
        Ok(doc) => file(
            Body::from_vec(doc.to_string().into_bytes()),
            "application/fhir+json",
            &format!("patient-summary-{day}.json"),
        ),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PdfQuery {
    kind: Option<String>,
}

/// The health summary as a PDF, or with `kind`, every record of that kind.
#[handler]
pub(crate) async fn pdf(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    jar: &CookieJar,
    Query(q): Query<PdfQuery>,
) -> Response {
    let kind = match q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(code) => match RecordKind::from_code(code) {
            Some(k) => Some(k),
            None => {
                return crate::error_page(
                    StatusCode::BAD_REQUEST,
                    "Not a list",
                    "Choose one of the lists offered on the download page.",
                );
            }
        },
    };
    let export = match start(
        &rid,
        &state,
        jar,
        ExportFormat::Pdf,
        kind.into_iter().collect(),
    )
    .await
    {
        Ok(e) => e,
        Err(r) => return r,
    };
    let day = export.generated_at().format("%Y-%m-%d").to_string();
    let stem = kind.map_or("health-summary", |k| k.code());
    match salus_pdf::export_pdf(export, kind).await {
        Ok(bytes) => file(
            Body::from_vec(bytes),
            "application/pdf",
            &format!("{stem}-{day}.pdf"),
        ),
        Err(e) => failure(e),
    }
}
