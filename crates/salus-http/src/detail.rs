//! A record's kind-specific part as the API answers it (`RecordDto.detail`): one schema per
//! kind of record, told apart by `kind`. These are the API's own types: renaming a domain
//! field changes neither this document nor the database (whose shape is in `salus-store`).
//!
//! Every type here is written twice by derive, for poem-openapi (the document) and for serde
//! (the answers, see `payload::JsonOut`); the attributes keep the two the same and the
//! contract tests hold them to it.

use crate::codes::{
    AllergyCategories, AllergyStatuses, Code, Criticalities, Flags, NoteTypes, ResultCategories,
    Severities, Statuses, VisitClasses,
};
use crate::payload::rfc3339;
use chrono::{DateTime, Utc};
use poem_openapi::{Object, Union};
use salus_domain::record::{ObservationValue, Period, RecordBody, ReferenceRange};
use serde::Serialize;

type Time = Option<DateTime<Utc>>;

/// A coded concept: what a person reads, and the code behind it where there is one.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CodedDto {
    /// What a person reads ("Hemoglobin A1c").
    pub display: String,
    /// The code system's URI (`http://loinc.org`, `http://snomed.info/sct`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl From<&salus_domain::text::Code> for CodedDto {
    fn from(c: &salus_domain::text::Code) -> Self {
        Self {
            display: c.display().to_owned(),
            system: c.system().map(str::to_owned),
            code: c.code().map(str::to_owned),
        }
    }
}

fn coded(c: Option<&salus_domain::text::Code>) -> Option<CodedDto> {
    c.map(CodedDto::from)
}

/// A number with its unit.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct QuantityDto {
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Free text.
#[derive(Object, Serialize)]
pub struct TextDto {
    pub text: String,
}

/// What a result says: a number, free text, or a coded answer.
#[derive(Union, Serialize)]
#[oai(discriminator_name = "type")]
#[serde(tag = "type")]
pub enum ResultValueDto {
    #[oai(mapping = "quantity")]
    #[serde(rename = "quantity")]
    Quantity(QuantityDto),
    #[oai(mapping = "text")]
    #[serde(rename = "text")]
    Text(TextDto),
    #[oai(mapping = "coded")]
    #[serde(rename = "coded")]
    Coded(CodedDto),
}

fn value(v: Option<&ObservationValue>) -> Option<ResultValueDto> {
    v.map(|v| match v {
        ObservationValue::Quantity(q) => ResultValueDto::Quantity(QuantityDto {
            value: q.value,
            unit: q.unit.clone(),
        }),
        ObservationValue::Text(t) => ResultValueDto::Text(TextDto { text: t.clone() }),
        ObservationValue::Coded(c) => ResultValueDto::Coded(c.into()),
    })
}

/// The range of values considered normal; either end may be open.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RangeDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// The range in words, when the source gave it so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

fn range(r: Option<&ReferenceRange>) -> Option<RangeDto> {
    r.map(|r| RangeDto {
        low: r.low,
        high: r.high,
        text: r.text.clone(),
    })
}

/// A span of time; either end may be unknown.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PeriodDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub start: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub end: Time,
}

impl From<&Period> for PeriodDto {
    fn from(p: &Period) -> Self {
        Self {
            start: p.start,
            end: p.end,
        }
    }
}

/// A visit.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct VisitDetail {
    pub class: Code<VisitClasses>,
    pub status: Code<Statuses>,
    /// What sort of visit ("General examination").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_type: Option<CodedDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CodedDto>,
    pub period: PeriodDto,
}

/// One part of a multi-part result (the systolic and diastolic of a blood pressure).
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ResultPartDto {
    pub code: CodedDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ResultValueDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<RangeDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<Code<Flags>>,
}

/// A lab result, vital sign or other observation.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ResultDetail {
    pub category: Code<ResultCategories>,
    pub code: CodedDto,
    pub status: Code<Statuses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ResultValueDto>,
    /// The parts of a multi-part result; empty for a single value.
    pub components: Vec<ResultPartDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<RangeDto>,
    /// The flag the lab gave, if any (the record's `flag` also counts the normal range).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<Code<Flags>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub effective_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub issued: Time,
}

/// A report grouping results (a blood count panel).
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ReportDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<CodedDto>,
    pub code: CodedDto,
    pub status: Code<Statuses>,
    /// The records of its results, in report order.
    pub result_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub effective_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub issued: Time,
}

/// A prescribed medication.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MedicationDetail {
    pub medication: CodedDto,
    /// How to take it, as prescribed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dosage: Option<String>,
    pub status: Code<Statuses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub authored_on: Time,
    /// When the patient is to take it, where known.
    pub period: PeriodDto,
}

/// A vaccination.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ImmunizationDetail {
    pub vaccine: CodedDto,
    pub status: Code<Statuses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub occurred_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    /// False when the information came from someone other than who gave the vaccine.
    pub primary_source: bool,
}

/// A problem or diagnosis.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ProblemDetail {
    pub code: CodedDto,
    pub clinical_status: Code<Statuses>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub onset: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub abatement: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub recorded: Time,
}

/// What happened when the patient was exposed.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ReactionDto {
    pub manifestation: CodedDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Code<Severities>>,
}

/// An allergy or intolerance.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AllergyDetail {
    pub substance: CodedDto,
    pub categories: Vec<Code<AllergyCategories>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<Code<AllergyStatuses>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Code<Criticalities>>,
    pub reactions: Vec<ReactionDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub recorded: Time,
}

/// A procedure.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ProcedureDetail {
    pub code: CodedDto,
    pub status: Code<Statuses>,
    pub performed: PeriodDto,
}

/// A clinical note (a discharge summary, a visit note); the text is plain text.
#[derive(Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct NoteDetail {
    pub note_type: Code<NoteTypes>,
    pub title: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub date: Time,
}

/// Everything else about a record, by kind; `kind` says which (the record's own `kind`).
#[derive(Union, Serialize)]
#[oai(discriminator_name = "kind")]
#[serde(tag = "kind")]
pub enum RecordDetail {
    #[oai(mapping = "encounter")]
    #[serde(rename = "encounter")]
    Encounter(VisitDetail),
    #[oai(mapping = "observation")]
    #[serde(rename = "observation")]
    Observation(ResultDetail),
    #[oai(mapping = "diagnostic_report")]
    #[serde(rename = "diagnostic_report")]
    DiagnosticReport(ReportDetail),
    #[oai(mapping = "medication")]
    #[serde(rename = "medication")]
    Medication(MedicationDetail),
    #[oai(mapping = "immunization")]
    #[serde(rename = "immunization")]
    Immunization(ImmunizationDetail),
    #[oai(mapping = "problem")]
    #[serde(rename = "problem")]
    Problem(ProblemDetail),
    #[oai(mapping = "allergy")]
    #[serde(rename = "allergy")]
    Allergy(AllergyDetail),
    #[oai(mapping = "procedure")]
    #[serde(rename = "procedure")]
    Procedure(ProcedureDetail),
    #[oai(mapping = "clinical_note")]
    #[serde(rename = "clinical_note")]
    ClinicalNote(NoteDetail),
}

impl From<&RecordBody> for RecordDetail {
    fn from(b: &RecordBody) -> Self {
        match b {
            RecordBody::Encounter(e) => Self::Encounter(VisitDetail {
                class: Code::new(e.class.code()),
                status: Code::new(e.status.code()),
                visit_type: coded(e.visit_type.as_ref()),
                reason: coded(e.reason.as_ref()),
                period: (&e.period).into(),
            }),
            RecordBody::Observation(o) => Self::Observation(ResultDetail {
                category: Code::new(o.category.code()),
                code: (&o.code).into(),
                status: Code::new(o.status.code()),
                value: value(o.value.as_ref()),
                components: o
                    .components
                    .iter()
                    .map(|c| ResultPartDto {
                        code: (&c.code).into(),
                        value: value(c.value.as_ref()),
                        reference_range: range(c.reference_range.as_ref()),
                        flag: c.flag.map(|f| Code::new(f.code())),
                    })
                    .collect(),
                reference_range: range(o.reference_range.as_ref()),
                flag: o.flag.map(|f| Code::new(f.code())),
                effective_at: o.effective_at,
                issued: o.issued,
            }),
            RecordBody::DiagnosticReport(r) => Self::DiagnosticReport(ReportDetail {
                category: coded(r.category.as_ref()),
                code: (&r.code).into(),
                status: Code::new(r.status.code()),
                result_ids: r.results.iter().map(ToString::to_string).collect(),
                conclusion: r.conclusion.clone(),
                effective_at: r.effective_at,
                issued: r.issued,
            }),
            RecordBody::Medication(m) => Self::Medication(MedicationDetail {
                medication: (&m.medication).into(),
                dosage: m.dosage.clone(),
                status: Code::new(m.status.code()),
                authored_on: m.authored_on,
                period: (&m.period).into(),
            }),
            RecordBody::Immunization(i) => Self::Immunization(ImmunizationDetail {
                vaccine: (&i.vaccine).into(),
                status: Code::new(i.status.code()),
                occurred_at: i.occurred_at,
                lot_number: i.lot_number.clone(),
                primary_source: i.primary_source,
            }),
            RecordBody::Problem(p) => Self::Problem(ProblemDetail {
                code: (&p.code).into(),
                clinical_status: Code::new(p.clinical_status.code()),
                onset: p.onset,
                abatement: p.abatement,
                recorded: p.recorded,
            }),
            RecordBody::Allergy(a) => Self::Allergy(AllergyDetail {
                substance: (&a.substance).into(),
                categories: a.categories.iter().map(|c| Code::new(c.code())).collect(),
                clinical_status: a.clinical_status.map(|s| Code::new(s.code())),
                criticality: a.criticality.map(|c| Code::new(c.code())),
                reactions: a
                    .reactions
                    .iter()
                    .map(|r| ReactionDto {
                        manifestation: (&r.manifestation).into(),
                        severity: r.severity.map(|s| Code::new(s.code())),
                    })
                    .collect(),
                recorded: a.recorded,
            }),
            RecordBody::Procedure(p) => Self::Procedure(ProcedureDetail {
                code: (&p.code).into(),
                status: Code::new(p.status.code()),
                performed: (&p.performed).into(),
            }),
            RecordBody::ClinicalNote(n) => Self::ClinicalNote(NoteDetail {
                note_type: Code::new(n.note_type.code()),
                title: n.title.clone(),
                text: n.text.clone(),
                date: n.date,
            }),
        }
    }
}

crate::redacted_debug!(
    CodedDto,
    QuantityDto,
    TextDto,
    ResultValueDto,
    RangeDto,
    PeriodDto,
    VisitDetail,
    ResultPartDto,
    ResultDetail,
    ReportDetail,
    MedicationDetail,
    ImmunizationDetail,
    ProblemDetail,
    ReactionDto,
    AllergyDetail,
    ProcedureDetail,
    NoteDetail,
    RecordDetail,
);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use poem_openapi::types::ToJSON as _;

    fn at(n: u32) -> Time {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, n)
            .single()
            .map(|t| t + chrono::Duration::nanoseconds(123_456_789))
    }

    fn coded(display: &str) -> CodedDto {
        CodedDto {
            display: display.into(),
            system: Some("http://loinc.org".into()),
            code: Some("2823-3".into()),
        }
    }

    /// A blood pressure with both parts flagged, every optional field set or not by `n`.
    pub(crate) fn result_detail(n: u32) -> ResultDetail {
        let full = n % 2 == 1;
        ResultDetail {
            category: Code::new("vital_signs"),
            code: coded("Blood pressure panel"),
            status: Code::new("final"),
            value: full.then(|| {
                ResultValueDto::Text(TextDto {
                    text: "120/77".into(),
                })
            }),
            components: vec![ResultPartDto {
                code: CodedDto {
                    display: "Systolic".into(),
                    system: None,
                    code: None,
                },
                value: Some(ResultValueDto::Quantity(QuantityDto {
                    value: 120.5,
                    unit: full.then(|| "mm[Hg]".into()),
                })),
                reference_range: Some(RangeDto {
                    low: None,
                    high: Some(120.0),
                    text: None,
                }),
                flag: Some(Code::new("high")),
            }],
            reference_range: None,
            flag: None,
            effective_at: at(n),
            issued: None,
        }
    }

    fn every_kind() -> Vec<RecordDetail> {
        let period = PeriodDto {
            start: at(1),
            end: None,
        };
        vec![
            RecordDetail::Encounter(VisitDetail {
                class: Code::new("ambulatory"),
                status: Code::new("finished"),
                visit_type: Some(coded("General examination")),
                reason: None,
                period: PeriodDto {
                    start: at(1),
                    end: at(2),
                },
            }),
            RecordDetail::Observation(result_detail(1)),
            RecordDetail::Observation(ResultDetail {
                value: Some(ResultValueDto::Coded(coded("Negative"))),
                ..result_detail(2)
            }),
            RecordDetail::DiagnosticReport(ReportDetail {
                category: None,
                code: coded("Basic metabolic panel"),
                status: Code::new("final"),
                result_ids: vec!["a".into(), "b".into()],
                conclusion: Some("Normal.".into()),
                effective_at: at(3),
                issued: at(4),
            }),
            RecordDetail::Medication(MedicationDetail {
                medication: coded("amoxicillin 250 MG"),
                dosage: Some("One capsule three times a day.".into()),
                status: Code::new("active"),
                authored_on: None,
                period: PeriodDto {
                    start: None,
                    end: None,
                },
            }),
            RecordDetail::Immunization(ImmunizationDetail {
                vaccine: coded("Influenza"),
                status: Code::new("completed"),
                occurred_at: at(5),
                lot_number: None,
                primary_source: true,
            }),
            RecordDetail::Problem(ProblemDetail {
                code: coded("Sore throat"),
                clinical_status: Code::new("resolved"),
                onset: at(6),
                abatement: None,
                recorded: at(7),
            }),
            RecordDetail::Allergy(AllergyDetail {
                substance: coded("Peanuts"),
                categories: vec![Code::new("food")],
                clinical_status: Some(Code::new("active")),
                criticality: None,
                reactions: vec![ReactionDto {
                    manifestation: coded("Hives"),
                    severity: Some(Code::new("moderate")),
                }],
                recorded: None,
            }),
            RecordDetail::Procedure(ProcedureDetail {
                code: coded("Assessment"),
                status: Code::new("completed"),
                performed: period,
            }),
            RecordDetail::ClinicalNote(NoteDetail {
                note_type: Code::new("discharge_summary"),
                title: "Discharge summary".into(),
                text: "Line one.\nLine <two> & \"three\".".into(),
                date: at(8),
            }),
        ]
    }

    /// `JsonOut` writes these with serde; the document comes from poem-openapi. Every kind,
    /// every kind of value, set and unset fields: the two give the same JSON.
    #[test]
    fn every_kind_of_detail_encodes_the_same_for_serde_and_the_document() {
        let mut kinds = std::collections::BTreeSet::new();
        for detail in every_kind() {
            let by_serde = serde_json::to_value(&detail).unwrap_or_default();
            assert_eq!(Some(by_serde.clone()), detail.to_json());
            kinds.insert(by_serde["kind"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }

    #[test]
    fn the_document_has_one_schema_per_kind_told_apart_by_kind() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json(crate::ApiState {
            directory: salus_domain::organization::DirectoryService::new(std::sync::Arc::new(
                salus_domain::organization::MockOrganizationRepository::new(),
            )),
            auth: salus_domain::account::service_without_expectations(),
            records: salus_domain::chart::records_without_expectations(),
            consent: salus_domain::consent::consent_without_expectations(),
            messaging: salus_domain::messaging::messaging_without_expectations(),
            scheduling: salus_domain::scheduling::scheduling_without_expectations(),
            billing: salus_domain::billing::billing_without_expectations(),
        }))
        .unwrap_or_default();
        let detail = &doc["components"]["schemas"]["RecordDetail"];
        assert_eq!(detail["discriminator"]["propertyName"], "kind");
        let mapping = detail["discriminator"]["mapping"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or_default();
        assert_eq!(mapping, 9);
        assert!(
            doc["components"]["schemas"]["ResultDetail"]["properties"]["components"].is_object()
        );
    }
}
