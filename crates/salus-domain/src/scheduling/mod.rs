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
pub mod rules;

pub use availability::{Exception, SlotTime, WeeklyTemplate, slot_times};
pub use rules::{BookingProblem, cancellable, check_booking};

use crate::ids::{AppointmentId, OrganizationId, PatientId};
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
    pub organization: OrganizationId,
    pub name: String,
    /// Length in minutes (5 to 240).
    pub minutes: u16,
    pub mode: VisitMode,
    pub online: OnlineBooking,
    /// Future appointments of this type one patient may hold at once.
    pub max_per_patient: u8,
}

/// A booked visit, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub id: AppointmentId,
    pub patient: PatientId,
    /// The visit type's name: one patient's limit is counted per type.
    pub visit_type: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}
