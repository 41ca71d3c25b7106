//! The stored shape of a record's kind-specific part, the `clinical_records.detail` column.
//!
//! It has types of its own, so that renaming or reshaping a domain type changes neither the
//! rows already written nor what is written next unless this module says so; and a version,
//! so that the shape can change and old rows still read.
//!
//! - Version 1 (written now): `{"v":1,"body":{"Observation":{...}}}`.
//! - Rows written before the version existed hold the version 1 body alone
//!   (`{"Observation":{...}}`); they read as version 1.
//!
//! Codes of closed sets (statuses, classes, flags) are stored as their stable codes; a code
//! this version does not know makes the row corrupt, never a guess.

use salus_domain::RecordId;
use salus_domain::RepoError;
use salus_domain::record::{
    AbnormalFlag, Allergy, AllergyCategory, AllergyStatus, ClinicalNote, Criticality,
    DiagnosticReport, Encounter, EncounterClass, EncounterStatus, Immunization, ImmunizationStatus,
    Medication, MedicationStatus, NoteType, Observation, ObservationCategory, ObservationComponent,
    ObservationValue, Period, Problem, ProblemStatus, Procedure, ProcedureStatus, Quantity,
    Reaction, ReactionSeverity, RecordBody, ReferenceRange, ResultStatus,
};
use salus_domain::text::Code;
use serde::{Deserialize, Serialize};

type Time = chrono::DateTime<chrono::Utc>;

/// The version this module writes.
pub(crate) const VERSION: u32 = 1;

const COLUMN: &str = "clinical_records.detail";

fn corrupt() -> RepoError {
    RepoError::Corrupt(COLUMN)
}

#[derive(Serialize)]
struct Written<'a> {
    v: u32,
    body: &'a BodyV1,
}

#[derive(Deserialize)]
struct ReadV1 {
    v: u32,
    body: BodyV1,
}

/// The column's text for a record body.
pub(crate) fn write(body: &RecordBody) -> Result<String, RepoError> {
    let stored = BodyV1::from(body);
    serde_json::to_string(&Written {
        v: VERSION,
        body: &stored,
    })
    .map_err(|_| corrupt())
}

/// The record body of a column's text, whatever version wrote it.
pub(crate) fn read(text: &str) -> Result<RecordBody, RepoError> {
    // Version 1 is the only one yet: its envelope is read in one pass. A later version adds
    // its own envelope type here and dispatches on `v`.
    let body: BodyV1 = if text.trim_start().starts_with("{\"v\"") {
        let envelope: ReadV1 = serde_json::from_str(text).map_err(|_| corrupt())?;
        if envelope.v != VERSION {
            return Err(corrupt());
        }
        envelope.body
    } else {
        serde_json::from_str(text).map_err(|_| corrupt())?
    };
    body.try_into()
}

/// A closed set's value by its stable code.
fn known<T>(code: &str, from_code: fn(&str) -> Option<T>) -> Result<T, RepoError> {
    from_code(code).ok_or_else(corrupt)
}

fn known_opt<T>(
    code: Option<&str>,
    from_code: fn(&str) -> Option<T>,
) -> Result<Option<T>, RepoError> {
    code.map(|c| known(c, from_code)).transpose()
}

#[derive(Serialize, Deserialize)]
struct CodeV1 {
    system: Option<String>,
    code: Option<String>,
    display: String,
}

impl From<&Code> for CodeV1 {
    fn from(c: &Code) -> Self {
        Self {
            system: c.system().map(str::to_owned),
            code: c.code().map(str::to_owned),
            display: c.display().to_owned(),
        }
    }
}

impl TryFrom<CodeV1> for Code {
    type Error = RepoError;
    fn try_from(c: CodeV1) -> Result<Self, RepoError> {
        Code::from_parts(c.system, c.code, c.display).map_err(|_| corrupt())
    }
}

fn code_opt(c: Option<CodeV1>) -> Result<Option<Code>, RepoError> {
    c.map(Code::try_from).transpose()
}

#[derive(Serialize, Deserialize)]
struct PeriodV1 {
    start: Option<Time>,
    end: Option<Time>,
}

impl From<&Period> for PeriodV1 {
    fn from(p: &Period) -> Self {
        Self {
            start: p.start,
            end: p.end,
        }
    }
}

impl From<PeriodV1> for Period {
    fn from(p: PeriodV1) -> Self {
        Self {
            start: p.start,
            end: p.end,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct QuantityV1 {
    value: f64,
    unit: Option<String>,
}

#[derive(Serialize, Deserialize)]
enum ValueV1 {
    Quantity(QuantityV1),
    Text(String),
    Coded(CodeV1),
}

impl From<&ObservationValue> for ValueV1 {
    fn from(v: &ObservationValue) -> Self {
        match v {
            ObservationValue::Quantity(q) => Self::Quantity(QuantityV1 {
                value: q.value,
                unit: q.unit.clone(),
            }),
            ObservationValue::Text(t) => Self::Text(t.clone()),
            ObservationValue::Coded(c) => Self::Coded(c.into()),
        }
    }
}

impl TryFrom<ValueV1> for ObservationValue {
    type Error = RepoError;
    fn try_from(v: ValueV1) -> Result<Self, RepoError> {
        Ok(match v {
            ValueV1::Quantity(q) => Self::Quantity(Quantity {
                value: q.value,
                unit: q.unit,
            }),
            ValueV1::Text(t) => Self::Text(t),
            ValueV1::Coded(c) => Self::Coded(c.try_into()?),
        })
    }
}

fn value_opt(v: Option<ValueV1>) -> Result<Option<ObservationValue>, RepoError> {
    v.map(ObservationValue::try_from).transpose()
}

#[derive(Serialize, Deserialize)]
struct RangeV1 {
    low: Option<f64>,
    high: Option<f64>,
    text: Option<String>,
}

impl From<&ReferenceRange> for RangeV1 {
    fn from(r: &ReferenceRange) -> Self {
        Self {
            low: r.low,
            high: r.high,
            text: r.text.clone(),
        }
    }
}

impl From<RangeV1> for ReferenceRange {
    fn from(r: RangeV1) -> Self {
        Self {
            low: r.low,
            high: r.high,
            text: r.text,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ComponentV1 {
    code: CodeV1,
    value: Option<ValueV1>,
    reference_range: Option<RangeV1>,
    flag: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EncounterV1 {
    class: String,
    status: String,
    visit_type: Option<CodeV1>,
    reason: Option<CodeV1>,
    period: PeriodV1,
}

#[derive(Serialize, Deserialize)]
struct ObservationV1 {
    category: String,
    code: CodeV1,
    status: String,
    value: Option<ValueV1>,
    components: Vec<ComponentV1>,
    reference_range: Option<RangeV1>,
    flag: Option<String>,
    effective_at: Option<Time>,
    issued: Option<Time>,
}

#[derive(Serialize, Deserialize)]
struct ReportV1 {
    category: Option<CodeV1>,
    code: CodeV1,
    status: String,
    results: Vec<RecordId>,
    conclusion: Option<String>,
    effective_at: Option<Time>,
    issued: Option<Time>,
}

#[derive(Serialize, Deserialize)]
struct MedicationV1 {
    medication: CodeV1,
    dosage: Option<String>,
    status: String,
    authored_on: Option<Time>,
    period: PeriodV1,
}

#[derive(Serialize, Deserialize)]
struct ImmunizationV1 {
    vaccine: CodeV1,
    status: String,
    occurred_at: Option<Time>,
    lot_number: Option<String>,
    primary_source: bool,
}

#[derive(Serialize, Deserialize)]
struct ProblemV1 {
    code: CodeV1,
    clinical_status: String,
    onset: Option<Time>,
    abatement: Option<Time>,
    recorded: Option<Time>,
}

#[derive(Serialize, Deserialize)]
struct ReactionV1 {
    manifestation: CodeV1,
    severity: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct AllergyV1 {
    substance: CodeV1,
    categories: Vec<String>,
    clinical_status: Option<String>,
    criticality: Option<String>,
    reactions: Vec<ReactionV1>,
    recorded: Option<Time>,
}

#[derive(Serialize, Deserialize)]
struct ProcedureV1 {
    code: CodeV1,
    status: String,
    performed: PeriodV1,
}

#[derive(Serialize, Deserialize)]
struct NoteV1 {
    note_type: String,
    title: String,
    text: String,
    date: Option<Time>,
}

/// Version 1 of the body: one variant per kind of record.
#[derive(Serialize, Deserialize)]
enum BodyV1 {
    Encounter(EncounterV1),
    Observation(ObservationV1),
    DiagnosticReport(ReportV1),
    Medication(MedicationV1),
    Immunization(ImmunizationV1),
    Problem(ProblemV1),
    Allergy(AllergyV1),
    Procedure(ProcedureV1),
    ClinicalNote(NoteV1),
}

fn owned(code: &str) -> String {
    code.to_owned()
}

impl From<&RecordBody> for BodyV1 {
    fn from(b: &RecordBody) -> Self {
        match b {
            RecordBody::Encounter(e) => Self::Encounter(EncounterV1 {
                class: owned(e.class.code()),
                status: owned(e.status.code()),
                visit_type: e.visit_type.as_ref().map(CodeV1::from),
                reason: e.reason.as_ref().map(CodeV1::from),
                period: (&e.period).into(),
            }),
            RecordBody::Observation(o) => Self::Observation(ObservationV1 {
                category: owned(o.category.code()),
                code: (&o.code).into(),
                status: owned(o.status.code()),
                value: o.value.as_ref().map(ValueV1::from),
                components: o
                    .components
                    .iter()
                    .map(|c| ComponentV1 {
                        code: (&c.code).into(),
                        value: c.value.as_ref().map(ValueV1::from),
                        reference_range: c.reference_range.as_ref().map(RangeV1::from),
                        flag: c.flag.map(|f| owned(f.code())),
                    })
                    .collect(),
                reference_range: o.reference_range.as_ref().map(RangeV1::from),
                flag: o.flag.map(|f| owned(f.code())),
                effective_at: o.effective_at,
                issued: o.issued,
            }),
            RecordBody::DiagnosticReport(r) => Self::DiagnosticReport(ReportV1 {
                category: r.category.as_ref().map(CodeV1::from),
                code: (&r.code).into(),
                status: owned(r.status.code()),
                results: r.results.clone(),
                conclusion: r.conclusion.clone(),
                effective_at: r.effective_at,
                issued: r.issued,
            }),
            RecordBody::Medication(m) => Self::Medication(MedicationV1 {
                medication: (&m.medication).into(),
                dosage: m.dosage.clone(),
                status: owned(m.status.code()),
                authored_on: m.authored_on,
                period: (&m.period).into(),
            }),
            RecordBody::Immunization(i) => Self::Immunization(ImmunizationV1 {
                vaccine: (&i.vaccine).into(),
                status: owned(i.status.code()),
                occurred_at: i.occurred_at,
                lot_number: i.lot_number.clone(),
                primary_source: i.primary_source,
            }),
            RecordBody::Problem(p) => Self::Problem(ProblemV1 {
                code: (&p.code).into(),
                clinical_status: owned(p.clinical_status.code()),
                onset: p.onset,
                abatement: p.abatement,
                recorded: p.recorded,
            }),
            RecordBody::Allergy(a) => Self::Allergy(AllergyV1 {
                substance: (&a.substance).into(),
                categories: a.categories.iter().map(|c| owned(c.code())).collect(),
                clinical_status: a.clinical_status.map(|s| owned(s.code())),
                criticality: a.criticality.map(|c| owned(c.code())),
                reactions: a
                    .reactions
                    .iter()
                    .map(|r| ReactionV1 {
                        manifestation: (&r.manifestation).into(),
                        severity: r.severity.map(|s| owned(s.code())),
                    })
                    .collect(),
                recorded: a.recorded,
            }),
            RecordBody::Procedure(p) => Self::Procedure(ProcedureV1 {
                code: (&p.code).into(),
                status: owned(p.status.code()),
                performed: (&p.performed).into(),
            }),
            RecordBody::ClinicalNote(n) => Self::ClinicalNote(NoteV1 {
                note_type: owned(n.note_type.code()),
                title: n.title.clone(),
                text: n.text.clone(),
                date: n.date,
            }),
        }
    }
}

impl TryFrom<BodyV1> for RecordBody {
    type Error = RepoError;
    fn try_from(b: BodyV1) -> Result<Self, RepoError> {
        Ok(match b {
            BodyV1::Encounter(e) => Self::Encounter(Encounter {
                class: known(&e.class, EncounterClass::from_code)?,
                status: known(&e.status, EncounterStatus::from_code)?,
                visit_type: code_opt(e.visit_type)?,
                reason: code_opt(e.reason)?,
                period: e.period.into(),
            }),
            BodyV1::Observation(o) => Self::Observation(Observation {
                category: known(&o.category, ObservationCategory::from_code)?,
                code: o.code.try_into()?,
                status: known(&o.status, ResultStatus::from_code)?,
                value: value_opt(o.value)?,
                components: o
                    .components
                    .into_iter()
                    .map(|c| {
                        Ok(ObservationComponent {
                            code: c.code.try_into()?,
                            value: value_opt(c.value)?,
                            reference_range: c.reference_range.map(ReferenceRange::from),
                            flag: known_opt(c.flag.as_deref(), AbnormalFlag::from_code)?,
                        })
                    })
                    .collect::<Result<_, RepoError>>()?,
                reference_range: o.reference_range.map(ReferenceRange::from),
                flag: known_opt(o.flag.as_deref(), AbnormalFlag::from_code)?,
                effective_at: o.effective_at,
                issued: o.issued,
            }),
            BodyV1::DiagnosticReport(r) => Self::DiagnosticReport(DiagnosticReport {
                category: code_opt(r.category)?,
                code: r.code.try_into()?,
                status: known(&r.status, ResultStatus::from_code)?,
                results: r.results,
                conclusion: r.conclusion,
                effective_at: r.effective_at,
                issued: r.issued,
            }),
            BodyV1::Medication(m) => Self::Medication(Medication {
                medication: m.medication.try_into()?,
                dosage: m.dosage,
                status: known(&m.status, MedicationStatus::from_code)?,
                authored_on: m.authored_on,
                period: m.period.into(),
            }),
            BodyV1::Immunization(i) => Self::Immunization(Immunization {
                vaccine: i.vaccine.try_into()?,
                status: known(&i.status, ImmunizationStatus::from_code)?,
                occurred_at: i.occurred_at,
                lot_number: i.lot_number,
                primary_source: i.primary_source,
            }),
            BodyV1::Problem(p) => Self::Problem(Problem {
                code: p.code.try_into()?,
                clinical_status: known(&p.clinical_status, ProblemStatus::from_code)?,
                onset: p.onset,
                abatement: p.abatement,
                recorded: p.recorded,
            }),
            BodyV1::Allergy(a) => Self::Allergy(Allergy {
                substance: a.substance.try_into()?,
                categories: a
                    .categories
                    .iter()
                    .map(|c| known(c, AllergyCategory::from_code))
                    .collect::<Result<_, _>>()?,
                clinical_status: known_opt(a.clinical_status.as_deref(), AllergyStatus::from_code)?,
                criticality: known_opt(a.criticality.as_deref(), Criticality::from_code)?,
                reactions: a
                    .reactions
                    .into_iter()
                    .map(|r| {
                        Ok(Reaction {
                            manifestation: r.manifestation.try_into()?,
                            severity: known_opt(
                                r.severity.as_deref(),
                                ReactionSeverity::from_code,
                            )?,
                        })
                    })
                    .collect::<Result<_, RepoError>>()?,
                recorded: a.recorded,
            }),
            BodyV1::Procedure(p) => Self::Procedure(Procedure {
                code: p.code.try_into()?,
                status: known(&p.status, ProcedureStatus::from_code)?,
                performed: p.performed.into(),
            }),
            BodyV1::ClinicalNote(n) => Self::ClinicalNote(ClinicalNote {
                note_type: known(&n.note_type, NoteType::from_code)?,
                title: n.title,
                text: n.text,
                date: n.date,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `detail` columns as Salus wrote them before the stored shape had a version: one of
    /// each kind (the demo data's, and a coded and a text result written by hand).
    const BEFORE_VERSIONS: &str = include_str!("../tests/data/details-before-versions.jsonl");

    #[test]
    fn rows_written_before_versions_still_read_and_are_version_1_bodies() {
        let mut kinds = std::collections::BTreeSet::new();
        for line in BEFORE_VERSIONS.lines().filter(|l| !l.trim().is_empty()) {
            let body = read(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            kinds.insert(body.kind());
            let written = write(&body).expect("writes");
            assert_eq!(
                written,
                format!("{{\"v\":1,\"body\":{line}}}"),
                "version 1 is the old shape in an envelope"
            );
            assert_eq!(read(&written).expect("reads back"), body);
        }
        assert_eq!(kinds.len(), 9, "every kind of record is covered");
    }

    #[test]
    fn an_unknown_version_or_code_is_corrupt_not_a_guess() {
        let line = BEFORE_VERSIONS.lines().next().unwrap_or_default();
        assert!(read(&format!("{{\"v\":2,\"body\":{line}}}")).is_err());
        let unknown_status = line.replace(
            "\"clinical_status\":\"active\"",
            "\"clinical_status\":\"dormant\"",
        );
        assert_ne!(unknown_status, line, "the sample has a status to change");
        assert!(matches!(
            read(&unknown_status),
            Err(RepoError::Corrupt(COLUMN))
        ));
        assert!(read("{\"Nothing\":{}}").is_err());
    }
}
