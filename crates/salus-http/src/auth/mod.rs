//! `/v1/auth/*` and `/v1/me`: accounts, by use case — [`sign_in`] (registration, email
//! verification, sign-in, sign-out, the account, re-entering the password), [`password`],
//! [`email`] (changing the address), [`sessions`] and [`totp`]. What they share is here.

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

mod email;
mod password;
mod sessions;
mod sign_in;
mod totp;

pub(crate) use email::EmailApi;
pub(crate) use password::PasswordApi;
pub(crate) use sessions::SessionsApi;
pub(crate) use sign_in::SignInApi;
use sign_in::{Accepted, Verified, VerifyRequest};
pub(crate) use totp::TotpApi;

#[derive(Tags)]
enum ApiTags {
    /// Accounts, sign-in and sessions.
    Auth,
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

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct EmailOnly {
    pub email: String,
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

fn reauth_required() -> Json<ErrorBody> {
    ErrorBody::new(
        "reauthentication_required",
        "Please enter your password again to continue.",
    )
}

fn busy_body() -> Json<ErrorBody> {
    ErrorBody::new("busy", "Please try again in a moment.")
}

fn accepted() -> EmailStepResponse {
    EmailStepResponse::Accepted(Json(Accepted {
        status: "check_your_email".into(),
    }))
}

crate::redacted_debug!(EmailOnly, Me);
