//! Bill pay: what a patient owes an organisation and how they pay it. So far the model and
//! its rules — money, statements with their line items and totals, the amount a payment may
//! take, and the state machine of a payment; storage, the gateway, the API and the pages follow
//! (issue 17).
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

pub mod gateway;
pub mod money;
pub mod payment;
pub mod statement;
#[cfg(test)]
mod tests;

pub use gateway::{ChargeRequest, PaymentGateway};
pub use money::{Currency, Money, MoneyError};
pub use payment::{DeclineReason, PaymentOutcome, PaymentProblem, PaymentState, check_amount};
pub use statement::{LineItem, Statement, StatementProblem, Totals};

use crate::ids::{PatientId, StatementId};
use crate::repo::RepoError;

/// Storage of statements.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait BillingRepository: Send + Sync {
    /// Stores a statement with its lines, in one transaction.
    ///
    /// # Errors
    /// `Conflict` when the organisation has a statement of that number.
    async fn create_statement(&self, statement: &Statement) -> Result<(), RepoError>;

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
}
