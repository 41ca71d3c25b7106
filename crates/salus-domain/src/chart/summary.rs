//! A chart's home page, and finding a chart: by its medical record number, or by name and
//! date of birth.

use super::*;

/// A record held for a clinician to release, and whose chart it is in.
#[derive(Debug, Clone)]
pub struct HeldRecord {
    pub record: ClinicalRecord,
    pub patient: Patient,
}

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
    /// What the actor may see of each kind (kinds it may not see are absent).
    pub counts: BTreeMap<RecordKind, u64>,
    /// The kinds of record the actor may see in this chart (a proxy: those granted).
    pub kinds: Vec<RecordKind>,
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
            kinds: RecordKind::ALL
                .iter()
                .copied()
                .filter(|k| Self::kind_allowed(actor, chart, *k, now))
                .collect(),
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
        let mut a = Audit::of(actor, Action::ViewChart, request_id);
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

    /// Staff: the charts of their organisation that a search by name and date of birth asks
    /// for, that the actor may see who they are (front desk, clinicians). Each chart listed
    /// is a read of who that patient is, written to their access history before anything is
    /// shown; a search that finds nothing is audited too.
    ///
    /// # Errors
    /// [`ReadError::NotFound`] for patients (staff get an empty list when nothing they may
    /// see matches); `AuditUnavailable` when the reads cannot be recorded.
    pub async fn search_charts(
        &self,
        actor: &Actor,
        search: &crate::patient::ChartSearch,
        request_id: Option<&str>,
    ) -> Result<Vec<Patient>, ReadError> {
        let mut a = Audit::of(actor, Action::ViewDemographics, request_id);
        let Actor::Staff { organization, .. } = actor else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let now = self.now();
        let found: Vec<Patient> = self
            .p
            .patients
            .born_on(*organization, search.birth_date, MAX_LIST)
            .await?
            .into_iter()
            .filter(|chart| search.matches(chart))
            .filter(|chart| {
                let target = Target::Chart {
                    patient: chart.id,
                    organization: chart.organization_id,
                };
                decide(actor, Action::ViewDemographics, target, now).is_allowed()
            })
            .collect();
        if found.is_empty() {
            self.audit(&a, Outcome::NotFound).await?;
        }
        for chart in &found {
            a.patient = Some(chart.id);
            self.audit(&a, Outcome::Allowed).await?;
        }
        Ok(found)
    }

    /// How many records of each kind came online in the actor's own chart (a patient's)
    /// after `since` — their previous sign-in — for the home page. Audited as a look at the
    /// chart.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn new_since(
        &self,
        actor: &Actor,
        since: DateTime<Utc>,
        request_id: Option<&str>,
    ) -> Result<BTreeMap<RecordKind, u64>, ReadError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: actor.own_chart(),
            kind: None,
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, None).await?;
        let now = self.now();
        let released_by = Self::released_by(actor, now);
        let before = self
            .p
            .records
            .count_by_kind(chart.id, released_by.map(|_| since))
            .await?;
        // Records online now that were not by `since` (a release is never taken back).
        let news = self
            .p
            .records
            .count_by_kind(chart.id, released_by)
            .await?
            .into_iter()
            .filter(|(k, _)| Self::kind_allowed(actor, chart, *k, now))
            .map(|(k, n)| (k, n.saturating_sub(before.get(&k).copied().unwrap_or(0))))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.audit(&a, Outcome::Allowed).await?;
        Ok(news)
    }

    /// Clinicians: the records held for release in every chart of their organisation, oldest
    /// filed first (at most [`MAX_LIST`]), each with its patient. Each chart listed is a look
    /// at that chart, in the patient's access history. Other staff get an empty list.
    ///
    /// # Errors
    /// [`ReadError::NotFound`] for patients; `AuditUnavailable` when the looks cannot be
    /// recorded.
    pub async fn held_for_release(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
    ) -> Result<Vec<HeldRecord>, ReadError> {
        let mut a = Audit::of(actor, Action::ViewChart, request_id);
        let Actor::Staff { organization, .. } = actor else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let now = self.now();
        let mut charts: BTreeMap<PatientId, Option<Patient>> = BTreeMap::new();
        let mut held = Vec::new();
        for record in self.p.records.held_in(*organization, MAX_LIST).await? {
            let id = record.meta.patient_id;
            if let std::collections::btree_map::Entry::Vacant(slot) = charts.entry(id) {
                let chart = self.p.patients.find(id).await?.filter(|p| {
                    let target = Target::Chart {
                        patient: p.id,
                        organization: p.organization_id,
                    };
                    decide(actor, Action::Release, target, now).is_allowed()
                });
                slot.insert(chart);
            }
            if let Some(Some(patient)) = charts.get(&id) {
                held.push(HeldRecord {
                    record,
                    patient: patient.clone(),
                });
            }
        }
        for id in charts
            .iter()
            .filter_map(|(id, chart)| chart.as_ref().map(|_| *id))
        {
            a.patient = Some(id);
            self.audit(&a, Outcome::Allowed).await?;
        }
        Ok(held)
    }
}
