//! The refill use cases: the patient's side asks (from an active medication, to a pharmacy)
//! and may cancel while it waits; the organisation's clinicians approve or deny from a queue.
//! Who may is `decide`'s answer: `RequestRefill` on the medication for the patient's side,
//! `DecideRefill` for clinicians.

use super::refill::{Approval, DenyReason, MAX_QUANTITY, Pharmacy, RefillMove, RefillRequest};
use super::service::{MessagingError, MessagingService, Notice, input};
use crate::access::{Action, Actor, Target, decide};
use crate::audit::{AccessEvent, Outcome};
use crate::ids::{PatientId, PharmacyId, RecordId, RefillId};
use crate::record::{RecordBody, RecordKind};
use crate::repo::RepoError;
use crate::text::{Address, PharmacyName, Phone};

/// The longest note or instructions, in characters.
const MAX_NOTE: usize = 1_000;

/// A pharmacy as the patient typed it.
#[derive(Debug, Clone, Default)]
pub struct NewPharmacy<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub phone: &'a str,
    /// Keep it for the next request.
    pub save: bool,
}

/// Which pharmacy a request goes to.
#[derive(Debug, Clone)]
pub enum PharmacyChoice<'a> {
    Saved(PharmacyId),
    New(NewPharmacy<'a>),
}

/// Optional free text of at most [`MAX_NOTE`] characters (empty is none).
fn note_of(text: &str, code: &'static str) -> Result<Option<String>, MessagingError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_NOTE
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(input(code, "Keep it to 1,000 characters of plain text."));
    }
    Ok(Some(text.replace("\r\n", "\n")))
}

/// A whole number in `min..=max` as typed.
fn count_of(text: &str, min: u32, max: u32) -> Option<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
}

impl Approval {
    /// A clinician's approval from the fields as typed: quantity 1–1,000, refills 0–11,
    /// optional instructions.
    ///
    /// # Errors
    /// `Input` naming the field.
    pub fn from_fields(
        quantity: &str,
        refills: &str,
        instructions: &str,
    ) -> Result<Self, MessagingError> {
        let quantity = count_of(quantity, 1, MAX_QUANTITY).ok_or(input(
            "invalid_quantity",
            "Give the quantity as a whole number from 1 to 1,000.",
        ))?;
        let refills = count_of(refills, 0, 11)
            .and_then(|r| u8::try_from(r).ok())
            .ok_or(input(
                "invalid_refills",
                "Give the number of refills as a whole number from 0 to 11.",
            ))?;
        Ok(Self {
            quantity,
            refills,
            instructions: note_of(instructions, "invalid_instructions")?,
        })
    }
}

impl RefillMove {
    /// A denial from the fields as typed: a reason from the list; a note, needed for "other".
    ///
    /// # Errors
    /// `Input` naming the field.
    pub fn deny_from_fields(reason: &str, note: &str) -> Result<Self, MessagingError> {
        let reason = DenyReason::from_code(reason.trim())
            .ok_or(input("invalid_reason", "Choose a reason from the list."))?;
        let note = note_of(note, "invalid_note")?;
        if reason == DenyReason::Other && note.is_none() {
            return Err(input(
                "invalid_note",
                "Say why in the note: the patient reads it.",
            ));
        }
        Ok(Self::Deny { reason, note })
    }
}

impl MessagingService {
    async fn audit_refill(
        &self,
        actor: &Actor,
        action: Action,
        request: &RefillRequest,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.p
            .log
            .record(AccessEvent {
                at: self.p.clock.now(),
                actor: actor.into(),
                patient: Some(request.patient),
                action,
                step: None,
                export: None,
                record_kind: Some(RecordKind::Medication),
                record: Some(request.medication),
                outcome: Outcome::Allowed,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// Patient (or a proxy with the refill grant): the chart's saved pharmacies.
    ///
    /// # Errors
    /// `Forbidden` for staff; `NotFound` without the grant.
    pub async fn pharmacies(&self, actor: &Actor) -> Result<Vec<Pharmacy>, MessagingError> {
        let chart = self.writing_for(actor, Action::RequestRefill, None).await?;
        Ok(self.p.refills.pharmacies_of(chart.id).await?)
    }

    /// Patient (or a proxy with the refill grant): asks for a refill of an active medication
    /// of the chart, to a saved or a new pharmacy. One request per medication waits at a time.
    ///
    /// # Errors
    /// `NotFound` for a medication that is not the actor's to see; `NotRefillable` for one
    /// that is not active; `RefillPending`; `Input` naming the field.
    pub async fn request_refill(
        &self,
        actor: &Actor,
        medication: RecordId,
        pharmacy: PharmacyChoice<'_>,
        quantity: &str,
        note: &str,
        request_id: Option<&str>,
    ) -> Result<RefillRequest, MessagingError> {
        let (chart, record) = self.refillable(actor, medication, request_id).await?;
        let now = self.p.clock.now();
        let quantity = count_of(quantity, 1, MAX_QUANTITY).ok_or(input(
            "invalid_quantity",
            "Say how many you need as a whole number from 1 to 1,000.",
        ))?;
        let note = note_of(note, "invalid_note")?;
        let pharmacy = self.pharmacy_for(chart.id, pharmacy).await?;
        let Some(author) = super::service::author_of(actor) else {
            return Err(MessagingError::Forbidden);
        };
        let request = RefillRequest {
            id: RefillId::generate(self.p.ids.as_ref()),
            patient: chart.id,
            organization: chart.organization_id,
            medication,
            medication_name: record.body.title().to_owned(),
            pharmacy,
            quantity,
            note,
            requested_by: author.account,
            requested_at: now,
            state: super::refill::RefillState::Requested,
        };
        match self.p.refills.create(&request).await {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => return Err(MessagingError::RefillPending),
            Err(e) => return Err(e.into()),
        }
        self.audit_refill(actor, Action::RequestRefill, &request, request_id)
            .await?;
        Ok(request)
    }

    /// The chart and the medication, when the actor may ask for a refill of it: the patient's
    /// side with `RequestRefill` on the record (so a held record is not there to refill), and
    /// the medication active.
    async fn refillable(
        &self,
        actor: &Actor,
        medication: RecordId,
        request_id: Option<&str>,
    ) -> Result<(crate::patient::Patient, crate::record::ClinicalRecord), MessagingError> {
        let chart = self
            .writing_for(actor, Action::RequestRefill, request_id)
            .await?;
        let record = self
            .p
            .records
            .find(medication)
            .await?
            .filter(|r| r.meta.patient_id == chart.id)
            .ok_or(MessagingError::NotFound)?;
        let target = Target::Record {
            meta: &record.meta,
            kind: record.kind(),
        };
        if !decide(actor, Action::RequestRefill, target, self.p.clock.now()).is_allowed() {
            self.audit(
                actor,
                Action::RequestRefill,
                chart.id,
                Outcome::Denied,
                request_id,
            )
            .await?;
            return Err(MessagingError::NotFound);
        }
        let RecordBody::Medication(med) = &record.body else {
            return Err(MessagingError::NotRefillable);
        };
        if med.status != crate::record::MedicationStatus::Active {
            return Err(MessagingError::NotRefillable);
        }
        Ok((chart, record))
    }

    /// Patient (or a proxy with the refill grant): what the refill form shows for a
    /// medication — its name and the chart's saved pharmacies — when it may be refilled.
    ///
    /// # Errors
    /// As [`MessagingService::request_refill`].
    pub async fn refill_form(
        &self,
        actor: &Actor,
        medication: RecordId,
        request_id: Option<&str>,
    ) -> Result<(String, Vec<Pharmacy>), MessagingError> {
        let (chart, record) = self.refillable(actor, medication, request_id).await?;
        let pharmacies = self.p.refills.pharmacies_of(chart.id).await?;
        Ok((record.body.title().to_owned(), pharmacies))
    }

    /// The refill requests of one medication, for its page (whose look the record view
    /// audits): `None` when the actor may not ask for refills of the chart.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn refills_of(
        &self,
        actor: &Actor,
        medication: RecordId,
    ) -> Result<Option<Vec<RefillRequest>>, MessagingError> {
        let Some(patient) = actor.own_chart() else {
            return Ok(None);
        };
        let Some(chart) = self.p.patients.find(patient).await? else {
            return Ok(None);
        };
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if !decide(actor, Action::RequestRefill, target, self.p.clock.now()).is_allowed() {
            return Ok(None);
        }
        let all = self.p.refills.of_patient(chart.id).await?;
        Ok(Some(
            all.into_iter()
                .filter(|r| r.medication == medication)
                .collect(),
        ))
    }

    /// The pharmacy a request names: one of the chart's saved ones, or a new one (saved when
    /// asked).
    async fn pharmacy_for(
        &self,
        patient: PatientId,
        choice: PharmacyChoice<'_>,
    ) -> Result<Pharmacy, MessagingError> {
        match choice {
            PharmacyChoice::Saved(id) => self
                .p
                .refills
                .pharmacies_of(patient)
                .await?
                .into_iter()
                .find(|p| p.id == id)
                .ok_or(input("invalid_pharmacy", "Choose one of your pharmacies.")),
            PharmacyChoice::New(new) => {
                let pharmacy = Pharmacy {
                    id: PharmacyId::generate(self.p.ids.as_ref()),
                    patient,
                    name: PharmacyName::parse(new.name).map_err(|_| {
                        input(
                            "invalid_pharmacy_name",
                            "Give the pharmacy's name (up to 120 characters).",
                        )
                    })?,
                    address: Address::parse(new.address).map_err(|_| {
                        input(
                            "invalid_pharmacy_address",
                            "Give the pharmacy's address (up to 500 characters).",
                        )
                    })?,
                    phone: Phone::parse(new.phone)
                        .ok()
                        .filter(|p| p.as_str().chars().filter(char::is_ascii_digit).count() >= 3)
                        .ok_or(input(
                            "invalid_pharmacy_phone",
                            "Give the pharmacy's phone number.",
                        ))?,
                };
                if new.save {
                    self.p.refills.save_pharmacy(&pharmacy).await?;
                }
                Ok(pharmacy)
            }
        }
    }

    /// Patient (or a proxy with the refill grant): the chart's refill requests, newest first.
    /// Audited as a look at the chart's medications.
    ///
    /// # Errors
    /// `Forbidden` for staff; `NotFound` without the grant.
    pub async fn refills(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
    ) -> Result<Vec<RefillRequest>, MessagingError> {
        let chart = self
            .writing_for(actor, Action::RequestRefill, request_id)
            .await?;
        let requests = self.p.refills.of_patient(chart.id).await?;
        self.p
            .log
            .record(AccessEvent {
                at: self.p.clock.now(),
                actor: actor.into(),
                patient: Some(chart.id),
                action: Action::ViewChart,
                step: None,
                export: None,
                record_kind: Some(RecordKind::Medication),
                record: None,
                outcome: Outcome::Allowed,
                request_id: request_id.map(str::to_owned),
            })
            .await?;
        Ok(requests)
    }

    /// Clinicians: the organisation's refill requests — the waiting ones oldest first, or
    /// (`waiting` false) the answered ones newest first — each with the patient's name.
    ///
    /// # Errors
    /// `Forbidden` for anyone but the organisation's clinicians.
    pub async fn refill_queue(
        &self,
        actor: &Actor,
        waiting: bool,
    ) -> Result<Vec<(RefillRequest, String)>, MessagingError> {
        let Actor::Staff { organization, .. } = actor else {
            return Err(MessagingError::Forbidden);
        };
        let business = Target::Organization {
            organization: *organization,
        };
        if !decide(actor, Action::DecideRefill, business, self.p.clock.now()).is_allowed() {
            return Err(MessagingError::Forbidden);
        }
        let requests = self.p.refills.queue(*organization, waiting, 200).await?;
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let name = self
                .p
                .patients
                .find(r.patient)
                .await?
                .map(|c| c.name.full())
                .unwrap_or_default();
            out.push((r, name));
        }
        Ok(out)
    }

    /// One refill request, for the patient's side of its chart (with the refill grant) or a
    /// clinician of its organisation, with the patient's name. A clinician's look is audited
    /// as opening the medication.
    ///
    /// # Errors
    /// `NotFound` for no such request or not the actor's.
    pub async fn refill(
        &self,
        actor: &Actor,
        id: RefillId,
        request_id: Option<&str>,
    ) -> Result<(RefillRequest, String), MessagingError> {
        let request = self.refill_for(actor, id, request_id).await?;
        if matches!(actor, Actor::Staff { .. }) {
            self.audit_refill(actor, Action::Read, &request, request_id)
                .await?;
        }
        let name = self
            .p
            .patients
            .find(request.patient)
            .await?
            .map(|c| c.name.full())
            .unwrap_or_default();
        Ok((request, name))
    }

    /// The request, when the actor may see it: the patient's side with the refill grant
    /// (`RequestRefill` on its chart) or a clinician (`DecideRefill`). Else `NotFound`,
    /// written to the history as refused.
    async fn refill_for(
        &self,
        actor: &Actor,
        id: RefillId,
        request_id: Option<&str>,
    ) -> Result<RefillRequest, MessagingError> {
        let request = self
            .p
            .refills
            .find(id)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let action = if matches!(actor, Actor::Staff { .. }) {
            Action::DecideRefill
        } else {
            Action::RequestRefill
        };
        let target = Target::Chart {
            patient: request.patient,
            organization: request.organization,
        };
        if !decide(actor, action, target, self.p.clock.now()).is_allowed() {
            self.audit(actor, action, request.patient, Outcome::Denied, request_id)
                .await?;
            return Err(MessagingError::NotFound);
        }
        Ok(request)
    }

    /// Moves a request: a clinician approves or denies it, the account that asked cancels it;
    /// only while it waits. An answer emails the patient that a request changed — nothing
    /// else.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for a move not of the actor's side; `Refill` for an illegal
    /// move (already answered, not the asker).
    pub async fn answer_refill(
        &self,
        actor: &Actor,
        id: RefillId,
        change: RefillMove,
        request_id: Option<&str>,
    ) -> Result<RefillRequest, MessagingError> {
        let request = self.refill_for(actor, id, request_id).await?;
        let staff = matches!(actor, Actor::Staff { .. });
        if staff == matches!(change, RefillMove::Cancel) {
            return Err(MessagingError::Forbidden);
        }
        let Some(author) = super::service::author_of(actor) else {
            return Err(MessagingError::Forbidden);
        };
        let state = request.answer(author.account, self.p.clock.now(), change)?;
        if !self.p.refills.settle(id, &state).await? {
            return Err(super::refill::IllegalMove::NotPending.into());
        }
        let action = if staff {
            Action::DecideRefill
        } else {
            Action::RequestRefill
        };
        let settled = RefillRequest { state, ..request };
        self.audit_refill(actor, action, &settled, request_id)
            .await?;
        if staff {
            self.tell_patient(settled.patient, Notice::RefillChanged)
                .await?;
        }
        Ok(settled)
    }
}
