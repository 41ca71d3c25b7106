//! Taking records away: the formats, and a chart read out in batches for an export.
//!
//! An export is started by [`crate::chart::RecordsService::export`], which decides whether the
//! actor may export the chart at all, writes the one audit entry, and answers a
//! [`ChartExport`]. That reads the chart kind by kind, a batch at a time, applying the same
//! decision per record as viewing does (release, sensitivity labels against a proxy's grant),
//! so a large chart never has to be held in memory and an export never shows more than the
//! pages would.

use crate::access::{Action, Actor, Decision, Target, decide};
use crate::ids::PatientId;
use crate::organization::Organization;
use crate::patient::Patient;
use crate::record::{
    AllergyStatus, ClinicalRecord, Cursor, ImmunizationStatus, MedicationStatus,
    ObservationCategory, ProcedureStatus, RecordBody, RecordKind, RecordQuery, RecordRepository,
};
use crate::repo::RepoError;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Records read per batch.
pub const EXPORT_BATCH: u32 = 500;

/// The forms an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// Everything, as a FHIR R4 Bundle.
    Fhir,
    /// The International Patient Summary, a FHIR document.
    Ips,
    /// A printable health summary or per-kind printout.
    Pdf,
}

/// The file name of a download made at `at`: what it is and the day, never a name or an
/// identifier (`health-record-2026-11-25.json`, `observation-2026-11-25.pdf`). `kind` names a
/// per-kind printout.
pub fn file_name(format: ExportFormat, kind: Option<RecordKind>, at: DateTime<Utc>) -> String {
    let day = at.format("%Y-%m-%d");
    match (format, kind) {
        (ExportFormat::Fhir, _) => format!("health-record-{day}.json"),
        (ExportFormat::Ips, _) => format!("patient-summary-{day}.json"),
        (ExportFormat::Pdf, Some(kind)) => format!("{}-{day}.pdf", kind.code()),
        (ExportFormat::Pdf, None) => format!("health-summary-{day}.pdf"),
    }
}

impl ExportFormat {
    pub const ALL: [Self; 3] = [Self::Fhir, Self::Ips, Self::Pdf];

    /// The action code of the audit entry.
    pub fn audit_code(self) -> &'static str {
        match self {
            Self::Fhir => "export_fhir",
            Self::Ips => "export_ips",
            Self::Pdf => "export_pdf",
        }
    }

    pub fn from_audit_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.audit_code() == code)
    }
}

/// The order kinds are exported in: visits first and results before the reports that group
/// them, so that every reference in a streamed export points backwards.
pub const EXPORT_ORDER: [RecordKind; 9] = [
    RecordKind::Encounter,
    RecordKind::Observation,
    RecordKind::DiagnosticReport,
    RecordKind::Medication,
    RecordKind::Immunization,
    RecordKind::Problem,
    RecordKind::Allergy,
    RecordKind::Procedure,
    RecordKind::ClinicalNote,
];

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The chart; `None` for the actor's own.
    pub patient: Option<PatientId>,
    pub format: ExportFormat,
    /// Only these kinds (a per-kind printout); every kind when empty.
    pub kinds: Vec<RecordKind>,
    /// When the person last proved who they are in this session.
    pub authenticated_at: DateTime<Utc>,
}

/// A chart being read out for an export. See the module documentation.
pub struct ChartExport {
    records: Arc<dyn RecordRepository>,
    actor: Actor,
    patient: Patient,
    organization: Organization,
    generated_at: DateTime<Utc>,
    query: RecordQuery,
    kinds: VecDeque<RecordKind>,
    cursor: Option<Cursor>,
    /// Whether the whole chart was asked for in one read (done once, first).
    read_whole_tried: bool,
    /// The patient's grants in force, in their own export only.
    consents: Vec<crate::consent::Grant>,
    /// The chart's appointments, in an export by someone who may book for it.
    appointments: Vec<ExportedAppointment>,
}

/// An appointment as an export writes it: with its visit type's name, where, and with whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedAppointment {
    pub appointment: crate::scheduling::Appointment,
    pub visit_type: String,
    pub minutes: u16,
    pub location: Option<crate::scheduling::Location>,
    pub provider: Option<String>,
}

impl std::fmt::Debug for ChartExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartExport")
            .field("patient", &self.patient.id)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl ChartExport {
    pub(crate) fn new(
        records: Arc<dyn RecordRepository>,
        actor: Actor,
        patient: Patient,
        organization: Organization,
        generated_at: DateTime<Utc>,
        query: RecordQuery,
        kinds: Vec<RecordKind>,
    ) -> Self {
        Self {
            records,
            actor,
            patient,
            organization,
            generated_at,
            query,
            kinds: kinds.into(),
            cursor: None,
            read_whole_tried: false,
            consents: Vec::new(),
            appointments: Vec::new(),
        }
    }

    /// The export with the chart's appointments.
    #[must_use]
    pub(crate) fn with_appointments(mut self, appointments: Vec<ExportedAppointment>) -> Self {
        self.appointments = appointments;
        self
    }

    /// The chart's appointments, for the FHIR `Appointment` resources (empty when the actor
    /// may not book for the chart).
    pub fn appointments(&self) -> &[ExportedAppointment] {
        &self.appointments
    }

    /// The export with the patient's grants in force (for their own export).
    #[must_use]
    pub(crate) fn with_consents(mut self, consents: Vec<crate::consent::Grant>) -> Self {
        self.consents = consents;
        self
    }

    /// Who else may see the chart now, and how (the patient's own export only; empty
    /// otherwise): the grants in force, for the FHIR `Consent` resources.
    pub fn consents(&self) -> &[crate::consent::Grant] {
        &self.consents
    }

    /// Whose chart this is.
    pub fn patient(&self) -> &Patient {
        &self.patient
    }

    /// The organisation keeping the chart (the source named on printouts).
    pub fn organization(&self) -> &Organization {
        &self.organization
    }

    /// When the export was made.
    pub fn generated_at(&self) -> DateTime<Utc> {
        self.generated_at
    }

    /// The next records the actor may take, kind by kind in the export's order and newest
    /// first within a kind: the whole chart at once when it holds at most [`EXPORT_BATCH`]
    /// records, else a batch of one kind at a time; `None` when the chart has been read out.
    ///
    /// # Errors
    /// The store's error when it fails part-way.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<ClinicalRecord>>, RepoError> {
        if !self.read_whole_tried && !self.kinds.is_empty() {
            // First, the whole chart in one read, which for a chart of ordinary size is all
            // there is; a larger one is read kind by kind, a batch at a time.
            self.read_whole_tried = true;
            let kinds: Vec<RecordKind> = self.kinds.iter().copied().collect();
            if let Some(mut all) = self
                .records
                .list_kinds_within(self.patient.id, &kinds, &self.query, EXPORT_BATCH)
                .await?
            {
                self.kinds.clear();
                // Into the export's order of kinds (stable: newest first within a kind).
                all.sort_by_key(|r| kinds.iter().position(|k| *k == r.kind()));
                all.retain(|r| self.may_take(r));
                return Ok((!all.is_empty()).then_some(all));
            }
        }
        while let Some(&kind) = self.kinds.front() {
            let page = self
                .records
                .list_for_patient(
                    self.patient.id,
                    kind,
                    &self.query,
                    self.cursor,
                    EXPORT_BATCH,
                )
                .await?;
            self.cursor = page.next;
            if page.next.is_none() {
                self.kinds.pop_front();
            }
            let visible: Vec<ClinicalRecord> = page
                .items
                .into_iter()
                .filter(|r| self.may_take(r))
                .collect();
            if !visible.is_empty() {
                return Ok(Some(visible));
            }
        }
        Ok(None)
    }

    fn may_take(&self, r: &ClinicalRecord) -> bool {
        let target = Target::Record {
            meta: &r.meta,
            kind: r.kind(),
        };
        decide(&self.actor, Action::Export, target, self.generated_at) != Decision::Deny
    }
}

/// The sections of a patient summary (the IPS and the PDF health summary), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SummarySection {
    Allergies,
    Medications,
    Problems,
    Immunizations,
    Procedures,
    Results,
    VitalSigns,
    PastProblems,
}

impl SummarySection {
    pub const ALL: [Self; 8] = [
        Self::Allergies,
        Self::Medications,
        Self::Problems,
        Self::Immunizations,
        Self::Procedures,
        Self::Results,
        Self::VitalSigns,
        Self::PastProblems,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Allergies => "Allergies and intolerances",
            Self::Medications => "Medications",
            Self::Problems => "Problems",
            Self::Immunizations => "Immunizations",
            Self::Procedures => "Procedures",
            Self::Results => "Test results (latest of each test)",
            Self::VitalSigns => "Vital signs (latest of each)",
            Self::PastProblems => "Past problems",
        }
    }

    /// A summary always has these three, saying so when the chart holds nothing for them.
    pub fn required(self) -> bool {
        matches!(self, Self::Allergies | Self::Medications | Self::Problems)
    }

    /// What a section says when it is empty. Salus cannot tell "none" from "not recorded",
    /// so it says only what it knows.
    pub fn none_recorded(self) -> &'static str {
        match self {
            Self::Allergies => "No allergies or intolerances are recorded.",
            Self::Medications => "No current medications are recorded.",
            Self::Problems => "No current problems are recorded.",
            Self::Immunizations => "No immunizations are recorded.",
            Self::Procedures => "No procedures are recorded.",
            Self::Results => "No test results are recorded.",
            Self::VitalSigns => "No vital signs are recorded.",
            Self::PastProblems => "No past problems are recorded.",
        }
    }
}

/// Picks a patient summary out of a chart read in export order (newest first per kind),
/// keeping only what the summary holds, so memory is bounded by the summary, not the chart:
/// - allergies and intolerances, but for resolved ones;
/// - medications that are active or on hold;
/// - active problems (active, recurrence, relapse); the others as past problems;
/// - immunizations given, procedures done;
/// - the latest laboratory result of each test, and the latest vital sign of each.
#[derive(Debug, Default)]
pub struct SummaryCollector {
    sections: BTreeMap<SummarySection, Vec<ClinicalRecord>>,
    /// Tests already taken (the first seen is the latest).
    seen: HashSet<(SummarySection, String)>,
}

impl SummaryCollector {
    /// Offers one record; keeps it when the summary holds it.
    pub fn add(&mut self, r: ClinicalRecord) {
        let section = match &r.body {
            RecordBody::Allergy(a) if a.clinical_status != Some(AllergyStatus::Resolved) => {
                Some(SummarySection::Allergies)
            }
            RecordBody::Medication(m)
                if matches!(
                    m.status,
                    MedicationStatus::Active | MedicationStatus::OnHold
                ) =>
            {
                Some(SummarySection::Medications)
            }
            RecordBody::Problem(p) if p.clinical_status.is_active() => {
                Some(SummarySection::Problems)
            }
            RecordBody::Problem(_) => Some(SummarySection::PastProblems),
            RecordBody::Immunization(i) if i.status == ImmunizationStatus::Completed => {
                Some(SummarySection::Immunizations)
            }
            RecordBody::Procedure(p) if p.status == ProcedureStatus::Completed => {
                Some(SummarySection::Procedures)
            }
            RecordBody::Observation(o) => {
                let section = match o.category {
                    ObservationCategory::Laboratory => Some(SummarySection::Results),
                    ObservationCategory::VitalSigns => Some(SummarySection::VitalSigns),
                    ObservationCategory::Other => None,
                };
                section.filter(|s| {
                    let test = format!(
                        "{}|{}",
                        o.code.system().unwrap_or(""),
                        o.code.code().unwrap_or(o.code.display())
                    );
                    self.seen.insert((*s, test))
                })
            }
            _ => None,
        };
        if let Some(s) = section {
            self.sections.entry(s).or_default().push(r);
        }
    }

    /// The summary in section order: every section with records, and the required ones
    /// even when empty.
    pub fn into_sections(mut self) -> Vec<(SummarySection, Vec<ClinicalRecord>)> {
        SummarySection::ALL
            .into_iter()
            .filter_map(|s| {
                let records = self.sections.remove(&s).unwrap_or_default();
                (s.required() || !records.is_empty()).then_some((s, records))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_say_what_and_when_and_nothing_about_whom() {
        use chrono::TimeZone as _;
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 23, 59, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(
            file_name(ExportFormat::Fhir, None, at),
            "health-record-2026-11-25.json"
        );
        assert_eq!(
            file_name(ExportFormat::Ips, None, at),
            "patient-summary-2026-11-25.json"
        );
        assert_eq!(
            file_name(ExportFormat::Pdf, None, at),
            "health-summary-2026-11-25.pdf"
        );
        assert_eq!(
            file_name(ExportFormat::Pdf, Some(RecordKind::Observation), at),
            "observation-2026-11-25.pdf"
        );
    }

    #[test]
    fn audit_codes_round_trip_and_are_distinct() {
        for f in ExportFormat::ALL {
            assert_eq!(ExportFormat::from_audit_code(f.audit_code()), Some(f));
        }
        assert_eq!(ExportFormat::from_audit_code("export"), None);
    }

    #[test]
    fn references_point_backwards_in_export_order() {
        let at = |k| EXPORT_ORDER.iter().position(|x| *x == k).unwrap();
        // Everything may point to its visit; reports point to their results.
        for k in RecordKind::ALL {
            assert!(at(RecordKind::Encounter) <= at(*k));
        }
        assert!(at(RecordKind::Observation) < at(RecordKind::DiagnosticReport));
        assert_eq!(EXPORT_ORDER.len(), RecordKind::ALL.len());
    }
}
