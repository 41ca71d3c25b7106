//! Records online: the use cases that read and change a chart, each authorised by
//! [`crate::access::decide`] and each writing exactly one audit entry.
//!
//! **Invariant:** not yours = not found. A record or chart the actor may not see answers
//! [`ReadError::NotFound`], the same as a missing id, and the attempt is audited as denied.
//! **Invariant:** the audit entry is written before anything is answered; when it cannot be
//! written the use case fails with [`ReadError::AuditUnavailable`] and returns no data.

use crate::access::{Action, Actor, Decision, Target, decide};
use crate::account::{AccountRepository, Mailer, OutgoingEmail};
use crate::audit::{AccessEntry, AccessEvent, AccessLog, ActorRef, Outcome};
use crate::clock::Clock;
use crate::export::{ChartExport, EXPORT_ORDER, ExportFormat, ExportRequest};
use crate::ids::{IdGenerator, OrganizationId, PatientId, RecordId};
use crate::organization::OrganizationRepository;
use crate::patient::{Patient, PatientRepository};
use crate::record::{
    ClinicalRecord, Cursor, Page, RecordBody, RecordKind, RecordMeta, RecordQuery,
    RecordRepository, RecordSource, ReleaseState, SensitivityLabels,
};
use crate::repo::RepoError;
use crate::text::DisplayName;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a read (a list, a record, a chart's home, a chart by record number, the access
/// history) answered no data. The other use cases answer their own errors, each with only
/// what can happen to it: [`FileError`], [`ReleaseError`], [`ExportError`].
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Missing, or not the actor's to see (one answer for both).
    #[error("not found")]
    NotFound,
    /// The actor's account is not connected to a chart yet.
    #[error("Your account is not connected to a medical record yet.")]
    NoChart,
    /// The audit entry could not be written, so nothing is answered.
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Something the actor may see, and the sensitivity notice to show first, if any.
#[derive(Debug, Clone)]
pub struct Shown<T> {
    pub item: T,
    pub notice: Option<SensitivityLabels>,
}

mod export;
mod filing;
mod history;
mod list;
mod results;
mod summary;
#[cfg(test)]
mod tests;
mod view;

pub use export::ExportError;
pub use filing::{
    FileError, FilingOutcome, InputError, LabResultInput, NewRecord, NewRecordInput, RecordField,
    ReleaseError, typed_number,
};
pub use list::{FilterError, ListFilter, ListRequest, MAX_SEARCH_CHARS};
pub use results::{LATEST_SCAN, LatestResults, ResultGroup};
pub use summary::{ChartSummary, HeldRecord};
pub use view::RecordView;

/// What the records use cases need.
#[derive(Clone)]
pub struct RecordsPorts {
    pub records: Arc<dyn RecordRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub organizations: Arc<dyn OrganizationRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub log: Arc<dyn AccessLog>,
    pub mailer: Arc<dyn Mailer>,
    /// A patient's grants, written into their own export as FHIR `Consent` resources.
    pub grants: Arc<dyn crate::consent::GrantRepository>,
    /// A patient's appointments, written into exports that may see them as FHIR
    /// `Appointment` resources.
    pub appointments: Arc<dyn crate::scheduling::SchedulingRepository>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// The portal's public address, for links in emails (no trailing slash).
    pub public_url: String,
}

impl std::fmt::Debug for RecordsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsPorts").finish_non_exhaustive()
    }
}

/// The records use cases.
#[derive(Clone)]
pub struct RecordsService {
    p: RecordsPorts,
    /// Charts never change organisation: each chart's, once read, so that the reads of a
    /// chart (every list page) need no extra query for it.
    orgs: Arc<std::sync::Mutex<std::collections::HashMap<PatientId, OrganizationId>>>,
    /// Each organisation's time zone, once read (set when it is created).
    zones: Arc<std::sync::Mutex<std::collections::HashMap<OrganizationId, chrono_tz::Tz>>>,
}

/// A chart as access decisions need it.
#[derive(Debug, Clone, Copy)]
struct ChartRef {
    id: PatientId,
    organization_id: OrganizationId,
}

impl std::fmt::Debug for RecordsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsService").finish_non_exhaustive()
    }
}

/// Largest page of a list.
pub const MAX_LIST: u32 = 100;

/// What one request does, for its audit entry.
struct Audit<'a> {
    actor: &'a Actor,
    action: Action,
    export: Option<ExportFormat>,
    patient: Option<PatientId>,
    kind: Option<RecordKind>,
    record: Option<RecordId>,
    request_id: Option<&'a str>,
}

impl<'a> Audit<'a> {
    /// The audit entry of `action` by `actor`, about no chart, kind or record yet.
    fn of(actor: &'a Actor, action: Action, request_id: Option<&'a str>) -> Self {
        Self {
            actor,
            action,
            export: None,
            patient: None,
            kind: None,
            record: None,
            request_id,
        }
    }
}

impl RecordsService {
    pub fn new(ports: RecordsPorts) -> Self {
        Self {
            p: ports,
            orgs: Arc::default(),
            zones: Arc::default(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.p.clock.now()
    }

    async fn audit(&self, a: &Audit<'_>, outcome: Outcome) -> Result<(), ReadError> {
        self.p
            .log
            .record(AccessEvent {
                at: self.now(),
                actor: ActorRef::from(a.actor),
                patient: a.patient,
                action: a.action,
                step: None,
                export: a.export,
                record_kind: a.kind,
                record: a.record,
                outcome,
                request_id: a.request_id.map(str::to_owned),
            })
            .await
            .map_err(|_| ReadError::AuditUnavailable)
    }

    /// Audits a refusal and answers "not found".
    async fn refuse<T>(&self, a: &Audit<'_>, outcome: Outcome) -> Result<T, ReadError> {
        self.audit(a, outcome).await?;
        Err(ReadError::NotFound)
    }

    /// The chart an actor asks about: their own when `patient` is `None`.
    async fn find_chart(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
    ) -> Result<Option<ChartRef>, ReadError> {
        let Some(id) = patient.or(actor.own_chart()) else {
            return Err(ReadError::NoChart);
        };
        let lock = || {
            self.orgs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(org) = lock().get(&id) {
            return Ok(Some(ChartRef {
                id,
                organization_id: *org,
            }));
        }
        let Some(chart) = self.p.patients.find(id).await? else {
            return Ok(None);
        };
        let mut known = lock();
        if known.len() >= 100_000 {
            known.clear();
        }
        known.insert(chart.id, chart.organization_id);
        Ok(Some(ChartRef {
            id: chart.id,
            organization_id: chart.organization_id,
        }))
    }

    /// The chart `patient` (the actor's own when `None`) if the actor may do `a.action` on
    /// it (on `a.kind` of it, when set); otherwise the refusal, audited. Sets `a.patient`.
    async fn authorised_chart(
        &self,
        a: &mut Audit<'_>,
        patient: Option<PatientId>,
    ) -> Result<ChartRef, ReadError> {
        let Some(chart) = self.find_chart(a.actor, patient).await? else {
            return self.refuse(a, Outcome::NotFound).await;
        };
        a.patient = Some(chart.id);
        let target = match a.kind {
            Some(kind) => Target::Kind {
                patient: chart.id,
                organization: chart.organization_id,
                kind,
            },
            None => Target::Chart {
                patient: chart.id,
                organization: chart.organization_id,
            },
        };
        if decide(a.actor, a.action, target, self.now()) == Decision::Deny {
            return self.refuse(a, Outcome::Denied).await;
        }
        Ok(chart)
    }

    /// What the actor may see at `now`: released records only, unless a clinician.
    fn released_by(actor: &Actor, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match actor {
            Actor::Staff { .. } => None,
            Actor::Patient { .. } | Actor::Proxy { .. } | Actor::ShareLink { .. } => Some(now),
        }
    }

    fn shown(
        actor: &Actor,
        record: ClinicalRecord,
        now: DateTime<Utc>,
    ) -> Option<Shown<ClinicalRecord>> {
        let kind = record.kind();
        match decide(
            actor,
            Action::Read,
            Target::Record {
                meta: &record.meta,
                kind,
            },
            now,
        ) {
            Decision::Allow => Some(Shown {
                item: record,
                notice: None,
            }),
            Decision::AllowWithNotice(labels) => Some(Shown {
                item: record,
                notice: Some(labels),
            }),
            Decision::Deny => None,
        }
    }

    /// Fills a page with records the actor may see, reading further pages when the decision
    /// hides some (a proxy without a label), up to a bound.
    async fn visible_page(
        &self,
        actor: &Actor,
        patient: PatientId,
        kind: RecordKind,
        query: &RecordQuery,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<Shown<ClinicalRecord>>, ReadError> {
        let now = self.now();
        let limit = limit.clamp(1, MAX_LIST);
        let mut items = Vec::new();
        let mut cursor = after;
        for _ in 0..5 {
            let page = self
                .p
                .records
                .list_for_patient(patient, kind, query, cursor, limit)
                .await?;
            let more_pages = page.next.is_some();
            let n = page.items.len();
            for (i, r) in page.items.into_iter().enumerate() {
                cursor = Some(Cursor {
                    sort_time: r.sort_time(),
                    id: r.meta.id,
                });
                items.extend(Self::shown(actor, r, now));
                if items.len() == limit as usize {
                    let more = i + 1 < n || more_pages;
                    return Ok(Page {
                        items,
                        next: cursor.filter(|_| more),
                    });
                }
            }
            if !more_pages {
                return Ok(Page { items, next: None });
            }
        }
        Ok(Page {
            items,
            next: cursor,
        })
    }

    /// The first `n` records of a kind matching `statuses`, when the actor may see the kind.
    async fn section(
        &self,
        actor: &Actor,
        chart: ChartRef,
        kind: RecordKind,
        query: RecordQuery,
        n: u32,
    ) -> Result<Vec<Shown<ClinicalRecord>>, ReadError> {
        if !Self::kind_allowed(actor, chart, kind, self.now()) {
            return Ok(Vec::new());
        }
        Ok(self
            .visible_page(actor, chart.id, kind, &query, None, n)
            .await?
            .items)
    }

    fn kind_allowed(actor: &Actor, chart: ChartRef, kind: RecordKind, now: DateTime<Utc>) -> bool {
        decide(
            actor,
            Action::ViewChart,
            Target::Kind {
                patient: chart.id,
                organization: chart.organization_id,
                kind,
            },
            now,
        )
        .is_allowed()
    }

    async fn organization(
        &self,
        id: OrganizationId,
    ) -> Result<Option<crate::organization::Organization>, ReadError> {
        Ok(self.p.organizations.find(id).await?)
    }

    /// The time zone the actor's times are shown in: that of the organisation whose chart
    /// they read (a patient's clinic) or that they work for. UTC for an actor with neither.
    ///
    /// # Errors
    /// `Repo` when storage fails.
    pub async fn time_zone(&self, actor: &Actor) -> Result<chrono_tz::Tz, ReadError> {
        let org = match actor {
            Actor::Staff { organization, .. } => Some(*organization),
            _ => match self.find_chart(actor, None).await {
                Ok(chart) => chart.map(|c| c.organization_id),
                Err(ReadError::NoChart) => None,
                Err(e) => return Err(e),
            },
        };
        let Some(org) = org else {
            return Ok(chrono_tz::Tz::UTC);
        };
        let lock = || {
            self.zones
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(tz) = lock().get(&org) {
            return Ok(*tz);
        }
        let tz = self
            .organization(org)
            .await?
            .map_or(chrono_tz::Tz::UTC, |o| o.time_zone);
        lock().insert(org, tz);
        Ok(tz)
    }
}

/// A records service whose ports are mocks with no expectations: any use fails the test.
/// For adapter tests that never reach the records use cases.
#[cfg(any(test, feature = "mocks"))]
pub fn records_without_expectations() -> RecordsService {
    #[derive(Debug)]
    struct NilIds;
    impl IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    RecordsService::new(RecordsPorts {
        appointments: Arc::new(crate::scheduling::MockSchedulingRepository::new()),
        records: Arc::new(crate::record::MockRecordRepository::new()),
        patients: Arc::new(crate::patient::MockPatientRepository::new()),
        organizations: Arc::new(crate::organization::MockOrganizationRepository::new()),
        accounts: Arc::new(crate::account::MockAccountRepository::new()),
        log: Arc::new(crate::audit::MockAccessLog::new()),
        mailer: Arc::new(crate::account::MockMailer::new()),
        grants: Arc::new(crate::consent::MockGrantRepository::new()),
        clock: Arc::new(crate::clock::FixedClock::new(DateTime::<Utc>::UNIX_EPOCH)),
        ids: Arc::new(NilIds),
        public_url: String::new(),
    })
}
