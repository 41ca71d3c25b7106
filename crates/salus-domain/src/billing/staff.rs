//! The billing staff's use cases: find a patient's account, post statements, adjust the
//! balance and refund payments (each with a reason, each audited), and the organisation's
//! billing settings. Who may is `decide`'s answer for `Action::ManageBills`.

use super::Recorded;
use super::ledger::{Adjustment, BillingSettings, Refund, check_key, check_reason};
use super::money::{Currency, Money};
use super::payment::{PaymentOutcome, PaymentState};
use super::service::{Account, BillingError, BillingService};
use super::statement::{Statement, StatementDraft};
use crate::access::{Action, Actor, Target, decide};
use crate::audit::{BillingStep, Outcome};
use crate::ids::{AdjustmentId, OrganizationId, PatientId, PaymentId, RefundId, StatementId};

/// A change of a balance as billing staff give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentDraft {
    /// `true` lowers what is owed (a write-off, a discount); `false` raises it.
    pub credit: bool,
    /// Above zero, as typed.
    pub amount: String,
    pub reason: String,
}

/// A refund as billing staff give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDraft {
    /// The form's (or client's) idempotency key.
    pub key: String,
    /// Above zero, not above what is left of the payment, as typed.
    pub amount: String,
    pub reason: String,
}

const BAD_REASON: BillingError = BillingError::Input {
    code: "invalid_reason",
    message: "Give a reason of 3 to 300 characters.",
};

impl BillingService {
    /// The organisation whose bills the actor keeps; `Forbidden` for anyone else.
    pub(super) fn keeper(&self, actor: &Actor) -> Result<OrganizationId, BillingError> {
        match actor {
            Actor::Staff { organization, .. }
                if decide(
                    actor,
                    Action::ManageBills,
                    Target::Organization {
                        organization: *organization,
                    },
                    self.ports().clock.now(),
                )
                .is_allowed() =>
            {
                Ok(*organization)
            }
            _ => Err(BillingError::Forbidden),
        }
    }

    /// The account of the organisation's chart with this record number.
    ///
    /// # Errors
    /// `Forbidden` for anyone but billing staff and administrators; `NotFound`.
    pub async fn account_by_mrn(
        &self,
        actor: &Actor,
        mrn: &str,
        request_id: Option<&str>,
    ) -> Result<Account, BillingError> {
        let organization = self.keeper(actor)?;
        let mrn = crate::text::Mrn::parse(mrn.trim()).map_err(|_| BillingError::NotFound)?;
        let chart = self
            .ports()
            .patients
            .find_by_mrn(organization, &mrn)
            .await?
            .ok_or(BillingError::NotFound)?;
        self.account(actor, Some(chart.id), request_id).await
    }

    /// Posts a statement to a chart's account, in the organisation's currency.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Statement` (a line that does not add up, a bad amount...);
    /// `Input { code: "statement_exists" }` for a number the organisation used.
    pub async fn post_statement(
        &self,
        actor: &Actor,
        patient: PatientId,
        draft: &StatementDraft,
        request_id: Option<&str>,
    ) -> Result<Statement, BillingError> {
        self.keeper(actor)?;
        let chart = self.chart_for(actor, Some(patient), request_id).await?;
        let settings = self.settings_of(chart.organization_id).await?;
        let statement = draft.read(
            StatementId::generate(self.ports().ids.as_ref()),
            chart.organization_id,
            chart.id,
            settings.currency,
        )?;
        match self.ports().billing.create_statement(&statement).await {
            Ok(()) => {}
            Err(crate::repo::RepoError::Conflict(_)) => {
                return Err(BillingError::Input {
                    code: "statement_exists",
                    message: "A statement of this number was posted already.",
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            actor,
            chart.id,
            BillingStep::PostedStatement,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(statement)
    }

    /// Adjusts a chart's balance with a reason.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Amount` (not above zero), `Money`; `invalid_reason`.
    pub async fn adjust(
        &self,
        actor: &Actor,
        patient: PatientId,
        draft: &AdjustmentDraft,
        request_id: Option<&str>,
    ) -> Result<Adjustment, BillingError> {
        self.keeper(actor)?;
        if !check_reason(&draft.reason) {
            return Err(BAD_REASON);
        }
        let chart = self.chart_for(actor, Some(patient), request_id).await?;
        let settings = self.settings_of(chart.organization_id).await?;
        let amount = Money::parse(&draft.amount, settings.currency)?;
        if !amount.is_positive() {
            return Err(super::PaymentProblem::NotPositive.into());
        }
        let signed = if draft.credit {
            Money::zero(settings.currency).minus(amount)?
        } else {
            amount
        };
        let adjustment = Adjustment {
            id: AdjustmentId::generate(self.ports().ids.as_ref()),
            organization: chart.organization_id,
            patient: chart.id,
            amount: signed,
            reason: draft.reason.trim().to_owned(),
            by: actor.account().ok_or(BillingError::Forbidden)?,
            at: self.ports().clock.now(),
        };
        self.ports().billing.record_adjustment(&adjustment).await?;
        self.audit(
            actor,
            chart.id,
            BillingStep::Adjusted,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(adjustment)
    }

    /// Refunds (part of) a succeeded payment through the processor, once per key.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `InvalidKey`; `KeyReused`; `invalid_reason`;
    /// `not_refundable` (the payment took nothing); `refund_above_payment`; `Busy`.
    pub async fn refund(
        &self,
        actor: &Actor,
        payment: PaymentId,
        draft: &RefundDraft,
        request_id: Option<&str>,
    ) -> Result<Refund, BillingError> {
        self.keeper(actor)?;
        let paid = self
            .ports()
            .billing
            .payment(payment)
            .await?
            .ok_or(BillingError::NotFound)?;
        let chart = self
            .chart_for(actor, Some(paid.patient), request_id)
            .await?;
        if !check_key(&draft.key) {
            return Err(BillingError::InvalidKey);
        }
        if !check_reason(&draft.reason) {
            return Err(BAD_REASON);
        }
        let amount = Money::parse(&draft.amount, paid.amount.currency())?;
        for _ in 0..5 {
            let ledger = self.ports().billing.ledger(chart.id).await?;
            if let Some(first) = ledger
                .refunds_of(paid.id)
                .find(|r| r.key == draft.key.as_str())
            {
                return if first.amount == amount {
                    Ok(first.clone())
                } else {
                    Err(BillingError::KeyReused)
                };
            }
            let PaymentState::Succeeded { reference, .. } = &paid.state else {
                return Err(BillingError::Input {
                    code: "not_refundable",
                    message: "This payment took no money, so there is nothing to refund.",
                });
            };
            if !amount.is_positive() {
                return Err(super::PaymentProblem::NotPositive.into());
            }
            if amount.compare(ledger.refundable(&paid)?)? == std::cmp::Ordering::Greater {
                return Err(BillingError::Input {
                    code: "refund_above_payment",
                    message: "The refund is more than what is left of the payment.",
                });
            }
            let mut refund = Refund {
                id: RefundId::generate(self.ports().ids.as_ref()),
                payment: paid.id,
                organization: chart.organization_id,
                patient: chart.id,
                key: draft.key.clone(),
                amount,
                reason: draft.reason.trim().to_owned(),
                by: actor.account().ok_or(BillingError::Forbidden)?,
                created_at: self.ports().clock.now(),
                state: PaymentState::Pending,
            };
            match self
                .ports()
                .billing
                .record_refund(&refund, ledger.version)
                .await?
            {
                Recorded::Recorded => {
                    self.audit(
                        actor,
                        chart.id,
                        BillingStep::Refunded,
                        Outcome::Allowed,
                        request_id,
                    )
                    .await?;
                    let outcome = match self
                        .ports()
                        .gateway
                        .refund(&refund.gateway_key(), reference, amount)
                        .await
                    {
                        PaymentOutcome::Declined(_) => PaymentOutcome::Failed,
                        other => other,
                    };
                    if let Some(state) = refund.state.settle(&outcome, self.ports().clock.now())
                        && self
                            .ports()
                            .billing
                            .settle_refund(refund.id, &state)
                            .await?
                    {
                        refund.state = state;
                    }
                    return Ok(refund);
                }
                Recorded::KeyUsed | Recorded::Stale => {}
            }
        }
        Err(BillingError::Busy)
    }

    /// The organisation's billing settings (the defaults until it sets its own).
    ///
    /// # Errors
    /// `Forbidden`.
    pub async fn settings(&self, actor: &Actor) -> Result<BillingSettings, BillingError> {
        let organization = self.keeper(actor)?;
        Ok(self.settings_of(organization).await?)
    }

    /// Sets the organisation's currency and smallest plan instalment. The currency can change
    /// only while no statement was posted in the old one.
    ///
    /// # Errors
    /// `Forbidden`; `Money` (`unknown_currency`, a bad amount); `Amount` (not above zero).
    pub async fn set_settings(
        &self,
        actor: &Actor,
        currency: &str,
        min_instalment: &str,
    ) -> Result<BillingSettings, BillingError> {
        let organization = self.keeper(actor)?;
        let currency = Currency::parse(currency.trim())?;
        let current = self.settings_of(organization).await?;
        if current.currency != currency
            && self.ports().billing.statement_count(organization).await? > 0
        {
            return Err(BillingError::Input {
                code: "currency_in_use",
                message: "Statements were posted in the current currency, so it cannot change.",
            });
        }
        let min_instalment = Money::parse(min_instalment, currency)?;
        if !min_instalment.is_positive() {
            return Err(super::PaymentProblem::NotPositive.into());
        }
        let settings = BillingSettings {
            currency,
            min_instalment,
        };
        self.ports()
            .billing
            .set_settings(organization, &settings)
            .await?;
        Ok(settings)
    }
}
