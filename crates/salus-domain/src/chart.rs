//! Records online: the use cases that read and change a chart, each authorised by
//! [`crate::access::decide`] and each writing exactly one audit entry.
//!
//! **Invariant:** not yours = not found. A record or chart the actor may not see answers
//! [`RecordsError::NotFound`], the same as a missing id, and the attempt is audited as denied.
//! **Invariant:** the audit entry is written before anything is answered; when it cannot be
//! written the use case fails with [`RecordsError::AuditUnavailable`] and returns no data.

use crate::access::{Action, Actor, Decision, Target, decide};
use crate::account::{AccountRepository, Mailer, OutgoingEmail};
use crate::audit::{AccessEntry, AccessEvent, AccessLog, ActorRef, Outcome};
use crate::clock::Clock;
use crate::export::{ChartExport, EXPORT_ORDER, ExportFormat, ExportRequest};
use crate::ids::{IdGenerator, OrganizationId, PatientId, RecordId};
use crate::organization::OrganizationRepository;
use crate::patient::{Patient, PatientRepository};
use crate::record::{
    ClinicalRecord, Cursor, Page, RecordBody, RecordKind, RecordMeta, RecordQuery,
    RecordRepository, RecordSource, ReleaseState, SensitivityLabels,
};
use crate::repo::RepoError;
use crate::text::DisplayName;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a use case answered no data.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Missing, or not the actor's to see (one answer for both).
    #[error("not found")]
    NotFound,
    /// The actor's account is not connected to a chart yet.
    #[error("your account is not connected to a medical record yet")]
    NoChart,
    /// The audit entry could not be written, so nothing is answered.
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    /// The record is not held (already released, or never to be released online).
    #[error("this record is not waiting for release")]
    NotHeld,
    /// Exports need the password entered within the last few minutes.
    #[error("enter your password again to download records")]
    ReauthenticationRequired,
    /// A new record names a visit that is not one of its chart's visits: missing, another
    /// patient's, or a record of another kind (one answer for all three).
    #[error("the visit is not one of this patient's visits")]
    InvalidVisit,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Something the actor may see, and the sensitivity notice to show first, if any.
#[derive(Debug, Clone)]
pub struct Shown<T> {
    pub item: T,
    pub notice: Option<SensitivityLabels>,
}

/// One page of one kind of record of a chart.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// The chart; `None` for the actor's own.
    pub patient: Option<PatientId>,
    pub kind: RecordKind,
    pub filter: ListFilter,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// Which records of one kind to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub text: Option<String>,
    pub statuses: Vec<&'static str>,
}

/// The longest search text a list accepts, in characters. Titles are far shorter; a longer
/// text can only be a mistake or an attempt to make the database work hard.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Why a list filter was refused. Never echoes the input: a search may name a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Enter dates as YYYY-MM-DD, between the years 1 and 9999.")]
    Date,
    #[error("The start date is after the end date.")]
    DateRange,
    #[error("The search text is too long (at most 200 characters).")]
    TextTooLong,
    #[error("Unknown status for this kind of record.")]
    Status,
}

impl FilterError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Date => "invalid_date",
            Self::DateRange => "invalid_date_range",
            Self::TextTooLong => "search_too_long",
            Self::Status => "invalid_status",
        }
    }
}

impl ListFilter {
    /// A filter from what a person typed: dates as `YYYY-MM-DD` in the years 1 to 9999
    /// (`until` includes that day; `until` 9999-12-31 means no end), text of at most
    /// [`MAX_SEARCH_CHARS`] characters, and comma-separated status codes of `kind`. Empty
    /// values are ignored.
    ///
    /// # Errors
    /// [`FilterError`] for a date or status that does not parse, a start after the end, or
    /// a search text that is too long.
    pub fn parse(
        kind: RecordKind,
        from: Option<&str>,
        until: Option<&str>,
        text: Option<String>,
        status: Option<&str>,
    ) -> Result<Self, FilterError> {
        use chrono::Datelike;
        let date = |v: Option<&str>| match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .map(Some)
                .ok_or(FilterError::Date),
        };
        let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        let from = date(from)?;
        let until = date(until)?;
        if let (Some(f), Some(u)) = (from, until)
            && f > u
        {
            return Err(FilterError::DateRange);
        }
        // `until` includes its day: the bound is the next midnight. After 9999-12-31 there is
        // no date to store or compare (timestamps are four-digit years), and no record.
        let until = until
            .and_then(|u| u.succ_opt())
            .filter(|u| u.year() <= 9999)
            .map(midnight);
        let from = from.map(midnight);
        let text = text.filter(|t| !t.trim().is_empty());
        if text
            .as_deref()
            .is_some_and(|t| t.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(FilterError::TextTooLong);
        }
        let known = kind.status_codes();
        let mut statuses = Vec::new();
        for s in status.unwrap_or_default().split(',').map(str::trim) {
            if s.is_empty() {
                continue;
            }
            statuses.push(*known.iter().find(|k| **k == s).ok_or(FilterError::Status)?);
        }
        Ok(Self {
            from,
            until,
            text,
            statuses,
        })
    }
}

/// A record with the other records that give it meaning.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub record: Shown<ClinicalRecord>,
    /// For a visit: its results, notes, diagnoses ... (oldest first). For a report: its
    /// results. For a result: the report it belongs to.
    pub related: Vec<Shown<ClinicalRecord>>,
    /// For a result: the same test over time, oldest first (this one included).
    pub trend: Vec<ClinicalRecord>,
}

/// The home page of a chart.
#[derive(Debug, Clone)]
pub struct ChartSummary {
    /// Whose chart it is.
    pub patient: Patient,
    /// For clinicians: records held for release.
    pub held: Vec<Shown<ClinicalRecord>>,
    pub recent_results: Vec<Shown<ClinicalRecord>>,
    pub active_medications: Vec<Shown<ClinicalRecord>>,
    pub active_problems: Vec<Shown<ClinicalRecord>>,
    pub allergies: Vec<Shown<ClinicalRecord>>,
    pub recent_visits: Vec<Shown<ClinicalRecord>>,
    /// The most recent visit, and how many records of each kind were filed with it or since.
    pub last_visit: Option<DateTime<Utc>>,
    pub new_since_last_visit: BTreeMap<RecordKind, u64>,
    /// What the actor may see of each kind.
    pub counts: BTreeMap<RecordKind, u64>,
}

/// A result or note a clinician files.
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
    #[error("{0}")]
    Record(&'static str),
    #[error("The normal range's low end is above its high end.")]
    ReferenceRange,
    #[error("Unknown sensitivity label.")]
    Label,
}

impl InputError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Record(_) => "invalid_record",
            Self::ReferenceRange => "invalid_reference_range",
            Self::Label => "invalid_label",
        }
    }
}

impl NewRecord {
    fn checked_title(title: &str) -> Result<&str, InputError> {
        let t = title.trim();
        if t.is_empty() || t.chars().count() > 200 {
            return Err(InputError::Record("Give a title of 1 to 200 characters."));
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
        let value = input
            .value
            .filter(|v| v.is_finite())
            .ok_or(InputError::Record("A lab result needs a numeric value."))?;
        let loinc = input
            .loinc
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let code = crate::text::Code::new(loinc.map(|_| "http://loinc.org"), loinc, title)
            .map_err(|_| InputError::Record("The test name is not valid."))?;
        let (low, high) = (input.reference_low, input.reference_high);
        if [low, high].iter().flatten().any(|v| !v.is_finite()) {
            return Err(InputError::Record("The normal range needs numbers."));
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
            return Err(InputError::Record("A note needs its text."));
        }
        if text.chars().count() > 100_000 {
            return Err(InputError::Record(
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
        let encounter = match self
            .visit
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => Some(
                RecordId::parse(v).map_err(|_| InputError::Record("The visit id is not valid."))?,
            ),
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
                return Err(InputError::Record(
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
/// [`InputError::Record`] for anything else.
pub fn typed_number(text: Option<&str>) -> Result<Option<f64>, InputError> {
    match text.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or(InputError::Record("Numbers must be written like 5.4.")),
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

/// What the records use cases need.
#[derive(Clone)]
pub struct RecordsPorts {
    pub records: Arc<dyn RecordRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub organizations: Arc<dyn OrganizationRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub log: Arc<dyn AccessLog>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// The portal's public address, for links in emails (no trailing slash).
    pub public_url: String,
}

impl std::fmt::Debug for RecordsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsPorts").finish_non_exhaustive()
    }
}

/// The records use cases.
#[derive(Clone)]
pub struct RecordsService {
    p: RecordsPorts,
    /// Charts never change organisation: each chart's, once read, so that the reads of a
    /// chart (every list page) need no extra query for it.
    orgs: Arc<std::sync::Mutex<std::collections::HashMap<PatientId, OrganizationId>>>,
}

/// A chart as access decisions need it.
#[derive(Debug, Clone, Copy)]
struct ChartRef {
    id: PatientId,
    organization_id: OrganizationId,
}

impl std::fmt::Debug for RecordsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsService").finish_non_exhaustive()
    }
}

/// Largest page of a list.
pub const MAX_LIST: u32 = 100;

/// What one request does, for its audit entry.
struct Audit<'a> {
    actor: &'a Actor,
    action: Action,
    export: Option<ExportFormat>,
    patient: Option<PatientId>,
    kind: Option<RecordKind>,
    record: Option<RecordId>,
    request_id: Option<&'a str>,
}

impl RecordsService {
    pub fn new(ports: RecordsPorts) -> Self {
        Self {
            p: ports,
            orgs: Arc::default(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.p.clock.now()
    }

    async fn audit(&self, a: &Audit<'_>, outcome: Outcome) -> Result<(), RecordsError> {
        self.p
            .log
            .record(AccessEvent {
                at: self.now(),
                actor: ActorRef::from(a.actor),
                patient: a.patient,
                action: a.action,
                export: a.export,
                record_kind: a.kind,
                record: a.record,
                outcome,
                request_id: a.request_id.map(str::to_owned),
            })
            .await
            .map_err(|_| RecordsError::AuditUnavailable)
    }

    /// Audits a refusal and answers "not found".
    async fn refuse<T>(&self, a: &Audit<'_>, outcome: Outcome) -> Result<T, RecordsError> {
        self.audit(a, outcome).await?;
        Err(RecordsError::NotFound)
    }

    /// The chart an actor asks about: their own when `patient` is `None`.
    async fn find_chart(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
    ) -> Result<Option<ChartRef>, RecordsError> {
        let Some(id) = patient.or(actor.own_chart()) else {
            return Err(RecordsError::NoChart);
        };
        let lock = || {
            self.orgs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(org) = lock().get(&id) {
            return Ok(Some(ChartRef {
                id,
                organization_id: *org,
            }));
        }
        let Some(chart) = self.p.patients.find(id).await? else {
            return Ok(None);
        };
        let mut known = lock();
        if known.len() >= 100_000 {
            known.clear();
        }
        known.insert(chart.id, chart.organization_id);
        Ok(Some(ChartRef {
            id: chart.id,
            organization_id: chart.organization_id,
        }))
    }

    /// The chart `patient` (the actor's own when `None`) if the actor may do `a.action` on
    /// it (on `a.kind` of it, when set); otherwise the refusal, audited. Sets `a.patient`.
    async fn authorised_chart(
        &self,
        a: &mut Audit<'_>,
        patient: Option<PatientId>,
    ) -> Result<ChartRef, RecordsError> {
        let Some(chart) = self.find_chart(a.actor, patient).await? else {
            return self.refuse(a, Outcome::NotFound).await;
        };
        a.patient = Some(chart.id);
        let target = match a.kind {
            Some(kind) => Target::Kind {
                patient: chart.id,
                organization: chart.organization_id,
                kind,
            },
            None => Target::Chart {
                patient: chart.id,
                organization: chart.organization_id,
            },
        };
        if decide(a.actor, a.action, target, self.now()) == Decision::Deny {
            return self.refuse(a, Outcome::Denied).await;
        }
        Ok(chart)
    }

    /// What the actor may see at `now`: released records only, unless a clinician.
    fn released_by(actor: &Actor, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match actor {
            Actor::Staff { .. } => None,
            Actor::Patient { .. } | Actor::Proxy { .. } | Actor::ShareLink { .. } => Some(now),
        }
    }

    fn shown(
        actor: &Actor,
        record: ClinicalRecord,
        now: DateTime<Utc>,
    ) -> Option<Shown<ClinicalRecord>> {
        let kind = record.kind();
        match decide(
            actor,
            Action::Read,
            Target::Record {
                meta: &record.meta,
                kind,
            },
            now,
        ) {
            Decision::Allow => Some(Shown {
                item: record,
                notice: None,
            }),
            Decision::AllowWithNotice(labels) => Some(Shown {
                item: record,
                notice: Some(labels),
            }),
            Decision::Deny => None,
        }
    }

    /// Fills a page with records the actor may see, reading further pages when the decision
    /// hides some (a proxy without a label), up to a bound.
    async fn visible_page(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: RecordKind,
        query: &RecordQuery,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<Shown<ClinicalRecord>>, RecordsError> {
        let now = self.now();
        let limit = limit.clamp(1, MAX_LIST);
        let mut items = Vec::new();
        let mut cursor = after;
        for _ in 0..5 {
            let page = self
                .p
                .records
                .list_for_patient(patient, kind, query, cursor, limit)
                .await?;
            let more_pages = page.next.is_some();
            let n = page.items.len();
            for (i, r) in page.items.into_iter().enumerate() {
                cursor = Some(Cursor {
                    sort_time: r.sort_time(),
                    id: r.meta.id,
                });
                items.extend(Self::shown(actor, r, now));
                if items.len() == limit as usize {
                    let more = i + 1 < n || more_pages;
                    return Ok(Page {
                        items,
                        next: cursor.filter(|_| more),
                    });
                }
            }
            if !more_pages {
                return Ok(Page { items, next: None });
            }
        }
        Ok(Page {
            items,
            next: cursor,
        })
    }

    /// The first `n` records of a kind matching `statuses`, when the actor may see the kind.
    async fn section(
        &self,
        actor: &Actor,
        chart: ChartRef,
        kind: RecordKind,
        query: RecordQuery,
        n: u32,
    ) -> Result<Vec<Shown<ClinicalRecord>>, RecordsError> {
        if !Self::kind_allowed(actor, chart, kind, self.now()) {
            return Ok(Vec::new());
        }
        Ok(self
            .visible_page(actor, chart.id, kind, &query, None, n)
            .await?
            .items)
    }

    fn kind_allowed(actor: &Actor, chart: ChartRef, kind: RecordKind, now: DateTime<Utc>) -> bool {
        decide(
            actor,
            Action::ViewChart,
            Target::Kind {
                patient: chart.id,
                organization: chart.organization_id,
                kind,
            },
            now,
        )
        .is_allowed()
    }

    /// One kind of record of a chart, newest first.
    ///
    /// # Errors
    /// See [`RecordsError`].
    pub async fn list(
        &self,
        actor: &Actor,
        req: ListRequest,
        request_id: Option<&str>,
    ) -> Result<Page<Shown<ClinicalRecord>>, RecordsError> {
        let ListRequest {
            patient,
            kind,
            filter,
            after,
            limit,
        } = req;
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: patient.or(actor.own_chart()),
            kind: Some(kind),
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, patient).await?;
        let now = self.now();
        let query = RecordQuery {
            released_by: Self::released_by(actor, now),
            from: filter.from,
            until: filter.until,
            text: filter.text,
            statuses: filter.statuses,
            ..RecordQuery::default()
        };
        let page = self
            .visible_page(actor, chart.id, kind, &query, after, limit)
            .await?;
        self.audit(&a, Outcome::Allowed).await?;
        Ok(page)
    }

    /// One record, with what gives it meaning (a visit's records, a report's results, a
    /// result's report and trend).
    ///
    /// # Errors
    /// See [`RecordsError`].
    pub async fn view(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<RecordView, RecordsError> {
        let mut a = Audit {
            actor,
            action: Action::Read,
            export: None,
            patient: None,
            kind: None,
            record: Some(id),
            request_id,
        };
        let Some(record) = self.p.records.find(id).await? else {
            return self.refuse(&a, Outcome::NotFound).await;
        };
        a.patient = Some(record.meta.patient_id);
        a.kind = Some(record.kind());
        let now = self.now();
        let Some(shown) = Self::shown(actor, record, now) else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let patient = shown.item.meta.patient_id;
        let released_by = Self::released_by(actor, now);
        let mut related = Vec::new();
        let mut trend = Vec::new();
        match &shown.item.body {
            RecordBody::Encounter(_) => {
                for r in self
                    .p
                    .records
                    .list_for_encounter(patient, id, None, released_by, 200)
                    .await?
                {
                    related.extend(Self::shown(actor, r, now));
                }
            }
            RecordBody::DiagnosticReport(report) => {
                for rid in &report.results {
                    if let Some(r) = self.p.records.find(*rid).await? {
                        related.extend(Self::shown(actor, r, now));
                    }
                }
            }
            RecordBody::Observation(o) => {
                if let Some(visit) = shown.item.meta.encounter_id {
                    for r in self
                        .p
                        .records
                        .list_for_encounter(
                            patient,
                            visit,
                            Some(RecordKind::DiagnosticReport),
                            released_by,
                            200,
                        )
                        .await?
                    {
                        let contains = matches!(&r.body, RecordBody::DiagnosticReport(d) if d.results.contains(&id));
                        if contains {
                            related.extend(Self::shown(actor, r, now));
                        }
                    }
                }
                if let (Some(system), Some(code)) = (o.code.system(), o.code.code()) {
                    let query = RecordQuery {
                        released_by,
                        code: Some((system.to_owned(), code.to_owned())),
                        ..RecordQuery::default()
                    };
                    let page = self
                        .visible_page(
                            actor,
                            patient,
                            RecordKind::Observation,
                            &query,
                            None,
                            MAX_LIST,
                        )
                        .await?;
                    trend = page.items.into_iter().map(|s| s.item).rev().collect();
                }
            }
            RecordBody::Medication(_)
            | RecordBody::Immunization(_)
            | RecordBody::Problem(_)
            | RecordBody::Allergy(_)
            | RecordBody::Procedure(_)
            | RecordBody::ClinicalNote(_) => {}
        }
        self.audit(&a, Outcome::Allowed).await?;
        Ok(RecordView {
            record: shown,
            related,
            trend,
        })
    }

    /// The home page of a chart (the actor's own when `patient` is `None`).
    ///
    /// # Errors
    /// See [`RecordsError`].
    pub async fn summary(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<ChartSummary, RecordsError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: patient.or(actor.own_chart()),
            kind: None,
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, patient).await?;
        let patient = self
            .p
            .patients
            .find(chart.id)
            .await?
            .ok_or(RecordsError::NotFound)?;
        let now = self.now();
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        let released_by = Self::released_by(actor, now);
        let q = |statuses: Vec<&'static str>| RecordQuery {
            released_by,
            statuses,
            ..RecordQuery::default()
        };
        let held = if decide(actor, Action::Release, target, now).is_allowed() {
            let query = RecordQuery {
                held_only: true,
                ..RecordQuery::default()
            };
            let mut held = Vec::new();
            for kind in RecordKind::ALL.iter().copied() {
                held.extend(
                    self.visible_page(actor, chart.id, kind, &query, None, MAX_LIST)
                        .await?
                        .items,
                );
            }
            held
        } else {
            Vec::new()
        };
        let mut s = ChartSummary {
            held,
            recent_results: self
                .section(actor, chart, RecordKind::Observation, q(vec![]), 10)
                .await?,
            active_medications: self
                .section(actor, chart, RecordKind::Medication, q(vec!["active"]), 50)
                .await?,
            active_problems: self
                .section(
                    actor,
                    chart,
                    RecordKind::Problem,
                    q(vec!["active", "recurrence", "relapse"]),
                    50,
                )
                .await?,
            allergies: self
                .section(actor, chart, RecordKind::Allergy, q(vec!["active"]), 50)
                .await?,
            recent_visits: self
                .section(actor, chart, RecordKind::Encounter, q(vec![]), 5)
                .await?,
            last_visit: None,
            new_since_last_visit: BTreeMap::new(),
            counts: BTreeMap::new(),
            patient,
        };
        if let Some(last) = s.recent_visits.first() {
            let since = last.item.sort_time();
            s.last_visit = Some(since);
            for kind in RecordKind::ALL.iter().copied() {
                let query = RecordQuery {
                    from: Some(since),
                    ..q(vec![])
                };
                let n = self
                    .section(actor, chart, kind, query, MAX_LIST)
                    .await?
                    .len() as u64;
                if n > 0 {
                    s.new_since_last_visit.insert(kind, n);
                }
            }
        }
        s.counts = self
            .p
            .records
            .count_by_kind(chart.id, released_by)
            .await?
            .into_iter()
            .filter(|(k, _)| Self::kind_allowed(actor, chart, *k, now))
            .collect();
        self.audit(&a, Outcome::Allowed).await?;
        Ok(s)
    }

    /// Clinician: the chart with this medical record number in their organisation (to open
    /// it). The lookup is audited like any chart access (`view_chart`; not found and refused
    /// lookups too), so a search by record number shows in the access history.
    ///
    /// # Errors
    /// [`RecordsError::NotFound`] for an unknown number or a role that may not read charts.
    pub async fn chart_by_mrn(
        &self,
        actor: &Actor,
        mrn: &crate::text::Mrn,
        request_id: Option<&str>,
    ) -> Result<Patient, RecordsError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: None,
            kind: None,
            record: None,
            request_id,
        };
        let Actor::Staff { organization, .. } = actor else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let Some(chart) = self.p.patients.find_by_mrn(*organization, mrn).await? else {
            return self.refuse(&a, Outcome::NotFound).await;
        };
        a.patient = Some(chart.id);
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if decide(actor, Action::ViewChart, target, self.now()) == Decision::Deny {
            return self.refuse(&a, Outcome::Denied).await;
        }
        self.audit(&a, Outcome::Allowed).await?;
        Ok(chart)
    }

    /// Who accessed the actor's own chart, newest first.
    ///
    /// # Errors
    /// See [`RecordsError`].
    pub async fn access_history(
        &self,
        actor: &Actor,
        before: Option<i64>,
        limit: u32,
        request_id: Option<&str>,
    ) -> Result<Vec<AccessEntry>, RecordsError> {
        let mut a = Audit {
            actor,
            action: Action::ViewAccessHistory,
            export: None,
            patient: actor.own_chart(),
            kind: None,
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, None).await?;
        // This view is itself recorded, and shows in the list it answers.
        self.audit(&a, Outcome::Allowed).await?;
        Ok(self
            .p
            .log
            .history(chart.id, before, limit.clamp(1, MAX_LIST))
            .await?)
    }

    /// Clinician: files a result or a note in a chart of their organisation. The
    /// organisation's release policy decides when the patient sees it; the patient is told
    /// by email that something new is waiting (without saying what).
    ///
    /// # Errors
    /// See [`RecordsError`].
    pub async fn file(
        &self,
        actor: &Actor,
        new: NewRecord,
        request_id: Option<&str>,
    ) -> Result<ClinicalRecord, RecordsError> {
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
                return Err(RecordsError::InvalidVisit);
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
        match self.p.records.insert(&record).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(RecordsError::NotFound),
            Err(e) => return Err(e.into()),
        }
        self.notify(chart.id).await;
        Ok(record)
    }

    /// Clinician: releases a held record to the patient now.
    ///
    /// # Errors
    /// See [`RecordsError`]; [`RecordsError::NotHeld`] when it was not held.
    pub async fn release(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<(), RecordsError> {
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
            return self.refuse(&a, Outcome::NotFound).await;
        };
        a.patient = Some(record.meta.patient_id);
        a.kind = Some(record.kind());
        let now = self.now();
        let target = Target::Record {
            meta: &record.meta,
            kind: record.kind(),
        };
        if decide(actor, Action::Release, target, now) == Decision::Deny {
            return self.refuse(&a, Outcome::Denied).await;
        }
        self.audit(&a, Outcome::Allowed).await?;
        if !self.p.records.release(id, now).await? {
            return Err(RecordsError::NotHeld);
        }
        self.notify(record.meta.patient_id).await;
        Ok(())
    }

    /// Starts an export of a chart (the actor's own when `req.patient` is `None`): checks
    /// that the person proved who they are within [`crate::account::REAUTH_WINDOW_MINUTES`], that the actor
    /// may export the chart, and writes the audit entry naming the format. The answer reads
    /// the records out batch by batch under the same rules as viewing.
    ///
    /// # Errors
    /// [`RecordsError::ReauthenticationRequired`], and see [`RecordsError`].
    pub async fn export(
        &self,
        actor: &Actor,
        req: ExportRequest,
        request_id: Option<&str>,
    ) -> Result<ChartExport, RecordsError> {
        let now = self.now();
        if !crate::account::proved_recently(req.authenticated_at, now) {
            return Err(RecordsError::ReauthenticationRequired);
        }
        let mut a = Audit {
            actor,
            action: Action::Export,
            export: Some(req.format),
            patient: req.patient.or(actor.own_chart()),
            // A printout of one kind names it (in the audit, and in the decision).
            kind: match req.kinds.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, req.patient).await?;
        let (Some(patient), Some(organization)) = (
            self.p.patients.find(chart.id).await?,
            self.organization(chart.organization_id).await?,
        ) else {
            return self.refuse(&a, Outcome::NotFound).await;
        };
        let kinds: Vec<RecordKind> = EXPORT_ORDER
            .into_iter()
            .filter(|k| req.kinds.is_empty() || req.kinds.contains(k))
            .filter(|k| {
                decide(
                    actor,
                    Action::Export,
                    Target::Kind {
                        patient: chart.id,
                        organization: chart.organization_id,
                        kind: *k,
                    },
                    now,
                )
                .is_allowed()
            })
            .collect();
        self.audit(&a, Outcome::Allowed).await?;
        Ok(ChartExport::new(
            self.p.records.clone(),
            actor.clone(),
            patient,
            organization,
            now,
            RecordQuery {
                released_by: Self::released_by(actor, now),
                ..RecordQuery::default()
            },
            kinds,
        ))
    }

    async fn organization(
        &self,
        id: OrganizationId,
    ) -> Result<Option<crate::organization::Organization>, RecordsError> {
        Ok(self.p.organizations.find(id).await?)
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

/// A records service whose ports are mocks with no expectations: any use fails the test.
/// For adapter tests that never reach the records use cases.
#[cfg(any(test, feature = "mocks"))]
pub fn records_without_expectations() -> RecordsService {
    #[derive(Debug)]
    struct NilIds;
    impl IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    RecordsService::new(RecordsPorts {
        records: Arc::new(crate::record::MockRecordRepository::new()),
        patients: Arc::new(crate::patient::MockPatientRepository::new()),
        organizations: Arc::new(crate::organization::MockOrganizationRepository::new()),
        accounts: Arc::new(crate::account::MockAccountRepository::new()),
        log: Arc::new(crate::audit::MockAccessLog::new()),
        mailer: Arc::new(crate::account::MockMailer::new()),
        clock: Arc::new(crate::clock::FixedClock::new(DateTime::<Utc>::UNIX_EPOCH)),
        ids: Arc::new(NilIds),
        public_url: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{MockAccountRepository, MockMailer};
    use crate::audit::MockAccessLog;
    use crate::clock::FixedClock;
    use crate::organization::MockOrganizationRepository;
    use crate::patient::{AdministrativeSex, MockPatientRepository, PersonName};
    use crate::record::{
        MockRecordRepository, Observation, ObservationCategory, ReleaseState, ResultStatus,
    };
    use crate::text::{Code, Mrn};
    use chrono::{Duration, NaiveDate, TimeZone};
    use futures_executor::block_on;
    use std::sync::Mutex;
    use uuid::Uuid;

    #[test]
    fn list_filters_refuse_what_the_database_cannot_answer_well() {
        let obs = RecordKind::Observation;
        let parse = |from, until, text: &str| {
            ListFilter::parse(obs, from, until, Some(text.to_owned()), None)
        };
        let end = parse(None, Some("9999-12-30"), "").unwrap().until;
        assert_eq!(
            end,
            Some(Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap())
        );
        assert_eq!(
            parse(None, Some("9999-12-31"), "").unwrap().until,
            None,
            "the last representable day means no end, not a five-digit year"
        );
        assert_eq!(
            parse(Some("10000-01-01"), None, "").unwrap_err(),
            FilterError::Date
        );
        assert_eq!(
            parse(Some("0000-01-01"), None, "").unwrap_err(),
            FilterError::Date
        );
        assert_eq!(
            parse(Some("2025-02-01"), Some("2025-01-31"), "").unwrap_err(),
            FilterError::DateRange
        );
        assert!(parse(Some("2025-01-31"), Some("2025-01-31"), "").is_ok());
        let long = "é".repeat(MAX_SEARCH_CHARS);
        assert_eq!(parse(None, None, &long).unwrap().text, Some(long.clone()));
        assert_eq!(
            parse(None, None, &format!("{long}x")).unwrap_err(),
            FilterError::TextTooLong
        );
        assert_eq!(parse(None, None, "   ").unwrap().text, None);
        assert_eq!(FilterError::TextTooLong.code(), "search_too_long");
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }
    const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
    const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
    const BO: PatientId = PatientId::from_uuid(Uuid::from_u128(11));

    #[derive(Debug)]
    struct NoIds;
    impl IdGenerator for NoIds {
        fn next_uuid(&self) -> Uuid {
            Uuid::from_u128(999)
        }
    }

    fn ann() -> Actor {
        Actor::Patient {
            account: crate::ids::AccountId::from_uuid(Uuid::from_u128(20)),
            patient: ANN,
        }
    }

    fn chart(id: PatientId) -> Patient {
        Patient {
            id,
            organization_id: ORG,
            mrn: Mrn::parse("MRN1").unwrap(),
            name: PersonName::new("Ann", "Lee").unwrap(),
            birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
            sex: AdministrativeSex::Female,
            contact: crate::patient::ContactDetails::default(),
            source_identifier: None,
        }
    }

    fn result(patient: PatientId, release: ReleaseState) -> ClinicalRecord {
        ClinicalRecord {
            meta: RecordMeta {
                id: RecordId::from_uuid(Uuid::from_u128(100)),
                patient_id: patient,
                organization_id: ORG,
                encounter_id: None,
                source: RecordSource::default(),
                source_identifier: None,
                sensitivity: SensitivityLabels::empty(),
                release,
                filed_at: now() - Duration::days(1),
            },
            body: RecordBody::Observation(Observation {
                category: ObservationCategory::Laboratory,
                code: Code::new(None, None, "Glucose").unwrap(),
                status: ResultStatus::Final,
                value: None,
                components: vec![],
                reference_range: None,
                flag: None,
                effective_at: Some(now() - Duration::days(1)),
                issued: None,
            }),
        }
    }

    /// A service over `records`, with an audit log that keeps what it is given (or fails).
    fn service(
        records: MockRecordRepository,
        patients: MockPatientRepository,
        audit_works: bool,
    ) -> (RecordsService, Arc<Mutex<Vec<AccessEvent>>>) {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let mut log = MockAccessLog::new();
        let k = kept.clone();
        log.expect_record().returning(move |e| {
            if audit_works {
                k.lock().unwrap().push(e);
                Ok(())
            } else {
                Err(RepoError::Unavailable)
            }
        });
        let s = RecordsService::new(RecordsPorts {
            records: Arc::new(records),
            patients: Arc::new(patients),
            organizations: Arc::new(MockOrganizationRepository::new()),
            accounts: Arc::new(MockAccountRepository::new()),
            log: Arc::new(log),
            mailer: Arc::new(MockMailer::new()),
            clock: Arc::new(FixedClock::new(now())),
            ids: Arc::new(NoIds),
            public_url: "http://portal.test".into(),
        });
        (s, kept)
    }

    fn finding(r: Option<ClinicalRecord>) -> MockRecordRepository {
        let mut m = MockRecordRepository::new();
        m.expect_find().returning(move |_| Ok(r.clone()));
        m
    }

    fn released() -> ReleaseState {
        ReleaseState::Released {
            at: now() - Duration::hours(2),
        }
    }

    #[test]
    fn reading_an_own_record_is_audited_once_as_allowed() {
        let (s, kept) = service(
            finding(Some(result(ANN, released()))),
            MockPatientRepository::new(),
            true,
        );
        let v = block_on(s.view(
            &ann(),
            RecordId::from_uuid(Uuid::from_u128(100)),
            Some("r1"),
        ))
        .unwrap();
        assert_eq!(v.record.item.meta.patient_id, ANN);
        let kept = kept.lock().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (
                kept[0].outcome,
                kept[0].patient,
                kept[0].action,
                kept[0].request_id.as_deref()
            ),
            (Outcome::Allowed, Some(ANN), Action::Read, Some("r1"))
        );
    }

    #[test]
    fn if_the_audit_write_fails_the_record_is_not_returned() {
        let (s, _) = service(
            finding(Some(result(ANN, released()))),
            MockPatientRepository::new(),
            false,
        );
        let r = block_on(s.view(&ann(), RecordId::from_uuid(Uuid::from_u128(100)), None));
        assert!(matches!(r, Err(RecordsError::AuditUnavailable)), "{r:?}");
    }

    #[test]
    fn another_patients_record_and_a_missing_one_answer_the_same_and_are_audited() {
        let id = RecordId::from_uuid(Uuid::from_u128(100));
        let (s, kept) = service(
            finding(Some(result(BO, released()))),
            MockPatientRepository::new(),
            true,
        );
        assert!(matches!(
            block_on(s.view(&ann(), id, None)),
            Err(RecordsError::NotFound)
        ));
        let (s2, kept2) = service(finding(None), MockPatientRepository::new(), true);
        assert!(matches!(
            block_on(s2.view(&ann(), id, None)),
            Err(RecordsError::NotFound)
        ));
        let denied = kept.lock().unwrap()[0].clone();
        assert_eq!(
            (denied.outcome, denied.patient),
            (Outcome::Denied, Some(BO))
        );
        let missing = kept2.lock().unwrap()[0].clone();
        assert_eq!(
            (missing.outcome, missing.patient),
            (Outcome::NotFound, None)
        );
    }

    #[test]
    fn unreleased_records_do_not_exist_for_the_patient() {
        let (s, kept) = service(
            finding(Some(result(ANN, ReleaseState::Held))),
            MockPatientRepository::new(),
            true,
        );
        let r = block_on(s.view(&ann(), RecordId::from_uuid(Uuid::from_u128(100)), None));
        assert!(matches!(r, Err(RecordsError::NotFound)));
        assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Denied);
    }

    #[test]
    fn a_patients_list_asks_only_for_released_records_and_is_audited_once() {
        let mut records = MockRecordRepository::new();
        records
            .expect_list_for_patient()
            .withf(|p, k, q, _, _| {
                *p == ANN && *k == RecordKind::Observation && q.released_by == Some(now())
            })
            .returning(|_, _, _, _, _| {
                Ok(Page {
                    items: vec![result(ANN, released())],
                    next: None,
                })
            });
        let mut patients = MockPatientRepository::new();
        patients.expect_find().returning(|id| Ok(Some(chart(id))));
        let (s, kept) = service(records, patients, true);
        let req = |patient| ListRequest {
            patient,
            kind: RecordKind::Observation,
            filter: ListFilter::default(),
            after: None,
            limit: 20,
        };
        let page = block_on(s.list(&ann(), req(None), None)).unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.next.is_none());
        let kept = kept.lock().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].record_kind, Some(RecordKind::Observation));

        // Another patient's chart: not found, audited as denied, nothing listed.
        drop(kept);
        let mut patients = MockPatientRepository::new();
        patients.expect_find().returning(|id| Ok(Some(chart(id))));
        let (s, kept) = service(MockRecordRepository::new(), patients, true);
        let r = block_on(s.list(&ann(), req(Some(BO)), None));
        assert!(matches!(r, Err(RecordsError::NotFound)));
        assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Denied);
    }

    #[test]
    fn a_delayed_release_appears_when_its_time_comes() {
        let later = ReleaseState::Released {
            at: now() + Duration::hours(72),
        };
        let clock = Arc::new(FixedClock::new(now()));
        let mut log = MockAccessLog::new();
        log.expect_record().returning(|_| Ok(()));
        let s = RecordsService::new(RecordsPorts {
            records: Arc::new(finding(Some(result(ANN, later)))),
            patients: Arc::new(MockPatientRepository::new()),
            organizations: Arc::new(MockOrganizationRepository::new()),
            accounts: Arc::new(MockAccountRepository::new()),
            log: Arc::new(log),
            mailer: Arc::new(MockMailer::new()),
            clock: clock.clone(),
            ids: Arc::new(NoIds),
            public_url: String::new(),
        });
        let id = RecordId::from_uuid(Uuid::from_u128(100));
        assert!(matches!(
            block_on(s.view(&ann(), id, None)),
            Err(RecordsError::NotFound)
        ));
        clock.advance(Duration::hours(71));
        assert!(matches!(
            block_on(s.view(&ann(), id, None)),
            Err(RecordsError::NotFound)
        ));
        clock.advance(Duration::hours(1));
        assert!(block_on(s.view(&ann(), id, None)).is_ok());
    }

    /// An export service over `records` (answered for any page), Ann's chart and the clinic.
    fn exporting(records: Vec<ClinicalRecord>) -> (RecordsService, Arc<Mutex<Vec<AccessEvent>>>) {
        let mut repo = MockRecordRepository::new();
        repo.expect_list_for_patient()
            .returning(move |_, kind, query, _, _| {
                let items = records
                    .iter()
                    .filter(|r| r.kind() == kind)
                    .filter(|r| {
                        query
                            .released_by
                            .is_none_or(|at| r.meta.release.is_visible_at(at))
                    })
                    .cloned()
                    .collect();
                Ok(Page { items, next: None })
            });
        let mut patients = MockPatientRepository::new();
        patients.expect_find().returning(|id| Ok(Some(chart(id))));
        let mut orgs = MockOrganizationRepository::new();
        orgs.expect_find().returning(|id| {
            Ok(Some(crate::organization::Organization {
                id,
                name: crate::text::OrgName::parse("Clinic").unwrap(),
                slug: crate::text::Slug::parse("clinic").unwrap(),
                features: std::collections::BTreeSet::new(),
                release_policy: crate::organization::ReleasePolicy::default(),
            }))
        });
        let kept = Arc::new(Mutex::new(Vec::new()));
        let k = kept.clone();
        let mut log = MockAccessLog::new();
        log.expect_record().returning(move |e| {
            k.lock().unwrap().push(e);
            Ok(())
        });
        let s = RecordsService::new(RecordsPorts {
            records: Arc::new(repo),
            patients: Arc::new(patients),
            organizations: Arc::new(orgs),
            accounts: Arc::new(MockAccountRepository::new()),
            log: Arc::new(log),
            mailer: Arc::new(MockMailer::new()),
            clock: Arc::new(FixedClock::new(now())),
            ids: Arc::new(NoIds),
            public_url: String::new(),
        });
        (s, kept)
    }

    fn numbered(mut r: ClinicalRecord, n: u128) -> ClinicalRecord {
        r.meta.id = RecordId::from_uuid(Uuid::from_u128(n));
        r
    }

    fn read_out(
        s: &RecordsService,
        actor: &Actor,
        authenticated_at: DateTime<Utc>,
    ) -> Result<Vec<u128>, RecordsError> {
        let mut export = block_on(s.export(
            actor,
            crate::export::ExportRequest {
                patient: Some(ANN),
                format: ExportFormat::Fhir,
                kinds: Vec::new(),
                authenticated_at,
            },
            None,
        ))?;
        let mut ids = Vec::new();
        while let Some(batch) = block_on(export.next_batch())? {
            ids.extend(batch.iter().map(|r| r.meta.id.as_uuid().as_u128()));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    #[test]
    fn an_export_holds_only_what_the_actor_may_see_and_names_its_format_in_the_audit() {
        use crate::record::SensitivityLabel;
        let genetic = SensitivityLabels::empty().with(SensitivityLabel::Genetic);
        let mut labelled = numbered(result(ANN, released()), 2);
        labelled.meta.sensitivity = genetic;
        let held = numbered(result(ANN, ReleaseState::Held), 3);
        let mut note = numbered(result(ANN, released()), 4);
        note.body = RecordBody::ClinicalNote(crate::record::ClinicalNote {
            note_type: crate::record::NoteType::VisitNote,
            title: "Visit".into(),
            text: "Seen.".into(),
            date: None,
        });
        let records = vec![numbered(result(ANN, released()), 1), labelled, held, note];
        let (s, kept) = exporting(records);

        // The patient: everything released, labelled or not; never the held result.
        assert_eq!(read_out(&s, &ann(), now()).unwrap(), vec![1, 2, 4]);
        let e = kept.lock().unwrap()[0].clone();
        assert_eq!(
            (e.action, e.export, e.outcome),
            (Action::Export, Some(ExportFormat::Fhir), Outcome::Allowed)
        );
        assert_eq!(e.action_code(), "export_fhir");

        // A proxy granted results and immunizations, without the genetic label.
        let scope = |labels| crate::access::GrantScope {
            kinds: [RecordKind::Observation, RecordKind::Immunization].into(),
            actions: [Action::Read, Action::Export].into(),
            labels,
            valid_from: now() - Duration::days(1),
            valid_until: now() + Duration::days(1),
        };
        let proxy = |labels| Actor::Proxy {
            account: crate::ids::AccountId::from_uuid(Uuid::from_u128(40)),
            grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(50)),
            patient: ANN,
            scope: scope(labels),
        };
        assert_eq!(
            read_out(&s, &proxy(SensitivityLabels::empty()), now()).unwrap(),
            vec![1]
        );
        assert_eq!(read_out(&s, &proxy(genetic), now()).unwrap(), vec![1, 2]);
        // A proxy whose grant does not include exporting gets nothing, as if no chart.
        let mut reader = proxy(genetic);
        if let Actor::Proxy { scope, .. } = &mut reader {
            scope.actions = [Action::Read].into();
        }
        assert!(matches!(
            read_out(&s, &reader, now()),
            Err(RecordsError::NotFound)
        ));
    }

    #[test]
    fn an_export_needs_the_password_within_five_minutes_and_then_reads_nothing() {
        let (s, kept) = exporting(vec![result(ANN, released())]);
        assert!(read_out(&s, &ann(), now() - Duration::minutes(5)).is_ok());
        let before = kept.lock().unwrap().len();
        assert!(matches!(
            read_out(
                &s,
                &ann(),
                now() - Duration::minutes(5) - Duration::seconds(1)
            ),
            Err(RecordsError::ReauthenticationRequired)
        ));
        assert_eq!(
            kept.lock().unwrap().len(),
            before,
            "a refused export is not an access"
        );
    }
}
