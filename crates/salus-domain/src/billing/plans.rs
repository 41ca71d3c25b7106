//! The payment-plan use cases: the patient's side starts and stops a plan; the server's
//! scheduled task charges what is due ([`BillingService::charge_due_instalments`]), once per
//! instalment and attempt key, on any number of nodes.

use super::Recorded;
use super::ledger::Payment;
use super::payment::PaymentState;
use super::plan::{Plan, PlanProblem, PlanState, Step, check_plan, next_step};
use super::service::{BillingError, BillingService};
use crate::access::Actor;
use crate::audit::{AccessEvent, ActorRef, BillingStep, Outcome, Step as AuditStep};
use crate::ids::{PatientId, PaymentId, PlanId};

impl BillingService {
    /// Splits what may be paid now over `instalments` monthly instalments charged to the card
    /// of `card_token` (the processor keeps it for the plan), the first today.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for staff; `InvalidCardToken`; `invalid_instalments`,
    /// `instalment_too_small`, `nothing_owed`, `plan_exists`.
    pub async fn start_plan(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        instalments: u8,
        card_token: &str,
        request_id: Option<&str>,
    ) -> Result<Plan, BillingError> {
        if matches!(actor, Actor::Staff { .. }) {
            return Err(BillingError::Forbidden);
        }
        let chart = self.chart_for(actor, patient, request_id).await?;
        let card_token = card_token.trim();
        if card_token.is_empty() || card_token.len() > 200 {
            return Err(BillingError::InvalidCardToken);
        }
        let account = self.account_of(chart).await?;
        if account.ledger.active_plan().is_some() {
            return Err(PlanProblem::Exists.into());
        }
        let payable = account.balance.payable;
        check_plan(payable, instalments, account.settings.min_instalment)?;
        let now = self.ports().clock.now();
        let plan = Plan {
            id: PlanId::generate(self.ports().ids.as_ref()),
            organization: account.patient.organization_id,
            patient: account.patient.id,
            total: payable,
            instalments,
            starts: now.date_naive(),
            card_token: card_token.to_owned(),
            created_at: now,
            made_by: actor.account(),
            state: PlanState::Active,
        };
        if !self.ports().billing.create_plan(&plan).await? {
            return Err(PlanProblem::Exists.into());
        }
        self.audit(
            actor,
            plan.patient,
            BillingStep::StartedPlan,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        // The first instalment is due today: charged now rather than at the task's next round.
        self.run_plan(&plan).await?;
        Ok(plan)
    }

    /// Stops an active plan; nothing more is charged (instalments charged stay paid).
    ///
    /// # Errors
    /// `NotFound`; `plan_ended`.
    pub async fn cancel_plan(
        &self,
        actor: &Actor,
        id: PlanId,
        request_id: Option<&str>,
    ) -> Result<(), BillingError> {
        let plan = self
            .ports()
            .billing
            .plan(id)
            .await?
            .ok_or(BillingError::NotFound)?;
        if matches!(actor, Actor::Staff { .. }) {
            return Err(BillingError::Forbidden);
        }
        let chart = self
            .chart_for(actor, Some(plan.patient), request_id)
            .await?;
        let ended = PlanState::Cancelled {
            at: self.ports().clock.now(),
        };
        if !self.ports().billing.end_plan(plan.id, &ended).await? {
            return Err(PlanProblem::Ended.into());
        }
        self.audit(
            actor,
            chart.id,
            BillingStep::StartedPlan,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(())
    }

    /// The scheduled task: charges every active plan's instalment that is due (or its second
    /// attempt), completes plans that are paid and stops those whose instalment failed twice.
    /// Answers how many charges it made.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn charge_due_instalments(&self) -> Result<u64, BillingError> {
        let mut charged = 0;
        for plan in self.ports().billing.active_plans().await? {
            if self.run_plan(&plan).await? {
                charged += 1;
            }
        }
        Ok(charged)
    }

    /// Today's step of one plan; `true` when it charged.
    async fn run_plan(&self, plan: &Plan) -> Result<bool, BillingError> {
        let now = self.ports().clock.now();
        let settings = self.settings_of(plan.organization).await?;
        let ledger = self.ports().billing.ledger(plan.patient).await?;
        let step = next_step(plan, &ledger.plan_payments(plan), now.date_naive());
        let end =
            |state: PlanState| async move { self.ports().billing.end_plan(plan.id, &state).await };
        match step {
            Step::Wait => Ok(false),
            Step::Done => {
                end(PlanState::Completed { at: now }).await?;
                Ok(false)
            }
            Step::Stop { number } => {
                end(PlanState::Failed {
                    at: now,
                    instalment: number,
                })
                .await?;
                Ok(false)
            }
            Step::Charge { number, attempt } => {
                let payable = ledger.balance(settings.currency)?.payable;
                let due = plan
                    .amounts()
                    .get(usize::from(number) - 1)
                    .copied()
                    .unwrap_or(payable);
                // Never more than what is owed now (the patient may have paid some).
                let amount = if due.compare(payable)?.is_gt() {
                    payable
                } else {
                    due
                };
                if !amount.is_positive() {
                    end(PlanState::Completed { at: now }).await?;
                    return Ok(false);
                }
                let payment = Payment {
                    id: PaymentId::generate(self.ports().ids.as_ref()),
                    organization: plan.organization,
                    patient: plan.patient,
                    key: plan.key(number, attempt),
                    amount,
                    state: PaymentState::Pending,
                    created_at: now,
                    made_by: None,
                };
                // Another node took it, or the account moved: the next round looks again.
                if self
                    .ports()
                    .billing
                    .record_payment(&payment, ledger.version)
                    .await?
                    != Recorded::Recorded
                {
                    return Ok(false);
                }
                self.ports()
                    .log
                    .record(AccessEvent {
                        at: now,
                        actor: ActorRef {
                            kind: "patient",
                            account: plan.made_by,
                            role: None,
                            grant: None,
                        },
                        patient: Some(plan.patient),
                        action: crate::access::Action::PayBills,
                        export: None,
                        step: Some(AuditStep::Billing(BillingStep::Instalment)),
                        record_kind: None,
                        record: None,
                        outcome: Outcome::Allowed,
                        request_id: None,
                    })
                    .await?;
                let settled = self.charge_recorded(payment, &plan.card_token).await?;
                Ok(settled.state.charged())
            }
        }
    }
}
