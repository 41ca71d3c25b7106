//! Payment plans: a balance split over 3 to 12 monthly instalments, each charged by the
//! server's scheduled task with the card the processor keeps for the plan, once per key;
//! a failed instalment is tried once more the next day, and a second failure stops the plan
//! (shown to the patient and to billing staff).

use super::money::{Money, MoneyError};
use crate::ids::{AccountId, OrganizationId, PatientId, PlanId};
use chrono::{DateTime, Months, NaiveDate, Utc};

/// The fewest and most instalments of a plan.
pub const MIN_INSTALMENTS: u8 = 3;
pub const MAX_INSTALMENTS: u8 = 12;

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState {
    Active,
    /// Every instalment was charged (or nothing was left to pay).
    Completed {
        at: DateTime<Utc>,
    },
    /// An instalment failed twice; nothing more is charged.
    Failed {
        at: DateTime<Utc>,
        instalment: u8,
    },
    /// The patient stopped it.
    Cancelled {
        at: DateTime<Utc>,
    },
}

impl PlanState {
    /// A stable code for storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed { .. } => "completed",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// A patient's payment plan.
#[derive(Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: PlanId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    /// What the plan pays off: what could be paid when it was made.
    pub total: Money,
    pub instalments: u8,
    /// The first instalment's day; the others fall on the same day of the following months.
    pub starts: NaiveDate,
    /// The processor's reusable reference of the card (not a card number).
    pub card_token: String,
    pub created_at: DateTime<Utc>,
    pub made_by: Option<AccountId>,
    pub state: PlanState,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("id", &self.id)
            .field("instalments", &self.instalments)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanProblem {
    #[error("Choose 3 to 12 monthly instalments.")]
    Instalments,
    #[error("Each instalment would be less than the clinic's smallest instalment. Choose fewer.")]
    TooSmall,
    #[error("Nothing is owed.")]
    NothingOwed,
    #[error("You already have a payment plan. Cancel it first to make another.")]
    Exists,
    #[error("This plan has ended already.")]
    Ended,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl PlanProblem {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Instalments => "invalid_instalments",
            Self::TooSmall => "instalment_too_small",
            Self::NothingOwed => "nothing_owed",
            Self::Exists => "plan_exists",
            Self::Ended => "plan_ended",
            Self::Money(m) => m.code(),
        }
    }
}

/// `total` split into `n` instalments in minor units: equal, the first ones a minor unit more
/// while a remainder lasts, so they always add up to `total`.
///
/// # Errors
/// `Instalments` for `n` outside 3..=12.
pub fn split(total: Money, n: u8) -> Result<Vec<Money>, PlanProblem> {
    if !(MIN_INSTALMENTS..=MAX_INSTALMENTS).contains(&n) {
        return Err(PlanProblem::Instalments);
    }
    let (base, rest) = (total.minor() / i64::from(n), total.minor() % i64::from(n));
    Ok((0..i64::from(n))
        .map(|i| Money::new(base + i64::from(i < rest), total.currency()))
        .collect())
}

/// Whether a plan of `n` instalments of `payable` may be made, given the organisation's
/// smallest instalment.
///
/// # Errors
/// The [`PlanProblem`].
pub fn check_plan(payable: Money, n: u8, min_instalment: Money) -> Result<(), PlanProblem> {
    if !payable.is_positive() {
        return Err(PlanProblem::NothingOwed);
    }
    let parts = split(payable, n)?;
    let smallest = parts.last().copied().unwrap_or(payable);
    if smallest.compare(min_instalment)?.is_lt() {
        return Err(PlanProblem::TooSmall);
    }
    Ok(())
}

impl Plan {
    /// The day instalment `number` (from 1) is due: the start's day of the month, in the
    /// month `number − 1` after (the month's last day when it is shorter).
    pub fn due(&self, number: u8) -> NaiveDate {
        self.starts
            .checked_add_months(Months::new(u32::from(number.saturating_sub(1))))
            .unwrap_or(self.starts)
    }

    /// The instalments' amounts.
    pub fn amounts(&self) -> Vec<Money> {
        split(self.total, self.instalments).unwrap_or_default()
    }

    /// The key of attempt `attempt` (1 or 2) of instalment `number`: one charge per key.
    pub fn key(&self, number: u8, attempt: u8) -> String {
        format!("plan-{}-{number}-{attempt}", self.id)
    }

    /// Which instalment and attempt a payment key of this plan is, if it is one.
    pub fn instalment_of(&self, key: &str) -> Option<(u8, u8)> {
        let rest = key.strip_prefix(&format!("plan-{}-", self.id))?;
        let (n, a) = rest.split_once('-')?;
        Some((n.parse().ok()?, a.parse().ok()?))
    }
}

/// Today's instalment step of a plan, from what its payments say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Charge instalment `number` (attempt `attempt`).
    Charge { number: u8, attempt: u8 },
    /// Nothing due yet (or an attempt is waiting for the processor).
    Wait,
    /// Every instalment is paid.
    Done,
    /// Instalment `number` failed twice.
    Stop { number: u8 },
}

/// What the plan's task does `today`, given each instalment payment of the plan as
/// (number, attempt, state): the next instalment not paid, once its day has come; its second
/// attempt the day after a first that took nothing; a stop after the second.
pub fn next_step(
    plan: &Plan,
    payments: &[(u8, u8, &super::payment::PaymentState)],
    today: NaiveDate,
) -> Step {
    use super::payment::PaymentState;
    for number in 1..=plan.instalments {
        let tries: Vec<_> = payments.iter().filter(|p| p.0 == number).collect();
        if tries.iter().any(|p| p.2.charged()) {
            continue;
        }
        if tries.iter().any(|p| *p.2 == PaymentState::Pending) {
            return Step::Wait;
        }
        let failed = tries.len();
        if plan.due(number) > today {
            return Step::Wait;
        }
        return match failed {
            0 => Step::Charge { number, attempt: 1 },
            1 => {
                let first_failed = tries[0].2.settled_at().map(|t| t.date_naive());
                if first_failed.is_some_and(|d| d < today) {
                    Step::Charge { number, attempt: 2 }
                } else {
                    Step::Wait
                }
            }
            _ => Step::Stop { number },
        };
    }
    Step::Done
}
