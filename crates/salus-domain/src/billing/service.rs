//! The bill-pay use cases of the patient's side (the patient, or a proxy whose grant pays
//! bills) and the reconciliation of payments left without an answer. Who may is `decide`'s
//! answer for `Action::PayBills` on the chart (`Action::ManageBills` for billing staff, who
//! see the same account); the store decides which of two racing payments may take a balance.

use super::gateway::{ChargeRequest, PaymentGateway};
use super::ledger::{Balance, BillingSettings, Ledger, Payment, check_key};
use super::money::{Money, MoneyError};
use super::payment::{PaymentOutcome, PaymentProblem, PaymentState, check_amount};
use super::statement::{Statement, StatementProblem};
use super::{BillingRepository, Recorded};
use crate::access::{Action, Actor, Target, decide};
use crate::account::{AccountRepository, Mailer};
use crate::audit::{AccessEvent, AccessLog, BillingStep, Outcome, Step};
use crate::clock::Clock;
use crate::ids::{IdGenerator, PatientId, PaymentId, StatementId};
use crate::patient::{Patient, PatientRepository};
use crate::repo::RepoError;
use std::sync::Arc;

/// How many times a payment is tried against an account that keeps moving under it.
const STALE_TRIES: usize = 5;

/// What the bill-pay use cases need.
#[derive(Clone)]
pub struct BillingPorts {
    pub billing: Arc<dyn BillingRepository>,
    pub patients: Arc<dyn PatientRepository>,
    /// The organisation a statement or receipt is of (its name and zone on the PDF).
    pub organizations: Arc<dyn crate::organization::OrganizationRepository>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub log: Arc<dyn AccessLog>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Who is told that a payment was received.
    pub accounts: Arc<dyn AccountRepository>,
    pub mailer: Arc<dyn Mailer>,
    /// The portal's address, for the link in emails.
    pub public_url: String,
}

impl std::fmt::Debug for BillingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingPorts").finish_non_exhaustive()
    }
}

/// Why a bill-pay use case changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// No such chart, statement or payment, or not the actor's (one answer for all).
    #[error("There is no such bill or payment.")]
    NotFound,
    /// Not for the actor's role (a patient at the billing staff's pages, say).
    #[error("This is not available to your role.")]
    Forbidden,
    #[error(transparent)]
    Amount(#[from] PaymentProblem),
    #[error(transparent)]
    Statement(#[from] StatementProblem),
    #[error(transparent)]
    Plan(#[from] super::plan::PlanProblem),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("Send an Idempotency-Key of 8 to 100 visible characters.")]
    InvalidKey,
    #[error("This key was used for a payment of another amount. Use a new key.")]
    KeyReused,
    #[error("Give the card token from the card form.")]
    InvalidCardToken,
    /// A field of a staff form; the message says which.
    #[error("{message}")]
    Input {
        code: &'static str,
        message: &'static str,
    },
    #[error("The account changed while paying. Look at the balance and try again.")]
    Busy,
    /// An import's rows: every problem by row and column; nothing was stored.
    #[error("Nothing was imported: {} problem(s) in the file.", .0.len())]
    Rows(Vec<super::RowProblem>),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl BillingError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Amount(p) => p.code(),
            Self::Statement(p) => p.code(),
            Self::Plan(p) => p.code(),
            Self::Money(m) => m.code(),
            Self::InvalidKey => "invalid_idempotency_key",
            Self::KeyReused => "idempotency_key_reused",
            Self::InvalidCardToken => "invalid_card_token",
            Self::Input { code, .. } => code,
            Self::Busy => "try_again",
            Self::Rows(_) => "invalid_rows",
            Self::Repo(_) => "unavailable",
        }
    }
}

/// A chart's account as the patient's side (or billing staff) sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub patient: Patient,
    pub settings: BillingSettings,
    pub ledger: Ledger,
    pub balance: Balance,
}

/// What paying answered.
#[derive(Debug, Clone)]
pub struct Paid {
    pub payment: Payment,
    /// `true` when this call recorded it; `false` when the key had been used (a retry, a
    /// double click, a second tab): the payment of the first, charged once.
    pub new: bool,
}

/// What a reconciliation round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Payments and refunds settled by the processor's answer.
    pub settled: u64,
    /// Still without an answer (the processor is unreachable).
    pub still_pending: u64,
}

/// The bill-pay use cases.
#[derive(Clone, Debug)]
pub struct BillingService {
    p: BillingPorts,
}

impl BillingService {
    pub fn new(p: BillingPorts) -> Self {
        Self { p }
    }

    pub(super) fn ports(&self) -> &BillingPorts {
        &self.p
    }

    /// The time now, by the service's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.p.clock.now()
    }

    pub(super) async fn audit(
        &self,
        actor: &Actor,
        patient: PatientId,
        step: BillingStep,
        outcome: Outcome,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        let action = match actor {
            Actor::Staff { .. } => Action::ManageBills,
            _ => Action::PayBills,
        };
        self.p
            .log
            .record(AccessEvent {
                at: self.p.clock.now(),
                actor: actor.into(),
                patient: Some(patient),
                action,
                export: None,
                step: Some(Step::Billing(step)),
                record_kind: None,
                record: None,
                outcome,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// The organisation's settings, or the defaults.
    pub(super) async fn settings_of(
        &self,
        organization: crate::ids::OrganizationId,
    ) -> Result<BillingSettings, RepoError> {
        Ok(self
            .p
            .billing
            .settings(organization)
            .await?
            .unwrap_or_default())
    }

    /// The chart `patient` (the actor's own when `None`) when the actor may see its bills:
    /// the patient's side pays them, billing staff keep them. Else `NotFound`, written to the
    /// chart's history as refused.
    pub(super) async fn chart_for(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<Patient, BillingError> {
        let id = patient
            .or_else(|| actor.own_chart())
            .ok_or(BillingError::NotFound)?;
        let chart = self
            .p
            .patients
            .find(id)
            .await?
            .ok_or(BillingError::NotFound)?;
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        let action = match actor {
            Actor::Staff { .. } => Action::ManageBills,
            _ => Action::PayBills,
        };
        if !decide(actor, action, target, self.p.clock.now()).is_allowed() {
            self.audit(
                actor,
                chart.id,
                BillingStep::Viewed,
                Outcome::Denied,
                request_id,
            )
            .await?;
            return Err(BillingError::NotFound);
        }
        Ok(chart)
    }

    /// The chart's account read from the store, without an audit entry (callers write theirs).
    pub(super) async fn account_of(&self, chart: Patient) -> Result<Account, BillingError> {
        let settings = self.settings_of(chart.organization_id).await?;
        let ledger = self.p.billing.ledger(chart.id).await?;
        let balance = ledger.balance(settings.currency)?;
        Ok(Account {
            patient: chart,
            settings,
            ledger,
            balance,
        })
    }

    /// The chart's account (the actor's own when `None`): balance, statements, payments,
    /// refunds and adjustments.
    ///
    /// # Errors
    /// `NotFound` for a chart that is not the actor's to see.
    pub async fn account(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<Account, BillingError> {
        let chart = self.chart_for(actor, patient, request_id).await?;
        let account = self.account_of(chart).await?;
        self.audit(
            actor,
            account.patient.id,
            BillingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(account)
    }

    /// One statement, with its lines.
    ///
    /// # Errors
    /// `NotFound` for a statement that is not of a chart the actor may see the bills of.
    pub async fn statement(
        &self,
        actor: &Actor,
        id: StatementId,
        request_id: Option<&str>,
    ) -> Result<(Patient, Statement), BillingError> {
        let statement = self
            .p
            .billing
            .statement(id)
            .await?
            .ok_or(BillingError::NotFound)?;
        let chart = self
            .chart_for(actor, Some(statement.patient), request_id)
            .await?;
        self.audit(
            actor,
            chart.id,
            BillingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok((chart, statement))
    }

    /// One payment (a receipt when it succeeded), with the account it is of.
    ///
    /// # Errors
    /// `NotFound` for a payment that is not of a chart the actor may see the bills of.
    pub async fn payment(
        &self,
        actor: &Actor,
        id: PaymentId,
        request_id: Option<&str>,
    ) -> Result<(Account, Payment), BillingError> {
        let payment = self
            .p
            .billing
            .payment(id)
            .await?
            .ok_or(BillingError::NotFound)?;
        let account = self
            .account(actor, Some(payment.patient), request_id)
            .await?;
        Ok((account, payment))
    }

    /// The organisation of a chart (for the name and zone of a printed statement).
    ///
    /// # Errors
    /// `NotFound` when it is gone.
    pub async fn organization_of(
        &self,
        chart: &Patient,
    ) -> Result<crate::organization::Organization, BillingError> {
        self.p
            .organizations
            .find(chart.organization_id)
            .await?
            .ok_or(BillingError::NotFound)
    }

    /// The key a payment form of this account carries: the same for every form shown on the
    /// same state of the account (two tabs, a reload, a double click pay once), a new one once
    /// anything moved (a payment made or declined).
    pub fn form_key(account: &Account) -> String {
        format!("form-{}-{}", account.patient.id, account.ledger.version)
    }

    /// Pays `amount` (as typed, in the organisation's currency) of the chart's balance (the actor's own when `None`) with the card the
    /// processor's card form turned into `card_token`, once per `key`: a second call with the
    /// key answers the first payment and charges nothing. A payment is recorded (pending)
    /// before the processor is asked; its answer settles it; without an answer it stays
    /// pending until reconciled.
    ///
    /// # Errors
    /// `NotFound`; `InvalidKey`; `KeyReused` (the key paid another amount);
    /// `InvalidCardToken`; `Money` (not an amount); `Amount` (not above zero, above what may
    /// be paid, nothing owed);
    /// `Busy` when the account kept moving.
    pub async fn pay(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        key: &str,
        amount: &str,
        card_token: &str,
        request_id: Option<&str>,
    ) -> Result<Paid, BillingError> {
        if matches!(actor, Actor::Staff { .. }) {
            return Err(BillingError::Forbidden);
        }
        let chart = self.chart_for(actor, patient, request_id).await?;
        if !check_key(key) {
            return Err(BillingError::InvalidKey);
        }
        let card_token = card_token.trim();
        if card_token.is_empty() || card_token.len() > 200 {
            return Err(BillingError::InvalidCardToken);
        }
        let settings = self.settings_of(chart.organization_id).await?;
        let amount = Money::parse(amount, settings.currency)?;
        for _ in 0..STALE_TRIES {
            let ledger = self.p.billing.ledger(chart.id).await?;
            if let Some(first) = ledger.payment_by_key(key) {
                return replay(first, amount);
            }
            check_amount(amount, ledger.balance(settings.currency)?.payable)?;
            let payment = Payment {
                id: PaymentId::generate(self.p.ids.as_ref()),
                organization: chart.organization_id,
                patient: chart.id,
                key: key.to_owned(),
                amount,
                state: PaymentState::Pending,
                created_at: self.p.clock.now(),
                made_by: actor.account(),
            };
            match self
                .p
                .billing
                .record_payment(&payment, ledger.version)
                .await?
            {
                Recorded::Recorded => {
                    self.audit(
                        actor,
                        chart.id,
                        BillingStep::Paid,
                        Outcome::Allowed,
                        request_id,
                    )
                    .await?;
                    let payment = self.charge_recorded(payment, card_token).await?;
                    return Ok(Paid { payment, new: true });
                }
                Recorded::KeyUsed => {
                    let ledger = self.p.billing.ledger(chart.id).await?;
                    let first = ledger.payment_by_key(key).ok_or(BillingError::Busy)?;
                    return replay(first, amount);
                }
                Recorded::Stale => {}
            }
        }
        Err(BillingError::Busy)
    }

    /// Asks the processor to charge a recorded pending payment and settles it by the answer.
    pub(super) async fn charge_recorded(
        &self,
        mut payment: Payment,
        card_token: &str,
    ) -> Result<Payment, RepoError> {
        let outcome = self
            .p
            .gateway
            .charge(&ChargeRequest {
                key: payment.gateway_key(),
                amount: payment.amount,
                card_token: card_token.to_owned(),
            })
            .await;
        if let Some(state) = payment.state.settle(&outcome, self.p.clock.now())
            && self.p.billing.settle_payment(payment.id, &state).await?
        {
            payment.state = state;
            if payment.state.charged() {
                self.tell_received(payment.patient).await?;
            }
        }
        Ok(payment)
    }

    /// Tells the chart's accounts that a payment was received — that and a link, nothing more.
    async fn tell_received(&self, patient: PatientId) -> Result<(), RepoError> {
        let body = format!(
            "Hello,\n\nA payment to your clinic was received. Sign in to see your receipt: \
             {}/bills\n",
            self.p.public_url
        );
        crate::account::email_chart(
            self.p.accounts.as_ref(),
            self.p.mailer.as_ref(),
            patient,
            "Payment received",
            &body,
        )
        .await
    }

    /// Settles payments and refunds that have been pending since before `older_than` ago by
    /// what the processor says became of them. A charge the processor never received took
    /// nothing: the payment fails (and may be made again). Safe to run on several nodes at
    /// once: a settled payment never changes again.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn reconcile(
        &self,
        older_than: chrono::Duration,
    ) -> Result<ReconcileReport, BillingError> {
        let before = self.p.clock.now() - older_than;
        let mut report = ReconcileReport::default();
        for payment in self.p.billing.pending_payments(before).await? {
            let outcome = self.p.gateway.lookup(&payment.gateway_key()).await;
            let outcome = never_received_failed(outcome);
            if let Some(state) = payment.state.settle(&outcome, self.p.clock.now()) {
                if self.p.billing.settle_payment(payment.id, &state).await? {
                    report.settled += 1;
                    if state.charged() {
                        self.tell_received(payment.patient).await?;
                    }
                }
            } else {
                report.still_pending += 1;
            }
        }
        for refund in self.p.billing.pending_refunds(before).await? {
            let outcome = never_received_failed(self.p.gateway.lookup(&refund.gateway_key()).await);
            if let Some(state) = refund.state.settle(&outcome, self.p.clock.now()) {
                if self.p.billing.settle_refund(refund.id, &state).await? {
                    report.settled += 1;
                }
            } else {
                report.still_pending += 1;
            }
        }
        Ok(report)
    }
}

/// The answer to a key used before: its payment, unless it was for another amount.
fn replay(first: &Payment, amount: Money) -> Result<Paid, BillingError> {
    if first.amount != amount {
        return Err(BillingError::KeyReused);
    }
    Ok(Paid {
        payment: first.clone(),
        new: false,
    })
}

/// What `lookup` answered, as an outcome to settle with: a charge the processor never
/// received took nothing (it fails, and may be made again); `NoAnswer` (the processor did not
/// answer now) leaves it pending for the next round.
fn never_received_failed(outcome: Option<PaymentOutcome>) -> PaymentOutcome {
    outcome.unwrap_or(PaymentOutcome::Failed)
}
