//! The audit log of health-data access: who did what to which chart or record, when, under
//! which grant, and whether it was allowed. It never holds health data itself.
//!
//! **Invariant:** a use case writes its entry before it answers, and answers nothing when the
//! write fails ("if the audit write fails, the data is not returned").
//! **Invariant:** entries are append-only and chained by hash (the store adapter computes the
//! chain; [`ChainReport`] is what a verification finds).

use crate::access::{Action, Actor};
use crate::account::StaffRole;
use crate::export::ExportFormat;
use crate::ids::{AccountId, AuditEventId, GrantId, PatientId, RecordId};
use crate::record::RecordKind;
use crate::repo::RepoError;
use chrono::{DateTime, Utc};

/// How an access attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    /// Refused by the access decision (answered as "not found").
    Denied,
    /// Nothing with that id exists.
    NotFound,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::NotFound => "not_found",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Allowed, Self::Denied, Self::NotFound]
            .into_iter()
            .find(|o| o.code() == code)
    }
}

/// Who acted, as the log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorRef {
    /// `patient`, `staff`, `proxy` or `share_link`.
    pub kind: &'static str,
    pub account: Option<AccountId>,
    pub role: Option<StaffRole>,
    pub grant: Option<GrantId>,
}

impl From<&Actor> for ActorRef {
    fn from(a: &Actor) -> Self {
        Self {
            kind: a.kind_code(),
            account: a.account(),
            role: match a {
                Actor::Staff { role, .. } => Some(*role),
                Actor::Patient { .. } | Actor::Proxy { .. } | Actor::ShareLink { .. } => None,
            },
            grant: a.grant(),
        }
    }
}

/// One access to health data (or an attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    pub at: DateTime<Utc>,
    pub actor: ActorRef,
    /// The chart concerned (on whose behalf a proxy acted), when known.
    pub patient: Option<PatientId>,
    pub action: Action,
    /// For an export, which form it took ("downloaded FHIR export").
    pub export: Option<ExportFormat>,
    /// For a booking or a bill, which step it was (booked, moved, paid, refunded...).
    pub step: Option<Step>,
    pub record_kind: Option<RecordKind>,
    pub record: Option<RecordId>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
}

impl AccessEvent {
    /// The action code stored in the log: the action's, or the export format's.
    pub fn action_code(&self) -> &'static str {
        match (self.action, self.export, self.step) {
            (Action::Export, Some(format), _) => format.audit_code(),
            (_, _, Some(step)) => step.audit_code(),
            (action, _, _) => action.code(),
        }
    }
}

/// The step of a use case with several, told apart in the access history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Booking(BookingStep),
    Billing(BillingStep),
}

impl Step {
    /// The action code stored in the log.
    pub fn audit_code(self) -> &'static str {
        match self {
            Self::Booking(s) => s.audit_code(),
            Self::Billing(s) => s.audit_code(),
        }
    }
}

/// The steps of bill pay, each a movement of money or a look at a bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingStep {
    /// Looked at the balance, a statement, a payment or a receipt.
    Viewed,
    /// Paid (or tried to pay) an amount.
    Paid,
    /// Staff posted a statement.
    PostedStatement,
    /// Staff adjusted the balance (a credit or a charge), with a reason.
    Adjusted,
    /// Staff refunded (part of) a payment, with a reason.
    Refunded,
    /// The patient set up (or stopped) a payment plan.
    StartedPlan,
    /// The server charged an instalment of the plan the patient set up.
    Instalment,
}

impl BillingStep {
    /// The action code stored in the log.
    pub fn audit_code(self) -> &'static str {
        match self {
            Self::Viewed => "view_bills",
            Self::Paid => "pay_bill",
            Self::PostedStatement => "post_statement",
            Self::Adjusted => "adjust_balance",
            Self::Refunded => "refund_payment",
            Self::StartedPlan => "start_payment_plan",
            Self::Instalment => "plan_instalment",
        }
    }
}

/// The steps of booking a visit, told apart in the access history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStep {
    /// Looked at appointments (a list, one, its calendar file) or searched for a time.
    Viewed,
    Booked,
    Rescheduled,
    Cancelled,
    /// Asked to be told of an earlier time.
    Waitlisted,
}

impl BookingStep {
    /// The action code stored in the log.
    pub fn audit_code(self) -> &'static str {
        match self {
            Self::Viewed => "view_appointments",
            Self::Booked => "book",
            Self::Rescheduled => "reschedule",
            Self::Cancelled => "cancel_appointment",
            Self::Waitlisted => "join_waitlist",
        }
    }
}

/// Who an entry of a patient's access history was, as the store can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    pub kind: String,
    pub account: Option<AccountId>,
    /// The account's name at the time of reading the history.
    pub name: Option<String>,
    pub role: Option<StaffRole>,
    pub grant: Option<GrantId>,
}

/// One line of a patient's access history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub id: AuditEventId,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub accessor: Accessor,
    /// The action code (`read`, `view_chart`, `export`, ...).
    pub action: String,
    pub record_kind: Option<RecordKind>,
    pub record: Option<RecordId>,
    pub outcome: Outcome,
}

/// Who an access-history entry names, as the patient reading their history sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The reader themselves.
    You,
    /// Someone with an account, by the name it has now.
    Named(String),
    /// Whoever held a share link (no account, no name).
    ShareLink,
}

impl AccessEntry {
    /// Who did it, for the account `me` reading the history.
    pub fn who(&self, me: Option<AccountId>) -> Who {
        match (&self.accessor.account, &self.accessor.name) {
            (Some(account), _) if Some(*account) == me => Who::You,
            (_, Some(name)) => Who::Named(name.clone()),
            (_, None) => Who::ShareLink,
        }
    }
}

/// What a check of the hash chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// The first place the chain breaks, if any.
    pub first_break: Option<ChainBreak>,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's content no longer matches its hash: it was edited.
    Edited { seq: i64 },
    /// Entries before this one are missing (deleted), or it was moved.
    Missing { expected_seq: i64, found_seq: i64 },
    /// The entry does not link to the one before it.
    Unlinked { seq: i64 },
}

/// The audit log, as far as health-data access writes to and reads from it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait AccessLog: Send + Sync {
    /// Appends an entry; returns once it is durable.
    ///
    /// # Errors
    /// `Unavailable` when it could not be written (the caller must not answer with data).
    async fn record(&self, event: AccessEvent) -> Result<(), RepoError>;

    /// A patient's access history, newest first, entries before sequence number `before`.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn history(
        &self,
        patient: PatientId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessEntry>, RepoError>;

    /// What `account` did on other people's behalf (entries under a grant), newest first.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn on_behalf(
        &self,
        account: AccountId,
        limit: u32,
    ) -> Result<Vec<AccessEntry>, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn entry(account: Option<AccountId>, name: Option<&str>) -> AccessEntry {
        AccessEntry {
            id: AuditEventId::from_uuid(Uuid::from_u128(1)),
            seq: 1,
            at: DateTime::<Utc>::UNIX_EPOCH,
            accessor: Accessor {
                kind: if account.is_some() {
                    "staff"
                } else {
                    "share_link"
                }
                .into(),
                account,
                name: name.map(str::to_owned),
                role: None,
                grant: None,
            },
            action: "read".into(),
            record_kind: None,
            record: None,
            outcome: Outcome::Allowed,
        }
    }

    #[test]
    fn the_history_names_you_someone_by_name_or_a_share_link() {
        let ann = AccountId::from_uuid(Uuid::from_u128(10));
        let doc = AccountId::from_uuid(Uuid::from_u128(11));
        assert_eq!(entry(Some(ann), Some("Ann Lee")).who(Some(ann)), Who::You);
        assert_eq!(
            entry(Some(doc), Some("Dr Bo")).who(Some(ann)),
            Who::Named("Dr Bo".into())
        );
        assert_eq!(entry(None, None).who(Some(ann)), Who::ShareLink);
        assert_eq!(
            entry(Some(doc), Some("Dr Bo")).who(None),
            Who::Named("Dr Bo".into()),
            "nobody is 'you' to a reader without an account"
        );
    }
}
