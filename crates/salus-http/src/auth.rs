//! `/v1/auth/*` and `/v1/me`: registration, email verification, sign-in, sign-out, and the
//! signed-in account.

use crate::error::{ApiError, ErrorBody};
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use salus_domain::account::{
    Account, AuthService, ChartLink, LoginError, LoginOutcome, PersonalInfo, RegisterError,
    Registration, Role, SecretText, SessionError, VerifyError,
};
use salus_domain::patient::{InvalidBirthDate, parse_birth_date};
use salus_domain::text::Email;

#[derive(Tags)]
enum ApiTags {
    /// Accounts, sign-in and sessions.
    Auth,
}

/// A new patient account.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterRequest {
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub email: String,
    /// 12 to 128 characters; any characters.
    pub password: String,
}

#[derive(Debug, Object)]
pub struct Accepted {
    /// Always `check_your_email`: the answer is the same whether or not the address was known.
    pub status: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token or code from the email.
    pub token: String,
}

#[derive(Debug, Object)]
pub struct Verified {
    pub status: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A new session.
#[derive(Object)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once; only its digest is stored.
    pub token: String,
    pub token_type: String,
    /// Seconds without use after which the session ends.
    pub idle_timeout_secs: i64,
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleDto {
    Patient,
    Clinician,
    FrontDesk,
    Billing,
    OrganizationAdmin,
}

/// The signed-in account.
#[derive(Object)]
pub struct Me {
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub role: RoleDto,
    /// True once identity is proven and the account is tied to a chart.
    pub chart_linked: bool,
}

impl From<&Account> for Me {
    fn from(a: &Account) -> Self {
        use salus_domain::account::StaffRole;
        Self {
            id: a.id.to_string(),
            email: a.email.as_str().to_owned(),
            given_name: a.name.given().to_owned(),
            family_name: a.name.family().to_owned(),
            role: match a.role {
                Role::Patient => RoleDto::Patient,
                Role::Staff {
                    role: StaffRole::Clinician,
                    ..
                } => RoleDto::Clinician,
                Role::Staff {
                    role: StaffRole::FrontDesk,
                    ..
                } => RoleDto::FrontDesk,
                Role::Staff {
                    role: StaffRole::Billing,
                    ..
                } => RoleDto::Billing,
                Role::Staff {
                    role: StaffRole::OrganizationAdmin,
                    ..
                } => RoleDto::OrganizationAdmin,
            },
            chart_linked: matches!(a.chart, ChartLink::Linked { .. }),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum RegisterResponse {
    /// Registered, or the address was already registered (its owner was told); either way
    /// the next step is the email.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
    /// A field is missing or malformed (`invalid_email`, `invalid_name`, `invalid_birth_date`)
    /// or the password breaks a rule (`password_too_short`, `password_common`, ...).
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// Too many sign-ups or sign-ins are being processed; retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(Debug, ApiResponse)]
enum VerifyResponse {
    /// The address is confirmed; the account can sign in.
    #[oai(status = 200)]
    Ok(Json<Verified>),
    /// `invalid_or_expired_token`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
}

/// The second step of a sign-in.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// The challenge from `/v1/auth/login`.
    pub challenge: String,
    /// The 6-digit code, or a recovery code.
    pub code: String,
}

/// The password was right; a second factor is needed.
#[derive(Object)]
pub struct SecondFactorChallenge {
    /// Always `totp`.
    pub second_factor: String,
    /// Send with the code to `/v1/auth/login/second-factor`.
    pub challenge: String,
    pub expires_in_secs: i64,
}

#[derive(Debug, ApiResponse)]
enum LoginResult {
    /// Signed in.
    #[oai(status = 200)]
    Ok(Json<LoginResponse>),
    /// Password accepted; send a code from the authenticator app with the challenge.
    #[oai(status = 202)]
    SecondFactor(Json<SecondFactorChallenge>),
    /// `invalid_credentials`: the same answer for an unknown email and a wrong password.
    #[oai(status = 401)]
    Invalid(Json<ErrorBody>),
    /// `email_not_verified`: confirm the address first (ask for a new email if needed);
    /// `second_factor_required`: a staff account without a second factor.
    #[oai(status = 403)]
    NotVerified(Json<ErrorBody>),
    /// `too_many_attempts`: wait the given seconds.
    #[oai(status = 429)]
    Throttled(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(Debug, ApiResponse)]
enum LogoutResponse {
    /// The session is ended; its token no longer works.
    #[oai(status = 204)]
    Done,
    /// `unauthorized`: the token is not a live session.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<Me>),
}

fn invalid_credentials() -> LoginResult {
    LoginResult::Invalid(ErrorBody::new(
        "invalid_credentials",
        "The email or password is not correct.",
    ))
}

impl AuthApi {
    fn login_result(&self, r: Result<LoginOutcome, LoginError>) -> Result<LoginResult, ApiError> {
        use salus_domain::account::HashError;
        match r {
            Ok(LoginOutcome::Signed { token, .. }) => Ok(LoginResult::Ok(Json(LoginResponse {
                token: token.expose().to_owned(),
                token_type: "Bearer".into(),
                idle_timeout_secs: self.auth.config().idle_timeout.num_seconds(),
            }))),
            Ok(LoginOutcome::SecondFactor { challenge }) => {
                Ok(LoginResult::SecondFactor(Json(SecondFactorChallenge {
                    second_factor: "totp".into(),
                    challenge: challenge.expose().to_owned(),
                    expires_in_secs: salus_domain::account::SECOND_FACTOR_TTL_MINUTES * 60,
                })))
            }
            Err(LoginError::InvalidCredentials) => Ok(invalid_credentials()),
            Err(LoginError::SessionEnded) => Ok(LoginResult::Invalid(unauthorized())),
            Err(LoginError::NotVerified) => Ok(LoginResult::NotVerified(ErrorBody::new(
                "email_not_verified",
                "Please confirm your email address first. We can send the email again.",
            ))),
            Err(LoginError::SecondFactorRequired) => Ok(LoginResult::NotVerified(ErrorBody::new(
                "second_factor_required",
                "This account must use a second factor. Ask your administrator to set it up.",
            ))),
            Err(LoginError::Throttled { retry_after_secs }) => Ok(LoginResult::Throttled(
                ErrorBody::new(
                    "too_many_attempts",
                    "Too many attempts. Please wait and try again, or reset your password.",
                ),
                retry_after_secs,
            )),
            Err(LoginError::Busy(HashError::Busy { retry_after_secs })) => Ok(LoginResult::Busy(
                ErrorBody::new("busy", "Please try again in a moment."),
                retry_after_secs,
            )),
            Err(LoginError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(LoginError::Repo(e)) => Err(e.into()),
        }
    }
}

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

fn unauthorized() -> Json<ErrorBody> {
    ErrorBody::new("unauthorized", "Sign in to continue.")
}

/// The request id set by the request-id middleware.
fn request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) struct AuthApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register a patient account.
    ///
    /// Sends an email with a link and a code to confirm the address. The answer does not
    /// reveal whether the address already had an account.
    #[oai(path = "/v1/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &Request,
        body: Json<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        let b = body.0;
        let invalid =
            |code: &str, msg: &str| Ok(RegisterResponse::Invalid(ErrorBody::new(code, msg)));
        let registration = match Registration::from_fields(
            &b.given_name,
            &b.family_name,
            &b.birth_date,
            &b.email,
            SecretText::new(b.password),
        ) {
            Ok(r) => r,
            Err(e) => return invalid(e.code(), &e.to_string()),
        };
        match self
            .auth
            .register(registration, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(RegisterResponse::Accepted(Json(Accepted {
                status: "check_your_email".into(),
            }))),
            Err(RegisterError::Input(e)) => invalid(e.code(), &e.to_string()),
            Err(RegisterError::Password(r)) => invalid(r.code(), &r.sentence()),
            Err(RegisterError::Busy(salus_domain::account::HashError::Busy {
                retry_after_secs,
            })) => Ok(RegisterResponse::Busy(
                ErrorBody::new("busy", "Please try again in a moment."),
                retry_after_secs,
            )),
            Err(RegisterError::Busy(salus_domain::account::HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(RegisterError::Repo(e)) => Err(e.into()),
        }
    }

    /// Confirm an email address with the token or code from the email.
    #[oai(
        path = "/v1/auth/verify",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify(
        &self,
        req: &Request,
        body: Json<VerifyRequest>,
    ) -> Result<VerifyResponse, ApiError> {
        match self
            .auth
            .verify_email(
                &SecretText::new(body.0.token.trim()),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(_) => Ok(VerifyResponse::Ok(Json(Verified {
                status: "verified".into(),
            }))),
            Err(VerifyError::InvalidOrExpired) => Ok(VerifyResponse::Invalid(ErrorBody::new(
                "invalid_or_expired_token",
                "This link or code is invalid or has expired. Ask for a new one.",
            ))),
            Err(VerifyError::Repo(e)) => Err(e.into()),
        }
    }

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

    /// Sign in with email and password. Answers a bearer token (200), or, for accounts with
    /// a second factor, a challenge to send with the code to `/v1/auth/login/second-factor`
    /// (202).
    #[oai(path = "/v1/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<LoginResult, ApiError> {
        let Ok(email) = Email::parse(&body.0.email) else {
            return Ok(invalid_credentials());
        };
        let r = self
            .auth
            .login(
                &email,
                SecretText::new(body.0.password),
                request_id(req).as_deref(),
            )
            .await;
        self.login_result(r)
    }

    /// Finish signing in with the 6-digit code from the authenticator app, or a recovery code.
    #[oai(
        path = "/v1/auth/login/second-factor",
        method = "post",
        operation_id = "loginSecondFactor"
    )]
    async fn second_factor(
        &self,
        req: &Request,
        body: Json<SecondFactorRequest>,
    ) -> Result<LoginResult, ApiError> {
        let b = body.0;
        let r = self
            .auth
            .complete_second_factor(
                &SecretText::new(b.challenge.trim()),
                &b.code,
                request_id(req).as_deref(),
            )
            .await;
        self.login_result(r)
    }

    /// Sign out: the session ends on the server.
    #[oai(path = "/v1/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, req: &Request, token: SessionToken) -> Result<LogoutResponse, ApiError> {
        match self
            .auth
            .logout(token.secret(), request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(LogoutResponse::Done),
            Err(SessionError::Invalid) => Ok(LogoutResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }

    /// The signed-in account.
    #[oai(path = "/v1/me", method = "get", operation_id = "me")]
    async fn me(&self, token: SessionToken) -> MeResponse {
        MeResponse::Ok(Json(Me::from(token.account())))
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct EmailOnly {
    pub email: String,
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

/// A live session of the signed-in account.
#[derive(Debug, Object)]
pub struct SessionDto {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    /// The session making this request.
    pub current: bool,
}

#[derive(Debug, Object)]
pub struct SessionList {
    pub sessions: Vec<SessionDto>,
}

#[derive(Debug, Object)]
pub struct Revoked {
    /// How many sessions ended.
    pub revoked: u64,
}

#[derive(Debug, ApiResponse)]
enum EmailStepResponse {
    /// Done if the address has an account that needs it; the answer is the same either way.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
    /// `invalid_email`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
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

/// A new sign-in address, with the password entered again.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChangeEmail {
    pub new_email: String,
    pub password: String,
}

#[derive(Debug, ApiResponse)]
enum ChangeEmailResponse {
    /// A confirmation link is on its way to the new address.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
    /// `invalid_email`, `same_address` or `wrong_password`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `too_many_attempts` (wrong passwords) or `too_soon` (a link was just sent).
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(Debug, ApiResponse)]
enum ConfirmEmailResponse {
    /// The account signs in with the new address from now on.
    #[oai(status = 200)]
    Ok(Json<Verified>),
    /// `invalid_or_expired_token`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `email_taken`: another account took the address meanwhile.
    #[oai(status = 409)]
    Taken(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum SessionsResponse {
    #[oai(status = 200)]
    Ok(Json<SessionList>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum RevokeResponse {
    /// The session ended.
    #[oai(status = 204)]
    Done,
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `not_found`: no such session of this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum RevokeOthersResponse {
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(Object)]
pub struct TotpEnrollmentDto {
    pub otpauth_uri: String,
    /// Base32, for typing into the app by hand.
    pub secret: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

#[derive(Object)]
pub struct RecoveryCodes {
    /// Each works once instead of a code from the app. Shown only now.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, ApiResponse)]
enum TotpBeginResponse {
    #[oai(status = 200)]
    Ok(Json<TotpEnrollmentDto>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `reauthentication_required`: enter the password at `/v1/me/reauthenticate` first.
    #[oai(status = 403)]
    ReauthRequired(Json<ErrorBody>),
    /// `second_factor_exists`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum TotpConfirmResponse {
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>),
    /// `wrong_code`, `not_started` or `second_factor_exists`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `reauthentication_required`: enter the password at `/v1/me/reauthenticate` first.
    #[oai(status = 403)]
    ReauthRequired(Json<ErrorBody>),
}

fn reauth_required() -> Json<ErrorBody> {
    ErrorBody::new(
        "reauthentication_required",
        "Please enter your password again to continue.",
    )
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordOnly {
    pub password: String,
}

#[derive(Debug, ApiResponse)]
enum ReauthResponse {
    /// Sensitive actions are allowed for the next few minutes.
    #[oai(status = 204)]
    Done,
    /// `invalid_credentials` (wrong password) or `unauthorized` (no live session).
    #[oai(status = 401)]
    Invalid(Json<ErrorBody>),
    /// `too_many_attempts`.
    #[oai(status = 429)]
    Throttled(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
    /// `busy`.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

fn busy_body() -> Json<ErrorBody> {
    ErrorBody::new("busy", "Please try again in a moment.")
}

fn accepted() -> EmailStepResponse {
    EmailStepResponse::Accepted(Json(Accepted {
        status: "check_your_email".into(),
    }))
}

pub(crate) struct AccountApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AccountApi {
    /// Send the confirmation email again (at most once a minute).
    #[oai(
        path = "/v1/auth/resend-verification",
        method = "post",
        operation_id = "resendVerification"
    )]
    async fn resend(
        &self,
        req: &Request,
        body: Json<EmailOnly>,
    ) -> Result<EmailStepResponse, ApiError> {
        let Ok(email) = Email::parse(&body.0.email) else {
            return Ok(EmailStepResponse::Invalid(ErrorBody::new(
                "invalid_email",
                "Enter a valid email address.",
            )));
        };
        self.auth
            .resend_verification(&email, request_id(req).as_deref())
            .await?;
        Ok(accepted())
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
                "Enter a valid email address.",
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
                "This link is invalid or has expired. Ask for a new one.",
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
                    "The current password is not correct.",
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

    /// Change the sign-in email address; needs the password again. A confirmation link goes
    /// to the new address (the change happens when it is opened) and a notice to the old one.
    #[oai(path = "/v1/me/email", method = "post", operation_id = "changeEmail")]
    async fn change_email(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<ChangeEmail>,
    ) -> Result<ChangeEmailResponse, ApiError> {
        use salus_domain::account::EmailChangeError;
        let b = body.0;
        let Ok(new_email) = Email::parse(&b.new_email) else {
            return Ok(ChangeEmailResponse::Invalid(ErrorBody::new(
                "invalid_email",
                "Enter a valid email address.",
            )));
        };
        let result = self
            .auth
            .request_email_change(
                token.secret(),
                SecretText::new(b.password),
                new_email,
                request_id(req).as_deref(),
            )
            .await;
        match result {
            Ok(()) => Ok(ChangeEmailResponse::Accepted(Json(Accepted {
                status: "check_your_email".into(),
            }))),
            Err(EmailChangeError::NotSignedIn) => {
                Ok(ChangeEmailResponse::Unauthorized(unauthorized()))
            }
            Err(EmailChangeError::WrongPassword) => Ok(ChangeEmailResponse::Invalid(
                ErrorBody::new("wrong_password", "The password is not correct."),
            )),
            Err(EmailChangeError::SameAddress) => Ok(ChangeEmailResponse::Invalid(ErrorBody::new(
                "same_address",
                "This is already your email address.",
            ))),
            Err(EmailChangeError::Throttled { retry_after_secs }) => {
                Ok(ChangeEmailResponse::TooMany(
                    ErrorBody::new(
                        "too_many_attempts",
                        "Too many attempts. Please wait and try again.",
                    ),
                    retry_after_secs,
                ))
            }
            Err(EmailChangeError::TooSoon) => Ok(ChangeEmailResponse::TooMany(
                ErrorBody::new(
                    "too_soon",
                    "A confirmation email was just sent. Wait a minute before asking again.",
                ),
                60,
            )),
            Err(EmailChangeError::Busy) => Ok(ChangeEmailResponse::Busy(busy_body(), 1)),
            Err(EmailChangeError::Repo(e)) => Err(e.into()),
        }
    }

    /// Confirm a new email address with the token from the email sent to it.
    #[oai(
        path = "/v1/me/email/confirm",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email(
        &self,
        req: &Request,
        body: Json<VerifyRequest>,
    ) -> Result<ConfirmEmailResponse, ApiError> {
        use salus_domain::account::ConfirmEmailError;
        match self
            .auth
            .confirm_email_change(
                &SecretText::new(body.0.token.trim()),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(_) => Ok(ConfirmEmailResponse::Ok(Json(Verified {
                status: "changed".into(),
            }))),
            Err(ConfirmEmailError::InvalidOrExpired) => {
                Ok(ConfirmEmailResponse::Invalid(ErrorBody::new(
                    "invalid_or_expired_token",
                    "This link is invalid, used or expired.",
                )))
            }
            Err(ConfirmEmailError::Taken) => Ok(ConfirmEmailResponse::Taken(ErrorBody::new(
                "email_taken",
                "This email address now belongs to another account.",
            ))),
            Err(ConfirmEmailError::Repo(e)) => Err(e.into()),
        }
    }

    /// Enter the password again before a sensitive action (second factor changes, and later
    /// exports and consent grants), which need a sign-in or re-entry within 5 minutes.
    #[oai(
        path = "/v1/me/reauthenticate",
        method = "post",
        operation_id = "reauthenticate"
    )]
    async fn reauthenticate(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<PasswordOnly>,
    ) -> Result<ReauthResponse, ApiError> {
        use salus_domain::account::HashError;
        match self
            .auth
            .reauthenticate(
                token.secret(),
                SecretText::new(body.0.password),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(()) => Ok(ReauthResponse::Done),
            Err(
                LoginError::InvalidCredentials
                | LoginError::NotVerified
                | LoginError::SecondFactorRequired,
            ) => Ok(ReauthResponse::Invalid(ErrorBody::new(
                "invalid_credentials",
                "The password is not correct.",
            ))),
            Err(LoginError::SessionEnded) => Ok(ReauthResponse::Invalid(unauthorized())),
            Err(LoginError::Throttled { retry_after_secs }) => Ok(ReauthResponse::Throttled(
                ErrorBody::new(
                    "too_many_attempts",
                    "Too many attempts. Please wait and try again.",
                ),
                retry_after_secs,
            )),
            Err(LoginError::Busy(HashError::Busy { retry_after_secs })) => {
                Ok(ReauthResponse::Busy(busy_body(), retry_after_secs))
            }
            Err(LoginError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(LoginError::Repo(e)) => Err(e.into()),
        }
    }

    /// Start setting up an authenticator app: answers the `otpauth://` URI (show it as a QR
    /// code) and the secret for typing in. Confirm with a code to finish.
    #[oai(path = "/v1/me/totp", method = "post", operation_id = "beginTotp")]
    async fn begin_totp(&self, token: SessionToken) -> Result<TotpBeginResponse, ApiError> {
        use salus_domain::account::TotpError;
        match self.auth.begin_totp(token.secret()).await {
            Ok(e) => Ok(TotpBeginResponse::Ok(Json(TotpEnrollmentDto {
                otpauth_uri: e.provisioning_uri,
                secret: e.secret_base32,
            }))),
            Err(TotpError::NotSignedIn) => Ok(TotpBeginResponse::Unauthorized(unauthorized())),
            Err(TotpError::ReauthenticationRequired) => {
                Ok(TotpBeginResponse::ReauthRequired(reauth_required()))
            }
            Err(TotpError::AlreadyEnrolled) => Ok(TotpBeginResponse::Conflict(ErrorBody::new(
                "second_factor_exists",
                "An authenticator app is already set up for this account.",
            ))),
            Err(TotpError::NotStarted | TotpError::WrongCode) => {
                Err(ApiError::internal("unexpected enrolment state"))
            }
            Err(TotpError::Repo(e)) => Err(e.into()),
        }
    }

    /// Finish setting up the authenticator app with a code from it. Answers ten recovery
    /// codes, shown this once.
    #[oai(
        path = "/v1/me/totp/confirm",
        method = "post",
        operation_id = "confirmTotp"
    )]
    async fn confirm_totp(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<TotpCode>,
    ) -> Result<TotpConfirmResponse, ApiError> {
        use salus_domain::account::TotpError;
        match self
            .auth
            .confirm_totp(token.secret(), &body.0.code, request_id(req).as_deref())
            .await
        {
            Ok(codes) => Ok(TotpConfirmResponse::Ok(Json(RecoveryCodes {
                recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            }))),
            Err(TotpError::NotSignedIn) => Ok(TotpConfirmResponse::Unauthorized(unauthorized())),
            Err(TotpError::ReauthenticationRequired) => {
                Ok(TotpConfirmResponse::ReauthRequired(reauth_required()))
            }
            Err(TotpError::WrongCode) => Ok(TotpConfirmResponse::Invalid(ErrorBody::new(
                "wrong_code",
                "That code is not correct. Try the newest one.",
            ))),
            Err(TotpError::NotStarted) => Ok(TotpConfirmResponse::Invalid(ErrorBody::new(
                "not_started",
                "Start setting up the app first.",
            ))),
            Err(TotpError::AlreadyEnrolled) => Ok(TotpConfirmResponse::Invalid(ErrorBody::new(
                "second_factor_exists",
                "An authenticator app is already set up for this account.",
            ))),
            Err(TotpError::Repo(e)) => Err(e.into()),
        }
    }

    /// The signed-in account's live sessions, newest first.
    #[oai(
        path = "/v1/me/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn sessions(&self, token: SessionToken) -> Result<SessionsResponse, ApiError> {
        match self.auth.sessions(token.secret()).await {
            Ok(list) => Ok(SessionsResponse::Ok(Json(SessionList {
                sessions: list
                    .into_iter()
                    .map(|s| SessionDto {
                        id: s.id.to_string(),
                        created_at: s.created_at,
                        last_seen_at: s.last_seen_at,
                        current: s.current,
                    })
                    .collect(),
            }))),
            Err(SessionError::Invalid) => Ok(SessionsResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }

    /// End one session of the signed-in account.
    #[oai(
        path = "/v1/me/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke(
        &self,
        req: &Request,
        token: SessionToken,
        id: poem_openapi::param::Path<String>,
    ) -> Result<RevokeResponse, ApiError> {
        let not_found =
            || RevokeResponse::NotFound(ErrorBody::new("not_found", "No such session."));
        let Ok(target) = salus_domain::SessionId::parse(&id.0) else {
            return Ok(not_found());
        };
        match self
            .auth
            .revoke_session(token.secret(), target, request_id(req).as_deref())
            .await
        {
            Ok(true) => Ok(RevokeResponse::Done),
            Ok(false) => Ok(not_found()),
            Err(SessionError::Invalid) => Ok(RevokeResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }

    /// End every session of the signed-in account except this one.
    #[oai(
        path = "/v1/me/sessions/revoke-others",
        method = "post",
        operation_id = "revokeOtherSessions"
    )]
    async fn revoke_others(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<RevokeOthersResponse, ApiError> {
        match self
            .auth
            .revoke_other_sessions(token.secret(), request_id(req).as_deref())
            .await
        {
            Ok(revoked) => Ok(RevokeOthersResponse::Ok(Json(Revoked { revoked }))),
            Err(SessionError::Invalid) => Ok(RevokeOthersResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }
}

crate::redacted_debug!(
    SessionToken,
    LoginResponse,
    SecondFactorRequest,
    SecondFactorChallenge,
    PasswordOnly,
    RegisterRequest,
    PasswordCheckRequest,
    VerifyRequest,
    LoginRequest,
    EmailOnly,
    ResetConfirm,
    ChangePassword,
    ChangeEmail,
    TotpCode,
    TotpEnrollmentDto,
    RecoveryCodes,
    Me
);
