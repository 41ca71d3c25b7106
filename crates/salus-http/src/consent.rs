//! Consent: a patient's grants to proxies — invite, list, change, revoke — and the
//! invitee's side: accept an invitation, see whose records they may open.

use crate::error::{ApiError, ErrorBody};
use crate::records::request_id;
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use salus_domain::GrantId;
use salus_domain::account::SecretText;
use salus_domain::consent::{
    AcceptError, ConsentError, ConsentService, GrantState, GrantView, Grantee, ProxyInvitation,
    ScopeChoice,
};

#[derive(Tags)]
enum ApiTags {
    /// Who else may see a patient's records.
    Consent,
}

/// What a grant allows, as the patient chooses it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ScopeDto {
    /// Record kind codes (`observation`, `medication`, …); at least one.
    pub kinds: Vec<String>,
    /// `read` (view), `export` (download), and acting for the patient: `message`, `book`,
    /// `request_refill`, `pay_bills` (each counts once that capability is offered). Viewing
    /// comes with any of them.
    pub actions: Vec<String>,
    /// Sensitivity labels granted one by one (`mental_health`, `hiv`, …); none by default,
    /// and a record with a label not granted stays hidden.
    #[oai(default)]
    pub labels: Vec<String>,
    /// The last day the grant works, `YYYY-MM-DD`: after today, at most five years ahead;
    /// a year when left out.
    pub until: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct InvitationDto {
    /// Where the invitation goes. The email names no patient and no health information.
    pub email: String,
    pub scope: ScopeDto,
    /// ("my daughter"), at most 200 characters.
    pub relationship: Option<String>,
    pub note: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AcceptDto {
    /// The token from the invitation's link.
    pub token: String,
}

/// A grant as its patient (or its proxy) sees it.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct GrantDto {
    pub id: String,
    /// Whose record it opens.
    pub patient_id: String,
    /// `pending`, `active`, `revoked`, `expired`, or `locked` (a share link after too many
    /// wrong passcodes).
    pub status: String,
    /// `proxy`, `guardian` or `share_link`.
    pub kind: String,
    /// The invited address (shown to the patient only).
    pub email: Option<String>,
    pub relationship: Option<String>,
    pub note: Option<String>,
    pub kinds: Vec<String>,
    pub actions: Vec<String>,
    pub labels: Vec<String>,
    pub valid_from: chrono::DateTime<chrono::Utc>,
    pub valid_until: chrono::DateTime<chrono::Utc>,
    /// Recorded by staff with the patient present, not by the patient online.
    pub made_by_staff: bool,
    /// The name of the person whose record it opens (in the proxy's list only).
    pub patient_name: Option<String>,
}

#[derive(Object)]
pub struct GrantList {
    pub grants: Vec<GrantDto>,
}

fn status(s: GrantState) -> &'static str {
    match s {
        GrantState::Pending { .. } => "pending",
        GrantState::Active { .. } => "active",
        GrantState::Revoked { .. } => "revoked",
        GrantState::Expired => "expired",
    }
}

pub(crate) fn dto(v: &GrantView, for_patient: bool) -> GrantDto {
    let g = &v.grant;
    let (kind, email, relationship) = match &g.grantee {
        Grantee::Proxy {
            email,
            relationship,
            ..
        } => (
            "proxy",
            for_patient.then(|| email.as_str().to_owned()),
            relationship.as_ref().map(|r| r.as_str().to_owned()),
        ),
        Grantee::Guardian {
            email,
            relationship,
            ..
        } => (
            "guardian",
            for_patient.then(|| email.as_str().to_owned()),
            relationship.as_ref().map(|r| r.as_str().to_owned()),
        ),
        Grantee::ShareLink { recipient, .. } => (
            "share_link",
            None,
            recipient.as_ref().map(|r| r.as_str().to_owned()),
        ),
    };
    let locked =
        matches!(&g.grantee, Grantee::ShareLink { attempts, .. } if attempts.locked_at.is_some());
    GrantDto {
        id: g.id.to_string(),
        patient_id: g.patient.to_string(),
        status: if locked && matches!(v.state, GrantState::Active { .. }) {
            "locked"
        } else {
            status(v.state)
        }
        .to_owned(),
        kind: kind.to_owned(),
        email,
        relationship,
        note: for_patient
            .then(|| g.note.as_ref().map(|n| n.as_str().to_owned()))
            .flatten(),
        kinds: g.scope.kinds.iter().map(|k| k.code().to_owned()).collect(),
        actions: g
            .scope
            .actions
            .iter()
            .map(|a| a.code().to_owned())
            .collect(),
        labels: g.scope.labels.iter().map(|l| l.code().to_owned()).collect(),
        valid_from: g.scope.valid_from,
        valid_until: g.scope.valid_until,
        made_by_staff: matches!(g.made_by, salus_domain::consent::GrantMaker::Staff(_)),
        patient_name: None,
    }
}

fn scope(s: &ScopeDto) -> Result<ScopeChoice, salus_domain::consent::ScopeError> {
    ScopeChoice::from_codes(
        s.kinds.iter().map(String::as_str),
        s.actions.iter().map(String::as_str),
        s.labels.iter().map(String::as_str),
        s.until.as_deref(),
    )
}

/// The domain's invitation from the request body.
fn invitation(b: &InvitationDto) -> Result<ProxyInvitation, salus_domain::consent::ScopeError> {
    ProxyInvitation::from_fields(
        &b.email,
        scope(&b.scope)?,
        b.relationship.as_deref().unwrap_or_default(),
        b.note.as_deref().unwrap_or_default(),
    )
}

pub(crate) fn body(code: &str, message: &str) -> Json<ErrorBody> {
    ErrorBody::new(code, message)
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum InviteResponse {
    /// Invited: the grant is pending until the invitee accepts.
    #[oai(status = 201)]
    Created(Json<GrantDto>),
    /// `invalid_kinds`, `invalid_actions`, `invalid_labels`, `invalid_until`,
    /// `invalid_email`, `text_too_long`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: only a patient grants access to their own record.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum StaffInviteResponse {
    /// Recorded: the grant is pending until the invitee accepts; it shows as made by staff.
    #[oai(status = 201)]
    Created(Json<GrantDto>),
    /// As for a patient's invitation.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: only the front desk and administrators record grants.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such chart in your organisation.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<GrantList>),
    /// `forbidden`: only patients have grants of their own.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum ChangeResponse {
    #[oai(status = 200)]
    Ok(Json<GrantDto>),
    /// As for an invitation.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such grant of yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `grant_ended`: a revoked grant cannot change.
    #[oai(status = 409)]
    Ended(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum RevokeResponse {
    /// Revoked: the grantee's next request is refused.
    #[oai(status = 204)]
    Done,
    /// `forbidden`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such grant of yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `grant_ended`: already revoked.
    #[oai(status = 409)]
    Ended(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum AcceptResponse {
    /// Accepted: the grant is active.
    #[oai(status = 200)]
    Ok(Json<GrantDto>),
    /// `invitation_invalid`: unknown, used, expired or revoked.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `wrong_account`: sign in with the address that was invited.
    #[oai(status = 403)]
    WrongAccount(Json<ErrorBody>),
}

/// The answer of a refused change, revoke or invitation, by kind.
enum Refused {
    Invalid(Json<ErrorBody>),
    Forbidden(Json<ErrorBody>),
    NotFound(Json<ErrorBody>),
    Ended(Json<ErrorBody>),
}

fn refused(e: ConsentError) -> Result<Refused, ApiError> {
    let message = e.to_string();
    Ok(match e {
        ConsentError::Input(s) => Refused::Invalid(body(s.code(), &message)),
        ConsentError::Forbidden => Refused::Forbidden(body("forbidden", &message)),
        ConsentError::NotFound => Refused::NotFound(body("not_found", &message)),
        ConsentError::Ended => Refused::Ended(body("grant_ended", &message)),
        ConsentError::ClinicOnly => Refused::Forbidden(body("clinic_only", &message)),
        ConsentError::Busy { .. } => {
            return Err(ApiError::Unavailable(body("busy", &message)));
        }
        ConsentError::Repo(r) => return Err(r.into()),
    })
}

pub(crate) struct ConsentApi {
    pub(crate) consent: ConsentService,
}

impl ConsentApi {
    fn actor(token: &SessionToken) -> Option<salus_domain::access::Actor> {
        token.actor().ok()
    }
}

#[OpenApi(tag = "ApiTags::Consent")]
impl ConsentApi {
    /// Patient: invite someone by email to see part of your record (a proxy: a family
    /// member, a carer). They accept by signing in with that address.
    #[oai(path = "/v1/grants", method = "post", operation_id = "inviteProxy")]
    async fn invite(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<InvitationDto>,
    ) -> Result<InviteResponse, ApiError> {
        let inv = match invitation(&b.0) {
            Ok(i) => i,
            Err(e) => return Ok(InviteResponse::Invalid(body(e.code(), &e.to_string()))),
        };
        let Some(actor) = Self::actor(&token) else {
            return Ok(InviteResponse::Forbidden(body(
                "forbidden",
                &ConsentError::Forbidden.to_string(),
            )));
        };
        match self
            .consent
            .invite_proxy(&actor, inv, request_id(req).as_deref())
            .await
        {
            Ok(grant) => {
                let state = grant.state;
                Ok(InviteResponse::Created(Json(dto(
                    &GrantView { grant, state },
                    true,
                ))))
            }
            Err(e) => Ok(match refused(e)? {
                Refused::Invalid(b) => InviteResponse::Invalid(b),
                Refused::Forbidden(b) | Refused::NotFound(b) | Refused::Ended(b) => {
                    InviteResponse::Forbidden(b)
                }
            }),
        }
    }

    /// Front desk, with the patient present: record a proxy invitation for a patient of your
    /// organisation who cannot do it online. The grant is marked as made by staff.
    #[oai(
        path = "/v1/staff/patients/:patient_id/grants",
        method = "post",
        operation_id = "recordProxyForPatient"
    )]
    async fn staff_invite(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Path<String>,
        b: Json<InvitationDto>,
    ) -> Result<StaffInviteResponse, ApiError> {
        let not_found = || {
            StaffInviteResponse::NotFound(body("not_found", "No such record in your organisation."))
        };
        let Ok(patient) = salus_domain::PatientId::parse(&patient_id.0) else {
            return Ok(not_found());
        };
        let inv = match invitation(&b.0) {
            Ok(i) => i,
            Err(e) => {
                return Ok(StaffInviteResponse::Invalid(body(e.code(), &e.to_string())));
            }
        };
        let forbidden = || {
            StaffInviteResponse::Forbidden(body(
                "forbidden",
                "Only the front desk records a permission for a patient.",
            ))
        };
        let Some(actor) = Self::actor(&token) else {
            return Ok(forbidden());
        };
        match self
            .consent
            .record_proxy_for(&actor, patient, inv, request_id(req).as_deref())
            .await
        {
            Ok(grant) => {
                let state = grant.state;
                Ok(StaffInviteResponse::Created(Json(dto(
                    &GrantView { grant, state },
                    true,
                ))))
            }
            Err(e) => Ok(match refused(e)? {
                Refused::Invalid(b) => StaffInviteResponse::Invalid(b),
                Refused::NotFound(_) => not_found(),
                Refused::Forbidden(_) | Refused::Ended(_) => forbidden(),
            }),
        }
    }

    /// Patient: every grant of your record — pending, active, revoked and expired.
    #[oai(path = "/v1/grants", method = "get", operation_id = "listGrants")]
    async fn list(&self, token: SessionToken) -> Result<ListResponse, ApiError> {
        let forbidden =
            || ListResponse::Forbidden(body("forbidden", &ConsentError::Forbidden.to_string()));
        let Some(actor) = Self::actor(&token) else {
            return Ok(forbidden());
        };
        match self.consent.grants(&actor).await {
            Ok(v) => Ok(ListResponse::Ok(Json(GrantList {
                grants: v.iter().map(|g| dto(g, true)).collect(),
            }))),
            Err(ConsentError::Repo(r)) => Err(r.into()),
            Err(_) => Ok(forbidden()),
        }
    }

    /// Patient: change what a grant allows (narrower or wider). It takes effect at the
    /// grantee's next request.
    #[oai(
        path = "/v1/grants/:id",
        method = "patch",
        operation_id = "changeGrant"
    )]
    async fn change(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<ScopeDto>,
    ) -> Result<ChangeResponse, ApiError> {
        let not_found = || ChangeResponse::NotFound(body("not_found", "There is no such grant."));
        let Ok(id) = GrantId::parse(&id.0) else {
            return Ok(not_found());
        };
        let choice = match scope(&b.0) {
            Ok(c) => c,
            Err(e) => return Ok(ChangeResponse::Invalid(body(e.code(), &e.to_string()))),
        };
        let Some(actor) = Self::actor(&token) else {
            return Ok(ChangeResponse::Forbidden(body(
                "forbidden",
                &ConsentError::Forbidden.to_string(),
            )));
        };
        match self
            .consent
            .change_scope(&actor, id, &choice, request_id(req).as_deref())
            .await
        {
            Ok(grant) => {
                let state = grant.state;
                Ok(ChangeResponse::Ok(Json(dto(
                    &GrantView { grant, state },
                    true,
                ))))
            }
            Err(e) => Ok(match refused(e)? {
                Refused::Invalid(b) => ChangeResponse::Invalid(b),
                Refused::Forbidden(b) => ChangeResponse::Forbidden(b),
                Refused::NotFound(b) => ChangeResponse::NotFound(b),
                Refused::Ended(b) => ChangeResponse::Ended(b),
            }),
        }
    }

    /// Patient: end a grant at once; the grantee's next request is refused.
    #[oai(
        path = "/v1/grants/:id",
        method = "delete",
        operation_id = "revokeGrant"
    )]
    async fn revoke(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<RevokeResponse, ApiError> {
        let not_found = || RevokeResponse::NotFound(body("not_found", "There is no such grant."));
        let Ok(id) = GrantId::parse(&id.0) else {
            return Ok(not_found());
        };
        let Some(actor) = Self::actor(&token) else {
            return Ok(RevokeResponse::Forbidden(body(
                "forbidden",
                &ConsentError::Forbidden.to_string(),
            )));
        };
        match self
            .consent
            .revoke(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(RevokeResponse::Done),
            Err(e) => Ok(match refused(e)? {
                Refused::Forbidden(b) | Refused::Invalid(b) => RevokeResponse::Forbidden(b),
                Refused::NotFound(b) => RevokeResponse::NotFound(b),
                Refused::Ended(b) => RevokeResponse::Ended(b),
            }),
        }
    }

    /// Accept an invitation with the token from its link, signed in with the invited address.
    #[oai(
        path = "/v1/grants/accept",
        method = "post",
        operation_id = "acceptGrant"
    )]
    async fn accept(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<AcceptDto>,
    ) -> Result<AcceptResponse, ApiError> {
        match self
            .consent
            .accept(
                token.account(),
                &SecretText::new(b.0.token.trim()),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(grant) => {
                let state = grant.state;
                Ok(AcceptResponse::Ok(Json(dto(
                    &GrantView { grant, state },
                    false,
                ))))
            }
            Err(e @ AcceptError::InvalidOrExpired) => Ok(AcceptResponse::Invalid(body(
                "invitation_invalid",
                &e.to_string(),
            ))),
            Err(e @ AcceptError::WrongAccount) => Ok(AcceptResponse::WrongAccount(body(
                "wrong_account",
                &e.to_string(),
            ))),
            Err(AcceptError::Repo(r)) => Err(r.into()),
        }
    }

    /// Proxy: what you opened or downloaded on other people's behalf, newest first (at most
    /// 200) — the same entries their access histories show with your name.
    #[oai(
        path = "/v1/me/acting-history",
        method = "get",
        operation_id = "actingHistory"
    )]
    async fn acting_history(&self, token: SessionToken) -> Result<Json<OnBehalfList>, ApiError> {
        let entries = self.consent.on_behalf(token.account().id, 200).await?;
        Ok(Json(OnBehalfList {
            entries: entries
                .into_iter()
                .map(|(e, name)| OnBehalfDto {
                    at: e.at,
                    grant_id: e.accessor.grant.map(|g| g.to_string()),
                    patient_name: name.map(|n| n.full()),
                    action: e.action,
                    record_kind: e.record_kind.map(|k| k.code().to_owned()),
                    outcome: e.outcome.code().to_owned(),
                })
                .collect(),
        }))
    }

    /// Proxy: whose records you may open now, under which grant.
    #[oai(path = "/v1/me/acting-for", method = "get", operation_id = "actingFor")]
    async fn acting_for(&self, token: SessionToken) -> Result<Json<GrantList>, ApiError> {
        let v = self.consent.proxy_choices(token.account().id).await?;
        Ok(Json(GrantList {
            grants: v
                .iter()
                .map(|c| GrantDto {
                    patient_name: Some(c.name.full()),
                    ..dto(&c.grant, false)
                })
                .collect(),
        }))
    }
}

/// One thing a proxy did on someone's behalf.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OnBehalfDto {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The grant it was done under.
    pub grant_id: Option<String>,
    /// Whose record it was.
    pub patient_name: Option<String>,
    /// `view_chart`, `read`, `export_fhir`, …
    pub action: String,
    pub record_kind: Option<String>,
    /// `allowed`, `denied` or `not_found`.
    pub outcome: String,
}

#[derive(Object)]
pub struct OnBehalfList {
    pub entries: Vec<OnBehalfDto>,
}

crate::redacted_debug!(
    ScopeDto,
    InvitationDto,
    AcceptDto,
    GrantDto,
    GrantList,
    OnBehalfDto,
    OnBehalfList
);
