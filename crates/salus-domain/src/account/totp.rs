//! The TOTP second factor (RFC 6238): enrolment with a provisioning URI, confirmation with a
//! code, ten single-use recovery codes, and sign-in that asks for a code after the password.
//!
//! **Invariant:** a code is accepted at most once per time step: the store records the last
//! step used and only a later step can pass (the database decides races).

use super::model::{AccountState, Role};
use super::password::SecretText;
use super::ports::{AuthEventKind, EmailToken, Session, TokenDigest, TokenPurpose};
use super::service::{AuthService, LoginError, LoginOutcome, SessionError};
use crate::ids::{AccountId, SessionId};
use crate::repo::RepoError;
use chrono::{DateTime, Duration, Utc};

/// A TOTP shared secret. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The TOTP algorithm and secret generation.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TotpAlgorithm: Send + Sync {
    /// A new random 160-bit secret.
    fn new_secret(&self) -> TotpSecret;
    /// The time step (30 s) of the current or an adjacent step whose code is `code`.
    fn matching_step(&self, secret: &TotpSecret, code: &str, now: DateTime<Utc>) -> Option<u64>;
    /// The `otpauth://` URI an authenticator app scans.
    fn provisioning_uri(&self, secret: &TotpSecret, account_label: &str) -> String;
    /// The secret as base32, for typing in by hand.
    fn base32(&self, secret: &TotpSecret) -> String;
}

/// The stored second factor of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    pub secret: TotpSecret,
    /// `None` while enrolment waits for its first code.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// Storage of second factors and recovery codes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait TotpRepository: Send + Sync {
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn get(&self, account: AccountId) -> Result<Option<TotpRecord>, RepoError>;
    /// Starts (or restarts) an unconfirmed enrolment; a confirmed one is left alone and
    /// `Conflict` is answered.
    ///
    /// # Errors
    /// `Conflict` when a confirmed second factor exists; `Unavailable` when the store fails.
    async fn put_pending(&self, account: AccountId, secret: &TotpSecret) -> Result<(), RepoError>;
    /// Marks the enrolment confirmed and stores the digests of its recovery codes.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn confirm(
        &self,
        account: AccountId,
        at: DateTime<Utc>,
        recovery: &[TokenDigest],
    ) -> Result<(), RepoError>;
    /// Records that a code of `step` was used; false when that step or a later one was
    /// already used (a replay).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn use_step(&self, account: AccountId, step: u64) -> Result<bool, RepoError>;
    /// Removes the account's second factor and its recovery codes; false when it had none.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn remove(&self, account: AccountId) -> Result<bool, RepoError>;
    /// Uses up a recovery code; false when it is unknown or used.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn use_recovery_code(
        &self,
        account: AccountId,
        digest: &TokenDigest,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// What to show a person enrolling. Redacted in `Debug`: it is the shared secret.
#[derive(Clone)]
pub struct TotpEnrollment {
    pub provisioning_uri: String,
    pub secret_base32: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("not signed in")]
    NotSignedIn,
    /// Enter the password again first (sensitive action).
    #[error("please enter your password again")]
    ReauthenticationRequired,
    #[error("a second factor is already set up")]
    AlreadyEnrolled,
    #[error("no enrolment is waiting for confirmation")]
    NotStarted,
    #[error("the code is not correct")]
    WrongCode,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why setting up an authenticator app did not start.
#[derive(Debug, thiserror::Error)]
pub enum BeginTotpError {
    #[error("not signed in")]
    NotSignedIn,
    /// Enter the password again first (sensitive action).
    #[error("please enter your password again")]
    ReauthenticationRequired,
    #[error("a second factor is already set up")]
    AlreadyEnrolled,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<SessionError> for BeginTotpError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid => Self::NotSignedIn,
            SessionError::Repo(r) => Self::Repo(r),
        }
    }
}

impl From<SessionError> for TotpError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid => Self::NotSignedIn,
            SessionError::Repo(r) => Self::Repo(r),
        }
    }
}

/// How long a sign-in may wait between password and code.
/// Why the authenticator was not turned off or given new recovery codes.
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorChangeError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("Enter your password again first.")]
    ReauthenticationRequired,
    #[error("No authenticator app is set up for this account.")]
    NotEnrolled,
    /// Staff accounts always sign in with a second factor.
    #[error("Staff accounts must keep their authenticator app.")]
    StaffMustKeepIt,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<SessionError> for SecondFactorChangeError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid => Self::NotSignedIn,
            SessionError::Repo(r) => Self::Repo(r),
        }
    }
}

pub const SECOND_FACTOR_TTL_MINUTES: i64 = 5;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;

impl AuthService {
    /// When the account's authenticator app was turned on; `None` while it has none (or
    /// only an enrolment waiting for its first code).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    pub async fn second_factor_since(
        &self,
        account: AccountId,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        Ok(self.totp.get(account).await?.and_then(|r| r.confirmed_at))
    }

    /// Starts TOTP enrolment for the signed-in account.
    ///
    /// # Errors
    /// See [`BeginTotpError`].
    pub async fn begin_totp(
        &self,
        session_token: &SecretText,
    ) -> Result<TotpEnrollment, BeginTotpError> {
        let who = self
            .authenticate_recent(session_token)
            .await?
            .ok_or(BeginTotpError::ReauthenticationRequired)?;
        let secret = self.totp_algorithm.new_secret();
        match self.totp.put_pending(who.account.id, &secret).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(BeginTotpError::AlreadyEnrolled),
            Err(e) => return Err(e.into()),
        }
        Ok(TotpEnrollment {
            provisioning_uri: self
                .totp_algorithm
                .provisioning_uri(&secret, who.account.email.as_str()),
            secret_base32: self.totp_algorithm.base32(&secret),
        })
    }

    /// Confirms enrolment with a first code; answers the recovery codes, shown once.
    ///
    /// # Errors
    /// [`TotpError::WrongCode`], [`TotpError::NotStarted`], [`TotpError::NotSignedIn`].
    pub async fn confirm_totp(
        &self,
        session_token: &SecretText,
        code: &str,
        request_id: Option<&str>,
    ) -> Result<Vec<SecretText>, TotpError> {
        let who = self
            .authenticate_recent(session_token)
            .await?
            .ok_or(TotpError::ReauthenticationRequired)?;
        self.enrol_confirmed(who.account.id, code, request_id).await
    }

    /// Confirms an enrolment of `account` with `code` (used by the sign-in and admin paths).
    pub(crate) async fn enrol_confirmed(
        &self,
        account: AccountId,
        code: &str,
        request_id: Option<&str>,
    ) -> Result<Vec<SecretText>, TotpError> {
        let record = self.totp.get(account).await?.ok_or(TotpError::NotStarted)?;
        if record.confirmed_at.is_some() {
            return Err(TotpError::AlreadyEnrolled);
        }
        let now = self.clock.now();
        let step = self
            .totp_algorithm
            .matching_step(&record.secret, code, now)
            .ok_or(TotpError::WrongCode)?;
        if !self.totp.use_step(account, step).await? {
            return Err(TotpError::WrongCode);
        }
        let codes: Vec<SecretText> = (0..RECOVERY_CODES)
            .map(|_| self.secrets.recovery_code())
            .collect();
        let digests: Vec<TokenDigest> = codes
            .iter()
            .map(|c| self.secrets.digest(&normalise_recovery(c)))
            .collect();
        self.totp.confirm(account, now, &digests).await?;
        self.audit_event(
            AuthEventKind::SecondFactorEnrolled,
            Some(account),
            request_id,
        )
        .await?;
        Ok(codes)
    }

    /// Turns the signed-in patient's authenticator off (recovery codes included), after a
    /// recent password entry; audited, and the owner is told by email.
    ///
    /// # Errors
    /// See [`SecondFactorChangeError`].
    pub async fn turn_off_totp(
        &self,
        session_token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<(), SecondFactorChangeError> {
        let who = self
            .authenticate_recent(session_token)
            .await?
            .ok_or(SecondFactorChangeError::ReauthenticationRequired)?;
        if matches!(who.account.role, Role::Staff { .. }) {
            return Err(SecondFactorChangeError::StaffMustKeepIt);
        }
        if !self.totp.remove(who.account.id).await? {
            return Err(SecondFactorChangeError::NotEnrolled);
        }
        self.send(security_notice(
            &who.account.email,
            "The authenticator app of your patient portal account was turned off",
            "The authenticator app was just turned off for your patient portal account: signing in now needs only your password.",
            &self.config.public_url,
        ))
        .await;
        self.audit_event(
            AuthEventKind::SecondFactorRemoved,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(())
    }

    /// New recovery codes for the signed-in account, in place of every earlier one (used or
    /// not), after a recent password entry; shown once, audited, and the owner is told by
    /// email.
    ///
    /// # Errors
    /// See [`SecondFactorChangeError`].
    pub async fn new_recovery_codes(
        &self,
        session_token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<Vec<SecretText>, SecondFactorChangeError> {
        let who = self
            .authenticate_recent(session_token)
            .await?
            .ok_or(SecondFactorChangeError::ReauthenticationRequired)?;
        let since = self
            .totp
            .get(who.account.id)
            .await?
            .and_then(|r| r.confirmed_at)
            .ok_or(SecondFactorChangeError::NotEnrolled)?;
        let codes: Vec<SecretText> = (0..RECOVERY_CODES)
            .map(|_| self.secrets.recovery_code())
            .collect();
        let digests: Vec<TokenDigest> = codes
            .iter()
            .map(|c| self.secrets.digest(&normalise_recovery(c)))
            .collect();
        // Confirming again at the same instant keeps the factor and replaces the codes.
        self.totp.confirm(who.account.id, since, &digests).await?;
        self.send(security_notice(
            &who.account.email,
            "New recovery codes for your patient portal account",
            "New recovery codes were just made for your patient portal account; the earlier ones no longer work.",
            &self.config.public_url,
        ))
        .await;
        self.audit_event(
            AuthEventKind::RecoveryCodesReplaced,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(codes)
    }

    /// After a correct password: whether a code is needed, and if so a short-lived challenge.
    pub(crate) async fn second_factor_gate(
        &self,
        account: &super::model::Account,
    ) -> Result<Option<SecretText>, LoginError> {
        let record = self.totp.get(account.id).await?;
        let enrolled = record.is_some_and(|r| r.confirmed_at.is_some());
        if !enrolled {
            if matches!(account.role, Role::Staff { .. }) {
                return Err(LoginError::SecondFactorRequired);
            }
            return Ok(None);
        }
        let challenge = self.secrets.new_token();
        let now = self.clock.now();
        self.tokens
            .store(&EmailToken {
                digest: self.secrets.digest(&challenge),
                account: account.id,
                purpose: TokenPurpose::SecondFactor,
                issued_at: now,
                expires_at: now + Duration::minutes(SECOND_FACTOR_TTL_MINUTES),
                new_email: None,
            })
            .await?;
        Ok(Some(challenge))
    }

    /// Completes a sign-in with the code from the authenticator app, or a recovery code.
    ///
    /// # Errors
    /// [`LoginError::InvalidCredentials`] for an unknown or expired challenge or a wrong or
    /// replayed code (which counts as a failed sign-in), and the throttling errors.
    pub async fn complete_second_factor(
        &self,
        challenge: &SecretText,
        code: &str,
        user_agent: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<LoginOutcome, LoginError> {
        let now = self.clock.now();
        let digest = self.secrets.digest(challenge);
        let account_id = self
            .tokens
            .peek(&digest, TokenPurpose::SecondFactor, now)
            .await?
            .ok_or(LoginError::InvalidCredentials)?;
        let account = self
            .accounts
            .find(account_id)
            .await?
            .ok_or(LoginError::InvalidCredentials)?;
        self.check_throttle(&account.email, Some(account.id), request_id)
            .await?;
        let record = self
            .totp
            .get(account.id)
            .await?
            .ok_or(LoginError::InvalidCredentials)?;
        let code = code.trim();
        let accepted = match self.totp_algorithm.matching_step(&record.secret, code, now) {
            Some(step) => self.totp.use_step(account.id, step).await?,
            None if code.len() > 8 => {
                let digest = self
                    .secrets
                    .digest(&normalise_recovery(&SecretText::new(code)));
                self.totp
                    .use_recovery_code(account.id, &digest, now)
                    .await?
            }
            None => false,
        };
        if !accepted {
            self.accounts.add_failure(&account.email, now).await?;
            self.audit_event(
                AuthEventKind::SecondFactorFailed,
                Some(account.id),
                request_id,
            )
            .await?;
            return Err(LoginError::InvalidCredentials);
        }
        if self
            .tokens
            .consume(&digest, TokenPurpose::SecondFactor, now)
            .await?
            .is_none()
        {
            return Err(LoginError::InvalidCredentials);
        }
        self.open_session(account, true, user_agent, request_id)
            .await
            .map(|(token, session, account)| LoginOutcome::Signed {
                token,
                session,
                account,
            })
    }

    /// Creates a session for an account whose credentials were all checked.
    pub(crate) async fn open_session(
        &self,
        account: super::model::Account,
        had_failures: bool,
        user_agent: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<(SecretText, SessionId, super::model::Account), LoginError> {
        let now = self.clock.now();
        if had_failures {
            self.accounts.clear_failures(&account.email).await?;
        }
        let token = self.secrets.new_token();
        let previous_sign_in_at = self.sessions.last_sign_in(account.id).await?;
        let session = Session {
            id: SessionId::generate(self.ids.as_ref()),
            account: account.id,
            digest: self.secrets.digest(&token),
            created_at: now,
            last_seen_at: now,
            revoked_at: None,
            authenticated_at: now,
            previous_sign_in_at,
            device: user_agent.and_then(super::device::describe),
        };
        self.sessions.create(&session).await?;
        self.audit_event(AuthEventKind::SignInSucceeded, Some(account.id), request_id)
            .await?;
        debug_assert!(matches!(account.state, AccountState::Active { .. }));
        Ok((token, session.id, account))
    }
}

/// Recovery codes are compared without case, spaces or dashes.
pub(crate) fn normalise_recovery(code: &SecretText) -> SecretText {
    SecretText::new(
        code.expose()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase(),
    )
}

/// An email telling the owner that something about how they sign in changed (never any
/// health information).
fn security_notice(
    to: &crate::text::Email,
    subject: &str,
    what: &str,
    public_url: &str,
) -> super::ports::OutgoingEmail {
    super::ports::OutgoingEmail {
        to: to.clone(),
        subject: subject.to_owned(),
        body: format!(
            "Hello,\n\n{what}\nIf this was not you, reset your password at {public_url}/forgot and contact your clinic.\n"
        ),
    }
}
