//! A patient's account with an organisation: what was billed (statements), paid (payments),
//! given back (refunds) and adjusted by staff, and the balance computed from them.
//!
//! **Invariant:** the balance is computed here from the movements, never stored: what is owed
//! = the statements' patient shares − succeeded payments + succeeded refunds + adjustments.
//! Pending payments are not yet paid, but they are not payable again either.

use super::money::{Currency, Money, MoneyError};
use super::payment::PaymentState;
use super::statement::Statement;
use crate::ids::{AccountId, AdjustmentId, OrganizationId, PatientId, PaymentId, RefundId};
use chrono::{DateTime, Utc};

/// One payment of (part of) a balance, or its attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    /// The client's idempotency key (the API's `Idempotency-Key`, the page's form key): one
    /// payment per key and chart, whatever the number of tries.
    pub key: String,
    pub amount: Money,
    pub state: PaymentState,
    pub created_at: DateTime<Utc>,
    /// Who paid: the patient's or a proxy's account.
    pub made_by: Option<AccountId>,
}

impl Payment {
    /// The key the processor sees: one per payment, so a retry of the payment is a retry at
    /// the processor too, and no two charts' keys meet there.
    pub fn gateway_key(&self) -> String {
        format!("pay-{}", self.id)
    }
}

/// Money given back from a payment, by billing staff, with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    pub payment: PaymentId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    /// The staff form's (or API client's) idempotency key: one refund per key and payment.
    pub key: String,
    pub amount: Money,
    pub reason: String,
    pub by: AccountId,
    pub created_at: DateTime<Utc>,
    /// `Declined` is not used for refunds; `Failed` gave nothing back.
    pub state: PaymentState,
}

impl Refund {
    /// The key the processor sees.
    pub fn gateway_key(&self) -> String {
        format!("refund-{}", self.id)
    }
}

/// A change of the balance by billing staff, with a reason: negative lowers what is owed (a
/// write-off, a courtesy discount), positive raises it (a charge corrected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub id: AdjustmentId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    pub amount: Money,
    pub reason: String,
    pub by: AccountId,
    pub at: DateTime<Utc>,
}

/// Everything of a patient's account, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ledger {
    /// Changes with every movement: a payment is recorded only against the version its
    /// balance was checked on (the store refuses a stale one), so two payments cannot both
    /// take the same balance.
    pub version: i64,
    /// Newest first.
    pub statements: Vec<Statement>,
    /// Newest first.
    pub payments: Vec<Payment>,
    /// Newest first.
    pub refunds: Vec<Refund>,
    /// Newest first.
    pub adjustments: Vec<Adjustment>,
    /// Payment plans, newest first.
    pub plans: Vec<super::plan::Plan>,
}

/// The balance and what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// The statements' patient shares.
    pub billed: Money,
    /// Succeeded payments.
    pub paid: Money,
    /// Succeeded refunds.
    pub refunded: Money,
    /// Staff adjustments (signed).
    pub adjusted: Money,
    /// What is owed now: billed − paid + refunded + adjusted. Negative is a credit.
    pub owed: Money,
    /// Payments sent to the processor without an answer yet.
    pub pending: Money,
    /// What may be paid now: what is owed less what is pending, never below zero.
    pub payable: Money,
}

impl Ledger {
    /// The plan in force, if any.
    pub fn active_plan(&self) -> Option<&super::plan::Plan> {
        self.plans
            .iter()
            .find(|p| p.state == super::plan::PlanState::Active)
    }

    /// The payments of a plan as (instalment, attempt, state).
    pub fn plan_payments<'a>(
        &'a self,
        plan: &super::plan::Plan,
    ) -> Vec<(u8, u8, &'a super::payment::PaymentState)> {
        self.payments
            .iter()
            .filter_map(|p| plan.instalment_of(&p.key).map(|(n, a)| (n, a, &p.state)))
            .collect()
    }

    /// The balance in `currency` (the organisation's).
    ///
    /// # Errors
    /// `CurrencyMismatch` when a movement is in another currency; `Overflow`.
    pub fn balance(&self, currency: Currency) -> Result<Balance, MoneyError> {
        let mut billed = Money::zero(currency);
        for s in &self.statements {
            if s.currency != currency {
                return Err(MoneyError::CurrencyMismatch);
            }
            billed = billed.plus(s.totals()?.patient_share)?;
        }
        let paid = Money::sum(
            currency,
            self.payments
                .iter()
                .filter(|p| p.state.charged())
                .map(|p| p.amount),
        )?;
        let pending = Money::sum(
            currency,
            self.payments
                .iter()
                .filter(|p| p.state == PaymentState::Pending)
                .map(|p| p.amount),
        )?;
        let refunded = Money::sum(
            currency,
            self.refunds
                .iter()
                .filter(|r| r.state.charged())
                .map(|r| r.amount),
        )?;
        let adjusted = Money::sum(currency, self.adjustments.iter().map(|a| a.amount))?;
        let owed = billed.minus(paid)?.plus(refunded)?.plus(adjusted)?;
        let left = owed.minus(pending)?;
        let payable = if left.is_positive() {
            left
        } else {
            Money::zero(currency)
        };
        Ok(Balance {
            billed,
            paid,
            refunded,
            adjusted,
            owed,
            pending,
            payable,
        })
    }

    /// The payment made with this client key, if any.
    pub fn payment_by_key(&self, key: &str) -> Option<&Payment> {
        self.payments.iter().find(|p| p.key == key)
    }

    /// The payment with this id, if it is of this account.
    pub fn payment(&self, id: PaymentId) -> Option<&Payment> {
        self.payments.iter().find(|p| p.id == id)
    }

    /// The refunds of a payment, newest first.
    pub fn refunds_of(&self, payment: PaymentId) -> impl Iterator<Item = &Refund> {
        self.refunds.iter().filter(move |r| r.payment == payment)
    }

    /// What may still be refunded of a payment: its amount if it succeeded, less its refunds
    /// that succeeded or are pending. Zero for a payment that took nothing.
    ///
    /// # Errors
    /// `CurrencyMismatch`; `Overflow`.
    pub fn refundable(&self, payment: &Payment) -> Result<Money, MoneyError> {
        if !payment.state.charged() {
            return Ok(Money::zero(payment.amount.currency()));
        }
        let given = Money::sum(
            payment.amount.currency(),
            self.refunds_of(payment.id)
                .filter(|r| r.state.charged() || r.state == PaymentState::Pending)
                .map(|r| r.amount),
        )?;
        payment.amount.minus(given)
    }
}

/// The organisation's billing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingSettings {
    /// The currency its statements and payments are in.
    pub currency: Currency,
    /// The smallest instalment of a payment plan.
    pub min_instalment: Money,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            currency: Currency::USD,
            min_instalment: Money::new(2_500, Currency::USD),
        }
    }
}

/// A reason staff give for an adjustment or a refund: 3 to 300 characters, one line.
pub fn check_reason(reason: &str) -> bool {
    let reason = reason.trim();
    let n = reason.chars().count();
    (3..=300).contains(&n) && !reason.chars().any(char::is_control)
}

/// An idempotency key a client may send: 8 to 100 visible ASCII characters.
pub fn check_key(key: &str) -> bool {
    (8..=100).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}
