//! The International Patient Summary: a FHIR `document` Bundle whose Composition carries
//! the IPS sections, each with a narrative a person can read and entries a system can use.
//!
//! What the summary holds is the domain's [`SummaryCollector`] (the PDF health summary uses
//! the same); this module adds the LOINC section codes, the narratives and the document.
//! The three sections IPS requires (allergies, medications, problems) are always present;
//! when the chart holds nothing for one, the section says so in words and carries an
//! `emptyReason`, rather than a made-up "no known allergies" entry: Salus cannot tell "none"
//! from "not recorded".

use crate::export::{instant, patient_resource, patient_url, record_resource, record_url};
use chrono::{DateTime, Utc};
use salus_domain::RecordId;
use salus_domain::RepoError;
use salus_domain::export::{ChartExport, SummaryCollector, SummarySection};
use salus_domain::organization::Organization;
use salus_domain::patient::Patient;
use salus_domain::record::{ClinicalRecord, RecordBody};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The LOINC code and display of each IPS section.
fn loinc(s: SummarySection) -> (&'static str, &'static str) {
    match s {
        SummarySection::Allergies => ("48765-2", "Allergies and adverse reactions Document"),
        SummarySection::Medications => ("10160-0", "History of Medication use Narrative"),
        SummarySection::Problems => ("11450-4", "Problem list - Reported"),
        SummarySection::Immunizations => ("11369-6", "History of Immunization Narrative"),
        SummarySection::Procedures => ("47519-4", "History of Procedures Document"),
        SummarySection::Results => (
            "30954-2",
            "Relevant diagnostic tests/laboratory data Narrative",
        ),
        SummarySection::VitalSigns => ("8716-3", "Vital signs"),
        SummarySection::PastProblems => ("11348-0", "History of Past illness Narrative"),
    }
}

/// Collects the summary's records (the domain's [`SummaryCollector`] decides which) and
/// writes them as an IPS document.
#[derive(Debug, Default)]
pub struct IpsBuilder {
    summary: SummaryCollector,
}

impl IpsBuilder {
    /// Offers one record; kept when the summary holds it.
    pub fn add(&mut self, r: ClinicalRecord) {
        self.summary.add(r);
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
        let summary = self.summary.into_sections();
        let included: HashSet<RecordId> = summary
            .iter()
            .flat_map(|(_, records)| records)
            .map(|r| r.meta.id)
            .collect();
        let org_url = format!("urn:uuid:{}", organization.id.as_uuid());
        let mut sections = Vec::new();
        let mut entries = Vec::new();
        for (s, records) in &summary {
            let (code, display) = loinc(*s);
            let mut section = json!({
                "title": s.title(),
                "code": { "coding": [{ "system": "http://loinc.org", "code": code, "display": display }] },
                "text": { "status": "generated", "div": narrative(*s, records) },
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
fn narrative(s: SummarySection, records: &[ClinicalRecord]) -> String {
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
) -> Result<Value, RepoError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use salus_domain::record::{
        Allergy, AllergyStatus, RecordMeta, RecordSource, ReleaseState, SensitivityLabels,
    };
    use salus_domain::text::Code;
    use salus_domain::{OrganizationId, PatientId};

    fn allergy(display: &str) -> ClinicalRecord {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        ClinicalRecord {
            meta: RecordMeta {
                id: RecordId::from_uuid(uuid::Uuid::from_u128(7)),
                patient_id: PatientId::from_uuid(uuid::Uuid::from_u128(1)),
                organization_id: OrganizationId::from_uuid(uuid::Uuid::from_u128(2)),
                encounter_id: Some(RecordId::from_uuid(uuid::Uuid::from_u128(99))),
                source: RecordSource::default(),
                source_identifier: None,
                sensitivity: SensitivityLabels::empty(),
                release: ReleaseState::Released { at },
                filed_at: at,
            },
            body: RecordBody::Allergy(Allergy {
                substance: Code::new(Some("http://snomed.info/sct"), Some("1"), display).unwrap(),
                categories: vec![],
                clinical_status: Some(AllergyStatus::Active),
                criticality: None,
                reactions: vec![],
                recorded: Some(at),
            }),
        }
    }

    #[test]
    fn narratives_escape_what_the_chart_says() {
        let div = narrative(
            SummarySection::Allergies,
            &[allergy("<b onclick=\"x\">Nuts</b> & 'seeds'")],
        );
        assert!(div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
        assert!(
            div.contains("&lt;b onclick=&quot;x&quot;&gt;Nuts&lt;/b&gt; &amp; &#39;seeds&#39;")
        );
        assert!(!div.contains("<b"));
        let empty = narrative(SummarySection::Medications, &[]);
        assert!(empty.contains("No current medications are recorded."));
    }

    #[test]
    fn a_summary_entry_points_only_inside_the_document() {
        // The allergy's visit is not part of a summary: its reference is left out.
        let r = allergy("Peanut");
        let included: HashSet<RecordId> = [r.meta.id].into();
        let resource = record_resource(&r, &included);
        assert!(resource.get("encounter").is_none());
        assert_eq!(
            resource["patient"]["reference"],
            patient_url(r.meta.patient_id)
        );
    }
}
