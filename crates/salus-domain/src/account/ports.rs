//! What the account use cases need from the outside world.

use super::model::Account;
use super::password::SecretText;
use crate::ids::{AccountId, OrganizationId, SessionId};
use crate::repo::RepoError;
use crate::text::Email;
use chrono::{DateTime, Utc};

/// An argon2id hash in PHC string form. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash uses weaker parameters than the current ones.
    pub needs_rehash: bool,
}

/// Why hashing did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are queued; the caller should answer 503 with Retry-After.
    #[error("password hashing is saturated")]
    Busy { retry_after_secs: u32 },
    #[error("password hashing failed")]
    Failed,
}

/// Slow, salted password hashing that never blocks the async executor.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A new hash of `password` with the current parameters.
    ///
    /// # Errors
    /// `Busy` when the queue is full; `Failed` when hashing fails.
    async fn hash(&self, password: SecretText) -> Result<PasswordHash, HashError>;

    /// Checks `password` against `hash`. With `None` (no such account) it spends the same
    /// time on a fixed dummy hash and answers "no match", so timing tells nothing.
    ///
    /// # Errors
    /// As [`PasswordHasher::hash`].
    async fn verify(
        &self,
        password: SecretText,
        hash: Option<PasswordHash>,
    ) -> Result<Verified, HashError>;
}

/// A list of commonly used or breached passwords, and a guessability estimate built on it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait CommonPasswords: Send + Sync {
    fn is_common(&self, candidate: &SecretText) -> bool;

    /// How hard the password would be to guess, with `personal` words (name, email, birth
    /// date) counted as known to an attacker. Only called for at most 128 code points.
    fn estimate(&self, candidate: &SecretText, personal: &[String]) -> StrengthEstimate;
}

/// A zxcvbn-style estimate: `score` 0 (guessed at once) to 4 (very hard to guess), and
/// advice in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrengthEstimate {
    pub score: u8,
    pub warning: Option<String>,
    pub suggestions: Vec<String>,
}

/// The SHA-256 digest of a token: what is stored instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Randomness for secrets, and their digests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretSource: Send + Sync {
    /// A new 256-bit token from a CSPRNG, URL-safe text.
    fn new_token(&self) -> SecretText;
    /// The digest stored in place of a token.
    fn digest(&self, token: &SecretText) -> TokenDigest;
    /// The digest of any bytes (what a send carried, for its idempotency fingerprint).
    fn digest_bytes(&self, bytes: &[u8]) -> TokenDigest;
    /// A recovery code people can type: 80 random bits as 16 base32 characters.
    fn recovery_code(&self) -> SecretText;
}

/// What an emailed token is for; a token of one purpose never serves another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// The step between a correct password and the second factor.
    SecondFactor,
    /// An administrator's invitation to a new member of staff.
    StaffInvite,
    /// A new email address waiting to be confirmed.
    ChangeEmail,
}

impl TokenPurpose {
    pub fn code(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::SecondFactor => "second_factor",
            Self::StaffInvite => "staff_invite",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// A single-use emailed token, stored by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailToken {
    pub digest: TokenDigest,
    pub account: AccountId,
    pub purpose: TokenPurpose,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// For [`TokenPurpose::ChangeEmail`]: the address being confirmed.
    pub new_email: Option<Email>,
}

/// Storage of emailed tokens.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait TokenRepository: Send + Sync {
    /// Stores a new token.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn store(&self, token: &EmailToken) -> Result<(), RepoError>;

    /// Uses up the token if it exists, has this purpose, is unused and unexpired at `now`.
    /// The database decides races: of many concurrent calls exactly one gets the account.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn consume(
        &self,
        digest: &TokenDigest,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>, RepoError>;

    /// As [`TokenRepository::consume`] for a [`TokenPurpose::ChangeEmail`] token: the
    /// account and the new address it confirms.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn consume_email_change(
        &self,
        digest: &TokenDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccountId, Email)>, RepoError>;

    /// The account of a token that [`TokenRepository::consume`] would accept now, without
    /// using it up (to check a new password before spending a reset link).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn peek(
        &self,
        digest: &TokenDigest,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>, RepoError>;

    /// When the newest token of this purpose was issued to the account (resend throttling).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn latest_issued(
        &self,
        account: AccountId,
        purpose: TokenPurpose,
    ) -> Result<Option<DateTime<Utc>>, RepoError>;
}

/// Storage of accounts and their failed sign-ins.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait AccountRepository: Send + Sync {
    /// Stores a new account.
    ///
    /// # Errors
    /// `Conflict` when the email is taken; `Unavailable` when the store fails.
    async fn create(&self, account: &Account) -> Result<(), RepoError>;

    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when the row does not parse.
    async fn find(&self, id: AccountId) -> Result<Option<Account>, RepoError>;

    /// The account with this email (compared case-insensitively), if any.
    ///
    /// # Errors
    /// As [`AccountRepository::find`].
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, RepoError>;

    /// Marks the email proven: the account becomes active.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn activate(&self, id: AccountId, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Replaces the password hash.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_password(&self, id: AccountId, hash: &PasswordHash) -> Result<(), RepoError>;

    /// Changes the sign-in address.
    ///
    /// # Errors
    /// `Conflict` when another account has it; `Unavailable` when the store fails.
    async fn set_email(&self, id: AccountId, email: &Email) -> Result<(), RepoError>;

    /// Failed sign-ins (and second-factor or activation codes) for an email address at or
    /// after `since`, oldest first. Counted per normalised address whether or not an account
    /// has it, so the throttle cannot tell registered addresses from unknown ones.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn failures_since(
        &self,
        who: &Email,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, RepoError>;

    /// Records a failure for an email address (and may forget failures older than an hour).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn add_failure(&self, who: &Email, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Forgets an address's failures after a successful sign-in.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn clear_failures(&self, who: &Email) -> Result<(), RepoError>;

    /// The accounts connected to a chart.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn linked_to(&self, patient: crate::ids::PatientId) -> Result<Vec<Account>, RepoError>;

    /// Every staff account of an organisation, active or not.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn staff_of(&self, organization: OrganizationId) -> Result<Vec<Account>, RepoError>;
}

/// A server-side session. The token itself is only ever in the client's hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub account: AccountId,
    pub digest: TokenDigest,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the person last proved who they are in this session (sign-in or re-entering
    /// the password); sensitive actions need this to be recent.
    pub authenticated_at: DateTime<Utc>,
    /// When the account signed in before this session began (what is "new" is counted
    /// from then); `None` for a first sign-in.
    pub previous_sign_in_at: Option<DateTime<Utc>>,
    /// The browser and system it was opened from, in words ("Firefox on Windows").
    pub device: Option<String>,
}

/// Storage of sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait SessionRepository: Send + Sync {
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn create(&self, session: &Session) -> Result<(), RepoError>;

    /// The session with this token digest and the account it belongs to (one read: this
    /// runs on every request).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn find_by_digest(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<(Session, Account)>, RepoError>;

    /// Records activity (for the idle timeout).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Records that the person re-entered their password in this session.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn reauthenticated(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Ends the session; later use is refused.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Ends every live session of the account except `keep`; answers how many ended.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn revoke_all(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// When the account last began a session (revoked and expired ones included), if ever.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn last_sign_in(&self, account: AccountId) -> Result<Option<DateTime<Utc>>, RepoError>;

    /// The account's sessions that are not revoked, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn live_for_account(&self, account: AccountId) -> Result<Vec<Session>, RepoError>;
}

/// An email the domain composed. **Invariant:** bodies come only from the templates in the
/// service and never contain health information.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why an email was not handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the email could not be sent")]
pub struct MailError;

/// Sends email (SMTP, or a local outbox folder).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// # Errors
    /// [`MailError`] when the message could not be handed over.
    async fn send(&self, email: OutgoingEmail) -> Result<(), MailError>;
}

/// Emails every account linked to `patient`'s chart. The text says that something is
/// waiting, never what; a mail that cannot be handed over is logged by the adapter and the
/// change that prompted it stands.
///
/// # Errors
/// When the accounts cannot be read.
pub async fn email_chart(
    accounts: &dyn AccountRepository,
    mailer: &dyn Mailer,
    patient: crate::ids::PatientId,
    subject: &str,
    body: &str,
) -> Result<(), RepoError> {
    for account in accounts.linked_to(patient).await? {
        let _ = mailer
            .send(OutgoingEmail {
                to: account.email,
                subject: subject.to_owned(),
                body: body.to_owned(),
            })
            .await;
    }
    Ok(())
}

/// Authentication events written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEventKind {
    Registered,
    RegistrationForExistingEmail,
    EmailVerified,
    EmailVerificationFailed,
    SignInSucceeded,
    SignInFailed,
    SignInRefusedUnverified,
    SignInThrottled,
    AccountLocked,
    SignedOut,
    VerificationResent,
    PasswordResetRequested,
    PasswordReset,
    PasswordChanged,
    SessionRevoked,
    SecondFactorEnrolled,
    SecondFactorFailed,
    SecondFactorRemoved,
    RecoveryCodesReplaced,
    StaffCreated,
    Reauthenticated,
    ActivationCodeIssued,
    ActivationCodeRejected,
    ChartLinked,
    IdentityReviewed,
    IdentityRequested,
    ConsentInvited,
    ConsentAccepted,
    ConsentChanged,
    ConsentRevoked,
    GuardianRecorded,
    GuardianPolicyChanged,
    ShareLinkCreated,
    ShareLinkPasscodeFailed,
    ShareLinkLocked,
    StaffInvited,
    StaffSetupCompleted,
    EmailChangeRequested,
    EmailChanged,
}

impl AuthEventKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Registered => "auth.registered",
            Self::RegistrationForExistingEmail => "auth.registration_existing_email",
            Self::EmailVerified => "auth.email_verified",
            Self::EmailVerificationFailed => "auth.email_verification_failed",
            Self::SignInSucceeded => "auth.sign_in",
            Self::SignInFailed => "auth.sign_in_failed",
            Self::SignInRefusedUnverified => "auth.sign_in_unverified",
            Self::SignInThrottled => "auth.sign_in_throttled",
            Self::AccountLocked => "auth.account_locked",
            Self::SignedOut => "auth.signed_out",
            Self::VerificationResent => "auth.verification_resent",
            Self::PasswordResetRequested => "auth.password_reset_requested",
            Self::PasswordReset => "auth.password_reset",
            Self::PasswordChanged => "auth.password_changed",
            Self::SessionRevoked => "auth.session_revoked",
            Self::SecondFactorEnrolled => "auth.second_factor_enrolled",
            Self::SecondFactorFailed => "auth.second_factor_failed",
            Self::SecondFactorRemoved => "auth.second_factor_removed",
            Self::RecoveryCodesReplaced => "auth.recovery_codes_replaced",
            Self::StaffCreated => "auth.staff_created",
            Self::Reauthenticated => "auth.reauthenticated",
            Self::ActivationCodeIssued => "identity.activation_code_issued",
            Self::ActivationCodeRejected => "identity.activation_code_rejected",
            Self::ChartLinked => "identity.chart_linked",
            Self::IdentityReviewed => "identity.reviewed",
            Self::IdentityRequested => "identity.requested",
            Self::ConsentInvited => "consent.invited",
            Self::ConsentAccepted => "consent.accepted",
            Self::ConsentChanged => "consent.changed",
            Self::ConsentRevoked => "consent.revoked",
            Self::GuardianRecorded => "consent.guardian_recorded",
            Self::GuardianPolicyChanged => "consent.guardian_policy_changed",
            Self::ShareLinkCreated => "consent.share_link_created",
            Self::ShareLinkPasscodeFailed => "consent.share_link_passcode_failed",
            Self::ShareLinkLocked => "consent.share_link_locked",
            Self::StaffInvited => "auth.staff_invited",
            Self::StaffSetupCompleted => "auth.staff_setup_completed",
            Self::EmailChangeRequested => "auth.email_change_requested",
            Self::EmailChanged => "auth.email_changed",
        }
    }
}

impl AuthEventKind {
    /// Whether the event records something that did not succeed (the audit log's outcome).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::SignInFailed
                | Self::EmailVerificationFailed
                | Self::SignInRefusedUnverified
                | Self::SignInThrottled
                | Self::AccountLocked
                | Self::SecondFactorFailed
                | Self::ActivationCodeRejected
                | Self::ShareLinkPasscodeFailed
                | Self::ShareLinkLocked
        )
    }
}

/// One authentication event: who, when, what. Never a password, token or health data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    pub at: DateTime<Utc>,
    pub kind: AuthEventKind,
    pub account: Option<AccountId>,
    pub request_id: Option<String>,
}

/// The audit log, as far as authentication writes to it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait AuthAudit: Send + Sync {
    /// # Errors
    /// `Unavailable` when the entry could not be written.
    async fn record(&self, event: AuthEvent) -> Result<(), RepoError>;
}
