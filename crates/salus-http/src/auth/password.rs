//! Passwords: the strength check while typing, the emailed reset, and a change while signed in.

use super::*;

/// A password being typed, with what the person has entered so far about themselves.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordCheckRequest {
    pub password: String,
    #[oai(default)]
    pub given_name: String,
    #[oai(default)]
    pub family_name: String,
    #[oai(default)]
    pub email: String,
    /// `YYYY-MM-DD`; ignored when empty.
    #[oai(default)]
    pub birth_date: String,
}

/// Whether the password would be accepted, and how hard it would be to guess.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasswordCheck {
    /// True when registration or a password change would accept it.
    pub acceptable: bool,
    /// Why not, as a stable code (`password_too_short`, `password_common`, ...).
    pub problem_code: Option<String>,
    /// Why not, in words.
    pub problem: Option<String>,
    /// 0 (guessed at once) to 4 (very hard to guess); 0 when not acceptable.
    pub score: u8,
    /// `very weak`, `weak`, `fair`, `good` or `strong`.
    pub strength: String,
    pub warning: Option<String>,
    pub suggestions: Vec<String>,
}

#[derive(Debug, ApiResponse)]
enum PasswordCheckResponse {
    #[oai(status = 200)]
    Ok(Json<PasswordCheck>),
    /// `invalid_birth_date`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the reset email.
    pub token: String,
    pub password: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, ApiResponse)]
enum ResetResponse {
    /// The password is changed; every session of the account ended.
    #[oai(status = 200)]
    Ok(Json<Verified>),
    /// `invalid_or_expired_token` or a password rule (`password_too_short`, ...).
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(Debug, ApiResponse)]
enum ChangePasswordResponse {
    /// Changed; every other session ended.
    #[oai(status = 204)]
    Done,
    /// `wrong_current_password` or a password rule.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

pub(crate) struct PasswordApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl PasswordApi {
    /// Check a new password while it is typed (the strength meter).
    ///
    /// The same rules as registration and password changes, plus a zxcvbn estimate with the
    /// person's name, email and birth date counted as known to an attacker. Nothing is stored
    /// or logged.
    #[oai(
        path = "/v1/password-check",
        method = "post",
        operation_id = "checkPassword"
    )]
    async fn check_password(&self, body: Json<PasswordCheckRequest>) -> PasswordCheckResponse {
        let b = body.0;
        let birth_date = if b.birth_date.trim().is_empty() {
            None
        } else if let Ok(d) = parse_birth_date(&b.birth_date) {
            Some(d)
        } else {
            return PasswordCheckResponse::Invalid(ErrorBody::new(
                "invalid_birth_date",
                &InvalidBirthDate.to_string(),
            ));
        };
        let feedback = self.auth.password_feedback(
            &SecretText::new(b.password),
            &PersonalInfo {
                given_name: &b.given_name,
                family_name: &b.family_name,
                email: &b.email,
                birth_date,
            },
        );
        PasswordCheckResponse::Ok(Json(PasswordCheck {
            acceptable: feedback.verdict.is_ok(),
            problem_code: feedback.verdict.err().map(|r| r.code().to_owned()),
            problem: feedback
                .verdict
                .err()
                .map(salus_domain::account::PasswordRejection::sentence),
            score: feedback.estimate.score,
            strength: feedback.label().to_owned(),
            warning: feedback.estimate.warning,
            suggestions: feedback.estimate.suggestions,
        }))
    }

    /// Email a password reset link (valid one hour; at most one a minute).
    #[oai(
        path = "/v1/auth/password-reset",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_reset(
        &self,
        req: &Request,
        body: Json<EmailOnly>,
    ) -> Result<EmailStepResponse, ApiError> {
        let Ok(email) = Email::parse(&body.0.email) else {
            return Ok(EmailStepResponse::Invalid(ErrorBody::new(
                "invalid_email",
                salus_domain::text::EmailError::SENTENCE,
            )));
        };
        self.auth
            .request_password_reset(&email, request_id(req).as_deref())
            .await?;
        Ok(accepted())
    }

    /// Choose a new password with the token from the reset email. Ends every session.
    #[oai(
        path = "/v1/auth/password-reset/confirm",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset(
        &self,
        req: &Request,
        body: Json<ResetConfirm>,
    ) -> Result<ResetResponse, ApiError> {
        use salus_domain::account::{HashError, ResetError};
        let b = body.0;
        match self
            .auth
            .reset_password(
                &SecretText::new(b.token.trim()),
                SecretText::new(b.password),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(()) => Ok(ResetResponse::Ok(Json(Verified {
                status: "password_changed".into(),
            }))),
            Err(ResetError::InvalidOrExpired) => Ok(ResetResponse::Invalid(ErrorBody::new(
                "invalid_or_expired_token",
                &salus_domain::account::ResetError::InvalidOrExpired.to_string(),
            ))),
            Err(ResetError::Password(r)) => Ok(ResetResponse::Invalid(ErrorBody::new(
                r.code(),
                &r.sentence(),
            ))),
            Err(ResetError::Busy(HashError::Busy { retry_after_secs })) => {
                Ok(ResetResponse::Busy(busy_body(), retry_after_secs))
            }
            Err(ResetError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(ResetError::Repo(e)) => Err(e.into()),
        }
    }

    /// Change the password; needs the current one. Ends every other session.
    #[oai(
        path = "/v1/me/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<ChangePassword>,
    ) -> Result<ChangePasswordResponse, ApiError> {
        use salus_domain::account::{ChangePasswordError, HashError};
        let b = body.0;
        let result = self
            .auth
            .change_password(
                token.secret(),
                SecretText::new(b.current_password),
                SecretText::new(b.new_password),
                request_id(req).as_deref(),
            )
            .await;
        match result {
            Ok(()) => Ok(ChangePasswordResponse::Done),
            Err(ChangePasswordError::NotSignedIn) => {
                Ok(ChangePasswordResponse::Unauthorized(unauthorized()))
            }
            Err(ChangePasswordError::WrongCurrentPassword) => {
                Ok(ChangePasswordResponse::Invalid(ErrorBody::new(
                    "wrong_current_password",
                    &salus_domain::account::ChangePasswordError::WrongCurrentPassword.to_string(),
                )))
            }
            Err(ChangePasswordError::Password(r)) => Ok(ChangePasswordResponse::Invalid(
                ErrorBody::new(r.code(), &r.sentence()),
            )),
            Err(ChangePasswordError::Busy(HashError::Busy { retry_after_secs })) => {
                Ok(ChangePasswordResponse::Busy(busy_body(), retry_after_secs))
            }
            Err(ChangePasswordError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(ChangePasswordError::Repo(e)) => Err(e.into()),
        }
    }
}

crate::redacted_debug!(PasswordCheckRequest, ResetConfirm, ChangePassword);
