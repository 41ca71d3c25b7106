//! Staff invitations: an organisation administrator invites a colleague by email; the colleague
//! opens the link, chooses their own password and sets up their authenticator app in one step.
//! Nobody but the new staff member ever sees their password or second-factor secret.
//!
//! **Invariant:** an invited account cannot sign in until setup is finished, and setup
//! finishes only with a confirmed second factor (the staff invariant of `staff.rs`).

use super::identity::organization_for;
use super::model::{Account, AccountState, ChartLink, Role, StaffRole};
use super::password::{PasswordRejection, PersonalInfo, SecretText, check_new_password};
use super::ports::{AuthEventKind, HashError, OutgoingEmail, TokenPurpose};
use super::service::AuthService;
use super::totp::TotpEnrollment;
use crate::access::{Action, Actor};
use crate::ids::AccountId;
use crate::patient::PersonName;
use crate::repo::RepoError;
use crate::text::Email;
use chrono::Duration;

/// An invitation link works this many days.
pub const INVITE_TTL_DAYS: i64 = 7;

/// A colleague to invite.
#[derive(Debug, Clone)]
pub struct StaffInvite {
    pub email: Email,
    pub name: PersonName,
    pub role: StaffRole,
}

/// Why an invitation was refused as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteInputError {
    #[error("Enter a valid email address.")]
    Email,
    #[error("Enter the colleague's first and last name.")]
    Name,
}

impl InviteInputError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "invalid_email",
            Self::Name => "invalid_name",
        }
    }
}

impl StaffInvite {
    /// An invitation from the fields as typed (the team page or the API).
    ///
    /// # Errors
    /// The first field that is not valid: the address, then the name.
    pub fn from_fields(
        email: &str,
        given_name: &str,
        family_name: &str,
        role: StaffRole,
    ) -> Result<Self, InviteInputError> {
        let email = Email::parse(email).map_err(|_| InviteInputError::Email)?;
        let name = PersonName::new(given_name, family_name).map_err(|_| InviteInputError::Name)?;
        Ok(Self { email, name, role })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// Only an organisation administrator invites staff.
    #[error("not allowed")]
    Forbidden,
    /// The address belongs to an account that is not a pending invitation of this
    /// organisation (a patient, an active colleague, another organisation's staff).
    #[error("This email address already has an account.")]
    EmailTaken,
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why the administrator got no list of their staff.
#[derive(Debug, thiserror::Error)]
pub enum ListStaffError {
    /// Only an organisation administrator lists its staff.
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum StaffSetupError {
    #[error(
        "this invitation link is invalid, used or expired; ask your administrator for a new one"
    )]
    InvalidOrExpired,
    #[error("{0}")]
    Password(PasswordRejection),
    #[error("the code from your authenticator app is not correct")]
    WrongCode,
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What the invitation page shows: who is being set up, and the authenticator secret.
#[derive(Debug, Clone)]
pub struct StaffSetup {
    pub email: Email,
    pub name: PersonName,
    pub role: StaffRole,
    pub totp: TotpEnrollment,
}

/// A member of staff as the administrator's list shows them.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub account: AccountId,
    pub email: Email,
    pub name: PersonName,
    pub role: StaffRole,
    /// False while the invitation waits to be accepted.
    pub active: bool,
}

impl AuthService {
    /// Organisation administrator: invites a colleague to the administrator's organisation.
    /// Inviting a pending address again sends a fresh link (the old one stops working once the
    /// new one is used, as both are single use for the same account).
    ///
    /// # Errors
    /// See [`InviteError`].
    pub async fn invite_staff(
        &self,
        actor: &Actor,
        invite: StaffInvite,
        request_id: Option<&str>,
    ) -> Result<AccountId, InviteError> {
        let org = organization_for(actor, Action::ManageTeam, self.clock.now())
            .ok_or(InviteError::Forbidden)?;
        let account = match self.accounts.find_by_email(&invite.email).await? {
            Some(existing) => {
                let pending_here = existing.role
                    == Role::Staff {
                        role: invite.role,
                        organization: org,
                    }
                    && existing.state == AccountState::PendingVerification;
                if !pending_here {
                    return Err(InviteError::EmailTaken);
                }
                existing
            }
            None => {
                // Until setup, the password is a hash of a random secret nobody holds.
                let placeholder = self
                    .hasher
                    .hash(self.secrets.new_token())
                    .await
                    .map_err(InviteError::Busy)?;
                let account = Account {
                    id: AccountId::generate(self.ids.as_ref()),
                    email: invite.email,
                    name: invite.name,
                    birth_date: None,
                    role: Role::Staff {
                        role: invite.role,
                        organization: org,
                    },
                    state: AccountState::PendingVerification,
                    chart: ChartLink::Unlinked,
                    password: placeholder,
                    created_at: self.clock.now(),
                };
                match self.accounts.create(&account).await {
                    Ok(()) => account,
                    Err(RepoError::Conflict(_)) => return Err(InviteError::EmailTaken),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let token = self
            .issue(
                account.id,
                TokenPurpose::StaffInvite,
                Duration::days(INVITE_TTL_DAYS),
            )
            .await?;
        let _ = self
            .mailer
            .send(invitation_email(
                &account.email,
                &token,
                &self.config.public_url,
            ))
            .await;
        self.audit_event(AuthEventKind::StaffInvited, Some(account.id), request_id)
            .await?;
        Ok(account.id)
    }

    /// Organisation administrator: the staff of their organisation, active and invited.
    ///
    /// # Errors
    /// [`ListStaffError::Forbidden`] for other roles.
    pub async fn staff_members(&self, actor: &Actor) -> Result<Vec<StaffMember>, ListStaffError> {
        let org = organization_for(actor, Action::ManageTeam, self.clock.now())
            .ok_or(ListStaffError::Forbidden)?;
        let mut members: Vec<StaffMember> = self
            .accounts
            .staff_of(org)
            .await?
            .into_iter()
            .filter_map(|a| match a.role {
                Role::Staff { role, .. } => Some(StaffMember {
                    account: a.id,
                    active: matches!(a.state, AccountState::Active { .. }),
                    email: a.email,
                    name: a.name,
                    role,
                }),
                Role::Patient => None,
            })
            .collect();
        members.sort_by(|a, b| {
            (a.name.family(), a.name.given()).cmp(&(b.name.family(), b.name.given()))
        });
        Ok(members)
    }

    /// The invitation page: checks the link without using it up and answers the
    /// authenticator secret to enrol, made on the first visit and the same on every later one
    /// (so a second tab, a failed attempt or a mail scanner's prefetch changes nothing).
    ///
    /// # Errors
    /// [`StaffSetupError::InvalidOrExpired`] for any link that does not work.
    pub async fn begin_staff_setup(
        &self,
        token: &SecretText,
    ) -> Result<StaffSetup, StaffSetupError> {
        let account = self.invited_account(token).await?;
        let Role::Staff { role, .. } = account.role else {
            return Err(StaffSetupError::InvalidOrExpired);
        };
        let secret = match self.totp.get(account.id).await? {
            Some(pending) if pending.confirmed_at.is_none() => pending.secret,
            Some(_) => return Err(StaffSetupError::InvalidOrExpired),
            None => {
                let secret = self.totp_algorithm.new_secret();
                match self.totp.put_pending(account.id, &secret).await {
                    Ok(()) => secret,
                    Err(RepoError::Conflict(_)) => return Err(StaffSetupError::InvalidOrExpired),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok(StaffSetup {
            totp: TotpEnrollment {
                provisioning_uri: self
                    .totp_algorithm
                    .provisioning_uri(&secret, account.email.as_str()),
                secret_base32: self.totp_algorithm.base32(&secret),
            },
            email: account.email,
            name: account.name,
            role,
        })
    }

    /// Finishes an invitation: the chosen password and a first authenticator code. The link is
    /// used up, the account becomes active with its second factor, and the recovery codes are
    /// answered (shown once).
    ///
    /// # Errors
    /// See [`StaffSetupError`]; nothing changes unless every check passes.
    pub async fn complete_staff_setup(
        &self,
        token: &SecretText,
        password: SecretText,
        code: &str,
        request_id: Option<&str>,
    ) -> Result<Vec<SecretText>, StaffSetupError> {
        let account = self.invited_account(token).await?;
        check_new_password(
            &password,
            &PersonalInfo {
                given_name: account.name.given(),
                family_name: account.name.family(),
                email: account.email.as_str(),
                birth_date: None,
            },
            self.common.as_ref(),
        )
        .map_err(StaffSetupError::Password)?;
        let now = self.clock.now();
        let pending = self
            .totp
            .get(account.id)
            .await?
            .filter(|t| t.confirmed_at.is_none())
            .ok_or(StaffSetupError::InvalidOrExpired)?;
        if self
            .totp_algorithm
            .matching_step(&pending.secret, code, now)
            .is_none()
        {
            return Err(StaffSetupError::WrongCode);
        }
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(StaffSetupError::Busy)?;
        // Single use is decided here; of concurrent submissions one gets past this line.
        if self
            .tokens
            .consume(&self.secrets.digest(token), TokenPurpose::StaffInvite, now)
            .await?
            .is_none()
        {
            return Err(StaffSetupError::InvalidOrExpired);
        }
        self.accounts.set_password(account.id, &hash).await?;
        let codes = self
            .enrol_confirmed(account.id, code, request_id)
            .await
            .map_err(|e| match e {
                super::totp::TotpError::Repo(r) => StaffSetupError::Repo(r),
                _ => StaffSetupError::WrongCode,
            })?;
        self.accounts.activate(account.id, now).await?;
        self.audit_event(
            AuthEventKind::StaffSetupCompleted,
            Some(account.id),
            request_id,
        )
        .await?;
        Ok(codes)
    }

    /// The staff account of a working invitation link that still needs its setup.
    async fn invited_account(&self, token: &SecretText) -> Result<Account, StaffSetupError> {
        let now = self.clock.now();
        let id = self
            .tokens
            .peek(&self.secrets.digest(token), TokenPurpose::StaffInvite, now)
            .await?
            .ok_or(StaffSetupError::InvalidOrExpired)?;
        self.accounts
            .find(id)
            .await?
            .filter(|a| matches!(a.role, Role::Staff { .. }))
            .filter(|a| a.state == AccountState::PendingVerification)
            .ok_or(StaffSetupError::InvalidOrExpired)
    }
}

fn invitation_email(to: &Email, token: &SecretText, public_url: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "You are invited to your clinic's patient portal".into(),
        body: format!(
            "Hello,\n\nAn administrator of your organisation has created a staff account for \
             you on the patient portal.\nTo choose your password and set up your authenticator \
             app, open this link within {INVITE_TTL_DAYS} days:\n\n{public_url}/staff/setup?token={}\n\n\
             If you did not expect this, you can ignore this message.\n",
            token.expose()
        ),
    }
}
