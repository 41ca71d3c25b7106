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
