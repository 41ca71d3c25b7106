//! The messaging rules with mocked ports: who may read and write a thread (through
//! `decide`), the daily limit, closed threads, idempotent sends, and the text of a message.

use super::*;
use crate::access::{Action, Actor, GrantScope, Target, decide};
use crate::account::{MockAccountRepository, MockMailer, MockSecretSource, StaffRole, TokenDigest};
use crate::audit::{AccessEvent, MockAccessLog, Outcome};
use crate::clock::FixedClock;
use crate::ids::IdGenerator;
use crate::patient::{AdministrativeSex, MockPatientRepository, Patient, PersonName};
use crate::text::{MessageText, Mrn, PoolName, Subject, TextError};
use chrono::{NaiveDate, TimeZone};
use futures_executor::block_on;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}
const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
const BO: PatientId = PatientId::from_uuid(Uuid::from_u128(11));
const ANN_ACCOUNT: AccountId = AccountId::from_uuid(Uuid::from_u128(20));
const DOC: AccountId = AccountId::from_uuid(Uuid::from_u128(30));
const CLERK: AccountId = AccountId::from_uuid(Uuid::from_u128(31));
const POOL: PoolId = PoolId::from_uuid(Uuid::from_u128(40));
const THREAD: ThreadId = ThreadId::from_uuid(Uuid::from_u128(50));

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
fn staff(account: AccountId, organization: OrganizationId) -> Actor {
    Actor::Staff {
        account,
        role: StaffRole::Clinician,
        organization,
    }
}
fn proxy(actions: &[Action]) -> Actor {
    Actor::Proxy {
        account: AccountId::from_uuid(Uuid::from_u128(21)),
        grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(22)),
        patient: ANN,
        scope: GrantScope {
            kinds: [crate::record::RecordKind::Observation].into(),
            actions: actions.iter().copied().collect(),
            labels: crate::record::SensitivityLabels::empty(),
            valid_from: now() - Duration::days(1),
            valid_until: now() + Duration::days(1),
        },
    }
}
use chrono::Duration;

fn pool() -> CarePool {
    CarePool {
        id: POOL,
        organization: ORG,
        name: PoolName::parse("Primary care").unwrap(),
        answer_days: 2,
        staff: [DOC].into(),
        active: true,
    }
}

fn thread(state: ThreadState) -> Thread {
    Thread {
        id: THREAD,
        patient: ANN,
        organization: ORG,
        pool: POOL,
        subject: Subject::parse("Dizzy").unwrap(),
        started_by: ANN_ACCOUNT,
        started_at: now(),
        claimed_by: None,
        state,
        last_from: Side::Patient,
        last_at: now(),
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

/// A service over `messages`, recording the audit entries it writes.
fn service(
    messages: MockMessageRepository,
    limit: u32,
) -> (MessagingService, Arc<Mutex<Vec<AccessEvent>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    let mut log = MockAccessLog::new();
    log.expect_record().returning(move |e| {
        k.lock().unwrap().push(e);
        Ok(())
    });
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|_| Ok(Some(chart())));
    let mut secrets = MockSecretSource::new();
    secrets
        .expect_digest()
        .returning(|t| TokenDigest([t.expose().len() as u8; 32]));
    let s = MessagingService::new(MessagingPorts {
        messages: Arc::new(messages),
        patients: Arc::new(patients),
        accounts: Arc::new(MockAccountRepository::new()),
        log: Arc::new(log),
        mailer: Arc::new(MockMailer::new()),
        secrets: Arc::new(secrets),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(Ids),
        public_url: String::new(),
        threads_per_day: limit,
    });
    (s, kept)
}

#[test]
fn a_thread_is_the_patients_and_its_pools_and_a_proxys_only_with_the_messaging_grant() {
    let staff_of_pool: std::collections::BTreeSet<AccountId> = [DOC].into();
    let target = |patient| Target::Thread {
        patient,
        organization: ORG,
        pool_staff: &staff_of_pool,
    };
    let other_org = OrganizationId::from_uuid(Uuid::from_u128(2));
    for action in [Action::ReadMessages, Action::Message] {
        let may =
            |actor: &Actor, patient| decide(actor, action, target(patient), now()).is_allowed();
        assert!(may(&ann(), ANN), "the patient's own");
        assert!(!may(&ann(), BO), "not another patient's");
        assert!(may(&staff(DOC, ORG), ANN), "staff of the pool");
        assert!(!may(&staff(CLERK, ORG), ANN), "staff of another pool");
        assert!(!may(&staff(DOC, other_org), ANN), "another organisation");
        assert!(
            may(&proxy(&[Action::Read, Action::Message]), ANN),
            "with the grant"
        );
        assert!(
            !may(&proxy(&[Action::Read, Action::Export]), ANN),
            "without it"
        );
        let link = Actor::ShareLink {
            grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(23)),
            patient: ANN,
            scope: match proxy(&[Action::Read, Action::Message]) {
                Actor::Proxy { scope, .. } => scope,
                _ => unreachable!(),
            },
        };
        assert!(!may(&link, ANN), "a share link never");
    }
}

#[test]
fn the_daily_limit_refuses_a_new_thread_and_stores_nothing() {
    let mut repo = MockMessageRepository::new();
    repo.expect_pool().returning(|_| Ok(Some(pool())));
    repo.expect_started_since().returning(|_, _| Ok(2));
    repo.expect_start().never();
    let (s, _) = service(repo, 2);
    let refused = block_on(s.start_thread(&ann(), POOL, "Subject", "Text", None, None));
    assert!(matches!(
        refused,
        Err(MessagingError::TooManyThreads { limit: 2 })
    ));
}

#[test]
fn a_proxy_without_the_grant_is_refused_as_not_found_and_the_attempt_is_audited() {
    let mut repo = MockMessageRepository::new();
    repo.expect_start().never();
    let (s, kept) = service(repo, 10);
    let refused =
        block_on(s.start_thread(&proxy(&[Action::Read]), POOL, "Subject", "Text", None, None));
    assert!(matches!(refused, Err(MessagingError::NotFound)));
    let events = kept.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Denied);
    assert_eq!(events[0].patient, Some(ANN));
}

#[test]
fn a_closed_thread_takes_no_reply() {
    let mut repo = MockMessageRepository::new();
    let closed = ThreadState::Closed { at: now(), by: DOC };
    repo.expect_thread()
        .returning(move |_| Ok(Some(thread(closed))));
    repo.expect_pool().returning(|_| Ok(Some(pool())));
    repo.expect_send().never();
    let (s, _) = service(repo, 10);
    let refused = block_on(s.reply(&ann(), THREAD, "Thanks", None, None));
    assert!(matches!(refused, Err(MessagingError::Closed)));
}

#[test]
fn a_retried_send_answers_the_first_message_and_a_reused_key_is_refused() {
    let first = Message {
        id: MessageId::from_uuid(Uuid::from_u128(60)),
        thread: THREAD,
        author: Author {
            account: ANN_ACCOUNT,
            side: Side::Patient,
            grant: None,
            role: None,
        },
        body: MessageText::parse("Thanks").unwrap(),
        sent_at: now(),
    };
    // The fingerprint of ("reply", thread, "Thanks") under the test digest: its length.
    let same = ["reply", &THREAD.to_string(), "Thanks"]
        .join("\u{1f}")
        .len() as u8;
    for (stored, expect_replay) in [(same, true), (same.wrapping_add(1), false)] {
        let mut repo = MockMessageRepository::new();
        repo.expect_thread()
            .returning(|_| Ok(Some(thread(ThreadState::Open))));
        repo.expect_pool().returning(|_| Ok(Some(pool())));
        let f = first.clone();
        repo.expect_keyed()
            .returning(move |_, _| Ok(Some(([stored; 32], thread(ThreadState::Open), f.clone()))));
        repo.expect_send().never();
        let (s, _) = service(repo, 10);
        let answer = block_on(s.reply(&ann(), THREAD, "Thanks", Some("k-1"), None));
        if expect_replay {
            let w = answer.unwrap();
            assert!(w.replayed);
            assert_eq!(w.value.message.id, first.id, "the first answer");
        } else {
            assert!(matches!(answer, Err(MessagingError::KeyReused)));
        }
    }
}

#[test]
fn a_message_keeps_its_line_breaks_and_refuses_other_control_characters() {
    assert_eq!(
        MessageText::parse("  Hello\r\nsecond line\n\n\tthird  ")
            .unwrap()
            .as_str(),
        "Hello\nsecond line\n\n\tthird"
    );
    assert_eq!(MessageText::parse(" \n "), Err(TextError::Empty));
    assert_eq!(
        MessageText::parse("bell\u{7}"),
        Err(TextError::BadCharacters)
    );
    assert!(MessageText::parse(&"a".repeat(10_000)).is_ok());
    assert_eq!(
        MessageText::parse(&"a".repeat(10_001)),
        Err(TextError::TooLong { max: 10_000 })
    );
    assert!(format!("{:?}", MessageText::parse("private").unwrap()).contains("redacted"));
}
