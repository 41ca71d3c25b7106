//! Domain records -> FHIR R4 resources, a streamed `collection` Bundle of a whole chart.
//!
//! Every resource keeps the id Salus gives the record; entries are `urn:uuid:` full URLs and
//! references use them, so the bundle reads back through [`crate::map_bundle`]. A streamed
//! bundle is written entry by entry ([`BundleWriter`]); a reference is only written to an
//! entry already in the bundle (visits come first, results before their reports), so an
//! export that leaves a record out (not released, or not the reader's to see) never points
//! at it.

use chrono::{DateTime, SecondsFormat, Utc};
use salus_domain::RepoError;
use salus_domain::consent::{Grant, Grantee};
use salus_domain::export::{ChartExport, ExportedAppointment};
use salus_domain::patient::Patient;
use salus_domain::record::{ClinicalRecord, RecordKind, SensitivityLabel};
use salus_domain::scheduling::AppointmentState;
use salus_domain::{PatientId, RecordId};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

use crate::resource::Urn;
pub use crate::resource::{RecordResource, record_resource, resource_type};

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

/// The v3 `ActCode` of a sensitivity label (the information-sensitivity codes FHIR uses as
/// security labels).
pub(crate) fn label_code(l: SensitivityLabel) -> (&'static str, &'static str) {
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

/// One entry of a bundle: its full URL and its resource.
#[derive(serde::Serialize)]
struct Entry<R> {
    #[serde(rename = "fullUrl")]
    full_url: Urn,
    resource: R,
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

    /// The entries of a batch of records, each written straight into the chunk.
    ///
    /// # Errors
    /// When a resource cannot be written as JSON (not expected: every key is a string and
    /// no part of a resource reports an error).
    pub fn records(&mut self, batch: &[ClinicalRecord]) -> Result<Vec<u8>, serde_json::Error> {
        // A record may point to another of the same batch (a visit's records are in order).
        for r in batch {
            if matches!(r.kind(), RecordKind::Encounter | RecordKind::Observation) {
                self.written.insert(r.meta.id);
            }
        }
        let mut out = Vec::with_capacity(batch.len() * 900);
        for r in batch {
            out.push(b',');
            let entry = Entry {
                full_url: Urn(r.meta.id.as_uuid()),
                resource: RecordResource {
                    record: r,
                    known: &self.written,
                },
            };
            serde_json::to_writer(&mut out, &entry)?;
        }
        Ok(out)
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
        chunk.map_err(|e| {
            // The variant only: neither error carries health data, but say nothing more.
            match e {
                StreamError::Store(_) => {
                    tracing::warn!("a FHIR download stopped part-way: the store failed");
                }
                StreamError::Write(_) => {
                    tracing::error!("a FHIR download stopped part-way: a resource was not written");
                }
            }
            std::io::Error::other("a download stopped part-way")
        })
    })
}

/// Why a streamed bundle stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the store failed")]
    Store(#[from] RepoError),
    #[error("a resource could not be written as JSON")]
    Write(#[from] serde_json::Error),
}

pub fn bundle_stream(
    export: ChartExport,
    bundle_id: uuid::Uuid,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, StreamError>> + Send {
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
                Ok(Some(batch)) => match writer.records(&batch) {
                    Ok(chunk) => Some((Ok(chunk), State::Records(export, writer))),
                    Err(e) => Some((Err(e.into()), State::Done)),
                },
                Ok(None) => {
                    let mut last = writer.consents(export.consents(), export.patient().id);
                    last.extend(writer.appointments(export.appointments(), export.patient().id));
                    last.extend(writer.finish());
                    Some((Ok(last), State::Done))
                }
                Err(e) => Some((Err(e.into()), State::Done)),
            },
            State::Done => None,
        }
    })
}
