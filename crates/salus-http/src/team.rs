//! Staff administration: an organisation administrator invites colleagues and lists them;
//! the invited colleague accepts with their own password and authenticator app.

use crate::error::{ApiError, ErrorBody};
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use salus_domain::account::{
    AuthService, HashError, InviteError, ListStaffError, SecretText, StaffInvite, StaffRole,
    StaffSetupError,
};

#[derive(Tags)]
enum ApiTags {
    /// Staff accounts of an organisation.
    Staff,
}

#[derive(Debug, Clone, Copy, Enum, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum StaffRoleDto {
    Clinician,
    FrontDesk,
    Billing,
    OrganizationAdmin,
}

impl From<StaffRoleDto> for StaffRole {
    fn from(r: StaffRoleDto) -> Self {
        match r {
            StaffRoleDto::Clinician => Self::Clinician,
            StaffRoleDto::FrontDesk => Self::FrontDesk,
            StaffRoleDto::Billing => Self::Billing,
            StaffRoleDto::OrganizationAdmin => Self::OrganizationAdmin,
        }
    }
}

impl From<StaffRole> for StaffRoleDto {
    fn from(r: StaffRole) -> Self {
        match r {
            StaffRole::Clinician => Self::Clinician,
            StaffRole::FrontDesk => Self::FrontDesk,
            StaffRole::Billing => Self::Billing,
            StaffRole::OrganizationAdmin => Self::OrganizationAdmin,
        }
    }
}

/// A colleague to invite to your organisation.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub role: StaffRoleDto,
}

#[derive(Debug, Object)]
pub struct Invited {
    pub account_id: String,
    /// Always `invited`: an email with a setup link is on its way.
    pub status: String,
    pub valid_days: i64,
}

#[derive(Object)]
pub struct StaffMemberDto {
    pub account_id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub role: StaffRoleDto,
    /// `active`, or `invited` while the invitation waits to be accepted.
    pub status: String,
}

#[derive(Debug, Object)]
pub struct StaffList {
    pub staff: Vec<StaffMemberDto>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetupStart {
    /// The token from the invitation email.
    pub token: String,
}

/// The invitation being accepted, and a new authenticator secret to add to the app.
#[derive(Object)]
pub struct SetupChallenge {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub role: StaffRoleDto,
    /// `otpauth://` URI for the authenticator app (show as a QR code).
    pub otpauth_uri: String,
    /// The same secret for typing in by hand.
    pub secret_base32: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetupFinish {
    pub token: String,
    /// 12 to 128 characters; any characters.
    pub password: String,
    /// The current 6-digit code from the authenticator app.
    pub code: String,
}

#[derive(Object)]
pub struct SetupDone {
    /// Ten single-use recovery codes. Shown only now.
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, ApiResponse)]
enum InviteResponse {
    #[oai(status = 202)]
    Accepted(Json<Invited>),
    /// `invalid_email`, `invalid_name`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: only organisation administrators invite staff.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `email_taken`: the address already has an account.
    #[oai(status = 409)]
    Taken(Json<ErrorBody>),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

#[derive(Debug, ApiResponse)]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<StaffList>),
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum SetupStartResponse {
    #[oai(status = 200)]
    Ok(Json<SetupChallenge>),
    /// `invalid_or_expired_token`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum SetupFinishResponse {
    /// The account is active; sign in with the new password and a code.
    #[oai(status = 200)]
    Ok(Json<SetupDone>),
    /// `invalid_or_expired_token`, `wrong_code`, or a password rule (`password_too_short`,
    /// `password_common`, ...).
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

fn request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn forbidden() -> Json<ErrorBody> {
    ErrorBody::new(
        "forbidden",
        "Only an organisation administrator manages staff.",
    )
}

fn invalid_link() -> Json<ErrorBody> {
    ErrorBody::new(
        "invalid_or_expired_token",
        "This invitation link is invalid, used or expired. Ask your administrator for a new one.",
    )
}

pub(crate) struct TeamApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Staff")]
impl TeamApi {
    /// Organisation administrator: invite a colleague.
    ///
    /// The colleague gets an email with a link to choose their password and set up their
    /// authenticator app; nobody else sees either. Inviting a pending address again sends a
    /// fresh link.
    #[oai(
        path = "/v1/staff/invitations",
        method = "post",
        operation_id = "inviteStaff"
    )]
    async fn invite(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<InviteRequest>,
    ) -> Result<InviteResponse, ApiError> {
        let b = body.0;
        let invite = match StaffInvite::from_fields(
            &b.email,
            &b.given_name,
            &b.family_name,
            b.role.into(),
        ) {
            Ok(i) => i,
            Err(e) => {
                return Ok(InviteResponse::Invalid(ErrorBody::new(
                    e.code(),
                    &e.to_string(),
                )));
            }
        };
        let Ok(actor) = token.actor() else {
            return Ok(InviteResponse::Forbidden(forbidden()));
        };
        match self
            .auth
            .invite_staff(&actor, invite, request_id(req).as_deref())
            .await
        {
            Ok(id) => Ok(InviteResponse::Accepted(Json(Invited {
                account_id: id.to_string(),
                status: "invited".into(),
                valid_days: salus_domain::account::INVITE_TTL_DAYS,
            }))),
            Err(InviteError::Forbidden) => Ok(InviteResponse::Forbidden(forbidden())),
            Err(InviteError::EmailTaken) => Ok(InviteResponse::Taken(ErrorBody::new(
                "email_taken",
                &salus_domain::account::InviteError::EmailTaken.to_string(),
            ))),
            Err(InviteError::Busy(HashError::Busy { retry_after_secs })) => {
                Ok(InviteResponse::Busy(busy(), retry_after_secs))
            }
            Err(InviteError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(InviteError::Repo(e)) => Err(e.into()),
        }
    }

    /// Organisation administrator: the staff of your organisation, active and invited.
    #[oai(path = "/v1/staff", method = "get", operation_id = "listStaff")]
    async fn list(&self, token: SessionToken) -> Result<ListResponse, ApiError> {
        let Ok(actor) = token.actor() else {
            return Ok(ListResponse::Forbidden(forbidden()));
        };
        match self.auth.staff_members(&actor).await {
            Ok(members) => Ok(ListResponse::Ok(Json(StaffList {
                staff: members
                    .into_iter()
                    .map(|m| StaffMemberDto {
                        account_id: m.account.to_string(),
                        email: m.email.as_str().to_owned(),
                        given_name: m.name.given().to_owned(),
                        family_name: m.name.family().to_owned(),
                        role: m.role.into(),
                        status: if m.active { "active" } else { "invited" }.into(),
                    })
                    .collect(),
            }))),
            Err(ListStaffError::Forbidden) => Ok(ListResponse::Forbidden(forbidden())),
            Err(ListStaffError::Repo(e)) => Err(e.into()),
        }
    }

    /// Invited colleague: open the invitation and get a new authenticator secret.
    #[oai(
        path = "/v1/staff/setup/start",
        method = "post",
        operation_id = "startStaffSetup"
    )]
    async fn setup_start(&self, body: Json<SetupStart>) -> Result<SetupStartResponse, ApiError> {
        match self
            .auth
            .begin_staff_setup(&SecretText::new(body.0.token))
            .await
        {
            Ok(s) => Ok(SetupStartResponse::Ok(Json(SetupChallenge {
                email: s.email.as_str().to_owned(),
                given_name: s.name.given().to_owned(),
                family_name: s.name.family().to_owned(),
                role: s.role.into(),
                otpauth_uri: s.totp.provisioning_uri,
                secret_base32: s.totp.secret_base32,
            }))),
            Err(StaffSetupError::Repo(e)) => Err(e.into()),
            Err(
                StaffSetupError::InvalidOrExpired
                | StaffSetupError::Password(_)
                | StaffSetupError::WrongCode
                | StaffSetupError::Busy(_),
            ) => Ok(SetupStartResponse::Invalid(invalid_link())),
        }
    }

    /// Invited colleague: choose a password and confirm the authenticator with a code. The
    /// link is then used up and the account can sign in.
    #[oai(
        path = "/v1/staff/setup",
        method = "post",
        operation_id = "finishStaffSetup"
    )]
    async fn setup_finish(
        &self,
        req: &Request,
        body: Json<SetupFinish>,
    ) -> Result<SetupFinishResponse, ApiError> {
        let b = body.0;
        match self
            .auth
            .complete_staff_setup(
                &SecretText::new(b.token),
                SecretText::new(b.password),
                b.code.trim(),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(codes) => Ok(SetupFinishResponse::Ok(Json(SetupDone {
                recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            }))),
            Err(StaffSetupError::InvalidOrExpired) => {
                Ok(SetupFinishResponse::Invalid(invalid_link()))
            }
            Err(StaffSetupError::Password(r)) => Ok(SetupFinishResponse::Invalid(ErrorBody::new(
                r.code(),
                &r.sentence(),
            ))),
            Err(StaffSetupError::WrongCode) => Ok(SetupFinishResponse::Invalid(ErrorBody::new(
                "wrong_code",
                "The code from your authenticator app is not correct. Check the time on your phone and try the next code.",
            ))),
            Err(StaffSetupError::Busy(HashError::Busy { retry_after_secs })) => {
                Ok(SetupFinishResponse::Busy(busy(), retry_after_secs))
            }
            Err(StaffSetupError::Busy(HashError::Failed)) => {
                Err(ApiError::internal("password hashing failed"))
            }
            Err(StaffSetupError::Repo(e)) => Err(e.into()),
        }
    }
}

fn busy() -> Json<ErrorBody> {
    ErrorBody::new("busy", "Please try again in a moment.")
}

crate::redacted_debug!(
    InviteRequest,
    StaffMemberDto,
    SetupStart,
    SetupChallenge,
    SetupFinish,
    SetupDone
);
