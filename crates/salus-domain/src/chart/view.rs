//! One record with what gives it meaning.

use super::*;

#[derive(Debug, Clone)]
pub struct RecordView {
    pub record: Shown<ClinicalRecord>,
    /// For a visit: its results, notes, diagnoses ... (oldest first). For a report: its
    /// results. For a result: the report it belongs to.
    pub related: Vec<Shown<ClinicalRecord>>,
    /// For a result: the same test over time, oldest first (this one included).
    pub trend: Vec<ClinicalRecord>,
}

impl RecordsService {
    /// One record, with what gives it meaning (a visit's records, a report's results, a
    /// result's report and trend).
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn view(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<RecordView, ReadError> {
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
}
