//! Accounts: who may sign in, how they prove it, and their sessions.
//!
//! **Invariant:** secrets (passwords, tokens) are never stored or logged in clear: passwords
//! only as argon2id PHC strings, tokens only as SHA-256 digests, and both redact themselves
//! in `Debug`.
//! **Invariant:** nothing here reveals whether an email is registered: registration answers
//! the same way either way, and a failed sign-in has one generic error.

pub mod device;
mod email_change;
mod identity;
mod invite;
mod model;
mod password;
mod ports;
mod recovery;
mod service;
mod staff;
#[cfg(test)]
mod tests;
mod totp;

pub use email_change::{ConfirmEmailError, EmailChangeError};
pub use identity::{
    ACTIVATION_TTL_DAYS, ActivationCode, ChooseClinicError, ClinicRequest, IdentityRepository,
    IdentityStatus, IssueCodeError, QueueEntry, QueueError, RedeemError, ReviewError,
    ReviewOutcome, Waiting,
};
pub use invite::{
    INVITE_TTL_DAYS, InviteError, InviteInputError, ListStaffError, StaffInvite, StaffMember,
    StaffSetup, StaffSetupError,
};
pub use model::{Account, AccountState, ChartLink, Role, StaffRole};
pub use password::{
    PasswordFeedback, PasswordRejection, PersonalInfo, SecretText, check_new_password,
    password_feedback,
};
pub use ports::{
    AccountRepository, AuthAudit, AuthEvent, AuthEventKind, CommonPasswords, EmailToken, HashError,
    MailError, Mailer, OutgoingEmail, PasswordHash, PasswordHasher, SecretSource, Session,
    SessionRepository, StrengthEstimate, TokenDigest, TokenPurpose, TokenRepository, Verified,
    email_chart,
};
pub use recovery::{
    ChangePasswordError, RESEND_INTERVAL_SECS, RESET_TTL_MINUTES, ResetError, SessionSummary,
};
pub use service::{
    AuthConfig, AuthPorts, AuthService, Authenticated, LoginError, LoginOutcome,
    REAUTH_WINDOW_MINUTES, RegisterError, Registration, RegistrationInputError, SessionError,
    TOO_MANY_ATTEMPTS, VerifyError, WRONG_PASSWORD, proved_recently,
};
pub use staff::{CreateStaffError, NewStaff, StaffCredentials};
pub use totp::{
    BeginTotpError, RECOVERY_CODES, SECOND_FACTOR_TTL_MINUTES, SecondFactorChangeError,
    TotpAlgorithm, TotpEnrollment, TotpError, TotpRecord, TotpRepository, TotpSecret,
};

#[cfg(any(test, feature = "mocks"))]
pub use identity::MockIdentityRepository;
#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockAccountRepository, MockAuthAudit, MockCommonPasswords, MockMailer, MockPasswordHasher,
    MockSecretSource, MockSessionRepository, MockTokenRepository,
};
#[cfg(any(test, feature = "mocks"))]
pub use totp::{MockTotpAlgorithm, MockTotpRepository};

/// An [`AuthService`] whose every port is a mock with no expectations: any call fails the
/// test. For adapter tests that never sign in.
#[cfg(any(test, feature = "mocks"))]
pub fn service_without_expectations() -> AuthService {
    #[derive(Debug)]
    struct NilIds;
    impl crate::ids::IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    AuthService::new(
        AuthPorts {
            accounts: std::sync::Arc::new(MockAccountRepository::new()),
            tokens: std::sync::Arc::new(MockTokenRepository::new()),
            sessions: std::sync::Arc::new(MockSessionRepository::new()),
            hasher: std::sync::Arc::new(MockPasswordHasher::new()),
            common: std::sync::Arc::new(MockCommonPasswords::new()),
            secrets: std::sync::Arc::new(MockSecretSource::new()),
            mailer: std::sync::Arc::new(MockMailer::new()),
            audit: std::sync::Arc::new(MockAuthAudit::new()),
            access: std::sync::Arc::new(crate::audit::MockAccessLog::new()),
            totp: std::sync::Arc::new(MockTotpRepository::new()),
            identity: std::sync::Arc::new(MockIdentityRepository::new()),
            patients: std::sync::Arc::new(crate::patient::MockPatientRepository::new()),
            organizations: std::sync::Arc::new(
                crate::organization::MockOrganizationRepository::new(),
            ),
            totp_algorithm: std::sync::Arc::new(MockTotpAlgorithm::new()),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
            ids: std::sync::Arc::new(NilIds),
        },
        AuthConfig::default(),
    )
}
