//! Domain records -> FHIR R4 resources, a streamed `collection` Bundle of a whole chart.
//!
//! Every resource keeps the id Salus gives the record; entries are `urn:uuid:` full URLs and
//! references use them, so the bundle reads back through [`crate::map_bundle`]. A streamed
//! bundle is written entry by entry ([`BundleWriter`]); a reference is only written to an
//! entry already in the bundle (visits come first, results before their reports), so an
//! export that leaves a record out (not released, or not the reader's to see) never points
//! at it.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use salus_domain::RepoError;
use salus_domain::consent::{Grant, Grantee};
use salus_domain::export::{ChartExport, ExportedAppointment};
use salus_domain::patient::Patient;
use salus_domain::record::{
    AbnormalFlag, ClinicalRecord, EncounterClass, NoteType, ObservationCategory, ObservationValue,
    Period, RecordBody, RecordKind, ReferenceRange, ResultStatus, SensitivityLabel,
};
use salus_domain::scheduling::AppointmentState;
use salus_domain::text::{Code, DisplayName};
use salus_domain::{PatientId, RecordId};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// A FHIR `dateTime` / `instant` in UTC.
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `urn:uuid:` full URL of a patient or record.
pub fn patient_url(id: PatientId) -> String {
    format!("urn:uuid:{}", id.as_uuid())
}

pub fn record_url(id: RecordId) -> String {
    format!("urn:uuid:{}", id.as_uuid())
}

fn reference(url: String) -> Value {
    json!({ "reference": url })
}

/// A reference that names someone we know only by name.
fn named(name: &DisplayName) -> Value {
    json!({ "display": name.as_str() })
}

/// A `CodeableConcept`: one coding when the code is known, and the text people read.
pub(crate) fn concept(c: &Code) -> Value {
    let mut cc = Map::new();
    if c.code().is_some() {
        let mut coding = Map::new();
        if let Some(system) = c.system() {
            coding.insert("system".into(), system.into());
        }
        coding.insert("code".into(), c.code().into());
        coding.insert("display".into(), c.display().into());
        cc.insert("coding".into(), Value::Array(vec![Value::Object(coding)]));
    }
    cc.insert("text".into(), c.display().into());
    Value::Object(cc)
}

fn coding(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// FHIR codes are kebab-case where ours are snake_case.
fn fhir_code(code: &str) -> String {
    code.replace('_', "-")
}

fn period(p: &Period) -> Option<Value> {
    if p.start.is_none() && p.end.is_none() {
        return None;
    }
    let mut m = Map::new();
    if let Some(s) = p.start {
        m.insert("start".into(), instant(s).into());
    }
    if let Some(e) = p.end {
        m.insert("end".into(), instant(e).into());
    }
    Some(Value::Object(m))
}

fn security(r: &ClinicalRecord) -> Option<Value> {
    if r.meta.sensitivity.is_empty() {
        return None;
    }
    let codes: Vec<Value> = r
        .meta
        .sensitivity
        .iter()
        .map(|l| {
            let code = match l {
                SensitivityLabel::MentalHealth => "PSY",
                SensitivityLabel::SubstanceUse => "ETH",
                SensitivityLabel::SexualReproductive => "SEX",
                SensitivityLabel::Hiv => "HIV",
                SensitivityLabel::Genetic => "GDIS",
            };
            json!({ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code })
        })
        .collect();
    Some(json!({ "security": codes }))
}

/// The `Patient` resource of a chart.
pub fn patient_resource(p: &Patient) -> Value {
    let mut r = json!({
        "resourceType": "Patient",
        "id": p.id.as_uuid().to_string(),
        "identifier": [{
            "type": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "MR",
                "display": "Medical record number"
            }]},
            "value": p.mrn.as_str()
        }],
        "name": [name_of(p)],
        "gender": p.sex.code(),
        "birthDate": p.birth_date.format("%Y-%m-%d").to_string(),
    });
    let mut telecom = Vec::new();
    if let Some(phone) = &p.contact.phone {
        telecom.push(json!({ "system": "phone", "value": phone.as_str() }));
    }
    if let Some(email) = &p.contact.email {
        telecom.push(json!({ "system": "email", "value": email.as_str() }));
    }
    if !telecom.is_empty() {
        r["telecom"] = Value::Array(telecom);
    }
    if let Some(address) = &p.contact.address {
        r["address"] = json!([{ "line": [address.as_str()] }]);
    }
    r
}

fn name_of(p: &Patient) -> Value {
    let mut n = Map::new();
    n.insert("use".into(), "official".into());
    if !p.name.family().is_empty() {
        n.insert("family".into(), p.name.family().into());
    }
    let given: Vec<Value> = p
        .name
        .given()
        .split_whitespace()
        .map(|g| Value::from(g.to_owned()))
        .collect();
    if !given.is_empty() {
        n.insert("given".into(), Value::Array(given));
    }
    Value::Object(n)
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

fn interpretation(flag: AbnormalFlag) -> Value {
    let code = match flag {
        AbnormalFlag::Normal => "N",
        AbnormalFlag::Low => "L",
        AbnormalFlag::High => "H",
        AbnormalFlag::CriticalLow => "LL",
        AbnormalFlag::CriticalHigh => "HH",
        AbnormalFlag::Abnormal => "A",
    };
    json!([{ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": code
    }]}])
}

/// Writes `value[x]`, `referenceRange` and `interpretation` of a result or component.
fn put_value(
    m: &mut Map<String, Value>,
    value: Option<&ObservationValue>,
    range: Option<&ReferenceRange>,
    flag: Option<AbnormalFlag>,
) {
    match value {
        Some(ObservationValue::Quantity(q)) => {
            let mut qty = Map::new();
            qty.insert("value".into(), json!(q.value));
            if let Some(u) = q.unit.as_deref().filter(|u| !u.trim().is_empty()) {
                qty.insert("unit".into(), u.into());
            }
            m.insert("valueQuantity".into(), Value::Object(qty));
        }
        Some(ObservationValue::Text(t)) => {
            m.insert("valueString".into(), t.as_str().into());
        }
        Some(ObservationValue::Coded(c)) => {
            m.insert("valueCodeableConcept".into(), concept(c));
        }
        None => {}
    }
    if let Some(r) = range {
        let mut rr = Map::new();
        if let Some(low) = r.low {
            rr.insert("low".into(), json!({ "value": low }));
        }
        if let Some(high) = r.high {
            rr.insert("high".into(), json!({ "value": high }));
        }
        if let Some(text) = r.text.as_deref().filter(|t| !t.trim().is_empty()) {
            rr.insert("text".into(), text.into());
        }
        if !rr.is_empty() {
            m.insert("referenceRange".into(), json!([rr]));
        }
    }
    if let Some(f) = flag {
        m.insert("interpretation".into(), interpretation(f));
    }
}

/// The FHIR resource of one record; references only to records `known` has.
pub fn record_resource(r: &ClinicalRecord, known: &HashSet<RecordId>) -> Value {
    let id = r.meta.id.as_uuid().to_string();
    let patient = reference(patient_url(r.meta.patient_id));
    let visit = r
        .meta
        .encounter_id
        .filter(|e| known.contains(e))
        .map(|e| reference(record_url(e)));
    let src = &r.meta.source;
    let mut m = Map::new();
    let rtype = resource_type(r.kind());
    m.insert("resourceType".into(), rtype.into());
    m.insert("id".into(), id.into());
    if let Some(meta) = security(r) {
        m.insert("meta".into(), meta);
    }
    match &r.body {
        RecordBody::Encounter(e) => {
            m.insert("status".into(), fhir_code(e.status.code()).into());
            let (system, code) = match e.class {
                EncounterClass::Ambulatory => ("v3-ActCode", "AMB"),
                EncounterClass::Emergency => ("v3-ActCode", "EMER"),
                EncounterClass::Inpatient => ("v3-ActCode", "IMP"),
                EncounterClass::Virtual => ("v3-ActCode", "VR"),
                EncounterClass::HomeHealth => ("v3-ActCode", "HH"),
                EncounterClass::Other => ("v3-NullFlavor", "OTH"),
            };
            m.insert(
                "class".into(),
                json!({ "system": format!("http://terminology.hl7.org/CodeSystem/{system}"), "code": code }),
            );
            if let Some(t) = &e.visit_type {
                m.insert("type".into(), json!([concept(t)]));
            }
            m.insert("subject".into(), patient);
            if let Some(p) = &src.performer {
                m.insert("participant".into(), json!([{ "individual": named(p) }]));
            }
            if let Some(p) = period(&e.period) {
                m.insert("period".into(), p);
            }
            if let Some(reason) = &e.reason {
                m.insert("reasonCode".into(), json!([concept(reason)]));
            }
            if let Some(o) = &src.organization {
                m.insert("serviceProvider".into(), named(o));
            }
        }
        RecordBody::Observation(o) => {
            m.insert("status".into(), observation_status(o.status).into());
            let category = match o.category {
                ObservationCategory::Laboratory => Some("laboratory"),
                ObservationCategory::VitalSigns => Some("vital-signs"),
                ObservationCategory::Other => None,
            };
            if let Some(c) = category {
                m.insert(
                    "category".into(),
                    json!([coding(
                        "http://terminology.hl7.org/CodeSystem/observation-category",
                        c
                    )]),
                );
            }
            m.insert("code".into(), concept(&o.code));
            m.insert("subject".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            if let Some(t) = o.effective_at {
                m.insert("effectiveDateTime".into(), instant(t).into());
            }
            if let Some(t) = o.issued {
                m.insert("issued".into(), instant(t).into());
            }
            if let Some(p) = &src.performer {
                m.insert("performer".into(), json!([named(p)]));
            }
            put_value(&mut m, o.value.as_ref(), o.reference_range.as_ref(), o.flag);
            if !o.components.is_empty() {
                let parts: Vec<Value> = o
                    .components
                    .iter()
                    .map(|c| {
                        let mut cm = Map::new();
                        cm.insert("code".into(), concept(&c.code));
                        put_value(
                            &mut cm,
                            c.value.as_ref(),
                            c.reference_range.as_ref(),
                            c.flag,
                        );
                        Value::Object(cm)
                    })
                    .collect();
                m.insert("component".into(), Value::Array(parts));
            }
        }
        RecordBody::DiagnosticReport(d) => {
            m.insert("status".into(), fhir_code(d.status.code()).into());
            if let Some(c) = &d.category {
                m.insert("category".into(), json!([concept(c)]));
            }
            m.insert("code".into(), concept(&d.code));
            m.insert("subject".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            if let Some(t) = d.effective_at {
                m.insert("effectiveDateTime".into(), instant(t).into());
            }
            if let Some(t) = d.issued {
                m.insert("issued".into(), instant(t).into());
            }
            if let Some(p) = &src.performer {
                m.insert("performer".into(), json!([named(p)]));
            }
            let results: Vec<Value> = d
                .results
                .iter()
                .filter(|id| known.contains(*id))
                .map(|id| reference(record_url(*id)))
                .collect();
            if !results.is_empty() {
                m.insert("result".into(), Value::Array(results));
            }
            if let Some(c) = &d.conclusion {
                m.insert("conclusion".into(), c.as_str().into());
            }
        }
        RecordBody::Medication(md) => {
            m.insert("status".into(), fhir_code(md.status.code()).into());
            m.insert("intent".into(), "order".into());
            m.insert("medicationCodeableConcept".into(), concept(&md.medication));
            m.insert("subject".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            if let Some(t) = md.authored_on {
                m.insert("authoredOn".into(), instant(t).into());
            }
            if let Some(a) = &src.author {
                m.insert("requester".into(), named(a));
            }
            if let Some(d) = &md.dosage {
                m.insert("dosageInstruction".into(), json!([{ "text": d }]));
            }
            if let Some(p) = period(&md.period) {
                m.insert("dispenseRequest".into(), json!({ "validityPeriod": p }));
            }
        }
        RecordBody::Immunization(i) => {
            m.insert("status".into(), fhir_code(i.status.code()).into());
            m.insert("vaccineCode".into(), concept(&i.vaccine));
            m.insert("patient".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            match i.occurred_at {
                Some(t) => m.insert("occurrenceDateTime".into(), instant(t).into()),
                // occurrence[x] is required; say so rather than invent a date.
                None => m.insert("occurrenceString".into(), "unknown".into()),
            };
            m.insert("primarySource".into(), i.primary_source.into());
            if let Some(lot) = &i.lot_number {
                m.insert("lotNumber".into(), lot.as_str().into());
            }
            if let Some(p) = &src.performer {
                m.insert("performer".into(), json!([{ "actor": named(p) }]));
            }
        }
        RecordBody::Problem(p) => {
            m.insert(
                "clinicalStatus".into(),
                coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    p.clinical_status.code(),
                ),
            );
            m.insert("code".into(), concept(&p.code));
            m.insert("subject".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            if let Some(t) = p.onset {
                m.insert("onsetDateTime".into(), instant(t).into());
            }
            if let Some(t) = p.abatement {
                m.insert("abatementDateTime".into(), instant(t).into());
            }
            if let Some(t) = p.recorded {
                m.insert("recordedDate".into(), instant(t).into());
            }
            if let Some(a) = &src.author {
                m.insert("recorder".into(), named(a));
            }
        }
        RecordBody::Allergy(a) => {
            if let Some(s) = a.clinical_status {
                m.insert(
                    "clinicalStatus".into(),
                    coding(
                        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        s.code(),
                    ),
                );
            }
            if !a.categories.is_empty() {
                let cats: Vec<Value> = a.categories.iter().map(|c| c.code().into()).collect();
                m.insert("category".into(), Value::Array(cats));
            }
            if let Some(c) = a.criticality {
                m.insert("criticality".into(), fhir_code(c.code()).into());
            }
            m.insert("code".into(), concept(&a.substance));
            m.insert("patient".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            if let Some(t) = a.recorded {
                m.insert("recordedDate".into(), instant(t).into());
            }
            if let Some(by) = &src.author {
                m.insert("recorder".into(), named(by));
            }
            if !a.reactions.is_empty() {
                let reactions: Vec<Value> = a
                    .reactions
                    .iter()
                    .map(|re| {
                        let mut rm = Map::new();
                        rm.insert("manifestation".into(), json!([concept(&re.manifestation)]));
                        if let Some(s) = re.severity {
                            rm.insert("severity".into(), s.code().into());
                        }
                        Value::Object(rm)
                    })
                    .collect();
                m.insert("reaction".into(), Value::Array(reactions));
            }
        }
        RecordBody::Procedure(p) => {
            m.insert("status".into(), fhir_code(p.status.code()).into());
            m.insert("code".into(), concept(&p.code));
            m.insert("subject".into(), patient);
            if let Some(v) = visit {
                m.insert("encounter".into(), v);
            }
            match (p.performed.start, p.performed.end) {
                (Some(s), Some(e)) if s == e => {
                    m.insert("performedDateTime".into(), instant(s).into());
                }
                _ => {
                    if let Some(per) = period(&p.performed) {
                        m.insert("performedPeriod".into(), per);
                    }
                }
            }
            if let Some(by) = &src.performer {
                m.insert("performer".into(), json!([{ "actor": named(by) }]));
            }
        }
        RecordBody::ClinicalNote(n) => {
            let (code, display) = note_type(n.note_type);
            m.insert("status".into(), "current".into());
            m.insert(
                "type".into(),
                json!({ "coding": [{ "system": "http://loinc.org", "code": code, "display": display }],
                        "text": display }),
            );
            m.insert("subject".into(), patient);
            if let Some(t) = n.date {
                m.insert("date".into(), instant(t).into());
            }
            if let Some(a) = &src.author {
                m.insert("author".into(), json!([named(a)]));
            }
            m.insert("description".into(), n.title.as_str().into());
            let data = base64::engine::general_purpose::STANDARD.encode(n.text.as_bytes());
            m.insert(
                "content".into(),
                json!([{ "attachment": { "contentType": "text/plain; charset=utf-8", "data": data } }]),
            );
            if let Some(v) = visit {
                m.insert("context".into(), json!({ "encounter": [v] }));
            }
        }
    }
    Value::Object(m)
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

/// The v3 `ActCode` of a sensitivity label (the information-sensitivity codes FHIR uses as
/// security labels).
fn label_code(l: SensitivityLabel) -> (&'static str, &'static str) {
    match l {
        SensitivityLabel::MentalHealth => ("PSY", "psychiatry disorder information sensitivity"),
        SensitivityLabel::SubstanceUse => ("ETH", "substance abuse information sensitivity"),
        SensitivityLabel::SexualReproductive => (
            "SEX",
            "sexuality and reproductive health information sensitivity",
        ),
        SensitivityLabel::Hiv => ("HIV", "HIV/AIDS information sensitivity"),
        SensitivityLabel::Genetic => ("GDIS", "genetic disease information sensitivity"),
    }
}

/// A patient's grant as an R4 `Consent`: a privacy consent of the patient that permits the
/// grantee to access (and, with a download grant, to disclose) the record classes it covers,
/// for its period, with the security labels granted one by one.
pub fn consent_resource(g: &Grant, patient: PatientId) -> Value {
    let v3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    let (role, role_display, who) = match &g.grantee {
        Grantee::Proxy {
            email,
            relationship,
            ..
        } => (
            "IRCP",
            "information recipient",
            match relationship {
                Some(r) => format!("{} ({})", email.as_str(), r.as_str()),
                None => email.as_str().to_owned(),
            },
        ),
        Grantee::Guardian { email, .. } => (
            "IRCP",
            "information recipient",
            format!("{} (parent or guardian)", email.as_str()),
        ),
        Grantee::ShareLink { recipient, .. } => (
            "IRCP",
            "information recipient",
            recipient.as_ref().map_or_else(
                || "Whoever holds a share link".to_owned(),
                |r| format!("{} (through a share link)", r.as_str()),
            ),
        ),
    };
    let mut actions = vec![json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
        "code": "access", "display": "Access"}]})];
    if g.scope
        .actions
        .contains(&salus_domain::access::Action::Export)
    {
        actions.push(json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentaction",
            "code": "disclose", "display": "Disclose"}]}));
    }
    let mut provision = json!({
        "type": "permit",
        "period": {"start": instant(g.scope.valid_from), "end": instant(g.scope.valid_until)},
        "actor": [{
            "role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": role, "display": role_display}]},
            "reference": {"display": who},
        }],
        "action": actions,
        "class": g.scope.kinds.iter().map(|k| json!({
            "system": "http://hl7.org/fhir/resource-types", "code": resource_type(*k)})).collect::<Vec<_>>(),
    });
    if !g.scope.labels.is_empty() {
        provision["securityLabel"] = g
            .scope
            .labels
            .iter()
            .map(|l| {
                let (code, display) = label_code(l);
                json!({"system": v3, "code": code, "display": display})
            })
            .collect();
    }
    json!({
        "resourceType": "Consent",
        "id": g.id.to_string(),
        "status": "active",
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{
            "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": patient_url(patient)},
        "dateTime": instant(g.made_at),
        "performer": [{"reference": patient_url(patient)}],
        "policyRule": {"coding": [{"system": v3, "code": "OPTIN", "display": "opt-in"}]},
        "provision": provision,
    })
}

/// An appointment as an R4 `Appointment`: booked or cancelled (with the reason staff gave),
/// when, how long, the kind of visit, the patient's reason, and who takes part (the patient
/// by reference; the provider and the place by name).
pub fn appointment_resource(e: &ExportedAppointment, patient: PatientId) -> Value {
    let a = &e.appointment;
    let mut participants = vec![json!({
        "actor": {"reference": patient_url(patient)},
        "required": "required",
        "status": "accepted",
    })];
    if let Some(provider) = &e.provider {
        participants.push(json!({
            "type": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "PPRF", "display": "primary performer"}]}],
            "actor": {"display": provider},
            "required": "required",
            "status": "accepted",
        }));
    }
    if let Some(place) = &e.location {
        participants.push(json!({
            "actor": {"display": format!("{}, {}", place.name, place.address)},
            "required": "required",
            "status": "accepted",
        }));
    }
    let mut resource = json!({
        "resourceType": "Appointment",
        "id": a.id.to_string(),
        "status": match a.state {
            AppointmentState::Booked => "booked",
            AppointmentState::Cancelled { .. } => "cancelled",
        },
        "start": instant(a.time.start),
        "end": instant(a.time.end),
        "created": instant(a.booked_at),
        "participant": participants,
    });
    if !e.visit_type.is_empty() {
        resource["appointmentType"] = json!({"text": e.visit_type});
        resource["description"] = json!(e.visit_type);
    }
    if e.minutes > 0 {
        resource["minutesDuration"] = json!(e.minutes);
    }
    if !a.reason.is_empty() {
        resource["reasonCode"] = json!([{"text": a.reason}]);
    }
    if let AppointmentState::Cancelled {
        reason: Some(why), ..
    } = &a.state
    {
        resource["cancelationReason"] = json!({"text": why});
    }
    resource
}

/// Writes a `collection` Bundle a piece at a time: [`BundleWriter::start`] (the opening and
/// the Patient entry), [`BundleWriter::records`] for each batch, [`BundleWriter::finish`].
/// Remembers only the ids written, so that later entries reference earlier ones.
#[derive(Debug, Default)]
pub struct BundleWriter {
    written: HashSet<RecordId>,
}

impl BundleWriter {
    /// The bundle's opening and its Patient entry.
    pub fn start(
        &mut self,
        patient: &Patient,
        bundle_id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Vec<u8> {
        let head = json!({
            "resourceType": "Bundle",
            "id": bundle_id.to_string(),
            "meta": { "lastUpdated": instant(at) },
            "type": "collection",
            "timestamp": instant(at),
        });
        // Everything of the head but its closing brace, then the entries array.
        let mut out = head.to_string().into_bytes();
        out.pop();
        out.extend_from_slice(b",\"entry\":[");
        let entry =
            json!({ "fullUrl": patient_url(patient.id), "resource": patient_resource(patient) });
        out.extend_from_slice(entry.to_string().as_bytes());
        out
    }

    /// The entries of a batch of records.
    pub fn records(&mut self, batch: &[ClinicalRecord]) -> Vec<u8> {
        // A record may point to another of the same batch (a visit's records are in order).
        for r in batch {
            if matches!(r.kind(), RecordKind::Encounter | RecordKind::Observation) {
                self.written.insert(r.meta.id);
            }
        }
        let mut out = Vec::with_capacity(batch.len() * 700);
        for r in batch {
            out.push(b',');
            let entry = json!({ "fullUrl": record_url(r.meta.id), "resource": record_resource(r, &self.written) });
            out.extend_from_slice(entry.to_string().as_bytes());
        }
        out
    }

    /// The entries of the patient's grants in force, as `Consent` resources.
    pub fn consents(&mut self, grants: &[Grant], patient: PatientId) -> Vec<u8> {
        let mut out = Vec::new();
        for g in grants {
            out.push(b',');
            let entry = json!({
                "fullUrl": format!("urn:uuid:{}", g.id),
                "resource": consent_resource(g, patient),
            });
            out.extend_from_slice(entry.to_string().as_bytes());
        }
        out
    }

    /// The entries of the chart's appointments, as `Appointment` resources.
    pub fn appointments(&mut self, list: &[ExportedAppointment], patient: PatientId) -> Vec<u8> {
        let mut out = Vec::new();
        for e in list {
            out.push(b',');
            let entry = json!({
                "fullUrl": format!("urn:uuid:{}", e.appointment.id),
                "resource": appointment_resource(e, patient),
            });
            out.extend_from_slice(entry.to_string().as_bytes());
        }
        out
    }

    /// The closing of the bundle.
    pub fn finish(self) -> Vec<u8> {
        b"]}".to_vec()
    }
}

/// A whole chart export as a streamed FHIR Bundle: the pieces of JSON in order, one per
/// batch of records, so that memory holds one batch at a time.
/// [`bundle_stream`] as a download's body: a store failure part-way is logged (without
/// health data) and ends the body with an I/O error, so the client sees a cut-off download,
/// never a complete-looking one.
pub fn bundle_body(
    export: ChartExport,
    bundle_id: uuid::Uuid,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    use futures_util::StreamExt as _;
    bundle_stream(export, bundle_id).map(|chunk| {
        chunk.map_err(|_| {
            tracing::warn!("a FHIR download stopped part-way: the store failed");
            std::io::Error::other("the store failed during a download")
        })
    })
}

pub fn bundle_stream(
    export: ChartExport,
    bundle_id: uuid::Uuid,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, RepoError>> + Send {
    enum State {
        Start(ChartExport),
        Records(ChartExport, BundleWriter),
        Done,
    }
    futures_util::stream::unfold(State::Start(export), move |state| async move {
        match state {
            State::Start(export) => {
                let mut writer = BundleWriter::default();
                let head = writer.start(export.patient(), bundle_id, export.generated_at());
                Some((Ok(head), State::Records(export, writer)))
            }
            State::Records(mut export, mut writer) => match export.next_batch().await {
                Ok(Some(batch)) => {
                    let chunk = writer.records(&batch);
                    Some((Ok(chunk), State::Records(export, writer)))
                }
                Ok(None) => {
                    let mut last = writer.consents(export.consents(), export.patient().id);
                    last.extend(writer.appointments(export.appointments(), export.patient().id));
                    last.extend(writer.finish());
                    Some((Ok(last), State::Done))
                }
                Err(e) => Some((Err(e), State::Done)),
            },
            State::Done => None,
        }
    })
}
