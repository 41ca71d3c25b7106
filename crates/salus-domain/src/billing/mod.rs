//! Bill pay: what a patient owes an organisation and how they pay it — money, statements with
//! their line items and totals, the account's ledger and balance, payments through a
//! [`PaymentGateway`] that never charge twice, refunds and adjustments by billing staff, and
//! reconciliation of payments left without an answer.
//!
//! **Invariant:** money is an integer count of the currency's minor units (cents, pence; yen
//! have none) with its ISO 4217 currency; no floating point anywhere in this module (the lints
//! below refuse float arithmetic, and a test refuses the float types in its source).
//! **Invariant:** a line item adds up — charge = insurance paid + adjustments + the patient's
//! share — and a statement's totals are the sums of its items, so they always add up too.
#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

mod csv_import;
pub mod gateway;
pub mod ledger;
pub mod money;
pub mod payment;
pub mod plan;
mod plans;
mod service;
#[cfg(test)]
mod service_tests;
mod staff;
pub mod statement;
#[cfg(test)]
mod tests;

pub use csv_import::{COLUMNS as CSV_COLUMNS, ImportReport, MAX_ROWS as CSV_MAX_ROWS, RowProblem};
pub use gateway::{ChargeRequest, PaymentGateway};
pub use ledger::{Adjustment, Balance, BillingSettings, Ledger, Payment, Refund};
pub use money::{Currency, Money, MoneyError};
pub use payment::{DeclineReason, PaymentOutcome, PaymentProblem, PaymentState, check_amount};
pub use plan::{Plan, PlanProblem, PlanState};
pub use service::{Account, BillingError, BillingPorts, BillingService, Paid, ReconcileReport};
pub use staff::{AdjustmentDraft, RefundDraft};
pub use statement::StatementDraft;
pub use statement::{LineDraft, LineItem, Statement, StatementProblem, Totals};

use crate::ids::{OrganizationId, PatientId, PaymentId, PlanId, RefundId, StatementId};
use crate::repo::RepoError;
use chrono::{DateTime, Utc};

/// What became of recording a payment or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// A payment (refund) with this client key already exists; nothing was written.
    KeyUsed,
    /// The account moved since the version the amount was checked on; nothing was written.
    Stale,
}

/// Storage of patients' accounts: statements, payments, refunds, adjustments, settings.
/// Every write that moves money changes the account's version in the same transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait BillingRepository: Send + Sync {
    /// Stores a statement with its lines, in one transaction.
    ///
    /// # Errors
    /// `Conflict` when the organisation has a statement of that number.
    async fn create_statement(&self, statement: &Statement) -> Result<(), RepoError>;

    /// Stores several statements (an import) in one transaction: all or none.
    ///
    /// # Errors
    /// `Conflict` when a number is taken (nothing is stored).
    async fn create_statements(&self, statements: &[Statement]) -> Result<(), RepoError>;

    /// The statement with this id, with its lines in order.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse (an unknown currency included).
    async fn statement(&self, id: StatementId) -> Result<Option<Statement>, RepoError>;

    /// A patient's statements, newest first, each with its lines.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn statements_of(&self, patient: PatientId) -> Result<Vec<Statement>, RepoError>;

    /// Everything of a patient's account, with its version.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn ledger(&self, patient: PatientId) -> Result<Ledger, RepoError>;

    /// Records a pending payment if the account is still at `version` and the key is new.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn record_payment(&self, payment: &Payment, version: i64) -> Result<Recorded, RepoError>;

    /// Settles a pending payment; `false` when it was not pending (settled already).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn settle_payment(&self, id: PaymentId, state: &PaymentState) -> Result<bool, RepoError>;

    /// The payment with this id.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, RepoError>;

    /// Payments still pending that were made at or before `before`, oldest first, at most 500.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn pending_payments(&self, before: DateTime<Utc>) -> Result<Vec<Payment>, RepoError>;

    /// Records a pending refund if the account is still at `version` and the key is new for
    /// the payment.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn record_refund(&self, refund: &Refund, version: i64) -> Result<Recorded, RepoError>;

    /// Settles a pending refund; `false` when it was not pending.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn settle_refund(&self, id: RefundId, state: &PaymentState) -> Result<bool, RepoError>;

    /// Refunds still pending that were made at or before `before`, oldest first, at most 500.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn pending_refunds(&self, before: DateTime<Utc>) -> Result<Vec<Refund>, RepoError>;

    /// Records a staff adjustment.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn record_adjustment(&self, adjustment: &Adjustment) -> Result<(), RepoError>;

    /// Which of these statement numbers the organisation has used.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn existing_numbers(
        &self,
        organization: OrganizationId,
        numbers: &[String],
    ) -> Result<Vec<String>, RepoError>;

    /// How many statements the organisation has posted.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn statement_count(&self, organization: OrganizationId) -> Result<u64, RepoError>;

    /// Stores a new plan; `false` when the chart has an active plan already.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn create_plan(&self, plan: &Plan) -> Result<bool, RepoError>;

    /// Ends an active plan; `false` when it was not active.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn end_plan(&self, id: PlanId, state: &PlanState) -> Result<bool, RepoError>;

    /// The plan with this id.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn plan(&self, id: PlanId) -> Result<Option<Plan>, RepoError>;

    /// Active plans of every organisation, oldest first, at most 1,000.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn active_plans(&self) -> Result<Vec<Plan>, RepoError>;

    /// The organisation's billing settings, if it set any.
    ///
    /// # Errors
    /// As [`BillingRepository::statement`].
    async fn settings(
        &self,
        organization: OrganizationId,
    ) -> Result<Option<BillingSettings>, RepoError>;

    /// Stores the organisation's billing settings.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn set_settings(
        &self,
        organization: OrganizationId,
        settings: &BillingSettings,
    ) -> Result<(), RepoError>;
}

/// A billing service whose ports are mocks without expectations: for adapter tests of paths
/// that never reach the domain (any call to a port panics).
#[cfg(any(test, feature = "mocks"))]
pub fn billing_without_expectations() -> BillingService {
    #[derive(Debug)]
    struct NilIds;
    impl crate::ids::IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    BillingService::new(BillingPorts {
        billing: std::sync::Arc::new(MockBillingRepository::new()),
        patients: std::sync::Arc::new(crate::patient::MockPatientRepository::new()),
        organizations: std::sync::Arc::new(crate::organization::MockOrganizationRepository::new()),
        gateway: std::sync::Arc::new(gateway::MockPaymentGateway::new()),
        log: std::sync::Arc::new(crate::audit::MockAccessLog::new()),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        ids: std::sync::Arc::new(NilIds),
        accounts: std::sync::Arc::new(crate::account::MockAccountRepository::new()),
        mailer: std::sync::Arc::new(crate::account::MockMailer::new()),
        public_url: String::new(),
    })
}
