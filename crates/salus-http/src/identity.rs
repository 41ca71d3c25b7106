//! Identity proofing: activation codes (issued by front desk, redeemed by patients) and the
//! staff queue of accounts waiting to be matched to a chart.

use crate::error::{ApiError, ErrorBody};
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use salus_domain::access::Actor;
use salus_domain::account::{
    AuthService, IssueCodeError, QueueError, RedeemError, ReviewError, ReviewOutcome, SecretText,
};
use salus_domain::{AccountId, PatientId};

#[derive(Tags)]
enum ApiTags {
    /// Connecting accounts to medical records.
    Identity,
}

#[derive(Object)]
pub struct ActivationCodeDto {
    /// Give this to the patient (in person or by post). Shown only now.
    pub code: String,
    pub valid_days: i64,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RedeemRequest {
    pub code: String,
    /// `YYYY-MM-DD`: must match the record.
    pub birth_date: String,
}

#[derive(Debug, Object)]
pub struct Linked {
    pub status: String,
}

#[derive(Object)]
pub struct Candidate {
    pub patient_id: String,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: chrono::NaiveDate,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct QueueEntryDto {
    pub account_id: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<chrono::NaiveDate>,
    pub email: String,
    pub registered_at: chrono::DateTime<chrono::Utc>,
    /// Charts of your organisation that match, best first.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Object)]
pub struct Queue {
    pub entries: Vec<QueueEntryDto>,
}

#[derive(Debug, Clone, Copy, Enum, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum Decision {
    Confirm,
    Reject,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: Decision,
    /// Required with `confirm`: the chart that is this person's.
    pub patient_id: Option<String>,
}

#[derive(Debug, ApiResponse)]
enum IssueResponse {
    #[oai(status = 201)]
    Created(Json<ActivationCodeDto>),
    /// `forbidden`: only front desk and organisation admins issue codes.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such chart in your organisation.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum RedeemResponse {
    /// The account is connected to the record.
    #[oai(status = 200)]
    Ok(Json<Linked>),
    /// `code_rejected` (wrong, used or expired code, or a birth date that does not match)
    /// or `invalid_birth_date`.
    #[oai(status = 400)]
    Rejected(Json<ErrorBody>),
    /// `forbidden`: staff accounts are not connected to records.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `already_linked`.
    #[oai(status = 409)]
    AlreadyLinked(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum QueueResponse {
    #[oai(status = 200)]
    Ok(Json<Queue>),
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum ReviewResponse {
    /// Recorded (and, with `confirm`, the account is connected).
    #[oai(status = 204)]
    Done,
    /// `patient_required`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such queued account, or no matching chart in your organisation.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `already_linked`.
    #[oai(status = 409)]
    AlreadyLinked(Json<ErrorBody>),
}

fn body(code: &str, message: &str) -> Json<ErrorBody> {
    ErrorBody::new(code, message)
}

fn forbidden() -> Json<ErrorBody> {
    body("forbidden", "Your role may not do this.")
}

/// The staff member's actor; an account that acts on no chart yet is no staff member.
fn staff(token: &SessionToken) -> Option<Actor> {
    token.actor().ok()
}

fn request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) struct IdentityApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Identity")]
impl IdentityApi {
    /// Front desk: issue an activation code for a chart of your organisation.
    #[oai(
        path = "/v1/staff/patients/:patient_id/activation-code",
        method = "post",
        operation_id = "issueActivationCode"
    )]
    async fn issue(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Path<String>,
    ) -> Result<IssueResponse, ApiError> {
        let not_found = || IssueResponse::NotFound(body("not_found", "No such record."));
        let Ok(patient) = PatientId::parse(&patient_id.0) else {
            return Ok(not_found());
        };
        let Some(actor) = staff(&token) else {
            return Ok(IssueResponse::Forbidden(forbidden()));
        };
        match self
            .auth
            .issue_activation_code(&actor, patient, request_id(req).as_deref())
            .await
        {
            Ok(code) => Ok(IssueResponse::Created(Json(ActivationCodeDto {
                code: code.expose().to_owned(),
                valid_days: self.auth.config().activation_ttl_days,
            }))),
            Err(IssueCodeError::Forbidden) => Ok(IssueResponse::Forbidden(forbidden())),
            Err(IssueCodeError::NotFound) => Ok(not_found()),
            Err(IssueCodeError::Repo(e)) => Err(e.into()),
        }
    }

    /// Patient: connect your account to your medical record with the activation code from
    /// your clinic and your date of birth.
    #[oai(
        path = "/v1/me/activate",
        method = "post",
        operation_id = "redeemActivationCode"
    )]
    async fn redeem(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<RedeemRequest>,
    ) -> Result<RedeemResponse, ApiError> {
        let Ok(dob) = salus_domain::patient::parse_birth_date(&b.0.birth_date) else {
            return Ok(RedeemResponse::Rejected(body(
                "invalid_birth_date",
                &salus_domain::patient::InvalidBirthDate.to_string(),
            )));
        };
        match self
            .auth
            .redeem_activation_code(
                token.account(),
                &SecretText::new(b.0.code),
                dob,
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(_) => Ok(RedeemResponse::Ok(Json(Linked {
                status: "linked".into(),
            }))),
            Err(RedeemError::CodeRejected) => Ok(RedeemResponse::Rejected(body(
                "code_rejected",
                &salus_domain::account::RedeemError::CodeRejected.to_string(),
            ))),
            Err(RedeemError::Forbidden) => Ok(RedeemResponse::Forbidden(body(
                "forbidden",
                &salus_domain::account::RedeemError::Forbidden.to_string(),
            ))),
            Err(RedeemError::AlreadyLinked) => Ok(RedeemResponse::AlreadyLinked(body(
                "already_linked",
                "Your account is already connected to a record.",
            ))),
            Err(RedeemError::Repo(e)) => Err(e.into()),
        }
    }

    /// Front desk: accounts waiting for identity review, with matching charts.
    #[oai(
        path = "/v1/staff/identity-queue",
        method = "get",
        operation_id = "identityQueue"
    )]
    async fn queue(&self, req: &Request, token: SessionToken) -> Result<QueueResponse, ApiError> {
        let Some(actor) = staff(&token) else {
            return Ok(QueueResponse::Forbidden(forbidden()));
        };
        match self
            .auth
            .identity_queue(&actor, request_id(req).as_deref())
            .await
        {
            Ok(entries) => Ok(QueueResponse::Ok(Json(Queue {
                entries: entries
                    .into_iter()
                    .map(|e| QueueEntryDto {
                        account_id: e.account.id.to_string(),
                        given_name: e.account.name.given().to_owned(),
                        family_name: e.account.name.family().to_owned(),
                        birth_date: e.account.birth_date,
                        email: e.account.email.as_str().to_owned(),
                        registered_at: e.account.created_at,
                        candidates: e
                            .candidates
                            .iter()
                            .map(|c| Candidate {
                                patient_id: c.id.to_string(),
                                mrn: c.mrn.as_str().to_owned(),
                                given_name: c.name.given().to_owned(),
                                family_name: c.name.family().to_owned(),
                                birth_date: c.birth_date,
                            })
                            .collect(),
                    })
                    .collect(),
            }))),
            Err(QueueError::Forbidden) => Ok(QueueResponse::Forbidden(forbidden())),
            Err(QueueError::Repo(e)) => Err(e.into()),
        }
    }

    /// Front desk: confirm which chart a queued account belongs to, or reject the match.
    #[oai(
        path = "/v1/staff/identity-queue/:account_id",
        method = "post",
        operation_id = "reviewIdentity"
    )]
    async fn review(
        &self,
        req: &Request,
        token: SessionToken,
        account_id: Path<String>,
        b: Json<ReviewRequest>,
    ) -> Result<ReviewResponse, ApiError> {
        let not_found = || {
            ReviewResponse::NotFound(body(
                "not_found",
                "No such account waiting for review, or no such record.",
            ))
        };
        let Ok(account) = AccountId::parse(&account_id.0) else {
            return Ok(not_found());
        };
        let decision = match (b.0.decision, b.0.patient_id) {
            (Decision::Reject, _) => ReviewOutcome::Rejected,
            (Decision::Confirm, Some(p)) => match PatientId::parse(&p) {
                Ok(patient) => ReviewOutcome::Confirmed { patient },
                Err(_) => return Ok(not_found()),
            },
            (Decision::Confirm, None) => {
                return Ok(ReviewResponse::Invalid(body(
                    "patient_required",
                    "Choose the record to connect.",
                )));
            }
        };
        let Some(actor) = staff(&token) else {
            return Ok(ReviewResponse::Forbidden(forbidden()));
        };
        match self
            .auth
            .review_identity(&actor, account, decision, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(ReviewResponse::Done),
            Err(ReviewError::Forbidden) => Ok(ReviewResponse::Forbidden(forbidden())),
            Err(ReviewError::NotFound) => Ok(not_found()),
            Err(ReviewError::AlreadyLinked) => Ok(ReviewResponse::AlreadyLinked(body(
                "already_linked",
                "This account is already connected to a record.",
            ))),
            Err(ReviewError::Repo(e)) => Err(e.into()),
        }
    }
}

crate::redacted_debug!(ActivationCodeDto, RedeemRequest, Candidate, QueueEntryDto);
