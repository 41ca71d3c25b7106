//! Consent: what a patient lets someone else see — a proxy (a family member, a carer) with an
//! account, or a share link for someone without one.
//!
//! A grant's life is a type where illegal states cannot be written: it is `Pending` until the
//! invitee accepts, then `Active` until its end, or `Revoked` (by whom, when). `Expired` is
//! never stored: it is what a pending invitation or an active grant becomes when its time has
//! passed, as the `Clock` says ([`Grant::state_at`]).
//!
//! **Invariant:** a grant acts only through [`Grant::actor`], which gives an `Actor` carrying
//! its scope only while it is active and in force; every read then asks
//! [`crate::access::decide`] like any other. Nothing else checks a grant.

mod guardian;
mod link;
mod service;

pub use guardian::{GuardianError, GuardianRequest, Guardians};
pub use link::{LinkCreated, LinkError, LinkRequest, MAX_LINK_DAYS, OpenError};
pub use service::{
    AcceptError, ConsentError, ConsentPorts, ConsentService, DEFAULT_GRANT_DAYS, GRANTABLE_ACTIONS,
    GrantView, INVITATION_DAYS, MAX_GRANT_YEARS, ProxyChoice, ProxyInvitation, ScopeChoice,
    ScopeError,
};

use crate::access::{Actor, GrantScope};
use crate::account::TokenDigest;
use crate::ids::{AccountId, GrantId, PatientId};
use crate::repo::RepoError;
use crate::text::{Email, GrantText};
use chrono::{DateTime, Utc};

/// Where a grant is in its life, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Invited; the invitation works until `expires`.
    Pending {
        invited_at: DateTime<Utc>,
        expires: DateTime<Utc>,
    },
    /// Accepted; in force until `until`.
    Active {
        accepted_at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Ended by the patient (or staff acting with them) at `at`.
    Revoked { at: DateTime<Utc>, by: AccountId },
    /// Its time passed (never stored; see [`Grant::state_at`]).
    Expired,
}

/// Who the grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A person with an account, once they accepted (`None` while the invitation is pending),
    /// invited at `email`.
    Proxy {
        account: Option<AccountId>,
        email: Email,
        relationship: Option<GrantText>,
    },
    /// A parent or legal guardian of a minor, established by the front desk after checking
    /// documents; the account at `email` had to exist. Ends by itself at the patient's 18th
    /// birthday; the organisation's [`crate::organization::GuardianPolicy`] hides some labels
    /// from the guardian of a 12–17-year-old.
    Guardian {
        account: AccountId,
        email: Email,
        relationship: Option<GrantText>,
    },
    /// Whoever holds the link (and its passcode, when it has one: stored as an argon2id hash).
    ShareLink {
        recipient: Option<GrantText>,
        passcode: Option<crate::account::PasswordHash>,
        attempts: PasscodeAttempts,
    },
}

/// Wrong passcodes typed for a share link: after [`LOCK_AFTER`] the link is locked for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasscodeAttempts {
    pub failed: u32,
    pub last_failed: Option<DateTime<Utc>>,
    pub locked_at: Option<DateTime<Utc>>,
}

/// Wrong passcodes after which a share link is locked.
pub const LOCK_AFTER: u32 = 10;
/// Wrong passcodes allowed without waiting; each one after that waits twice as long as the one
/// before, from [`FIRST_WAIT_SECS`].
pub const FREE_ATTEMPTS: u32 = 3;
pub const FIRST_WAIT_SECS: i64 = 30;

impl PasscodeAttempts {
    /// When the next passcode may be tried (`None`: now), while the link is not locked.
    pub fn next_try_at(&self) -> Option<DateTime<Utc>> {
        let extra = self.failed.checked_sub(FREE_ATTEMPTS)?;
        let last = self.last_failed?;
        let wait = FIRST_WAIT_SECS.saturating_mul(1_i64 << extra.min(16));
        Some(last + chrono::Duration::seconds(wait))
    }
}

/// Who made a grant: the patient, or staff recording it with the patient present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMaker {
    Patient(AccountId),
    Staff(AccountId),
}

/// A patient's grant to someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub patient: PatientId,
    pub grantee: Grantee,
    pub scope: GrantScope,
    pub state: GrantState,
    pub note: Option<GrantText>,
    pub made_by: GrantMaker,
    pub made_at: DateTime<Utc>,
}

/// Storage of grants. **Invariant:** tokens (invitations, share links) are stored only as
/// digests; accepting an invitation uses its token up (exactly one concurrent caller wins).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait GrantRepository: Send + Sync {
    /// Stores a new grant, with the digest of its invitation or link token.
    ///
    /// # Errors
    /// `Conflict` when the id or the digest is taken; `Unavailable` when the store fails.
    async fn create(&self, grant: &Grant, token: Option<TokenDigest>) -> Result<(), RepoError>;

    /// The grant with this id, if any.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when a stored row does not parse.
    async fn find(&self, id: GrantId) -> Result<Option<Grant>, RepoError>;

    /// The grant whose token has this digest: a pending invitation's (until it is used), or
    /// a share link's (for as long as the link is not revoked).
    ///
    /// # Errors
    /// As [`GrantRepository::find`].
    async fn by_token(&self, digest: &TokenDigest) -> Result<Option<Grant>, RepoError>;

    /// Every grant of a patient, newest first.
    ///
    /// # Errors
    /// As [`GrantRepository::find`].
    async fn for_patient(&self, patient: PatientId) -> Result<Vec<Grant>, RepoError>;

    /// Every grant accepted by an account (whose records it may see), newest first.
    ///
    /// # Errors
    /// As [`GrantRepository::find`].
    async fn for_grantee(&self, account: AccountId) -> Result<Vec<Grant>, RepoError>;

    /// Turns a pending invitation into an active grant of `account` until `until`, and uses
    /// its token up; false when it was not pending any more (someone else was first).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn accept(
        &self,
        id: GrantId,
        account: AccountId,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Replaces the scope of a grant that is not revoked; false otherwise.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_scope(&self, id: GrantId, scope: &GrantScope) -> Result<bool, RepoError>;

    /// Revokes a grant that is not revoked yet; false otherwise.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn revoke(
        &self,
        id: GrantId,
        by: AccountId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Guardianships that ended by `now` (the patient came of age) whose patient was not told
    /// yet, oldest first, at most `limit`.
    ///
    /// # Errors
    /// As [`GrantRepository::find`].
    async fn guardianships_ended(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Grant>, RepoError>;

    /// Marks the end of a guardianship as told to the patient; false when it already was
    /// (another node was first).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn mark_end_notified(&self, id: GrantId, at: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Counts one wrong passcode for a share link at `at`, in one step (two wrong passcodes at
    /// once count twice), and locks the link when the count reaches `lock_after`. Answers the
    /// attempts after this one.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn passcode_failed(
        &self,
        id: GrantId,
        at: DateTime<Utc>,
        lock_after: u32,
    ) -> Result<PasscodeAttempts, RepoError>;
}

impl Grant {
    /// The state at `now`: a pending invitation past its expiry, or an active grant past its
    /// end, is `Expired`.
    pub fn state_at(&self, now: DateTime<Utc>) -> GrantState {
        match self.state {
            GrantState::Pending { expires, .. } if now >= expires => GrantState::Expired,
            GrantState::Active { until, .. } if now >= until => GrantState::Expired,
            s => s,
        }
    }

    /// The actor this grant lets `account` be at `now`: only an active grant, in force, for
    /// this very account (a share link for anyone holding it without a session, `account`
    /// `None`, unless locked). Everything that actor may then see is for `decide` to say.
    pub fn actor(&self, account: Option<AccountId>, now: DateTime<Utc>) -> Option<Actor> {
        if !matches!(self.state_at(now), GrantState::Active { .. }) {
            return None;
        }
        match (&self.grantee, account) {
            (
                Grantee::Proxy {
                    account: Some(mine),
                    ..
                },
                Some(asking),
            ) if *mine == asking => Some(Actor::Proxy {
                account: asking,
                grant: self.id,
                patient: self.patient,
                scope: self.scope.clone(),
            }),
            (Grantee::Guardian { account: mine, .. }, Some(asking)) if *mine == asking => {
                Some(Actor::Proxy {
                    account: asking,
                    grant: self.id,
                    patient: self.patient,
                    scope: self.scope.clone(),
                })
            }
            // A share link is for whoever holds it without signing in: never a session's.
            (Grantee::ShareLink { attempts, .. }, None) if attempts.locked_at.is_none() => {
                Some(Actor::ShareLink {
                    grant: self.id,
                    patient: self.patient,
                    scope: self.scope.clone(),
                })
            }
            _ => None,
        }
    }
}

impl GrantScope {
    /// Whether this scope allows nothing that `wider` does not: its kinds, actions and labels
    /// within `wider`'s, its period inside `wider`'s. Narrowing a grant must give such a scope.
    pub fn within(&self, wider: &GrantScope) -> bool {
        self.kinds.is_subset(&wider.kinds)
            && self.actions.is_subset(&wider.actions)
            && self.labels.iter().all(|l| wider.labels.contains(l))
            && self.valid_from >= wider.valid_from
            && self.valid_until <= wider.valid_until
    }
}

/// A consent service whose ports are mocks with no expectations: any use fails the test. For
/// adapter tests that never reach the consent use cases.
#[cfg(any(test, feature = "mocks"))]
pub fn consent_without_expectations() -> ConsentService {
    #[derive(Debug)]
    struct NilIds;
    impl crate::ids::IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    ConsentService::new(ConsentPorts {
        grants: std::sync::Arc::new(MockGrantRepository::new()),
        secrets: std::sync::Arc::new(crate::account::MockSecretSource::new()),
        mailer: std::sync::Arc::new(crate::account::MockMailer::new()),
        audit: std::sync::Arc::new(crate::account::MockAuthAudit::new()),
        log: std::sync::Arc::new(crate::audit::MockAccessLog::new()),
        patients: std::sync::Arc::new(crate::patient::MockPatientRepository::new()),
        organizations: std::sync::Arc::new(crate::organization::MockOrganizationRepository::new()),
        accounts: std::sync::Arc::new(crate::account::MockAccountRepository::new()),
        hasher: std::sync::Arc::new(crate::account::MockPasswordHasher::new()),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        ids: std::sync::Arc::new(NilIds),
        public_url: String::new(),
    })
}
