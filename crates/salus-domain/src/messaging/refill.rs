//! Refill requests: a patient (or a proxy with the refill grant) asks for more of an active
//! medication, to be sent to a pharmacy; a clinician of the organisation approves or denies.
//!
//! **Invariant:** a request moves only `Requested → Approved | Denied | Cancelled`, each once;
//! [`RefillRequest::answer`] is the one place that says which moves are legal, and the store
//! applies a move only to a request still requested (a conditional update), so two clinicians
//! answering at once give one answer.
//! **Invariant:** a medication has at most one request waiting, decided by the database (a
//! unique index over the waiting ones).

use crate::ids::{AccountId, OrganizationId, PatientId, PharmacyId, RecordId, RefillId};
use crate::repo::RepoError;
use crate::text::{Address, PharmacyName, Phone};
use chrono::{DateTime, Utc};

/// The most a patient may ask for at once (tablets, inhalers, pens…).
pub const MAX_QUANTITY: u32 = 1_000;

/// A pharmacy a patient sends refills to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pharmacy {
    pub id: PharmacyId,
    pub patient: PatientId,
    pub name: PharmacyName,
    pub address: Address,
    pub phone: Phone,
}

/// Why a clinician said no: one of a fixed list, so patients get a plain sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    NeedsVisit,
    NeedsTests,
    TooSoon,
    NoLongerPrescribed,
    PrescribedElsewhere,
    Other,
}

impl DenyReason {
    pub const ALL: [Self; 6] = [
        Self::NeedsVisit,
        Self::NeedsTests,
        Self::TooSoon,
        Self::NoLongerPrescribed,
        Self::PrescribedElsewhere,
        Self::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::NeedsVisit => "needs_visit",
            Self::NeedsTests => "needs_tests",
            Self::TooSoon => "too_soon",
            Self::NoLongerPrescribed => "no_longer_prescribed",
            Self::PrescribedElsewhere => "prescribed_elsewhere",
            Self::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The sentence the patient reads.
    pub fn label(self) -> &'static str {
        match self {
            Self::NeedsVisit => "We need to see you before renewing this medication.",
            Self::NeedsTests => "We need new test results before renewing this medication.",
            Self::TooSoon => "It is too early for a refill.",
            Self::NoLongerPrescribed => "This medication is no longer prescribed for you.",
            Self::PrescribedElsewhere => "Another clinician prescribes this medication.",
            Self::Other => "See the note from your clinician.",
        }
    }
}

/// A clinician's yes: how much, how many refills, instructions for the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub quantity: u32,
    pub refills: u8,
    pub instructions: Option<String>,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefillState {
    Requested,
    Approved {
        approval: Approval,
        by: AccountId,
        at: DateTime<Utc>,
    },
    Denied {
        reason: DenyReason,
        note: Option<String>,
        by: AccountId,
        at: DateTime<Utc>,
    },
    Cancelled {
        by: AccountId,
        at: DateTime<Utc>,
    },
}

impl RefillState {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved { .. } => "approved",
            Self::Denied { .. } => "denied",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// A move a request may be asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefillMove {
    Approve(Approval),
    Deny {
        reason: DenyReason,
        note: Option<String>,
    },
    Cancel,
}

/// Why a move was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IllegalMove {
    #[error("This request was already answered or cancelled.")]
    NotPending,
    #[error("Only the person who asked for this refill can cancel it.")]
    NotRequester,
}

impl IllegalMove {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotPending => "refill_not_pending",
            Self::NotRequester => "not_requester",
        }
    }
}

/// A request to refill a medication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefillRequest {
    pub id: RefillId,
    pub patient: PatientId,
    pub organization: OrganizationId,
    pub medication: RecordId,
    /// The medication's name when asked (the queue shows it without opening the chart).
    pub medication_name: String,
    /// The pharmacy as it was when asked.
    pub pharmacy: Pharmacy,
    pub quantity: u32,
    pub note: Option<String>,
    pub requested_by: AccountId,
    pub requested_at: DateTime<Utc>,
    pub state: RefillState,
}

impl RefillRequest {
    /// The state `by` moves the request to at `at`, if the move is legal: approving and
    /// denying (clinicians; who may is `decide`'s answer) and cancelling (only the account
    /// that asked) — all only while requested.
    ///
    /// # Errors
    /// [`IllegalMove`].
    pub fn answer(
        &self,
        by: AccountId,
        at: DateTime<Utc>,
        change: RefillMove,
    ) -> Result<RefillState, IllegalMove> {
        if self.state != RefillState::Requested {
            return Err(IllegalMove::NotPending);
        }
        Ok(match change {
            RefillMove::Approve(approval) => RefillState::Approved { approval, by, at },
            RefillMove::Deny { reason, note } => RefillState::Denied {
                reason,
                note,
                by,
                at,
            },
            RefillMove::Cancel if by == self.requested_by => RefillState::Cancelled { by, at },
            RefillMove::Cancel => return Err(IllegalMove::NotRequester),
        })
    }
}

/// Storage of pharmacies and refill requests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait RefillRepository: Send + Sync {
    /// Stores a pharmacy the patient saved.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn save_pharmacy(&self, pharmacy: &Pharmacy) -> Result<(), RepoError>;

    /// A chart's saved pharmacies, by name.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse.
    async fn pharmacies_of(&self, patient: PatientId) -> Result<Vec<Pharmacy>, RepoError>;

    /// Stores a new request (state requested).
    ///
    /// # Errors
    /// `Conflict` when the medication already has a request waiting.
    async fn create(&self, request: &RefillRequest) -> Result<(), RepoError>;

    /// The request with this id.
    ///
    /// # Errors
    /// As [`RefillRepository::pharmacies_of`].
    async fn find(&self, id: RefillId) -> Result<Option<RefillRequest>, RepoError>;

    /// A chart's requests, newest first.
    ///
    /// # Errors
    /// As [`RefillRepository::pharmacies_of`].
    async fn of_patient(&self, patient: PatientId) -> Result<Vec<RefillRequest>, RepoError>;

    /// An organisation's requests: the waiting ones oldest first (`waiting`), or the answered
    /// and cancelled ones newest first; at most `limit`.
    ///
    /// # Errors
    /// As [`RefillRepository::pharmacies_of`].
    async fn queue(
        &self,
        organization: OrganizationId,
        waiting: bool,
        limit: u32,
    ) -> Result<Vec<RefillRequest>, RepoError>;

    /// Moves a request that is still requested to `state`; false when it no longer is.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn settle(&self, id: RefillId, state: &RefillState) -> Result<bool, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn request(state: RefillState) -> RefillRequest {
        RefillRequest {
            id: RefillId::from_uuid(Uuid::from_u128(1)),
            patient: PatientId::from_uuid(Uuid::from_u128(2)),
            organization: OrganizationId::from_uuid(Uuid::from_u128(3)),
            medication: RecordId::from_uuid(Uuid::from_u128(4)),
            medication_name: "Lisinopril 10 mg".into(),
            pharmacy: Pharmacy {
                id: PharmacyId::from_uuid(Uuid::from_u128(5)),
                patient: PatientId::from_uuid(Uuid::from_u128(2)),
                name: PharmacyName::parse("Main St Pharmacy").unwrap(),
                address: Address::parse("1 Main St").unwrap(),
                phone: Phone::parse("555-0100").unwrap(),
            },
            quantity: 30,
            note: None,
            requested_by: ASKER,
            requested_at: at(),
            state,
        }
    }
    const ASKER: AccountId = AccountId::from_uuid(Uuid::from_u128(6));
    const DOC: AccountId = AccountId::from_uuid(Uuid::from_u128(7));
    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()
    }
    fn approval() -> Approval {
        Approval {
            quantity: 30,
            refills: 2,
            instructions: None,
        }
    }

    #[test]
    fn a_requested_refill_is_approved_denied_or_cancelled_by_its_asker_once() {
        let r = request(RefillState::Requested);
        assert!(matches!(
            r.answer(DOC, at(), RefillMove::Approve(approval())),
            Ok(RefillState::Approved { by: DOC, .. })
        ));
        let denied = r.answer(
            DOC,
            at(),
            RefillMove::Deny {
                reason: DenyReason::NeedsVisit,
                note: None,
            },
        );
        assert_eq!(denied.unwrap().code(), "denied");
        assert_eq!(
            r.answer(ASKER, at(), RefillMove::Cancel).unwrap().code(),
            "cancelled"
        );
        assert_eq!(
            r.answer(DOC, at(), RefillMove::Cancel),
            Err(IllegalMove::NotRequester)
        );
    }

    #[test]
    fn nothing_moves_once_answered_or_cancelled() {
        let answered = [
            RefillState::Approved {
                approval: approval(),
                by: DOC,
                at: at(),
            },
            RefillState::Denied {
                reason: DenyReason::TooSoon,
                note: None,
                by: DOC,
                at: at(),
            },
            RefillState::Cancelled {
                by: ASKER,
                at: at(),
            },
        ];
        for state in answered {
            let r = request(state);
            for change in [
                RefillMove::Approve(approval()),
                RefillMove::Deny {
                    reason: DenyReason::Other,
                    note: Some("x".into()),
                },
                RefillMove::Cancel,
            ] {
                assert_eq!(
                    r.answer(ASKER, at(), change.clone()),
                    Err(IllegalMove::NotPending)
                );
                assert_eq!(r.answer(DOC, at(), change), Err(IllegalMove::NotPending));
            }
        }
        assert_eq!(IllegalMove::NotPending.code(), "refill_not_pending");
    }

    #[test]
    fn deny_reasons_round_trip_through_their_codes() {
        for r in DenyReason::ALL {
            assert_eq!(DenyReason::from_code(r.code()), Some(r));
            assert!(r.label().ends_with('.'));
        }
        assert_eq!(DenyReason::from_code("because"), None);
    }
}
