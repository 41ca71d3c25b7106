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
    AuthService, ChooseClinicError, IdentityStatus, IssueCodeError, QueueError, RedeemError,
    ReviewError, ReviewOutcome, SecretText,
};
use salus_domain::organization::Organization;
use salus_domain::patient::Patient;
use salus_domain::text::Slug;
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

/// Who a chart is: what the front desk and clinicians compare with a person's documents.
#[derive(Object)]
pub struct Candidate {
    pub patient_id: String,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: chrono::NaiveDate,
}

impl From<&Patient> for Candidate {
    fn from(c: &Patient) -> Self {
        Self {
            patient_id: c.id.to_string(),
            mrn: c.mrn.as_str().to_owned(),
            given_name: c.name.given().to_owned(),
            family_name: c.name.family().to_owned(),
            birth_date: c.birth_date,
        }
    }
}

/// A clinic as a patient sees it: how to reach it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ClinicDto {
    pub slug: String,
    pub name: String,
    pub phone: Option<String>,
}

impl From<&Organization> for ClinicDto {
    fn from(o: &Organization) -> Self {
        Self {
            slug: o.slug.as_str().to_owned(),
            name: o.name.as_str().to_owned(),
            phone: o.phone.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

/// Where the account stands on the way to its records.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct IdentityStatusDto {
    /// `linked`, `no_clinic` (choose one with `PUT /api/v1/me/clinic`), `waiting` (the
    /// clinic will confirm who you are, or give you an activation code) or `declined` (the
    /// clinic found no record that is yours: call it, or choose again).
    pub state: String,
    pub clinic: Option<ClinicDto>,
    /// When the clinic was asked (`waiting`) or answered (`declined`).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&IdentityStatus> for IdentityStatusDto {
    fn from(s: &IdentityStatus) -> Self {
        let (state, clinic, since) = match s {
            IdentityStatus::Linked => ("linked", None, None),
            IdentityStatus::NoClinic => ("no_clinic", None, None),
            IdentityStatus::Waiting { clinic, since } => ("waiting", Some(clinic), Some(*since)),
            IdentityStatus::Declined { clinic, at } => ("declined", Some(clinic), Some(*at)),
        };
        Self {
            state: state.to_owned(),
            clinic: clinic.map(ClinicDto::from),
            since,
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChooseClinicRequest {
    /// The clinic's slug, from `GET /api/v1/organizations`.
    pub clinic: String,
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
    /// When the person asked your organisation to confirm them; absent for an account that
    /// chose no clinic (listed because a chart matches).
    pub requested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Charts of your organisation that match, best first (may be empty: search by name and
    /// birth date with `POST /api/v1/staff/chart-search`).
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
enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<IdentityStatusDto>),
}

#[derive(Debug, ApiResponse)]
enum ChooseClinicResponse {
    /// The clinic is asked; the answer is the account's new status.
    #[oai(status = 200)]
    Ok(Json<IdentityStatusDto>),
    /// `unknown_clinic`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: staff accounts are not connected to records.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `already_linked`.
    #[oai(status = 409)]
    AlreadyLinked(Json<ErrorBody>),
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

    /// Patient: where your account stands on the way to your records — connected, waiting
    /// for your clinic (which one, its phone number, since when), or no clinic chosen yet.
    #[oai(
        path = "/v1/me/identity",
        method = "get",
        operation_id = "identityStatus"
    )]
    async fn status(&self, token: SessionToken) -> Result<StatusResponse, ApiError> {
        let status = self.auth.identity_status(token.account()).await?;
        Ok(StatusResponse::Ok(Json(IdentityStatusDto::from(&status))))
    }

    /// Patient: ask your clinic to confirm who you are (in place of any clinic asked before).
    /// Its front desk then connects your account to your record, or gives you an activation
    /// code.
    #[oai(path = "/v1/me/clinic", method = "put", operation_id = "chooseClinic")]
    async fn choose_clinic(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<ChooseClinicRequest>,
    ) -> Result<ChooseClinicResponse, ApiError> {
        let unknown = || {
            ChooseClinicResponse::Invalid(body(
                "unknown_clinic",
                &ChooseClinicError::UnknownClinic.to_string(),
            ))
        };
        let Ok(slug) = Slug::parse(b.0.clinic.trim()) else {
            return Ok(unknown());
        };
        match self
            .auth
            .choose_clinic(token.account(), &slug, request_id(req).as_deref())
            .await
        {
            Ok(_) => {
                let status = self.auth.identity_status(token.account()).await?;
                Ok(ChooseClinicResponse::Ok(Json(IdentityStatusDto::from(
                    &status,
                ))))
            }
            Err(ChooseClinicError::UnknownClinic) => Ok(unknown()),
            Err(e @ ChooseClinicError::Forbidden) => Ok(ChooseClinicResponse::Forbidden(body(
                "forbidden",
                &e.to_string(),
            ))),
            Err(e @ ChooseClinicError::AlreadyLinked) => Ok(ChooseClinicResponse::AlreadyLinked(
                body("already_linked", &e.to_string()),
            )),
            Err(ChooseClinicError::Repo(e)) => Err(e.into()),
        }
    }

    /// Front desk: accounts waiting for identity review — everyone who asked your
    /// organisation, and accounts that chose no clinic where a chart matches — with the
    /// matching charts.
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
                        requested_at: e.requested_at,
                        candidates: e.candidates.iter().map(Candidate::from).collect(),
                    })
                    .collect(),
            }))),
            Err(QueueError::Forbidden) => Ok(QueueResponse::Forbidden(forbidden())),
            Err(QueueError::Repo(e)) => Err(e.into()),
        }
    }

    /// Front desk: confirm which chart a waiting account belongs to (a candidate, or a chart
    /// found with `POST /api/v1/staff/chart-search` after checking the person's documents: it must
    /// have the account's birth date), or say that no chart here is theirs (`reject`; the
    /// person sees that and can call you).
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

crate::redacted_debug!(
    ActivationCodeDto,
    RedeemRequest,
    Candidate,
    QueueEntryDto,
    ChooseClinicRequest
);
