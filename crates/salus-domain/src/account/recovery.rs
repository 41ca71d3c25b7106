//! Keeping access: resend the confirmation email, reset a forgotten password, change the
//! password, see and end sessions.

use super::model::AccountState;
use super::password::{PasswordRejection, PersonalInfo, SecretText, check_new_password};
use super::ports::{AuthEventKind, EmailToken, HashError, OutgoingEmail, TokenPurpose};
use super::service::{AuthService, SessionError};
use crate::ids::SessionId;
use crate::repo::RepoError;
use crate::text::Email;
use chrono::{DateTime, Duration, Utc};

/// A reset link works this long.
pub const RESET_TTL_MINUTES: i64 = 60;
/// At most one confirmation or reset email per account per this many seconds.
pub const RESEND_INTERVAL_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("This link is invalid or has expired. Ask for a new one.")]
    InvalidOrExpired,
    #[error("{0}")]
    Password(PasswordRejection),
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("The current password is not correct.")]
    WrongCurrentPassword,
    #[error("{0}")]
    Password(PasswordRejection),
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<SessionError> for ChangePasswordError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid => Self::NotSignedIn,
            SessionError::Repo(r) => Self::Repo(r),
        }
    }
}

/// A live session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The session making the request.
    pub current: bool,
    /// The browser and system it was opened from, in words, when known.
    pub device: Option<String>,
}

impl AuthService {
    /// True when a token of `purpose` was sent to the account too recently to send another.
    pub(crate) async fn sent_recently(
        &self,
        account: crate::ids::AccountId,
        purpose: TokenPurpose,
    ) -> Result<bool, RepoError> {
        let last = self.tokens.latest_issued(account, purpose).await?;
        Ok(last.is_some_and(|t| self.clock.now() - t < Duration::seconds(RESEND_INTERVAL_SECS)))
    }

    pub(crate) async fn issue(
        &self,
        account: crate::ids::AccountId,
        purpose: TokenPurpose,
        ttl: Duration,
    ) -> Result<SecretText, RepoError> {
        let token = self.secrets.new_token();
        let now = self.clock.now();
        self.tokens
            .store(&EmailToken {
                digest: self.secrets.digest(&token),
                account,
                purpose,
                issued_at: now,
                expires_at: now + ttl,
                new_email: None,
            })
            .await?;
        Ok(token)
    }

    /// Sends a new confirmation email if the address has an unconfirmed account and none was
    /// sent in the last minute. Answers the same in every case.
    ///
    /// # Errors
    /// Only when storage fails.
    pub async fn resend_verification(
        &self,
        email: &Email,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        let Some(account) = self.accounts.find_by_email(email).await? else {
            return Ok(());
        };
        // Invited staff confirm their address by accepting the invitation, not by this email.
        if account.state != AccountState::PendingVerification
            || account.role != super::model::Role::Patient
            || self
                .sent_recently(account.id, TokenPurpose::VerifyEmail)
                .await?
        {
            return Ok(());
        }
        let token = self
            .issue(
                account.id,
                TokenPurpose::VerifyEmail,
                self.config.verification_ttl,
            )
            .await?;
        let _ = self
            .mailer
            .send(super::service::verification_email(
                &account.email,
                &token,
                &self.config,
            ))
            .await;
        self.audit_event(
            AuthEventKind::VerificationResent,
            Some(account.id),
            request_id,
        )
        .await
    }

    /// Emails a password reset link (valid one hour) if the address has an account. Answers
    /// the same in every case, and sends at most one link a minute.
    ///
    /// # Errors
    /// Only when storage fails.
    pub async fn request_password_reset(
        &self,
        email: &Email,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        let Some(account) = self.accounts.find_by_email(email).await? else {
            return Ok(());
        };
        if matches!(account.state, AccountState::Disabled { .. })
            || self
                .sent_recently(account.id, TokenPurpose::ResetPassword)
                .await?
        {
            return Ok(());
        }
        let token = self
            .issue(
                account.id,
                TokenPurpose::ResetPassword,
                Duration::minutes(RESET_TTL_MINUTES),
            )
            .await?;
        let _ = self
            .mailer
            .send(OutgoingEmail {
                to: account.email.clone(),
                subject: "Reset your patient portal password".into(),
                body: format!(
                    "Hello,\n\nSomeone (we hope you) asked to reset the password of your patient portal account.\n\
                     To choose a new password, open this link within {RESET_TTL_MINUTES} minutes:\n\n{}/reset?token={}\n\n\
                     If you did not ask, ignore this message: your password stays as it is.\n",
                    self.config.public_url,
                    token.expose()
                ),
            })
            .await;
        self.audit_event(
            AuthEventKind::PasswordResetRequested,
            Some(account.id),
            request_id,
        )
        .await
    }

    /// Sets a new password with a reset token. The token stays usable if the password is
    /// refused. Ends every session of the account and tells its owner by email. A pending
    /// account becomes active: the link proved the address.
    ///
    /// # Errors
    /// [`ResetError::InvalidOrExpired`], [`ResetError::Password`], or infrastructure errors.
    pub async fn reset_password(
        &self,
        token: &SecretText,
        new_password: SecretText,
        request_id: Option<&str>,
    ) -> Result<(), ResetError> {
        let now = self.clock.now();
        let digest = self.secrets.digest(token);
        let id = self
            .tokens
            .peek(&digest, TokenPurpose::ResetPassword, now)
            .await?
            .ok_or(ResetError::InvalidOrExpired)?;
        let account = self
            .accounts
            .find(id)
            .await?
            .ok_or(ResetError::InvalidOrExpired)?;
        check_new_password(
            &new_password,
            &personal_info(&account),
            self.common.as_ref(),
        )
        .map_err(ResetError::Password)?;
        let hash = self
            .hasher
            .hash(new_password)
            .await
            .map_err(ResetError::Busy)?;
        // Spend the token; of concurrent resets exactly one gets here.
        if self
            .tokens
            .consume(&digest, TokenPurpose::ResetPassword, now)
            .await?
            .is_none()
        {
            return Err(ResetError::InvalidOrExpired);
        }
        self.accounts.set_password(account.id, &hash).await?;
        if account.state == AccountState::PendingVerification {
            self.accounts.activate(account.id, now).await?;
        }
        self.accounts.clear_failures(&account.email).await?;
        self.sessions.revoke_all(account.id, None, now).await?;
        let _ = self
            .mailer
            .send(password_changed_notice(
                &account.email,
                &self.config.public_url,
            ))
            .await;
        self.audit_event(AuthEventKind::PasswordReset, Some(account.id), request_id)
            .await?;
        Ok(())
    }

    /// Changes the password of the signed-in account; needs the current one. Ends every other
    /// session and tells the owner by email.
    ///
    /// # Errors
    /// See [`ChangePasswordError`].
    pub async fn change_password(
        &self,
        session_token: &SecretText,
        current: SecretText,
        new_password: SecretText,
        request_id: Option<&str>,
    ) -> Result<(), ChangePasswordError> {
        let who = self.authenticate(session_token).await?;
        let ok = self
            .hasher
            .verify(current, Some(who.account.password.clone()))
            .await
            .map_err(ChangePasswordError::Busy)?;
        if !ok.matches {
            return Err(ChangePasswordError::WrongCurrentPassword);
        }
        check_new_password(
            &new_password,
            &personal_info(&who.account),
            self.common.as_ref(),
        )
        .map_err(ChangePasswordError::Password)?;
        let hash = self
            .hasher
            .hash(new_password)
            .await
            .map_err(ChangePasswordError::Busy)?;
        let now = self.clock.now();
        self.accounts.set_password(who.account.id, &hash).await?;
        self.sessions
            .revoke_all(who.account.id, Some(who.session), now)
            .await?;
        let _ = self
            .mailer
            .send(password_changed_notice(
                &who.account.email,
                &self.config.public_url,
            ))
            .await;
        self.audit_event(
            AuthEventKind::PasswordChanged,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(())
    }

    /// The signed-in account's live sessions, newest first.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] when not signed in.
    pub async fn sessions(
        &self,
        session_token: &SecretText,
    ) -> Result<Vec<SessionSummary>, SessionError> {
        let who = self.authenticate(session_token).await?;
        let now = self.clock.now();
        let live = self.sessions.live_for_account(who.account.id).await?;
        Ok(live
            .into_iter()
            .filter(|s| {
                now - s.last_seen_at <= self.config.idle_timeout
                    && now - s.created_at <= self.config.absolute_timeout
            })
            .map(|s| SessionSummary {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                current: s.id == who.session,
                device: s.device,
            })
            .collect())
    }

    /// Ends one of the signed-in account's sessions (possibly the current one). A session of
    /// another account, or an unknown one, is "not found".
    ///
    /// # Errors
    /// [`SessionError::Invalid`] when not signed in; `Ok(false)` when there is no such session.
    pub async fn revoke_session(
        &self,
        session_token: &SecretText,
        target: SessionId,
        request_id: Option<&str>,
    ) -> Result<bool, SessionError> {
        let who = self.authenticate(session_token).await?;
        let mine = self
            .sessions
            .live_for_account(who.account.id)
            .await?
            .iter()
            .any(|s| s.id == target);
        if !mine {
            return Ok(false);
        }
        self.sessions.revoke(target, self.clock.now()).await?;
        self.audit_event(
            AuthEventKind::SessionRevoked,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(true)
    }

    /// Ends every session of the signed-in account but the current one ("sign out
    /// everywhere else"); answers how many ended.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] when not signed in.
    pub async fn revoke_other_sessions(
        &self,
        session_token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<u64, SessionError> {
        let who = self.authenticate(session_token).await?;
        let n = self
            .sessions
            .revoke_all(who.account.id, Some(who.session), self.clock.now())
            .await?;
        self.audit_event(
            AuthEventKind::SessionRevoked,
            Some(who.account.id),
            request_id,
        )
        .await?;
        Ok(n)
    }
}

fn personal_info(account: &super::model::Account) -> PersonalInfo<'_> {
    PersonalInfo {
        given_name: account.name.given(),
        family_name: account.name.family(),
        email: account.email.as_str(),
        birth_date: account.birth_date,
    }
}

fn password_changed_notice(to: &Email, public_url: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "Your patient portal password was changed".into(),
        body: format!(
            "Hello,\n\nThe password of your patient portal account was just changed, and other \
             sign-ins were ended.\nIf this was not you, reset your password at {public_url}/forgot \
             and contact your clinic.\n"
        ),
    }
}
