//! [`PatientRepository`] on sea-orm.

use crate::convert::patient_from_row;
use crate::entity::patient;
use crate::{Store, repo_err};
use chrono::NaiveDate;
use salus_domain::patient::{Patient, PatientRepository};
use salus_domain::text::Mrn;
use salus_domain::{OrganizationId, PatientId, RepoError};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

#[async_trait::async_trait]
impl PatientRepository for Store {
    async fn find(&self, id: PatientId) -> Result<Option<Patient>, RepoError> {
        patient::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(patient_from_row)
            .transpose()
    }

    async fn find_by_mrn(
        &self,
        organization: OrganizationId,
        mrn: &Mrn,
    ) -> Result<Option<Patient>, RepoError> {
        patient::Entity::find()
            .filter(patient::Column::OrganizationId.eq(organization.as_uuid()))
            .filter(patient::Column::Mrn.eq(mrn.as_str()))
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(patient_from_row)
            .transpose()
    }

    async fn born_on(
        &self,
        organization: OrganizationId,
        birth_date: NaiveDate,
        limit: u32,
    ) -> Result<Vec<Patient>, RepoError> {
        patient::Entity::find()
            .filter(patient::Column::OrganizationId.eq(organization.as_uuid()))
            .filter(patient::Column::BirthDate.eq(birth_date))
            .order_by_asc(patient::Column::FamilyName)
            .order_by_asc(patient::Column::GivenName)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(patient_from_row)
            .collect()
    }

    async fn count(&self, organization: OrganizationId) -> Result<u64, RepoError> {
        patient::Entity::find()
            .filter(patient::Column::OrganizationId.eq(organization.as_uuid()))
            .count(&self.db)
            .await
            .map_err(repo_err)
    }
}
