//! The messaging rules with mocked ports: who may read and write a thread (through
//! `decide`), the daily limit, closed threads, idempotent sends, and the text of a message.

use super::refill::MockRefillRepository;
use super::*;
use crate::access::{Action, Actor, GrantScope, Target, decide};
use crate::account::{
    Account, MockAccountRepository, MockMailer, MockSecretSource, OutgoingEmail, StaffRole,
    TokenDigest,
};
use crate::audit::{AccessEvent, MockAccessLog, Outcome};
use crate::clock::FixedClock;
use crate::ids::IdGenerator;
use crate::patient::{AdministrativeSex, MockPatientRepository, Patient, PersonName};
use crate::record::MockRecordRepository;
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

/// The test digest: cheap, but every byte counts.
fn test_digest(bytes: &[u8]) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        d[i % 32] = d[i % 32].wrapping_mul(31).wrapping_add(*b);
    }
    d
}

/// A service over `messages`, recording the audit entries it writes.
fn service(
    messages: MockMessageRepository,
    limit: u32,
) -> (MessagingService, Arc<Mutex<Vec<AccessEvent>>>) {
    let (s, kept, _) = service_with(
        messages,
        MockRefillRepository::new(),
        MockRecordRepository::new(),
        limit,
    );
    (s, kept)
}

/// A service over these repositories, recording the audit entries and the emails.
#[allow(clippy::type_complexity, reason = "a test's plumbing")]
fn service_with(
    messages: MockMessageRepository,
    refills: MockRefillRepository,
    records: MockRecordRepository,
    limit: u32,
) -> (
    MessagingService,
    Arc<Mutex<Vec<AccessEvent>>>,
    Arc<Mutex<Vec<OutgoingEmail>>>,
) {
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
        .returning(|t| TokenDigest(test_digest(t.expose().as_bytes())));
    secrets
        .expect_digest_bytes()
        .returning(|b| TokenDigest(test_digest(b)));
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    let mut mailer = MockMailer::new();
    mailer.expect_send().returning(move |e| {
        m.lock().unwrap().push(e);
        Ok(())
    });
    let mut accounts = MockAccountRepository::new();
    accounts
        .expect_linked_to()
        .returning(|_| Ok(vec![ann_account()]));
    let s = MessagingService::new(MessagingPorts {
        messages: Arc::new(messages),
        refills: Arc::new(refills),
        records: Arc::new(records),
        patients: Arc::new(patients),
        accounts: Arc::new(accounts),
        log: Arc::new(log),
        mailer: Arc::new(mailer),
        secrets: Arc::new(secrets),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(Ids),
        public_url: String::new(),
        threads_per_day: limit,
        max_file_bytes: 64,
    });
    (s, kept, mails)
}

fn text(body: &str) -> Draft<'_> {
    Draft {
        body,
        ..Draft::default()
    }
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
    let refused = block_on(s.start_thread(&ann(), POOL, "Subject", text("Text"), None));
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
        block_on(s.start_thread(&proxy(&[Action::Read]), POOL, "Subject", text("Text"), None));
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
    let refused = block_on(s.reply(&ann(), THREAD, text("Thanks"), None));
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
        attachments: vec![],
    };
    // The fingerprint of ("reply", thread, "Thanks") under the test digest.
    let same = test_digest(
        ["reply", &THREAD.to_string(), "Thanks"]
            .join("\u{1f}")
            .as_bytes(),
    );
    let mut other = same;
    other[0] = other[0].wrapping_add(1);
    for (stored, expect_replay) in [(same, true), (other, false)] {
        let mut repo = MockMessageRepository::new();
        repo.expect_thread()
            .returning(|_| Ok(Some(thread(ThreadState::Open))));
        repo.expect_pool().returning(|_| Ok(Some(pool())));
        let f = first.clone();
        repo.expect_keyed()
            .returning(move |_, _| Ok(Some((stored, thread(ThreadState::Open), f.clone()))));
        repo.expect_send().never();
        let (s, _) = service(repo, 10);
        let answer = block_on(s.reply(
            &ann(),
            THREAD,
            Draft {
                key: Some("k-1"),
                ..text("Thanks")
            },
            None,
        ));
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

fn ann_account() -> Account {
    use crate::account::{AccountState, ChartLink, PasswordHash, Role};
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

fn pdf(name: &str, extra: &str) -> IncomingFile {
    IncomingFile {
        name: name.into(),
        content: format!("%PDF-1.7 {extra}").into_bytes(),
    }
}

#[test]
fn files_are_refused_by_content_and_size_before_anything_is_stored() {
    for (files, code) in [
        (
            vec![IncomingFile {
                name: "scan.pdf".into(),
                content: b"<html><body>not a pdf</body></html>".to_vec(),
            }],
            "unsupported_file_type",
        ),
        (vec![pdf("big.pdf", &"x".repeat(100))], "file_too_large"),
        (
            (0..6).map(|i| pdf("a.pdf", &i.to_string())).collect(),
            "too_many_files",
        ),
    ] {
        let mut repo = MockMessageRepository::new();
        repo.expect_thread()
            .returning(|_| Ok(Some(thread(ThreadState::Open))));
        repo.expect_pool().returning(|_| Ok(Some(pool())));
        repo.expect_send().never();
        let (s, _) = service(repo, 10);
        let draft = Draft {
            files,
            ..text("See attached")
        };
        let refused = block_on(s.reply(&ann(), THREAD, draft, None)).unwrap_err();
        assert_eq!(refused.code(), code);
    }
}

#[test]
fn accepted_files_are_stored_with_their_message_and_count_in_the_fingerprint() {
    let kept_files = Arc::new(Mutex::new(Vec::new()));
    let k = kept_files.clone();
    let mut repo = MockMessageRepository::new();
    repo.expect_thread()
        .returning(|_| Ok(Some(thread(ThreadState::Open))));
    repo.expect_pool().returning(|_| Ok(Some(pool())));
    repo.expect_keyed().returning(|_, _| Ok(None));
    repo.expect_send().returning(move |m, files, key| {
        assert_eq!(m.attachments.len(), files.len());
        k.lock()
            .unwrap()
            .push((files.to_vec(), key.unwrap().fingerprint));
        Ok(Some(Stored::New(m.clone())))
    });
    let (s, kept) = service(repo, 10);
    for extra in ["one", "two"] {
        let draft = Draft {
            files: vec![pdf("../results", extra)],
            key: Some("k"),
            ..text("See attached")
        };
        let sent = block_on(s.reply(&ann(), THREAD, draft, None)).unwrap();
        assert_eq!(sent.value.message.attachments[0].name, "results.pdf");
        assert_eq!(sent.value.message.attachments[0].kind, FileKind::Pdf);
    }
    let stored = kept_files.lock().unwrap();
    assert_eq!(stored[0].0[0].content, b"%PDF-1.7 one");
    assert_ne!(stored[0].1, stored[1].1, "another file is another send");
    assert_eq!(kept.lock().unwrap().len(), 2, "each send audited");
}

#[test]
fn a_file_is_downloaded_only_by_its_threads_readers_and_every_look_is_audited() {
    let file = Attachment {
        id: crate::ids::AttachmentId::from_uuid(Uuid::from_u128(70)),
        name: "x-ray.png".into(),
        kind: FileKind::Png,
        size: 10,
    };
    let f = file.clone();
    let mut repo = MockMessageRepository::new();
    repo.expect_attachment()
        .returning(move |_| Ok(Some((f.clone(), THREAD))));
    repo.expect_thread()
        .returning(|_| Ok(Some(thread(ThreadState::Open))));
    repo.expect_pool().returning(|_| Ok(Some(pool())));
    repo.expect_attachment_bytes()
        .withf(|_, offset, len| *offset == 4 && *len == 6)
        .returning(|_, _, _| Ok(b"bytes!".to_vec()));
    let (s, kept) = service(repo, 10);
    for outsider in [staff(CLERK, ORG), proxy(&[Action::Read])] {
        let refused = block_on(s.download(&outsider, file.id, None));
        assert!(matches!(refused, Err(MessagingError::NotFound)));
    }
    let mine = block_on(s.download(&ann(), file.id, None)).unwrap();
    assert_eq!(mine.attachment, file);
    assert_eq!(block_on(mine.chunk(4, 6)).unwrap(), b"bytes!");
    assert!(
        block_on(mine.chunk(10, 6)).unwrap().is_empty(),
        "past its end"
    );
    assert!(block_on(s.download(&staff(DOC, ORG), file.id, None)).is_ok());
    let outcomes: Vec<Outcome> = kept.lock().unwrap().iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Denied,
            Outcome::Denied,
            Outcome::Allowed,
            Outcome::Allowed
        ]
    );
}

const LISINOPRIL: crate::ids::RecordId = crate::ids::RecordId::from_uuid(Uuid::from_u128(80));
const REFILL: crate::ids::RefillId = crate::ids::RefillId::from_uuid(Uuid::from_u128(81));

fn medication(
    patient: PatientId,
    status: crate::record::MedicationStatus,
) -> crate::record::ClinicalRecord {
    use crate::record::{
        ClinicalRecord, Medication, Period, RecordBody, RecordMeta, RecordSource, ReleaseState,
        SensitivityLabels,
    };
    ClinicalRecord {
        meta: RecordMeta {
            id: LISINOPRIL,
            patient_id: patient,
            organization_id: ORG,
            encounter_id: None,
            source: RecordSource::default(),
            source_identifier: None,
            sensitivity: SensitivityLabels::empty(),
            release: ReleaseState::Released {
                at: now() - Duration::days(3),
            },
            filed_at: now() - Duration::days(3),
        },
        body: RecordBody::Medication(Medication {
            medication: crate::text::Code::new(None, None, "Lisinopril 10 mg").unwrap(),
            dosage: None,
            status,
            authored_on: None,
            period: Period::default(),
        }),
    }
}

fn records_with(record: crate::record::ClinicalRecord) -> MockRecordRepository {
    let mut records = MockRecordRepository::new();
    records
        .expect_find()
        .returning(move |_| Ok(Some(record.clone())));
    records
}

fn new_pharmacy() -> PharmacyChoice<'static> {
    PharmacyChoice::New(NewPharmacy {
        name: "Main St Pharmacy",
        address: "1 Main St, Springfield",
        phone: "555-0100",
        save: true,
    })
}

#[test]
fn a_refill_is_asked_for_an_active_medication_of_ones_own_chart_only() {
    use crate::record::MedicationStatus;
    for (record, who, expected) in [
        (
            medication(ANN, MedicationStatus::Stopped),
            ann(),
            "medication_not_active",
        ),
        (
            medication(ANN, MedicationStatus::Completed),
            ann(),
            "medication_not_active",
        ),
        (medication(BO, MedicationStatus::Active), ann(), "not_found"),
        (
            medication(ANN, MedicationStatus::Active),
            proxy(&[Action::Read, Action::Message]),
            "not_found",
        ),
        (
            medication(ANN, MedicationStatus::Active),
            staff(DOC, ORG),
            "forbidden",
        ),
    ] {
        let mut refills = MockRefillRepository::new();
        refills.expect_create().never();
        refills.expect_save_pharmacy().never();
        let (s, _, _) = service_with(
            MockMessageRepository::new(),
            refills,
            records_with(record),
            10,
        );
        let refused = block_on(s.request_refill(&who, LISINOPRIL, new_pharmacy(), "30", "", None))
            .unwrap_err();
        assert_eq!(refused.code(), expected);
    }
}

#[test]
fn a_held_medication_cannot_be_refilled_and_a_second_request_waits_for_the_first() {
    use crate::record::{MedicationStatus, ReleaseState};
    let mut held = medication(ANN, MedicationStatus::Active);
    held.meta.release = ReleaseState::Held;
    let (s, _, _) = service_with(
        MockMessageRepository::new(),
        MockRefillRepository::new(),
        records_with(held),
        10,
    );
    let refused =
        block_on(s.request_refill(&ann(), LISINOPRIL, new_pharmacy(), "30", "", None)).unwrap_err();
    assert_eq!(
        refused.code(),
        "not_found",
        "not released: not the patient's to see"
    );

    let mut refills = MockRefillRepository::new();
    refills.expect_save_pharmacy().returning(|_| Ok(()));
    refills
        .expect_create()
        .returning(|_| Err(RepoError::Conflict("refill_requests")));
    let (s, _, _) = service_with(
        MockMessageRepository::new(),
        refills,
        records_with(medication(ANN, MedicationStatus::Active)),
        10,
    );
    let refused =
        block_on(s.request_refill(&ann(), LISINOPRIL, new_pharmacy(), "30", "", None)).unwrap_err();
    assert_eq!(refused.code(), "refill_already_requested");
    for quantity in ["0", "1001", "ten", ""] {
        let refused =
            block_on(s.request_refill(&ann(), LISINOPRIL, new_pharmacy(), quantity, "", None))
                .unwrap_err();
        assert_eq!(refused.code(), "invalid_quantity");
    }
}

#[test]
fn a_proxy_with_the_refill_grant_asks_and_it_is_audited_on_the_medication() {
    let mut refills = MockRefillRepository::new();
    refills
        .expect_save_pharmacy()
        .times(1)
        .returning(|_| Ok(()));
    refills
        .expect_create()
        .withf(|r| r.quantity == 30 && r.note.as_deref() == Some("Before Friday please"))
        .returning(|_| Ok(()));
    let mut med = medication(ANN, crate::record::MedicationStatus::Active);
    let mut helper = proxy(&[Action::Read, Action::RequestRefill]);
    if let Actor::Proxy { scope, .. } = &mut helper {
        scope.kinds.insert(crate::record::RecordKind::Medication);
    }
    med.meta.patient_id = ANN;
    let (s, kept, _) = service_with(MockMessageRepository::new(), refills, records_with(med), 10);
    let asked = block_on(s.request_refill(
        &helper,
        LISINOPRIL,
        new_pharmacy(),
        " 30 ",
        "Before Friday please",
        None,
    ))
    .unwrap();
    assert_eq!(asked.state, RefillState::Requested);
    assert_eq!(asked.medication_name, "Lisinopril 10 mg");
    let events = kept.lock().unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.action, Action::RequestRefill);
    assert_eq!(last.record, Some(LISINOPRIL));
}

fn waiting_request() -> RefillRequest {
    RefillRequest {
        id: REFILL,
        patient: ANN,
        organization: ORG,
        medication: LISINOPRIL,
        medication_name: "Lisinopril 10 mg".into(),
        pharmacy: Pharmacy {
            id: crate::ids::PharmacyId::from_uuid(Uuid::from_u128(82)),
            patient: ANN,
            name: crate::text::PharmacyName::parse("Main St Pharmacy").unwrap(),
            address: crate::text::Address::parse("1 Main St").unwrap(),
            phone: crate::text::Phone::parse("555-0100").unwrap(),
        },
        quantity: 30,
        note: None,
        requested_by: ANN_ACCOUNT,
        requested_at: now(),
        state: RefillState::Requested,
    }
}

#[test]
fn a_clinician_answers_a_waiting_request_once_and_the_patient_is_told_only_that_it_changed() {
    let mut refills = MockRefillRepository::new();
    refills
        .expect_find()
        .returning(|_| Ok(Some(waiting_request())));
    // The store applies the first answer; a second finds it no longer waiting.
    let mut settled = false;
    refills.expect_settle().returning(move |_, _| {
        let first = !settled;
        settled = true;
        Ok(first)
    });
    let (s, kept, mails) = service_with(
        MockMessageRepository::new(),
        refills,
        MockRecordRepository::new(),
        10,
    );
    let approve = RefillMove::Approve(Approval::from_fields("30", "2", "Take one a day").unwrap());
    let answered =
        block_on(s.answer_refill(&staff(DOC, ORG), REFILL, approve.clone(), None)).unwrap();
    assert_eq!(answered.state.code(), "approved");
    let again =
        block_on(s.answer_refill(&staff(DOC, ORG), REFILL, approve.clone(), None)).unwrap_err();
    assert_eq!(again.code(), "refill_not_pending");
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "A refill request changed");
    assert!(
        !mails[0].body.contains("Lisinopril"),
        "no medication in email"
    );
    assert_eq!(kept.lock().unwrap()[0].action, Action::DecideRefill);
    // The patient's side does not approve; front desk staff do not see the request.
    let not_theirs = block_on(s.answer_refill(&ann(), REFILL, approve.clone(), None)).unwrap_err();
    assert_eq!(not_theirs.code(), "forbidden");
    let clerk = Actor::Staff {
        account: CLERK,
        role: StaffRole::FrontDesk,
        organization: ORG,
    };
    let hidden = block_on(s.answer_refill(&clerk, REFILL, approve, None)).unwrap_err();
    assert_eq!(hidden.code(), "not_found");
    assert!(matches!(
        block_on(s.refill_queue(&clerk, true)),
        Err(MessagingError::Forbidden)
    ));
}

#[test]
fn only_the_asker_cancels_and_a_denial_needs_a_reason_from_the_list() {
    let mut refills = MockRefillRepository::new();
    refills
        .expect_find()
        .returning(|_| Ok(Some(waiting_request())));
    refills.expect_settle().returning(|_, _| Ok(true));
    let (s, _, mails) = service_with(
        MockMessageRepository::new(),
        refills,
        MockRecordRepository::new(),
        10,
    );
    let mut helper = proxy(&[Action::Read, Action::RequestRefill]);
    if let Actor::Proxy { scope, .. } = &mut helper {
        scope.kinds.insert(crate::record::RecordKind::Medication);
    }
    let refused = block_on(s.answer_refill(&helper, REFILL, RefillMove::Cancel, None)).unwrap_err();
    assert_eq!(refused.code(), "not_requester");
    let cancelled = block_on(s.answer_refill(&ann(), REFILL, RefillMove::Cancel, None)).unwrap();
    assert_eq!(cancelled.state.code(), "cancelled");
    assert!(
        mails.lock().unwrap().is_empty(),
        "no email for one's own cancel"
    );
    assert_eq!(
        RefillMove::deny_from_fields("because", "")
            .unwrap_err()
            .code(),
        "invalid_reason"
    );
    assert_eq!(
        RefillMove::deny_from_fields("other", " ")
            .unwrap_err()
            .code(),
        "invalid_note"
    );
    assert!(RefillMove::deny_from_fields("needs_visit", "").is_ok());
    assert_eq!(
        Approval::from_fields("30", "12", "").unwrap_err().code(),
        "invalid_refills"
    );
}
