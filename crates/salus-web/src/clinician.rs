//! Clinician pages: open a chart of the organisation by medical record number, see its
//! overview and the records held for release, file a lab result or a note, release a held
//! record. Every read and change goes through the domain's `RecordsService` (authorised and
//! audited there).

use crate::account::with_status;
use crate::form::Problems;
use crate::records::{Row, Viewer, rows};
use crate::session::{CheckedForm, Refill, StaffMember, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::access::Actor;
use salus_domain::chart::{
    FileError, FilingOutcome, InputError, NewRecordInput, ReadError, RecordField, ReleaseError,
    typed_number,
};
use salus_domain::patient::{ChartSearch, ChartSearchError};
use salus_domain::record::SensitivityLabel;
use salus_domain::text::{DisplayName, Mrn};
use salus_domain::{PatientId, RecordId};
use serde::Deserialize;
use std::sync::Arc;

fn no_such_chart() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such chart in your organisation, or your role may not open charts.",
    )
}

fn failure(e: ReadError) -> Response {
    match e {
        ReadError::NotFound | ReadError::NoChart => no_such_chart(),
        ReadError::AuditUnavailable => crate::unavailable("audit log unavailable", &e),
        ReadError::Repo(r) => crate::unavailable("chart read failed", &r),
    }
}

/// A chart found by a search, as the search pages list it.
pub(crate) struct ChartRow {
    pub(crate) patient_id: String,
    pub(crate) name: String,
    pub(crate) birth_date: String,
    pub(crate) mrn: String,
}

impl From<&salus_domain::patient::Patient> for ChartRow {
    fn from(c: &salus_domain::patient::Patient) -> Self {
        Self {
            patient_id: c.id.to_string(),
            name: c.name.full(),
            birth_date: salus_domain::when::day(c.birth_date),
            mrn: c.mrn.as_str().to_owned(),
        }
    }
}

/// A record waiting for a clinician to release it.
struct HeldRow {
    record_id: String,
    patient_id: String,
    patient: String,
    title: String,
    kind: &'static str,
    filed: String,
}

#[derive(Template, Default)]
#[template(path = "clinician_find.html")]
struct FindPage<'a> {
    /// Records held for release across the organisation's charts (shown on the plain page,
    /// not with search results).
    held: Option<Vec<HeldRow>>,
    csrf: &'a str,
    mrn: &'a str,
    message: Option<&'a str>,
    name: &'a str,
    birth_date: &'a str,
    problems: Problems,
    /// The charts a search by name found (`None`: no search yet).
    found: Option<Vec<ChartRow>>,
}

#[derive(Deserialize)]
pub(crate) struct FindQuery {
    mrn: Option<String>,
}

#[handler]
pub(crate) async fn find(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Query(q): Query<FindQuery>,
) -> Response {
    let actor = me.actor;
    let typed = q.mrn.unwrap_or_default();
    if typed.trim().is_empty() {
        let zone = match state.records.time_zone(&actor).await {
            Ok(z) => z,
            Err(e) => return failure(e),
        };
        let held = match state.records.held_for_release(&actor, rid.get()).await {
            Ok(h) => h,
            Err(e) => return failure(e),
        };
        return render(&FindPage {
            csrf: &csrf.0,
            held: Some(
                held.iter()
                    .map(|h| HeldRow {
                        record_id: h.record.meta.id.to_string(),
                        patient_id: h.patient.id.to_string(),
                        patient: h.patient.name.full(),
                        title: h.record.body.title().to_owned(),
                        kind: h.record.kind().label(),
                        filed: salus_domain::when::moment(h.record.meta.filed_at, zone),
                    })
                    .collect(),
            ),
            ..FindPage::default()
        });
    }
    let refused = |status| {
        with_status(
            render(&FindPage {
                csrf: &csrf.0,
                mrn: &typed,
                message: Some("No chart with this medical record number in your organisation."),
                ..FindPage::default()
            }),
            status,
        )
    };
    let Ok(mrn) = Mrn::parse(&typed) else {
        return refused(StatusCode::BAD_REQUEST);
    };
    match state.records.chart_by_mrn(&actor, &mrn, rid.get()).await {
        Ok(found) => see_other(&format!("/staff/charts/{}", found.id)),
        Err(ReadError::NotFound) => refused(StatusCode::NOT_FOUND),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct SearchForm {
    name: String,
    birth_date: String,
}

impl Refill for SearchForm {}

/// Charts by name and date of birth (a form post, so neither goes into an address).
#[handler]
pub(crate) async fn search(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(f): CheckedForm<SearchForm>,
) -> Response {
    let page = |problems: Problems, found: Option<Vec<ChartRow>>, status| {
        with_status(
            render(&FindPage {
                csrf: &csrf.0,
                name: &f.name,
                birth_date: &f.birth_date,
                problems,
                found,
                ..FindPage::default()
            }),
            status,
        )
    };
    let search = match ChartSearch::from_fields(&f.name, &f.birth_date) {
        Ok(s) => s,
        Err(e) => return page(search_problem(e), None, StatusCode::BAD_REQUEST),
    };
    match state
        .records
        .search_charts(&me.actor, &search, rid.get())
        .await
    {
        Ok(found) => page(
            Problems::default(),
            Some(found.iter().map(ChartRow::from).collect()),
            StatusCode::OK,
        ),
        Err(e) => failure(e),
    }
}

/// The field a refused chart search names.
pub(crate) fn search_problem(e: ChartSearchError) -> Problems {
    let field = match e {
        ChartSearchError::Name => "name",
        ChartSearchError::BirthDate => "birth_date",
    };
    Problems::one(field, e.to_string())
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
    problems: Problems,
    held: Vec<Row>,
    results: Vec<Row>,
    medications: Vec<Row>,
    health_problems: Vec<Row>,
    allergies: Vec<Row>,
    visits: Vec<Row>,
    labels: Vec<LabelOption>,
    /// What was typed into the result form, kept when it was refused.
    result_draft: Draft,
    /// What was typed into the note form, kept when it was refused.
    note_draft: Draft,
}

/// A filing form (a lab result or a note) as it was sent: every field as typed, one `label`
/// per ticked sensitivity label. It becomes the domain's input, or, refused, is shown again
/// with why beside the form.
#[derive(Default, Clone)]
struct Draft {
    kind: String,
    title: String,
    loinc: String,
    value: String,
    unit: String,
    reference_low: String,
    reference_high: String,
    text: String,
    visit: String,
    labels: Vec<String>,
    /// Why it was refused, by field id (`r-value`, `n-text`, …).
    problems: Problems,
}

impl Draft {
    fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut d = Self::default();
        for (name, v) in fields {
            match name.as_str() {
                "kind" => d.kind = v,
                "title" => d.title = v,
                "loinc" => d.loinc = v,
                "value" => d.value = v,
                "unit" => d.unit = v,
                "reference_low" => d.reference_low = v,
                "reference_high" => d.reference_high = v,
                "text" => d.text = v,
                "visit" => d.visit = v,
                "label" => d.labels.push(v),
                _ => {}
            }
        }
        d
    }

    /// The domain's input, numbers read as typed (a decimal comma allowed).
    fn input(&self) -> Result<NewRecordInput, InputError> {
        let some = |v: &String| (!v.is_empty()).then(|| v.clone());
        Ok(NewRecordInput {
            kind: self.kind.clone(),
            title: self.title.clone(),
            loinc: some(&self.loinc),
            value: typed_number(Some(&self.value), RecordField::Value)?,
            unit: some(&self.unit),
            reference_low: typed_number(Some(&self.reference_low), RecordField::ReferenceLow)?,
            reference_high: typed_number(Some(&self.reference_high), RecordField::ReferenceHigh)?,
            text: some(&self.text),
            labels: self.labels.clone(),
            visit: some(&self.visit),
        })
    }

    /// The id of the form field a refusal is about.
    fn field_id(&self, field: RecordField) -> &'static str {
        let note = self.kind == "note";
        match (field, note) {
            (RecordField::Kind | RecordField::Title, false) => "r-title",
            (RecordField::Kind | RecordField::Title, true) => "n-title",
            (RecordField::Value, _) => "r-value",
            (RecordField::ReferenceLow, _) => "r-low",
            (RecordField::ReferenceHigh, _) => "r-high",
            (RecordField::Text, _) => "n-text",
            (RecordField::Visit, false) => "r-visit",
            (RecordField::Visit, true) => "n-visit",
            (RecordField::Labels, false) => "r-labels",
            (RecordField::Labels, true) => "n-labels",
        }
    }

    fn has_label(&self, code: &str) -> bool {
        self.labels.iter().any(|l| l == code)
    }
}

/// The request a chart page answers.
struct ChartRequest<'a> {
    rid: &'a crate::RequestId,
    state: &'a WebState,
    csrf: &'a CsrfToken,
    actor: &'a Actor,
    patient: PatientId,
}

/// What a chart page says besides the chart.
#[derive(Default)]
struct Said<'a> {
    notice: Option<&'a str>,
    message: Option<String>,
    /// A refused filing form's problems, summarised at the top of the page.
    problems: Problems,
    result_draft: Draft,
    note_draft: Draft,
}

async fn chart_page(at: &ChartRequest<'_>, said: Said<'_>, status: StatusCode) -> Response {
    let s = match at
        .state
        .records
        .summary(at.actor, Some(at.patient), at.rid.get())
        .await
    {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let viewer = match at.state.records.time_zone(at.actor).await {
        Ok(tz) => Viewer {
            tz,
            new_after: None,
        },
        Err(e) => return failure(e),
    };
    let page = ChartPage {
        csrf: &at.csrf.0,
        patient_id: s.patient.id.to_string(),
        name: s.patient.name.full(),
        birth_date: salus_domain::when::day(s.patient.birth_date),
        mrn: s.patient.mrn.as_str().to_owned(),
        notice: said.notice,
        message: said.message,
        problems: said.problems,
        held: rows(&s.held, &viewer),
        results: rows(&s.recent_results, &viewer),
        medications: rows(&s.active_medications, &viewer),
        health_problems: rows(&s.active_problems, &viewer),
        allergies: rows(&s.allergies, &viewer),
        visits: rows(&s.recent_visits, &viewer),
        labels: SensitivityLabel::ALL
            .iter()
            .map(|l| LabelOption {
                code: l.code(),
                label: l.label(),
            })
            .collect(),
        result_draft: said.result_draft,
        note_draft: said.note_draft,
    };
    with_status(render(&page), status)
}

#[derive(Deserialize)]
pub(crate) struct ChartQuery {
    /// The outcome code of a record just filed ([`FilingOutcome::code`]).
    filed: Option<String>,
    /// Present after a held record was released.
    released: Option<String>,
}

#[handler]
pub(crate) async fn chart(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return failure(ReadError::NotFound);
    };
    // What the last form did, carried across its redirect.
    let notice = match (q.filed.as_deref(), q.released.is_some()) {
        (_, true) => Some("Released: the patient sees it now."),
        (Some("released"), _) => Some(
            "Filed. The patient can see it now and is told by email that something new is waiting.",
        ),
        (Some("released_later"), _) => Some(
            "Filed. It goes online for the patient automatically after your organisation's waiting period.",
        ),
        (Some("held"), _) => Some("Filed and held: the patient sees it once you release it."),
        _ => None,
    };
    let at = ChartRequest {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
        patient,
    };
    let said = Said {
        notice,
        ..Said::default()
    };
    chart_page(&at, said, StatusCode::OK).await
}

#[handler]
pub(crate) async fn file(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return failure(ReadError::NotFound);
    };
    let at = ChartRequest {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
        patient,
    };
    let author = DisplayName::parse(&me.name()).ok();
    let draft = Draft::from_fields(fields);
    // A refusal shows the form again as it was sent, the reason beside the field it is
    // about and summarised at the top of the page with a link to that field.
    let refused = |field: RecordField, why: String| {
        let problems = Problems::one(draft.field_id(field), why);
        let shown = Draft {
            problems: problems.clone(),
            ..draft.clone()
        };
        let (result_draft, note_draft) = if draft.kind == "note" {
            (Draft::default(), shown)
        } else {
            (shown, Draft::default())
        };
        Said {
            problems,
            result_draft,
            note_draft,
            ..Said::default()
        }
    };
    let new = match draft
        .input()
        .and_then(|i| i.into_new_record(patient, author))
    {
        Ok(n) => n,
        Err(e) => {
            let said = refused(e.field(), e.to_string());
            return chart_page(&at, said, StatusCode::BAD_REQUEST).await;
        }
    };
    match state.records.file(&me.actor, new, rid.get()).await {
        Ok(record) => {
            let filed = FilingOutcome::of(&record).code();
            see_other(&format!("/staff/charts/{patient}?filed={filed}"))
        }
        Err(FileError::InvalidVisit) => {
            let said = refused(
                RecordField::Visit,
                "Choose one of this patient's visits.".into(),
            );
            chart_page(&at, said, StatusCode::BAD_REQUEST).await
        }
        Err(FileError::NotFound) => no_such_chart(),
        Err(e @ FileError::AuditUnavailable) => crate::unavailable("audit log unavailable", &e),
        Err(FileError::Repo(r)) => crate::unavailable("filing failed", &r),
    }
}

impl Refill for ReleaseForm {}

#[derive(Deserialize)]
pub(crate) struct ReleaseForm {
    patient_id: String,
}

#[handler]
pub(crate) async fn release(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<ReleaseForm>,
) -> Response {
    let actor = me.actor;
    let (Ok(record), Ok(patient)) = (RecordId::parse(&id), PatientId::parse(&f.patient_id)) else {
        return no_such_chart();
    };
    match state.records.release(&actor, record, rid.get()).await {
        Ok(()) => see_other(&format!("/staff/charts/{patient}?released=1")),
        Err(ReleaseError::NotFound) => no_such_chart(),
        Err(ReleaseError::NotHeld) => error_page(
            StatusCode::CONFLICT,
            "Already released",
            &salus_domain::chart::ReleaseError::NotHeld.to_string(),
        ),
        Err(e @ ReleaseError::AuditUnavailable) => crate::unavailable("audit log unavailable", &e),
        Err(ReleaseError::Repo(r)) => crate::unavailable("release failed", &r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_fields_fill_the_domains_input_and_read_typed_numbers() {
        let field = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        let input = Draft::from_fields(vec![
            field("kind", "lab_result"),
            field("title", "Glucose"),
            field("value", " 5,4 "),
            field("reference_low", ""),
            field("reference_high", "6.1"),
            field("label", "hiv"),
            field("label", "genetic"),
            field("csrf", "ignored"),
        ])
        .input()
        .unwrap();
        assert_eq!(input.kind, "lab_result");
        assert_eq!(input.value, Some(5.4));
        assert_eq!(input.reference_low, None);
        assert_eq!(input.reference_high, Some(6.1));
        assert_eq!(input.labels, ["hiv", "genetic"]);
        assert!(
            Draft::from_fields(vec![field("value", "five")])
                .input()
                .is_err()
        );
    }
}
