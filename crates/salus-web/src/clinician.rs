//! Clinician pages: open a chart of the organisation by medical record number, see its
//! overview and the records held for release, file a lab result or a note, release a held
//! record. Every read and change goes through the domain's `RecordsService` (authorised and
//! audited there).

use crate::account::{FORM_EXPIRED, see_other, session_token, with_status};
use crate::records::{Row, rows};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{CsrfToken, CsrfVerifier, Data, Form, Path, Query};
use poem::{Response, handler};
use salus_domain::access::Actor;
use salus_domain::account::SessionError;
use salus_domain::chart::{InputError, LabResultInput, NewRecord, RecordsError};
use salus_domain::record::SensitivityLabel;
use salus_domain::text::{DisplayName, Mrn};
use salus_domain::{PatientId, RecordId};
use serde::Deserialize;
use std::sync::Arc;

/// The signed-in clinician's actor and name, or the response to give instead.
async fn clinician(state: &WebState, jar: &CookieJar) -> Result<(Actor, String), Response> {
    let Some(token) = session_token(state, jar) else {
        return Err(see_other("/login"));
    };
    match state.auth.authenticate(&token).await {
        Ok(who) => match Actor::for_account(&who.account) {
            Some(a @ Actor::Staff { .. }) => Ok((a, who.account.name.full())),
            _ => Err(not_for_you()),
        },
        Err(SessionError::Invalid) => Err(see_other("/login")),
        Err(SessionError::Repo(e)) => Err(crate::unavailable("session check failed", &e)),
    }
}

fn not_for_you() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not available",
        "This page is for clinicians.",
    )
}

fn failure(e: RecordsError) -> Response {
    match e {
        RecordsError::NotFound | RecordsError::NoChart => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such chart in your organisation, or your role may not open charts.",
        ),
        RecordsError::NotHeld => error_page(
            StatusCode::CONFLICT,
            "Already released",
            "This record is not waiting for release.",
        ),
        RecordsError::AuditUnavailable
        | RecordsError::ReauthenticationRequired
        | RecordsError::InvalidVisit => crate::unavailable(
            "audit log unavailable, or an unexpected refusal (the form names no visit)",
            &e,
        ),
        RecordsError::Repo(r) => crate::unavailable("chart read failed", &r),
    }
}

#[derive(Template)]
#[template(path = "clinician_find.html")]
struct FindPage<'a> {
    mrn: &'a str,
    message: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct FindQuery {
    mrn: Option<String>,
}

#[handler]
pub(crate) async fn find(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    jar: &CookieJar,
    Query(q): Query<FindQuery>,
) -> Response {
    let (actor, _) = match clinician(&state, jar).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let typed = q.mrn.unwrap_or_default();
    if typed.trim().is_empty() {
        return render(&FindPage {
            mrn: "",
            message: None,
        });
    }
    let refused = |status| {
        with_status(
            render(&FindPage {
                mrn: &typed,
                message: Some("No chart with this medical record number in your organisation."),
            }),
            status,
        )
    };
    let Ok(mrn) = Mrn::parse(&typed) else {
        return refused(StatusCode::BAD_REQUEST);
    };
    match state.records.chart_by_mrn(&actor, &mrn, rid.get()).await {
        Ok(found) => see_other(&format!("/staff/charts/{}", found.id)),
        Err(RecordsError::NotFound) => refused(StatusCode::NOT_FOUND),
        Err(e) => failure(e),
    }
}

struct LabelOption {
    code: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "clinician_chart.html")]
struct ChartPage<'a> {
    csrf: &'a str,
    patient_id: String,
    name: String,
    birth_date: String,
    mrn: String,
    notice: Option<&'a str>,
    message: Option<String>,
    held: Vec<Row>,
    results: Vec<Row>,
    medications: Vec<Row>,
    problems: Vec<Row>,
    allergies: Vec<Row>,
    visits: Vec<Row>,
    labels: Vec<LabelOption>,
}

#[allow(
    clippy::too_many_arguments,
    reason = "the page context these travel in is the shared layout work of issue 12"
)]
async fn chart_page(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &CsrfToken,
    actor: &Actor,
    patient: PatientId,
    notice: Option<&str>,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let s = match state.records.summary(actor, Some(patient), rid.get()).await {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let page = ChartPage {
        csrf: &csrf.0,
        patient_id: s.patient.id.to_string(),
        name: s.patient.name.full(),
        birth_date: s.patient.birth_date.to_string(),
        mrn: s.patient.mrn.as_str().to_owned(),
        notice,
        message,
        held: rows(&s.held),
        results: rows(&s.recent_results),
        medications: rows(&s.active_medications),
        problems: rows(&s.active_problems),
        allergies: rows(&s.allergies),
        visits: rows(&s.recent_visits),
        labels: SensitivityLabel::ALL
            .iter()
            .map(|l| LabelOption {
                code: l.code(),
                label: l.label(),
            })
            .collect(),
    };
    with_status(render(&page), status)
}

/// The chart page again, saying the form expired (a CSRF token that does not verify).
async fn form_expired(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &CsrfToken,
    actor: &Actor,
    patient: PatientId,
) -> Response {
    chart_page(
        rid,
        state,
        csrf,
        actor,
        patient,
        None,
        Some(FORM_EXPIRED.into()),
        StatusCode::FORBIDDEN,
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct ChartQuery {
    done: Option<String>,
}

#[handler]
pub(crate) async fn chart(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
    Path(id): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let (actor, _) = match clinician(&state, jar).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(patient) = PatientId::parse(&id) else {
        return failure(RecordsError::NotFound);
    };
    let notice = match q.done.as_deref() {
        Some("filed") => Some("Filed. The patient is told by email that something new is waiting."),
        Some("held") => Some("Filed and held: the patient sees it once you release it."),
        Some("released") => Some("Released: the patient sees it now."),
        _ => None,
    };
    chart_page(
        &rid,
        &state,
        csrf,
        &actor,
        patient,
        notice,
        None,
        StatusCode::OK,
    )
    .await
}

/// A lab result or a note, as the chart page's forms send it.
#[derive(Deserialize)]
pub(crate) struct FileForm {
    csrf: String,
    /// `lab_result` or `note`.
    kind: String,
    title: String,
    loinc: Option<String>,
    value: Option<String>,
    unit: Option<String>,
    reference_low: Option<String>,
    reference_high: Option<String>,
    text: Option<String>,
    /// One checkbox per sensitivity label; present when checked.
    mental_health: Option<String>,
    substance_use: Option<String>,
    sexual_reproductive_health: Option<String>,
    hiv: Option<String>,
    genetic: Option<String>,
}

fn number(v: Option<&str>) -> Result<Option<f64>, InputError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .replace(',', ".")
            .parse::<f64>()
            .map(Some)
            .map_err(|_| InputError::Record("Numbers must be written like 5.4.")),
    }
}

fn new_record(
    patient: PatientId,
    f: &FileForm,
    author: Option<DisplayName>,
) -> Result<NewRecord, InputError> {
    let checked = [
        ("mental_health", &f.mental_health),
        ("substance_use", &f.substance_use),
        ("sexual_reproductive_health", &f.sexual_reproductive_health),
        ("hiv", &f.hiv),
        ("genetic", &f.genetic),
    ];
    let labels = NewRecord::labels(
        checked
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(code, _)| *code),
    )?;
    match f.kind.as_str() {
        "lab_result" => NewRecord::lab_result(
            patient,
            LabResultInput {
                title: f.title.clone(),
                loinc: f.loinc.clone(),
                value: number(f.value.as_deref())?,
                unit: f.unit.clone(),
                reference_low: number(f.reference_low.as_deref())?,
                reference_high: number(f.reference_high.as_deref())?,
            },
            labels,
            author,
        ),
        "note" => NewRecord::note(
            patient,
            &f.title,
            f.text.as_deref().unwrap_or_default(),
            labels,
            author,
        ),
        _ => Err(InputError::Record("Choose a lab result or a note.")),
    }
}

#[handler]
pub(crate) async fn file(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(f): Form<FileForm>,
) -> Response {
    let (actor, name) = match clinician(&state, jar).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(patient) = PatientId::parse(&id) else {
        return failure(RecordsError::NotFound);
    };
    if !verifier.is_valid(&f.csrf) {
        return form_expired(&rid, &state, csrf, &actor, patient).await;
    }
    let new = match new_record(patient, &f, DisplayName::parse(&name).ok()) {
        Ok(n) => n,
        Err(e) => {
            return chart_page(
                &rid,
                &state,
                csrf,
                &actor,
                patient,
                None,
                Some(format!("Nothing was filed. {e}")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    match state.records.file(&actor, new, rid.get()).await {
        Ok(record) => {
            let done = if record.meta.release.is_visible_at(record.meta.filed_at) {
                "filed"
            } else {
                "held"
            };
            see_other(&format!("/staff/charts/{patient}?done={done}"))
        }
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReleaseForm {
    csrf: String,
    patient_id: String,
}

#[handler]
pub(crate) async fn release(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ReleaseForm>,
) -> Response {
    let (actor, _) = match clinician(&state, jar).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (Ok(record), Ok(patient)) = (RecordId::parse(&id), PatientId::parse(&f.patient_id)) else {
        return failure(RecordsError::NotFound);
    };
    if !verifier.is_valid(&f.csrf) {
        return form_expired(&rid, &state, csrf, &actor, patient).await;
    }
    match state.records.release(&actor, record, rid.get()).await {
        Ok(()) => see_other(&format!("/staff/charts/{patient}?done=released")),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_accept_a_decimal_comma_and_refuse_words() {
        assert_eq!(number(Some(" 5,4 ")), Ok(Some(5.4)));
        assert_eq!(number(Some("")), Ok(None));
        assert!(number(Some("five")).is_err());
    }
}
