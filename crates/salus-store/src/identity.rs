//! [`IdentityRepository`] on sea-orm.

use crate::entity::{account, activation_code, identity_request, identity_review};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::account::{
    ActivationCode, ClinicRequest, IdentityRepository, ReviewOutcome, TokenDigest, Waiting,
};
use salus_domain::{AccountId, OrganizationId, PatientId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use std::collections::HashMap;

#[async_trait::async_trait]
impl IdentityRepository for Store {
    async fn store_code(&self, c: &ActivationCode) -> Result<(), RepoError> {
        activation_code::Entity::insert(activation_code::ActiveModel {
            digest: Set(c.digest.0.to_vec()),
            patient_id: Set(c.patient.as_uuid()),
            issued_by: Set(c.issued_by.as_uuid()),
            issued_at: Set(c.issued_at),
            expires_at: Set(c.expires_at),
            used_at: Set(None),
            used_by: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn peek_code(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<PatientId>, RepoError> {
        let row = activation_code::Entity::find()
            .filter(activation_code::Column::Digest.eq(digest.0.to_vec()))
            .filter(activation_code::Column::UsedAt.is_null())
            .filter(activation_code::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(row.map(|r| PatientId::from_uuid(r.patient_id)))
    }

    async fn consume_code(
        &self,
        digest: &TokenDigest,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let done = activation_code::Entity::update_many()
            .col_expr(activation_code::Column::UsedAt, Expr::value(now))
            .col_expr(
                activation_code::Column::UsedBy,
                Expr::value(account.as_uuid()),
            )
            .filter(activation_code::Column::Digest.eq(digest.0.to_vec()))
            .filter(activation_code::Column::UsedAt.is_null())
            .filter(activation_code::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn link(&self, account: AccountId, patient: PatientId) -> Result<bool, RepoError> {
        let done = account::Entity::update_many()
            .col_expr(account::Column::PatientId, Expr::value(patient.as_uuid()))
            .filter(account::Column::Id.eq(account.as_uuid()))
            .filter(account::Column::PatientId.is_null())
            .exec(&self.db)
            .await;
        self.sessions.changed();
        let done = done.map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn queue(
        &self,
        organization: OrganizationId,
        limit: u32,
    ) -> Result<Vec<Waiting>, RepoError> {
        let decided = Query::select()
            .column(identity_review::Column::AccountId)
            .from(identity_review::Entity)
            .and_where(identity_review::Column::OrganizationId.eq(organization.as_uuid()))
            .to_owned();
        let asked_here = Query::select()
            .column(identity_request::Column::AccountId)
            .from(identity_request::Entity)
            .and_where(identity_request::Column::OrganizationId.eq(organization.as_uuid()))
            .to_owned();
        let asked_anyone = Query::select()
            .column(identity_request::Column::AccountId)
            .from(identity_request::Entity)
            .to_owned();
        let rows = account::Entity::find()
            .filter(account::Column::Role.eq("patient"))
            .filter(account::Column::State.eq("active"))
            .filter(account::Column::PatientId.is_null())
            .filter(account::Column::Id.not_in_subquery(decided))
            .filter(
                Condition::any()
                    .add(account::Column::Id.in_subquery(asked_here))
                    .add(account::Column::Id.not_in_subquery(asked_anyone)),
            )
            .order_by_asc(account::Column::CreatedAt)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        let asked: HashMap<_, _> = identity_request::Entity::find()
            .filter(identity_request::Column::AccountId.is_in(ids))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(|r| (r.account_id, r.requested_at))
            .collect();
        rows.into_iter()
            .map(|row| {
                let requested_at = asked.get(&row.id).copied();
                Ok(Waiting {
                    account: crate::accounts::account_from_row(row)?,
                    requested_at,
                })
            })
            .collect()
    }

    async fn request(
        &self,
        account: AccountId,
        organization: OrganizationId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        identity_request::Entity::delete_by_id(account.as_uuid())
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        identity_request::Entity::insert(identity_request::ActiveModel {
            account_id: Set(account.as_uuid()),
            organization_id: Set(organization.as_uuid()),
            requested_at: Set(at),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        identity_review::Entity::delete_many()
            .filter(identity_review::Column::AccountId.eq(account.as_uuid()))
            .filter(identity_review::Column::OrganizationId.eq(organization.as_uuid()))
            .filter(identity_review::Column::Outcome.eq("rejected"))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        txn.commit().await.map_err(repo_err)
    }

    async fn request_of(&self, account: AccountId) -> Result<Option<ClinicRequest>, RepoError> {
        let Some(asked) = identity_request::Entity::find_by_id(account.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
        else {
            return Ok(None);
        };
        let declined_at = identity_review::Entity::find()
            .filter(identity_review::Column::AccountId.eq(account.as_uuid()))
            .filter(identity_review::Column::OrganizationId.eq(asked.organization_id))
            .filter(identity_review::Column::Outcome.eq("rejected"))
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(|r| r.decided_at);
        Ok(Some(ClinicRequest {
            organization: OrganizationId::from_uuid(asked.organization_id),
            requested_at: asked.requested_at,
            declined_at,
        }))
    }

    async fn record_review(
        &self,
        account: AccountId,
        organization: OrganizationId,
        outcome: ReviewOutcome,
        by: AccountId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let (code, patient) = match outcome {
            ReviewOutcome::Confirmed { patient } => ("confirmed", Some(patient.as_uuid())),
            ReviewOutcome::Rejected => ("rejected", None),
        };
        identity_review::Entity::insert(identity_review::ActiveModel {
            account_id: Set(account.as_uuid()),
            organization_id: Set(organization.as_uuid()),
            outcome: Set(code.to_owned()),
            patient_id: Set(patient),
            decided_by: Set(by.as_uuid()),
            decided_at: Set(at),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }
}
