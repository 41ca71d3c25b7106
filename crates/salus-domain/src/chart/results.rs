//! Results as a patient scans them: the latest value of each test, lab tests apart from vital
//! signs, lab tests grouped by the report (the order) they came in.

use super::*;
use crate::record::ObservationCategory;
use std::collections::HashMap;

/// Lab results that came in one report (a lab order), or that came in none.
#[derive(Debug, Clone)]
pub struct ResultGroup {
    /// The report, when the results came in one.
    pub report: Option<Shown<ClinicalRecord>>,
    /// The latest value of each test in it, in the report's order.
    pub results: Vec<Shown<ClinicalRecord>>,
}

/// The latest value of each test of a chart.
#[derive(Debug, Clone, Default)]
pub struct LatestResults {
    /// Lab tests, grouped by report (results in no report in a group of their own), the group
    /// with the newest result first.
    pub labs: Vec<ResultGroup>,
    /// Vital signs (blood pressure, weight, …), newest first.
    pub vitals: Vec<Shown<ClinicalRecord>>,
    /// Everything else (surveys, social history, …), newest first.
    pub other: Vec<Shown<ClinicalRecord>>,
    /// How many of the newest results were looked through ([`LATEST_SCAN`] at most): a test
    /// not done within them is in the full list only.
    pub scanned: usize,
}

/// How many of the newest results the latest view looks through.
pub const LATEST_SCAN: usize = 500;

/// What makes two results the same test: the code, or the name when there is no code.
fn test_key(r: &ClinicalRecord) -> String {
    match &r.body {
        RecordBody::Observation(o) => match (o.code.system(), o.code.code()) {
            (Some(s), Some(c)) => format!("{s}|{c}"),
            _ => format!("name|{}", o.code.display()),
        },
        _ => String::new(),
    }
}

impl RecordsService {
    /// The latest value of each test in a chart (the actor's own when `patient` is `None`),
    /// lab tests grouped by report and apart from vital signs. Audited like the list of
    /// results.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn latest_results(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<LatestResults, ReadError> {
        let mut a = Audit {
            actor,
            action: Action::ViewChart,
            export: None,
            patient: patient.or(actor.own_chart()),
            kind: Some(RecordKind::Observation),
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, patient).await?;
        let query = RecordQuery {
            released_by: Self::released_by(actor, self.now()),
            ..RecordQuery::default()
        };
        let results = self
            .newest(
                actor,
                chart.id,
                RecordKind::Observation,
                &query,
                LATEST_SCAN,
            )
            .await?;
        let scanned = results.len();
        let mut seen = std::collections::HashSet::new();
        let latest: Vec<Shown<ClinicalRecord>> = results
            .into_iter()
            .filter(|s| seen.insert(test_key(&s.item)))
            .collect();
        // Which report each lab result came in (the newest reports are enough: the results
        // shown are the newest too).
        let reports = if Self::kind_allowed(actor, chart, RecordKind::DiagnosticReport, self.now())
        {
            self.newest(
                actor,
                chart.id,
                RecordKind::DiagnosticReport,
                &query,
                LATEST_SCAN,
            )
            .await?
        } else {
            Vec::new()
        };
        let mut report_of: HashMap<RecordId, usize> = HashMap::new();
        for (i, rep) in reports.iter().enumerate() {
            if let RecordBody::DiagnosticReport(d) = &rep.item.body {
                for id in &d.results {
                    report_of.entry(*id).or_insert(i);
                }
            }
        }
        let mut out = LatestResults {
            scanned,
            ..LatestResults::default()
        };
        let mut by_report: BTreeMap<usize, Vec<Shown<ClinicalRecord>>> = BTreeMap::new();
        let mut loose = Vec::new();
        for s in latest {
            let RecordBody::Observation(o) = &s.item.body else {
                continue;
            };
            match o.category {
                ObservationCategory::VitalSigns => out.vitals.push(s),
                ObservationCategory::Other => out.other.push(s),
                ObservationCategory::Laboratory => match report_of.get(&s.item.meta.id) {
                    Some(i) => by_report.entry(*i).or_default().push(s),
                    None => loose.push(s),
                },
            }
        }
        for (i, mut results) in by_report {
            let report = reports[i].clone();
            if let RecordBody::DiagnosticReport(d) = &report.item.body {
                let order = |s: &Shown<ClinicalRecord>| {
                    d.results
                        .iter()
                        .position(|id| *id == s.item.meta.id)
                        .unwrap_or(usize::MAX)
                };
                results.sort_by_key(order);
            }
            out.labs.push(ResultGroup {
                report: Some(report),
                results,
            });
        }
        if !loose.is_empty() {
            out.labs.push(ResultGroup {
                report: None,
                results: loose,
            });
        }
        // The group with the newest result first, whether it came in a report or not.
        let newest = |g: &ResultGroup| g.results.iter().map(|s| s.item.sort_time()).max();
        out.labs.sort_by_key(|g| std::cmp::Reverse(newest(g)));
        self.audit(&a, Outcome::Allowed).await?;
        Ok(out)
    }

    /// Up to `max` of the newest records of a kind the actor may see, page by page.
    async fn newest(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: RecordKind,
        query: &RecordQuery,
        max: usize,
    ) -> Result<Vec<Shown<ClinicalRecord>>, ReadError> {
        let mut all = Vec::new();
        let mut after = None;
        while all.len() < max {
            let page = self
                .visible_page(actor, patient, kind, query, after, MAX_LIST)
                .await?;
            all.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        all.truncate(max);
        Ok(all)
    }
}
