//! Changing the sign-in email address, confirmed from the new inbox.

use super::*;

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

pub(crate) struct EmailApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl EmailApi {
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
                salus_domain::text::EmailError::SENTENCE,
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
                ErrorBody::new("wrong_password", salus_domain::account::WRONG_PASSWORD),
            )),
            Err(EmailChangeError::SameAddress) => Ok(ChangeEmailResponse::Invalid(ErrorBody::new(
                "same_address",
                &salus_domain::account::EmailChangeError::SameAddress.to_string(),
            ))),
            Err(EmailChangeError::Throttled { retry_after_secs }) => {
                Ok(ChangeEmailResponse::TooMany(
                    ErrorBody::new(
                        "too_many_attempts",
                        salus_domain::account::TOO_MANY_ATTEMPTS,
                    ),
                    retry_after_secs,
                ))
            }
            Err(EmailChangeError::TooSoon) => Ok(ChangeEmailResponse::TooMany(
                ErrorBody::new(
                    "too_soon",
                    &salus_domain::account::EmailChangeError::TooSoon.to_string(),
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
                    &salus_domain::account::ConfirmEmailError::InvalidOrExpired.to_string(),
                )))
            }
            Err(ConfirmEmailError::Taken) => Ok(ConfirmEmailResponse::Taken(ErrorBody::new(
                "email_taken",
                &salus_domain::account::ConfirmEmailError::Taken.to_string(),
            ))),
            Err(ConfirmEmailError::Repo(e)) => Err(e.into()),
        }
    }
}

crate::redacted_debug!(ChangeEmail);
