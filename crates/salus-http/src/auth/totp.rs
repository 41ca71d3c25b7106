//! Setting up an authenticator app (TOTP) and its recovery codes.

use super::*;
use salus_domain::account::SecondFactorChangeError;

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

#[derive(Debug, ApiResponse)]
enum TotpOffResponse {
    /// The authenticator is off; the owner was told by email.
    #[oai(status = 204)]
    Done,
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `reauthentication_required` (enter the password at `/v1/me/reauthenticate` first) or
    /// `second_factor_required` (staff keep theirs).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `no_second_factor`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum NewCodesResponse {
    /// Ten new recovery codes, shown this once; the earlier ones no longer work.
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `reauthentication_required`: enter the password at `/v1/me/reauthenticate` first.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `no_second_factor`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

/// The answer to a refused change of the authenticator, by response type.
fn change_refused(e: SecondFactorChangeError) -> Result<Json<ErrorBody>, ApiError> {
    let message = e.to_string();
    let code = match e {
        SecondFactorChangeError::NotSignedIn => return Ok(unauthorized()),
        SecondFactorChangeError::Repo(r) => return Err(r.into()),
        SecondFactorChangeError::ReauthenticationRequired => "reauthentication_required",
        SecondFactorChangeError::NotEnrolled => "no_second_factor",
        SecondFactorChangeError::StaffMustKeepIt => "second_factor_required",
    };
    Ok(ErrorBody::new(code, &message))
}

pub(crate) struct TotpApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl TotpApi {
    /// Start setting up an authenticator app: answers the `otpauth://` URI (show it as a QR
    /// code) and the secret for typing in. Confirm with a code to finish.
    #[oai(path = "/v1/me/totp", method = "post", operation_id = "beginTotp")]
    async fn begin_totp(&self, token: SessionToken) -> Result<TotpBeginResponse, ApiError> {
        use salus_domain::account::BeginTotpError;
        match self.auth.begin_totp(token.secret()).await {
            Ok(e) => Ok(TotpBeginResponse::Ok(Json(TotpEnrollmentDto {
                otpauth_uri: e.provisioning_uri,
                secret: e.secret_base32,
            }))),
            Err(BeginTotpError::NotSignedIn) => Ok(TotpBeginResponse::Unauthorized(unauthorized())),
            Err(BeginTotpError::ReauthenticationRequired) => {
                Ok(TotpBeginResponse::ReauthRequired(reauth_required()))
            }
            Err(BeginTotpError::AlreadyEnrolled) => {
                Ok(TotpBeginResponse::Conflict(ErrorBody::new(
                    "second_factor_exists",
                    "An authenticator app is already set up for this account.",
                )))
            }
            Err(BeginTotpError::Repo(e)) => Err(e.into()),
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

    /// Turn the authenticator app off (patients; staff always keep one). Needs a recent
    /// password entry; the owner is told by email. Audited.
    #[oai(path = "/v1/me/totp", method = "delete", operation_id = "turnOffTotp")]
    async fn turn_off(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<TotpOffResponse, ApiError> {
        match self
            .auth
            .turn_off_totp(token.secret(), request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(TotpOffResponse::Done),
            Err(e @ SecondFactorChangeError::NotSignedIn) => {
                Ok(TotpOffResponse::Unauthorized(change_refused(e)?))
            }
            Err(e @ SecondFactorChangeError::NotEnrolled) => {
                Ok(TotpOffResponse::Conflict(change_refused(e)?))
            }
            Err(e) => Ok(TotpOffResponse::Forbidden(change_refused(e)?)),
        }
    }

    /// New recovery codes in place of all the earlier ones. Needs a recent password entry;
    /// the owner is told by email. Audited.
    #[oai(
        path = "/v1/me/totp/recovery-codes",
        method = "post",
        operation_id = "newRecoveryCodes"
    )]
    async fn new_codes(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<NewCodesResponse, ApiError> {
        match self
            .auth
            .new_recovery_codes(token.secret(), request_id(req).as_deref())
            .await
        {
            Ok(codes) => Ok(NewCodesResponse::Ok(Json(RecoveryCodes {
                recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            }))),
            Err(e @ SecondFactorChangeError::NotSignedIn) => {
                Ok(NewCodesResponse::Unauthorized(change_refused(e)?))
            }
            Err(e @ SecondFactorChangeError::NotEnrolled) => {
                Ok(NewCodesResponse::Conflict(change_refused(e)?))
            }
            Err(e) => Ok(NewCodesResponse::Forbidden(change_refused(e)?)),
        }
    }
}

crate::redacted_debug!(TotpCode, TotpEnrollmentDto, RecoveryCodes);
