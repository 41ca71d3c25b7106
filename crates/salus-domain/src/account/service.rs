//! The account use cases: register, verify email, sign in, authenticate a session, sign out.

use super::model::{Account, AccountState, ChartLink, Role};
use super::password::{PasswordRejection, PersonalInfo, SecretText, check_new_password};
use super::ports::{
    AccountRepository, AuthAudit, AuthEvent, AuthEventKind, CommonPasswords, EmailToken, HashError,
    Mailer, OutgoingEmail, PasswordHasher, SecretSource, SessionRepository, TokenPurpose,
    TokenRepository,
};
use crate::clock::Clock;
use crate::ids::{AccountId, IdGenerator, SessionId};
use crate::patient::PersonName;
use crate::repo::RepoError;
use crate::text::Email;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::sync::Arc;

/// Timeouts and links.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long an email verification link works.
    pub verification_ttl: Duration,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// The portal's public address, for links in emails (no trailing slash).
    pub public_url: String,
    /// How many days an activation code works.
    pub activation_ttl_days: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            verification_ttl: Duration::hours(24),
            idle_timeout: Duration::minutes(15),
            absolute_timeout: Duration::hours(12),
            public_url: "http://127.0.0.1:8080".into(),
            activation_ttl_days: super::identity::ACTIVATION_TTL_DAYS,
        }
    }
}

/// What a person registers with. Redacted in `Debug`.
#[derive(Clone)]
pub struct Registration {
    /// The clinic asked to confirm who the person is (its directory slug), if chosen.
    pub clinic: Option<crate::text::Slug>,
    pub name: PersonName,
    pub birth_date: NaiveDate,
    pub email: Email,
    pub password: SecretText,
}

/// Why a registration was refused as typed, before anything was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationInputError {
    #[error("Choose your clinic from the list.")]
    Clinic,
    #[error("Enter a valid email address.")]
    Email,
    #[error("Enter your name as it appears on your medical records.")]
    Name,
    #[error("Enter your date of birth as YYYY-MM-DD.")]
    BirthDate,
}

impl RegistrationInputError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Clinic => "unknown_clinic",
            Self::Email => "invalid_email",
            Self::Name => "invalid_name",
            Self::BirthDate => "invalid_birth_date",
        }
    }
}

impl Registration {
    /// A registration from the fields as typed (the page's form or the API's body).
    ///
    /// # Errors
    /// The first field that is not valid, in the form's order: clinic (blank is allowed: the
    /// person chooses later), name, birth date, email.
    pub fn from_fields(
        clinic: &str,
        given_name: &str,
        family_name: &str,
        birth_date: &str,
        email: &str,
        password: SecretText,
    ) -> Result<Self, RegistrationInputError> {
        let clinic = match clinic.trim() {
            "" => None,
            slug => {
                Some(crate::text::Slug::parse(slug).map_err(|_| RegistrationInputError::Clinic)?)
            }
        };
        let name =
            PersonName::new(given_name, family_name).map_err(|_| RegistrationInputError::Name)?;
        let birth_date = crate::patient::parse_birth_date(birth_date)
            .map_err(|_| RegistrationInputError::BirthDate)?;
        let email = Email::parse(email).map_err(|_| RegistrationInputError::Email)?;
        Ok(Self {
            clinic,
            name,
            birth_date,
            email,
            password,
        })
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registration(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field as typed (a birth date after today).
    #[error("{0}")]
    Input(RegistrationInputError),
    #[error("{0}")]
    Password(PasswordRejection),
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Unknown, used, expired or for another purpose: one answer for all.
    #[error("this link is invalid or has expired")]
    InvalidOrExpired,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong email or password, or a disabled account: one message for all.
    #[error("The email or password is not correct.")]
    InvalidCredentials,
    /// The password was right but the email is not verified yet.
    #[error("please confirm your email address first")]
    NotVerified,
    #[error("too many failed attempts; try again later")]
    Throttled { retry_after_secs: u32 },
    /// The session used for re-authentication is not live.
    #[error("not signed in")]
    SessionEnded,
    /// A staff account without a second factor (an administrator must set one up).
    #[error("this account must use a second factor; ask your administrator")]
    SecondFactorRequired,
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Unknown, revoked or expired: the client must sign in again.
    #[error("not signed in")]
    Invalid,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A new session: the token goes to the client once and is never stored.
    Signed {
        token: SecretText,
        session: SessionId,
        account: Account,
    },
    /// The account has a second factor: send the code with this challenge.
    SecondFactor { challenge: SecretText },
}

/// The account behind a valid session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account: Account,
    pub session: SessionId,
    /// When the person last proved who they are in this session.
    pub authenticated_at: DateTime<Utc>,
    /// When the account signed in before this session (what is new is counted from then).
    pub previous_sign_in: Option<DateTime<Utc>>,
}

/// Sensitive actions (password, second factor, exports, consent) need a sign-in or password
/// re-entry at most this long ago.
pub const REAUTH_WINDOW_MINUTES: i64 = 5;

/// What every form and the API say when a password entered again is wrong.
pub const WRONG_PASSWORD: &str = "The password is not correct.";

/// What every form and the API say when attempts are refused for a while.
pub const TOO_MANY_ATTEMPTS: &str = "Too many attempts. Please wait and try again.";

/// Whether a sign-in or password re-entry at `authenticated_at` still allows a sensitive
/// action at `now` (the one rule every sensitive use case asks).
pub fn proved_recently(authenticated_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - authenticated_at <= Duration::minutes(REAUTH_WINDOW_MINUTES)
}

/// Per-account throttling of failed sign-ins, stored in the database so every node agrees:
/// after the n-th failure within 15 minutes the next attempt waits 2^(n-1) seconds; the 5th
/// locks the account for 15 minutes (at most 20 failures an hour, well under 100).
pub(crate) fn throttle(failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let window = Duration::minutes(15);
    let recent: Vec<_> = failures
        .iter()
        .copied()
        .filter(|t| *t > now - window)
        .collect();
    let last = *recent.last()?;
    let until = if recent.len() >= LOCK_AFTER {
        last + window
    } else {
        let exponent = u32::try_from(recent.len() - 1).unwrap_or(0);
        last + Duration::seconds(1_i64 << exponent)
    };
    (until > now).then_some(until)
}

const LOCK_AFTER: usize = 5;

/// How often a session's last activity is written.
const TOUCH_EVERY_SECS: i64 = 60;

/// The account use cases.
#[derive(Clone)]
pub struct AuthService {
    pub(crate) accounts: Arc<dyn AccountRepository>,
    pub(crate) tokens: Arc<dyn TokenRepository>,
    pub(crate) sessions: Arc<dyn SessionRepository>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) common: Arc<dyn CommonPasswords>,
    pub(crate) secrets: Arc<dyn SecretSource>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) audit: Arc<dyn AuthAudit>,
    pub(crate) access: Arc<dyn crate::audit::AccessLog>,
    pub(crate) totp: Arc<dyn super::totp::TotpRepository>,
    pub(crate) identity: Arc<dyn super::identity::IdentityRepository>,
    pub(crate) patients: Arc<dyn crate::patient::PatientRepository>,
    pub(crate) organizations: Arc<dyn crate::organization::OrganizationRepository>,
    pub(crate) totp_algorithm: Arc<dyn super::totp::TotpAlgorithm>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) config: AuthConfig,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The adapters an [`AuthService`] runs on.
#[allow(missing_debug_implementations, reason = "holds trait objects only")]
pub struct AuthPorts {
    pub accounts: Arc<dyn AccountRepository>,
    pub tokens: Arc<dyn TokenRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub common: Arc<dyn CommonPasswords>,
    pub secrets: Arc<dyn SecretSource>,
    pub mailer: Arc<dyn Mailer>,
    pub audit: Arc<dyn AuthAudit>,
    /// Where staff reads of chart demographics (the identity queue) are recorded.
    pub access: Arc<dyn crate::audit::AccessLog>,
    pub totp: Arc<dyn super::totp::TotpRepository>,
    pub identity: Arc<dyn super::identity::IdentityRepository>,
    pub patients: Arc<dyn crate::patient::PatientRepository>,
    /// The clinics a patient may ask to confirm who they are.
    pub organizations: Arc<dyn crate::organization::OrganizationRepository>,
    pub totp_algorithm: Arc<dyn super::totp::TotpAlgorithm>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl AuthService {
    pub fn new(p: AuthPorts, config: AuthConfig) -> Self {
        Self {
            accounts: p.accounts,
            tokens: p.tokens,
            sessions: p.sessions,
            hasher: p.hasher,
            common: p.common,
            secrets: p.secrets,
            mailer: p.mailer,
            audit: p.audit,
            access: p.access,
            totp: p.totp,
            identity: p.identity,
            patients: p.patients,
            organizations: p.organizations,
            totp_algorithm: p.totp_algorithm,
            clock: p.clock,
            ids: p.ids,
            config,
        }
    }

    /// Timeouts and links in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub(crate) async fn audit_event(
        &self,
        kind: AuthEventKind,
        account: Option<AccountId>,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.audit
            .record(AuthEvent {
                at: self.clock.now(),
                kind,
                account,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// Registers a patient account and emails a verification link.
    ///
    /// Answers the same whether or not the email is already registered: in that case the
    /// owner of the address gets a notice instead, and the same hashing work is done.
    ///
    /// # Errors
    /// [`RegisterError::Password`] when the password breaks a rule (checked before anything
    /// else, so it reveals nothing about the email); `Busy`/`Repo` when infrastructure fails.
    pub async fn register(
        &self,
        r: Registration,
        request_id: Option<&str>,
    ) -> Result<(), RegisterError> {
        if r.birth_date > self.clock.now().date_naive() {
            return Err(RegisterError::Input(RegistrationInputError::BirthDate));
        }
        let clinic = match &r.clinic {
            None => None,
            Some(slug) => Some(
                self.organizations
                    .find_by_slug(slug)
                    .await?
                    .ok_or(RegisterError::Input(RegistrationInputError::Clinic))?
                    .id,
            ),
        };
        let info = PersonalInfo {
            given_name: r.name.given(),
            family_name: r.name.family(),
            email: r.email.as_str(),
            birth_date: Some(r.birth_date),
        };
        check_new_password(&r.password, &info, self.common.as_ref())
            .map_err(RegisterError::Password)?;
        let hash = self
            .hasher
            .hash(r.password)
            .await
            .map_err(RegisterError::Busy)?;
        if let Some(existing) = self.accounts.find_by_email(&r.email).await? {
            self.send(existing_account_notice(
                &existing.email,
                &self.config.public_url,
            ))
            .await;
            self.audit_event(
                AuthEventKind::RegistrationForExistingEmail,
                Some(existing.id),
                request_id,
            )
            .await?;
            return Ok(());
        }
        let now = self.clock.now();
        let account = Account {
            id: AccountId::generate(self.ids.as_ref()),
            email: r.email,
            name: r.name,
            birth_date: Some(r.birth_date),
            role: Role::Patient,
            state: AccountState::PendingVerification,
            chart: ChartLink::Unlinked,
            password: hash,
            created_at: now,
        };
        match self.accounts.create(&account).await {
            Ok(()) => {}
            // Lost a race with a registration of the same address: behave as above.
            Err(RepoError::Conflict(_)) => {
                self.send(existing_account_notice(
                    &account.email,
                    &self.config.public_url,
                ))
                .await;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(clinic) = clinic {
            self.identity.request(account.id, clinic, now).await?;
        }
        self.send_verification(&account).await?;
        self.audit_event(AuthEventKind::Registered, Some(account.id), request_id)
            .await?;
        Ok(())
    }

    /// Feedback on a password being typed (the strength meter of the pages); the same rules
    /// as registration and password changes.
    pub fn password_feedback(
        &self,
        candidate: &SecretText,
        me: &super::password::PersonalInfo<'_>,
    ) -> super::password::PasswordFeedback {
        super::password::password_feedback(candidate, me, self.common.as_ref())
    }

    async fn send_verification(&self, account: &Account) -> Result<(), RepoError> {
        let token = self.secrets.new_token();
        let now = self.clock.now();
        self.tokens
            .store(&EmailToken {
                digest: self.secrets.digest(&token),
                account: account.id,
                purpose: TokenPurpose::VerifyEmail,
                issued_at: now,
                expires_at: now + self.config.verification_ttl,
                new_email: None,
            })
            .await?;
        self.send(verification_email(&account.email, &token, &self.config))
            .await;
        Ok(())
    }

    /// Mail failures are not shown to the person (the mailer adapter logs them): an error
    /// here would tell a registrant whether the address was known, and they can ask again.
    pub(crate) async fn send(&self, email: OutgoingEmail) {
        let _ = self.mailer.send(email).await;
    }

    /// Uses an emailed verification token: the account becomes active.
    ///
    /// # Errors
    /// [`VerifyError::InvalidOrExpired`] for any token that does not work.
    pub async fn verify_email(
        &self,
        token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<AccountId, VerifyError> {
        let now = self.clock.now();
        let digest = self.secrets.digest(token);
        let Some(account) = self
            .tokens
            .consume(&digest, TokenPurpose::VerifyEmail, now)
            .await?
        else {
            self.audit_event(AuthEventKind::EmailVerificationFailed, None, request_id)
                .await?;
            return Err(VerifyError::InvalidOrExpired);
        };
        self.accounts.activate(account, now).await?;
        self.audit_event(AuthEventKind::EmailVerified, Some(account), request_id)
            .await?;
        Ok(account)
    }

    /// Signs in with email and password. Opens a session, or, when the account has a second
    /// factor, answers a short-lived challenge for [`AuthService::complete_second_factor`].
    ///
    /// # Errors
    /// See [`LoginError`]; unknown emails cost the same hashing time as known ones.
    pub async fn login(
        &self,
        email: &Email,
        password: SecretText,
        user_agent: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<LoginOutcome, LoginError> {
        let now = self.clock.now();
        let found = self.accounts.find_by_email(email).await?;
        // Throttled by address before anything else, account or not: an unknown address is
        // delayed and locked exactly like a registered one, so the answers cannot tell them
        // apart.
        let failures = self
            .check_throttle(email, found.as_ref().map(|a| a.id), request_id)
            .await?;
        let Some(account) = found else {
            self.hasher
                .verify(password, None)
                .await
                .map_err(LoginError::Busy)?;
            self.accounts.add_failure(email, now).await?;
            self.audit_event(AuthEventKind::SignInFailed, None, request_id)
                .await?;
            return Err(LoginError::InvalidCredentials);
        };
        let verified = self
            .hasher
            .verify(password.clone(), Some(account.password.clone()))
            .await
            .map_err(LoginError::Busy)?;
        if !verified.matches || matches!(account.state, AccountState::Disabled { .. }) {
            self.accounts.add_failure(&account.email, now).await?;
            self.audit_event(AuthEventKind::SignInFailed, Some(account.id), request_id)
                .await?;
            let recent = failures
                .iter()
                .filter(|t| **t > now - Duration::minutes(15))
                .count()
                + 1;
            if recent == LOCK_AFTER {
                self.audit_event(AuthEventKind::AccountLocked, Some(account.id), request_id)
                    .await?;
            }
            return Err(LoginError::InvalidCredentials);
        }
        if account.state == AccountState::PendingVerification {
            self.audit_event(
                AuthEventKind::SignInRefusedUnverified,
                Some(account.id),
                request_id,
            )
            .await?;
            return Err(LoginError::NotVerified);
        }
        // Parameters were raised since this hash was made: store a stronger one. A busy
        // hasher only postpones this to a later sign-in.
        if verified.needs_rehash
            && let Ok(hash) = self.hasher.hash(password).await
        {
            self.accounts.set_password(account.id, &hash).await?;
        }
        if let Some(challenge) = self.second_factor_gate(&account).await? {
            return Ok(LoginOutcome::SecondFactor { challenge });
        }
        let (token, session, account) = self
            .open_session(account, !failures.is_empty(), user_agent, request_id)
            .await?;
        Ok(LoginOutcome::Signed {
            token,
            session,
            account,
        })
    }

    /// Refuses the attempt while the account waits out a delay or a lock; answers the
    /// failures of the last hour.
    pub(crate) async fn check_throttle(
        &self,
        email: &Email,
        account: Option<AccountId>,
        request_id: Option<&str>,
    ) -> Result<Vec<DateTime<Utc>>, LoginError> {
        let now = self.clock.now();
        let failures = self
            .accounts
            .failures_since(email, now - Duration::hours(1))
            .await?;
        if let Some(until) = throttle(&failures, now) {
            self.audit_event(AuthEventKind::SignInThrottled, account, request_id)
                .await?;
            let secs = (until - now).num_seconds().max(1);
            return Err(LoginError::Throttled {
                retry_after_secs: u32::try_from(secs).unwrap_or(u32::MAX),
            });
        }
        Ok(failures)
    }

    /// The account behind a session token, if the session is live; records the activity.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] for unknown, revoked, idle or too old sessions.
    pub async fn authenticate(&self, token: &SecretText) -> Result<Authenticated, SessionError> {
        let now = self.clock.now();
        let digest = self.secrets.digest(token);
        // The session and its account in one read: this runs on every request.
        let (session, account) = self
            .sessions
            .find_by_digest(&digest)
            .await?
            .ok_or(SessionError::Invalid)?;
        let expired = session.revoked_at.is_some()
            || now - session.last_seen_at > self.config.idle_timeout
            || now - session.created_at > self.config.absolute_timeout;
        if expired {
            return Err(SessionError::Invalid);
        }
        if !matches!(account.state, AccountState::Active { .. }) {
            return Err(SessionError::Invalid);
        }
        // Record activity at most once a minute: the idle timeout is measured in minutes, and
        // a write on every read would make every page and API call a database write.
        if now - session.last_seen_at >= Duration::seconds(TOUCH_EVERY_SECS) {
            self.sessions.touch(session.id, now).await?;
        }
        Ok(Authenticated {
            account,
            session: session.id,
            authenticated_at: session.authenticated_at,
            previous_sign_in: session.previous_sign_in_at,
        })
    }

    /// The signed-in account, if it proved who it is within [`REAUTH_WINDOW_MINUTES`].
    ///
    /// # Errors
    /// [`SessionError::Invalid`] when not signed in; `Ok(None)` when re-authentication is due.
    pub async fn authenticate_recent(
        &self,
        token: &SecretText,
    ) -> Result<Option<Authenticated>, SessionError> {
        let who = self.authenticate(token).await?;
        Ok(self.proved_recently(who.authenticated_at).then_some(who))
    }

    /// Whether a proof of identity at `authenticated_at` still allows a sensitive action now.
    pub fn proved_recently(&self, authenticated_at: DateTime<Utc>) -> bool {
        proved_recently(authenticated_at, self.clock.now())
    }

    /// Re-enters the password within a session, before a sensitive action.
    ///
    /// # Errors
    /// [`LoginError::InvalidCredentials`] for a wrong password (counted as a failure), the
    /// throttling errors, or [`LoginError::SessionEnded`].
    pub async fn reauthenticate(
        &self,
        token: &SecretText,
        password: SecretText,
        request_id: Option<&str>,
    ) -> Result<(), LoginError> {
        let who = self.authenticate(token).await.map_err(|e| match e {
            SessionError::Invalid => LoginError::SessionEnded,
            SessionError::Repo(r) => LoginError::Repo(r),
        })?;
        self.check_throttle(&who.account.email, Some(who.account.id), request_id)
            .await?;
        let ok = self
            .hasher
            .verify(password, Some(who.account.password.clone()))
            .await
            .map_err(LoginError::Busy)?;
        let now = self.clock.now();
        if !ok.matches {
            self.accounts.add_failure(&who.account.email, now).await?;
            self.audit_event(
                AuthEventKind::SignInFailed,
                Some(who.account.id),
                request_id,
            )
            .await?;
            return Err(LoginError::InvalidCredentials);
        }
        self.sessions.reauthenticated(who.session, now).await?;
        self.audit_event(
            AuthEventKind::Reauthenticated,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(())
    }

    /// Ends the session server-side.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] when the token is not a live session.
    pub async fn logout(
        &self,
        token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<(), SessionError> {
        let who = self.authenticate(token).await?;
        self.sessions.revoke(who.session, self.clock.now()).await?;
        self.audit_event(AuthEventKind::SignedOut, Some(who.account.id), request_id)
            .await?;
        Ok(())
    }
}

pub(crate) fn verification_email(
    to: &Email,
    token: &SecretText,
    config: &AuthConfig,
) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "Confirm your email address for your patient portal".into(),
        body: format!(
            "Hello,\n\nSomeone (we hope you) registered this email address for a patient portal account.\n\
             To confirm it, open this link within 24 hours:\n\n{}/verify?token={}\n\n\
             Or enter this code on the confirmation page:\n\n{}\n\n\
             If you did not register, you can ignore this message.\n",
            config.public_url,
            token.expose(),
            token.expose()
        ),
    }
}

fn existing_account_notice(to: &Email, public_url: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "Someone tried to register with your email address".into(),
        body: format!(
            "Hello,\n\nSomeone tried to create a patient portal account with this email address, \
             which already has an account.\nIf it was you, sign in at {public_url}/login or reset \
             your password there.\nIf it was not you, no action is needed: your account is unchanged.\n"
        ),
    }
}
