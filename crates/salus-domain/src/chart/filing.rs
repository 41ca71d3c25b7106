//! Clinicians file results and notes and release held records; the patient is told.

use super::*;

/// Why filing a record changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// No such chart, or not one the actor may file in (one answer for both).
    #[error("not found")]
    NotFound,
    /// The new record names a visit that is not one of its chart's visits: missing, another
    /// patient's, or a record of another kind (one answer for all three).
    #[error("the visit is not one of this patient's visits")]
    InvalidVisit,
    /// The audit entry could not be written, so nothing was filed.
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why releasing a record changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// No such record, or not one the actor may release (one answer for both).
    #[error("not found")]
    NotFound,
    /// The record is not held (already released, or never to be released online).
    #[error("This record is not waiting for release.")]
    NotHeld,
    /// The audit entry could not be written, so nothing was released.
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The shared steps (finding the chart, the audit) refuse as reads do; an actor without a
/// chart of their own files in and releases from none.
macro_rules! from_read_error {
    ($($t:ident),+) => {$(
        impl From<ReadError> for $t {
            fn from(e: ReadError) -> Self {
                match e {
                    ReadError::NotFound | ReadError::NoChart => Self::NotFound,
                    ReadError::AuditUnavailable => Self::AuditUnavailable,
                    ReadError::Repo(r) => Self::Repo(r),
                }
            }
        }
    )+};
}

from_read_error!(FileError, ReleaseError);

#[derive(Debug, Clone)]
pub struct NewRecord {
    pub patient: PatientId,
    pub body: RecordBody,
    pub sensitivity: SensitivityLabels,
    /// Who wrote it, as the patient will read it.
    pub author: Option<DisplayName>,
    pub encounter: Option<RecordId>,
}

/// A lab result as a clinician types it.
#[derive(Debug, Clone, Default)]
pub struct LabResultInput {
    pub title: String,
    pub loinc: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub reference_low: Option<f64>,
    pub reference_high: Option<f64>,
}

/// Why a clinician's new record was refused (the message says what to change).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{message}")]
    Record {
        field: RecordField,
        message: &'static str,
    },
    #[error("The normal range's low end is above its high end.")]
    ReferenceRange,
    #[error("Unknown sensitivity label.")]
    Label,
}

/// The part of a new record an input error is about: forms show the message beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    Kind,
    Title,
    Value,
    ReferenceLow,
    ReferenceHigh,
    Text,
    Visit,
    Labels,
}

impl InputError {
    /// The field the error is about.
    pub fn field(&self) -> RecordField {
        match self {
            Self::Record { field, .. } => *field,
            Self::ReferenceRange => RecordField::ReferenceLow,
            Self::Label => RecordField::Labels,
        }
    }

    fn at(field: RecordField, message: &'static str) -> Self {
        Self::Record { field, message }
    }

    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Record { .. } => "invalid_record",
            Self::ReferenceRange => "invalid_reference_range",
            Self::Label => "invalid_label",
        }
    }
}

impl NewRecord {
    fn checked_title(title: &str) -> Result<&str, InputError> {
        let t = title.trim();
        if t.is_empty() || t.chars().count() > 200 {
            return Err(InputError::at(
                RecordField::Title,
                "Give a title of 1 to 200 characters.",
            ));
        }
        Ok(t)
    }

    /// Sensitivity labels from their codes.
    ///
    /// # Errors
    /// [`InputError::Label`] for an unknown code.
    pub fn labels<'a>(
        codes: impl IntoIterator<Item = &'a str>,
    ) -> Result<SensitivityLabels, InputError> {
        codes
            .into_iter()
            .try_fold(SensitivityLabels::empty(), |acc, c| {
                crate::record::SensitivityLabel::from_code(c.trim())
                    .map(|l| acc.with(l))
                    .ok_or(InputError::Label)
            })
    }

    /// A numeric lab result; its flag follows from the reference range.
    ///
    /// # Errors
    /// [`InputError`] naming what is missing or wrong.
    pub fn lab_result(
        patient: PatientId,
        input: LabResultInput,
        sensitivity: SensitivityLabels,
        author: Option<DisplayName>,
    ) -> Result<Self, InputError> {
        use crate::record::{
            Observation, ObservationCategory, ObservationValue, Quantity, ReferenceRange,
            ResultStatus,
        };
        let title = Self::checked_title(&input.title)?;
        let value = input.value.filter(|v| v.is_finite()).ok_or(InputError::at(
            RecordField::Value,
            "A lab result needs a numeric value.",
        ))?;
        let loinc = input
            .loinc
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let code = crate::text::Code::new(loinc.map(|_| "http://loinc.org"), loinc, title)
            .map_err(|_| InputError::at(RecordField::Title, "The test name is not valid."))?;
        let (low, high) = (input.reference_low, input.reference_high);
        if [low, high].iter().flatten().any(|v| !v.is_finite()) {
            return Err(InputError::at(
                RecordField::ReferenceLow,
                "The normal range needs numbers.",
            ));
        }
        if let (Some(l), Some(h)) = (low, high)
            && l > h
        {
            return Err(InputError::ReferenceRange);
        }
        let range = (input.reference_low.is_some() || input.reference_high.is_some()).then_some(
            ReferenceRange {
                low: input.reference_low,
                high: input.reference_high,
                text: None,
            },
        );
        let flag = range.as_ref().and_then(|r| r.flag_for(value));
        Ok(Self {
            patient,
            body: RecordBody::Observation(Observation {
                category: ObservationCategory::Laboratory,
                code,
                status: ResultStatus::Final,
                value: Some(ObservationValue::Quantity(Quantity {
                    value,
                    unit: input
                        .unit
                        .map(|u| u.trim().to_owned())
                        .filter(|u| !u.is_empty()),
                })),
                components: vec![],
                reference_range: range,
                flag,
                effective_at: None,
                issued: None,
            }),
            sensitivity,
            author,
            encounter: None,
        })
    }

    /// A clinical note in plain text.
    ///
    /// # Errors
    /// [`InputError`] naming what is missing or wrong.
    pub fn note(
        patient: PatientId,
        title: &str,
        text: &str,
        sensitivity: SensitivityLabels,
        author: Option<DisplayName>,
    ) -> Result<Self, InputError> {
        let title = Self::checked_title(title)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::at(RecordField::Text, "A note needs its text."));
        }
        if text.chars().count() > 100_000 {
            return Err(InputError::at(
                RecordField::Text,
                "A note may have at most 100,000 characters.",
            ));
        }
        Ok(Self {
            patient,
            body: RecordBody::ClinicalNote(crate::record::ClinicalNote {
                note_type: crate::record::NoteType::ProgressNote,
                title: title.to_owned(),
                text: text.to_owned(),
                date: None,
            }),
            sensitivity,
            author,
            encounter: None,
        })
    }
}

/// A result or note as a clinician enters it, on the chart page or through the API: both
/// adapters fill this in from their own wire format and the domain reads it once.
#[derive(Debug, Clone, Default)]
pub struct NewRecordInput {
    /// `lab_result` or `note`.
    pub kind: String,
    /// A lab result's test name, or a note's title.
    pub title: String,
    pub loinc: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub reference_low: Option<f64>,
    pub reference_high: Option<f64>,
    /// A note's plain text.
    pub text: Option<String>,
    /// Sensitivity label codes (`mental_health`, `hiv`, ...).
    pub labels: Vec<String>,
    /// The id of the visit it belongs to, if any (one of the chart's visits).
    pub visit: Option<String>,
}

impl NewRecordInput {
    /// The record to file in `patient`'s chart.
    ///
    /// # Errors
    /// [`InputError`] naming what is missing or wrong.
    pub fn into_new_record(
        self,
        patient: PatientId,
        author: Option<DisplayName>,
    ) -> Result<NewRecord, InputError> {
        let labels = NewRecord::labels(self.labels.iter().map(String::as_str))?;
        let encounter =
            match self
                .visit
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                None => None,
                Some(v) => Some(RecordId::parse(v).map_err(|_| {
                    InputError::at(RecordField::Visit, "The visit id is not valid.")
                })?),
            };
        let mut new = match self.kind.trim() {
            "lab_result" => NewRecord::lab_result(
                patient,
                LabResultInput {
                    title: self.title,
                    loinc: self.loinc,
                    value: self.value,
                    unit: self.unit,
                    reference_low: self.reference_low,
                    reference_high: self.reference_high,
                },
                labels,
                author,
            )?,
            "note" => NewRecord::note(
                patient,
                &self.title,
                self.text.as_deref().unwrap_or_default(),
                labels,
                author,
            )?,
            _ => {
                return Err(InputError::at(
                    RecordField::Kind,
                    "Choose a lab result (lab_result) or a note (note).",
                ));
            }
        };
        new.encounter = encounter;
        Ok(new)
    }
}

/// A number as a person types it into a form: blank is none, and a decimal comma is read as
/// a point ("5,4" is 5.4), as people in much of the world write it.
///
/// # Errors
/// [`InputError::Record`] about `field` for anything else.
pub fn typed_number(text: Option<&str>, field: RecordField) -> Result<Option<f64>, InputError> {
    match text.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or(InputError::at(field, "Numbers must be written like 5.4.")),
    }
}

/// When the patient sees a record just filed: what both adapters report back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilingOutcome {
    /// Online for the patient now.
    Released,
    /// Released online automatically at `at`, after the organisation's waiting period.
    ReleasedLater { at: DateTime<Utc> },
    /// Held until a clinician releases it (or never shown online).
    Held,
}

impl FilingOutcome {
    /// The outcome of a record as it was filed.
    pub fn of(record: &ClinicalRecord) -> Self {
        match record.meta.release {
            ReleaseState::Released { at } if at <= record.meta.filed_at => Self::Released,
            ReleaseState::Released { at } => Self::ReleasedLater { at },
            ReleaseState::Held | ReleaseState::NeverOnline => Self::Held,
        }
    }

    /// A stable code (`released`, `released_later`, `held`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::ReleasedLater { .. } => "released_later",
            Self::Held => "held",
        }
    }
}

impl RecordsService {
    /// Clinician: files a result or a note in a chart of their organisation. The
    /// organisation's release policy decides when the patient sees it. The patient is told by
    /// email that something new is waiting (without saying what) when they can see it: now,
    /// at its release, or when a delayed release comes ([`RecordsService::send_due_notices`]).
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn file(
        &self,
        actor: &Actor,
        new: NewRecord,
        request_id: Option<&str>,
    ) -> Result<ClinicalRecord, FileError> {
        let id = RecordId::generate(self.p.ids.as_ref());
        let mut a = Audit {
            actor,
            action: Action::Create,
            export: None,
            patient: Some(new.patient),
            kind: Some(new.body.kind()),
            record: Some(id),
            request_id,
        };
        let chart = self.authorised_chart(&mut a, Some(new.patient)).await?;
        if let Some(visit) = new.encounter {
            let is_this_charts_visit = self.p.records.find(visit).await?.is_some_and(|v| {
                v.meta.patient_id == chart.id && v.body.kind() == RecordKind::Encounter
            });
            if !is_this_charts_visit {
                self.audit(&a, Outcome::NotFound).await?;
                return Err(FileError::InvalidVisit);
            }
        }
        let now = self.now();
        let org = self.organization(chart.organization_id).await?;
        let rule = org
            .as_ref()
            .map(|o| o.release_policy.rule_for(new.body.kind(), new.sensitivity))
            .unwrap_or(crate::organization::ReleaseRule::Immediate);
        let mut body = new.body;
        match &mut body {
            RecordBody::Observation(o) if o.effective_at.is_none() => {
                o.effective_at = Some(now);
                o.issued = Some(now);
            }
            RecordBody::ClinicalNote(n) if n.date.is_none() => n.date = Some(now),
            _ => {}
        }
        let record = ClinicalRecord {
            meta: RecordMeta {
                id,
                patient_id: chart.id,
                organization_id: chart.organization_id,
                encounter_id: new.encounter,
                source: RecordSource {
                    author: new.author,
                    performer: None,
                    organization: org
                        .as_ref()
                        .and_then(|o| DisplayName::parse(o.name.as_str()).ok()),
                    from_outside: false,
                },
                source_identifier: None,
                sensitivity: new.sensitivity,
                release: rule.initial_state(now),
                filed_at: now,
            },
            body,
        };
        self.audit(&a, Outcome::Allowed).await?;
        // The patient hears of it when they can see it: now, when its delayed release comes
        // (kept with the record), or when a clinician releases it. A notice before then would
        // be early, and would hint that something is being held.
        let outcome = FilingOutcome::of(&record);
        let notice_at = match outcome {
            FilingOutcome::ReleasedLater { at } => Some(at),
            FilingOutcome::Released | FilingOutcome::Held => None,
        };
        match self.p.records.insert(&record, notice_at).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(FileError::NotFound),
            Err(e) => return Err(e.into()),
        }
        if outcome == FilingOutcome::Released {
            self.notify(chart.id).await;
        }
        Ok(record)
    }

    /// Clinician: releases a held record to the patient now.
    ///
    /// # Errors
    /// See [`ReleaseError`].
    pub async fn release(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<(), ReleaseError> {
        let mut a = Audit {
            actor,
            action: Action::Release,
            export: None,
            patient: None,
            kind: None,
            record: Some(id),
            request_id,
        };
        let Some(record) = self.p.records.find(id).await? else {
            return Ok(self.refuse(&a, Outcome::NotFound).await?);
        };
        a.patient = Some(record.meta.patient_id);
        a.kind = Some(record.kind());
        let now = self.now();
        let target = Target::Record {
            meta: &record.meta,
            kind: record.kind(),
        };
        if decide(actor, Action::Release, target, now) == Decision::Deny {
            return Ok(self.refuse(&a, Outcome::Denied).await?);
        }
        self.audit(&a, Outcome::Allowed).await?;
        if !self.p.records.release(id, now).await? {
            return Err(ReleaseError::NotHeld);
        }
        self.notify(record.meta.patient_id).await;
        Ok(())
    }

    /// Sends the notices of delayed releases whose time has come (the server asks every
    /// minute); answers how many charts were told. Each notice is sent once, whichever node
    /// takes it.
    ///
    /// # Errors
    /// The store's error when the notices cannot be read.
    pub async fn send_due_notices(&self) -> Result<usize, RepoError> {
        let mut due = self.p.records.take_due_notices(self.now(), 100).await?;
        due.sort_unstable();
        due.dedup();
        for patient in &due {
            self.notify(*patient).await;
        }
        Ok(due.len())
    }

    /// Tells the chart's account holders that something new is waiting. Never says what; a
    /// failure to send does not undo the filing.
    async fn notify(&self, patient: PatientId) {
        let Ok(accounts) = self.p.accounts.linked_to(patient).await else {
            return;
        };
        for account in accounts {
            let _ = self
                .p
                .mailer
                .send(OutgoingEmail {
                    to: account.email,
                    subject: "There is something new in your patient portal".into(),
                    body: format!(
                        "Hello,\n\nSomething new has been added to your patient portal. \
                         Sign in to see it: {}/login\n",
                        self.p.public_url
                    ),
                })
                .await;
        }
    }
}
