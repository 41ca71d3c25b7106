//! Refill requests in the pages: the patient's list and the form from an active medication
//! (saved or new pharmacy, quantity, note), cancelling while it waits; the clinicians' queue
//! with approve and deny forms. The domain's `MessagingService` decides and audits.

use crate::account::with_status;
use crate::form::Problems;
use crate::session::{Acting, CheckedForm, NoFields, Refill, StaffMember, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::messaging::{
    Approval, DenyReason, MessagingError, NewPharmacy, Pharmacy, PharmacyChoice, RefillMove,
    RefillRequest, RefillState,
};
use salus_domain::{PharmacyId, RecordId, RefillId, when};
use serde::Deserialize;
use std::sync::Arc;

/// What a refusal answers when it is not about a field.
fn failed(e: MessagingError) -> Response {
    match e {
        MessagingError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such medication or request, or it is not yours to see.",
        ),
        MessagingError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is not for your role.",
        ),
        MessagingError::Repo(r) => crate::unavailable("refills failed", &r),
        other => error_page(StatusCode::CONFLICT, "Not done", &other.to_string()),
    }
}

/// A request as the pages show it.
pub(crate) struct RefillRow {
    pub(crate) id: String,
    pub(crate) medication: String,
    pub(crate) medication_id: String,
    pub(crate) pharmacy: String,
    pub(crate) quantity: u32,
    pub(crate) note: Option<String>,
    pub(crate) asked: String,
    pub(crate) state: &'static str,
    pub(crate) waiting: bool,
    /// The answer in words (approved quantity and refills, or the reason).
    pub(crate) answer: Option<String>,
    /// The clinician's instructions or note.
    pub(crate) answer_note: Option<String>,
    pub(crate) answered: Option<String>,
    pub(crate) patient: String,
}

pub(crate) fn refill_row(
    r: &RefillRequest,
    tz: salus_domain::chrono_tz::Tz,
    patient: String,
) -> RefillRow {
    let (state, answer, answer_note, answered) = match &r.state {
        RefillState::Requested => ("Waiting for an answer", None, None, None),
        RefillState::Approved { approval, at, .. } => (
            "Approved",
            Some(format!(
                "Approved: {} to the pharmacy, {} refill{}.",
                approval.quantity,
                approval.refills,
                if approval.refills == 1 { "" } else { "s" }
            )),
            approval.instructions.clone(),
            Some(when::moment(*at, tz)),
        ),
        RefillState::Denied {
            reason, note, at, ..
        } => (
            "Not approved",
            Some(reason.label().to_owned()),
            note.clone(),
            Some(when::moment(*at, tz)),
        ),
        RefillState::Cancelled { at, .. } => ("Cancelled", None, None, Some(when::moment(*at, tz))),
    };
    RefillRow {
        id: r.id.to_string(),
        medication: r.medication_name.clone(),
        medication_id: r.medication.to_string(),
        pharmacy: format!(
            "{}, {}",
            r.pharmacy.name.as_str(),
            r.pharmacy.address.as_str()
        ),
        quantity: r.quantity,
        note: r.note.clone(),
        asked: when::moment(r.requested_at, tz),
        state,
        waiting: r.state == RefillState::Requested,
        answer,
        answer_note,
        answered,
        patient,
    }
}

async fn zone(state: &WebState, acting: &Acting) -> salus_domain::chrono_tz::Tz {
    state
        .records
        .time_zone(&acting.actor)
        .await
        .unwrap_or(salus_domain::chrono_tz::UTC)
}

#[derive(Template)]
#[template(path = "refills.html")]
struct ListPage<'a> {
    csrf: &'a str,
    refills: Vec<RefillRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// The patient's refill requests.
#[handler]
pub(crate) async fn list(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Query(q): Query<DoneQuery>,
) -> Response {
    let refills = match state.messaging.refills(&acting.actor, rid.get()).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let tz = zone(&state, &acting).await;
    render(&ListPage {
        csrf: &csrf.0,
        refills: refills
            .iter()
            .map(|r| refill_row(r, tz, String::new()))
            .collect(),
        notice: match q.done.as_deref() {
            Some("asked") => Some("Sent. Your care team will answer; we email you when they do."),
            Some("cancelled") => Some("Cancelled."),
            _ => None,
        },
    })
}

#[derive(Template)]
#[template(path = "refill_new.html")]
struct FormPage<'a> {
    csrf: &'a str,
    medication_id: String,
    medication: String,
    pharmacies: Vec<(String, String, bool)>,
    form: RefillForm,
    problems: Problems,
}

#[derive(Deserialize, Default)]
pub(crate) struct RefillForm {
    #[serde(default)]
    medication: String,
    /// A saved pharmacy's id, or `new`.
    #[serde(default)]
    pharmacy: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    save: Option<String>,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    note: String,
}

impl Refill for RefillForm {}

fn form_page<'a>(
    csrf: &'a str,
    medication: String,
    pharmacies: &[Pharmacy],
    form: RefillForm,
    problems: Problems,
) -> FormPage<'a> {
    let chosen = if form.pharmacy.is_empty() {
        pharmacies
            .first()
            .map_or("new".to_owned(), |p| p.id.to_string())
    } else {
        form.pharmacy.clone()
    };
    FormPage {
        csrf,
        medication_id: form.medication.clone(),
        medication,
        pharmacies: pharmacies
            .iter()
            .map(|p| {
                let id = p.id.to_string();
                let selected = id == chosen;
                (
                    id,
                    format!(
                        "{} — {}, {}",
                        p.name.as_str(),
                        p.address.as_str(),
                        p.phone.as_str()
                    ),
                    selected,
                )
            })
            .collect(),
        form: RefillForm {
            pharmacy: chosen,
            ..form
        },
        problems,
    }
}

#[derive(Deserialize)]
pub(crate) struct NewQuery {
    #[serde(default)]
    medication: String,
}

/// The refill form for one medication.
#[handler]
pub(crate) async fn new(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Query(q): Query<NewQuery>,
) -> Response {
    let Ok(medication) = RecordId::parse(&q.medication) else {
        return failed(MessagingError::NotFound);
    };
    match state
        .messaging
        .refill_form(&acting.actor, medication, rid.get())
        .await
    {
        Ok((name, pharmacies)) => render(&form_page(
            &csrf.0,
            name,
            &pharmacies,
            RefillForm {
                medication: q.medication,
                ..RefillForm::default()
            },
            Problems::default(),
        )),
        Err(e) => failed(e),
    }
}

/// Sends a refill request.
#[handler]
pub(crate) async fn ask(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    CheckedForm(f): CheckedForm<RefillForm>,
) -> Response {
    let Ok(medication) = RecordId::parse(&f.medication) else {
        return failed(MessagingError::NotFound);
    };
    let choice = if f.pharmacy == "new" || f.pharmacy.is_empty() {
        PharmacyChoice::New(NewPharmacy {
            name: &f.name,
            address: &f.address,
            phone: &f.phone,
            save: f.save.is_some(),
        })
    } else {
        match PharmacyId::parse(&f.pharmacy) {
            Ok(id) => PharmacyChoice::Saved(id),
            Err(_) => PharmacyChoice::New(NewPharmacy::default()),
        }
    };
    let asked = state
        .messaging
        .request_refill(
            &acting.actor,
            medication,
            choice,
            &f.quantity,
            &f.note,
            rid.get(),
        )
        .await;
    match asked {
        Ok(_) => see_other("/refills?done=asked"),
        Err(e @ MessagingError::Input { .. }) => {
            let field = match e.code() {
                "invalid_quantity" => "quantity",
                "invalid_note" => "note",
                "invalid_pharmacy_name" => "name",
                "invalid_pharmacy_address" => "address",
                "invalid_pharmacy_phone" => "phone",
                _ => "pharmacy",
            };
            let (name, pharmacies) = match state
                .messaging
                .refill_form(&acting.actor, medication, rid.get())
                .await
            {
                Ok(v) => v,
                Err(e) => return failed(e),
            };
            with_status(
                render(&form_page(
                    &csrf.0,
                    name,
                    &pharmacies,
                    f,
                    Problems::one(field, e.to_string()),
                )),
                StatusCode::BAD_REQUEST,
            )
        }
        Err(e) => failed(e),
    }
}

fn refill_id(id: &str) -> Result<RefillId, Box<Response>> {
    RefillId::parse(id).map_err(|_| Box::new(failed(MessagingError::NotFound)))
}

/// The asker cancels a waiting request.
#[handler]
pub(crate) async fn cancel(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    let id = match refill_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match state
        .messaging
        .answer_refill(&acting.actor, id, RefillMove::Cancel, rid.get())
        .await
    {
        Ok(_) => see_other("/refills?done=cancelled"),
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "staff_refills.html")]
struct QueuePage {
    waiting: bool,
    refills: Vec<RefillRow>,
}

#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    state: Option<String>,
}

/// The clinicians' queue.
#[handler]
pub(crate) async fn queue(
    state: Data<&Arc<WebState>>,
    StaffMember(acting): StaffMember,
    Query(q): Query<QueueQuery>,
) -> Response {
    let waiting = q.state.as_deref() != Some("answered");
    let listed = match state.messaging.refill_queue(&acting.actor, waiting).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let tz = zone(&state, &acting).await;
    render(&QueuePage {
        waiting,
        refills: listed
            .iter()
            .map(|(r, name)| refill_row(r, tz, name.clone()))
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "staff_refill.html")]
struct DecidePage<'a> {
    csrf: &'a str,
    r: RefillRow,
    patient_id: String,
    reasons: Vec<(&'static str, &'static str)>,
    approve: DecideForm,
    deny: DecideForm,
    problems: Problems,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct DecideForm {
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    refills: String,
    #[serde(default)]
    instructions: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

impl Refill for DecideForm {}

async fn decide_page(
    state: &WebState,
    acting: &Acting,
    csrf: &str,
    id: RefillId,
    rid: Option<&str>,
    typed: (DecideForm, DecideForm, Problems),
    notice: Option<&'static str>,
) -> Response {
    let (r, name) = match state.messaging.refill(&acting.actor, id, rid).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let tz = zone(state, acting).await;
    let (mut approve, deny, problems) = typed;
    if approve.quantity.is_empty() {
        approve.quantity = r.quantity.to_string();
    }
    if approve.refills.is_empty() {
        approve.refills = "0".into();
    }
    render(&DecidePage {
        csrf,
        patient_id: r.patient.to_string(),
        r: refill_row(&r, tz, name),
        reasons: DenyReason::ALL
            .iter()
            .map(|d| (d.code(), d.label()))
            .collect(),
        approve,
        deny,
        problems,
        notice,
    })
}

/// One request, with the approve and deny forms while it waits.
#[handler]
pub(crate) async fn show(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let id = match refill_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let notice = match q.done.as_deref() {
        Some("approved") => {
            Some("Approved. The patient is told by email that the request changed.")
        }
        Some("denied") => Some("Answered. The patient is told by email that the request changed."),
        _ => None,
    };
    let typed = (
        DecideForm::default(),
        DecideForm::default(),
        Problems::default(),
    );
    decide_page(&state, &acting, &csrf.0, id, rid.get(), typed, notice).await
}

/// A clinician approves (`approve`) or denies a request.
async fn answer(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &CsrfToken,
    acting: &Acting,
    id: &str,
    f: DecideForm,
    approve: bool,
) -> Response {
    let id = match refill_id(id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let change = if approve {
        Approval::from_fields(&f.quantity, &f.refills, &f.instructions).map(RefillMove::Approve)
    } else {
        RefillMove::deny_from_fields(&f.reason, &f.note)
    };
    let done = match change {
        Ok(change) => {
            state
                .messaging
                .answer_refill(&acting.actor, id, change, rid.get())
                .await
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => see_other(&format!(
            "/staff/refills/{id}?done={}",
            if approve { "approved" } else { "denied" }
        )),
        Err(e @ MessagingError::Input { .. }) => {
            let field = match e.code() {
                "invalid_quantity" => "quantity",
                "invalid_refills" => "refills",
                "invalid_instructions" => "instructions",
                "invalid_reason" => "reason",
                _ => "note",
            };
            let problems = Problems::one(field, e.to_string());
            let typed = if approve {
                (f, DecideForm::default(), problems)
            } else {
                (DecideForm::default(), f, problems)
            };
            let page = decide_page(state, acting, &csrf.0, id, rid.get(), typed, None).await;
            if page.status().is_success() {
                with_status(page, StatusCode::BAD_REQUEST)
            } else {
                page
            }
        }
        Err(e) => failed(e),
    }
}

#[handler]
pub(crate) async fn approve_form(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<DecideForm>,
) -> Response {
    answer(&rid, &state, csrf, &acting, &id, f, true).await
}

#[handler]
pub(crate) async fn deny_form(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<DecideForm>,
) -> Response {
    answer(&rid, &state, csrf, &acting, &id, f, false).await
}
