//! The booking use cases: the patient (or a proxy who may book for them) books, moves and
//! cancels their own visits; the front desk does the same for its organisation's patients.
//! Who may is `decide`'s answer for `Action::Book` on the chart; the store decides who gets a
//! slot.

use super::{
    Appointment, AppointmentState, BookingProblem, OnlineBooking, SchedulingRepository, Slot,
    SlotState, cancellable, check_booking,
};
use crate::access::{Action, Actor, Target, decide};
use crate::account::{AccountRepository, Mailer};
use crate::audit::{AccessEvent, AccessLog, BookingStep, Outcome, Step};
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
    /// Who is told of an earlier time or reminded of a visit.
    pub accounts: Arc<dyn AccountRepository>,
    pub mailer: Arc<dyn Mailer>,
    /// The portal's address, for the links in emails.
    pub public_url: String,
    /// Hours before a visit when cancelling online ends, unless the organisation set its own.
    pub cancel_cutoff_hours: u32,
    /// Days ahead for which slots are generated from templates.
    pub horizon_days: u32,
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
    /// A set-up field, a search or a staff reason that is not valid; the message says which.
    #[error("{message}")]
    Input {
        code: &'static str,
        message: &'static str,
    },
    /// Not for the actor's role (a patient at the staff set-up, say).
    #[error("This is not available to your role.")]
    Forbidden,
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
            Self::Input { code, .. } => code,
            Self::Forbidden => "forbidden",
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

    pub(super) fn ports(&self) -> &SchedulingPorts {
        &self.p
    }

    /// Days ahead for which slots are generated.
    pub fn horizon_days(&self) -> u32 {
        self.p.horizon_days
    }

    /// The time now, by the service's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.p.clock.now()
    }

    /// An open time of the actor's organisation (the chart's, for the patient's side) and
    /// not past, to show on a booking form.
    ///
    /// # Errors
    /// `NotFound` for a time of another organisation; `SlotTaken` for one that is not open.
    pub async fn open_time(&self, actor: &Actor, id: SlotId) -> Result<Slot, SchedulingError> {
        let organization = match actor {
            Actor::Staff { organization, .. } => *organization,
            _ => self.chart_for(actor, None, None).await?.organization_id,
        };
        let slot = self
            .p
            .schedule
            .slot(id)
            .await?
            .filter(|s| s.organization == organization)
            .ok_or(SchedulingError::NotFound)?;
        if slot.state != SlotState::Open || slot.time.start <= self.p.clock.now() {
            return Err(SchedulingError::SlotTaken);
        }
        Ok(slot)
    }

    pub(super) async fn audit(
        &self,
        actor: &Actor,
        patient: PatientId,
        step: BookingStep,
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
                step: Some(Step::Booking(step)),
                record_kind: None,
                record: None,
                outcome,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// The chart `patient` (the actor's own when `None`), when the actor may book for it;
    /// else `NotFound`, written to the chart's history as refused.
    pub(super) async fn chart_for(
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
            self.audit(
                actor,
                chart.id,
                BookingStep::Viewed,
                Outcome::Denied,
                request_id,
            )
            .await?;
            return Err(SchedulingError::NotFound);
        }
        Ok(chart)
    }

    /// Open slots of a visit type for the chart `patient` (the actor's own when `None`): from
    /// now at the earliest, at most 100, earliest first, with the locations they are at (for
    /// their zones). Patients do not see staff-only visit types.
    ///
    /// # Errors
    /// `NotFound` for a chart or visit type that is not the actor's to book; `StaffOnly`.
    pub async fn search(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        query: super::SlotQuery,
        request_id: Option<&str>,
    ) -> Result<(Vec<Slot>, Vec<super::Location>), SchedulingError> {
        let slots = self.open_slots(actor, patient, query, request_id).await?;
        let mut places: Vec<super::Location> = Vec::new();
        for s in &slots {
            if places.iter().any(|l| l.id == s.location) {
                continue;
            }
            if let Some(l) = self.p.schedule.location(s.location).await? {
                places.push(l);
            }
        }
        Ok((slots, places))
    }

    async fn open_slots(
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
    ) -> Result<AppointmentView, SchedulingError> {
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
        let held = self
            .p
            .schedule
            .upcoming_of(chart.id, self.p.clock.now())
            .await?;
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
        self.audit(
            actor,
            chart.id,
            BookingStep::Booked,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        self.view_of(appointment, Some(kind)).await
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

    /// The organisation's cancellation cut-off in hours: its own, else the deployment's.
    pub(super) async fn cutoff(
        &self,
        organization: crate::ids::OrganizationId,
    ) -> Result<u32, RepoError> {
        Ok(self
            .p
            .schedule
            .cancel_cutoff(organization)
            .await?
            .unwrap_or(self.p.cancel_cutoff_hours))
    }

    /// An appointment the actor may book for, with its chart.
    async fn appointment_for(
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
        Ok((appointment, chart))
    }

    /// A booked appointment the actor may book for, not yet past the cut-off (staff are not
    /// held to it).
    async fn movable(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<(Appointment, Patient), SchedulingError> {
        let (appointment, chart) = self.appointment_for(actor, id, request_id).await?;
        if appointment.state != AppointmentState::Booked {
            return Err(SchedulingError::NotBooked);
        }
        let staff = matches!(actor, Actor::Staff { .. });
        if !staff
            && !cancellable(
                appointment.time.start,
                self.p.clock.now(),
                self.cutoff(appointment.organization).await?,
            )
        {
            return Err(SchedulingError::PastCutoff);
        }
        Ok((appointment, chart))
    }

    /// Cancels a booked appointment (online up to the cut-off; staff any time, with a reason
    /// the patient sees, ≤ 500 characters). The slot opens again, and those waiting for an
    /// earlier time of that kind are told.
    ///
    /// # Errors
    /// See [`SchedulingError`].
    pub async fn cancel(
        &self,
        actor: &Actor,
        id: AppointmentId,
        reason: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<AppointmentView, SchedulingError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500 || r.chars().any(char::is_control)) {
            return Err(SchedulingError::Input {
                code: "invalid_cancel_reason",
                message: "Give the reason in one line of at most 500 characters.",
            });
        }
        let (appointment, chart) = self.movable(actor, id, request_id).await?;
        let Some(account) = actor.account() else {
            return Err(SchedulingError::NotFound);
        };
        let now = self.p.clock.now();
        if !self
            .p
            .schedule
            .cancel(appointment.id, account, now, reason.map(str::to_owned))
            .await?
        {
            return Err(SchedulingError::NotBooked);
        }
        self.audit(
            actor,
            chart.id,
            BookingStep::Cancelled,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        self.p.schedule.leave_waitlist(appointment.id).await?;
        if matches!(actor, Actor::Staff { .. }) {
            self.tell_changed(chart.id).await?;
        }
        self.tell_waiting(&appointment).await?;
        let cancelled = self
            .p
            .schedule
            .appointment(appointment.id)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        self.view_of(cancelled, None).await
    }

    /// Moves a booked appointment to another open slot of its organisation and visit type:
    /// the new one is taken before the old one is freed; if the new one is gone, nothing
    /// changes. The freed time goes to those waiting for an earlier one.
    ///
    /// # Errors
    /// See [`SchedulingError`].
    pub async fn reschedule(
        &self,
        actor: &Actor,
        id: AppointmentId,
        to: SlotId,
        request_id: Option<&str>,
    ) -> Result<AppointmentView, SchedulingError> {
        let (appointment, chart) = self.movable(actor, id, request_id).await?;
        let (slot, kind) = self.open_slot(&chart, to).await?;
        if slot.visit_type != appointment.visit_type {
            return Err(SchedulingError::Input {
                code: "other_visit_type",
                message: "Choose a time of the same kind of visit.",
            });
        }
        let held = self
            .p
            .schedule
            .upcoming_of(chart.id, self.p.clock.now())
            .await?;
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
        self.audit(
            actor,
            chart.id,
            BookingStep::Rescheduled,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        if slot.time.start < appointment.time.start {
            self.p.schedule.leave_waitlist(appointment.id).await?;
        }
        if matches!(actor, Actor::Staff { .. }) {
            self.tell_changed(chart.id).await?;
        }
        self.tell_waiting(&appointment).await?;
        let moved = self
            .p
            .schedule
            .appointment(appointment.id)
            .await?
            .ok_or(SchedulingError::NotFound)?;
        self.view_of(moved, Some(kind)).await
    }

    /// An appointment with what the pages show of it.
    pub(super) async fn view_of(
        &self,
        appointment: Appointment,
        kind: Option<super::VisitType>,
    ) -> Result<AppointmentView, SchedulingError> {
        let kind = match kind {
            Some(k) => k,
            None => self
                .p
                .schedule
                .visit_type(appointment.visit_type)
                .await?
                .ok_or(RepoError::Corrupt("appointments.visit_type_id"))?,
        };
        let location = self
            .p
            .schedule
            .location(appointment.location)
            .await?
            .ok_or(RepoError::Corrupt("appointments.location_id"))?;
        let provider = self
            .p
            .schedule
            .provider(appointment.provider)
            .await?
            .ok_or(RepoError::Corrupt("appointments.provider_id"))?;
        let cutoff = self.cutoff(appointment.organization).await?;
        self.assemble(appointment, kind, location, provider, cutoff)
            .await
    }

    /// An appointment's view from its parts; whether it waits for an earlier time is read
    /// for an upcoming one only (a past visit waits for nothing).
    async fn assemble(
        &self,
        appointment: Appointment,
        visit_type: super::VisitType,
        location: super::Location,
        provider: super::Provider,
        cutoff: u32,
    ) -> Result<AppointmentView, SchedulingError> {
        let now = self.p.clock.now();
        let booked = appointment.state == AppointmentState::Booked;
        let upcoming = booked && appointment.time.end > now;
        let waiting = upcoming
            && self
                .p
                .schedule
                .waitlist_entry(appointment.id)
                .await?
                .is_some();
        Ok(AppointmentView {
            upcoming,
            changeable: booked && cancellable(appointment.time.start, now, cutoff),
            cutoff_hours: cutoff,
            waiting,
            appointment,
            visit_type,
            location,
            provider,
        })
    }

    /// The actor's (or the named chart's) appointments, earliest first, audited as a look.
    ///
    /// # Errors
    /// `NotFound` for a chart the actor may not book for.
    pub async fn appointments(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<Vec<AppointmentView>, SchedulingError> {
        let chart = self.chart_for(actor, patient, request_id).await?;
        let all = self.p.schedule.appointments_of(chart.id).await?;
        self.audit(
            actor,
            chart.id,
            BookingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        // The organisation's places, providers and visit types once, not once per visit.
        let setup = self.setup_of(chart.organization_id, false).await?;
        let mut out = Vec::with_capacity(all.len());
        for a in all {
            let (Some(kind), Some(location), Some(provider)) = (
                setup.visit_type(a.visit_type).cloned(),
                setup.location(a.location).cloned(),
                setup.provider(a.provider).cloned(),
            ) else {
                return Err(RepoError::Corrupt("appointments").into());
            };
            out.push(
                self.assemble(a, kind, location, provider, setup.cancel_cutoff_hours)
                    .await?,
            );
        }
        Ok(out)
    }

    /// One appointment, audited as a look.
    ///
    /// # Errors
    /// `NotFound` when there is none or it is not the actor's to see.
    pub async fn appointment(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<AppointmentView, SchedulingError> {
        let (appointment, chart) = self.appointment_for(actor, id, request_id).await?;
        self.audit(
            actor,
            chart.id,
            BookingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        self.view_of(appointment, None).await
    }

    /// A booked appointment as an iCalendar file: when (in the location's zone), where (or
    /// the video link), with whom and what to bring — not the reason or the kind of visit.
    ///
    /// # Errors
    /// `NotFound`; `NotBooked` for a cancelled one.
    pub async fn calendar(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<String, SchedulingError> {
        let view = self.appointment(actor, id, request_id).await?;
        if view.appointment.state != AppointmentState::Booked {
            return Err(SchedulingError::NotBooked);
        }
        let uid = format!("{}@salus", view.appointment.id);
        let summary = format!("Appointment at {}", view.location.name);
        let place = view.place();
        let mut description = format!("With {}.", view.provider.name);
        if let Some(bring) = &view.visit_type.bring {
            description.push_str("\nPlease bring: ");
            description.push_str(bring);
        }
        Ok(super::ics::calendar(&super::ics::CalendarEntry {
            uid: &uid,
            start: view.appointment.time.start,
            end: view.appointment.time.end,
            zone: view.location.time_zone,
            summary: &summary,
            location: &place,
            description: &description,
            stamp: self.p.clock.now(),
        }))
    }

    /// The visit types the actor may book for the chart (the actor's own when `None`), with
    /// the organisation's locations and providers: staff-only types are left out for the
    /// patient's side.
    ///
    /// # Errors
    /// `NotFound` for a chart the actor may not book for.
    pub async fn bookable(
        &self,
        actor: &Actor,
        patient: Option<PatientId>,
        request_id: Option<&str>,
    ) -> Result<super::Setup, SchedulingError> {
        let chart = self.chart_for(actor, patient, request_id).await?;
        let mut setup = self.setup_of(chart.organization_id, false).await?;
        if !matches!(actor, Actor::Staff { .. }) {
            setup
                .visit_types
                .retain(|k| k.online != OnlineBooking::StaffOnly);
        }
        setup.providers.retain(|p| p.active);
        Ok(setup)
    }

    /// The booked appointment a visit record of `patient`'s chart was (see
    /// [`super::rules::matching_visit`]), for whoever may book for the chart; `None` for
    /// anyone else, without a trace (they were reading the visit, not the appointments). A
    /// match shown is audited as a look.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn appointment_at(
        &self,
        actor: &Actor,
        patient: PatientId,
        start: chrono::DateTime<chrono::Utc>,
        end: Option<chrono::DateTime<chrono::Utc>>,
        request_id: Option<&str>,
    ) -> Result<Option<Appointment>, SchedulingError> {
        let Some(chart) = self.p.patients.find(patient).await? else {
            return Ok(None);
        };
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if !decide(actor, Action::Book, target, self.p.clock.now()).is_allowed() {
            return Ok(None);
        }
        let all = self.p.schedule.appointments_of(chart.id).await?;
        let Some(found) = super::rules::matching_visit(&all, start, end).cloned() else {
            return Ok(None);
        };
        self.audit(
            actor,
            chart.id,
            BookingStep::Viewed,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(Some(found))
    }

    /// Asks to be told when an earlier time of the appointment's kind opens (the appointment
    /// stays as it is until the patient books the earlier one).
    ///
    /// # Errors
    /// `NotFound`; `NotBooked` for a cancelled or past one.
    pub async fn join_waitlist(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<AppointmentView, SchedulingError> {
        let (appointment, chart) = self.appointment_for(actor, id, request_id).await?;
        let now = self.p.clock.now();
        if appointment.state != AppointmentState::Booked || appointment.time.start <= now {
            return Err(SchedulingError::NotBooked);
        }
        self.p
            .schedule
            .join_waitlist(&super::WaitlistEntry {
                appointment: appointment.id,
                organization: appointment.organization,
                patient: chart.id,
                visit_type: appointment.visit_type,
                created_at: now,
                notified_at: None,
            })
            .await?;
        self.audit(
            actor,
            chart.id,
            BookingStep::Waitlisted,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        self.view_of(appointment, None).await
    }

    /// Stops waiting for an earlier time.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn leave_waitlist(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request_id: Option<&str>,
    ) -> Result<AppointmentView, SchedulingError> {
        let (appointment, chart) = self.appointment_for(actor, id, request_id).await?;
        self.p.schedule.leave_waitlist(appointment.id).await?;
        self.audit(
            actor,
            chart.id,
            BookingStep::Waitlisted,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        self.view_of(appointment, None).await
    }
}

/// An appointment with its visit type, place and provider, and what may be done with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView {
    pub appointment: Appointment,
    pub visit_type: super::VisitType,
    pub location: super::Location,
    pub provider: super::Provider,
    /// Booked and not yet over.
    pub upcoming: bool,
    /// Booked and before the cut-off: the patient's side may still cancel or move it.
    pub changeable: bool,
    /// The organisation's cut-off, for the sentence that says when changing online ends.
    pub cutoff_hours: u32,
    /// On the waitlist for an earlier time.
    pub waiting: bool,
}

impl AppointmentView {
    /// Where the visit is: the location's name and address, or the video link.
    pub fn place(&self) -> String {
        match (self.visit_type.mode, &self.provider.video_url) {
            (super::VisitMode::Video, Some(url)) => format!("Video visit: {url}"),
            _ => format!("{}, {}", self.location.name, self.location.address),
        }
    }
}
