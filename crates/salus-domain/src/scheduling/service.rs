//! The booking use cases: the patient (or a proxy who may book for them) books, moves and
//! cancels their own visits; the front desk does the same for its organisation's patients.
//! Who may is `decide`'s answer for `Action::Book` on the chart; the store decides who gets a
//! slot.

use super::{
    Appointment, AppointmentState, BookingProblem, OnlineBooking, SchedulingRepository, Slot,
    SlotState, cancellable, check_booking,
};
use crate::access::{Action, Actor, Target, decide};
use crate::audit::{AccessEvent, AccessLog, Outcome};
use crate::clock::Clock;
use crate::ids::{AppointmentId, IdGenerator, PatientId, SlotId};
use crate::patient::{Patient, PatientRepository};
use crate::repo::RepoError;
use std::sync::Arc;

/// Hours before a visit when cancelling online ends, unless the organisation says otherwise.
pub const CANCEL_CUTOFF_HOURS: u32 = 24;

/// What the booking use cases need.
#[derive(Clone)]
pub struct SchedulingPorts {
    pub schedule: Arc<dyn SchedulingRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub log: Arc<dyn AccessLog>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Hours before a visit when cancelling online ends.
    pub cancel_cutoff_hours: u32,
}

impl std::fmt::Debug for SchedulingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulingPorts").finish_non_exhaustive()
    }
}

/// Why a booking use case changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// No such slot, appointment or chart, or not the actor's (one answer for all).
    #[error("There is no such appointment or time.")]
    NotFound,
    #[error("Someone else has just booked this time. Choose another.")]
    SlotTaken,
    #[error("This kind of visit is booked by the clinic's staff. Please call the clinic.")]
    StaffOnly,
    #[error("It is too close to the visit to cancel or move it online. Please call the clinic.")]
    PastCutoff,
    #[error("This appointment was already cancelled.")]
    NotBooked,
    #[error("Say why you are coming in at most 500 characters.")]
    InvalidReason,
    #[error(transparent)]
    Rule(#[from] BookingProblem),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl SchedulingError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::SlotTaken => "slot_taken",
            Self::StaffOnly => "staff_only",
            Self::PastCutoff => "past_cutoff",
            Self::NotBooked => "not_booked",
            Self::InvalidReason => "invalid_reason",
            Self::Rule(r) => r.code(),
            Self::Repo(_) => "unavailable",
        }
    }
}

/// The booking use cases.
#[derive(Clone, Debug)]
pub struct SchedulingService {
    p: SchedulingPorts,
}

impl SchedulingService {
    pub fn new(p: SchedulingPorts) -> Self {
        Self { p }
    }

    async fn audit(
        &self,
        actor: &Actor,
        patient: PatientId,
        outcome: Outcome,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.p
            .log
            .record(AccessEvent {
                at: self.p.clock.now(),
                actor: actor.into(),
                patient: Some(patient),
                action: Action::Book,
                export: None,
                record_kind: None,
                record: None,
                outcome,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// The chart `patient` (the actor's own when `None`), when the actor may book for it;
    /// else `NotFound`, written to the chart's history as refused.
    async fn chart_for(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<Patient, SchedulingError> {
        let id = patient
            .or_else(|| actor.own_chart())
            .ok_or(SchedulingError::NotFound)?;
        let chart = self
            .p
            .patients
            .find(id)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if !decide(actor, Action::Book, target, self.p.clock.now()).is_allowed() {
            self.audit(actor, chart.id, Outcome::Denied, request_id)
                .await?;
            return Err(SchedulingError::NotFound);
        }
        Ok(chart)
    }

    /// Open slots of a visit type for the chart `patient` (the actor's own when `None`): from
    /// now at the earliest, at most 100, earliest first. Patients do not see staff-only visit
    /// types.
    ///
    /// # Errors
    /// `NotFound` for a chart or visit type that is not the actor's to book; `StaffOnly`.
    pub async fn search(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        mut query: super::SlotQuery,
        request_id: Option<&str>,
    ) -> Result<Vec<Slot>, SchedulingError> {
        let chart = self.chart_for(actor, patient, request_id).await?;
        let kind = self
            .p
            .schedule
            .visit_type(query.visit_type)
            .await?
            .filter(|k| k.organization == chart.organization_id)
            .ok_or(SchedulingError::NotFound)?;
        if kind.online == OnlineBooking::StaffOnly && !matches!(actor, Actor::Staff { .. }) {
            return Err(SchedulingError::StaffOnly);
        }
        query.from = query.from.max(self.p.clock.now());
        query.limit = query.limit.clamp(1, 100);
        Ok(self
            .p
            .schedule
            .open_slots(chart.organization_id, &query)
            .await?)
    }

    /// Generates every template's slots of the organisation for `horizon_days` from `today`
    /// (in each location's calendar), leaving days off out; slots that exist stay as they are
    /// (booked or blocked ones included). Answers how many were new. Run daily, so the horizon
    /// rolls.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn generate_slots(
        &self,
        organization: crate::ids::OrganizationId,
        today: chrono::NaiveDate,
        horizon_days: u32,
    ) -> Result<u64, SchedulingError> {
        let until = today + chrono::Duration::days(i64::from(horizon_days));
        let mut added = 0;
        for template in self.p.schedule.templates_of(organization).await? {
            let Some(location) = self.p.schedule.location(template.location).await? else {
                continue;
            };
            let off: Vec<super::Exception> = self
                .p
                .schedule
                .days_off(template.provider, today, until)
                .await?
                .into_iter()
                .map(|d| super::Exception { date: d.date })
                .collect();
            let now = self.p.clock.now();
            let slots: Vec<Slot> =
                super::slot_times(&template.weekly, location.time_zone, today, until, &off)
                    .into_iter()
                    .filter(|t| t.start > now)
                    .map(|time| Slot {
                        id: SlotId::generate(self.p.ids.as_ref()),
                        organization,
                        provider: template.provider,
                        location: template.location,
                        visit_type: template.visit_type,
                        time,
                        state: SlotState::Open,
                    })
                    .collect();
            for chunk in slots.chunks(200) {
                added += self.p.schedule.add_slots(chunk).await?;
            }
        }
        Ok(added)
    }

    /// Books `slot` for `patient` (the actor's own chart when `None`; the front desk names
    /// the patient) with the patient's reason: the slot must be open and of the chart's
    /// organisation, the visit type bookable by the actor, the rules met; the store decides
    /// who gets the slot.
    ///
    /// # Errors
    /// See [`SchedulingError`].
    pub async fn book(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        slot: SlotId,
        reason: &str,
        request_id: Option<&str>,
    ) -> Result<Appointment, SchedulingError> {
        // Forms send line breaks as CRLF: kept as line breaks; other control characters refused.
        let reason = reason.replace("\r\n", "\n");
        let reason = reason.trim();
        if reason.chars().count() > 500 || reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(SchedulingError::InvalidReason);
        }
        let chart = self.chart_for(actor, patient, request_id).await?;
        let (slot, kind) = self.open_slot(&chart, slot).await?;
        if kind.online == OnlineBooking::StaffOnly && !matches!(actor, Actor::Staff { .. }) {
            return Err(SchedulingError::StaffOnly);
        }
        let now = self.p.clock.now();
        let held = self.p.schedule.appointments_of(chart.id).await?;
        check_booking(&held, &kind, slot.time.start, slot.time.end, now, None)?;
        let Some(account) = actor.account() else {
            return Err(SchedulingError::NotFound);
        };
        let appointment = Appointment {
            id: AppointmentId::generate(self.p.ids.as_ref()),
            organization: chart.organization_id,
            patient: chart.id,
            slot: slot.id,
            provider: slot.provider,
            location: slot.location,
            visit_type: slot.visit_type,
            time: slot.time,
            reason: reason.to_owned(),
            booked_by: account,
            booked_at: now,
            state: AppointmentState::Booked,
        };
        if !self.p.schedule.book(&appointment).await? {
            return Err(SchedulingError::SlotTaken);
        }
        self.audit(actor, chart.id, Outcome::Allowed, request_id)
            .await?;
        Ok(appointment)
    }

    /// The slot when it is open and the chart's organisation's, with its visit type.
    async fn open_slot(
        &self,
        chart: &Patient,
        id: SlotId,
    ) -> Result<(Slot, super::VisitType), SchedulingError> {
        let slot = self
            .p
            .schedule
            .slot(id)
            .await?
            .filter(|s| s.organization == chart.organization_id)
            .ok_or(SchedulingError::NotFound)?;
        if slot.state != SlotState::Open {
            return Err(SchedulingError::SlotTaken);
        }
        let kind = self
            .p
            .schedule
            .visit_type(slot.visit_type)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        Ok((slot, kind))
    }

    /// A booked appointment the actor may book for, not yet past the cut-off (staff are not
    /// held to it).
    async fn movable(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<(Appointment, Patient), SchedulingError> {
        let appointment = self
            .p
            .schedule
            .appointment(id)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        let chart = self
            .chart_for(actor, Some(appointment.patient), request_id)
            .await?;
        if appointment.state != AppointmentState::Booked {
            return Err(SchedulingError::NotBooked);
        }
        let staff = matches!(actor, Actor::Staff { .. });
        if !staff
            && !cancellable(
                appointment.time.start,
                self.p.clock.now(),
                self.p.cancel_cutoff_hours,
            )
        {
            return Err(SchedulingError::PastCutoff);
        }
        Ok((appointment, chart))
    }

    /// Cancels a booked appointment (online up to the cut-off; staff any time, with a reason
    /// the patient sees). The slot opens again.
    ///
    /// # Errors
    /// See [`SchedulingError`].
    pub async fn cancel(
        &self,
        actor: &Actor,
        id: AppointmentId,
        reason: Option<String>,
        request_id: Option<&str>,
    ) -> Result<(), SchedulingError> {
        let (appointment, chart) = self.movable(actor, id, request_id).await?;
        let Some(account) = actor.account() else {
            return Err(SchedulingError::NotFound);
        };
        if !self
            .p
            .schedule
            .cancel(appointment.id, account, self.p.clock.now(), reason)
            .await?
        {
            return Err(SchedulingError::NotBooked);
        }
        self.audit(actor, chart.id, Outcome::Allowed, request_id)
            .await?;
        Ok(())
    }

    /// Moves a booked appointment to another open slot of its organisation: the new one is
    /// taken before the old one is freed; if the new one is gone, nothing changes.
    ///
    /// # Errors
    /// See [`SchedulingError`].
    pub async fn reschedule(
        &self,
        actor: &Actor,
        id: AppointmentId,
        to: SlotId,
        request_id: Option<&str>,
    ) -> Result<(), SchedulingError> {
        let (appointment, chart) = self.movable(actor, id, request_id).await?;
        let (slot, kind) = self.open_slot(&chart, to).await?;
        let held = self.p.schedule.appointments_of(chart.id).await?;
        check_booking(
            &held,
            &kind,
            slot.time.start,
            slot.time.end,
            self.p.clock.now(),
            Some(appointment.id),
        )?;
        if !self.p.schedule.reschedule(appointment.id, &slot).await? {
            return Err(SchedulingError::SlotTaken);
        }
        self.audit(actor, chart.id, Outcome::Allowed, request_id)
            .await?;
        Ok(())
    }
}
