//! The rules of booking: the patient's limit per visit type, no overlap, the cut-off for
//! cancelling online.

use super::{Appointment, AppointmentState, VisitType};
use chrono::{DateTime, Duration, Utc};

/// Why a booking is refused (before the database decides who gets the slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookingProblem {
    #[error("This time has passed. Choose a later one.")]
    InThePast,
    #[error("You already have {max} upcoming visits of this kind, the most at once.")]
    TooMany { max: u8 },
    #[error("You have another visit at that time.")]
    Overlaps,
}

impl BookingProblem {
    pub fn code(self) -> &'static str {
        match self {
            Self::InThePast => "slot_in_past",
            Self::TooMany { .. } => "too_many_appointments",
            Self::Overlaps => "appointment_overlaps",
        }
    }
}

/// Whether a patient holding `held` (their appointments, any kind and state) may book `start..end` of
/// `visit_type` at `now`: not in the past, at most `max_per_patient` future ones of that kind,
/// and no overlap with any future one. `replacing` is left out of the count (a reschedule).
///
/// # Errors
/// The first [`BookingProblem`].
pub fn check_booking(
    held: &[Appointment],
    visit_type: &VisitType,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    replacing: Option<crate::ids::AppointmentId>,
) -> Result<(), BookingProblem> {
    if start <= now {
        return Err(BookingProblem::InThePast);
    }
    let future: Vec<&Appointment> = held
        .iter()
        .filter(|b| {
            b.state == AppointmentState::Booked && b.time.end > now && Some(b.id) != replacing
        })
        .collect();
    let same_kind = future
        .iter()
        .filter(|b| b.visit_type == visit_type.id)
        .count();
    if same_kind >= usize::from(visit_type.max_per_patient) {
        return Err(BookingProblem::TooMany {
            max: visit_type.max_per_patient,
        });
    }
    if future
        .iter()
        .any(|b| b.time.start < end && start < b.time.end)
    {
        return Err(BookingProblem::Overlaps);
    }
    Ok(())
}

/// Whether an appointment starting at `start` may still be cancelled online at `now`, with
/// the organisation's cut-off in hours (later, the page says to call).
pub fn cancellable(start: DateTime<Utc>, now: DateTime<Utc>, cutoff_hours: u32) -> bool {
    now + Duration::hours(i64::from(cutoff_hours)) <= start
}

/// How far a visit's record may lie from its appointment and still be that appointment:
/// patients come early, clinics run late.
pub const VISIT_LEEWAY_MINUTES: i64 = 60;

/// The booked appointment a visit that began at `start` (and ended at `end`, when known) was:
/// one whose time overlaps the visit's, widened by [`VISIT_LEEWAY_MINUTES`] on each side; of
/// several, the one whose start is closest.
pub fn matching_visit(
    appointments: &[Appointment],
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> Option<&Appointment> {
    let leeway = Duration::minutes(VISIT_LEEWAY_MINUTES);
    let end = end.filter(|e| *e >= start).unwrap_or(start);
    appointments
        .iter()
        .filter(|a| a.state == AppointmentState::Booked)
        .filter(|a| a.time.start - leeway <= end && start <= a.time.end + leeway)
        .min_by_key(|a| (a.time.start - start).num_seconds().abs())
}

#[cfg(test)]
mod tests {
    use super::super::{OnlineBooking, SlotTime, VisitMode};
    use super::*;
    use crate::ids::{
        AccountId, AppointmentId, LocationId, OrganizationId, PatientId, ProviderId, SlotId,
        VisitTypeId,
    };
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }
    fn kind(n: u128, max: u8) -> VisitType {
        VisitType {
            id: VisitTypeId::from_uuid(Uuid::from_u128(n)),
            organization: OrganizationId::from_uuid(Uuid::from_u128(1)),
            name: format!("Kind {n}"),
            minutes: 20,
            mode: VisitMode::InPerson,
            online: OnlineBooking::Everyone,
            max_per_patient: max,
            bring: None,
        }
    }
    fn booked(n: u128, kind: u128, start: DateTime<Utc>) -> Appointment {
        let id = |x| Uuid::from_u128(x);
        Appointment {
            id: AppointmentId::from_uuid(id(n)),
            organization: OrganizationId::from_uuid(id(1)),
            patient: PatientId::from_uuid(id(9)),
            slot: SlotId::from_uuid(id(100 + n)),
            provider: ProviderId::from_uuid(id(7)),
            location: LocationId::from_uuid(id(8)),
            visit_type: VisitTypeId::from_uuid(id(kind)),
            time: SlotTime {
                start,
                end: start + Duration::minutes(20),
            },
            reason: String::new(),
            booked_by: AccountId::from_uuid(id(6)),
            booked_at: start - Duration::days(3),
            state: AppointmentState::Booked,
        }
    }

    #[test]
    fn a_patient_holds_at_most_the_limit_of_one_kind_and_never_two_at_once() {
        let now = at(4, 12);
        let held = [booked(1, 2, at(10, 9)), booked(2, 2, at(11, 9))];
        let check_up = kind(2, 2);
        assert_eq!(
            check_booking(&held, &check_up, at(12, 9), at(12, 10), now, None),
            Err(BookingProblem::TooMany { max: 2 })
        );
        // Moving one of them is not a third.
        assert_eq!(
            check_booking(
                &held,
                &check_up,
                at(12, 9),
                at(12, 10),
                now,
                Some(held[0].id)
            ),
            Ok(())
        );
        let other = kind(3, 1);
        assert_eq!(
            check_booking(&held, &other, at(10, 9), at(10, 10), now, None),
            Err(BookingProblem::Overlaps)
        );
        assert_eq!(
            check_booking(&held, &other, at(10, 10), at(10, 11), now, None),
            Ok(())
        );
        assert_eq!(
            check_booking(&[], &other, at(4, 11), at(4, 12), now, None),
            Err(BookingProblem::InThePast)
        );
        // Past visits count for nothing.
        let past = [booked(3, 3, at(1, 9))];
        let mut cancelled = booked(4, 3, at(10, 9));
        cancelled.state = AppointmentState::Cancelled {
            at: at(3, 9),
            by: AccountId::from_uuid(Uuid::from_u128(6)),
            reason: None,
        };
        assert_eq!(
            check_booking(&[cancelled], &other, at(10, 9), at(10, 10), now, None),
            Ok(()),
            "a cancelled visit holds nothing"
        );
        assert_eq!(
            check_booking(&past, &other, at(10, 9), at(10, 10), now, None),
            Ok(())
        );
    }

    #[test]
    fn cancelling_online_ends_at_the_cut_off() {
        let start = at(10, 9);
        assert!(cancellable(start, at(9, 9), 24), "exactly 24 hours before");
        assert!(!cancellable(start, at(9, 10), 24), "23 hours before: call");
        assert!(cancellable(start, at(10, 8), 0));
    }

    #[test]
    fn a_visit_record_is_the_booked_appointment_it_overlaps_within_an_hour() {
        let nine = booked(1, 2, at(10, 9));
        let mut cancelled = booked(2, 2, at(10, 9));
        cancelled.state = AppointmentState::Cancelled {
            at: at(9, 9),
            by: AccountId::from_uuid(Uuid::from_u128(6)),
            reason: None,
        };
        let afternoon = booked(3, 2, at(10, 14));
        let all = [cancelled, nine.clone(), afternoon.clone()];
        // Recorded at 09:35 to 10:05: the nine o'clock visit (09:00-09:20), running late.
        let seen = matching_visit(
            &all,
            at(10, 9) + Duration::minutes(35),
            Some(at(10, 10) + Duration::minutes(5)),
        );
        assert_eq!(seen.map(|a| a.id), Some(nine.id));
        // Started at 13:10 with no end: the two o'clock one, arrived early.
        let early = matching_visit(&all, at(10, 13) + Duration::minutes(10), None);
        assert_eq!(early.map(|a| a.id), Some(afternoon.id));
        // At 11:30, two hours from either: none; a cancelled one never.
        assert_eq!(
            matching_visit(&all, at(10, 11) + Duration::minutes(30), None),
            None
        );
        assert_eq!(matching_visit(&all[..1], at(10, 9), None), None);
    }
}
