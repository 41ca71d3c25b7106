//! [`TotpRepository`] on sea-orm.

use crate::entity::{recovery_code, totp_factor};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::account::{TokenDigest, TotpRecord, TotpRepository, TotpSecret};
use salus_domain::{AccountId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

#[async_trait::async_trait]
impl TotpRepository for Store {
    async fn get(&self, account: AccountId) -> Result<Option<TotpRecord>, RepoError> {
        let row = totp_factor::Entity::find_by_id(account.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(row.map(|r| TotpRecord {
            secret: TotpSecret::new(r.secret),
            confirmed_at: r.confirmed_at,
        }))
    }

    async fn put_pending(&self, account: AccountId, secret: &TotpSecret) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        let existing = totp_factor::Entity::find_by_id(account.as_uuid())
            .one(&txn)
            .await
            .map_err(repo_err)?;
        if existing.as_ref().is_some_and(|r| r.confirmed_at.is_some()) {
            return Err(RepoError::Conflict("second factor already confirmed"));
        }
        if existing.is_some() {
            totp_factor::Entity::delete_by_id(account.as_uuid())
                .exec(&txn)
                .await
                .map_err(repo_err)?;
        }
        totp_factor::Entity::insert(totp_factor::ActiveModel {
            account_id: Set(account.as_uuid()),
            secret: Set(secret.bytes().to_vec()),
            confirmed_at: Set(None),
            last_step: Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        txn.commit().await.map_err(repo_err)
    }

    async fn confirm(
        &self,
        account: AccountId,
        at: DateTime<Utc>,
        recovery: &[TokenDigest],
    ) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(at))
            .filter(totp_factor::Column::AccountId.eq(account.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::AccountId.eq(account.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        if !recovery.is_empty() {
            recovery_code::Entity::insert_many(recovery.iter().map(|d| {
                recovery_code::ActiveModel {
                    digest: Set(d.0.to_vec()),
                    account_id: Set(account.as_uuid()),
                    used_at: Set(None),
                }
            }))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)
    }

    async fn remove(&self, account: AccountId) -> Result<bool, RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::AccountId.eq(account.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        let gone = totp_factor::Entity::delete_by_id(account.as_uuid())
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        txn.commit().await.map_err(repo_err)?;
        Ok(gone.rows_affected == 1)
    }

    async fn use_step(&self, account: AccountId, step: u64) -> Result<bool, RepoError> {
        let step = i64::try_from(step).map_err(|_| RepoError::Conflict("step out of range"))?;
        // Only a later step than the last one used may pass: one conditional UPDATE.
        let done = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .filter(totp_factor::Column::AccountId.eq(account.as_uuid()))
            .filter(
                Condition::any()
                    .add(totp_factor::Column::LastStep.is_null())
                    .add(totp_factor::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        digest: &TokenDigest,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let done = recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(at))
            .filter(recovery_code::Column::Digest.eq(digest.0.to_vec()))
            .filter(recovery_code::Column::AccountId.eq(account.as_uuid()))
            .filter(recovery_code::Column::UsedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }
}
