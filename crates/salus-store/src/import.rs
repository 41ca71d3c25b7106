//! [`ImportRepository`] on sea-orm: one transaction, idempotent on source identifiers.

use crate::convert::{patient_to_row, practitioner_to_row, provider_org_to_row, record_to_row};
use crate::entity::{clinical_record, patient, practitioner, provider_organization};
use crate::{Store, repo_err};
use salus_domain::import::{ImportBatch, ImportCounts, ImportOutcome, ImportRepository};
use salus_domain::record::RecordKind;
use salus_domain::{PatientId, RecordId, RepoError};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows per multi-row INSERT and identifiers per `IN (...)` lookup: well under SQLite's and
/// PostgreSQL's bind-parameter limits for the widest table.
const CHUNK: usize = 400;

/// Which of `identifiers` the organisation already has in the table, and their ids.
async fn existing<E>(
    txn: &DatabaseTransaction,
    org: Uuid,
    org_col: E::Column,
    source_col: E::Column,
    id_col: E::Column,
    identifiers: Vec<String>,
) -> Result<HashMap<String, Uuid>, RepoError>
where
    E: EntityTrait,
{
    let mut found = HashMap::new();
    for chunk in identifiers.chunks(CHUNK) {
        let rows: Vec<(Option<String>, Uuid)> = E::find()
            .select_only()
            .column(source_col)
            .column(id_col)
            .filter(org_col.eq(org))
            .filter(source_col.is_in(chunk.to_vec()))
            .into_tuple()
            .all(txn)
            .await
            .map_err(repo_err)?;
        found.extend(rows.into_iter().filter_map(|(s, id)| s.map(|s| (s, id))));
    }
    Ok(found)
}

async fn insert_chunks<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), RepoError>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(txn)
            .await
            .map_err(repo_err)?;
    }
    Ok(())
}

fn source_ids<'a>(ids: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    ids.flatten().map(str::to_owned).collect()
}

#[async_trait::async_trait]
impl ImportRepository for Store {
    async fn import(&self, mut batch: ImportBatch) -> Result<ImportOutcome, RepoError> {
        let org = batch.organization_id.as_uuid();
        let txn = self.db.begin().await.map_err(repo_err)?;
        let mut outcome = ImportOutcome::default();

        // Patients: find the ones already stored, map draft ids onto theirs.
        let known_patients = existing::<patient::Entity>(
            &txn,
            org,
            patient::Column::OrganizationId,
            patient::Column::SourceIdentifier,
            patient::Column::Id,
            source_ids(
                batch
                    .patients
                    .iter()
                    .map(|p| p.source_identifier.as_ref().map(|s| s.as_str())),
            ),
        )
        .await?;
        let mut patient_map = BTreeMap::new();
        for p in &batch.patients {
            if let Some(id) = p
                .source_identifier
                .as_ref()
                .and_then(|s| known_patients.get(s.as_str()))
            {
                patient_map.insert(p.id, PatientId::from_uuid(*id));
            }
        }

        let known_records = existing::<clinical_record::Entity>(
            &txn,
            org,
            clinical_record::Column::OrganizationId,
            clinical_record::Column::SourceIdentifier,
            clinical_record::Column::Id,
            source_ids(
                batch
                    .records
                    .iter()
                    .map(|r| r.meta.source_identifier.as_ref().map(|s| s.as_str())),
            ),
        )
        .await?;
        let mut record_map = BTreeMap::new();
        for r in &batch.records {
            if let Some(id) = r
                .meta
                .source_identifier
                .as_ref()
                .and_then(|s| known_records.get(s.as_str()))
            {
                record_map.insert(r.meta.id, RecordId::from_uuid(*id));
            }
        }
        let known_practitioners = existing::<practitioner::Entity>(
            &txn,
            org,
            practitioner::Column::OrganizationId,
            practitioner::Column::SourceIdentifier,
            practitioner::Column::Id,
            source_ids(
                batch
                    .practitioners
                    .iter()
                    .map(|p| p.source_identifier.as_ref().map(|s| s.as_str())),
            ),
        )
        .await?;
        let known_providers = existing::<provider_organization::Entity>(
            &txn,
            org,
            provider_organization::Column::OrganizationId,
            provider_organization::Column::SourceIdentifier,
            provider_organization::Column::Id,
            source_ids(
                batch
                    .provider_organizations
                    .iter()
                    .map(|p| p.source_identifier.as_ref().map(|s| s.as_str())),
            ),
        )
        .await?;

        batch.remap(&patient_map, &record_map);

        let is_known = |s: Option<&salus_domain::text::SourceIdentifier>,
                        known: &HashMap<String, Uuid>| {
            s.is_some_and(|s| known.contains_key(s.as_str()))
        };

        let (old, new): (Vec<_>, Vec<_>) = batch
            .patients
            .iter()
            .partition(|p| is_known(p.source_identifier.as_ref(), &known_patients));
        outcome.already_present.patients = old.len() as u64;
        outcome.created.patients = new.len() as u64;
        insert_chunks(&txn, new.into_iter().map(patient_to_row).collect()).await?;

        let (old, new): (Vec<_>, Vec<_>) = batch
            .practitioners
            .iter()
            .partition(|p| is_known(p.source_identifier.as_ref(), &known_practitioners));
        outcome.already_present.practitioners = old.len() as u64;
        outcome.created.practitioners = new.len() as u64;
        insert_chunks(&txn, new.into_iter().map(practitioner_to_row).collect()).await?;

        let (old, new): (Vec<_>, Vec<_>) = batch
            .provider_organizations
            .iter()
            .partition(|p| is_known(p.source_identifier.as_ref(), &known_providers));
        outcome.already_present.provider_organizations = old.len() as u64;
        outcome.created.provider_organizations = new.len() as u64;
        insert_chunks(&txn, new.into_iter().map(provider_org_to_row).collect()).await?;

        // New records, visits first so that records pointing at a new visit find it.
        let mut new_records = Vec::new();
        for r in &batch.records {
            let counts: &mut ImportCounts =
                if is_known(r.meta.source_identifier.as_ref(), &known_records) {
                    &mut outcome.already_present
                } else {
                    new_records.push(r);
                    &mut outcome.created
                };
            *counts.records.entry(r.kind()).or_default() += 1;
        }
        new_records.sort_by_key(|r| r.kind() != RecordKind::Encounter);
        let links: Vec<_> = new_records
            .iter()
            .flat_map(|r| crate::records::report_links(r.meta.id.as_uuid(), &r.body))
            .collect();
        let rows = new_records
            .into_iter()
            .map(record_to_row)
            .collect::<Result<Vec<_>, _>>()?;
        insert_chunks(&txn, rows).await?;
        insert_chunks(&txn, links).await?;

        // Statements of adjudicated claims: those whose number the organisation has are
        // already present.
        if !batch.statements.is_empty() {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
            let numbers: Vec<String> = batch.statements.iter().map(|s| s.number.clone()).collect();
            let mut known = std::collections::HashSet::new();
            for chunk in numbers.chunks(500) {
                let found: Vec<String> = crate::entity::statement::Entity::find()
                    .select_only()
                    .column(crate::entity::statement::Column::Number)
                    .filter(crate::entity::statement::Column::OrganizationId.eq(org))
                    .filter(crate::entity::statement::Column::Number.is_in(chunk.to_vec()))
                    .into_tuple()
                    .all(&txn)
                    .await
                    .map_err(repo_err)?;
                known.extend(found);
            }
            for st in &batch.statements {
                if known.contains(&st.number) {
                    outcome.already_present.statements += 1;
                } else {
                    Self::insert_statement(&txn, st).await?;
                    outcome.created.statements += 1;
                }
            }
        }

        txn.commit().await.map_err(repo_err)?;
        Ok(outcome)
    }
}
