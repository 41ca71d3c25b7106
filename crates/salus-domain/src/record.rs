//! Clinical records: one typed model per kind, plus what every record carries
//! (whose it is, where it came from, how sensitive it is, whether it is released).

use crate::ids::{OrganizationId, PatientId, RecordId};
use crate::repo::RepoError;
use crate::text::{Code, DisplayName, SourceIdentifier};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Declares a closed set of coded values with a stable storage/API code for each.
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $code)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable code used in storage and the API.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

code_enum!(
    /// The kinds of clinical record a patient can see.
    RecordKind {
        Encounter => "encounter",
        Observation => "observation",
        DiagnosticReport => "diagnostic_report",
        Medication => "medication",
        Immunization => "immunization",
        Problem => "problem",
        Allergy => "allergy",
        Procedure => "procedure",
        ClinicalNote => "clinical_note",
    }
);

impl RecordKind {
    /// The status codes records of this kind can have (for filters).
    pub fn status_codes(self) -> Vec<&'static str> {
        fn codes<T: Copy>(all: &[T], code: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| code(*v)).collect()
        }
        match self {
            Self::Encounter => codes(EncounterStatus::ALL, EncounterStatus::code),
            Self::Observation | Self::DiagnosticReport => {
                codes(ResultStatus::ALL, ResultStatus::code)
            }
            Self::Medication => codes(MedicationStatus::ALL, MedicationStatus::code),
            Self::Immunization => codes(ImmunizationStatus::ALL, ImmunizationStatus::code),
            Self::Problem => codes(ProblemStatus::ALL, ProblemStatus::code),
            Self::Allergy => {
                let mut c = codes(AllergyStatus::ALL, AllergyStatus::code);
                c.push("unknown");
                c
            }
            Self::Procedure => codes(ProcedureStatus::ALL, ProcedureStatus::code),
            Self::ClinicalNote => vec!["current"],
        }
    }

    /// Plain words for a list of this kind, as a patient reads them.
    pub fn label(self) -> &'static str {
        match self {
            Self::Encounter => "Visits",
            Self::Observation => "Test results",
            Self::DiagnosticReport => "Reports",
            Self::Medication => "Medications",
            Self::Immunization => "Immunizations",
            Self::Problem => "Health problems",
            Self::Allergy => "Allergies",
            Self::Procedure => "Procedures",
            Self::ClinicalNote => "Notes",
        }
    }
}

impl SensitivityLabel {
    /// Plain words for the notice shown before a labelled record.
    pub fn label(self) -> &'static str {
        match self {
            Self::MentalHealth => "mental health",
            Self::SubstanceUse => "substance use",
            Self::SexualReproductive => "sexual and reproductive health",
            Self::Hiv => "HIV",
            Self::Genetic => "genetic information",
        }
    }
}

code_enum!(
    /// Categories of especially sensitive information (42 CFR Part 2 and state laws).
    SensitivityLabel {
        MentalHealth => "mental_health",
        SubstanceUse => "substance_use",
        SexualReproductive => "sexual_reproductive_health",
        Hiv => "hiv",
        Genetic => "genetic",
    }
);

impl SensitivityLabel {
    fn bit(self) -> u8 {
        match self {
            Self::MentalHealth => 1,
            Self::SubstanceUse => 2,
            Self::SexualReproductive => 4,
            Self::Hiv => 8,
            Self::Genetic => 16,
        }
    }
}

/// A set of sensitivity labels; empty by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct SensitivityLabels(u8);

/// A stored label set has bits no label uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown sensitivity label bits")]
pub struct UnknownLabelBits;

impl SensitivityLabels {
    pub const fn empty() -> Self {
        Self(0)
    }
    #[must_use]
    pub fn with(self, label: SensitivityLabel) -> Self {
        Self(self.0 | label.bit())
    }
    pub fn contains(self, label: SensitivityLabel) -> bool {
        self.0 & label.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = SensitivityLabel> {
        SensitivityLabel::ALL
            .iter()
            .copied()
            .filter(move |l| self.contains(*l))
    }
    /// The compact form used in storage.
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn from_bits(bits: u8) -> Result<Self, UnknownLabelBits> {
        let known = SensitivityLabel::ALL.iter().fold(0, |acc, l| acc | l.bit());
        if bits & !known == 0 {
            Ok(Self(bits))
        } else {
            Err(UnknownLabelBits)
        }
    }
}

impl TryFrom<u8> for SensitivityLabels {
    type Error = UnknownLabelBits;
    fn try_from(bits: u8) -> Result<Self, UnknownLabelBits> {
        Self::from_bits(bits)
    }
}

impl From<SensitivityLabels> for u8 {
    fn from(l: SensitivityLabels) -> u8 {
        l.0
    }
}

/// Whether the patient can see a record online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseState {
    /// Visible from `at` on (which may lie in the future: a delayed release).
    Released { at: DateTime<Utc> },
    /// Waiting for staff to release it.
    Held,
    /// Never shown online.
    NeverOnline,
}

impl ReleaseState {
    pub fn is_visible_at(self, now: DateTime<Utc>) -> bool {
        matches!(self, Self::Released { at } if at <= now)
    }
}

/// Who produced a record and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSource {
    /// Who wrote or ordered it (the prescriber, the note's author, the requester).
    pub author: Option<DisplayName>,
    /// Who carried it out (the clinician at the visit, the lab).
    pub performer: Option<DisplayName>,
    /// The organisation where it happened.
    pub organization: Option<DisplayName>,
    /// True when that organisation is not the one running this portal.
    pub from_outside: bool,
}

/// A span of time; either end may be unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

code_enum!(EncounterClass {
    Ambulatory => "ambulatory",
    Emergency => "emergency",
    Inpatient => "inpatient",
    Virtual => "virtual",
    HomeHealth => "home_health",
    Other => "other",
});

code_enum!(EncounterStatus {
    Planned => "planned",
    InProgress => "in_progress",
    Finished => "finished",
    Cancelled => "cancelled",
    EnteredInError => "entered_in_error",
    Unknown => "unknown",
});

/// A visit: what kind, when, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    pub class: EncounterClass,
    pub status: EncounterStatus,
    /// What sort of visit ("General examination", "Emergency room admission").
    pub visit_type: Option<Code>,
    pub reason: Option<Code>,
    pub period: Period,
}

code_enum!(ObservationCategory {
    Laboratory => "laboratory",
    VitalSigns => "vital_signs",
    Other => "other",
});

code_enum!(ResultStatus {
    Registered => "registered",
    Partial => "partial",
    Preliminary => "preliminary",
    Final => "final",
    Amended => "amended",
    Corrected => "corrected",
    Appended => "appended",
    Cancelled => "cancelled",
    EnteredInError => "entered_in_error",
    Unknown => "unknown",
});

code_enum!(
    /// How a result compares to its reference range.
    AbnormalFlag {
        Normal => "normal",
        Low => "low",
        High => "high",
        CriticalLow => "critical_low",
        CriticalHigh => "critical_high",
        Abnormal => "abnormal",
    }
);

impl AbnormalFlag {
    pub fn is_abnormal(self) -> bool {
        self != Self::Normal
    }
}

/// A measured amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub unit: Option<String>,
}

/// What a result says: a number with a unit, free text, or a coded answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationValue {
    Quantity(Quantity),
    Text(String),
    Coded(Code),
}

/// The range of values considered normal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferenceRange {
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub text: Option<String>,
}

impl ReferenceRange {
    /// Low / high / normal for a numeric value; `None` when the range has no bounds.
    pub fn flag_for(&self, value: f64) -> Option<AbnormalFlag> {
        match (self.low, self.high) {
            (None, None) => None,
            (Some(low), _) if value < low => Some(AbnormalFlag::Low),
            (_, Some(high)) if value > high => Some(AbnormalFlag::High),
            _ => Some(AbnormalFlag::Normal),
        }
    }
}

/// A unit as people write it: UCUM codes from lab systems ("mm[Hg]", "kg/m2", "Cel") become
/// "mmHg", "kg/m²", "°C"; anything not known is shown as it came. Only characters every
/// printout font has (Latin-1) are used.
pub fn human_unit(ucum: &str) -> std::borrow::Cow<'_, str> {
    let ucum = ucum.trim();
    HUMAN_UNITS
        .iter()
        .find(|(code, _)| *code == ucum)
        .map_or(std::borrow::Cow::Borrowed(ucum), |(_, human)| {
            std::borrow::Cow::Borrowed(*human)
        })
}

/// UCUM codes and how people write them.
const HUMAN_UNITS: &[(&str, &str)] = &[
    ("mm[Hg]", "mmHg"),
    ("kg/m2", "kg/m²"),
    ("Cel", "°C"),
    ("[degF]", "°F"),
    ("[lb_av]", "lb"),
    ("[in_i]", "in"),
    ("/min", "per minute"),
    ("{beats}/min", "beats per minute"),
    ("{breaths}/min", "breaths per minute"),
    // Counts in words, as patient leaflets write them (and every printout can show them).
    ("10*3/uL", "thousand/µL"),
    ("10*6/uL", "million/µL"),
    ("10*9/L", "billion/L"),
    ("10*12/L", "trillion/L"),
    ("ug/L", "µg/L"),
    ("ug/dL", "µg/dL"),
    ("umol/L", "µmol/L"),
    ("uL", "µL"),
    ("{score}", "points"),
    ("{nominal}", ""),
];

/// A value at the precision people read it: whole numbers for mmHg (a blood pressure is
/// 120/77, not 120.5/77.3; halves go to the even number), otherwise as recorded.
fn as_read(value: f64, unit: Option<&str>) -> f64 {
    if unit.map(str::trim) == Some("mm[Hg]") {
        value.round_ties_even()
    } else {
        value
    }
}

fn reading_of(value: f64, unit: Option<&str>) -> String {
    as_read(value, unit).to_string()
}

fn with_unit(number: String, unit: Option<&str>) -> String {
    match unit.map(human_unit) {
        Some(u) if !u.is_empty() => format!("{number} {u}"),
        _ => number,
    }
}

impl ObservationValue {
    /// The value as a patient reads it ("5.4 mmol/L", "120 mmHg", "Positive").
    pub fn text(&self) -> String {
        match self {
            Self::Quantity(q) => {
                with_unit(reading_of(q.value, q.unit.as_deref()), q.unit.as_deref())
            }
            Self::Text(t) => t.clone(),
            Self::Coded(c) => c.display().to_owned(),
        }
    }
}

/// One part of a multi-part result as a patient reads it, flagged by its own range.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultPart {
    pub name: String,
    pub value: Option<String>,
    pub range: Option<String>,
    pub flag: Option<AbnormalFlag>,
}

impl ReferenceRange {
    /// The range as a patient reads it ("3.5 to 5.0", "below 200", "above 40").
    pub fn describe(&self) -> Option<String> {
        match (self.low, self.high, self.text.as_deref()) {
            (Some(l), Some(h), _) => Some(format!("{l} to {h}")),
            (Some(l), None, _) => Some(format!("{l} or above")),
            (None, Some(h), _) => Some(format!("{h} or below")),
            (None, None, Some(t)) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            (None, None, _) => None,
        }
    }
}

impl Observation {
    /// The numeric value and its unit, when the result is a number.
    pub fn numeric(&self) -> Option<(f64, Option<&str>)> {
        match &self.value {
            Some(ObservationValue::Quantity(q)) => Some((q.value, q.unit.as_deref())),
            _ => None,
        }
    }

    /// The flag the lab gave, or else the one the reference range implies; for a result in
    /// parts without a flag of its own, the most abnormal of its parts' flags.
    pub fn effective_flag(&self) -> Option<AbnormalFlag> {
        if self.value.is_none() && !self.components.is_empty() {
            // A result in parts is as abnormal as its most abnormal part, each part judged by
            // its own range (a flag a source put on the whole is not used: it says not which).
            let flags: Vec<AbnormalFlag> = self.parts().iter().filter_map(|p| p.flag).collect();
            return flags
                .iter()
                .copied()
                .find(|f| f.is_abnormal())
                .or_else(|| flags.first().copied());
        }
        self.flag.or_else(|| {
            let (v, _) = self.numeric()?;
            self.reference_range.as_ref()?.flag_for(v)
        })
    }

    /// The parts of a result in parts (the systolic and diastolic of a blood pressure), each
    /// with its own value, range and flag; empty for a single value.
    pub fn parts(&self) -> Vec<ResultPart> {
        self.components
            .iter()
            .map(|c| {
                // Flagged by the value as the patient reads it, so "120 mmHg" against a range
                // up to 120 is never called high.
                let numeric = match &c.value {
                    Some(ObservationValue::Quantity(q)) => {
                        Some(as_read(q.value, q.unit.as_deref()))
                    }
                    _ => None,
                };
                let range = c.reference_range.as_ref();
                ResultPart {
                    name: c.code.display().to_owned(),
                    value: c.value.as_ref().map(ObservationValue::text),
                    range: range.and_then(ReferenceRange::describe),
                    flag: range.and_then(|r| r.flag_for(numeric?)).or(c.flag),
                }
            })
            .collect()
    }

    /// The result as one line a patient reads: the value; for a result in parts that share a
    /// unit, the parts' numbers joined ("120/77 mmHg"); else the parts one after another.
    pub fn reading(&self) -> Option<String> {
        if let Some(v) = &self.value {
            return Some(v.text());
        }
        let quantities: Vec<&Quantity> = self
            .components
            .iter()
            .filter_map(|c| match &c.value {
                Some(ObservationValue::Quantity(q)) => Some(q),
                _ => None,
            })
            .collect();
        if quantities.is_empty() {
            return None;
        }
        let unit = quantities[0].unit.as_deref();
        if quantities.len() == self.components.len()
            && quantities.iter().all(|q| q.unit.as_deref() == unit)
        {
            let numbers: Vec<String> = quantities
                .iter()
                .map(|q| reading_of(q.value, unit))
                .collect();
            return Some(with_unit(numbers.join("/"), unit));
        }
        Some(
            self.parts()
                .iter()
                .filter_map(|p| Some(format!("{} {}", p.name, p.value.as_ref()?)))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The normal range as a patient reads it; for a result in parts, the parts' ranges in
    /// the same order as the reading ("90 to 120 / 60 to 80").
    pub fn range_text(&self) -> Option<String> {
        if let Some(r) = self
            .reference_range
            .as_ref()
            .and_then(ReferenceRange::describe)
        {
            return Some(r);
        }
        let parts = self.parts();
        let ranges: Vec<String> = parts.iter().filter_map(|p| p.range.clone()).collect();
        (!ranges.is_empty() && ranges.len() == parts.len()).then(|| ranges.join(" / "))
    }
}

/// One part of a multi-part result (systolic and diastolic of a blood pressure).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationComponent {
    pub code: Code,
    pub value: Option<ObservationValue>,
    pub reference_range: Option<ReferenceRange>,
    pub flag: Option<AbnormalFlag>,
}

/// A lab result, vital sign or other observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub category: ObservationCategory,
    pub code: Code,
    pub status: ResultStatus,
    pub value: Option<ObservationValue>,
    pub components: Vec<ObservationComponent>,
    pub reference_range: Option<ReferenceRange>,
    pub flag: Option<AbnormalFlag>,
    pub effective_at: Option<DateTime<Utc>>,
    pub issued: Option<DateTime<Utc>>,
}

/// A report grouping results (a blood count panel, a metabolic panel).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticReport {
    pub category: Option<Code>,
    pub code: Code,
    pub status: ResultStatus,
    /// The observations it groups, in report order.
    pub results: Vec<RecordId>,
    pub conclusion: Option<String>,
    pub effective_at: Option<DateTime<Utc>>,
    pub issued: Option<DateTime<Utc>>,
}

code_enum!(MedicationStatus {
    Active => "active",
    OnHold => "on_hold",
    Stopped => "stopped",
    Completed => "completed",
    Draft => "draft",
    EnteredInError => "entered_in_error",
    Unknown => "unknown",
});

/// A prescribed medication.
#[derive(Debug, Clone, PartialEq)]
pub struct Medication {
    pub medication: Code,
    pub dosage: Option<String>,
    pub status: MedicationStatus,
    pub authored_on: Option<DateTime<Utc>>,
    /// When the patient is to take it, where known.
    pub period: Period,
}

code_enum!(ImmunizationStatus {
    Completed => "completed",
    NotDone => "not_done",
    EnteredInError => "entered_in_error",
});

#[derive(Debug, Clone, PartialEq)]
pub struct Immunization {
    pub vaccine: Code,
    pub status: ImmunizationStatus,
    pub occurred_at: Option<DateTime<Utc>>,
    pub lot_number: Option<String>,
    /// False when the information came from someone other than who gave the vaccine.
    pub primary_source: bool,
}

code_enum!(ProblemStatus {
    Active => "active",
    Recurrence => "recurrence",
    Relapse => "relapse",
    Inactive => "inactive",
    Remission => "remission",
    Resolved => "resolved",
});

impl ProblemStatus {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Active | Self::Recurrence | Self::Relapse)
    }
}

/// A problem or diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: Code,
    pub clinical_status: ProblemStatus,
    pub onset: Option<DateTime<Utc>>,
    pub abatement: Option<DateTime<Utc>>,
    pub recorded: Option<DateTime<Utc>>,
}

code_enum!(AllergyCategory {
    Food => "food",
    Medication => "medication",
    Environment => "environment",
    Biologic => "biologic",
});

code_enum!(AllergyStatus {
    Active => "active",
    Inactive => "inactive",
    Resolved => "resolved",
});

code_enum!(Criticality {
    Low => "low",
    High => "high",
    UnableToAssess => "unable_to_assess",
});

code_enum!(ReactionSeverity {
    Mild => "mild",
    Moderate => "moderate",
    Severe => "severe",
});

/// What happened when the patient was exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub manifestation: Code,
    pub severity: Option<ReactionSeverity>,
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Allergy {
    pub substance: Code,
    pub categories: Vec<AllergyCategory>,
    pub clinical_status: Option<AllergyStatus>,
    pub criticality: Option<Criticality>,
    pub reactions: Vec<Reaction>,
    pub recorded: Option<DateTime<Utc>>,
}

impl Allergy {
    /// The worst reaction severity recorded, if any.
    pub fn severity(&self) -> Option<ReactionSeverity> {
        self.reactions.iter().filter_map(|r| r.severity).max()
    }
}

code_enum!(ProcedureStatus {
    Preparation => "preparation",
    InProgress => "in_progress",
    NotDone => "not_done",
    OnHold => "on_hold",
    Stopped => "stopped",
    Completed => "completed",
    EnteredInError => "entered_in_error",
    Unknown => "unknown",
});

#[derive(Debug, Clone, PartialEq)]
pub struct Procedure {
    pub code: Code,
    pub status: ProcedureStatus,
    pub performed: Period,
}

code_enum!(NoteType {
    DischargeSummary => "discharge_summary",
    VisitNote => "visit_note",
    ProgressNote => "progress_note",
    Consultation => "consultation",
    HistoryAndPhysical => "history_and_physical",
    Other => "other",
});

/// A clinical note: discharge summary, visit note and the like. The text is plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalNote {
    pub note_type: NoteType,
    pub title: String,
    pub text: String,
    pub date: Option<DateTime<Utc>>,
}

/// The kind-specific part of a record.
///
/// Deliberately not `Serialize`/`Deserialize` (nor are its parts): the API (`salus-http`'s
/// `detail`) and the database (`salus-store`'s `body`, versioned) each write their own shape,
/// so changing a type here changes neither until they say so.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordBody {
    Encounter(Encounter),
    Observation(Observation),
    DiagnosticReport(DiagnosticReport),
    Medication(Medication),
    Immunization(Immunization),
    Problem(Problem),
    Allergy(Allergy),
    Procedure(Procedure),
    ClinicalNote(ClinicalNote),
}

impl RecordBody {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Encounter(_) => RecordKind::Encounter,
            Self::Observation(_) => RecordKind::Observation,
            Self::DiagnosticReport(_) => RecordKind::DiagnosticReport,
            Self::Medication(_) => RecordKind::Medication,
            Self::Immunization(_) => RecordKind::Immunization,
            Self::Problem(_) => RecordKind::Problem,
            Self::Allergy(_) => RecordKind::Allergy,
            Self::Procedure(_) => RecordKind::Procedure,
            Self::ClinicalNote(_) => RecordKind::ClinicalNote,
        }
    }

    /// When the thing the record describes happened; lists sort on it, newest first.
    pub fn effective_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Encounter(e) => e.period.start,
            Self::Observation(o) => o.effective_at.or(o.issued),
            Self::DiagnosticReport(r) => r.effective_at.or(r.issued),
            Self::Medication(m) => m.authored_on.or(m.period.start),
            Self::Immunization(i) => i.occurred_at,
            Self::Problem(p) => p.onset.or(p.recorded),
            Self::Allergy(a) => a.recorded,
            Self::Procedure(p) => p.performed.start,
            Self::ClinicalNote(n) => n.date,
        }
    }

    /// The main coded concept: what test, drug, vaccine, diagnosis ... it is about.
    pub fn code(&self) -> Option<&Code> {
        match self {
            Self::Encounter(e) => e.visit_type.as_ref(),
            Self::Observation(o) => Some(&o.code),
            Self::DiagnosticReport(r) => Some(&r.code),
            Self::Medication(m) => Some(&m.medication),
            Self::Immunization(i) => Some(&i.vaccine),
            Self::Problem(p) => Some(&p.code),
            Self::Allergy(a) => Some(&a.substance),
            Self::Procedure(p) => Some(&p.code),
            Self::ClinicalNote(_) => None,
        }
    }

    /// A short title for lists.
    pub fn title(&self) -> &str {
        match self {
            Self::ClinicalNote(n) => &n.title,
            Self::Encounter(e) if e.visit_type.is_none() => e.class.code(),
            other => other.code().map_or("", Code::display),
        }
    }

    /// The record's status code, for filtering lists (active medications, resolved problems).
    pub fn status(&self) -> &'static str {
        match self {
            Self::Encounter(e) => e.status.code(),
            Self::Observation(o) => o.status.code(),
            Self::DiagnosticReport(r) => r.status.code(),
            Self::Medication(m) => m.status.code(),
            Self::Immunization(i) => i.status.code(),
            Self::Problem(p) => p.clinical_status.code(),
            Self::Allergy(a) => a.clinical_status.map_or("unknown", AllergyStatus::code),
            Self::Procedure(p) => p.status.code(),
            Self::ClinicalNote(_) => "current",
        }
    }

    /// For a result: its value, normal range (as read) and flag; `None` for other kinds.
    pub fn result_line(&self) -> Option<(Option<String>, Option<String>, Option<AbnormalFlag>)> {
        match self {
            Self::Observation(o) => Some((o.reading(), o.range_text(), o.effective_flag())),
            _ => None,
        }
    }

    /// Rewrites references to other records (report results) through `map`.
    pub fn remap_records(&mut self, map: &BTreeMap<RecordId, RecordId>) {
        if let Self::DiagnosticReport(r) = self {
            for id in &mut r.results {
                if let Some(new) = map.get(id) {
                    *id = *new;
                }
            }
        }
    }
}

/// What every record carries besides its kind-specific body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    pub id: RecordId,
    pub patient_id: PatientId,
    pub organization_id: OrganizationId,
    /// The visit this record belongs to, if any.
    pub encounter_id: Option<RecordId>,
    pub source: RecordSource,
    pub source_identifier: Option<SourceIdentifier>,
    pub sensitivity: SensitivityLabels,
    pub release: ReleaseState,
    /// When the record reached this portal.
    pub filed_at: DateTime<Utc>,
}

/// A clinical record of any kind.
#[derive(Clone, PartialEq)]
pub struct ClinicalRecord {
    pub meta: RecordMeta,
    pub body: RecordBody,
}

impl ClinicalRecord {
    pub fn kind(&self) -> RecordKind {
        self.body.kind()
    }
    /// The instant lists sort on: when it happened, or when it was filed if that is unknown.
    pub fn sort_time(&self) -> DateTime<Utc> {
        self.body.effective_at().unwrap_or(self.meta.filed_at)
    }
}

impl std::fmt::Debug for ClinicalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body is health data; logs get the kind and identifiers only.
        f.debug_struct("ClinicalRecord")
            .field("id", &self.meta.id)
            .field("kind", &self.kind())
            .field("patient_id", &self.meta.patient_id)
            .finish_non_exhaustive()
    }
}

/// Where a page of a list starts: after the record with this sort time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub sort_time: DateTime<Utc>,
    pub id: RecordId,
}

impl Cursor {
    /// The cursor as a URL-safe token (`<microseconds>_<record id>`).
    pub fn to_token(self) -> String {
        format!("{}_{}", self.sort_time.timestamp_micros(), self.id)
    }

    /// Reads a token made by [`Cursor::to_token`]; `None` for anything else.
    pub fn from_token(token: &str) -> Option<Self> {
        let (micros, id) = token.trim().split_once('_')?;
        Some(Self {
            sort_time: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: RecordId::parse(id).ok()?,
        })
    }
}

/// A page of records, newest first, and where the next page starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Which records of a list to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only records released online by this instant (what a patient, proxy or share link
    /// may see); `None` for clinicians, who see held records too.
    pub released_by: Option<DateTime<Utc>>,
    /// Only records that happened at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only records that happened before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only records whose title contains this text, ignoring case.
    pub text: Option<String>,
    /// Only records with one of these status codes (empty: any).
    pub statuses: Vec<&'static str>,
    /// Only records with this code system and code (the same test over time).
    pub code: Option<(String, String)>,
    /// Only records held for a clinician to release.
    pub held_only: bool,
}

/// A record and the records that give it meaning, read together (see
/// [`RecordRepository::find_in_context`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InContext {
    pub record: ClinicalRecord,
    /// A visit's records (oldest first), a report's results (in report order), or the
    /// reports that group a result.
    pub related: Vec<ClinicalRecord>,
}

/// Storage of clinical records.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait RecordRepository: Send + Sync {
    /// The record with this id, whoever it belongs to (callers authorise).
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when the stored row does not parse.
    async fn find(&self, id: RecordId) -> Result<Option<ClinicalRecord>, RepoError>;

    /// Every record of `kinds` of one patient matching `query` (its cursor aside) when there
    /// are at most `limit` (up to 1,000) of them, grouped by kind (in the store's order of
    /// kinds) and newest first within a kind; `None` when there are more (read those kind by
    /// kind). One round trip for a whole chart of ordinary size.
    ///
    /// # Errors
    /// As [`RecordRepository::find`].
    async fn list_kinds_within(
        &self,
        patient: PatientId,
        kinds: &[RecordKind],
        query: &RecordQuery,
        limit: u32,
    ) -> Result<Option<Vec<ClinicalRecord>>, RepoError>;

    /// The record with this id and the records that give it meaning, in one round trip:
    /// for a visit, the records filed under it (oldest first, at most 200); for a diagnostic
    /// report, its results in report order; for a result, the reports that group it. With
    /// `released_by`, only related records released online by then. Callers authorise the
    /// record and each related one.
    ///
    /// # Errors
    /// As [`RecordRepository::find`].
    async fn find_in_context(
        &self,
        id: RecordId,
        released_by: Option<DateTime<Utc>>,
    ) -> Result<Option<InContext>, RepoError>;

    /// Records of one kind of one patient matching `query`, newest first, starting after
    /// `after`. Served by an index range scan on (patient, kind, sort time, id).
    ///
    /// # Errors
    /// As [`RecordRepository::find`].
    async fn list_for_patient(
        &self,
        patient: PatientId,
        kind: RecordKind,
        query: &RecordQuery,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ClinicalRecord>, RepoError>;

    /// Records held for a clinician to release in any chart of the organisation, oldest
    /// filed first, at most `limit`.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when a stored row does not parse.
    async fn held_in(
        &self,
        organization: crate::ids::OrganizationId,
        limit: u32,
    ) -> Result<Vec<ClinicalRecord>, RepoError>;

    /// How many records of each kind the patient has (released by `released_by`, if given).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn count_by_kind(
        &self,
        patient: PatientId,
        released_by: Option<DateTime<Utc>>,
    ) -> Result<BTreeMap<RecordKind, u64>, RepoError>;

    /// Files one new record and, with `notice_at`, the "something new" notice to send its
    /// patient then (a delayed release): both or neither.
    ///
    /// # Errors
    /// `Conflict` when its chart or visit does not exist; `Unavailable` when the store fails.
    async fn insert(
        &self,
        record: &ClinicalRecord,
        notice_at: Option<DateTime<Utc>>,
    ) -> Result<(), RepoError>;

    /// Takes up to `limit` notices due by `now`, oldest first, marking them sent, and
    /// answers whose they are: each is taken by one caller only, however many nodes ask.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn take_due_notices(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PatientId>, RepoError>;

    /// Releases a held record at `at`; false when it was not held.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn release(&self, id: RecordId, at: DateTime<Utc>) -> Result<bool, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, value: f64, unit: &str, low: f64, high: f64) -> ObservationComponent {
        // A source's own flag, which the range (as read) overrides.
        let said_high = Some(AbnormalFlag::High);
        ObservationComponent {
            code: Code::new(None, None, name).unwrap_or_else(|_| unreachable!()),
            value: Some(ObservationValue::Quantity(Quantity {
                value,
                unit: Some(unit.into()),
            })),
            reference_range: Some(ReferenceRange {
                low: Some(low),
                high: Some(high),
                text: None,
            }),
            flag: said_high,
        }
    }

    fn panel(components: Vec<ObservationComponent>) -> Observation {
        Observation {
            category: ObservationCategory::VitalSigns,
            code: Code::new(None, None, "Blood pressure panel").unwrap_or_else(|_| unreachable!()),
            status: ResultStatus::Final,
            value: None,
            components,
            reference_range: None,
            flag: Some(AbnormalFlag::High),
            effective_at: None,
            issued: None,
        }
    }

    #[test]
    fn a_blood_pressure_reads_as_people_write_it_and_each_part_has_its_own_flag() {
        let bp = panel(vec![
            part("Systolic blood pressure", 120.5, "mm[Hg]", 90.0, 120.0),
            part("Diastolic blood pressure", 77.3, "mm[Hg]", 60.0, 80.0),
        ]);
        assert_eq!(bp.reading().as_deref(), Some("120/77 mmHg"));
        assert_eq!(bp.range_text().as_deref(), Some("90 to 120 / 60 to 80"));
        let parts = bp.parts();
        assert_eq!(parts[0].value.as_deref(), Some("120 mmHg"));
        assert_eq!(
            parts[0].flag,
            Some(AbnormalFlag::Normal),
            "read as 120, within a range up to 120"
        );
        assert_eq!(bp.effective_flag(), Some(AbnormalFlag::Normal));
        let high = panel(vec![
            part("Systolic blood pressure", 131.0, "mm[Hg]", 90.0, 120.0),
            part("Diastolic blood pressure", 77.3, "mm[Hg]", 60.0, 80.0),
        ]);
        let parts = high.parts();
        assert_eq!(parts[0].flag, Some(AbnormalFlag::High), "131 is above 120");
        assert_eq!(
            parts[1].flag,
            Some(AbnormalFlag::Normal),
            "77 is within 60 to 80"
        );
        assert_eq!(
            high.effective_flag(),
            Some(AbnormalFlag::High),
            "one part is high"
        );
        let normal = panel(vec![
            part("Systolic blood pressure", 110.0, "mm[Hg]", 90.0, 120.0),
            part("Diastolic blood pressure", 70.0, "mm[Hg]", 60.0, 80.0),
        ]);
        assert_eq!(normal.reading().as_deref(), Some("110/70 mmHg"));
        assert_eq!(normal.effective_flag(), Some(AbnormalFlag::Normal));
        // Parts of different units are read one after another.
        let mixed = panel(vec![
            part("Weight", 70.2, "kg", 50.0, 90.0),
            part("Body mass index", 24.1, "kg/m2", 18.5, 25.0),
        ]);
        assert_eq!(
            mixed.reading().as_deref(),
            Some("Weight 70.2 kg; Body mass index 24.1 kg/m²")
        );
    }

    #[test]
    fn units_are_written_as_people_write_them() {
        assert_eq!(human_unit("mm[Hg]"), "mmHg");
        assert_eq!(human_unit("kg/m2"), "kg/m²");
        assert_eq!(human_unit("Cel"), "°C");
        assert_eq!(human_unit("10*3/uL"), "thousand/µL");
        assert_eq!(human_unit("mmol/L"), "mmol/L", "known to people as it is");
        let glucose = ObservationValue::Quantity(Quantity {
            value: 5.4,
            unit: Some("mmol/L".into()),
        });
        assert_eq!(glucose.text(), "5.4 mmol/L");
        assert!(
            HUMAN_UNITS
                .iter()
                .all(|(_, human)| human.chars().all(|c| u32::from(c) <= 0xFF)),
            "every printout font (Latin-1) can show them"
        );
    }

    #[test]
    fn labels_round_trip_through_bits() {
        let l = SensitivityLabels::empty()
            .with(SensitivityLabel::Hiv)
            .with(SensitivityLabel::MentalHealth);
        assert_eq!(SensitivityLabels::from_bits(l.bits()), Ok(l));
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![SensitivityLabel::MentalHealth, SensitivityLabel::Hiv]
        );
        assert!(SensitivityLabels::default().is_empty());
        assert_eq!(SensitivityLabels::from_bits(0x80), Err(UnknownLabelBits));
    }

    #[test]
    fn codes_round_trip_for_every_enum_value() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::from_code(k.code()), Some(*k));
        }
        for s in MedicationStatus::ALL {
            assert_eq!(MedicationStatus::from_code(s.code()), Some(*s));
        }
        assert_eq!(RecordKind::from_code("Observation"), None);
    }

    #[test]
    fn reference_range_flags() {
        let r = ReferenceRange {
            low: Some(3.5),
            high: Some(5.0),
            text: None,
        };
        assert_eq!(r.flag_for(3.4), Some(AbnormalFlag::Low));
        assert_eq!(r.flag_for(5.1), Some(AbnormalFlag::High));
        assert_eq!(r.flag_for(4.0), Some(AbnormalFlag::Normal));
        assert_eq!(ReferenceRange::default().flag_for(1.0), None);
    }

    #[test]
    fn release_visibility() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(ReleaseState::Released { at: t }.is_visible_at(t));
        assert!(!ReleaseState::Released { at: t }.is_visible_at(t - chrono::Duration::seconds(1)));
        assert!(!ReleaseState::Held.is_visible_at(t));
        assert!(!ReleaseState::NeverOnline.is_visible_at(t));
    }

    #[test]
    fn debug_hides_the_body() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let rec = ClinicalRecord {
            meta: RecordMeta {
                id: RecordId::from_uuid(uuid::Uuid::from_u128(1)),
                patient_id: PatientId::from_uuid(uuid::Uuid::from_u128(2)),
                organization_id: OrganizationId::from_uuid(uuid::Uuid::from_u128(3)),
                encounter_id: None,
                source: RecordSource::default(),
                source_identifier: None,
                sensitivity: SensitivityLabels::empty(),
                release: ReleaseState::Held,
                filed_at: t,
            },
            body: RecordBody::ClinicalNote(ClinicalNote {
                note_type: NoteType::VisitNote,
                title: "Visit".into(),
                text: "patient reports chest pain".into(),
                date: None,
            }),
        };
        let dbg = format!("{rec:?}");
        assert!(!dbg.contains("chest pain"), "{dbg}");
        assert_eq!(rec.sort_time(), t);
    }
}
