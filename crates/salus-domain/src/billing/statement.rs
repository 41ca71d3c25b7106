//! Statements: what an organisation bills a patient, line by line.

use super::money::{Currency, Money, MoneyError};
use crate::ids::{OrganizationId, PatientId, StatementId};
use chrono::NaiveDate;

/// Why a statement or one of its lines was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementProblem {
    #[error(
        "Line {line}: the charge is not insurance paid plus adjustments plus the patient's share."
    )]
    DoesNotAddUp { line: usize },
    #[error("Line {line}: amounts cannot be negative.")]
    Negative { line: usize },
    #[error("Line {line}: give a description of at most 200 characters.")]
    Description { line: usize },
    #[error("A statement needs at least one line.")]
    Empty,
    #[error("Give a statement number of 1 to 40 letters, digits or dashes.")]
    Number,
    #[error("The due date is before the statement's date.")]
    DueBeforeIssued,
    #[error(
        "Line {line}: the {field} is not an amount such as 12.50 in the organisation's currency."
    )]
    Amount {
        line: usize,
        field: &'static str,
        problem: MoneyError,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl StatementProblem {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DoesNotAddUp { .. } => "line_does_not_add_up",
            Self::Negative { .. } => "negative_amount",
            Self::Description { .. } => "invalid_description",
            Self::Empty => "no_lines",
            Self::Number => "invalid_statement_number",
            Self::DueBeforeIssued => "due_before_issued",
            Self::Amount { problem, .. } => problem.code(),
            Self::Money(m) => m.code(),
        }
    }
}

/// One service billed: what it cost, what insurance paid, what was written off, and what the
/// patient owes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub service_date: NaiveDate,
    pub description: String,
    pub charge: Money,
    pub insurance_paid: Money,
    pub adjustments: Money,
    pub patient_share: Money,
}

impl LineItem {
    /// Checks line `line` (numbered from 1, for the message): one currency, no negative
    /// amount, a description, and charge = insurance paid + adjustments + the patient's share.
    ///
    /// # Errors
    /// The first [`StatementProblem`].
    pub fn check(&self, line: usize, currency: Currency) -> Result<(), StatementProblem> {
        let amounts = [
            self.charge,
            self.insurance_paid,
            self.adjustments,
            self.patient_share,
        ];
        if amounts.iter().any(|m| m.currency() != currency) {
            return Err(MoneyError::CurrencyMismatch.into());
        }
        if amounts.iter().any(|m| m.is_negative()) {
            return Err(StatementProblem::Negative { line });
        }
        let description = self.description.trim();
        if description.is_empty()
            || description.chars().count() > 200
            || description.chars().any(char::is_control)
        {
            return Err(StatementProblem::Description { line });
        }
        let accounted = Money::sum(
            currency,
            [self.insurance_paid, self.adjustments, self.patient_share],
        )?;
        if accounted != self.charge {
            return Err(StatementProblem::DoesNotAddUp { line });
        }
        Ok(())
    }
}

/// The sums of a statement's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub charges: Money,
    pub insurance_paid: Money,
    pub adjustments: Money,
    /// What the patient owes for the statement.
    pub patient_share: Money,
}

/// A statement an organisation sent a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub id: StatementId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    /// The organisation's own number for it.
    pub number: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub currency: Currency,
    pub items: Vec<LineItem>,
}

impl Statement {
    /// Checks the statement and every line.
    ///
    /// # Errors
    /// The first [`StatementProblem`].
    pub fn check(&self) -> Result<(), StatementProblem> {
        let number = self.number.trim();
        if number.is_empty()
            || number.len() > 40
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(StatementProblem::Number);
        }
        if self.due < self.issued {
            return Err(StatementProblem::DueBeforeIssued);
        }
        if self.items.is_empty() {
            return Err(StatementProblem::Empty);
        }
        for (i, item) in self.items.iter().enumerate() {
            item.check(i + 1, self.currency)?;
        }
        Ok(())
    }

    /// The sums of the lines.
    ///
    /// # Errors
    /// `Money` when a line is of another currency or the sums overflow.
    pub fn totals(&self) -> Result<Totals, MoneyError> {
        let sum =
            |pick: fn(&LineItem) -> Money| Money::sum(self.currency, self.items.iter().map(pick));
        Ok(Totals {
            charges: sum(|i| i.charge)?,
            insurance_paid: sum(|i| i.insurance_paid)?,
            adjustments: sum(|i| i.adjustments)?,
            patient_share: sum(|i| i.patient_share)?,
        })
    }
}

/// A line as staff (or an import) give it: amounts as typed, in the organisation's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDraft {
    pub service_date: NaiveDate,
    pub description: String,
    pub charge: String,
    pub insurance_paid: String,
    pub adjustments: String,
    pub patient_share: String,
}

/// A statement as staff (or an import) give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementDraft {
    pub number: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub lines: Vec<LineDraft>,
}

impl StatementDraft {
    /// The statement of these amounts read in `currency`, checked.
    ///
    /// # Errors
    /// The first [`StatementProblem`] (an amount that does not read names its line and field).
    pub fn read(
        &self,
        id: StatementId,
        organization: OrganizationId,
        patient: PatientId,
        currency: Currency,
    ) -> Result<Statement, StatementProblem> {
        let mut items = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.iter().enumerate() {
            let line = i + 1;
            let amount = |field: &'static str, text: &str| {
                Money::parse(text, currency).map_err(|problem| StatementProblem::Amount {
                    line,
                    field,
                    problem,
                })
            };
            items.push(LineItem {
                service_date: l.service_date,
                description: l.description.trim().to_owned(),
                charge: amount("charge", &l.charge)?,
                insurance_paid: amount("insurance paid", &l.insurance_paid)?,
                adjustments: amount("adjustments", &l.adjustments)?,
                patient_share: amount("patient's share", &l.patient_share)?,
            });
        }
        let statement = Statement {
            id,
            organization,
            patient,
            number: self.number.trim().to_owned(),
            issued: self.issued,
            due: self.due,
            currency,
            items,
        };
        statement.check()?;
        Ok(statement)
    }
}
