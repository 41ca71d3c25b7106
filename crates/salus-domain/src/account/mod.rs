//! Accounts: who may sign in, how they prove it, and their sessions.
//!
//! **Invariant:** secrets (passwords, tokens) are never stored or logged in clear: passwords
//! only as argon2id PHC strings, tokens only as SHA-256 digests, and both redact themselves
//! in `Debug`.
//! **Invariant:** nothing here reveals whether an email is registered: registration answers
//! the same way either way, and a failed sign-in has one generic error.

mod model;
mod password;
mod ports;
mod service;
#[cfg(test)]
mod tests;

pub use model::{Account, AccountState, ChartLink, Role, StaffRole};
pub use password::{PasswordRejection, PersonalInfo, SecretText, check_new_password};
pub use ports::{
    AccountRepository, AuthAudit, AuthEvent, AuthEventKind, CommonPasswords, EmailToken, HashError,
    MailError, Mailer, OutgoingEmail, PasswordHash, PasswordHasher, SecretSource, Session,
    SessionRepository, TokenDigest, TokenPurpose, TokenRepository, Verified,
};
pub use service::{
    AuthConfig, AuthPorts, AuthService, Authenticated, LoginError, LoginOutcome, RegisterError,
    Registration, SessionError, VerifyError,
};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockAccountRepository, MockAuthAudit, MockCommonPasswords, MockMailer, MockPasswordHasher,
    MockSecretSource, MockSessionRepository, MockTokenRepository,
};
