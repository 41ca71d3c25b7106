//! One record with what gives it meaning.

use super::*;
use crate::record::InContext;

#[derive(Debug, Clone)]
pub struct RecordView {
    pub record: Shown<ClinicalRecord>,
    /// For a visit: its results, notes, diagnoses ... (oldest first). For a report: its
    /// results. For a result: the report it belongs to.
    pub related: Vec<Shown<ClinicalRecord>>,
    /// For a result, when asked for: the same test over time, oldest first (this one
    /// included).
    pub trend: Vec<ClinicalRecord>,
}

impl RecordsService {
    /// One record, with what gives it meaning (a visit's records, a report's results, a
    /// result's report), read in one round trip. The trend is left out: see
    /// [`RecordsService::view_with_trend`].
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn view(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<RecordView, ReadError> {
        self.read_view(actor, id, request_id, Parts::Context).await
    }

    /// [`RecordsService::view`] and, for a result, the same test over time (at most
    /// [`MAX_LIST`] results, read from an index of the chart's results by code). One audit
    /// entry, as for the view alone.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn view_with_trend(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<RecordView, ReadError> {
        self.read_view(actor, id, request_id, Parts::ContextAndTrend)
            .await
    }

    /// The record and, for a result, the same test over time, without the record's context
    /// (`related` is empty): what a client that already shows the record asks for next. One
    /// audit entry, as for the view.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub async fn trend(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
    ) -> Result<RecordView, ReadError> {
        self.read_view(actor, id, request_id, Parts::Trend).await
    }

    async fn read_view(
        &self,
        actor: &Actor,
        id: RecordId,
        request_id: Option<&str>,
        parts: Parts,
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
        let now = self.now();
        let released_by = Self::released_by(actor, now);
        let found = match parts {
            Parts::Trend => self.p.records.find(id).await?.map(|record| InContext {
                record,
                related: Vec::new(),
            }),
            Parts::Context | Parts::ContextAndTrend => {
                self.p.records.find_in_context(id, released_by).await?
            }
        };
        let Some(found) = found else {
            return self.refuse(&a, Outcome::NotFound).await;
        };
        a.patient = Some(found.record.meta.patient_id);
        a.kind = Some(found.record.kind());
        let Some(shown) = Self::shown(actor, found.record, now) else {
            return self.refuse(&a, Outcome::Denied).await;
        };
        let patient = shown.item.meta.patient_id;
        // Each related record is decided on its own (a proxy may see a result and not a
        // note of the same visit); one of another chart is never shown.
        let related = found
            .related
            .into_iter()
            .filter(|r| r.meta.patient_id == patient)
            .filter_map(|r| Self::shown(actor, r, now))
            .collect();
        let mut trend = Vec::new();
        if parts != Parts::Context
            && let RecordBody::Observation(o) = &shown.item.body
            && let (Some(system), Some(code)) = (o.code.system(), o.code.code())
        {
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
        self.audit(&a, Outcome::Allowed).await?;
        Ok(RecordView {
            record: shown,
            related,
            trend,
        })
    }
}

/// What a view reads besides the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    Context,
    ContextAndTrend,
    Trend,
}
