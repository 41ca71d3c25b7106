//! Proving identity: tying an account to a chart.
//!
//! Two ways: (a) an **activation code** that front-desk staff issue for a chart (random,
//! stored as a digest, single use, expiring), entered by the patient together with their
//! date of birth; (b) without a code, the account waits in a **staff queue** that shows
//! charts whose demographics match; staff confirm one or reject.
//!
//! **Invariant:** staff act only within their own organisation; an account is linked at most
//! once (the database refuses a second link).

use super::model::{Account, AccountState, ChartLink, Role};
use super::password::SecretText;
use super::ports::{AuthEventKind, TokenDigest};
use super::service::AuthService;
use crate::access::{Action, Actor, Target, decide};
use crate::ids::{AccountId, OrganizationId, PatientId};
use crate::patient::Patient;
use crate::repo::RepoError;
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A stored activation code (by digest) for one chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCode {
    pub digest: TokenDigest,
    pub patient: PatientId,
    pub issued_by: AccountId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A patient's request that a clinic confirm who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClinicRequest {
    pub organization: OrganizationId,
    pub requested_at: DateTime<Utc>,
    /// When the clinic said it found no chart that is the person's, if it did.
    pub declined_at: Option<DateTime<Utc>>,
}

/// An account waiting for a front desk.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub account: Account,
    /// When it asked this organisation; `None` when it has not chosen a clinic.
    pub requested_at: Option<DateTime<Utc>>,
}

/// Where a patient account stands on the way to its records.
#[derive(Debug, Clone)]
pub enum IdentityStatus {
    /// Connected to a chart.
    Linked,
    /// No clinic asked yet.
    NoClinic,
    /// Waiting for the clinic since `since`.
    Waiting {
        clinic: crate::organization::Organization,
        since: DateTime<Utc>,
    },
    /// The clinic found no chart that is the person's.
    Declined {
        clinic: crate::organization::Organization,
        at: DateTime<Utc>,
    },
}

/// Why a clinic could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChooseClinicError {
    /// Staff accounts are not connected to charts.
    #[error("Staff accounts are not connected to records.")]
    Forbidden,
    #[error("Choose your clinic from the list.")]
    UnknownClinic,
    #[error("This account is already connected to a record.")]
    AlreadyLinked,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A staff decision on a queued account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    Confirmed { patient: PatientId },
    Rejected,
}

/// Storage for identity proofing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait IdentityRepository: Send + Sync {
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn store_code(&self, code: &ActivationCode) -> Result<(), RepoError>;
    /// The chart of an unused, unexpired code.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn peek_code(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<PatientId>, RepoError>;
    /// Uses the code up for `account`; exactly one concurrent caller wins.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn consume_code(
        &self,
        digest: &TokenDigest,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
    /// Ties the account to the chart if it is not tied to one yet; false otherwise.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn link(&self, account: AccountId, patient: PatientId) -> Result<bool, RepoError>;
    /// Active patient accounts without a chart waiting for this organisation: those that
    /// asked it to confirm them, and those that asked no clinic yet; not those it decided
    /// on. Oldest first, at most `limit`.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn queue(
        &self,
        organization: OrganizationId,
        limit: u32,
    ) -> Result<Vec<Waiting>, RepoError>;
    /// Records that the account asks `organization` to confirm who they are, in place of
    /// any earlier request; a refusal by that organisation is forgotten (it is asked again).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn request(
        &self,
        account: AccountId,
        organization: OrganizationId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// The account's request, if it made one, and whether the clinic declined it.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn request_of(&self, account: AccountId) -> Result<Option<ClinicRequest>, RepoError>;
    /// Records a staff decision.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn record_review(
        &self,
        account: AccountId,
        organization: OrganizationId,
        outcome: ReviewOutcome,
        by: AccountId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
}

/// Why the front desk got no activation code.
#[derive(Debug, thiserror::Error)]
pub enum IssueCodeError {
    /// The actor's role does not prove identities.
    #[error("not allowed")]
    Forbidden,
    /// No such chart in the actor's organisation (one answer for missing and elsewhere).
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why an activation code did not connect the account to a chart.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// Staff accounts are not connected to charts.
    #[error("Staff accounts are not connected to records.")]
    Forbidden,
    /// Wrong or expired code, or a birth date that does not match (one answer).
    #[error("The code or date of birth is not correct, or the code has expired.")]
    CodeRejected,
    #[error("this account is already connected to a record")]
    AlreadyLinked,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why the front desk got no identity queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The actor's role does not prove identities.
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why a review of a queued account changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The actor's role does not prove identities.
    #[error("not allowed")]
    Forbidden,
    /// The account is not in the queue, or the chart not in the organisation, or the chart
    /// does not match the account (one answer).
    #[error("not found")]
    NotFound,
    #[error("this account is already connected to a record")]
    AlreadyLinked,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A queued account and the charts that may be theirs.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub account: Account,
    /// When the account asked this organisation; `None` for an account that chose no clinic
    /// (listed only where some chart matches).
    pub requested_at: Option<DateTime<Utc>>,
    pub candidates: Vec<Patient>,
}

/// How long an activation code works unless configured otherwise.
pub const ACTIVATION_TTL_DAYS: i64 = 30;

/// The organisation the actor does `action` for (its own business: the identity queue, the
/// team), if the one access decision allows it.
pub(crate) fn organization_for(
    actor: &Actor,
    action: Action,
    now: DateTime<Utc>,
) -> Option<OrganizationId> {
    let Actor::Staff { organization, .. } = actor else {
        return None;
    };
    let target = Target::Organization {
        organization: *organization,
    };
    decide(actor, action, target, now)
        .is_allowed()
        .then_some(*organization)
}

/// Whether the actor may see who `chart` is, asked of the one access decision.
fn may_see_who(actor: &Actor, chart: &Patient, now: DateTime<Utc>) -> bool {
    let target = Target::Chart {
        patient: chart.id,
        organization: chart.organization_id,
    };
    decide(actor, Action::ViewDemographics, target, now).is_allowed()
}

/// Demographic match: same birth date (the query) and the same family name, ignoring case,
/// spaces and hyphens; a given name that matches too ranks first.
fn rank(account: &Account, chart: &Patient) -> Option<u8> {
    let norm = crate::patient::folded;
    if norm(account.name.family()) != norm(chart.name.family()) {
        return None;
    }
    Some(if norm(account.name.given()) == norm(chart.name.given()) {
        0
    } else {
        1
    })
}

impl AuthService {
    /// Front desk: a new activation code for a chart of the staff member's organisation,
    /// shown once.
    ///
    /// # Errors
    /// [`IssueCodeError::Forbidden`] for other roles; [`IssueCodeError::NotFound`] for a chart
    /// that does not exist or belongs to another organisation.
    pub async fn issue_activation_code(
        &self,
        actor: &Actor,
        patient: PatientId,
        request_id: Option<&str>,
    ) -> Result<SecretText, IssueCodeError> {
        let now = self.clock.now();
        let org =
            organization_for(actor, Action::ProofIdentity, now).ok_or(IssueCodeError::Forbidden)?;
        let staff = actor.account().ok_or(IssueCodeError::Forbidden)?;
        let chart = self
            .patients
            .find(patient)
            .await?
            .filter(|p| p.organization_id == org && may_see_who(actor, p, now))
            .ok_or(IssueCodeError::NotFound)?;
        let code = self.secrets.recovery_code();
        self.identity
            .store_code(&ActivationCode {
                digest: self.secrets.digest(&super::totp::normalise_recovery(&code)),
                patient: chart.id,
                issued_by: staff,
                issued_at: now,
                expires_at: now + Duration::days(self.config.activation_ttl_days),
            })
            .await?;
        self.record_demographics_read(actor, chart.id, request_id)
            .await?;
        self.audit_event(AuthEventKind::ActivationCodeIssued, Some(staff), request_id)
            .await?;
        Ok(code)
    }

    /// Patient: connects the signed-in account (not yet an actor on any chart: it has none)
    /// to the chart of an activation code, if the birth date matches the chart's. Failures
    /// count towards sign-in throttling.
    ///
    /// # Errors
    /// [`RedeemError::CodeRejected`] (one answer for every wrong input),
    /// [`RedeemError::AlreadyLinked`], [`RedeemError::Forbidden`] for staff.
    pub async fn redeem_activation_code(
        &self,
        account: &Account,
        code: &SecretText,
        birth_date: NaiveDate,
        request_id: Option<&str>,
    ) -> Result<PatientId, RedeemError> {
        if account.role != Role::Patient {
            return Err(RedeemError::Forbidden);
        }
        if matches!(account.chart, ChartLink::Linked { .. }) {
            return Err(RedeemError::AlreadyLinked);
        }
        let now = self.clock.now();
        let failures = self
            .accounts
            .failures_since(&account.email, now - Duration::hours(1))
            .await?;
        if super::service::throttle(&failures, now).is_some() {
            return Err(RedeemError::CodeRejected);
        }
        let digest = self.secrets.digest(&super::totp::normalise_recovery(code));
        let chart = match self.identity.peek_code(&digest, now).await? {
            Some(p) => self.patients.find(p).await?,
            None => None,
        };
        let Some(chart) = chart.filter(|c| c.birth_date == birth_date) else {
            self.accounts.add_failure(&account.email, now).await?;
            self.audit_event(
                AuthEventKind::ActivationCodeRejected,
                Some(account.id),
                request_id,
            )
            .await?;
            return Err(RedeemError::CodeRejected);
        };
        if !self.identity.consume_code(&digest, account.id, now).await? {
            return Err(RedeemError::CodeRejected);
        }
        if !self.identity.link(account.id, chart.id).await? {
            return Err(RedeemError::AlreadyLinked);
        }
        self.audit_event(AuthEventKind::ChartLinked, Some(account.id), request_id)
            .await?;
        Ok(chart.id)
    }

    /// Front desk: accounts waiting for identity review — every account that asked this
    /// organisation, and accounts that chose no clinic where some chart matches — each with
    /// the charts of the organisation that may be theirs (same birth date and family name).
    ///
    /// # Errors
    /// [`QueueError::Forbidden`] for other roles.
    pub async fn identity_queue(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
    ) -> Result<Vec<QueueEntry>, QueueError> {
        let now = self.clock.now();
        let org =
            organization_for(actor, Action::ProofIdentity, now).ok_or(QueueError::Forbidden)?;
        let mut entries = Vec::new();
        for Waiting {
            account,
            requested_at,
        } in self.identity.queue(org, 200).await?
        {
            let mut ranked: Vec<(u8, Patient)> = match account.birth_date {
                Some(dob) => self
                    .patients
                    .born_on(org, dob, 50)
                    .await?
                    .into_iter()
                    .filter(|c| may_see_who(actor, c, now))
                    .filter_map(|c| rank(&account, &c).map(|r| (r, c)))
                    .collect(),
                None => Vec::new(),
            };
            ranked.sort_by_key(|(r, _)| *r);
            if requested_at.is_some() || !ranked.is_empty() {
                entries.push(QueueEntry {
                    account,
                    requested_at,
                    candidates: ranked.into_iter().map(|(_, c)| c).collect(),
                });
            }
        }
        // Each chart shown is a read of its demographics: it appears in that patient's
        // access history, and nothing is shown if it cannot be recorded.
        for chart in entries.iter().flat_map(|e| &e.candidates) {
            self.record_demographics_read(actor, chart.id, request_id)
                .await?;
        }
        Ok(entries)
    }

    /// Front desk: how many people asked this organisation to confirm who they are and wait
    /// for an answer (for the home page: a count, so no chart is read).
    ///
    /// # Errors
    /// [`QueueError::Forbidden`] for other roles.
    pub async fn waiting_count(&self, actor: &Actor) -> Result<usize, QueueError> {
        let org = organization_for(actor, Action::ProofIdentity, self.clock.now())
            .ok_or(QueueError::Forbidden)?;
        Ok(self
            .identity
            .queue(org, 200)
            .await?
            .iter()
            .filter(|w| w.requested_at.is_some())
            .count())
    }

    /// Front desk: the account `id` if it waits for this organisation (asked it, or chose no
    /// clinic) — who a chart search is for. Reads no chart.
    ///
    /// # Errors
    /// [`QueueError::Forbidden`] for other roles.
    pub async fn waiting_account(
        &self,
        actor: &Actor,
        id: AccountId,
    ) -> Result<Option<Waiting>, QueueError> {
        let org = organization_for(actor, Action::ProofIdentity, self.clock.now())
            .ok_or(QueueError::Forbidden)?;
        let Some(account) = self.accounts.find(id).await?.filter(|a| {
            a.role == Role::Patient
                && matches!(a.state, AccountState::Active { .. })
                && a.chart == ChartLink::Unlinked
        }) else {
            return Ok(None);
        };
        let asked = self.identity.request_of(id).await?;
        Ok(match asked {
            Some(r) if r.organization != org => None,
            asked => Some(Waiting {
                account,
                requested_at: asked.map(|r| r.requested_at),
            }),
        })
    }

    /// Patient: asks a clinic (by its directory slug) to confirm who they are; the account
    /// joins that clinic's queue, in place of any clinic asked before.
    ///
    /// # Errors
    /// See [`ChooseClinicError`].
    pub async fn choose_clinic(
        &self,
        account: &Account,
        clinic: &crate::text::Slug,
        request_id: Option<&str>,
    ) -> Result<crate::organization::Organization, ChooseClinicError> {
        if account.role != Role::Patient {
            return Err(ChooseClinicError::Forbidden);
        }
        if matches!(account.chart, ChartLink::Linked { .. }) {
            return Err(ChooseClinicError::AlreadyLinked);
        }
        let org = self
            .organizations
            .find_by_slug(clinic)
            .await?
            .ok_or(ChooseClinicError::UnknownClinic)?;
        self.identity
            .request(account.id, org.id, self.clock.now())
            .await?;
        self.audit_event(
            AuthEventKind::IdentityRequested,
            Some(account.id),
            request_id,
        )
        .await?;
        Ok(org)
    }

    /// Patient: where their account stands on the way to its records.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when the asked clinic is gone.
    pub async fn identity_status(&self, account: &Account) -> Result<IdentityStatus, RepoError> {
        if matches!(account.chart, ChartLink::Linked { .. }) {
            return Ok(IdentityStatus::Linked);
        }
        let Some(request) = self.identity.request_of(account.id).await? else {
            return Ok(IdentityStatus::NoClinic);
        };
        let clinic = self
            .organizations
            .find(request.organization)
            .await?
            .ok_or(RepoError::Corrupt("identity_requests.organization_id"))?;
        Ok(match request.declined_at {
            Some(at) => IdentityStatus::Declined { clinic, at },
            None => IdentityStatus::Waiting {
                clinic,
                since: request.requested_at,
            },
        })
    }

    /// Writes that the actor saw who a chart is into that patient's access history.
    async fn record_demographics_read(
        &self,
        actor: &Actor,
        patient: PatientId,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.access
            .record(crate::audit::AccessEvent {
                at: self.clock.now(),
                actor: actor.into(),
                patient: Some(patient),
                action: Action::ViewDemographics,
                step: None,
                export: None,
                record_kind: None,
                record: None,
                outcome: crate::audit::Outcome::Allowed,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// Front desk: confirms that a waiting account is the person of `patient` (a chart of the
    /// staff member's organisation born on the account's birth date — a candidate of the
    /// queue, or a chart found by search after checking the person's documents, so the name
    /// may differ), or declines: no chart here is theirs.
    ///
    /// # Errors
    /// [`ReviewError::NotFound`] for an account waiting for another clinic, or a chart
    /// outside the organisation or born on another day.
    pub async fn review_identity(
        &self,
        actor: &Actor,
        account: AccountId,
        decision: ReviewOutcome,
        request_id: Option<&str>,
    ) -> Result<(), ReviewError> {
        let now = self.clock.now();
        let org =
            organization_for(actor, Action::ProofIdentity, now).ok_or(ReviewError::Forbidden)?;
        let staff = actor.account().ok_or(ReviewError::Forbidden)?;
        let target = self
            .accounts
            .find(account)
            .await?
            .filter(|a| a.role == Role::Patient && matches!(a.state, AccountState::Active { .. }))
            .ok_or(ReviewError::NotFound)?;
        if matches!(target.chart, ChartLink::Linked { .. }) {
            return Err(ReviewError::AlreadyLinked);
        }
        let asked = self.identity.request_of(target.id).await?;
        if asked.is_some_and(|r| r.organization != org) {
            return Err(ReviewError::NotFound);
        }
        if let ReviewOutcome::Confirmed { patient } = decision {
            let chart = self
                .patients
                .find(patient)
                .await?
                .filter(|p| p.organization_id == org && may_see_who(actor, p, now))
                .ok_or(ReviewError::NotFound)?;
            if target.birth_date != Some(chart.birth_date) {
                return Err(ReviewError::NotFound);
            }
            if !self.identity.link(target.id, chart.id).await? {
                return Err(ReviewError::AlreadyLinked);
            }
            self.audit_event(AuthEventKind::ChartLinked, Some(target.id), request_id)
                .await?;
        }
        self.identity
            .record_review(target.id, org, decision, staff, now)
            .await?;
        self.audit_event(AuthEventKind::IdentityReviewed, Some(staff), request_id)
            .await?;
        Ok(())
    }
}

impl AuthService {
    /// Front desk: an activation code for the chart with this medical record number in the
    /// staff member's organisation (what a person at the desk knows).
    ///
    /// # Errors
    /// As [`AuthService::issue_activation_code`].
    pub async fn issue_activation_code_for_mrn(
        &self,
        actor: &Actor,
        mrn: &crate::text::Mrn,
        request_id: Option<&str>,
    ) -> Result<SecretText, IssueCodeError> {
        let org = organization_for(actor, Action::ProofIdentity, self.clock.now())
            .ok_or(IssueCodeError::Forbidden)?;
        let chart = self
            .patients
            .find_by_mrn(org, mrn)
            .await?
            .ok_or(IssueCodeError::NotFound)?;
        self.issue_activation_code(actor, chart.id, request_id)
            .await
    }
}
