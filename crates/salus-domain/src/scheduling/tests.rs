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

type Kept = Arc<Mutex<Vec<AccessEvent>>>;
type Mails = Arc<Mutex<Vec<crate::account::OutgoingEmail>>>;

fn ann_account() -> crate::account::Account {
    use crate::account::{Account, AccountState, ChartLink, PasswordHash, Role};
    use crate::text::Email;
    Account {
        id: ANN_ACCOUNT,
        email: Email::parse("ann@example.test").unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now() },
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$stored"),
        created_at: now(),
    }
}

/// A service over `schedule`, keeping its audit entries.
fn service(schedule: MockSchedulingRepository) -> (SchedulingService, Kept) {
    let (s, kept, _) = service_with_mail(schedule);
    (s, kept)
}

/// A service over `schedule`, keeping its audit entries and the emails it sends.
fn service_with_mail(schedule: MockSchedulingRepository) -> (SchedulingService, Kept, Mails) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    let mut log = MockAccessLog::new();
    log.expect_record().returning(move |e| {
        k.lock().unwrap().push(e);
        Ok(())
    });
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|_| Ok(Some(chart())));
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    let mut mailer = crate::account::MockMailer::new();
    mailer.expect_send().returning(move |e| {
        m.lock().unwrap().push(e);
        Ok(())
    });
    let mut accounts = crate::account::MockAccountRepository::new();
    accounts
        .expect_linked_to()
        .returning(|_| Ok(vec![ann_account()]));
    let s = SchedulingService::new(SchedulingPorts {
        schedule: Arc::new(schedule),
        patients: Arc::new(patients),
        log: Arc::new(log),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(Ids),
        accounts: Arc::new(accounts),
        mailer: Arc::new(mailer),
        public_url: "https://portal.example.test".into(),
        cancel_cutoff_hours: CANCEL_CUTOFF_HOURS,
        horizon_days: 90,
    });
    (s, kept, mails)
}

fn location() -> Location {
    Location {
        id: LocationId::from_uuid(Uuid::from_u128(32)),
        organization: ORG,
        name: "Main Street".into(),
        address: "1 Main Street".into(),
        time_zone: "Europe/Berlin".parse().unwrap(),
    }
}

/// What showing an appointment reads: its place, provider, the cut-off and the waitlist.
fn with_places(r: &mut MockSchedulingRepository, cutoff: Option<u32>) {
    r.expect_location().returning(|_| Ok(Some(location())));
    r.expect_provider().returning(|_| {
        Ok(Some(Provider {
            id: ProviderId::from_uuid(Uuid::from_u128(31)),
            organization: ORG,
            practitioner: None,
            name: "Dr Rui Costa".into(),
            active: true,
            video_url: None,
        }))
    });
    r.expect_cancel_cutoff().returning(move |_| Ok(cutoff));
    r.expect_waitlist_entry().returning(|_| Ok(None));
    r.expect_leave_waitlist().returning(|_| Ok(false));
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
    r.expect_upcoming_of()
        .returning(move |_, _| Ok(held.clone()));
    r.expect_book().returning(move |_| Ok(store_says));
    with_places(&mut r, None);
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
                let a = a.appointment;
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
        typed.unwrap().appointment.reason,
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
        r.expect_waiting_for().returning(|_, _, _| Ok(vec![]));
        r.expect_visit_type()
            .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
        with_places(&mut r, None);
        let (s, _) = service(r);
        let reason = matches!(who, Actor::Staff { .. }).then_some("The doctor is ill");
        let answer = block_on(s.cancel(&who, BOOKED, reason, None))
            .map(|_| ())
            .map_err(|e| e.code());
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
    r.expect_upcoming_of()
        .returning(|_, _| Ok(vec![booked(now() + Duration::days(5))]));
    r.expect_reschedule().returning(|_, _| Ok(false));
    r.expect_cancel_cutoff().returning(|_| Ok(None));
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
        // Each location of the slots found is read once, for its zone.
        r.expect_location()
            .times(0..=1)
            .returning(|_| Ok(Some(location())));
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
            .map(|(v, _)| v.len())
            .map_err(|e| e.code());
        assert_eq!(found, expected, "{who:?} {online:?}");
    }
}

#[test]
fn the_organisations_own_cut_off_wins_over_the_deployments() {
    for (cutoff, hours_ahead, expected) in [
        (Some(48), 30, Err("past_cutoff")),
        (Some(2), 3, Ok(())),
        (None, 23, Err("past_cutoff")),
    ] {
        let mut r = MockSchedulingRepository::new();
        r.expect_appointment()
            .returning(move |_| Ok(Some(booked(now() + Duration::hours(hours_ahead)))));
        r.expect_cancel().returning(|_, _, _, _| Ok(true));
        r.expect_waiting_for().returning(|_, _, _| Ok(vec![]));
        r.expect_visit_type()
            .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
        with_places(&mut r, cutoff);
        let (s, _) = service(r);
        let answer = block_on(s.cancel(&ann(), BOOKED, None, None))
            .map(|_| ())
            .map_err(|e| e.code());
        assert_eq!(
            answer, expected,
            "cut-off {cutoff:?}, {hours_ahead} h ahead"
        );
    }
}

#[test]
fn a_cancellation_tells_those_waiting_with_a_later_visit_and_says_nothing_clinical() {
    let waiting_patient = PatientId::from_uuid(Uuid::from_u128(11));
    let waiting = AppointmentId::from_uuid(Uuid::from_u128(51));
    let mut r = MockSchedulingRepository::new();
    r.expect_appointment()
        .returning(|_| Ok(Some(booked(now() + Duration::days(3)))));
    r.expect_cancel().returning(|_, _, _, _| Ok(true));
    r.expect_visit_type()
        .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
    // Those waiting for this kind with a visit after the freed time.
    r.expect_waiting_for()
        .withf(|org, k, after| *org == ORG && *k == KIND && *after == now() + Duration::days(3))
        .returning(move |_, _, _| {
            Ok(vec![WaitlistEntry {
                appointment: waiting,
                organization: ORG,
                patient: waiting_patient,
                visit_type: KIND,
                created_at: now() - Duration::days(1),
                notified_at: None,
            }])
        });
    let told = Arc::new(Mutex::new(Vec::new()));
    let t = told.clone();
    r.expect_mark_notified().returning(move |ids, _| {
        t.lock().unwrap().extend_from_slice(ids);
        Ok(())
    });
    with_places(&mut r, None);
    let (s, kept, mails) = service_with_mail(r);
    block_on(s.cancel(&ann(), BOOKED, None, None)).unwrap();
    assert_eq!(*told.lock().unwrap(), vec![waiting]);
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "An earlier appointment time opened");
    assert!(!mails[0].body.contains("Check-up"), "no kind of visit");
    assert!(
        mails[0]
            .body
            .contains("https://portal.example.test/appointments")
    );
    assert_eq!(kept.lock().unwrap()[0].action_code(), "cancel_appointment");
}

#[test]
fn a_reminder_says_when_and_where_only_and_is_sent_once() {
    let mut appointment = booked(now() + Duration::hours(20));
    appointment.reason = "Worried about my HIV test".into();
    for (taken, expected) in [(true, 1), (false, 0)] {
        let mut r = MockSchedulingRepository::new();
        let a = appointment.clone();
        r.expect_due_reminders()
            .withf(|from, until| *from == now() && *until == now() + Duration::hours(24))
            .returning(move |_, _| Ok(vec![a.clone()]));
        r.expect_take_reminder().returning(move |_, _| Ok(taken));
        r.expect_location().returning(|_| Ok(Some(location())));
        r.expect_visit_type()
            .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
        let (s, _, mails) = service_with_mail(r);
        assert_eq!(block_on(s.send_reminders(24)).unwrap(), expected);
        let mails = mails.lock().unwrap();
        assert_eq!(mails.len() as u64, expected);
        if let Some(m) = mails.first() {
            // 08:00 UTC on 5 December is 09:00 in Berlin.
            assert!(
                m.body.contains("Saturday 5 December 2026 at 09:00"),
                "{}",
                m.body
            );
            assert!(m.body.contains("Main Street, 1 Main Street"));
            for secret in ["HIV", "Check-up", "Costa"] {
                assert!(!m.body.contains(secret), "{secret} in a reminder");
            }
        }
    }
}

#[test]
fn only_the_front_desk_and_administrators_keep_the_schedule() {
    for (who, expected) in [
        (staff(StaffRole::FrontDesk, ORG), Ok(())),
        (staff(StaffRole::OrganizationAdmin, ORG), Ok(())),
        (staff(StaffRole::Clinician, ORG), Err("forbidden")),
        (staff(StaffRole::Billing, ORG), Err("forbidden")),
        (ann(), Err("forbidden")),
        (proxy(&[Action::Book]), Err("forbidden")),
    ] {
        let mut r = MockSchedulingRepository::new();
        r.expect_create_location().returning(|_| Ok(()));
        let (s, _) = service(r);
        let made = block_on(s.add_location(
            &who,
            NewLocation {
                name: "Main Street",
                address: "1 Main Street",
                time_zone: "Europe/Berlin",
            },
        ))
        .map(|l| assert_eq!(l.organization, ORG))
        .map_err(|e| e.code());
        assert_eq!(made, expected, "{who:?}");
    }
}

#[test]
fn set_up_fields_are_checked_with_a_code_each() {
    let desk = staff(StaffRole::FrontDesk, ORG);
    let mut r = MockSchedulingRepository::new();
    r.expect_create_visit_type().returning(|_| Ok(()));
    r.expect_create_location().returning(|_| Ok(()));
    r.expect_create_provider().returning(|_| Ok(()));
    let (s, _) = service(r);
    let zone = block_on(s.add_location(
        &desk,
        NewLocation {
            name: "Main",
            address: "1 Main Street",
            time_zone: "Mars/Olympus",
        },
    ));
    assert_eq!(zone.unwrap_err().code(), "invalid_time_zone");
    let room = block_on(s.add_provider(
        &desk,
        NewProvider {
            practitioner: "",
            name: "Dr Costa",
            video_url: "http://insecure.example",
        },
    ));
    assert_eq!(room.unwrap_err().code(), "invalid_video_url");
    let good = NewVisitType {
        name: "New patient",
        minutes: "20",
        mode: "in_person",
        online: "everyone",
        max_per_patient: "1",
        bring: "Your insurance card",
    };
    assert_eq!(block_on(s.add_visit_type(&desk, good)).unwrap().minutes, 20);
    for (bad, code) in [
        (
            NewVisitType {
                minutes: "7",
                ..good
            },
            "invalid_minutes",
        ),
        (
            NewVisitType {
                minutes: "300",
                ..good
            },
            "invalid_minutes",
        ),
        (
            NewVisitType {
                mode: "phone",
                ..good
            },
            "invalid_mode",
        ),
        (
            NewVisitType {
                online: "anyone",
                ..good
            },
            "invalid_online",
        ),
        (
            NewVisitType {
                max_per_patient: "0",
                ..good
            },
            "invalid_max_per_patient",
        ),
        (NewVisitType { name: " ", ..good }, "invalid_name"),
    ] {
        assert_eq!(
            block_on(s.add_visit_type(&desk, bad)).unwrap_err().code(),
            code
        );
    }
}

#[test]
fn a_video_template_needs_a_provider_with_a_video_room() {
    let provider = ProviderId::from_uuid(Uuid::from_u128(31));
    let mut r = MockSchedulingRepository::new();
    r.expect_locations_of().returning(|_| Ok(vec![location()]));
    r.expect_providers_of().returning(move |_| {
        Ok(vec![Provider {
            id: provider,
            organization: ORG,
            practitioner: None,
            name: "Dr Costa".into(),
            active: true,
            video_url: None,
        }])
    });
    r.expect_visit_types_of().returning(|_| {
        Ok(vec![VisitType {
            mode: VisitMode::Video,
            ..kind(OnlineBooking::Everyone)
        }])
    });
    r.expect_templates_of().returning(|_| Ok(vec![]));
    r.expect_cancel_cutoff().returning(|_| Ok(None));
    let (s, _) = service(r);
    let ids = (
        provider.to_string(),
        location().id.to_string(),
        KIND.to_string(),
    );
    let template = NewTemplate {
        provider: &ids.0,
        location: &ids.1,
        visit_type: &ids.2,
        weekday: "monday",
        start: "09:00",
        end: "12:00",
        valid_from: "",
        valid_until: "",
    };
    let refused = block_on(s.add_template(&staff(StaffRole::FrontDesk, ORG), template));
    assert_eq!(refused.unwrap_err().code(), "no_video_room");
    let bad_end = NewTemplate {
        end: "08:00",
        ..template
    };
    let refused = block_on(s.add_template(&staff(StaffRole::FrontDesk, ORG), bad_end));
    assert_eq!(
        refused.unwrap_err().code(),
        "no_video_room",
        "checked first"
    );
}

#[test]
fn a_day_off_removes_that_days_open_slots_in_the_locations_zone() {
    use chrono::{NaiveTime, Weekday};
    let provider = ProviderId::from_uuid(Uuid::from_u128(31));
    let mut r = MockSchedulingRepository::new();
    r.expect_locations_of().returning(|_| Ok(vec![location()]));
    r.expect_providers_of().returning(move |_| {
        Ok(vec![Provider {
            id: provider,
            organization: ORG,
            practitioner: None,
            name: "Dr Costa".into(),
            active: true,
            video_url: None,
        }])
    });
    r.expect_visit_types_of()
        .returning(|_| Ok(vec![kind(OnlineBooking::Everyone)]));
    r.expect_templates_of().returning(move |_| {
        Ok(vec![Template {
            id: crate::ids::TemplateId::from_uuid(Uuid::from_u128(33)),
            organization: ORG,
            provider,
            location: location().id,
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
    r.expect_cancel_cutoff().returning(|_| Ok(None));
    r.expect_add_day_off()
        .withf(|d| d.date == NaiveDate::from_ymd_opt(2026, 12, 14).unwrap())
        .returning(|_| Ok(()));
    // Midnight to midnight in Berlin (UTC+1 in December).
    r.expect_remove_open_slots()
        .withf(move |p, from, until| {
            *p == provider
                && *from == Utc.with_ymd_and_hms(2026, 12, 13, 23, 0, 0).unwrap()
                && *until == Utc.with_ymd_and_hms(2026, 12, 14, 23, 0, 0).unwrap()
        })
        .returning(|_, _, _| Ok(9));
    let (s, _) = service(r);
    let removed = block_on(s.add_day_off(
        &staff(StaffRole::FrontDesk, ORG),
        &provider.to_string(),
        "2026-12-14",
        "Holiday",
    ));
    assert_eq!(removed.unwrap(), 9);
}

#[test]
fn a_reschedule_stays_within_the_visit_type() {
    let mut r = MockSchedulingRepository::new();
    r.expect_appointment()
        .returning(|_| Ok(Some(booked(now() + Duration::days(5)))));
    let other = VisitTypeId::from_uuid(Uuid::from_u128(41));
    r.expect_slot().returning(move |_| {
        Ok(Some(Slot {
            visit_type: other,
            ..slot(now() + Duration::days(3))
        }))
    });
    r.expect_visit_type()
        .returning(|_| Ok(Some(kind(OnlineBooking::Everyone))));
    r.expect_cancel_cutoff().returning(|_| Ok(None));
    let (s, kept) = service(r);
    let answer = block_on(s.reschedule(&ann(), BOOKED, SLOT, None)).unwrap_err();
    assert_eq!(answer.code(), "other_visit_type");
    assert!(kept.lock().unwrap().is_empty());
}

#[test]
fn a_video_visits_reminder_points_to_the_link_not_the_address() {
    let mut r = MockSchedulingRepository::new();
    r.expect_due_reminders()
        .returning(|_, _| Ok(vec![booked(now() + Duration::hours(20))]));
    r.expect_take_reminder().returning(|_, _| Ok(true));
    r.expect_location().returning(|_| Ok(Some(location())));
    r.expect_visit_type().returning(|_| {
        Ok(Some(VisitType {
            mode: VisitMode::Video,
            ..kind(OnlineBooking::Everyone)
        }))
    });
    let (s, _, mails) = service_with_mail(r);
    assert_eq!(block_on(s.send_reminders(24)).unwrap(), 1);
    let body = &mails.lock().unwrap()[0].body;
    assert!(body.contains("a video call"), "{body}");
    assert!(!body.contains("1 Main Street"), "{body}");
}

#[test]
fn a_provider_links_to_the_practitioner_directory_of_the_organisation_only() {
    let known = crate::ids::PractitionerId::from_uuid(Uuid::from_u128(60));
    let mut r = MockSchedulingRepository::new();
    r.expect_practitioners_of()
        .returning(move |_| Ok(vec![(known, "Dr. Rui Costa".to_owned())]));
    r.expect_create_provider().returning(|_| Ok(()));
    let (s, _) = service(r);
    let desk = staff(StaffRole::FrontDesk, ORG);
    let linked = block_on(s.add_provider(
        &desk,
        NewProvider {
            practitioner: &known.to_string(),
            name: "",
            video_url: "",
        },
    ))
    .unwrap();
    assert_eq!(
        (linked.practitioner, linked.name.as_str()),
        (Some(known), "Dr. Rui Costa"),
        "the directory's name when none is given"
    );
    let elsewhere = crate::ids::PractitionerId::from_uuid(Uuid::from_u128(61));
    let refused = block_on(s.add_provider(
        &desk,
        NewProvider {
            practitioner: &elsewhere.to_string(),
            name: "Dr Who",
            video_url: "",
        },
    ));
    assert_eq!(refused.unwrap_err().code(), "invalid_practitioner");
}
