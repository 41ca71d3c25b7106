//! Staff accounts, created by an administrator. **Invariant:** a staff account always has a
//! confirmed second factor: it is set up when the account is created, and sign-in refuses a
//! staff account without one.

use super::model::{Account, AccountState, ChartLink, Role, StaffRole};
use super::password::{PasswordRejection, PersonalInfo, SecretText, check_new_password};
use super::ports::{AuthEventKind, HashError, TokenDigest};
use super::service::AuthService;
use super::totp::{RECOVERY_CODES, TotpEnrollment};
use crate::ids::{AccountId, OrganizationId};
use crate::patient::PersonName;
use crate::repo::RepoError;
use crate::text::Email;

/// A staff member to create.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub email: Email,
    pub name: PersonName,
    pub role: StaffRole,
    pub organization: OrganizationId,
    pub password: SecretText,
}

/// What the administrator hands to the new staff member, once.
#[derive(Debug)]
pub struct StaffCredentials {
    pub account: AccountId,
    pub totp: TotpEnrollment,
    pub recovery_codes: Vec<SecretText>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateStaffError {
    #[error("{0}")]
    Password(PasswordRejection),
    #[error("an account with this email address exists")]
    EmailTaken,
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl AuthService {
    /// Creates an active staff account with its authenticator secret already set up.
    ///
    /// # Errors
    /// See [`CreateStaffError`].
    pub async fn create_staff(
        &self,
        s: NewStaff,
        request_id: Option<&str>,
    ) -> Result<StaffCredentials, CreateStaffError> {
        let info = PersonalInfo {
            given_name: s.name.given(),
            family_name: s.name.family(),
            email: s.email.as_str(),
            birth_date: None,
        };
        check_new_password(&s.password, &info, self.common.as_ref())
            .map_err(CreateStaffError::Password)?;
        if self.accounts.find_by_email(&s.email).await?.is_some() {
            return Err(CreateStaffError::EmailTaken);
        }
        let hash = self
            .hasher
            .hash(s.password)
            .await
            .map_err(CreateStaffError::Busy)?;
        let now = self.clock.now();
        let account = Account {
            id: AccountId::generate(self.ids.as_ref()),
            email: s.email,
            name: s.name,
            birth_date: None,
            role: Role::Staff {
                role: s.role,
                organization: s.organization,
            },
            state: AccountState::Active { verified_at: now },
            chart: ChartLink::Unlinked,
            password: hash,
            created_at: now,
        };
        match self.accounts.create(&account).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(CreateStaffError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        let secret = self.totp_algorithm.new_secret();
        self.totp.put_pending(account.id, &secret).await?;
        let codes: Vec<SecretText> = (0..RECOVERY_CODES)
            .map(|_| self.secrets.recovery_code())
            .collect();
        let digests: Vec<TokenDigest> = codes
            .iter()
            .map(|c| self.secrets.digest(&super::totp::normalise_recovery(c)))
            .collect();
        self.totp.confirm(account.id, now, &digests).await?;
        self.audit_event(AuthEventKind::StaffCreated, Some(account.id), request_id)
            .await?;
        Ok(StaffCredentials {
            account: account.id,
            totp: TotpEnrollment {
                provisioning_uri: self
                    .totp_algorithm
                    .provisioning_uri(&secret, account.email.as_str()),
                secret_base32: self.totp_algorithm.base32(&secret),
            },
            recovery_codes: codes,
        })
    }
}
