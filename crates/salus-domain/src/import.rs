//! Bringing clinical data from outside (an EHR, a FHIR bundle) into an organisation's charts.
//!
//! An adapter (the FHIR mapper) turns outside data into an [`ImportDraft`]; the
//! [`ImportService`] applies the organisation's release policy and hands a complete
//! [`ImportBatch`] to the [`ImportRepository`], which stores it in one transaction.
//!
//! **Invariant:** importing the same data twice stores nothing the second time: every
//! imported entity is keyed by (organisation, source identifier).

use crate::billing::Statement;
use crate::clock::Clock;
use crate::ids::{OrganizationId, PatientId, RecordId};
use crate::organization::OrganizationRepository;
use crate::patient::Patient;
use crate::providers::{Practitioner, ProviderOrganization};
use crate::record::{
    ClinicalRecord, RecordBody, RecordKind, RecordMeta, RecordSource, SensitivityLabels,
};
use crate::repo::RepoError;
use crate::text::SourceIdentifier;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A record as an adapter read it, before the organisation's release policy applies.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDraft {
    pub id: RecordId,
    pub patient_id: PatientId,
    pub encounter_id: Option<RecordId>,
    pub source: RecordSource,
    pub source_identifier: SourceIdentifier,
    pub sensitivity: SensitivityLabels,
    pub body: RecordBody,
}

/// Everything read from one source document, for one organisation.
#[derive(Debug, Clone, Default)]
pub struct ImportDraft {
    pub patients: Vec<Patient>,
    pub practitioners: Vec<Practitioner>,
    pub provider_organizations: Vec<ProviderOrganization>,
    pub records: Vec<RecordDraft>,
    /// Statements of adjudicated claims (bill pay), keyed by (organisation, number).
    pub statements: Vec<Statement>,
}

impl ImportDraft {
    /// How many entities of each kind the draft holds.
    pub fn counts(&self) -> ImportCounts {
        let mut c = ImportCounts {
            patients: self.patients.len() as u64,
            practitioners: self.practitioners.len() as u64,
            provider_organizations: self.provider_organizations.len() as u64,
            records: BTreeMap::new(),
            statements: self.statements.len() as u64,
        };
        for r in &self.records {
            *c.records.entry(r.body.kind()).or_default() += 1;
        }
        c
    }
}

/// A draft with release states decided: ready to store.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub organization_id: OrganizationId,
    pub patients: Vec<Patient>,
    pub practitioners: Vec<Practitioner>,
    pub provider_organizations: Vec<ProviderOrganization>,
    pub records: Vec<ClinicalRecord>,
    pub statements: Vec<Statement>,
}

impl ImportBatch {
    /// Points references at the ids already stored for the same source identifiers, so a
    /// partly known batch links its new records to the existing ones.
    pub fn remap(
        &mut self,
        patients: &BTreeMap<PatientId, PatientId>,
        records: &BTreeMap<RecordId, RecordId>,
    ) {
        for p in &mut self.patients {
            if let Some(id) = patients.get(&p.id) {
                p.id = *id;
            }
        }
        for r in &mut self.records {
            if let Some(id) = records.get(&r.meta.id) {
                r.meta.id = *id;
            }
            if let Some(id) = patients.get(&r.meta.patient_id) {
                r.meta.patient_id = *id;
            }
            if let Some(enc) = r.meta.encounter_id.and_then(|e| records.get(&e)) {
                r.meta.encounter_id = Some(*enc);
            }
            r.body.remap_records(records);
        }
        for s in &mut self.statements {
            if let Some(id) = patients.get(&s.patient) {
                s.patient = *id;
            }
        }
    }
}

/// Counts per imported kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub patients: u64,
    pub practitioners: u64,
    pub provider_organizations: u64,
    pub records: BTreeMap<RecordKind, u64>,
    pub statements: u64,
}

impl ImportCounts {
    pub fn total(&self) -> u64 {
        self.patients
            + self.practitioners
            + self.provider_organizations
            + self.records.values().sum::<u64>()
            + self.statements
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Stored by this import.
    pub created: ImportCounts,
    /// Already stored by an earlier import of the same source identifiers; left as they were.
    pub already_present: ImportCounts,
}

/// Stores import batches.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait ImportRepository: Send + Sync {
    /// Stores every entity of the batch whose source identifier is not stored yet, with
    /// references remapped to existing ids ([`ImportBatch::remap`]). All or nothing.
    ///
    /// # Errors
    /// `Conflict` when a constraint refuses the batch (nothing is stored);
    /// `Unavailable` when the store fails (nothing is stored).
    async fn import(&self, batch: ImportBatch) -> Result<ImportOutcome, RepoError>;
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("organisation not found")]
    OrganizationNotFound,
    #[error("a patient in the import belongs to another organisation")]
    WrongOrganization,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The import use case: policy first, then one atomic write.
#[derive(Clone)]
pub struct ImportService {
    organizations: Arc<dyn OrganizationRepository>,
    store: Arc<dyn ImportRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ImportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportService").finish_non_exhaustive()
    }
}

impl ImportService {
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        store: Arc<dyn ImportRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            organizations,
            store,
            clock,
        }
    }

    /// Files the draft's records into `organization` under its release policy.
    ///
    /// # Errors
    /// [`ImportError::OrganizationNotFound`] for an unknown organisation,
    /// [`ImportError::WrongOrganization`] when the draft names another one,
    /// [`ImportError::Repo`] when storage refuses or fails (nothing is stored).
    pub async fn import(
        &self,
        organization: OrganizationId,
        draft: ImportDraft,
    ) -> Result<ImportOutcome, ImportError> {
        let org = self
            .organizations
            .find(organization)
            .await?
            .ok_or(ImportError::OrganizationNotFound)?;
        let foreign = draft.patients.iter().any(|p| p.organization_id != org.id)
            || draft
                .practitioners
                .iter()
                .any(|p| p.organization_id != org.id)
            || draft
                .provider_organizations
                .iter()
                .any(|p| p.organization_id != org.id)
            || draft.statements.iter().any(|s| s.organization != org.id);
        if foreign {
            return Err(ImportError::WrongOrganization);
        }
        let now = self.clock.now();
        let records = draft
            .records
            .into_iter()
            .map(|d| {
                let rule = org.release_policy.rule_for(d.body.kind(), d.sensitivity);
                ClinicalRecord {
                    meta: RecordMeta {
                        id: d.id,
                        patient_id: d.patient_id,
                        organization_id: org.id,
                        encounter_id: d.encounter_id,
                        source: d.source,
                        source_identifier: Some(d.source_identifier),
                        sensitivity: d.sensitivity,
                        release: rule.initial_state(now),
                        filed_at: now,
                    },
                    body: d.body,
                }
            })
            .collect();
        let batch = ImportBatch {
            organization_id: org.id,
            patients: draft.patients,
            practitioners: draft.practitioners,
            provider_organizations: draft.provider_organizations,
            records,
            statements: draft.statements,
        };
        Ok(self.store.import(batch).await?)
    }
}
