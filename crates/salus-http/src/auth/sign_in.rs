//! Registration, email verification, sign-in (with the second factor), sign-out, the signed-in
//! account, and entering the password again before a sensitive action.

use super::*;

/// A new patient account.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The clinic (its slug in `GET /api/v1/organizations`) asked to confirm who the person
    /// is; may be left out and chosen later with `PUT /api/v1/me/clinic`.
    pub clinic: Option<String>,
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
        &salus_domain::account::LoginError::InvalidCredentials.to_string(),
    ))
}

impl SignInApi {
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

pub(crate) struct SignInApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl SignInApi {
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
            b.clinic.as_deref().unwrap_or_default(),
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
                user_agent(req),
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
                user_agent(req),
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
                salus_domain::text::EmailError::SENTENCE,
            )));
        };
        self.auth
            .resend_verification(&email, request_id(req).as_deref())
            .await?;
        Ok(accepted())
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
                salus_domain::account::WRONG_PASSWORD,
            ))),
            Err(LoginError::SessionEnded) => Ok(ReauthResponse::Invalid(unauthorized())),
            Err(LoginError::Throttled { retry_after_secs }) => Ok(ReauthResponse::Throttled(
                ErrorBody::new(
                    "too_many_attempts",
                    salus_domain::account::TOO_MANY_ATTEMPTS,
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
}

crate::redacted_debug!(
    LoginResponse,
    SecondFactorRequest,
    SecondFactorChallenge,
    PasswordOnly,
    RegisterRequest,
    VerifyRequest,
    LoginRequest
);

/// The client's `User-Agent`, from which a session is named ("Firefox on Windows").
fn user_agent(req: &Request) -> Option<&str> {
    req.headers()
        .get(poem::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}
