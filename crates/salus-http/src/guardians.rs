//! Guardians of minors (front desk and administrators) and share links (patients): the API
//! side of the consent use cases that are not a proxy's invitation.

use crate::consent::{GrantDto, GrantList, body, dto};
use crate::error::{ApiError, ErrorBody};
use crate::records::request_id;
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use salus_domain::consent::{
    ConsentError, ConsentService, GrantView, GuardianError, GuardianRequest, LinkRequest,
};
use salus_domain::organization::GuardianPolicy;
use salus_domain::record::{SensitivityLabel, SensitivityLabels};
use salus_domain::{GrantId, PatientId};

#[derive(Tags)]
enum ApiTags {
    /// Who else may see a patient's records.
    Consent,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct GuardianDto {
    /// The address of the guardian's own (confirmed) patient-portal account.
    pub email: String,
    /// ("mother", "legal guardian"), at most 200 characters.
    pub relationship: Option<String>,
    /// What was checked (at most 200 characters), for the clinic's own record.
    pub note: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct GuardianPolicyDto {
    /// Sensitivity labels (`mental_health`, `substance_use`, `sexual_reproductive_health`,
    /// `hiv`, `genetic`) whose records a guardian of a 12–17-year-old does not see.
    pub hidden_labels: Vec<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ShareLinkDto {
    /// Record kind codes the link shows; at least one. Records with sensitivity labels are
    /// never shown through a link.
    pub kinds: Vec<String>,
    /// How long it works, in hours: 1 to 720 (30 days); 24 when left out.
    pub hours: Option<i64>,
    /// An optional passcode (6 to 64 characters) to give separately; wrong ones are
    /// throttled and lock the link after 10.
    pub passcode: Option<String>,
    /// Who it is for (shown to you in your access history), at most 200 characters.
    pub recipient: Option<String>,
}

#[derive(Object)]
pub struct ShareLinkCreatedDto {
    pub grant: GrantDto,
    /// The address to give, shown this once (only a digest of its token is kept).
    pub url: String,
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum GuardianResponse {
    /// Recorded: the guardian may open the record at once, until the patient's 18th birthday.
    #[oai(status = 201)]
    Created(Json<GrantDto>),
    /// `invalid_email`, `text_too_long`, `no_such_account`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: only the front desk and administrators record guardians.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such chart in your organisation.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `not_a_minor`: the patient is 18 or older.
    #[oai(status = 409)]
    NotAMinor(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum GuardiansResponse {
    #[oai(status = 200)]
    Ok(Json<GrantList>),
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such chart in your organisation.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum EndResponse {
    /// Ended: the guardian's next request is refused.
    #[oai(status = 204)]
    Done,
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such live guardianship of that chart.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum PolicyResponse {
    #[oai(status = 200)]
    Ok(Json<GuardianPolicyDto>),
    /// `invalid_labels`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: reading it takes staff; changing it, an administrator.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum ShareLinkResponse {
    /// Made: give the `url` (and the passcode, separately).
    #[oai(status = 201)]
    Created(Json<ShareLinkCreatedDto>),
    /// `invalid_kinds`, `invalid_hours`, `invalid_passcode`, `text_too_long`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: only a patient shares their own record.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `busy`: retry after the given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

fn policy_dto(p: GuardianPolicy) -> GuardianPolicyDto {
    GuardianPolicyDto {
        hidden_labels: p
            .hidden_from_teens
            .iter()
            .map(|l| l.code().to_owned())
            .collect(),
    }
}

/// A guardian error that is not an answer of its own: storage fails.
fn repo(e: GuardianError) -> ApiError {
    match e {
        GuardianError::Repo(r) => r.into(),
        other => {
            tracing::error!(code = other.code(), "unexpected guardian refusal");
            ApiError::internal("unexpected guardian refusal")
        }
    }
}

pub(crate) struct GuardianApi {
    pub(crate) consent: ConsentService,
}

#[OpenApi(tag = "ApiTags::Consent")]
impl GuardianApi {
    /// Front desk, after checking documents: record the holder of an account as the parent
    /// or guardian of a patient under 18. The organisation's guardian policy hides some
    /// sensitive records from the guardian of a 12–17-year-old; access ends by itself at 18.
    #[oai(
        path = "/v1/staff/patients/:patient_id/guardians",
        method = "post",
        operation_id = "recordGuardian"
    )]
    async fn record(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Path<String>,
        b: Json<GuardianDto>,
    ) -> Result<GuardianResponse, ApiError> {
        let not_found =
            || GuardianResponse::NotFound(body("not_found", &GuardianError::NotFound.to_string()));
        let Ok(patient) = PatientId::parse(&patient_id.0) else {
            return Ok(not_found());
        };
        let request = match GuardianRequest::from_fields(
            &b.0.email,
            b.0.relationship.as_deref().unwrap_or_default(),
            b.0.note.as_deref().unwrap_or_default(),
        ) {
            Ok(r) => r,
            Err(e) => return Ok(GuardianResponse::Invalid(body(e.code(), &e.to_string()))),
        };
        let Ok(actor) = token.actor() else {
            return Ok(GuardianResponse::Forbidden(body(
                "forbidden",
                &GuardianError::Forbidden.to_string(),
            )));
        };
        match self
            .consent
            .establish_guardian(&actor, patient, request, request_id(req).as_deref())
            .await
        {
            Ok(grant) => {
                let state = grant.state;
                Ok(GuardianResponse::Created(Json(dto(
                    &GrantView { grant, state },
                    true,
                ))))
            }
            Err(e) => {
                let b = body(e.code(), &e.to_string());
                Ok(match e {
                    GuardianError::Forbidden => GuardianResponse::Forbidden(b),
                    GuardianError::NotFound => GuardianResponse::NotFound(b),
                    GuardianError::NotAMinor => GuardianResponse::NotAMinor(b),
                    GuardianError::NoAccount | GuardianError::Input(_) => {
                        GuardianResponse::Invalid(b)
                    }
                    GuardianError::Repo(r) => return Err(r.into()),
                })
            }
        }
    }

    /// Front desk: the guardianships of a patient of your organisation.
    #[oai(
        path = "/v1/staff/patients/:patient_id/guardians",
        method = "get",
        operation_id = "listGuardians"
    )]
    async fn list(
        &self,
        token: SessionToken,
        patient_id: Path<String>,
    ) -> Result<GuardiansResponse, ApiError> {
        let not_found =
            || GuardiansResponse::NotFound(body("not_found", &GuardianError::NotFound.to_string()));
        let Ok(patient) = PatientId::parse(&patient_id.0) else {
            return Ok(not_found());
        };
        let forbidden = || {
            GuardiansResponse::Forbidden(body("forbidden", &GuardianError::Forbidden.to_string()))
        };
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        match self.consent.guardians_of(&actor, patient).await {
            Ok(g) => Ok(GuardiansResponse::Ok(Json(GrantList {
                grants: g.grants.iter().map(|v| dto(v, true)).collect(),
            }))),
            Err(GuardianError::Forbidden) => Ok(forbidden()),
            Err(GuardianError::NotFound) => Ok(not_found()),
            Err(e) => Err(repo(e)),
        }
    }

    /// Front desk: end a guardianship at once (custody changed, or recorded by mistake).
    #[oai(
        path = "/v1/staff/patients/:patient_id/guardians/:id",
        method = "delete",
        operation_id = "endGuardianship"
    )]
    async fn end(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Path<String>,
        id: Path<String>,
    ) -> Result<EndResponse, ApiError> {
        let not_found =
            || EndResponse::NotFound(body("not_found", &GuardianError::NotFound.to_string()));
        let (Ok(patient), Ok(id)) = (PatientId::parse(&patient_id.0), GrantId::parse(&id.0)) else {
            return Ok(not_found());
        };
        let forbidden =
            || EndResponse::Forbidden(body("forbidden", &GuardianError::Forbidden.to_string()));
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        match self
            .consent
            .end_guardianship(&actor, patient, id, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(EndResponse::Done),
            Err(GuardianError::Forbidden) => Ok(forbidden()),
            Err(GuardianError::NotFound) => Ok(not_found()),
            Err(e) => Err(repo(e)),
        }
    }

    /// Staff: what guardians of your organisation's 12–17-year-olds do not see.
    #[oai(
        path = "/v1/staff/guardian-policy",
        method = "get",
        operation_id = "guardianPolicy"
    )]
    async fn policy(&self, token: SessionToken) -> Result<PolicyResponse, ApiError> {
        let forbidden =
            || PolicyResponse::Forbidden(body("forbidden", &GuardianError::Forbidden.to_string()));
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        match self.consent.guardian_policy(&actor).await {
            Ok(p) => Ok(PolicyResponse::Ok(Json(policy_dto(p)))),
            Err(GuardianError::Forbidden | GuardianError::NotFound) => Ok(forbidden()),
            Err(e) => Err(repo(e)),
        }
    }

    /// Administrator: set what guardians of your organisation's 12–17-year-olds do not see.
    /// It counts from each guardian's next request.
    #[oai(
        path = "/v1/staff/guardian-policy",
        method = "put",
        operation_id = "setGuardianPolicy"
    )]
    async fn set_policy(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<GuardianPolicyDto>,
    ) -> Result<PolicyResponse, ApiError> {
        let Ok(hidden) =
            b.0.hidden_labels
                .iter()
                .try_fold(SensitivityLabels::empty(), |acc, c| {
                    SensitivityLabel::from_code(c.trim())
                        .map(|l| acc.with(l))
                        .ok_or(())
                })
        else {
            return Ok(PolicyResponse::Invalid(body(
                "invalid_labels",
                "Unknown kind of sensitive information.",
            )));
        };
        let forbidden =
            || PolicyResponse::Forbidden(body("forbidden", &GuardianError::Forbidden.to_string()));
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        let policy = GuardianPolicy {
            hidden_from_teens: hidden,
        };
        match self
            .consent
            .set_guardian_policy(&actor, policy, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(PolicyResponse::Ok(Json(policy_dto(policy)))),
            Err(GuardianError::Forbidden | GuardianError::NotFound) => Ok(forbidden()),
            Err(e) => Err(repo(e)),
        }
    }

    /// Patient: a read-only link to chosen kinds of your record for someone without an
    /// account (a doctor elsewhere, a school nurse), with downloads of exactly that. It
    /// works until it expires or you revoke it (`DELETE /v1/grants/{id}`); every open and
    /// download is in your access history.
    #[oai(
        path = "/v1/share-links",
        method = "post",
        operation_id = "createShareLink"
    )]
    async fn share_link(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<ShareLinkDto>,
    ) -> Result<ShareLinkResponse, ApiError> {
        let hours = b.0.hours.map(|h| h.to_string());
        let request = match LinkRequest::from_fields(
            b.0.kinds.iter().map(String::as_str),
            hours.as_deref(),
            b.0.passcode.as_deref().unwrap_or_default(),
            b.0.recipient.as_deref().unwrap_or_default(),
        ) {
            Ok(r) => r,
            Err(e) => return Ok(ShareLinkResponse::Invalid(body(e.code(), &e.to_string()))),
        };
        let forbidden = || {
            ShareLinkResponse::Forbidden(body("forbidden", &ConsentError::Forbidden.to_string()))
        };
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        match self
            .consent
            .create_share_link(&actor, request, request_id(req).as_deref())
            .await
        {
            Ok(made) => {
                let state = made.grant.state;
                Ok(ShareLinkResponse::Created(Json(ShareLinkCreatedDto {
                    grant: dto(
                        &GrantView {
                            grant: made.grant,
                            state,
                        },
                        true,
                    ),
                    url: made.url,
                })))
            }
            Err(ConsentError::Busy { retry_after_secs }) => Ok(ShareLinkResponse::Busy(
                body("busy", "Please try again in a moment."),
                retry_after_secs,
            )),
            Err(ConsentError::Repo(r)) => Err(r.into()),
            Err(_) => Ok(forbidden()),
        }
    }
}

crate::redacted_debug!(
    GuardianDto,
    GuardianPolicyDto,
    ShareLinkDto,
    ShareLinkCreatedDto
);
