//! Changing the sign-in email address: a sensitive action. The password is entered again, the
//! new address must be confirmed from its own inbox, and the old address is told both when the
//! change is asked for and when it happens, so a stolen session cannot quietly take the account.

use super::password::SecretText;
use super::ports::{AuthEventKind, EmailToken, OutgoingEmail, TokenPurpose};
use super::service::{AuthService, LoginError};
use crate::ids::AccountId;
use crate::repo::RepoError;
use crate::text::Email;

#[derive(Debug, thiserror::Error)]
pub enum EmailChangeError {
    #[error("not signed in")]
    NotSignedIn,
    /// The password given to re-authenticate is wrong (it counts as a failed sign-in).
    #[error("{}", super::WRONG_PASSWORD)]
    WrongPassword,
    #[error("{}", super::TOO_MANY_ATTEMPTS)]
    Throttled { retry_after_secs: u32 },
    #[error("This is already your email address.")]
    SameAddress,
    /// A confirmation was sent less than a minute ago.
    #[error("A confirmation email was just sent. Wait a minute before asking again.")]
    TooSoon,
    #[error("please try again in a moment")]
    Busy,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmEmailError {
    #[error("This link is invalid, used or expired.")]
    InvalidOrExpired,
    /// Another account took the address after the change was asked for.
    #[error("This email address now belongs to another account.")]
    Taken,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl AuthService {
    /// Asks to change the signed-in account's address to `new_email`, with the password
    /// entered again. The confirmation link goes to the new address; the old one gets a notice.
    /// When the new address already has an account, its owner is told instead and the answer
    /// is the same (it reveals nothing about other accounts).
    ///
    /// # Errors
    /// See [`EmailChangeError`].
    pub async fn request_email_change(
        &self,
        session_token: &SecretText,
        password: SecretText,
        new_email: Email,
        request_id: Option<&str>,
    ) -> Result<(), EmailChangeError> {
        self.reauthenticate(session_token, password, request_id)
            .await
            .map_err(|e| match e {
                LoginError::InvalidCredentials => EmailChangeError::WrongPassword,
                LoginError::Throttled { retry_after_secs } => {
                    EmailChangeError::Throttled { retry_after_secs }
                }
                LoginError::Busy(_) => EmailChangeError::Busy,
                LoginError::Repo(r) => EmailChangeError::Repo(r),
                LoginError::SessionEnded
                | LoginError::NotVerified
                | LoginError::SecondFactorRequired => EmailChangeError::NotSignedIn,
            })?;
        let who = self
            .authenticate(session_token)
            .await
            .map_err(|_| EmailChangeError::NotSignedIn)?;
        let account = who.account;
        if account
            .email
            .as_str()
            .eq_ignore_ascii_case(new_email.as_str())
        {
            return Err(EmailChangeError::SameAddress);
        }
        if self
            .sent_recently(account.id, TokenPurpose::ChangeEmail)
            .await?
        {
            return Err(EmailChangeError::TooSoon);
        }
        let now = self.clock.now();
        let token = self.secrets.new_token();
        self.tokens
            .store(&EmailToken {
                digest: self.secrets.digest(&token),
                account: account.id,
                purpose: TokenPurpose::ChangeEmail,
                issued_at: now,
                expires_at: now + self.config.verification_ttl,
                new_email: Some(new_email.clone()),
            })
            .await?;
        let public_url = &self.config.public_url;
        if self.accounts.find_by_email(&new_email).await?.is_some() {
            self.send(OutgoingEmail {
                to: new_email,
                subject: "Someone tried to move an account to your email address".into(),
                body: format!(
                    "Hello,\n\nSomeone asked to use this email address for another patient portal \
                     account. This address already has an account, so nothing was changed.\n\
                     If you want to sign in, go to {public_url}/login.\n"
                ),
            })
            .await;
        } else {
            self.send(OutgoingEmail {
                to: new_email,
                subject: "Confirm your new email address for your patient portal".into(),
                body: format!(
                    "Hello,\n\nYou asked to sign in to your patient portal with this email address \
                     from now on. To confirm, open this link within 24 hours:\n\n\
                     {public_url}/account/email/confirm?token={}\n\n\
                     If you did not ask for this, ignore this message: nothing changes.\n",
                    token.expose()
                ),
            })
            .await;
        }
        self.send(OutgoingEmail {
            to: account.email.clone(),
            subject: "A change of your sign-in email address was requested".into(),
            body: format!(
                "Hello,\n\nSomeone signed in to your patient portal account asked to change its \
                 email address. The change happens only once the new address is confirmed.\n\
                 If this was not you, sign in at {public_url}/login and change your password \
                 now, or reset it at {public_url}/forgot.\n"
            ),
        })
        .await;
        self.audit_event(
            AuthEventKind::EmailChangeRequested,
            Some(account.id),
            request_id,
        )
        .await?;
        Ok(())
    }

    /// Uses a confirmation link: the account signs in with the new address from now on, and
    /// the old address is told.
    ///
    /// # Errors
    /// See [`ConfirmEmailError`].
    pub async fn confirm_email_change(
        &self,
        token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<AccountId, ConfirmEmailError> {
        let now = self.clock.now();
        let (id, new_email) = self
            .tokens
            .consume_email_change(&self.secrets.digest(token), now)
            .await?
            .ok_or(ConfirmEmailError::InvalidOrExpired)?;
        let account = self
            .accounts
            .find(id)
            .await?
            .ok_or(ConfirmEmailError::InvalidOrExpired)?;
        match self.accounts.set_email(id, &new_email).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(ConfirmEmailError::Taken),
            Err(e) => return Err(e.into()),
        }
        let public_url = &self.config.public_url;
        self.send(OutgoingEmail {
            to: account.email,
            subject: "Your sign-in email address was changed".into(),
            body: format!(
                "Hello,\n\nYour patient portal account now signs in with a different email \
                 address, and messages will go there.\nIf this was not you, contact your clinic \
                 and reset your password at {public_url}/forgot.\n"
            ),
        })
        .await;
        self.audit_event(AuthEventKind::EmailChanged, Some(id), request_id)
            .await?;
        Ok(id)
    }
}
