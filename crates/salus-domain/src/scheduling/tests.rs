//! The booking use cases with mocked ports: who may book for whom (through `decide`), staff-only
//! visit types, the rules, the store's answer when a slot is gone, the cut-off, and the audit.

use super::*;
use crate::access::{Action, Actor, GrantScope};
use crate::account::StaffRole;
use crate::audit::{AccessEvent, MockAccessLog, Outcome};
use crate::clock::FixedClock;
use crate::ids::IdGenerator;
use crate::patient::{AdministrativeSex, MockPatientRepository, Patient, PersonName};
use crate::text::Mrn;
use chrono::{Duration, NaiveDate, TimeZone};
use futures_executor::block_on;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}
const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
const OTHER_ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(2));
const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
const ANN_ACCOUNT: AccountId = AccountId::from_uuid(Uuid::from_u128(20));
const SLOT: SlotId = SlotId::from_uuid(Uuid::from_u128(30));
const KIND: VisitTypeId = VisitTypeId::from_uuid(Uuid::from_u128(40));
const BOOKED: AppointmentId = AppointmentId::from_uuid(Uuid::from_u128(50));

#[derive(Debug)]
struct Ids;
impl IdGenerator for Ids {
    fn next_uuid(&self) -> Uuid {
        Uuid::from_u128(999)
    }
}

fn ann() -> Actor {
    Actor::Patient {
        account: ANN_ACCOUNT,
        patient: ANN,
    }
}
fn staff(role: StaffRole, organization: OrganizationId) -> Actor {
    Actor::Staff {
        account: AccountId::from_uuid(Uuid::from_u128(21)),
        role,
        organization,
    }
}
fn proxy(actions: &[Action]) -> Actor {
    Actor::Proxy {
        account: AccountId::from_uuid(Uuid::from_u128(22)),
        grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(23)),
        patient: ANN,
        scope: GrantScope {
            kinds: [crate::record::RecordKind::Encounter].into(),
            actions: actions.iter().copied().collect(),
            labels: crate::record::SensitivityLabels::empty(),
            valid_from: now() - Duration::days(1),
            valid_until: now() + Duration::days(1),
        },
    }
}

fn chart() -> Patient {
    Patient {
        id: ANN,
        organization_id: ORG,
        mrn: Mrn::parse("MRN1").unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
        sex: AdministrativeSex::Female,
        contact: crate::patient::ContactDetails::default(),
        source_identifier: None,
    }
}

fn slot(start: DateTime<Utc>) -> Slot {
    Slot {
        id: SLOT,
        organization: ORG,
        provider: ProviderId::from_uuid(Uuid::from_u128(31)),
        location: LocationId::from_uuid(Uuid::from_u128(32)),
        visit_type: KIND,
        time: SlotTime {
            start,
            end: start + Duration::minutes(20),
        },
        state: SlotState::Open,
    }
}

fn kind(online: OnlineBooking) -> VisitType {
    VisitType {
        id: KIND,
        organization: ORG,
        name: "Check-up".into(),
        minutes: 20,
        mode: VisitMode::InPerson,
        online,
        max_per_patient: 1,
        bring: None,
    }
}

fn booked(start: DateTime<Utc>) -> Appointment {
    let s = slot(start);
    Appointment {
        id: BOOKED,
        organization: ORG,
        patient: ANN,
        slot: s.id,
        provider: s.provider,
        location: s.location,
        visit_type: KIND,
        time: s.time,
        reason: String::new(),
        booked_by: ANN_ACCOUNT,
        booked_at: now() - Duration::days(2),
        state: AppointmentState::Booked,
    }
}

/// A service over `schedule`, keeping its audit entries.
fn service(
    schedule: MockSchedulingRepository,
) -> (SchedulingService, Arc<Mutex<Vec<AccessEvent>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    let mut log = MockAccessLog::new();
    log.expect_record().returning(move |e| {
        k.lock().unwrap().push(e);
        Ok(())
    });
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|_| Ok(Some(chart())));
    let s = SchedulingService::new(SchedulingPorts {
        schedule: Arc::new(schedule),
        patients: Arc::new(patients),
        log: Arc::new(log),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(Ids),
        cancel_cutoff_hours: CANCEL_CUTOFF_HOURS,
    });
    (s, kept)
}

fn bookable(
    online: OnlineBooking,
    held: Vec<Appointment>,
    store_says: bool,
) -> MockSchedulingRepository {
    let mut r = MockSchedulingRepository::new();
    r.expect_slot()
        .returning(|_| Ok(Some(slot(now() + Duration::days(3)))));
    r.expect_visit_type()
        .returning(move |_| Ok(Some(kind(online))));
    r.expect_appointments_of()
        .returning(move |_| Ok(held.clone()));
    r.expect_book().returning(move |_| Ok(store_says));
    r
}

#[test]
fn the_patient_a_proxy_with_the_grant_and_the_front_desk_book_and_nobody_else() {
    for (who, expected) in [
        (ann(), "booked"),
        (proxy(&[Action::Read, Action::Book]), "booked"),
        (staff(StaffRole::FrontDesk, ORG), "booked"),
        (proxy(&[Action::Read]), "not_found"),
        (staff(StaffRole::Clinician, ORG), "not_found"),
        (staff(StaffRole::FrontDesk, OTHER_ORG), "not_found"),
    ] {
        let (s, kept) = service(bookable(OnlineBooking::Everyone, vec![], true));
        let patient = matches!(who, Actor::Staff { .. }).then_some(ANN);
        let answer = block_on(s.book(&who, patient, SLOT, "Knee pain", None));
        match answer {
            Ok(a) => {
                assert_eq!(expected, "booked", "{who:?}");
                assert_eq!(
                    (a.patient, a.slot, a.reason.as_str()),
                    (ANN, SLOT, "Knee pain")
                );
                assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Allowed);
            }
            Err(e) => {
                assert_eq!(e.code(), expected, "{who:?}");
                assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Denied, "audited");
            }
        }
    }
}

#[test]
fn a_slot_gone_to_someone_else_a_staff_only_visit_and_the_rules_are_refused() {
    let (s, _) = service(bookable(OnlineBooking::Everyone, vec![], false));
    let taken = block_on(s.book(&ann(), None, SLOT, "", None)).unwrap_err();
    assert_eq!(taken.code(), "slot_taken", "the store's answer");

    let (s, _) = service(bookable(OnlineBooking::StaffOnly, vec![], true));
    let refused = block_on(s.book(&ann(), None, SLOT, "", None)).unwrap_err();
    assert_eq!(refused.code(), "staff_only");
    assert!(block_on(s.book(&staff(StaffRole::FrontDesk, ORG), Some(ANN), SLOT, "", None)).is_ok());

    let held = vec![booked(now() + Duration::days(10))];
    let (s, _) = service(bookable(OnlineBooking::Everyone, held, true));
    let refused = block_on(s.book(&ann(), None, SLOT, "", None)).unwrap_err();
    assert_eq!(refused.code(), "too_many_appointments");

    let (s, _) = service(bookable(OnlineBooking::Everyone, vec![], true));
    let typed = block_on(s.book(&ann(), None, SLOT, " Knee pain\r\nsince Monday ", None));
    assert_eq!(
        typed.unwrap().reason,
        "Knee pain\nsince Monday",
        "a form's line breaks kept"
    );
    let (s, _) = service(bookable(OnlineBooking::Everyone, vec![], true));
    assert_eq!(
        block_on(s.book(&ann(), None, SLOT, "bell\u{7}", None))
            .unwrap_err()
            .code(),
        "invalid_reason"
    );
    let long = "x".repeat(501);
    assert_eq!(
        block_on(s.book(&ann(), None, SLOT, &long, None))
            .unwrap_err()
            .code(),
        "invalid_reason"
    );
}

#[test]
fn cancelling_online_stops_at_the_cut_off_and_staff_cancel_later_with_a_reason() {
    for (hours_ahead, who, expected) in [
        (48, ann(), Ok(())),
        (23, ann(), Err("past_cutoff")),
        (2, staff(StaffRole::FrontDesk, ORG), Ok(())),
    ] {
        let mut r = MockSchedulingRepository::new();
        r.expect_appointment()
            .returning(move |_| Ok(Some(booked(now() + Duration::hours(hours_ahead)))));
        r.expect_cancel().returning(|_, _, _, _| Ok(true));
        let (s, _) = service(r);
        let reason = matches!(who, Actor::Staff { .. }).then(|| "The doctor is ill".to_owned());
        let answer = block_on(s.cancel(&who, BOOKED, reason, None)).map_err(|e| e.code());
        assert_eq!(answer, expected, "{hours_ahead} h ahead as {who:?}");
    }
}

#[test]
fn a_reschedule_onto_a_slot_just_taken_changes_nothing_and_says_so() {
    let mut r = MockSchedulingRepository::new();
    r.expect_appointment()
        .returning(|_| Ok(Some(booked(now() + Duration::days(5)))));
    r.expect_slot()
        .returning(|_| Ok(Some(slot(now() + Duration::days(3)))));
    r.expect_visit_type()
        .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
    // The one held is the one being moved: it does not count against the limit of one.
    r.expect_appointments_of()
        .returning(|_| Ok(vec![booked(now() + Duration::days(5))]));
    r.expect_reschedule().returning(|_, _| Ok(false));
    let (s, kept) = service(r);
    let answer = block_on(s.reschedule(&ann(), BOOKED, SLOT, None)).unwrap_err();
    assert_eq!(answer.code(), "slot_taken");
    assert!(
        kept.lock().unwrap().is_empty(),
        "nothing happened, nothing audited"
    );
}

#[test]
fn slots_are_generated_for_the_horizon_in_the_locations_zone_without_days_off_or_the_past() {
    use chrono::{NaiveTime, Weekday};
    let provider = ProviderId::from_uuid(Uuid::from_u128(31));
    let location = LocationId::from_uuid(Uuid::from_u128(32));
    let mut r = MockSchedulingRepository::new();
    r.expect_templates_of().returning(move |_| {
        Ok(vec![Template {
            id: crate::ids::TemplateId::from_uuid(Uuid::from_u128(33)),
            organization: ORG,
            provider,
            location,
            visit_type: KIND,
            weekly: WeeklyTemplate {
                weekday: Weekday::Mon,
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
                minutes: 20,
                valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                valid_until: None,
            },
        }])
    });
    r.expect_location().returning(move |_| {
        Ok(Some(Location {
            id: location,
            organization: ORG,
            name: "Main Street".into(),
            address: "1 Main Street".into(),
            time_zone: "Europe/Berlin".parse().unwrap(),
        }))
    });
    // The Monday of 14 December is a day off.
    r.expect_days_off().returning(move |_, _, _| {
        Ok(vec![DayOff {
            provider,
            date: NaiveDate::from_ymd_opt(2026, 12, 14).unwrap(),
            reason: None,
        }])
    });
    let added = Arc::new(Mutex::new(Vec::new()));
    let a = added.clone();
    r.expect_add_slots().returning(move |slots| {
        a.lock().unwrap().extend(slots.iter().map(|s| s.time.start));
        Ok(slots.len() as u64)
    });
    let (s, _) = service(r);
    // From Friday 4 December for 17 days: Mondays 7, 14 (off) and 21 December.
    let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    assert_eq!(block_on(s.generate_slots(ORG, today, 17)).unwrap(), 18);
    let starts = added.lock().unwrap().clone();
    assert_eq!(
        starts[0],
        Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap(),
        "09:00 Berlin"
    );
    assert!(
        starts
            .iter()
            .all(|t| t.date_naive() != NaiveDate::from_ymd_opt(2026, 12, 14).unwrap())
    );
}

#[test]
fn a_search_starts_now_at_the_earliest_and_hides_staff_only_visits_from_patients() {
    for (online, who, expected) in [
        (OnlineBooking::Everyone, ann(), Ok(1)),
        (OnlineBooking::StaffOnly, ann(), Err("staff_only")),
        (
            OnlineBooking::StaffOnly,
            staff(StaffRole::FrontDesk, ORG),
            Ok(1),
        ),
        (
            OnlineBooking::Everyone,
            staff(StaffRole::Clinician, ORG),
            Err("not_found"),
        ),
    ] {
        let mut r = MockSchedulingRepository::new();
        r.expect_visit_type()
            .returning(move |_| Ok(Some(kind(online))));
        r.expect_open_slots()
            .withf(|org, q| *org == ORG && q.from == now() && q.limit == 100)
            .returning(|_, _| Ok(vec![slot(now() + Duration::days(9))]));
        let (s, _) = service(r);
        let query = SlotQuery {
            visit_type: KIND,
            provider: None,
            location: None,
            from: now() - Duration::days(30),
            until: None,
            limit: 1_000,
        };
        let patient = matches!(who, Actor::Staff { .. }).then_some(ANN);
        let found = block_on(s.search(&who, patient, query, None))
            .map(|v| v.len())
            .map_err(|e| e.code());
        assert_eq!(found, expected, "{who:?} {online:?}");
    }
}
