//! A share link's page, for someone without an account (a doctor elsewhere, a school nurse):
//! the patient's name and birth date, the records the link covers, and FHIR and PDF downloads
//! of exactly those. Read-only, and nothing on it links back into the portal. The token is in
//! the address (the link is the credential); the request log never shows it, answers are
//! `no-store` with `Referrer-Policy: no-referrer` (as every answer of the portal is). Every
//! open and every download is in the patient's access history — the domain writes it.

use crate::records::{Row, Viewer, failure, rows};
use crate::session::{CheckedForm, Refill};
use crate::{WebState, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path};
use poem::{Body, Response, handler};
use salus_domain::access::Actor;
use salus_domain::account::SecretText;
use salus_domain::chart::{ListFilter, ListRequest};
use salus_domain::consent::{Grant, Grantee, OpenError};
use salus_domain::export::{ExportFormat, ExportRequest, file_name};
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

/// Records of each kind shown on the page (the downloads hold them all).
const SHOWN: u32 = 100;

struct Section {
    label: &'static str,
    rows: Vec<Row>,
    show_value: bool,
}

#[derive(Template)]
#[template(path = "share.html")]
struct SharePage<'a> {
    csrf: &'a str,
    token: &'a str,
    /// The passcode typed, carried to the downloads (the page is never stored).
    passcode: &'a str,
    name: String,
    birth_date: String,
    recipient: Option<String>,
    until: String,
    sections: Vec<Section>,
    shown: u32,
}

#[derive(Template)]
#[template(path = "share_passcode.html")]
struct PasscodePage<'a> {
    csrf: &'a str,
    token: &'a str,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "share_message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let mut r = render(&MessagePage {
        title,
        message: text,
    });
    r.set_status(status);
    r
}

/// The answer to a link that does not open, or that needs (another) passcode.
fn refused(e: OpenError, csrf: &str, token: &str) -> Response {
    let passcode_form = |status: StatusCode, text: Option<String>| {
        let mut r = render(&PasscodePage {
            csrf,
            token,
            message: text,
        });
        r.set_status(status);
        r
    };
    match e {
        OpenError::Invalid => message(StatusCode::NOT_FOUND, "Link not valid", &e.to_string()),
        OpenError::Locked => message(StatusCode::GONE, "Link locked", &e.to_string()),
        OpenError::PasscodeNeeded => passcode_form(StatusCode::OK, None),
        OpenError::WrongPasscode { left } => passcode_form(
            StatusCode::UNAUTHORIZED,
            Some(format!(
                "That passcode is not correct. After {left} more wrong {} the link is locked.",
                if left == 1 { "try" } else { "tries" }
            )),
        ),
        OpenError::Wait { seconds } => passcode_form(
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many wrong passcodes. Try again in {seconds} seconds."
            )),
        ),
        OpenError::Busy { .. } => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too busy right now. Please try again in a few seconds.",
        ),
        OpenError::Repo(r) => crate::unavailable("share link failed", &r),
    }
}

/// Opens the link of `token` (with `passcode`, when it has one).
async fn open(
    state: &WebState,
    rid: &crate::RequestId,
    token: &str,
    passcode: Option<&str>,
    csrf: &str,
) -> Result<(Actor, Grant), Response> {
    state
        .consent
        .open_share_link(
            &SecretText::new(token),
            passcode.map(SecretText::new),
            rid.get(),
        )
        .await
        .map_err(|e| refused(e, csrf, token))
}

async fn page(
    state: &WebState,
    rid: &crate::RequestId,
    csrf: &str,
    token: &str,
    passcode: &str,
    (actor, grant): (Actor, Grant),
) -> Response {
    let tz = match state.records.time_zone(&actor).await {
        Ok(tz) => tz,
        Err(e) => return failure(e),
    };
    let viewer = Viewer {
        tz,
        new_after: None,
    };
    let summary = match state.records.summary(&actor, None, rid.get()).await {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let mut sections = Vec::new();
    for kind in &summary.kinds {
        let request = ListRequest {
            patient: None,
            kind: *kind,
            filter: ListFilter::default(),
            after: None,
            limit: SHOWN,
        };
        match state.records.list(&actor, request, rid.get()).await {
            Ok(p) => sections.push(Section {
                label: kind.label(),
                rows: rows(&p.items, &viewer),
                show_value: *kind == salus_domain::record::RecordKind::Observation,
            }),
            Err(e) => return failure(e),
        }
    }
    let recipient = match &grant.grantee {
        Grantee::ShareLink { recipient, .. } => recipient.as_ref().map(|r| r.as_str().to_owned()),
        Grantee::Proxy { .. } | Grantee::Guardian { .. } => None,
    };
    render(&SharePage {
        csrf,
        token,
        passcode,
        name: summary.patient.name.full(),
        birth_date: when::day(summary.patient.birth_date),
        recipient,
        until: when::moment(grant.scope.valid_until, tz),
        sections,
        shown: SHOWN,
    })
}

/// Opening the link.
#[handler]
pub(crate) async fn show(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Path(token): Path<String>,
) -> Response {
    match open(&state, &rid, &token, None, &csrf.0).await {
        Ok(opened) => page(&state, &rid, &csrf.0, &token, "", opened).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct PasscodeForm {
    #[serde(default)]
    passcode: String,
    /// For a PDF: one kind of record, or the whole summary.
    #[serde(default)]
    kind: String,
}

impl Refill for PasscodeForm {}

/// The link's passcode, typed.
#[handler]
pub(crate) async fn unlock(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Path(token): Path<String>,
    CheckedForm(f): CheckedForm<PasscodeForm>,
) -> Response {
    match open(&state, &rid, &token, Some(&f.passcode), &csrf.0).await {
        Ok(opened) => page(&state, &rid, &csrf.0, &token, &f.passcode, opened).await,
        Err(r) => r,
    }
}

/// Everything the link covers, as a FHIR file.
#[handler]
pub(crate) async fn fhir(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Path(token): Path<String>,
    CheckedForm(f): CheckedForm<PasscodeForm>,
) -> Response {
    let export = match start(&state, &rid, &csrf.0, &token, &f, ExportFormat::Fhir, None).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let name = file_name(ExportFormat::Fhir, None, export.generated_at());
    let stream = salus_fhir::export::bundle_body(export, uuid::Uuid::now_v7());
    crate::download::download(
        Body::from_bytes_stream(stream),
        "application/fhir+json",
        &name,
    )
}

/// Everything the link covers (or one kind of it), as a PDF.
#[handler]
pub(crate) async fn pdf(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Path(token): Path<String>,
    CheckedForm(f): CheckedForm<PasscodeForm>,
) -> Response {
    let kind = match f.kind.trim() {
        "" => None,
        code => match salus_domain::record::RecordKind::from_code(code) {
            Some(k) => Some(k),
            None => {
                return message(
                    StatusCode::BAD_REQUEST,
                    "Not a list",
                    "Choose one of the downloads offered on the page.",
                );
            }
        },
    };
    let export = match start(&state, &rid, &csrf.0, &token, &f, ExportFormat::Pdf, kind).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let name = file_name(ExportFormat::Pdf, kind, export.generated_at());
    match salus_pdf::export_pdf(export, kind).await {
        Ok(bytes) => crate::download::download(Body::from_vec(bytes), "application/pdf", &name),
        Err(e) => crate::unavailable("a shared download could not read the records", &e),
    }
}

/// The export a link's holder may take.
async fn start(
    state: &WebState,
    rid: &crate::RequestId,
    csrf: &str,
    token: &str,
    f: &PasscodeForm,
    format: ExportFormat,
    kind: Option<salus_domain::record::RecordKind>,
) -> Result<salus_domain::export::ChartExport, Response> {
    let (actor, _) = open(state, rid, token, Some(&f.passcode), csrf).await?;
    let request = ExportRequest {
        patient: None,
        format,
        kinds: kind.into_iter().collect(),
        // A share link proves itself at every request; no session to re-confirm.
        authenticated_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
    };
    state
        .records
        .export(&actor, request, rid.get())
        .await
        .map_err(|e| match e {
            salus_domain::chart::ExportError::Repo(r) => {
                crate::unavailable("share export failed", &r)
            }
            salus_domain::chart::ExportError::AuditUnavailable => {
                crate::unavailable("audit log unavailable", &e)
            }
            _ => message(
                StatusCode::NOT_FOUND,
                "Not available",
                "This download is not part of what was shared with you.",
            ),
        })
}
