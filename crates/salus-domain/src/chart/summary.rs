//! A chart's home page, and opening a chart by its medical record number.

use super::*;

#[derive(Debug, Clone)]
pub struct ChartSummary {
    /// Whose chart it is.
    pub patient: Patient,
    /// For clinicians: records held for release.
    pub held: Vec<Shown<ClinicalRecord>>,
    pub recent_results: Vec<Shown<ClinicalRecord>>,
    pub active_medications: Vec<Shown<ClinicalRecord>>,
    pub active_problems: Vec<Shown<ClinicalRecord>>,
    pub allergies: Vec<Shown<ClinicalRecord>>,
    pub recent_visits: Vec<Shown<ClinicalRecord>>,
    /// The most recent visit, and how many records of each kind were filed with it or since.
    pub last_visit: Option<DateTime<Utc>>,
    pub new_since_last_visit: BTreeMap<RecordKind, u64>,
    /// What the actor may see of each kind.
    pub counts: BTreeMap<RecordKind, u64>,
}

impl RecordsService {
    /// The home page of a chart (the actor's own when `patient` is `None`).
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn summary(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<ChartSummary, ReadError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: patient.or(actor.own_chart()),
            kind: None,
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, patient).await?;
        let patient = self
            .p
            .patients
            .find(chart.id)
            .await?
            .ok_or(ReadError::NotFound)?;
        let now = self.now();
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        let released_by = Self::released_by(actor, now);
        let q = |statuses: Vec<&'static str>| RecordQuery {
            released_by,
            statuses,
            ..RecordQuery::default()
        };
        let held = if decide(actor, Action::Release, target, now).is_allowed() {
            let query = RecordQuery {
                held_only: true,
                ..RecordQuery::default()
            };
            let mut held = Vec::new();
            for kind in RecordKind::ALL.iter().copied() {
                held.extend(
                    self.visible_page(actor, chart.id, kind, &query, None, MAX_LIST)
                        .await?
                        .items,
                );
            }
            held
        } else {
            Vec::new()
        };
        let mut s = ChartSummary {
            held,
            recent_results: self
                .section(actor, chart, RecordKind::Observation, q(vec![]), 10)
                .await?,
            active_medications: self
                .section(actor, chart, RecordKind::Medication, q(vec!["active"]), 50)
                .await?,
            active_problems: self
                .section(
                    actor,
                    chart,
                    RecordKind::Problem,
                    q(vec!["active", "recurrence", "relapse"]),
                    50,
                )
                .await?,
            allergies: self
                .section(actor, chart, RecordKind::Allergy, q(vec!["active"]), 50)
                .await?,
            recent_visits: self
                .section(actor, chart, RecordKind::Encounter, q(vec![]), 5)
                .await?,
            last_visit: None,
            new_since_last_visit: BTreeMap::new(),
            counts: BTreeMap::new(),
            patient,
        };
        if let Some(last) = s.recent_visits.first() {
            let since = last.item.sort_time();
            s.last_visit = Some(since);
            for kind in RecordKind::ALL.iter().copied() {
                let query = RecordQuery {
                    from: Some(since),
                    ..q(vec![])
                };
                let n = self
                    .section(actor, chart, kind, query, MAX_LIST)
                    .await?
                    .len() as u64;
                if n > 0 {
                    s.new_since_last_visit.insert(kind, n);
                }
            }
        }
        s.counts = self
            .p
            .records
            .count_by_kind(chart.id, released_by)
            .await?
            .into_iter()
            .filter(|(k, _)| Self::kind_allowed(actor, chart, *k, now))
            .collect();
        self.audit(&a, Outcome::Allowed).await?;
        Ok(s)
    }

    /// Clinician: the chart with this medical record number in their organisation (to open
    /// it). The lookup is audited like any chart access (`view_chart`; not found and refused
    /// lookups too), so a search by record number shows in the access history.
    ///
    /// # Errors
    /// [`ReadError::NotFound`] for an unknown number or a role that may not read charts.
    pub async fn chart_by_mrn(
        &self,
        actor: &Actor,
        mrn: &crate::text::Mrn,
        request_id: Option<&str>,
    ) -> Result<Patient, ReadError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: None,
            kind: None,
            record: None,
            request_id,
        };
        let Actor::Staff { organization, .. } = actor else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let Some(chart) = self.p.patients.find_by_mrn(*organization, mrn).await? else {
            return self.refuse(&a, Outcome::NotFound).await;
        };
        a.patient = Some(chart.id);
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if decide(actor, Action::ViewChart, target, self.now()) == Decision::Deny {
            return self.refuse(&a, Outcome::Denied).await;
        }
        self.audit(&a, Outcome::Allowed).await?;
        Ok(chart)
    }
}
