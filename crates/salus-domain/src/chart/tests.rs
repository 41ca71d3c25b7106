//! The records use cases on mocked ports with a fixed clock.

use super::*;
use crate::account::{MockAccountRepository, MockMailer};
use crate::audit::MockAccessLog;
use crate::clock::FixedClock;
use crate::organization::MockOrganizationRepository;
use crate::patient::{AdministrativeSex, MockPatientRepository, PersonName};
use crate::record::{
    MockRecordRepository, Observation, ObservationCategory, ReleaseState, ResultStatus,
};
use crate::text::{Code, Mrn};
use chrono::{Duration, NaiveDate, TimeZone};
use futures_executor::block_on;
use std::sync::Mutex;
use uuid::Uuid;

#[test]
fn list_filters_refuse_what_the_database_cannot_answer_well() {
    let obs = RecordKind::Observation;
    let parse =
        |from, until, text: &str| ListFilter::parse(obs, from, until, Some(text.to_owned()), None);
    let end = parse(None, Some("9999-12-30"), "").unwrap().until;
    assert_eq!(
        end,
        Some(Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap())
    );
    assert_eq!(
        parse(None, Some("9999-12-31"), "").unwrap().until,
        None,
        "the last representable day means no end, not a five-digit year"
    );
    assert_eq!(
        parse(Some("10000-01-01"), None, "").unwrap_err(),
        FilterError::Date
    );
    assert_eq!(
        parse(Some("0000-01-01"), None, "").unwrap_err(),
        FilterError::Date
    );
    assert_eq!(
        parse(Some("2025-02-01"), Some("2025-01-31"), "").unwrap_err(),
        FilterError::DateRange
    );
    assert!(parse(Some("2025-01-31"), Some("2025-01-31"), "").is_ok());
    let long = "é".repeat(MAX_SEARCH_CHARS);
    assert_eq!(parse(None, None, &long).unwrap().text, Some(long.clone()));
    assert_eq!(
        parse(None, None, &format!("{long}x")).unwrap_err(),
        FilterError::TextTooLong
    );
    assert_eq!(parse(None, None, "   ").unwrap().text, None);
    assert_eq!(FilterError::TextTooLong.code(), "search_too_long");
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}
const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
const BO: PatientId = PatientId::from_uuid(Uuid::from_u128(11));

#[derive(Debug)]
struct NoIds;
impl IdGenerator for NoIds {
    fn next_uuid(&self) -> Uuid {
        Uuid::from_u128(999)
    }
}

fn ann() -> Actor {
    Actor::Patient {
        account: crate::ids::AccountId::from_uuid(Uuid::from_u128(20)),
        patient: ANN,
    }
}

fn chart(id: PatientId) -> Patient {
    Patient {
        id,
        organization_id: ORG,
        mrn: Mrn::parse("MRN1").unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
        sex: AdministrativeSex::Female,
        contact: crate::patient::ContactDetails::default(),
        source_identifier: None,
    }
}

fn result(patient: PatientId, release: ReleaseState) -> ClinicalRecord {
    ClinicalRecord {
        meta: RecordMeta {
            id: RecordId::from_uuid(Uuid::from_u128(100)),
            patient_id: patient,
            organization_id: ORG,
            encounter_id: None,
            source: RecordSource::default(),
            source_identifier: None,
            sensitivity: SensitivityLabels::empty(),
            release,
            filed_at: now() - Duration::days(1),
        },
        body: RecordBody::Observation(Observation {
            category: ObservationCategory::Laboratory,
            code: Code::new(None, None, "Glucose").unwrap(),
            status: ResultStatus::Final,
            value: None,
            components: vec![],
            reference_range: None,
            flag: None,
            effective_at: Some(now() - Duration::days(1)),
            issued: None,
        }),
    }
}

/// A service over `records`, with an audit log that keeps what it is given (or fails).
fn service(
    records: MockRecordRepository,
    patients: MockPatientRepository,
    audit_works: bool,
) -> (RecordsService, Arc<Mutex<Vec<AccessEvent>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut log = MockAccessLog::new();
    let k = kept.clone();
    log.expect_record().returning(move |e| {
        if audit_works {
            k.lock().unwrap().push(e);
            Ok(())
        } else {
            Err(RepoError::Unavailable)
        }
    });
    let s = RecordsService::new(RecordsPorts {
        appointments: Arc::new(no_appointments()),
        records: Arc::new(records),
        patients: Arc::new(patients),
        organizations: Arc::new(MockOrganizationRepository::new()),
        accounts: Arc::new(MockAccountRepository::new()),
        log: Arc::new(log),
        mailer: Arc::new(MockMailer::new()),
        grants: Arc::new(crate::consent::MockGrantRepository::new()),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(NoIds),
        public_url: "http://portal.test".into(),
    });
    (s, kept)
}

fn finding(r: Option<ClinicalRecord>) -> MockRecordRepository {
    use crate::record::InContext;
    let mut m = MockRecordRepository::new();
    m.expect_find_in_context().returning(move |_, _| {
        Ok(r.clone().map(|record| InContext {
            record,
            related: Vec::new(),
        }))
    });
    m
}

fn released() -> ReleaseState {
    ReleaseState::Released {
        at: now() - Duration::hours(2),
    }
}

#[test]
fn reading_an_own_record_is_audited_once_as_allowed() {
    let (s, kept) = service(
        finding(Some(result(ANN, released()))),
        MockPatientRepository::new(),
        true,
    );
    let v = block_on(s.view(
        &ann(),
        RecordId::from_uuid(Uuid::from_u128(100)),
        Some("r1"),
    ))
    .unwrap();
    assert_eq!(v.record.item.meta.patient_id, ANN);
    let kept = kept.lock().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (
            kept[0].outcome,
            kept[0].patient,
            kept[0].action,
            kept[0].request_id.as_deref()
        ),
        (Outcome::Allowed, Some(ANN), Action::Read, Some("r1"))
    );
}

#[test]
fn if_the_audit_write_fails_the_record_is_not_returned() {
    let (s, _) = service(
        finding(Some(result(ANN, released()))),
        MockPatientRepository::new(),
        false,
    );
    let r = block_on(s.view(&ann(), RecordId::from_uuid(Uuid::from_u128(100)), None));
    assert!(matches!(r, Err(ReadError::AuditUnavailable)), "{r:?}");
}

#[test]
fn another_patients_record_and_a_missing_one_answer_the_same_and_are_audited() {
    let id = RecordId::from_uuid(Uuid::from_u128(100));
    let (s, kept) = service(
        finding(Some(result(BO, released()))),
        MockPatientRepository::new(),
        true,
    );
    assert!(matches!(
        block_on(s.view(&ann(), id, None)),
        Err(ReadError::NotFound)
    ));
    let (s2, kept2) = service(finding(None), MockPatientRepository::new(), true);
    assert!(matches!(
        block_on(s2.view(&ann(), id, None)),
        Err(ReadError::NotFound)
    ));
    let denied = kept.lock().unwrap()[0].clone();
    assert_eq!(
        (denied.outcome, denied.patient),
        (Outcome::Denied, Some(BO))
    );
    let missing = kept2.lock().unwrap()[0].clone();
    assert_eq!(
        (missing.outcome, missing.patient),
        (Outcome::NotFound, None)
    );
}

#[test]
fn unreleased_records_do_not_exist_for_the_patient() {
    let (s, kept) = service(
        finding(Some(result(ANN, ReleaseState::Held))),
        MockPatientRepository::new(),
        true,
    );
    let r = block_on(s.view(&ann(), RecordId::from_uuid(Uuid::from_u128(100)), None));
    assert!(matches!(r, Err(ReadError::NotFound)));
    assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Denied);
}

#[test]
fn a_patients_list_asks_only_for_released_records_and_is_audited_once() {
    let mut records = MockRecordRepository::new();
    records
        .expect_list_for_patient()
        .withf(|p, k, q, _, _| {
            *p == ANN && *k == RecordKind::Observation && q.released_by == Some(now())
        })
        .returning(|_, _, _, _, _| {
            Ok(Page {
                items: vec![result(ANN, released())],
                next: None,
            })
        });
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|id| Ok(Some(chart(id))));
    let (s, kept) = service(records, patients, true);
    let req = |patient| ListRequest {
        patient,
        kind: RecordKind::Observation,
        filter: ListFilter::default(),
        after: None,
        limit: 20,
    };
    let page = block_on(s.list(&ann(), req(None), None)).unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_none());
    let kept = kept.lock().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].record_kind, Some(RecordKind::Observation));

    // Another patient's chart: not found, audited as denied, nothing listed.
    drop(kept);
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|id| Ok(Some(chart(id))));
    let (s, kept) = service(MockRecordRepository::new(), patients, true);
    let r = block_on(s.list(&ann(), req(Some(BO)), None));
    assert!(matches!(r, Err(ReadError::NotFound)));
    assert_eq!(kept.lock().unwrap()[0].outcome, Outcome::Denied);
}

#[test]
fn a_delayed_release_appears_when_its_time_comes() {
    let later = ReleaseState::Released {
        at: now() + Duration::hours(72),
    };
    let clock = Arc::new(FixedClock::new(now()));
    let mut log = MockAccessLog::new();
    log.expect_record().returning(|_| Ok(()));
    let s = RecordsService::new(RecordsPorts {
        appointments: Arc::new(no_appointments()),
        records: Arc::new(finding(Some(result(ANN, later)))),
        patients: Arc::new(MockPatientRepository::new()),
        organizations: Arc::new(MockOrganizationRepository::new()),
        accounts: Arc::new(MockAccountRepository::new()),
        log: Arc::new(log),
        mailer: Arc::new(MockMailer::new()),
        grants: Arc::new(crate::consent::MockGrantRepository::new()),
        clock: clock.clone(),
        ids: Arc::new(NoIds),
        public_url: String::new(),
    });
    let id = RecordId::from_uuid(Uuid::from_u128(100));
    assert!(matches!(
        block_on(s.view(&ann(), id, None)),
        Err(ReadError::NotFound)
    ));
    clock.advance(Duration::hours(71));
    assert!(matches!(
        block_on(s.view(&ann(), id, None)),
        Err(ReadError::NotFound)
    ));
    clock.advance(Duration::hours(1));
    assert!(block_on(s.view(&ann(), id, None)).is_ok());
}

/// Records of `kinds` answered as the store does: kinds in the order given, newest first
/// within a kind, released by the query's instant, after the cursor, `limit` at a time.
fn paged(
    records: &[ClinicalRecord],
    kinds: &[RecordKind],
    query: &RecordQuery,
    after: Option<Cursor>,
    limit: u32,
) -> Page<ClinicalRecord> {
    let rank = |r: &ClinicalRecord| kinds.iter().position(|k| *k == r.kind());
    let mut rows: Vec<ClinicalRecord> = records
        .iter()
        .filter(|r| rank(r).is_some())
        .filter(|r| {
            query
                .released_by
                .is_none_or(|at| r.meta.release.is_visible_at(at))
        })
        .filter(|r| after.is_none_or(|c| (r.sort_time(), r.meta.id) < (c.sort_time, c.id)))
        .cloned()
        .collect();
    rows.sort_by_key(|r| (rank(r), std::cmp::Reverse((r.sort_time(), r.meta.id))));
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|r| Cursor {
        sort_time: r.sort_time(),
        id: r.meta.id,
    });
    Page { items: rows, next }
}

/// An export service over `records`, Ann's chart and the clinic.
fn exporting(records: Vec<ClinicalRecord>) -> (RecordsService, Arc<Mutex<Vec<AccessEvent>>>) {
    let mut repo = MockRecordRepository::new();
    let all = Arc::new(records);
    let r = all.clone();
    repo.expect_list_for_patient()
        .returning(move |_, kind, query, after, limit| Ok(paged(&r, &[kind], query, after, limit)));
    repo.expect_list_kinds_within()
        .returning(move |_, kinds, query, limit| {
            let page = paged(&all, kinds, query, None, limit);
            Ok(page.next.is_none().then_some(page.items))
        });
    let mut patients = MockPatientRepository::new();
    patients.expect_find().returning(|id| Ok(Some(chart(id))));
    let mut orgs = MockOrganizationRepository::new();
    orgs.expect_find().returning(|id| {
        Ok(Some(crate::organization::Organization {
            id,
            name: crate::text::OrgName::parse("Clinic").unwrap(),
            slug: crate::text::Slug::parse("clinic").unwrap(),
            features: std::collections::BTreeSet::new(),
            release_policy: crate::organization::ReleasePolicy::default(),
            phone: None,
            time_zone: chrono_tz::Tz::UTC,
            guardian_policy: crate::organization::GuardianPolicy::default(),
        }))
    });
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    let mut log = MockAccessLog::new();
    log.expect_record().returning(move |e| {
        k.lock().unwrap().push(e);
        Ok(())
    });
    // A patient's own FHIR export reads their grants (none here).
    let mut grants = crate::consent::MockGrantRepository::new();
    grants.expect_for_patient().returning(|_| Ok(Vec::new()));
    let s = RecordsService::new(RecordsPorts {
        appointments: Arc::new(no_appointments()),
        records: Arc::new(repo),
        patients: Arc::new(patients),
        organizations: Arc::new(orgs),
        accounts: Arc::new(MockAccountRepository::new()),
        log: Arc::new(log),
        mailer: Arc::new(MockMailer::new()),
        grants: Arc::new(grants),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(NoIds),
        public_url: String::new(),
    });
    (s, kept)
}

fn numbered(mut r: ClinicalRecord, n: u128) -> ClinicalRecord {
    r.meta.id = RecordId::from_uuid(Uuid::from_u128(n));
    r
}

fn read_out(
    s: &RecordsService,
    actor: &Actor,
    authenticated_at: DateTime<Utc>,
) -> Result<Vec<u128>, ExportError> {
    let mut export = block_on(s.export(
        actor,
        crate::export::ExportRequest {
            patient: Some(ANN),
            format: ExportFormat::Fhir,
            kinds: Vec::new(),
            authenticated_at,
        },
        None,
    ))?;
    let mut ids = Vec::new();
    while let Some(batch) = block_on(export.next_batch()).map_err(ExportError::Repo)? {
        ids.extend(batch.iter().map(|r| r.meta.id.as_uuid().as_u128()));
    }
    ids.sort_unstable();
    Ok(ids)
}

#[test]
fn an_export_holds_only_what_the_actor_may_see_and_names_its_format_in_the_audit() {
    use crate::record::SensitivityLabel;
    let genetic = SensitivityLabels::empty().with(SensitivityLabel::Genetic);
    let mut labelled = numbered(result(ANN, released()), 2);
    labelled.meta.sensitivity = genetic;
    let held = numbered(result(ANN, ReleaseState::Held), 3);
    let mut note = numbered(result(ANN, released()), 4);
    note.body = RecordBody::ClinicalNote(crate::record::ClinicalNote {
        note_type: crate::record::NoteType::VisitNote,
        title: "Visit".into(),
        text: "Seen.".into(),
        date: None,
    });
    let records = vec![numbered(result(ANN, released()), 1), labelled, held, note];
    let (s, kept) = exporting(records);

    // The patient: everything released, labelled or not; never the held result.
    assert_eq!(read_out(&s, &ann(), now()).unwrap(), vec![1, 2, 4]);
    let e = kept.lock().unwrap()[0].clone();
    assert_eq!(
        (e.action, e.export, e.outcome),
        (Action::Export, Some(ExportFormat::Fhir), Outcome::Allowed)
    );
    assert_eq!(e.action_code(), "export_fhir");

    // A proxy granted results and immunizations, without the genetic label.
    let scope = |labels| crate::access::GrantScope {
        kinds: [RecordKind::Observation, RecordKind::Immunization].into(),
        actions: [Action::Read, Action::Export].into(),
        labels,
        valid_from: now() - Duration::days(1),
        valid_until: now() + Duration::days(1),
    };
    let proxy = |labels| Actor::Proxy {
        account: crate::ids::AccountId::from_uuid(Uuid::from_u128(40)),
        grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(50)),
        patient: ANN,
        scope: scope(labels),
    };
    assert_eq!(
        read_out(&s, &proxy(SensitivityLabels::empty()), now()).unwrap(),
        vec![1]
    );
    assert_eq!(read_out(&s, &proxy(genetic), now()).unwrap(), vec![1, 2]);
    // A proxy whose grant does not include exporting gets nothing, as if no chart.
    let mut reader = proxy(genetic);
    if let Actor::Proxy { scope, .. } = &mut reader {
        scope.actions = [Action::Read].into();
    }
    assert!(matches!(
        read_out(&s, &reader, now()),
        Err(ExportError::NotFound)
    ));
}

#[test]
fn an_export_needs_the_password_within_five_minutes_and_then_reads_nothing() {
    let (s, kept) = exporting(vec![result(ANN, released())]);
    assert!(read_out(&s, &ann(), now() - Duration::minutes(5)).is_ok());
    let before = kept.lock().unwrap().len();
    assert!(matches!(
        read_out(
            &s,
            &ann(),
            now() - Duration::minutes(5) - Duration::seconds(1)
        ),
        Err(ExportError::ReauthenticationRequired)
    ));
    assert_eq!(
        kept.lock().unwrap().len(),
        before,
        "a refused export is not an access"
    );
}

/// A schedule in which the chart has no appointments (what exports read).
fn no_appointments() -> crate::scheduling::MockSchedulingRepository {
    let mut s = crate::scheduling::MockSchedulingRepository::new();
    s.expect_appointments_of().returning(|_| Ok(Vec::new()));
    s
}

#[test]
fn a_chart_larger_than_a_batch_is_read_out_whole_in_order_each_record_once() {
    // 1,234 records over two kinds: more than two batches, kind by kind.
    assert!(exported_in_batches(1234) >= 3);
}

#[test]
fn a_chart_within_a_batch_is_read_out_in_one_in_the_exports_order() {
    assert_eq!(exported_in_batches(300), 1);
}

/// Exports a chart of `count` results and notes (listed newest first, kinds interleaved),
/// checks that every record comes out once, kind by kind in the export's order and newest
/// first within a kind, in batches of at most `EXPORT_BATCH`; answers how many batches.
fn exported_in_batches(count: u128) -> usize {
    use crate::export::{EXPORT_BATCH, EXPORT_ORDER};
    let mut records = Vec::new();
    for n in 0..count {
        let mut r = numbered(result(ANN, released()), n + 1);
        if let RecordBody::Observation(o) = &mut r.body {
            o.effective_at = Some(now() - Duration::hours(i64::try_from(n).unwrap()));
        }
        if n % 3 == 1 {
            r.body = RecordBody::ClinicalNote(crate::record::ClinicalNote {
                note_type: crate::record::NoteType::VisitNote,
                title: "Visit".into(),
                text: "Seen.".into(),
                date: Some(now() - Duration::hours(i64::try_from(n).unwrap())),
            });
        }
        records.push(r);
    }
    let (s, _) = exporting(records);
    let mut export = block_on(s.export(
        &ann(),
        crate::export::ExportRequest {
            patient: Some(ANN),
            format: ExportFormat::Fhir,
            kinds: Vec::new(),
            authenticated_at: now(),
        },
        None,
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut batches = 0;
    while let Some(batch) = block_on(export.next_batch()).unwrap() {
        assert!(batch.len() <= EXPORT_BATCH as usize);
        batches += 1;
        out.extend(batch);
    }
    let mut ids: Vec<u128> = out.iter().map(|r| r.meta.id.as_uuid().as_u128()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=count).collect::<Vec<_>>(), "every record once");
    let rank = |r: &ClinicalRecord| EXPORT_ORDER.iter().position(|k| *k == r.kind());
    assert!(
        out.windows(2)
            .all(|w| (rank(&w[0]), std::cmp::Reverse(w[0].sort_time()))
                <= (rank(&w[1]), std::cmp::Reverse(w[1].sort_time()))),
        "kind by kind in the export's order, newest first"
    );
    batches
}

#[test]
fn a_view_shows_only_related_records_of_the_same_chart_the_viewer_may_see() {
    use crate::record::InContext;
    let mine = numbered(result(ANN, released()), 2);
    let held = numbered(result(ANN, ReleaseState::Held), 3);
    let theirs = numbered(result(BO, released()), 4);
    let mut records = MockRecordRepository::new();
    records
        .expect_find_in_context()
        .withf(|_, released_by| *released_by == Some(now()))
        .returning(move |_, _| {
            Ok(Some(InContext {
                record: numbered(result(ANN, released()), 1),
                related: vec![mine.clone(), held.clone(), theirs.clone()],
            }))
        });
    let (s, kept) = service(records, MockPatientRepository::new(), true);
    let v = block_on(s.view(&ann(), RecordId::from_uuid(Uuid::from_u128(1)), None)).unwrap();
    let related: Vec<u128> = v
        .related
        .iter()
        .map(|r| r.item.meta.id.as_uuid().as_u128())
        .collect();
    assert_eq!(related, vec![2], "not the held one, not another chart's");
    assert!(v.trend.is_empty(), "the view alone reads no trend");
    assert_eq!(kept.lock().unwrap().len(), 1);
}

#[test]
fn a_trend_reads_the_record_alone_then_the_same_test_over_time() {
    let coded = |n: u128, days: i64| {
        let mut r = numbered(result(ANN, released()), n);
        if let RecordBody::Observation(o) = &mut r.body {
            o.code = Code::new(Some("http://loinc.org"), Some("2345-7"), "Glucose").unwrap();
            o.effective_at = Some(now() - Duration::days(days));
        }
        r
    };
    let this = coded(1, 1);
    let mut records = MockRecordRepository::new();
    // The record alone: its context is not read.
    let found = this.clone();
    records
        .expect_find()
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    records.expect_find_in_context().never();
    let (newer, older) = (this.clone(), coded(2, 30));
    records
        .expect_list_for_patient()
        .withf(|p, kind, q, _, _| {
            *p == ANN
                && *kind == RecordKind::Observation
                && q.code == Some(("http://loinc.org".into(), "2345-7".into()))
                && q.released_by == Some(now())
        })
        .times(1)
        .returning(move |_, _, _, _, _| {
            Ok(Page {
                items: vec![newer.clone(), older.clone()],
                next: None,
            })
        });
    let (s, kept) = service(records, MockPatientRepository::new(), true);
    let v = block_on(s.trend(&ann(), RecordId::from_uuid(Uuid::from_u128(1)), None)).unwrap();
    assert!(v.related.is_empty());
    let points: Vec<u128> = v
        .trend
        .iter()
        .map(|r| r.meta.id.as_uuid().as_u128())
        .collect();
    assert_eq!(points, vec![2, 1], "oldest first, this one included");
    assert_eq!(kept.lock().unwrap().len(), 1, "one audit entry");
}
