//! Downloads of the patient's records: the whole chart as a FHIR file and the International
//! Patient Summary. The page asks for the password again first (downloads need it within
//! the last few minutes, a rule the domain enforces); the domain decides what the export
//! holds and writes it to the access history.

use crate::records::failure;
use crate::session::{Acting, CheckedForm, Refill, SignedIn, see_other};
use crate::{WebState, render};
use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{CsrfToken, Data, Query};
use poem::{Body, IntoResponse, Response, handler};
use salus_domain::RepoError;
use salus_domain::account::{HashError, LoginError, SecretText};
use salus_domain::chart::{ExportError, ReadError};
use salus_domain::export::{ChartExport, ExportFormat, ExportRequest, file_name};
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

fn page(
    state: &WebState,
    csrf: &CsrfToken,
    me: &SignedIn,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let fresh = state.auth.proved_recently(me.authenticated_at);
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
pub(crate) fn download_page(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
) -> Response {
    page(&state, csrf, &me, None, StatusCode::OK)
}

impl Refill for ConfirmForm {}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    password: String,
}

/// Re-enters the password, then shows the downloads.
#[handler]
pub(crate) async fn confirm(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<ConfirmForm>,
) -> Response {
    let (message, status) = match state
        .auth
        .reauthenticate(&me.token, SecretText::new(f.password), rid.get())
        .await
    {
        Ok(()) => return see_other("/records/download"),
        Err(LoginError::SessionEnded) => return see_other("/login"),
        Err(LoginError::Throttled { .. }) => (
            salus_domain::account::TOO_MANY_ATTEMPTS,
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(LoginError::Busy(HashError::Busy { .. })) => (
            "The service is busy. Please try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(_) => (
            salus_domain::account::WRONG_PASSWORD,
            StatusCode::UNAUTHORIZED,
        ),
    };
    page(&state, csrf, &me, Some(message), status)
}

/// The export the signed-in patient may take, or the page to go to instead.
async fn start(
    rid: &crate::RequestId,
    state: &WebState,
    me: &Acting,
    format: ExportFormat,
    kinds: Vec<RecordKind>,
) -> Result<ChartExport, Response> {
    let request = ExportRequest {
        patient: None,
        format,
        kinds,
        authenticated_at: me.signed_in.authenticated_at,
    };
    match state.records.export(&me.actor, request, rid.get()).await {
        Ok(export) => Ok(export),
        Err(ExportError::ReauthenticationRequired) => Err(see_other("/records/download")),
        Err(ExportError::NotFound) => Err(failure(ReadError::NotFound)),
        Err(ExportError::NoChart) => Err(failure(ReadError::NoChart)),
        Err(e @ ExportError::AuditUnavailable) => {
            Err(crate::unavailable("audit log unavailable", &e))
        }
        Err(ExportError::Repo(r)) => Err(crate::unavailable("export failed", &r)),
    }
}

/// A download whose records could not all be read.
fn read_failed(e: &RepoError) -> Response {
    crate::unavailable("a download could not read the records", e)
}

/// A file to save, named `name` (see [`file_name`]).
pub(crate) fn download(body: Body, content_type: &str, name: &str) -> Response {
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
    me: Acting,
) -> Response {
    let export = match start(&rid, &state, &me, ExportFormat::Fhir, Vec::new()).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let name = file_name(ExportFormat::Fhir, None, export.generated_at());
    let stream = salus_fhir::export::bundle_body(export, uuid::Uuid::now_v7());
    download(
        Body::from_bytes_stream(stream),
        "application/fhir+json",
        &name,
    )
}

#[handler]
pub(crate) async fn ips(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    me: Acting,
) -> Response {
    let export = match start(&rid, &state, &me, ExportFormat::Ips, Vec::new()).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let name = file_name(ExportFormat::Ips, None, export.generated_at());
    match salus_fhir::ips::ips_document(export, uuid::Uuid::now_v7(), uuid::Uuid::now_v7()).await {
        Ok(doc) => download(
            Body::from_vec(doc.to_string().into_bytes()),
            "application/fhir+json",
            &name,
        ),
        Err(e) => read_failed(&e),
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
    me: Acting,
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
        &me,
        ExportFormat::Pdf,
        kind.into_iter().collect(),
    )
    .await
    {
        Ok(e) => e,
        Err(r) => return r,
    };
    let name = file_name(ExportFormat::Pdf, kind, export.generated_at());
    match salus_pdf::export_pdf(export, kind).await {
        Ok(bytes) => download(Body::from_vec(bytes), "application/pdf", &name),
        Err(e) => read_failed(&e),
    }
}
