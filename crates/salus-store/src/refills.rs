//! [`RefillRepository`] on sea-orm: saved pharmacies and refill requests. A request's move
//! out of `requested` is one conditional update, and a second waiting request for one
//! medication is refused by the unique index over the waiting ones.

use crate::entity::{pharmacy, refill_request};
use crate::{Store, repo_err};
use salus_domain::messaging::{
    Approval, DenyReason, Pharmacy, RefillRepository, RefillRequest, RefillState,
};
use salus_domain::text::{Address, PharmacyName, Phone};
use salus_domain::{
    AccountId, OrganizationId, PatientId, PharmacyId, RecordId, RefillId, RepoError,
};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

fn pharmacy_from(
    id: uuid::Uuid,
    patient: uuid::Uuid,
    name: &str,
    address: &str,
    phone: &str,
) -> Result<Pharmacy, RepoError> {
    Ok(Pharmacy {
        id: PharmacyId::from_uuid(id),
        patient: PatientId::from_uuid(patient),
        name: PharmacyName::parse(name).map_err(|_| RepoError::Corrupt("pharmacy name"))?,
        address: Address::parse(address).map_err(|_| RepoError::Corrupt("pharmacy address"))?,
        phone: Phone::parse(phone).map_err(|_| RepoError::Corrupt("pharmacy phone"))?,
    })
}

/// The columns a state sets (all of them, so a row never mixes two states).
fn state_columns(state: &RefillState, row: &mut refill_request::ActiveModel) {
    row.state = Set(state.code().to_owned());
    let (mut by, mut at) = (None, None);
    let (mut quantity, mut refills, mut instructions) = (None, None, None);
    let (mut reason, mut note) = (None, None);
    match state {
        RefillState::Requested => {}
        RefillState::Approved {
            approval,
            by: b,
            at: a,
        } => {
            (by, at) = (Some(b.as_uuid()), Some(*a));
            quantity = i32::try_from(approval.quantity).ok();
            refills = Some(i16::from(approval.refills));
            instructions.clone_from(&approval.instructions);
        }
        RefillState::Denied {
            reason: r,
            note: n,
            by: b,
            at: a,
        } => {
            (by, at) = (Some(b.as_uuid()), Some(*a));
            reason = Some(r.code().to_owned());
            note.clone_from(n);
        }
        RefillState::Cancelled { by: b, at: a } => (by, at) = (Some(b.as_uuid()), Some(*a)),
    }
    row.decided_by = Set(by);
    row.decided_at = Set(at);
    row.approved_quantity = Set(quantity);
    row.approved_refills = Set(refills);
    row.instructions = Set(instructions);
    row.deny_reason = Set(reason);
    row.deny_note = Set(note);
}

fn state_from(r: &refill_request::Model) -> Result<RefillState, RepoError> {
    let corrupt = || RepoError::Corrupt("refill_requests.state");
    let decided = || -> Result<_, RepoError> {
        Ok((
            AccountId::from_uuid(r.decided_by.ok_or_else(corrupt)?),
            r.decided_at.ok_or_else(corrupt)?,
        ))
    };
    Ok(match r.state.as_str() {
        "requested" => RefillState::Requested,
        "approved" => {
            let (by, at) = decided()?;
            RefillState::Approved {
                approval: Approval {
                    quantity: r
                        .approved_quantity
                        .and_then(|q| u32::try_from(q).ok())
                        .ok_or_else(corrupt)?,
                    refills: r
                        .approved_refills
                        .and_then(|q| u8::try_from(q).ok())
                        .ok_or_else(corrupt)?,
                    instructions: r.instructions.clone(),
                },
                by,
                at,
            }
        }
        "denied" => {
            let (by, at) = decided()?;
            RefillState::Denied {
                reason: r
                    .deny_reason
                    .as_deref()
                    .and_then(DenyReason::from_code)
                    .ok_or_else(corrupt)?,
                note: r.deny_note.clone(),
                by,
                at,
            }
        }
        "cancelled" => {
            let (by, at) = decided()?;
            RefillState::Cancelled { by, at }
        }
        _ => return Err(corrupt()),
    })
}

fn request_from(r: refill_request::Model) -> Result<RefillRequest, RepoError> {
    Ok(RefillRequest {
        id: RefillId::from_uuid(r.id),
        patient: PatientId::from_uuid(r.patient_id),
        organization: OrganizationId::from_uuid(r.organization_id),
        medication: RecordId::from_uuid(r.medication_id),
        pharmacy: pharmacy_from(
            r.pharmacy_id,
            r.patient_id,
            &r.pharmacy_name,
            &r.pharmacy_address,
            &r.pharmacy_phone,
        )?,
        quantity: u32::try_from(r.quantity)
            .map_err(|_| RepoError::Corrupt("refill_requests.quantity"))?,
        requested_by: AccountId::from_uuid(r.requested_by),
        requested_at: r.requested_at,
        state: state_from(&r)?,
        note: r.note,
        medication_name: r.medication_name,
    })
}

#[async_trait::async_trait]
impl RefillRepository for Store {
    async fn save_pharmacy(&self, p: &Pharmacy) -> Result<(), RepoError> {
        pharmacy::Entity::insert(pharmacy::ActiveModel {
            id: Set(p.id.as_uuid()),
            patient_id: Set(p.patient.as_uuid()),
            name: Set(p.name.as_str().to_owned()),
            address: Set(p.address.as_str().to_owned()),
            phone: Set(p.phone.as_str().to_owned()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(())
    }

    async fn pharmacies_of(&self, patient: PatientId) -> Result<Vec<Pharmacy>, RepoError> {
        pharmacy::Entity::find()
            .filter(pharmacy::Column::PatientId.eq(patient.as_uuid()))
            .order_by_asc(pharmacy::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .iter()
            .map(|p| pharmacy_from(p.id, p.patient_id, &p.name, &p.address, &p.phone))
            .collect()
    }

    async fn create(&self, r: &RefillRequest) -> Result<(), RepoError> {
        let mut row = refill_request::ActiveModel {
            id: Set(r.id.as_uuid()),
            patient_id: Set(r.patient.as_uuid()),
            organization_id: Set(r.organization.as_uuid()),
            medication_id: Set(r.medication.as_uuid()),
            medication_name: Set(r.medication_name.clone()),
            pharmacy_id: Set(r.pharmacy.id.as_uuid()),
            pharmacy_name: Set(r.pharmacy.name.as_str().to_owned()),
            pharmacy_address: Set(r.pharmacy.address.as_str().to_owned()),
            pharmacy_phone: Set(r.pharmacy.phone.as_str().to_owned()),
            quantity: Set(
                i32::try_from(r.quantity).map_err(|_| RepoError::Corrupt("refill quantity"))?
            ),
            note: Set(r.note.clone()),
            requested_by: Set(r.requested_by.as_uuid()),
            requested_at: Set(r.requested_at),
            ..Default::default()
        };
        state_columns(&r.state, &mut row);
        refill_request::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    async fn find(&self, id: RefillId) -> Result<Option<RefillRequest>, RepoError> {
        refill_request::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(request_from)
            .transpose()
    }

    async fn of_patient(&self, patient: PatientId) -> Result<Vec<RefillRequest>, RepoError> {
        refill_request::Entity::find()
            .filter(refill_request::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(refill_request::Column::RequestedAt)
            .limit(500)
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(request_from)
            .collect()
    }

    async fn queue(
        &self,
        organization: OrganizationId,
        waiting: bool,
        limit: u32,
    ) -> Result<Vec<RefillRequest>, RepoError> {
        use refill_request::Column as C;
        let q = refill_request::Entity::find().filter(C::OrganizationId.eq(organization.as_uuid()));
        let q = if waiting {
            q.filter(C::State.eq("requested"))
                .order_by_asc(C::RequestedAt)
        } else {
            q.filter(C::State.ne("requested"))
                .order_by_desc(C::RequestedAt)
        };
        q.limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(request_from)
            .collect()
    }

    async fn settle(&self, id: RefillId, state: &RefillState) -> Result<bool, RepoError> {
        let mut row = refill_request::ActiveModel {
            id: NotSet,
            ..Default::default()
        };
        state_columns(state, &mut row);
        let done = refill_request::Entity::update_many()
            .set(row)
            .filter(refill_request::Column::Id.eq(id.as_uuid()))
            .filter(refill_request::Column::State.eq("requested"))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }
}
