//! Refill requests: the patient's side asks for more of an active medication and may cancel
//! while it waits; the organisation's clinicians approve or deny from a queue.

use crate::error::ApiError;
use crate::messaging::{Answer, refused};
use crate::records::request_id;
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use salus_domain::messaging::{
    Approval, MessagingError, MessagingService, NewPharmacy, Pharmacy, PharmacyChoice, RefillMove,
    RefillRequest, RefillState,
};
use salus_domain::{PharmacyId, RecordId, RefillId};

#[derive(Tags)]
enum ApiTags {
    /// Refill requests for medications, and the clinicians' answers.
    Refills,
}

#[derive(Object)]
pub struct PharmacyDto {
    pub id: String,
    pub name: String,
    pub address: String,
    pub phone: String,
}

#[derive(Object)]
pub struct PharmacyList {
    pub pharmacies: Vec<PharmacyDto>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewPharmacyDto {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// Keep it for the next request.
    #[oai(default)]
    pub save: bool,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RefillInput {
    /// An active medication of your record.
    pub medication_id: String,
    /// One of your saved pharmacies; or give `pharmacy`.
    pub pharmacy_id: Option<String>,
    /// A new pharmacy, when `pharmacy_id` is left out.
    pub pharmacy: Option<NewPharmacyDto>,
    /// How many you need: 1 to 1,000.
    pub quantity: u32,
    /// For the clinician, up to 1,000 characters.
    #[oai(default)]
    pub note: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ApproveInput {
    /// 1 to 1,000.
    pub quantity: u32,
    /// 0 to 11.
    pub refills: u32,
    /// For the patient, up to 1,000 characters.
    #[oai(default)]
    pub instructions: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct DenyInput {
    /// `needs_visit`, `needs_tests`, `too_soon`, `no_longer_prescribed`,
    /// `prescribed_elsewhere` or `other` (then `note` is needed).
    pub reason: String,
    /// For the patient, up to 1,000 characters.
    #[oai(default)]
    pub note: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RefillDto {
    pub id: String,
    pub medication_id: String,
    pub medication_name: String,
    pub pharmacy: PharmacyDto,
    pub quantity: u32,
    pub note: Option<String>,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    /// `requested`, `approved`, `denied` or `cancelled`.
    pub state: String,
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub approved_quantity: Option<u32>,
    pub approved_refills: Option<u8>,
    pub instructions: Option<String>,
    /// A code from the list `deny` takes.
    pub deny_reason: Option<String>,
    /// The reason in words, for the patient.
    pub deny_reason_text: Option<String>,
    pub deny_note: Option<String>,
    /// Whose chart (staff only).
    pub patient_name: Option<String>,
}

#[derive(Object)]
pub struct RefillList {
    pub refills: Vec<RefillDto>,
}

fn pharmacy_dto(p: &Pharmacy) -> PharmacyDto {
    PharmacyDto {
        id: p.id.to_string(),
        name: p.name.as_str().to_owned(),
        address: p.address.as_str().to_owned(),
        phone: p.phone.as_str().to_owned(),
    }
}

fn refill_dto(r: &RefillRequest, patient_name: Option<String>) -> RefillDto {
    let mut dto = RefillDto {
        id: r.id.to_string(),
        medication_id: r.medication.to_string(),
        medication_name: r.medication_name.clone(),
        pharmacy: pharmacy_dto(&r.pharmacy),
        quantity: r.quantity,
        note: r.note.clone(),
        requested_at: r.requested_at,
        state: r.state.code().to_owned(),
        answered_at: None,
        approved_quantity: None,
        approved_refills: None,
        instructions: None,
        deny_reason: None,
        deny_reason_text: None,
        deny_note: None,
        patient_name,
    };
    match &r.state {
        RefillState::Requested => {}
        RefillState::Approved { approval, at, .. } => {
            dto.answered_at = Some(*at);
            dto.approved_quantity = Some(approval.quantity);
            dto.approved_refills = Some(approval.refills);
            dto.instructions.clone_from(&approval.instructions);
        }
        RefillState::Denied {
            reason, note, at, ..
        } => {
            dto.answered_at = Some(*at);
            dto.deny_reason = Some(reason.code().to_owned());
            dto.deny_reason_text = Some(reason.label().to_owned());
            dto.deny_note.clone_from(note);
        }
        RefillState::Cancelled { at, .. } => dto.answered_at = Some(*at),
    }
    dto
}

fn refill_id(id: &str) -> Result<RefillId, MessagingError> {
    RefillId::parse(id).map_err(|_| MessagingError::NotFound)
}

pub(crate) struct RefillsApi {
    pub(crate) messaging: MessagingService,
}

impl RefillsApi {
    /// Applies a move to a request and answers it.
    async fn settle(
        &self,
        req: &Request,
        token: &SessionToken,
        id: &str,
        change: Result<RefillMove, MessagingError>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        let actor = crate::actor_or!(token);
        let (id, change) = match (refill_id(id), change) {
            (Ok(id), Ok(change)) => (id, change),
            (Err(e), _) | (_, Err(e)) => return refused(e),
        };
        match self
            .messaging
            .answer_refill(&actor, id, change, request_id(req).as_deref())
            .await
        {
            Ok(r) => Ok(Answer::Ok(Json(refill_dto(&r, None)))),
            Err(e) => refused(e),
        }
    }
}

#[OpenApi(tag = "ApiTags::Refills")]
impl RefillsApi {
    /// Patient (or a proxy with the refill grant): your saved pharmacies.
    #[oai(
        path = "/v1/pharmacies",
        method = "get",
        operation_id = "listPharmacies"
    )]
    async fn pharmacies(&self, token: SessionToken) -> Result<Answer<PharmacyList>, ApiError> {
        let actor = crate::actor_or!(token);
        match self.messaging.pharmacies(&actor).await {
            Ok(p) => Ok(Answer::Ok(Json(PharmacyList {
                pharmacies: p.iter().map(pharmacy_dto).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Patient (or a proxy with the refill grant): ask for a refill of an active medication,
    /// to a saved or a new pharmacy. One request per medication waits at a time.
    #[oai(path = "/v1/refills", method = "post", operation_id = "requestRefill")]
    async fn request(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<RefillInput>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        let actor = crate::actor_or!(token);
        let b = b.0;
        let Ok(medication) = RecordId::parse(&b.medication_id) else {
            return refused(MessagingError::NotFound);
        };
        let choice = match (&b.pharmacy_id, &b.pharmacy) {
            (Some(id), None) => match PharmacyId::parse(id) {
                Ok(id) => PharmacyChoice::Saved(id),
                Err(_) => {
                    return refused(MessagingError::Input {
                        code: "invalid_pharmacy",
                        message: "Choose one of your pharmacies.",
                    });
                }
            },
            (None, Some(p)) => PharmacyChoice::New(NewPharmacy {
                name: &p.name,
                address: &p.address,
                phone: &p.phone,
                save: p.save,
            }),
            _ => {
                return refused(MessagingError::Input {
                    code: "invalid_pharmacy",
                    message: "Give either pharmacy_id or pharmacy.",
                });
            }
        };
        match self
            .messaging
            .request_refill(
                &actor,
                medication,
                choice,
                &b.quantity.to_string(),
                &b.note,
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(r) => Ok(Answer::Created(Json(refill_dto(&r, None)))),
            Err(e) => refused(e),
        }
    }

    /// Patient (or a proxy with the refill grant): your refill requests, newest first.
    #[oai(path = "/v1/refills", method = "get", operation_id = "listRefills")]
    async fn list(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<Answer<RefillList>, ApiError> {
        let actor = crate::actor_or!(token);
        match self
            .messaging
            .refills(&actor, request_id(req).as_deref())
            .await
        {
            Ok(r) => Ok(Answer::Ok(Json(RefillList {
                refills: r.iter().map(|r| refill_dto(r, None)).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// The patient's side or a clinician of the organisation: one refill request.
    #[oai(path = "/v1/refills/:id", method = "get", operation_id = "getRefill")]
    async fn one(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        let actor = crate::actor_or!(token);
        let id = match refill_id(&id.0) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        let staff = matches!(actor, salus_domain::access::Actor::Staff { .. });
        match self
            .messaging
            .refill(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok((r, name)) => Ok(Answer::Ok(Json(refill_dto(&r, staff.then_some(name))))),
            Err(e) => refused(e),
        }
    }

    /// The account that asked: cancel a request while it waits.
    #[oai(
        path = "/v1/refills/:id/cancel",
        method = "post",
        operation_id = "cancelRefill"
    )]
    async fn cancel(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        self.settle(req, &token, &id.0, Ok(RefillMove::Cancel))
            .await
    }

    /// Clinicians: approve a waiting request.
    #[oai(
        path = "/v1/refills/:id/approve",
        method = "post",
        operation_id = "approveRefill"
    )]
    async fn approve(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<ApproveInput>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        let change = Approval::from_fields(
            &b.0.quantity.to_string(),
            &b.0.refills.to_string(),
            &b.0.instructions,
        )
        .map(RefillMove::Approve);
        self.settle(req, &token, &id.0, change).await
    }

    /// Clinicians: deny a waiting request, with a reason from the list.
    #[oai(
        path = "/v1/refills/:id/deny",
        method = "post",
        operation_id = "denyRefill"
    )]
    async fn deny(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<DenyInput>,
    ) -> Result<Answer<RefillDto>, ApiError> {
        let change = RefillMove::deny_from_fields(&b.0.reason, &b.0.note);
        self.settle(req, &token, &id.0, change).await
    }

    /// Clinicians: the organisation's refill requests — `waiting` ones oldest first (the
    /// default), or `answered` ones newest first — with the patients' names.
    #[oai(
        path = "/v1/staff/refills",
        method = "get",
        operation_id = "refillQueue"
    )]
    async fn queue(
        &self,
        token: SessionToken,
        state: Query<Option<String>>,
    ) -> Result<Answer<RefillList>, ApiError> {
        let actor = crate::actor_or!(token);
        let waiting = match state.0.as_deref() {
            None | Some("waiting") => true,
            Some("answered") => false,
            Some(_) => {
                return refused(MessagingError::Input {
                    code: "invalid_state",
                    message: "Choose waiting or answered.",
                });
            }
        };
        match self.messaging.refill_queue(&actor, waiting).await {
            Ok(r) => Ok(Answer::Ok(Json(RefillList {
                refills: r
                    .iter()
                    .map(|(r, name)| refill_dto(r, Some(name.clone())))
                    .collect(),
            }))),
            Err(e) => refused(e),
        }
    }
}

crate::redacted_debug!(
    PharmacyDto,
    PharmacyList,
    NewPharmacyDto,
    RefillInput,
    ApproveInput,
    DenyInput,
    RefillDto,
    RefillList
);
