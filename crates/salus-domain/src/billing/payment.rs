//! Payments: the amount a patient may pay, and the one legal path of a payment's state.

use super::money::{Money, MoneyError};
use chrono::{DateTime, Utc};

/// Why an amount may not be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaymentProblem {
    #[error("Give an amount above zero.")]
    NotPositive,
    #[error("The amount is more than what you owe.")]
    AboveBalance,
    #[error("Nothing is owed.")]
    NothingOwed,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl PaymentProblem {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotPositive => "amount_not_positive",
            Self::AboveBalance => "amount_above_balance",
            Self::NothingOwed => "nothing_owed",
            Self::Money(m) => m.code(),
        }
    }
}

/// Whether `amount` may be paid against `balance` (what is owed): above zero, not above the
/// balance, in its currency.
///
/// # Errors
/// The [`PaymentProblem`].
pub fn check_amount(amount: Money, balance: Money) -> Result<(), PaymentProblem> {
    if !balance.is_positive() {
        return Err(PaymentProblem::NothingOwed);
    }
    if !amount.is_positive() {
        return Err(PaymentProblem::NotPositive);
    }
    if amount.compare(balance)? == std::cmp::Ordering::Greater {
        return Err(PaymentProblem::AboveBalance);
    }
    Ok(())
}

/// Why a card was declined, in the processor's terms made plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    Declined,
    InsufficientFunds,
    Expired,
}

impl DeclineReason {
    /// A stable code for storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Declined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::Expired => "card_expired",
        }
    }

    /// The reason of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Declined, Self::InsufficientFunds, Self::Expired]
            .into_iter()
            .find(|r| r.code() == code)
    }

    /// The sentence the patient reads.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Declined => "Your card was declined. Try another card or call your bank.",
            Self::InsufficientFunds => {
                "Your card was declined for insufficient funds. Nothing was charged."
            }
            Self::Expired => "Your card has expired. Try another card.",
        }
    }
}

/// What the gateway answered (or did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Succeeded {
        reference: String,
    },
    Declined(DeclineReason),
    /// The processor failed (not the card): nothing was charged.
    Failed,
    /// No answer in time: the payment stays pending until reconciled.
    NoAnswer,
}

/// Where a payment stands. `Pending → Succeeded | Declined | Failed`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Succeeded {
        at: DateTime<Utc>,
        reference: String,
    },
    Declined {
        at: DateTime<Utc>,
        reason: DeclineReason,
    },
    Failed {
        at: DateTime<Utc>,
    },
}

impl PaymentState {
    /// The state after the gateway's `outcome` at `at`: a pending payment settles (or stays
    /// pending without an answer); a settled one never changes, so an answer that comes twice
    /// (a retry, a reconciliation) counts once — `None` says there is nothing to write.
    pub fn settle(&self, outcome: &PaymentOutcome, at: DateTime<Utc>) -> Option<PaymentState> {
        if *self != Self::Pending {
            return None;
        }
        match outcome {
            PaymentOutcome::Succeeded { reference } => Some(Self::Succeeded {
                at,
                reference: reference.clone(),
            }),
            PaymentOutcome::Declined(reason) => Some(Self::Declined {
                at,
                reason: *reason,
            }),
            PaymentOutcome::Failed => Some(Self::Failed { at }),
            PaymentOutcome::NoAnswer => None,
        }
    }

    /// A stable code for storage and the API: `pending`, `succeeded`, `declined`, `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded { .. } => "succeeded",
            Self::Declined { .. } => "declined",
            Self::Failed { .. } => "failed",
        }
    }

    /// When it was settled, if it was.
    pub fn settled_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Pending => None,
            Self::Succeeded { at, .. } | Self::Declined { at, .. } | Self::Failed { at } => {
                Some(*at)
            }
        }
    }

    /// Whether the payment took money from the patient.
    pub fn charged(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }
}
