//! [`BillingRepository`] on sea-orm: statements and their lines, money as integer minor units
//! beside the statement's currency.

use crate::entity::{statement, statement_line};
use crate::{Store, repo_err};
use salus_domain::billing::{BillingRepository, Currency, LineItem, Money, Statement};
use salus_domain::{OrganizationId, PatientId, RepoError, StatementId};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

fn statement_from(
    r: statement::Model,
    lines: Vec<statement_line::Model>,
) -> Result<Statement, RepoError> {
    let currency =
        Currency::parse(&r.currency).map_err(|_| RepoError::Corrupt("statements.currency"))?;
    let money = |minor| Money::new(minor, currency);
    Ok(Statement {
        id: StatementId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        number: r.number,
        issued: r.issued,
        due: r.due,
        currency,
        items: lines
            .into_iter()
            .map(|l| LineItem {
                service_date: l.service_date,
                description: l.description,
                charge: money(l.charge_minor),
                insurance_paid: money(l.insurance_paid_minor),
                adjustments: money(l.adjustments_minor),
                patient_share: money(l.patient_share_minor),
            })
            .collect(),
    })
}

impl Store {
    async fn lines_of(&self, id: uuid::Uuid) -> Result<Vec<statement_line::Model>, RepoError> {
        statement_line::Entity::find()
            .filter(statement_line::Column::StatementId.eq(id))
            .order_by_asc(statement_line::Column::Position)
            .all(&self.db)
            .await
            .map_err(repo_err)
    }
}

#[async_trait::async_trait]
impl BillingRepository for Store {
    async fn create_statement(&self, s: &Statement) -> Result<(), RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        statement::Entity::insert(statement::ActiveModel {
            id: Set(s.id.as_uuid()),
            organization_id: Set(s.organization.as_uuid()),
            patient_id: Set(s.patient.as_uuid()),
            number: Set(s.number.trim().to_owned()),
            issued: Set(s.issued),
            due: Set(s.due),
            currency: Set(s.currency.code().to_owned()),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        let lines = s
            .items
            .iter()
            .enumerate()
            .map(|(i, l)| statement_line::ActiveModel {
                statement_id: Set(s.id.as_uuid()),
                position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                service_date: Set(l.service_date),
                description: Set(l.description.trim().to_owned()),
                charge_minor: Set(l.charge.minor()),
                insurance_paid_minor: Set(l.insurance_paid.minor()),
                adjustments_minor: Set(l.adjustments.minor()),
                patient_share_minor: Set(l.patient_share.minor()),
            });
        if !s.items.is_empty() {
            statement_line::Entity::insert_many(lines)
                .exec_without_returning(&txn)
                .await
                .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)
    }

    async fn statement(&self, id: StatementId) -> Result<Option<Statement>, RepoError> {
        let Some(r) = statement::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
        else {
            return Ok(None);
        };
        let lines = self.lines_of(r.id).await?;
        statement_from(r, lines).map(Some)
    }

    async fn statements_of(&self, patient: PatientId) -> Result<Vec<Statement>, RepoError> {
        let rows = statement::Entity::find()
            .filter(statement::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(statement::Column::Issued)
            .order_by_desc(statement::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let lines = self.lines_of(r.id).await?;
            out.push(statement_from(r, lines)?);
        }
        Ok(out)
    }
}
