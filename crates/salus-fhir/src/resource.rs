//! One record as its FHIR R4 resource, written straight into JSON text.
//!
//! [`RecordResource`] is `Serialize`: a bundle writer hands it to `serde_json` and each field
//! goes to the output as it is reached, in FHIR's usual order (`resourceType` first) — no
//! `serde_json::Value` tree is built and taken apart again, which was most of an export's
//! time. [`record_resource`] gives the same resource as a `Value` for documents that are
//! assembled as trees (the patient summary).

use crate::export::{instant, label_code};
use base64::display::Base64Display;
use salus_domain::RecordId;
use salus_domain::record::{
    AbnormalFlag, ClinicalRecord, EncounterClass, NoteType, ObservationCategory,
    ObservationComponent, ObservationValue, Period, Reaction, RecordBody, RecordKind,
    ReferenceRange, ResultStatus, SensitivityLabels,
};
use salus_domain::text::{Code, DisplayName};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use std::collections::HashSet;

const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The FHIR resource of one record, with references only to records in `known`.
#[derive(Debug, Clone, Copy)]
pub struct RecordResource<'a> {
    pub record: &'a ClinicalRecord,
    pub known: &'a HashSet<RecordId>,
}

/// The FHIR resource of one record as a `Value`; references only to records `known` has.
pub fn record_resource(r: &ClinicalRecord, known: &HashSet<RecordId>) -> Value {
    // Our `Serialize` never fails: every key is a string and nothing reports an error.
    serde_json::to_value(RecordResource { record: r, known }).unwrap_or(Value::Null)
}

/// The FHIR resource type a kind of record is exported as.
pub fn resource_type(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Encounter => "Encounter",
        RecordKind::Observation => "Observation",
        RecordKind::DiagnosticReport => "DiagnosticReport",
        RecordKind::Medication => "MedicationRequest",
        RecordKind::Immunization => "Immunization",
        RecordKind::Problem => "Condition",
        RecordKind::Allergy => "AllergyIntolerance",
        RecordKind::Procedure => "Procedure",
        RecordKind::ClinicalNote => "DocumentReference",
    }
}

/// `urn:uuid:<id>`, the full URL of a patient or record, written without a `String`.
pub(crate) struct Urn(pub uuid::Uuid);

impl Serialize for Urn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("urn:uuid:{}", self.0))
    }
}

/// `{"reference": "urn:uuid:…"}`
#[derive(Serialize)]
struct Reference {
    reference: Urn,
}

fn reference(id: uuid::Uuid) -> Reference {
    Reference { reference: Urn(id) }
}

/// A reference that names someone we know only by name.
#[derive(Serialize)]
struct Named<'a> {
    display: &'a str,
}

fn named(name: &DisplayName) -> Named<'_> {
    Named {
        display: name.as_str(),
    }
}

#[derive(Serialize)]
struct Coding<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

/// A `CodeableConcept` of one coding, with the text people read when there is one.
#[derive(Serialize)]
struct Coded<'a> {
    coding: [Coding<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// `{"coding": [{"system", "code"}]}`
fn coded<'a>(system: &'a str, code: &'a str) -> Coded<'a> {
    Coded {
        coding: [Coding {
            system: Some(system),
            code,
            display: None,
        }],
        text: None,
    }
}

/// A `CodeableConcept` of our code: one coding when the code is known, and the text.
struct Concept<'a>(&'a Code);

impl Serialize for Concept<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(code) = c.code() {
            m.serialize_entry(
                "coding",
                &[Coding {
                    system: c.system(),
                    code,
                    display: Some(c.display()),
                }],
            )?;
        }
        m.serialize_entry("text", c.display())?;
        m.end()
    }
}

/// FHIR codes are kebab-case where ours are snake_case.
fn fhir_code(code: &str) -> String {
    code.replace('_', "-")
}

/// A FHIR `Period`; `None` when neither end is known.
#[derive(Serialize)]
struct FhirPeriod {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

fn period(p: &Period) -> Option<FhirPeriod> {
    (p.start.is_some() || p.end.is_some()).then(|| FhirPeriod {
        start: p.start.map(instant),
        end: p.end.map(instant),
    })
}

/// `meta.security`: the record's sensitivity labels.
struct Security<'a>(&'a SensitivityLabels);

impl Serialize for Security<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        let codes: Vec<Coding<'_>> = self
            .0
            .iter()
            .map(|l| Coding {
                system: Some(V3_ACT_CODE),
                code: label_code(l).0,
                display: None,
            })
            .collect();
        m.serialize_entry("security", &codes)?;
        m.end()
    }
}

/// A JSON array of what an iterator yields, written as it goes.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

fn observation_status(s: ResultStatus) -> &'static str {
    // Observation has no `partial` or `appended` (those are report states).
    match s {
        ResultStatus::Registered => "registered",
        ResultStatus::Partial | ResultStatus::Preliminary => "preliminary",
        ResultStatus::Final => "final",
        ResultStatus::Amended | ResultStatus::Appended => "amended",
        ResultStatus::Corrected => "corrected",
        ResultStatus::Cancelled => "cancelled",
        ResultStatus::EnteredInError => "entered-in-error",
        ResultStatus::Unknown => "unknown",
    }
}

fn interpretation(flag: AbnormalFlag) -> [Coded<'static>; 1] {
    let code = match flag {
        AbnormalFlag::Normal => "N",
        AbnormalFlag::Low => "L",
        AbnormalFlag::High => "H",
        AbnormalFlag::CriticalLow => "LL",
        AbnormalFlag::CriticalHigh => "HH",
        AbnormalFlag::Abnormal => "A",
    };
    [coded(
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        code,
    )]
}

#[derive(Serialize)]
struct FhirQuantity<'a> {
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
}

#[derive(Serialize)]
struct SimpleQuantity {
    value: f64,
}

#[derive(Serialize)]
struct Range<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    low: Option<SimpleQuantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    high: Option<SimpleQuantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.filter(|t| !t.trim().is_empty())
}

/// Writes `value[x]`, `referenceRange` and `interpretation` of a result or component.
fn put_value<M: SerializeMap>(
    m: &mut M,
    value: Option<&ObservationValue>,
    range: Option<&ReferenceRange>,
    flag: Option<AbnormalFlag>,
) -> Result<(), M::Error> {
    match value {
        Some(ObservationValue::Quantity(q)) => m.serialize_entry(
            "valueQuantity",
            &FhirQuantity {
                value: q.value,
                unit: non_blank(q.unit.as_deref()),
            },
        )?,
        Some(ObservationValue::Text(t)) => m.serialize_entry("valueString", t.as_str())?,
        Some(ObservationValue::Coded(c)) => {
            m.serialize_entry("valueCodeableConcept", &Concept(c))?
        }
        None => {}
    }
    if let Some(r) = range {
        let range = Range {
            low: r.low.map(|value| SimpleQuantity { value }),
            high: r.high.map(|value| SimpleQuantity { value }),
            text: non_blank(r.text.as_deref()),
        };
        if range.low.is_some() || range.high.is_some() || range.text.is_some() {
            m.serialize_entry("referenceRange", &[range])?;
        }
    }
    if let Some(f) = flag {
        m.serialize_entry("interpretation", &interpretation(f))?;
    }
    Ok(())
}

/// What a result and a report both say after their code, in FHIR's order: whose, which
/// visit (when in the bundle), when it was taken and issued, and who performed it.
fn put_result_context<M: SerializeMap>(
    m: &mut M,
    patient: &Reference,
    visit: Option<&Reference>,
    [effective, issued]: [Option<chrono::DateTime<chrono::Utc>>; 2],
    performer: Option<&DisplayName>,
) -> Result<(), M::Error> {
    m.serialize_entry("subject", patient)?;
    if let Some(v) = visit {
        m.serialize_entry("encounter", v)?;
    }
    if let Some(t) = effective {
        m.serialize_entry("effectiveDateTime", &instant(t))?;
    }
    if let Some(t) = issued {
        m.serialize_entry("issued", &instant(t))?;
    }
    if let Some(p) = performer {
        m.serialize_entry("performer", &[named(p)])?;
    }
    Ok(())
}

struct Component<'a>(&'a ObservationComponent);

impl Serialize for Component<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", &Concept(&c.code))?;
        put_value(&mut m, c.value.as_ref(), c.reference_range.as_ref(), c.flag)?;
        m.end()
    }
}

struct FhirReaction<'a>(&'a Reaction);

impl Serialize for FhirReaction<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let re = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("manifestation", &[Concept(&re.manifestation)])?;
        if let Some(sev) = re.severity {
            m.serialize_entry("severity", sev.code())?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Individual<'a> {
    individual: Named<'a>,
}

#[derive(Serialize)]
struct Actor<'a> {
    actor: Named<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DispenseRequest {
    validity_period: FhirPeriod,
}

#[derive(Serialize)]
struct NoteContent<'a> {
    attachment: Attachment<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attachment<'a> {
    content_type: &'static str,
    data: Base64<'a>,
}

/// Bytes in standard base64, encoded as they are written.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(
            self.0,
            &base64::engine::general_purpose::STANDARD,
        ))
    }
}

#[derive(Serialize)]
struct NoteContext {
    encounter: [Reference; 1],
}

fn note_type(t: NoteType) -> (&'static str, &'static str) {
    match t {
        NoteType::DischargeSummary => ("18842-5", "Discharge summary"),
        NoteType::ProgressNote => ("11506-3", "Progress note"),
        NoteType::Consultation => ("11488-4", "Consult note"),
        NoteType::HistoryAndPhysical => ("34117-2", "History and physical note"),
        NoteType::VisitNote => ("34109-9", "Note"),
        NoteType::Other => ("34109-9", "Note"),
    }
}

fn encounter_class(class: EncounterClass) -> Coding<'static> {
    let (system, code) = match class {
        EncounterClass::Ambulatory => (V3_ACT_CODE, "AMB"),
        EncounterClass::Emergency => (V3_ACT_CODE, "EMER"),
        EncounterClass::Inpatient => (V3_ACT_CODE, "IMP"),
        EncounterClass::Virtual => (V3_ACT_CODE, "VR"),
        EncounterClass::HomeHealth => (V3_ACT_CODE, "HH"),
        EncounterClass::Other => ("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "OTH"),
    };
    Coding {
        system: Some(system),
        code,
        display: None,
    }
}

impl Serialize for RecordResource<'_> {
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per kind of record, each a list of the resource's fields in order"
    )]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let known = self.known;
        let patient = reference(r.meta.patient_id.as_uuid());
        let visit = r
            .meta
            .encounter_id
            .filter(|e| known.contains(e))
            .map(|e| reference(e.as_uuid()));
        let src = &r.meta.source;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("resourceType", resource_type(r.kind()))?;
        m.serialize_entry("id", &r.meta.id.as_uuid())?;
        if !r.meta.sensitivity.is_empty() {
            m.serialize_entry("meta", &Security(&r.meta.sensitivity))?;
        }
        match &r.body {
            RecordBody::Encounter(e) => {
                m.serialize_entry("status", &fhir_code(e.status.code()))?;
                m.serialize_entry("class", &encounter_class(e.class))?;
                if let Some(t) = &e.visit_type {
                    m.serialize_entry("type", &[Concept(t)])?;
                }
                m.serialize_entry("subject", &patient)?;
                if let Some(p) = &src.performer {
                    m.serialize_entry(
                        "participant",
                        &[Individual {
                            individual: named(p),
                        }],
                    )?;
                }
                if let Some(p) = period(&e.period) {
                    m.serialize_entry("period", &p)?;
                }
                if let Some(reason) = &e.reason {
                    m.serialize_entry("reasonCode", &[Concept(reason)])?;
                }
                if let Some(o) = &src.organization {
                    m.serialize_entry("serviceProvider", &named(o))?;
                }
            }
            RecordBody::Observation(o) => {
                m.serialize_entry("status", observation_status(o.status))?;
                let category = match o.category {
                    ObservationCategory::Laboratory => Some("laboratory"),
                    ObservationCategory::VitalSigns => Some("vital-signs"),
                    ObservationCategory::Other => None,
                };
                if let Some(c) = category {
                    m.serialize_entry(
                        "category",
                        &[coded(
                            "http://terminology.hl7.org/CodeSystem/observation-category",
                            c,
                        )],
                    )?;
                }
                m.serialize_entry("code", &Concept(&o.code))?;
                put_result_context(
                    &mut m,
                    &patient,
                    visit.as_ref(),
                    [o.effective_at, o.issued],
                    src.performer.as_ref(),
                )?;
                put_value(&mut m, o.value.as_ref(), o.reference_range.as_ref(), o.flag)?;
                if !o.components.is_empty() {
                    m.serialize_entry("component", &Seq(o.components.iter().map(Component)))?;
                }
            }
            RecordBody::DiagnosticReport(d) => {
                m.serialize_entry("status", &fhir_code(d.status.code()))?;
                if let Some(c) = &d.category {
                    m.serialize_entry("category", &[Concept(c)])?;
                }
                m.serialize_entry("code", &Concept(&d.code))?;
                put_result_context(
                    &mut m,
                    &patient,
                    visit.as_ref(),
                    [d.effective_at, d.issued],
                    src.performer.as_ref(),
                )?;
                let results = d.results.iter().filter(|id| known.contains(*id));
                if results.clone().next().is_some() {
                    m.serialize_entry("result", &Seq(results.map(|id| reference(id.as_uuid()))))?;
                }
                if let Some(c) = &d.conclusion {
                    m.serialize_entry("conclusion", c.as_str())?;
                }
            }
            RecordBody::Medication(md) => {
                m.serialize_entry("status", &fhir_code(md.status.code()))?;
                m.serialize_entry("intent", "order")?;
                m.serialize_entry("medicationCodeableConcept", &Concept(&md.medication))?;
                m.serialize_entry("subject", &patient)?;
                if let Some(v) = &visit {
                    m.serialize_entry("encounter", v)?;
                }
                if let Some(t) = md.authored_on {
                    m.serialize_entry("authoredOn", &instant(t))?;
                }
                if let Some(a) = &src.author {
                    m.serialize_entry("requester", &named(a))?;
                }
                if let Some(d) = &md.dosage {
                    m.serialize_entry("dosageInstruction", &[Text { text: d }])?;
                }
                if let Some(p) = period(&md.period) {
                    m.serialize_entry("dispenseRequest", &DispenseRequest { validity_period: p })?;
                }
            }
            RecordBody::Immunization(i) => {
                m.serialize_entry("status", &fhir_code(i.status.code()))?;
                m.serialize_entry("vaccineCode", &Concept(&i.vaccine))?;
                m.serialize_entry("patient", &patient)?;
                if let Some(v) = &visit {
                    m.serialize_entry("encounter", v)?;
                }
                match i.occurred_at {
                    Some(t) => m.serialize_entry("occurrenceDateTime", &instant(t))?,
                    // occurrence[x] is required; say so rather than invent a date.
                    None => m.serialize_entry("occurrenceString", "unknown")?,
                }
                m.serialize_entry("primarySource", &i.primary_source)?;
                if let Some(lot) = &i.lot_number {
                    m.serialize_entry("lotNumber", lot.as_str())?;
                }
                if let Some(p) = &src.performer {
                    m.serialize_entry("performer", &[Actor { actor: named(p) }])?;
                }
            }
            RecordBody::Problem(p) => {
                m.serialize_entry(
                    "clinicalStatus",
                    &coded(
                        "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        p.clinical_status.code(),
                    ),
                )?;
                m.serialize_entry("code", &Concept(&p.code))?;
                m.serialize_entry("subject", &patient)?;
                if let Some(v) = &visit {
                    m.serialize_entry("encounter", v)?;
                }
                if let Some(t) = p.onset {
                    m.serialize_entry("onsetDateTime", &instant(t))?;
                }
                if let Some(t) = p.abatement {
                    m.serialize_entry("abatementDateTime", &instant(t))?;
                }
                if let Some(t) = p.recorded {
                    m.serialize_entry("recordedDate", &instant(t))?;
                }
                if let Some(a) = &src.author {
                    m.serialize_entry("recorder", &named(a))?;
                }
            }
            RecordBody::Allergy(a) => {
                if let Some(st) = a.clinical_status {
                    m.serialize_entry(
                        "clinicalStatus",
                        &coded(
                            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            st.code(),
                        ),
                    )?;
                }
                if !a.categories.is_empty() {
                    m.serialize_entry("category", &Seq(a.categories.iter().map(|c| c.code())))?;
                }
                if let Some(c) = a.criticality {
                    m.serialize_entry("criticality", &fhir_code(c.code()))?;
                }
                m.serialize_entry("code", &Concept(&a.substance))?;
                m.serialize_entry("patient", &patient)?;
                if let Some(v) = &visit {
                    m.serialize_entry("encounter", v)?;
                }
                if let Some(t) = a.recorded {
                    m.serialize_entry("recordedDate", &instant(t))?;
                }
                if let Some(by) = &src.author {
                    m.serialize_entry("recorder", &named(by))?;
                }
                if !a.reactions.is_empty() {
                    m.serialize_entry("reaction", &Seq(a.reactions.iter().map(FhirReaction)))?;
                }
            }
            RecordBody::Procedure(p) => {
                m.serialize_entry("status", &fhir_code(p.status.code()))?;
                m.serialize_entry("code", &Concept(&p.code))?;
                m.serialize_entry("subject", &patient)?;
                if let Some(v) = &visit {
                    m.serialize_entry("encounter", v)?;
                }
                match (p.performed.start, p.performed.end) {
                    (Some(s), Some(e)) if s == e => {
                        m.serialize_entry("performedDateTime", &instant(s))?;
                    }
                    _ => {
                        if let Some(per) = period(&p.performed) {
                            m.serialize_entry("performedPeriod", &per)?;
                        }
                    }
                }
                if let Some(by) = &src.performer {
                    m.serialize_entry("performer", &[Actor { actor: named(by) }])?;
                }
            }
            RecordBody::ClinicalNote(n) => {
                let (code, display) = note_type(n.note_type);
                m.serialize_entry("status", "current")?;
                m.serialize_entry(
                    "type",
                    &Coded {
                        coding: [Coding {
                            system: Some("http://loinc.org"),
                            code,
                            display: Some(display),
                        }],
                        text: Some(display),
                    },
                )?;
                m.serialize_entry("subject", &patient)?;
                if let Some(t) = n.date {
                    m.serialize_entry("date", &instant(t))?;
                }
                if let Some(a) = &src.author {
                    m.serialize_entry("author", &[named(a)])?;
                }
                m.serialize_entry("description", n.title.as_str())?;
                m.serialize_entry(
                    "content",
                    &[NoteContent {
                        attachment: Attachment {
                            content_type: "text/plain; charset=utf-8",
                            data: Base64(n.text.as_bytes()),
                        },
                    }],
                )?;
                if let Some(v) = visit {
                    m.serialize_entry("context", &NoteContext { encounter: [v] })?;
                }
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Utc};
    use salus_domain::record::{
        ClinicalNote, DiagnosticReport, Immunization, ImmunizationStatus, RecordMeta, RecordSource,
        ReleaseState, SensitivityLabel,
    };
    use salus_domain::{OrganizationId, PatientId};
    use serde_json::json;

    fn id(n: u128) -> RecordId {
        RecordId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn record(n: u128, body: RecordBody) -> ClinicalRecord {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        ClinicalRecord {
            meta: RecordMeta {
                id: id(n),
                patient_id: PatientId::from_uuid(uuid::Uuid::from_u128(1)),
                organization_id: OrganizationId::from_uuid(uuid::Uuid::from_u128(2)),
                encounter_id: Some(id(99)),
                source: RecordSource::default(),
                source_identifier: None,
                sensitivity: SensitivityLabels::empty(),
                release: ReleaseState::Released { at },
                filed_at: at,
            },
            body,
        }
    }

    fn text(r: &ClinicalRecord, known: &HashSet<RecordId>) -> String {
        serde_json::to_string(&RecordResource { record: r, known }).unwrap()
    }

    #[test]
    fn a_labelled_report_points_only_at_what_the_bundle_holds_in_report_order() {
        let mut report = record(
            10,
            RecordBody::DiagnosticReport(DiagnosticReport {
                category: None,
                code: Code::new(Some("http://loinc.org"), Some("58410-2"), "Blood count").unwrap(),
                status: ResultStatus::Final,
                results: vec![id(13), id(11), id(12)],
                conclusion: Some("Within range".into()),
                effective_at: None,
                issued: Some(Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap()),
            }),
        );
        report.meta.sensitivity = SensitivityLabels::empty()
            .with(SensitivityLabel::Hiv)
            .with(SensitivityLabel::MentalHealth);
        // Results 13 and 11 are in the bundle; 12 and the visit (99) are not.
        let known: HashSet<RecordId> = [id(13), id(11)].into();
        let written = text(&report, &known);
        assert!(written.starts_with(r#"{"resourceType":"DiagnosticReport","id":"#));
        let v: Value = serde_json::from_str(&written).unwrap();
        let labels = &v["meta"]["security"];
        assert_eq!(labels.as_array().unwrap().len(), 2);
        for code in ["PSY", "HIV"] {
            assert!(
                labels
                    .as_array()
                    .unwrap()
                    .contains(&json!({ "system": V3_ACT_CODE, "code": code })),
                "{code} in {labels}"
            );
        }
        assert_eq!(
            v["result"],
            json!([
                { "reference": format!("urn:uuid:{}", id(13).as_uuid()) },
                { "reference": format!("urn:uuid:{}", id(11).as_uuid()) },
            ])
        );
        assert!(v.get("encounter").is_none());
        assert_eq!(v["status"], "final");
        assert_eq!(v["issued"], "2026-01-03T00:00:00Z");
        assert_eq!(v["conclusion"], "Within range");
        assert_eq!(
            v["code"],
            json!({ "coding": [{ "system": "http://loinc.org", "code": "58410-2",
                                 "display": "Blood count" }], "text": "Blood count" })
        );
        // None of its results in the bundle: no `result` at all, not an empty list.
        let none = text(&report, &HashSet::new());
        assert!(!none.contains("\"result\""), "{none}");
        // The tree form says the same.
        assert_eq!(record_resource(&report, &known), v);
    }

    #[test]
    fn an_undated_vaccine_and_a_note_keep_what_fhir_requires() {
        let known: HashSet<RecordId> = [id(99)].into();
        let vaccine = record(
            20,
            RecordBody::Immunization(Immunization {
                vaccine: Code::new(None, None, "Influenza vaccine").unwrap(),
                status: ImmunizationStatus::NotDone,
                occurred_at: None,
                lot_number: None,
                primary_source: false,
            }),
        );
        let v: Value = serde_json::from_str(&text(&vaccine, &known)).unwrap();
        assert_eq!(v["occurrenceString"], "unknown");
        assert_eq!(v["status"], "not-done");
        assert_eq!(v["primarySource"], false);
        // A code without a coding is text alone.
        assert_eq!(v["vaccineCode"], json!({ "text": "Influenza vaccine" }));
        assert_eq!(
            v["encounter"]["reference"],
            format!("urn:uuid:{}", id(99).as_uuid())
        );

        let note = record(
            21,
            RecordBody::ClinicalNote(ClinicalNote {
                note_type: NoteType::DischargeSummary,
                title: "Going home".into(),
                text: "Rest; drink \"plenty\" of water.\nCall us.".into(),
                date: None,
            }),
        );
        let v: Value = serde_json::from_str(&text(&note, &known)).unwrap();
        let data = v["content"][0]["attachment"]["data"].as_str().unwrap();
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "Rest; drink \"plenty\" of water.\nCall us."
        );
        assert_eq!(v["type"]["coding"][0]["code"], "18842-5");
        assert_eq!(
            v["context"],
            json!({ "encounter": [{ "reference": format!("urn:uuid:{}", id(99).as_uuid()) }] })
        );
    }
}
