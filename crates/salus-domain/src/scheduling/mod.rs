//! Scheduling: an organisation's locations and bookable providers, the visit types it offers,
//! weekly availability templates with exceptions, the slots generated from them, and the
//! rules of booking (how many a patient may hold, no overlap, the cancellation cut-off).
//!
//! **Invariant:** times are stored in UTC and generated from wall-clock templates in the
//! location's time zone, one day at a time, so a template keeps its local times across a
//! daylight-saving change (a slot whose local start does not exist that day — the hour the
//! clocks skip — is not offered; one that exists twice — the hour repeated — is offered once,
//! at its first occurrence).
//! **Invariant:** a slot is booked by one appointment at most, decided by the database (a
//! conditional update of the slot), never by a read before the write.

pub mod availability;
pub mod ics;
mod notices;
pub mod rules;
mod service;
mod setup;
#[cfg(test)]
mod tests;

pub use availability::{Exception, SlotTime, WeeklyTemplate, slot_times};
pub use rules::{BookingProblem, cancellable, check_booking};
pub use service::{
    AppointmentView, CANCEL_CUTOFF_HOURS, SchedulingError, SchedulingPorts, SchedulingService,
};
pub use setup::{DayEntry, NewLocation, NewProvider, NewTemplate, NewVisitType, weekday_code};

use crate::ids::{
    AccountId, AppointmentId, LocationId, OrganizationId, PatientId, PractitionerId, ProviderId,
    SlotId, TemplateId, VisitTypeId,
};
use crate::repo::RepoError;
use chrono::{DateTime, Utc};

/// In person at the location, or a video call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitMode {
    InPerson,
    Video,
}

/// Who may book a visit type online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlineBooking {
    Everyone,
    ExistingPatients,
    StaffOnly,
}

/// A kind of visit an organisation offers ("20-minute new-patient visit").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitType {
    pub id: VisitTypeId,
    pub organization: OrganizationId,
    pub name: String,
    /// Length in minutes (5 to 240).
    pub minutes: u16,
    pub mode: VisitMode,
    pub online: OnlineBooking,
    /// Future appointments of this type one patient may hold at once.
    pub max_per_patient: u8,
    /// What to bring, shown with the confirmation.
    pub bring: Option<String>,
}

/// A place an organisation sees patients, with the zone its times are shown in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: LocationId,
    pub organization: OrganizationId,
    pub name: String,
    pub address: String,
    pub time_zone: chrono_tz::Tz,
}

/// A weekly template of one provider at one location for one visit type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub organization: OrganizationId,
    pub provider: ProviderId,
    pub location: LocationId,
    pub visit_type: VisitTypeId,
    pub weekly: WeeklyTemplate,
}

/// A day a provider is not available (a holiday, a day off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOff {
    pub provider: ProviderId,
    pub date: chrono::NaiveDate,
    pub reason: Option<String>,
}

/// A clinician patients can book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: ProviderId,
    pub organization: OrganizationId,
    /// Their entry in the practitioner directory, when known.
    pub practitioner: Option<PractitionerId>,
    pub name: String,
    pub active: bool,
    /// The provider's video room, where their video visits take place.
    pub video_url: Option<String>,
}

/// Whether a slot can be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Open,
    /// Taken out by staff (a meeting, a late start).
    Blocked,
    Booked(AppointmentId),
}

/// One bookable time of one provider at one location, for one visit type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: SlotId,
    pub organization: OrganizationId,
    pub provider: ProviderId,
    pub location: LocationId,
    pub visit_type: VisitTypeId,
    pub time: SlotTime,
    pub state: SlotState,
}

/// Where an appointment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppointmentState {
    Booked,
    Cancelled {
        at: DateTime<Utc>,
        by: AccountId,
        /// What the patient reads (a reason staff gave), if any.
        reason: Option<String>,
    },
}

/// A visit booked in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: AppointmentId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    pub slot: SlotId,
    pub provider: ProviderId,
    pub location: LocationId,
    pub visit_type: VisitTypeId,
    pub time: SlotTime,
    /// Why the patient comes, in their words (≤ 500 characters).
    pub reason: String,
    pub booked_by: AccountId,
    pub booked_at: DateTime<Utc>,
    pub state: AppointmentState,
}

/// A patient waiting to be told when an earlier time of the visit type of the appointment
/// they hold opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistEntry {
    /// The later appointment the patient holds (one entry each).
    pub appointment: AppointmentId,
    pub organization: OrganizationId,
    pub patient: PatientId,
    pub visit_type: VisitTypeId,
    pub created_at: DateTime<Utc>,
    /// When they were last told of an earlier time.
    pub notified_at: Option<DateTime<Utc>>,
}

/// An organisation's scheduling set-up: what staff manage and patients choose from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    pub locations: Vec<Location>,
    pub providers: Vec<Provider>,
    pub visit_types: Vec<VisitType>,
    pub templates: Vec<Template>,
    /// Hours before a visit when cancelling online ends.
    pub cancel_cutoff_hours: u32,
    /// The practitioner directory providers link to (staff's set-up only).
    pub directory: Vec<(PractitionerId, String)>,
}

impl Setup {
    pub fn location(&self, id: LocationId) -> Option<&Location> {
        self.locations.iter().find(|l| l.id == id)
    }
    pub fn provider(&self, id: ProviderId) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }
    pub fn visit_type(&self, id: VisitTypeId) -> Option<&VisitType> {
        self.visit_types.iter().find(|v| v.id == id)
    }
}

/// What a search for open slots asks: one visit type, optionally one provider or location,
/// from a time on (until one, when given), the first `limit` by start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotQuery {
    pub visit_type: VisitTypeId,
    pub provider: Option<ProviderId>,
    pub location: Option<LocationId>,
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// Storage of locations, providers, visit types, slots and appointments.
///
/// **Contract:** `book` and `reschedule` take a slot with one conditional update of that
/// slot (`… WHERE state = 'open'`) in the transaction that writes the appointment, so of any
/// number of concurrent bookings of one slot exactly one succeeds, whatever the number of
/// processes; `reschedule` takes the new slot before it frees the old one and changes nothing
/// when the new one is gone.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait SchedulingRepository: Send + Sync {
    /// Stores a new location.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn create_location(&self, location: &Location) -> Result<(), RepoError>;

    /// Stores a new bookable provider.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn create_provider(&self, provider: &Provider) -> Result<(), RepoError>;

    /// Stores a new visit type.
    ///
    /// # Errors
    /// `Conflict` when the organisation has one of that name.
    async fn create_visit_type(&self, visit_type: &VisitType) -> Result<(), RepoError>;

    /// The location with this id.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse (an unknown zone included).
    async fn location(&self, id: LocationId) -> Result<Option<Location>, RepoError>;

    /// Stores a weekly template.
    ///
    /// # Errors
    /// `Conflict` when its provider, location or visit type does not exist.
    async fn create_template(&self, template: &Template) -> Result<(), RepoError>;

    /// An organisation's templates.
    ///
    /// # Errors
    /// As [`SchedulingRepository::location`].
    async fn templates_of(&self, organization: OrganizationId) -> Result<Vec<Template>, RepoError>;

    /// Records a provider's day off (once per provider and day).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn add_day_off(&self, day: &DayOff) -> Result<(), RepoError>;

    /// A provider's days off from `from` to `until`.
    ///
    /// # Errors
    /// As [`SchedulingRepository::location`].
    async fn days_off(
        &self,
        provider: ProviderId,
        from: chrono::NaiveDate,
        until: chrono::NaiveDate,
    ) -> Result<Vec<DayOff>, RepoError>;

    /// The visit type with this id.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse.
    async fn visit_type(&self, id: VisitTypeId) -> Result<Option<VisitType>, RepoError>;

    /// The appointment with this id.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse.
    async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>, RepoError>;

    /// Stores slots; one a provider already has at that start is left as it is. Answers how
    /// many were new.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn add_slots(&self, slots: &[Slot]) -> Result<u64, RepoError>;

    /// An organisation's open slots that answer `query`, earliest first: the first page is
    /// "the next available", however many empty days lie before it (an index range scan on
    /// organisation, visit type, state and start).
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn open_slots(
        &self,
        organization: OrganizationId,
        query: &SlotQuery,
    ) -> Result<Vec<Slot>, RepoError>;

    /// The slot with this id.
    ///
    /// # Errors
    /// `Unavailable`; `Corrupt` when a row does not parse.
    async fn slot(&self, id: SlotId) -> Result<Option<Slot>, RepoError>;

    /// Books `appointment` into its slot if the slot is still open (see the contract):
    /// false when it is not.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn book(&self, appointment: &Appointment) -> Result<bool, RepoError>;

    /// Moves a booked appointment to `to` (an open slot): false, and nothing changed, when
    /// `to` is no longer open or the appointment no longer booked.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn reschedule(&self, appointment: AppointmentId, to: &Slot) -> Result<bool, RepoError>;

    /// Cancels a booked appointment and opens its slot again: false when it was not booked.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn cancel(
        &self,
        appointment: AppointmentId,
        by: AccountId,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<bool, RepoError>;

    /// A patient's appointments, by start.
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn appointments_of(&self, patient: PatientId) -> Result<Vec<Appointment>, RepoError>;

    /// The organisation's practitioner directory (clinicians known from its records), by
    /// name, at most 1,000: what a bookable provider links to.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn practitioners_of(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<(PractitionerId, String)>, RepoError>;

    /// The bookable provider with this id.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn provider(&self, id: ProviderId) -> Result<Option<Provider>, RepoError>;

    /// A patient's booked appointments that end after `now`, by start (what the booking
    /// rules count).
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn upcoming_of(
        &self,
        patient: PatientId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, RepoError>;

    /// An organisation's locations, by name.
    ///
    /// # Errors
    /// As [`SchedulingRepository::location`].
    async fn locations_of(&self, organization: OrganizationId) -> Result<Vec<Location>, RepoError>;

    /// An organisation's bookable providers, by name.
    ///
    /// # Errors
    /// As [`SchedulingRepository::location`].
    async fn providers_of(&self, organization: OrganizationId) -> Result<Vec<Provider>, RepoError>;

    /// An organisation's visit types, by name.
    ///
    /// # Errors
    /// As [`SchedulingRepository::location`].
    async fn visit_types_of(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<VisitType>, RepoError>;

    /// Blocks an open slot (`blocked` true) or opens a blocked one: false when the slot was
    /// not in the state that allows it (a booked slot is neither).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_blocked(&self, slot: SlotId, blocked: bool) -> Result<bool, RepoError>;

    /// Removes a provider's open slots that start in `from..until` (a day off); booked and
    /// blocked ones stay. Answers how many went.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn remove_open_slots(
        &self,
        provider: ProviderId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// An organisation's slots in every state that start in `from..until`, optionally of one
    /// provider or location, by start.
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn slots_between(
        &self,
        organization: OrganizationId,
        provider: Option<ProviderId>,
        location: Option<LocationId>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Slot>, RepoError>;

    /// The appointments with these ids.
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn appointments_by_id(
        &self,
        ids: &[AppointmentId],
    ) -> Result<Vec<Appointment>, RepoError>;

    /// The organisation's own cancellation cut-off in hours, when it set one.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn cancel_cutoff(&self, organization: OrganizationId) -> Result<Option<u32>, RepoError>;

    /// Sets the organisation's cancellation cut-off.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_cancel_cutoff(
        &self,
        organization: OrganizationId,
        hours: u32,
    ) -> Result<(), RepoError>;

    /// The organisations that have availability templates (whose slots are generated).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn scheduling_organizations(&self) -> Result<Vec<OrganizationId>, RepoError>;

    /// Puts an appointment on the waitlist: false when it is on it already.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn join_waitlist(&self, entry: &WaitlistEntry) -> Result<bool, RepoError>;

    /// Takes an appointment off the waitlist: false when it was not on it.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn leave_waitlist(&self, appointment: AppointmentId) -> Result<bool, RepoError>;

    /// The waitlist entry of an appointment.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn waitlist_entry(
        &self,
        appointment: AppointmentId,
    ) -> Result<Option<WaitlistEntry>, RepoError>;

    /// Who waits for a visit type of the organisation holding a booked appointment that
    /// starts after `after`, first come first.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn waiting_for(
        &self,
        organization: OrganizationId,
        visit_type: VisitTypeId,
        after: DateTime<Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepoError>;

    /// Notes when these waiting appointments were told of an earlier time.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn mark_notified(
        &self,
        appointments: &[AppointmentId],
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Booked appointments starting in `from..until` whose reminder is not sent, by start.
    ///
    /// # Errors
    /// As [`SchedulingRepository::slot`].
    async fn due_reminders(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, RepoError>;

    /// Takes an appointment's reminder to send (a conditional update, so of several nodes
    /// one sends it): false when it was taken already.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn take_reminder(
        &self,
        appointment: AppointmentId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// A scheduling service whose ports are mocks with no expectations: any use fails the test.
/// For adapter tests that never reach scheduling.
#[cfg(any(test, feature = "mocks"))]
pub fn scheduling_without_expectations() -> SchedulingService {
    #[derive(Debug)]
    struct NilIds;
    impl crate::ids::IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    SchedulingService::new(SchedulingPorts {
        schedule: std::sync::Arc::new(MockSchedulingRepository::new()),
        patients: std::sync::Arc::new(crate::patient::MockPatientRepository::new()),
        log: std::sync::Arc::new(crate::audit::MockAccessLog::new()),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        ids: std::sync::Arc::new(NilIds),
        accounts: std::sync::Arc::new(crate::account::MockAccountRepository::new()),
        mailer: std::sync::Arc::new(crate::account::MockMailer::new()),
        public_url: String::new(),
        cancel_cutoff_hours: CANCEL_CUTOFF_HOURS,
        horizon_days: 90,
    })
}
