//! The International Patient Summary: a FHIR `document` Bundle whose Composition carries
//! the IPS sections, each with a narrative a person can read and entries a system can use.
//!
//! [`IpsBuilder`] is fed a chart's records in export order and keeps only what a summary
//! holds, so its memory is bounded by the summary, not the chart:
//! - allergies and intolerances, but for resolved ones;
//! - medication summary: medications that are active or on hold;
//! - problem list: active problems (active, recurrence, relapse); past problems go to
//!   "History of past illness";
//! - immunizations given (completed);
//! - procedures done (completed);
//! - results: the latest laboratory result of each test; vital signs: the latest of each.
//!
//! The three sections IPS requires (allergies, medications, problems) are always present;
//! when the chart holds nothing for one, the section says so in words and carries an
//! `emptyReason`, rather than a made-up "no known allergies" entry: Salus cannot tell "none"
//! from "not recorded".

use crate::export::{instant, patient_resource, patient_url, record_resource, record_url};
use chrono::{DateTime, Utc};
use salus_domain::RecordId;
use salus_domain::chart::RecordsError;
use salus_domain::export::ChartExport;
use salus_domain::organization::Organization;
use salus_domain::patient::Patient;
use salus_domain::record::{
    AllergyStatus, ClinicalRecord, ImmunizationStatus, MedicationStatus, ObservationCategory,
    ProcedureStatus, RecordBody,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// One IPS section: LOINC code, title, and whether IPS requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Section {
    Allergies,
    Medications,
    Problems,
    Immunizations,
    Procedures,
    Results,
    VitalSigns,
    PastIllness,
}

impl Section {
    const ALL: [Self; 8] = [
        Self::Allergies,
        Self::Medications,
        Self::Problems,
        Self::Immunizations,
        Self::Procedures,
        Self::Results,
        Self::VitalSigns,
        Self::PastIllness,
    ];

    fn loinc(self) -> (&'static str, &'static str) {
        match self {
            Self::Allergies => ("48765-2", "Allergies and adverse reactions Document"),
            Self::Medications => ("10160-0", "History of Medication use Narrative"),
            Self::Problems => ("11450-4", "Problem list - Reported"),
            Self::Immunizations => ("11369-6", "History of Immunization Narrative"),
            Self::Procedures => ("47519-4", "History of Procedures Document"),
            Self::Results => (
                "30954-2",
                "Relevant diagnostic tests/laboratory data Narrative",
            ),
            Self::VitalSigns => ("8716-3", "Vital signs"),
            Self::PastIllness => ("11348-0", "History of Past illness Narrative"),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Allergies => "Allergies and intolerances",
            Self::Medications => "Medications",
            Self::Problems => "Problems",
            Self::Immunizations => "Immunizations",
            Self::Procedures => "Procedures",
            Self::Results => "Test results",
            Self::VitalSigns => "Vital signs",
            Self::PastIllness => "Past problems",
        }
    }

    fn required(self) -> bool {
        matches!(self, Self::Allergies | Self::Medications | Self::Problems)
    }

    fn none_recorded(self) -> &'static str {
        match self {
            Self::Allergies => "No allergies or intolerances are recorded.",
            Self::Medications => "No current medications are recorded.",
            _ => "No current problems are recorded.",
        }
    }
}

/// Collects the summary's records; see the module documentation.
#[derive(Debug, Default)]
pub struct IpsBuilder {
    sections: BTreeMap<Section, Vec<ClinicalRecord>>,
    /// Tests already taken (the first seen is the latest: records come newest first).
    latest: HashSet<(Section, String)>,
}

impl IpsBuilder {
    /// Offers one record; keeps it when the summary holds it.
    pub fn add(&mut self, r: ClinicalRecord) {
        let section = match &r.body {
            RecordBody::Allergy(a) if a.clinical_status != Some(AllergyStatus::Resolved) => {
                Some(Section::Allergies)
            }
            RecordBody::Medication(m)
                if matches!(
                    m.status,
                    MedicationStatus::Active | MedicationStatus::OnHold
                ) =>
            {
                Some(Section::Medications)
            }
            RecordBody::Problem(p) if p.clinical_status.is_active() => Some(Section::Problems),
            RecordBody::Problem(_) => Some(Section::PastIllness),
            RecordBody::Immunization(i) if i.status == ImmunizationStatus::Completed => {
                Some(Section::Immunizations)
            }
            RecordBody::Procedure(p) if p.status == ProcedureStatus::Completed => {
                Some(Section::Procedures)
            }
            RecordBody::Observation(o) => {
                let section = match o.category {
                    ObservationCategory::Laboratory => Some(Section::Results),
                    ObservationCategory::VitalSigns => Some(Section::VitalSigns),
                    ObservationCategory::Other => None,
                };
                section.filter(|s| {
                    let test = format!(
                        "{}|{}",
                        o.code.system().unwrap_or(""),
                        o.code.code().unwrap_or(o.code.display())
                    );
                    self.latest.insert((*s, test))
                })
            }
            _ => None,
        };
        if let Some(s) = section {
            self.sections.entry(s).or_default().push(r);
        }
    }

    /// The IPS document.
    pub fn finish(
        self,
        patient: &Patient,
        organization: &Organization,
        document_id: uuid::Uuid,
        composition_id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Value {
        let included: HashSet<RecordId> = self
            .sections
            .values()
            .flatten()
            .map(|r| r.meta.id)
            .collect();
        let org_url = format!("urn:uuid:{}", organization.id.as_uuid());
        let mut sections = Vec::new();
        let mut entries = Vec::new();
        for s in Section::ALL {
            let records = self.sections.get(&s).map(Vec::as_slice).unwrap_or(&[]);
            if records.is_empty() && !s.required() {
                continue;
            }
            let (code, display) = s.loinc();
            let mut section = json!({
                "title": s.title(),
                "code": { "coding": [{ "system": "http://loinc.org", "code": code, "display": display }] },
                "text": { "status": "generated", "div": narrative(s, records) },
            });
            if records.is_empty() {
                section["emptyReason"] = json!({
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                        "display": "Unavailable"
                    }]
                });
            } else {
                section["entry"] = records
                    .iter()
                    .map(|r| json!({ "reference": record_url(r.meta.id) }))
                    .collect();
            }
            sections.push(section);
            for r in records {
                entries.push(json!({
                    "fullUrl": record_url(r.meta.id),
                    "resource": record_resource(r, &included),
                }));
            }
        }
        let composition = json!({
            "resourceType": "Composition",
            "id": composition_id.to_string(),
            "status": "final",
            "type": { "coding": [{ "system": "http://loinc.org", "code": "60591-5",
                                   "display": "Patient summary Document" }] },
            "subject": { "reference": patient_url(patient.id) },
            "date": instant(at),
            "author": [{ "reference": org_url }],
            "title": format!("Patient summary of {} as of {}", patient.name.full(), at.format("%Y-%m-%d")),
            "confidentiality": "N",
            "section": sections,
        });
        let mut all = vec![
            json!({ "fullUrl": format!("urn:uuid:{composition_id}"), "resource": composition }),
            json!({ "fullUrl": patient_url(patient.id), "resource": patient_resource(patient) }),
            json!({ "fullUrl": org_url, "resource": {
                "resourceType": "Organization",
                "id": organization.id.as_uuid().to_string(),
                "name": organization.name.as_str(),
            }}),
        ];
        all.extend(entries);
        json!({
            "resourceType": "Bundle",
            "id": document_id.to_string(),
            "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{document_id}") },
            "type": "document",
            "timestamp": instant(at),
            "entry": all,
        })
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The section's narrative: one line per entry, in plain words.
fn narrative(s: Section, records: &[ClinicalRecord]) -> String {
    let mut div = String::from("<div xmlns=\"http://www.w3.org/1999/xhtml\">");
    if records.is_empty() {
        div.push_str("<p>");
        div.push_str(s.none_recorded());
        div.push_str("</p>");
    } else {
        div.push_str("<ul>");
        for r in records {
            div.push_str("<li>");
            div.push_str(&escape(&line(r)));
            div.push_str("</li>");
        }
        div.push_str("</ul>");
    }
    div.push_str("</div>");
    div
}

fn date(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| format!(" ({})", t.format("%Y-%m-%d")))
        .unwrap_or_default()
}

/// One entry as a person reads it.
pub(crate) fn line(r: &ClinicalRecord) -> String {
    match &r.body {
        RecordBody::Allergy(a) => {
            let mut l = a.substance.display().to_owned();
            if let Some(s) = a.clinical_status {
                l.push_str(&format!(", {}", s.code()));
            }
            if let Some(sev) = a.severity() {
                l.push_str(&format!(", {} reaction", sev.code()));
            }
            l
        }
        RecordBody::Medication(m) => {
            let mut l = m.medication.display().to_owned();
            if let Some(d) = &m.dosage {
                l.push_str(&format!(": {d}"));
            }
            l + &date(m.authored_on)
        }
        RecordBody::Problem(p) => p.code.display().to_owned() + &date(p.onset),
        RecordBody::Immunization(i) => i.vaccine.display().to_owned() + &date(i.occurred_at),
        RecordBody::Procedure(p) => p.code.display().to_owned() + &date(p.performed.start),
        RecordBody::Observation(o) => {
            let value = o.value.as_ref().map(|v| v.text()).unwrap_or_default();
            let parts: Vec<String> = o
                .components
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| format!("{} {}", c.code.display(), v.text()))
                })
                .collect();
            let value = if parts.is_empty() {
                value
            } else {
                parts.join(", ")
            };
            format!("{}: {value}", o.code.display()) + &date(o.effective_at)
        }
        other => concept_text(other),
    }
}

fn concept_text(body: &RecordBody) -> String {
    match body {
        RecordBody::Encounter(e) => e
            .visit_type
            .as_ref()
            .map_or_else(|| "Visit".to_owned(), |t| t.display().to_owned()),
        RecordBody::DiagnosticReport(d) => d.code.display().to_owned(),
        RecordBody::ClinicalNote(n) => n.title.clone(),
        _ => String::new(),
    }
}

/// Reads a chart export through an [`IpsBuilder`] and answers the IPS document.
///
/// # Errors
/// The export's, when the store fails part-way.
pub async fn ips_document(
    mut export: ChartExport,
    document_id: uuid::Uuid,
    composition_id: uuid::Uuid,
) -> Result<Value, RecordsError> {
    let mut builder = IpsBuilder::default();
    while let Some(batch) = export.next_batch().await? {
        for r in batch {
            builder.add(r);
        }
    }
    Ok(builder.finish(
        export.patient(),
        export.organization(),
        document_id,
        composition_id,
        export.generated_at(),
    ))
}
