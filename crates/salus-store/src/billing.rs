//! [`BillingRepository`] on sea-orm: statements and their lines, payments, refunds and
//! adjustments, money as integer minor units beside its currency. Every write that moves
//! money changes the account's version in its transaction; a payment or refund is recorded
//! only against the version its amount was checked on, and a client's key only once.

use crate::entity::{
    balance_adjustment, billing_account, billing_setting, payment, payment_plan, refund, statement,
    statement_line,
};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::billing::{
    Adjustment, BillingRepository, BillingSettings, Currency, DeclineReason, Ledger, LineItem,
    Money, Payment, PaymentState, Plan, PlanState, Recorded, Refund, Statement,
};
use salus_domain::{
    AccountId, AdjustmentId, OrganizationId, PatientId, PaymentId, PlanId, RefundId, RepoError,
    StatementId,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

fn currency(code: &str, column: &'static str) -> Result<Currency, RepoError> {
    Currency::parse(code).map_err(|_| RepoError::Corrupt(column))
}

/// A stored state: its code, the decline reason's, the reference and when it settled.
fn state_from(
    code: &str,
    reason: Option<&str>,
    reference: Option<String>,
    settled_at: Option<DateTime<Utc>>,
) -> Result<PaymentState, RepoError> {
    let at = || settled_at.ok_or(RepoError::Corrupt("payments.settled_at"));
    Ok(match code {
        "pending" => PaymentState::Pending,
        "succeeded" => PaymentState::Succeeded {
            at: at()?,
            reference: reference.unwrap_or_default(),
        },
        "declined" => PaymentState::Declined {
            at: at()?,
            reason: reason
                .and_then(DeclineReason::from_code)
                .ok_or(RepoError::Corrupt("payments.decline_reason"))?,
        },
        "failed" => PaymentState::Failed { at: at()? },
        _ => return Err(RepoError::Corrupt("payments.state")),
    })
}

/// The columns a state is stored in: code, decline reason, reference.
fn state_columns(state: &PaymentState) -> (&'static str, Option<&'static str>, Option<String>) {
    match state {
        PaymentState::Pending | PaymentState::Failed { .. } => (state.code(), None, None),
        PaymentState::Succeeded { reference, .. } => (state.code(), None, Some(reference.clone())),
        PaymentState::Declined { reason, .. } => (state.code(), Some(reason.code()), None),
    }
}

fn payment_from(r: payment::Model) -> Result<Payment, RepoError> {
    let c = currency(&r.currency, "payments.currency")?;
    Ok(Payment {
        id: PaymentId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        state: state_from(
            &r.state,
            r.decline_reason.as_deref(),
            r.reference,
            r.settled_at,
        )?,
        key: r.idem_key,
        amount: Money::new(r.amount_minor, c),
        created_at: r.created_at,
        made_by: r.made_by.map(AccountId::from_uuid),
    })
}

fn refund_from(r: refund::Model) -> Result<Refund, RepoError> {
    let c = currency(&r.currency, "refunds.currency")?;
    Ok(Refund {
        id: RefundId::from_uuid(r.id),
        payment: PaymentId::from_uuid(r.payment_id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        state: state_from(&r.state, None, r.reference, r.settled_at)?,
        key: r.idem_key,
        amount: Money::new(r.amount_minor, c),
        reason: r.reason,
        by: AccountId::from_uuid(r.made_by),
        created_at: r.created_at,
    })
}

fn adjustment_from(r: balance_adjustment::Model) -> Result<Adjustment, RepoError> {
    let c = currency(&r.currency, "balance_adjustments.currency")?;
    Ok(Adjustment {
        id: AdjustmentId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        amount: Money::new(r.amount_minor, c),
        reason: r.reason,
        by: AccountId::from_uuid(r.made_by),
        at: r.at,
    })
}

fn plan_from(r: payment_plan::Model) -> Result<Plan, RepoError> {
    let c = currency(&r.currency, "payment_plans.currency")?;
    let ended = || {
        r.ended_at
            .ok_or(RepoError::Corrupt("payment_plans.ended_at"))
    };
    let state = match r.state.as_str() {
        "active" => PlanState::Active,
        "completed" => PlanState::Completed { at: ended()? },
        "cancelled" => PlanState::Cancelled { at: ended()? },
        "failed" => PlanState::Failed {
            at: ended()?,
            instalment: r
                .failed_instalment
                .and_then(|n| u8::try_from(n).ok())
                .ok_or(RepoError::Corrupt("payment_plans.failed_instalment"))?,
        },
        _ => return Err(RepoError::Corrupt("payment_plans.state")),
    };
    Ok(Plan {
        id: PlanId::from_uuid(r.id),
        organization: OrganizationId::from_uuid(r.organization_id),
        patient: PatientId::from_uuid(r.patient_id),
        total: Money::new(r.total_minor, c),
        instalments: u8::try_from(r.instalments)
            .map_err(|_| RepoError::Corrupt("payment_plans.instalments"))?,
        starts: r.starts,
        card_token: r.card_token,
        created_at: r.created_at,
        made_by: r.made_by.map(AccountId::from_uuid),
        state,
    })
}

/// Moves the account's version on, whatever it was (a statement, an adjustment, a settled
/// payment).
async fn bump(txn: &DatabaseTransaction, patient: PatientId) -> Result<(), RepoError> {
    billing_account::Entity::insert(billing_account::ActiveModel {
        patient_id: Set(patient.as_uuid()),
        version: Set(1),
    })
    .on_conflict(
        OnConflict::column(billing_account::Column::PatientId)
            .value(
                billing_account::Column::Version,
                Expr::col((billing_account::Entity, billing_account::Column::Version)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .map_err(repo_err)?;
    Ok(())
}

/// Moves the account's version from `version` to the next; `false` when it was not at
/// `version` (someone moved it since it was read).
async fn advance(
    txn: &DatabaseTransaction,
    patient: PatientId,
    version: i64,
) -> Result<bool, RepoError> {
    let moved = if version == 0 {
        billing_account::Entity::insert(billing_account::ActiveModel {
            patient_id: Set(patient.as_uuid()),
            version: Set(1),
        })
        .on_conflict(
            OnConflict::column(billing_account::Column::PatientId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
    } else {
        billing_account::Entity::update_many()
            .col_expr(billing_account::Column::Version, Expr::value(version + 1))
            .filter(billing_account::Column::PatientId.eq(patient.as_uuid()))
            .filter(billing_account::Column::Version.eq(version))
            .exec(txn)
            .await
            .map(|r| r.rows_affected)
    };
    match moved {
        Ok(n) => Ok(n == 1),
        Err(sea_orm::DbErr::RecordNotInserted) => Ok(false),
        Err(e) => Err(repo_err(e)),
    }
}

/// Ends a recording transaction: committed when `recorded`, else rolled back.
async fn finish(txn: DatabaseTransaction, recorded: Recorded) -> Result<Recorded, RepoError> {
    if recorded == Recorded::Recorded {
        txn.commit().await.map_err(repo_err)?;
    } else {
        txn.rollback().await.map_err(repo_err)?;
    }
    Ok(recorded)
}

/// What an insert of a keyed row answered: recorded, or the key was taken.
fn keyed(result: Result<u64, sea_orm::DbErr>) -> Result<Recorded, RepoError> {
    match result.map_err(repo_err) {
        Ok(_) => Ok(Recorded::Recorded),
        Err(RepoError::Conflict(_)) => Ok(Recorded::KeyUsed),
        Err(e) => Err(e),
    }
}

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

    /// Writes a statement and its lines in `txn`, and moves its account's version on.
    pub(crate) async fn insert_statement(
        txn: &DatabaseTransaction,
        s: &Statement,
    ) -> Result<(), RepoError> {
        statement::Entity::insert(statement::ActiveModel {
            id: Set(s.id.as_uuid()),
            organization_id: Set(s.organization.as_uuid()),
            patient_id: Set(s.patient.as_uuid()),
            number: Set(s.number.trim().to_owned()),
            issued: Set(s.issued),
            due: Set(s.due),
            currency: Set(s.currency.code().to_owned()),
        })
        .exec_without_returning(txn)
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
                .exec_without_returning(txn)
                .await
                .map_err(repo_err)?;
        }
        bump(txn, s.patient).await
    }

    /// Settles a pending payment or refund row in one transaction with its account's version.
    async fn settle(
        txn: DatabaseTransaction,
        update: sea_orm::UpdateMany<impl EntityTrait>,
        patient: Option<PatientId>,
    ) -> Result<bool, RepoError> {
        let Some(patient) = patient else {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(false);
        };
        let done = update.exec(&txn).await.map_err(repo_err)?.rows_affected == 1;
        if done {
            bump(&txn, patient).await?;
            txn.commit().await.map_err(repo_err)?;
        } else {
            txn.rollback().await.map_err(repo_err)?;
        }
        Ok(done)
    }
}

#[async_trait::async_trait]
impl BillingRepository for Store {
    async fn create_statement(&self, s: &Statement) -> Result<(), RepoError> {
        self.create_statements(std::slice::from_ref(s)).await
    }

    async fn create_statements(&self, statements: &[Statement]) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        for s in statements {
            Self::insert_statement(&txn, s).await?;
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
        // Every line of the chart's statements in one read, in order, then dealt out.
        let mut lines: std::collections::HashMap<uuid::Uuid, Vec<statement_line::Model>> =
            std::collections::HashMap::new();
        for line in statement_line::Entity::find()
            .inner_join(statement::Entity)
            .filter(statement::Column::PatientId.eq(patient.as_uuid()))
            .order_by_asc(statement_line::Column::StatementId)
            .order_by_asc(statement_line::Column::Position)
            .all(&self.db)
            .await
            .map_err(repo_err)?
        {
            lines.entry(line.statement_id).or_default().push(line);
        }
        rows.into_iter()
            .map(|r| {
                let own = lines.remove(&r.id).unwrap_or_default();
                statement_from(r, own)
            })
            .collect()
    }

    async fn ledger(&self, patient: PatientId) -> Result<Ledger, RepoError> {
        let version = billing_account::Entity::find_by_id(patient.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map_or(0, |a| a.version);
        let statements = self.statements_of(patient).await?;
        let payments = payment::Entity::find()
            .filter(payment::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(payment::Column::CreatedAt)
            .order_by_desc(payment::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(payment_from)
            .collect::<Result<_, _>>()?;
        let refunds = refund::Entity::find()
            .filter(refund::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(refund::Column::CreatedAt)
            .order_by_desc(refund::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(refund_from)
            .collect::<Result<_, _>>()?;
        let adjustments = balance_adjustment::Entity::find()
            .filter(balance_adjustment::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(balance_adjustment::Column::At)
            .order_by_desc(balance_adjustment::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(adjustment_from)
            .collect::<Result<_, _>>()?;
        let plans = payment_plan::Entity::find()
            .filter(payment_plan::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(payment_plan::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(plan_from)
            .collect::<Result<_, _>>()?;
        Ok(Ledger {
            version,
            statements,
            payments,
            refunds,
            adjustments,
            plans,
        })
    }

    async fn record_payment(&self, p: &Payment, version: i64) -> Result<Recorded, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        if !advance(&txn, p.patient, version).await? {
            return finish(txn, Recorded::Stale).await;
        }
        let (state, reason, reference) = state_columns(&p.state);
        let inserted = payment::Entity::insert(payment::ActiveModel {
            id: Set(p.id.as_uuid()),
            organization_id: Set(p.organization.as_uuid()),
            patient_id: Set(p.patient.as_uuid()),
            idem_key: Set(p.key.clone()),
            amount_minor: Set(p.amount.minor()),
            currency: Set(p.amount.currency().code().to_owned()),
            state: Set(state.to_owned()),
            decline_reason: Set(reason.map(str::to_owned)),
            reference: Set(reference),
            created_at: Set(p.created_at),
            settled_at: Set(p.state.settled_at()),
            made_by: Set(p.made_by.map(|a| a.as_uuid())),
        })
        .exec_without_returning(&txn)
        .await;
        let recorded = keyed(inserted)?;
        finish(txn, recorded).await
    }

    async fn settle_payment(&self, id: PaymentId, state: &PaymentState) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        let patient = payment::Entity::find_by_id(id.as_uuid())
            .one(&txn)
            .await
            .map_err(repo_err)?
            .map(|p| PatientId::from_uuid(p.patient_id));
        let (code, reason, reference) = state_columns(state);
        let update = payment::Entity::update_many()
            .col_expr(payment::Column::State, Expr::value(code))
            .col_expr(payment::Column::DeclineReason, Expr::value(reason))
            .col_expr(payment::Column::Reference, Expr::value(reference))
            .col_expr(payment::Column::SettledAt, Expr::value(state.settled_at()))
            .filter(payment::Column::Id.eq(id.as_uuid()))
            .filter(payment::Column::State.eq("pending"));
        Self::settle(txn, update, patient).await
    }

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, RepoError> {
        payment::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(payment_from)
            .transpose()
    }

    async fn pending_payments(&self, before: DateTime<Utc>) -> Result<Vec<Payment>, RepoError> {
        payment::Entity::find()
            .filter(payment::Column::State.eq("pending"))
            .filter(payment::Column::CreatedAt.lte(before))
            .order_by_asc(payment::Column::CreatedAt)
            .limit(500)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(payment_from)
            .collect()
    }

    async fn record_refund(&self, r: &Refund, version: i64) -> Result<Recorded, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        if !advance(&txn, r.patient, version).await? {
            return finish(txn, Recorded::Stale).await;
        }
        let (state, _, reference) = state_columns(&r.state);
        let inserted = refund::Entity::insert(refund::ActiveModel {
            id: Set(r.id.as_uuid()),
            payment_id: Set(r.payment.as_uuid()),
            organization_id: Set(r.organization.as_uuid()),
            patient_id: Set(r.patient.as_uuid()),
            idem_key: Set(r.key.clone()),
            amount_minor: Set(r.amount.minor()),
            currency: Set(r.amount.currency().code().to_owned()),
            reason: Set(r.reason.clone()),
            made_by: Set(r.by.as_uuid()),
            state: Set(state.to_owned()),
            reference: Set(reference),
            created_at: Set(r.created_at),
            settled_at: Set(r.state.settled_at()),
        })
        .exec_without_returning(&txn)
        .await;
        let recorded = keyed(inserted)?;
        finish(txn, recorded).await
    }

    async fn settle_refund(&self, id: RefundId, state: &PaymentState) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        let patient = refund::Entity::find_by_id(id.as_uuid())
            .one(&txn)
            .await
            .map_err(repo_err)?
            .map(|r| PatientId::from_uuid(r.patient_id));
        // A refund is never declined: the processor's "no" gave nothing back.
        let state = match state {
            PaymentState::Declined { at, .. } => PaymentState::Failed { at: *at },
            other => other.clone(),
        };
        let (code, _, reference) = state_columns(&state);
        let update = refund::Entity::update_many()
            .col_expr(refund::Column::State, Expr::value(code))
            .col_expr(refund::Column::Reference, Expr::value(reference))
            .col_expr(refund::Column::SettledAt, Expr::value(state.settled_at()))
            .filter(refund::Column::Id.eq(id.as_uuid()))
            .filter(refund::Column::State.eq("pending"));
        Self::settle(txn, update, patient).await
    }

    async fn pending_refunds(&self, before: DateTime<Utc>) -> Result<Vec<Refund>, RepoError> {
        refund::Entity::find()
            .filter(refund::Column::State.eq("pending"))
            .filter(refund::Column::CreatedAt.lte(before))
            .order_by_asc(refund::Column::CreatedAt)
            .limit(500)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(refund_from)
            .collect()
    }

    async fn record_adjustment(&self, a: &Adjustment) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await.map_err(repo_err)?;
        balance_adjustment::Entity::insert(balance_adjustment::ActiveModel {
            id: Set(a.id.as_uuid()),
            organization_id: Set(a.organization.as_uuid()),
            patient_id: Set(a.patient.as_uuid()),
            amount_minor: Set(a.amount.minor()),
            currency: Set(a.amount.currency().code().to_owned()),
            reason: Set(a.reason.clone()),
            made_by: Set(a.by.as_uuid()),
            at: Set(a.at),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        bump(&txn, a.patient).await?;
        txn.commit().await.map_err(repo_err)
    }

    async fn create_plan(&self, p: &Plan) -> Result<bool, RepoError> {
        let inserted = payment_plan::Entity::insert(payment_plan::ActiveModel {
            id: Set(p.id.as_uuid()),
            organization_id: Set(p.organization.as_uuid()),
            patient_id: Set(p.patient.as_uuid()),
            active_patient_id: Set(Some(p.patient.as_uuid())),
            total_minor: Set(p.total.minor()),
            currency: Set(p.total.currency().code().to_owned()),
            instalments: Set(i16::from(p.instalments)),
            starts: Set(p.starts),
            card_token: Set(p.card_token.clone()),
            created_at: Set(p.created_at),
            made_by: Set(p.made_by.map(|a| a.as_uuid())),
            state: Set(p.state.code().to_owned()),
            ended_at: Set(None),
            failed_instalment: Set(None),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted.map_err(repo_err) {
            Ok(_) => Ok(true),
            Err(RepoError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn end_plan(&self, id: PlanId, state: &PlanState) -> Result<bool, RepoError> {
        let (at, failed) = match state {
            PlanState::Active => return Ok(false),
            PlanState::Completed { at } | PlanState::Cancelled { at } => (*at, None),
            PlanState::Failed { at, instalment } => (*at, Some(i16::from(*instalment))),
        };
        let done = payment_plan::Entity::update_many()
            .col_expr(payment_plan::Column::State, Expr::value(state.code()))
            .col_expr(
                payment_plan::Column::ActivePatientId,
                Expr::value(Option::<uuid::Uuid>::None),
            )
            .col_expr(payment_plan::Column::EndedAt, Expr::value(at))
            .col_expr(payment_plan::Column::FailedInstalment, Expr::value(failed))
            .filter(payment_plan::Column::Id.eq(id.as_uuid()))
            .filter(payment_plan::Column::State.eq("active"))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn plan(&self, id: PlanId) -> Result<Option<Plan>, RepoError> {
        payment_plan::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(plan_from)
            .transpose()
    }

    async fn active_plans(&self) -> Result<Vec<Plan>, RepoError> {
        payment_plan::Entity::find()
            .filter(payment_plan::Column::State.eq("active"))
            .order_by_asc(payment_plan::Column::CreatedAt)
            .limit(1000)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(plan_from)
            .collect()
    }

    async fn existing_numbers(
        &self,
        organization: OrganizationId,
        numbers: &[String],
    ) -> Result<Vec<String>, RepoError> {
        let mut found = Vec::new();
        for chunk in numbers.chunks(500) {
            let some: Vec<String> = statement::Entity::find()
                .select_only()
                .column(statement::Column::Number)
                .filter(statement::Column::OrganizationId.eq(organization.as_uuid()))
                .filter(statement::Column::Number.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(repo_err)?;
            found.extend(some);
        }
        Ok(found)
    }

    async fn statement_count(&self, organization: OrganizationId) -> Result<u64, RepoError> {
        statement::Entity::find()
            .filter(statement::Column::OrganizationId.eq(organization.as_uuid()))
            .count(&self.db)
            .await
            .map_err(repo_err)
    }

    async fn settings(
        &self,
        organization: OrganizationId,
    ) -> Result<Option<BillingSettings>, RepoError> {
        let Some(r) = billing_setting::Entity::find_by_id(organization.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
        else {
            return Ok(None);
        };
        let c = currency(&r.currency, "billing_settings.currency")?;
        Ok(Some(BillingSettings {
            currency: c,
            min_instalment: Money::new(r.min_instalment_minor, c),
        }))
    }

    async fn set_settings(
        &self,
        organization: OrganizationId,
        settings: &BillingSettings,
    ) -> Result<(), RepoError> {
        billing_setting::Entity::insert(billing_setting::ActiveModel {
            organization_id: Set(organization.as_uuid()),
            currency: Set(settings.currency.code().to_owned()),
            min_instalment_minor: Set(settings.min_instalment.minor()),
        })
        .on_conflict(
            OnConflict::column(billing_setting::Column::OrganizationId)
                .update_columns([
                    billing_setting::Column::Currency,
                    billing_setting::Column::MinInstalmentMinor,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }
}
