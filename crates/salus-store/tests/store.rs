//! The store suite. Runs on SQLite by default and on PostgreSQL when
#![allow(
    clippy::print_stdout,
    reason = "the query plan is shown with --nocapture"
)]
//! `SALUS_TEST_POSTGRES_URL` is set (`cargo xtask test` does both).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use chrono::{TimeZone, Utc};
use salus_domain::import::{ImportDraft, ImportRepository, ImportService};
use salus_domain::organization::{
    Organization, OrganizationRepository, PortalFeature, ReleasePolicy, ReleaseRule,
};
use salus_domain::patient::PatientRepository;
use salus_domain::record::{
    RecordKind, RecordQuery, RecordRepository, ReleaseState, SensitivityLabel,
};
use salus_domain::text::{OrgName, Slug};
use salus_domain::{Clock, FixedClock, OrganizationId, RepoError};
use salus_fhir::{MapOptions, map_bundle};
use salus_store::{PoolSettings, Store, UuidV7Ids};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

async fn store() -> Store {
    let url = salus_tests::test_database_url().await;
    let store = Store::connect(&url, PoolSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn org(slug: &str, policy: ReleasePolicy) -> Organization {
    Organization {
        id: OrganizationId::generate(&UuidV7Ids),
        name: OrgName::parse(&format!("Clinic {slug}")).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        features: BTreeSet::from([PortalFeature::Records, PortalFeature::Messaging]),
        release_policy: policy,
        phone: None,
        time_zone: salus_domain::chrono_tz::Tz::UTC,
        guardian_policy: salus_domain::organization::GuardianPolicy::default(),
    }
}

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
    ))
}

async fn import_file(
    store: &Store,
    org: OrganizationId,
    path: &std::path::Path,
) -> salus_domain::import::ImportOutcome {
    let bytes = std::fs::read(path).unwrap();
    let mapped = map_bundle(
        &bytes,
        MapOptions {
            organization_id: org,
            from_outside: false,
        },
        &UuidV7Ids,
    )
    .unwrap();
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock());
    service.import(org, mapped.draft).await.unwrap()
}

/// Resource counts computed from the bundle JSON itself, by FHIR resource type.
fn counts_in_json(path: &std::path::Path) -> BTreeMap<String, u64> {
    let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut counts = BTreeMap::new();
    for e in bundle["entry"].as_array().unwrap() {
        *counts
            .entry(e["resource"]["resourceType"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

const KIND_OF_TYPE: [(&str, RecordKind); 9] = [
    ("Encounter", RecordKind::Encounter),
    ("Observation", RecordKind::Observation),
    ("DiagnosticReport", RecordKind::DiagnosticReport),
    ("MedicationRequest", RecordKind::Medication),
    ("Immunization", RecordKind::Immunization),
    ("Condition", RecordKind::Problem),
    ("AllergyIntolerance", RecordKind::Allergy),
    ("Procedure", RecordKind::Procedure),
    ("DocumentReference", RecordKind::ClinicalNote),
];

#[tokio::test]
async fn organizations_round_trip_with_features_and_policy() {
    let store = store().await;
    let policy = ReleasePolicy::default()
        .with_kind(
            RecordKind::Observation,
            ReleaseRule::AfterHours { hours: 36 },
        )
        .with_kind(RecordKind::ClinicalNote, ReleaseRule::HeldForManualRelease)
        .with_label(SensitivityLabel::MentalHealth, ReleaseRule::NeverOnline);
    let a = org("north-clinic", policy);
    let b = org("east-clinic", ReleasePolicy::default());
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();
    let listed = store.list().await.unwrap();
    assert_eq!(
        listed,
        vec![b.clone(), a.clone()],
        "ordered by name, everything preserved"
    );
    assert_eq!(store.find_by_slug(&a.slug).await.unwrap(), Some(a.clone()));
    assert_eq!(
        OrganizationRepository::find(&store, b.id).await.unwrap(),
        Some(b)
    );
    assert_eq!(
        store
            .find_by_slug(&Slug::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );

    let mut dup = org("north-clinic", ReleasePolicy::default());
    dup.name = OrgName::parse("Another").unwrap();
    assert!(matches!(
        store.create(&dup).await,
        Err(RepoError::Conflict(_))
    ));
    assert_eq!(
        store.list().await.unwrap().len(),
        2,
        "a refused create leaves nothing behind"
    );
}

#[tokio::test]
async fn every_fixture_imports_with_exact_counts_and_reimport_changes_nothing() {
    let bundles = salus_tests::synthea_bundles();
    if bundles.is_empty() {
        return; // fixtures_dir() already said so loudly (and panicked under CI)
    }
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    for path in &bundles {
        let expected = counts_in_json(path);
        let first = import_file(&store, clinic.id, path).await;
        let got = |t: &str| expected.get(t).copied().unwrap_or(0);
        assert_eq!(first.created.patients, got("Patient"), "{path:?}");
        assert_eq!(first.created.practitioners, got("Practitioner"), "{path:?}");
        assert_eq!(
            first.created.provider_organizations,
            got("Organization"),
            "{path:?}"
        );
        for (rtype, kind) in KIND_OF_TYPE {
            assert_eq!(
                first.created.records.get(&kind).copied().unwrap_or(0),
                got(rtype),
                "{rtype} in {path:?}"
            );
        }
        assert_eq!(first.already_present.total(), 0);

        // What the database holds for the chart equals what the bundle holds.
        let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let patient_entry = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Patient")
            .unwrap();
        let mrn = patient_entry["resource"]["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"]["coding"][0]["code"] == "MR")
            .unwrap()["value"]
            .as_str()
            .unwrap();
        let patient = store
            .find_by_mrn(clinic.id, &salus_domain::text::Mrn::parse(mrn).unwrap())
            .await
            .unwrap()
            .expect("the chart exists");
        let stored = store.count_by_kind(patient.id, None).await.unwrap();
        for (rtype, kind) in KIND_OF_TYPE {
            assert_eq!(
                stored.get(&kind).copied().unwrap_or(0),
                got(rtype),
                "{rtype} stored"
            );
        }
        // One statement per explanation of benefit, on the chart's account.
        assert_eq!(
            first.created.statements,
            got("ExplanationOfBenefit"),
            "{path:?}"
        );
        let ledger = salus_domain::billing::BillingRepository::ledger(&store, patient.id)
            .await
            .unwrap();
        assert_eq!(ledger.statements.len() as u64, got("ExplanationOfBenefit"));
        ledger
            .balance(salus_domain::billing::Currency::USD)
            .expect("the statements add up in one currency");

        let second = import_file(&store, clinic.id, path).await;
        assert_eq!(
            second.created.total(),
            0,
            "re-import creates nothing: {path:?}"
        );
        assert_eq!(second.already_present, first.created);
        assert_eq!(store.count_by_kind(patient.id, None).await.unwrap(), stored);
    }
    assert_eq!(store.count(clinic.id).await.unwrap(), bundles.len() as u64);
}

#[tokio::test]
async fn records_page_newest_first_and_cursor_walks_everything_once() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient_id = first_patient(&store, clinic.id).await;

    let total = store.count_by_kind(patient_id, None).await.unwrap()[&RecordKind::Observation];
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_for_patient(
                patient_id,
                RecordKind::Observation,
                &RecordQuery::default(),
                cursor,
                25,
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 25);
        seen.extend(page.items.iter().map(|r| (r.sort_time(), r.meta.id)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total, "every observation exactly once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id");
    let unique: BTreeSet<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), seen.len());
}

async fn first_patient(store: &Store, org: OrganizationId) -> salus_domain::PatientId {
    use sea_orm::{ConnectionTrait, Statement};
    let row = store
        .connection()
        .query_one_raw(Statement::from_sql_and_values(
            store.backend(),
            match store.backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT id FROM patients WHERE organization_id = $1 LIMIT 1"
                }
                _ => "SELECT id FROM patients WHERE organization_id = ? LIMIT 1",
            },
            [org.as_uuid().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    salus_domain::PatientId::from_uuid(row.try_get::<uuid::Uuid>("", "id").unwrap())
}

#[tokio::test]
async fn records_round_trip_field_for_field() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mapped = map_bundle(
        &bytes,
        MapOptions {
            organization_id: clinic.id,
            from_outside: true,
        },
        &UuidV7Ids,
    )
    .unwrap();
    let drafts: ImportDraft = mapped.draft.clone();
    ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock())
        .import(clinic.id, mapped.draft)
        .await
        .unwrap();
    for d in drafts.records.iter().step_by(7) {
        let got = RecordRepository::find(&store, d.id)
            .await
            .unwrap()
            .expect("stored under its id");
        assert_eq!(got.body, d.body);
        assert_eq!(got.meta.source, d.source);
        assert_eq!(got.meta.encounter_id, d.encounter_id);
        assert_eq!(got.meta.patient_id, d.patient_id);
        assert!(got.meta.source.from_outside);
        assert_eq!(
            got.meta.release,
            ReleaseState::Released { at: clock().now() }
        );
    }
}

#[tokio::test]
async fn release_policy_applies_at_import() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let policy = ReleasePolicy::default()
        .with_kind(
            RecordKind::Observation,
            ReleaseRule::AfterHours { hours: 48 },
        )
        .with_kind(RecordKind::Problem, ReleaseRule::HeldForManualRelease);
    let clinic = org("demo", policy);
    store.create(&clinic).await.unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient = first_patient(&store, clinic.id).await;
    let now = clock().now();
    let obs = store
        .list_for_patient(
            patient,
            RecordKind::Observation,
            &RecordQuery::default(),
            None,
            5,
        )
        .await
        .unwrap();
    assert!(!obs.items.is_empty());
    for r in &obs.items {
        assert_eq!(
            r.meta.release,
            ReleaseState::Released {
                at: now + chrono::Duration::hours(48)
            }
        );
    }
    let problems = store
        .list_for_patient(
            patient,
            RecordKind::Problem,
            &RecordQuery::default(),
            None,
            5,
        )
        .await
        .unwrap();
    assert!(!problems.items.is_empty());
    assert!(
        problems
            .items
            .iter()
            .all(|r| r.meta.release == ReleaseState::Held)
    );
    let visits = store
        .list_for_patient(
            patient,
            RecordKind::Encounter,
            &RecordQuery::default(),
            None,
            5,
        )
        .await
        .unwrap();
    assert!(
        visits
            .items
            .iter()
            .all(|r| r.meta.release == ReleaseState::Released { at: now })
    );
}

#[tokio::test]
async fn a_failing_batch_stores_nothing() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut mapped = map_bundle(
        &bytes,
        MapOptions {
            organization_id: clinic.id,
            from_outside: false,
        },
        &UuidV7Ids,
    )
    .unwrap();
    // Break the last record: it now points at a chart that does not exist, so the database
    // refuses it after everything before it was written in the same transaction.
    let last = mapped.draft.records.last_mut().unwrap();
    last.patient_id = salus_domain::PatientId::generate(&UuidV7Ids);
    let err = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock())
        .import(clinic.id, mapped.draft)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            salus_domain::import::ImportError::Repo(RepoError::Conflict(_))
        ),
        "{err:?}"
    );
    assert_eq!(
        store.count(clinic.id).await.unwrap(),
        0,
        "no patient stored"
    );
    use sea_orm::{ConnectionTrait, Statement};
    for table in [
        "clinical_records",
        "practitioners",
        "provider_organizations",
    ] {
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "{table} is empty");
    }
}

#[tokio::test]
async fn partial_reimport_links_new_records_to_existing_visits() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut bundle: Value = serde_json::from_slice(&bytes).unwrap();
    // First import without the last observation, then the whole bundle.
    let entries = bundle["entry"].as_array_mut().unwrap();
    let held_back = entries
        .iter()
        .rposition(|e| e["resource"]["resourceType"] == "Observation")
        .unwrap();
    let obs = entries.remove(held_back);
    let partial = serde_json::to_vec(&bundle).unwrap();
    let opts = MapOptions {
        organization_id: clinic.id,
        from_outside: false,
    };
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock());
    service
        .import(
            clinic.id,
            map_bundle(&partial, opts, &UuidV7Ids).unwrap().draft,
        )
        .await
        .unwrap();

    let outcome = service
        .import(
            clinic.id,
            map_bundle(&bytes, opts, &UuidV7Ids).unwrap().draft,
        )
        .await
        .unwrap();
    assert_eq!(outcome.created.total(), 1);
    assert_eq!(
        outcome.created.records.get(&RecordKind::Observation),
        Some(&1)
    );

    let obs_id = obs["resource"]["id"].as_str().unwrap();
    let enc_url = obs["resource"]["encounter"]["reference"].as_str().unwrap();
    let enc_id = enc_url.trim_start_matches("urn:uuid:");
    let id_of = |source: String| {
        let store = store.clone();
        async move {
            use sea_orm::{ConnectionTrait, Statement};
            let sql = match store.backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT id FROM clinical_records WHERE source_identifier = $1"
                }
                _ => "SELECT id FROM clinical_records WHERE source_identifier = ?",
            };
            let row = store
                .connection()
                .query_one_raw(Statement::from_sql_and_values(
                    store.backend(),
                    sql,
                    [source.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            salus_domain::RecordId::from_uuid(row.try_get::<uuid::Uuid>("", "id").unwrap())
        }
    };
    let new_obs = RecordRepository::find(&store, id_of(format!("Observation/{obs_id}")).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new_obs.meta.encounter_id,
        Some(id_of(format!("Encounter/{enc_id}")).await)
    );
}

#[tokio::test]
async fn record_page_query_is_an_index_range_scan() {
    let store = store().await;
    let plan = store.explain_record_page().await.unwrap().join("\n");
    assert!(
        plan.contains("ix_records_patient_kind_time"),
        "plan does not use the index:\n{plan}"
    );
    match store.backend() {
        sea_orm::DbBackend::Sqlite => {
            assert!(
                !plan.contains("TEMP B-TREE"),
                "SQLite sorts instead of reading the index:\n{plan}"
            );
            assert!(
                plan.contains("(sort_at,id)<(?,?)"),
                "the cursor does not bound the range:\n{plan}"
            );
        }
        _ => {
            assert!(
                !plan.contains("Sort"),
                "PostgreSQL sorts instead of reading the index:\n{plan}"
            );
            assert!(plan.contains("Index Scan Backward"), "{plan}");
            let cond = plan
                .lines()
                .find(|l| l.contains("Index Cond"))
                .unwrap_or_default();
            assert!(
                cond.contains("ROW(sort_at, id) <"),
                "the cursor does not bound the range:\n{plan}"
            );
        }
    }
    println!("{} plan:\n{plan}", salus_tests::backend_name());
}

#[tokio::test]
async fn health_check_answers() {
    store().await.health_check().await.unwrap();
}

#[tokio::test]
async fn import_into_unknown_organization_is_refused() {
    let store = store().await;
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock());
    let err = service
        .import(OrganizationId::generate(&UuidV7Ids), ImportDraft::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        salus_domain::import::ImportError::OrganizationNotFound
    ));
    let _: &dyn ImportRepository = &store;
}

/// A SQLite file runs with WAL, foreign keys, a busy timeout and synchronous = NORMAL on
/// every pooled connection.
#[tokio::test]
async fn sqlite_file_settings() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/settings.db", dir.path().display());
    let settings = PoolSettings {
        max_connections: 3,
        busy_timeout: std::time::Duration::from_millis(4321),
    };
    let store = Store::connect(&url, settings).await.unwrap();
    store.migrate().await.unwrap();
    assert!(
        dir.path().join("settings.db").is_file(),
        "file created on first connect"
    );
    for (pragma, expected) in [
        ("journal_mode", "wal"),
        ("foreign_keys", "1"),
        ("synchronous", "1"),
        ("busy_timeout", "4321"),
    ] {
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                format!("PRAGMA {pragma}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let value = row
            .try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(value, expected, "PRAGMA {pragma}");
    }
    // Plans must not depend on bound values, or every `LIMIT ?` re-parses its statement on
    // each execution (see .cargo/config.toml).
    let options = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "PRAGMA compile_options",
        ))
        .await
        .unwrap();
    assert!(
        options
            .iter()
            .any(|r| r.try_get_by_index::<String>(0).unwrap() == "ENABLE_QPSG"),
        "SQLite built without SQLITE_ENABLE_QPSG"
    );
}

/// A TOTP step is accepted once and only moving forward; a recovery code once.
#[tokio::test]
async fn totp_steps_and_recovery_codes_are_single_use() {
    use salus_domain::account::{
        Account, AccountRepository, AccountState, ChartLink, PasswordHash, Role, TokenDigest,
        TotpRepository, TotpSecret,
    };
    let store = store().await;
    let now = clock().now();
    let account = Account {
        id: salus_domain::AccountId::generate(&UuidV7Ids),
        email: salus_domain::text::Email::parse("ann@example.org").unwrap(),
        name: salus_domain::patient::PersonName::new("Ann", "Lee").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now },
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$x"),
        created_at: now,
    };
    AccountRepository::create(&store, &account).await.unwrap();
    store
        .put_pending(account.id, &TotpSecret::new(vec![1; 20]))
        .await
        .unwrap();
    let codes = [TokenDigest([7; 32]), TokenDigest([8; 32])];
    store.confirm(account.id, now, &codes).await.unwrap();
    assert!(matches!(
        store
            .put_pending(account.id, &TotpSecret::new(vec![2; 20]))
            .await,
        Err(RepoError::Conflict(_))
    ));
    assert!(store.use_step(account.id, 100).await.unwrap());
    assert!(
        !store.use_step(account.id, 100).await.unwrap(),
        "replay of the same step"
    );
    assert!(
        !store.use_step(account.id, 99).await.unwrap(),
        "an older step"
    );
    assert!(store.use_step(account.id, 101).await.unwrap());
    assert!(
        store
            .use_recovery_code(account.id, &codes[0], now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(account.id, &codes[0], now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(account.id, &TokenDigest([9; 32]), now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(account.id).await.unwrap().unwrap().secret,
        TotpSecret::new(vec![1; 20])
    );
}

/// A mailer that hands every message over to nobody.
#[derive(Debug)]
struct NoMail;

#[async_trait::async_trait]
impl salus_domain::account::Mailer for NoMail {
    async fn send(
        &self,
        _: salus_domain::account::OutgoingEmail,
    ) -> Result<(), salus_domain::account::MailError> {
        Ok(())
    }
}

fn access_event(n: u128) -> salus_domain::audit::AccessEvent {
    use salus_domain::access::Action;
    use salus_domain::audit::{AccessEvent, ActorRef, Outcome};
    AccessEvent {
        at: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        actor: ActorRef {
            kind: "patient",
            account: Some(salus_domain::AccountId::from_uuid(uuid::Uuid::from_u128(1))),
            role: None,
            grant: None,
        },
        patient: Some(salus_domain::PatientId::from_uuid(uuid::Uuid::from_u128(2))),
        action: Action::Read,
        step: None,
        export: None,
        record_kind: Some(RecordKind::Observation),
        record: Some(salus_domain::RecordId::from_uuid(uuid::Uuid::from_u128(n))),
        outcome: Outcome::Allowed,
        request_id: Some(format!("req-{n}")),
    }
}

#[tokio::test]
async fn concurrent_audit_writes_form_one_chain_that_detects_edits_and_deletions() {
    use salus_domain::audit::{AccessLog, ChainBreak};
    use sea_orm::ConnectionTrait;
    let store = store().await;
    let writes: Vec<_> = (0..40u128)
        .map(|n| {
            let s = store.clone();
            tokio::spawn(async move { AccessLog::record(&s, access_event(n)).await })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!((report.entries, report.first_break), (40, None));
    let history = store
        .history(
            salus_domain::PatientId::from_uuid(uuid::Uuid::from_u128(2)),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 40);
    assert!(
        history.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );

    // An edit breaks that entry's hash.
    let db = store.connection();
    db.execute_unprepared("UPDATE audit_log SET outcome = 'denied' WHERE seq = 7")
        .await
        .unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_break, Some(ChainBreak::Edited { seq: 7 }));
    assert_eq!(report.entries, 6, "the six before it verified");
    db.execute_unprepared("UPDATE audit_log SET outcome = 'allowed' WHERE seq = 7")
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().first_break, None);

    // A deletion leaves a gap.
    db.execute_unprepared("DELETE FROM audit_log WHERE seq = 12")
        .await
        .unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(
        report.first_break,
        Some(ChainBreak::Missing {
            expected_seq: 12,
            found_seq: 13
        })
    );
    // Renumbering to hide the gap still breaks the link.
    // (In two steps, so no statement meets a duplicate key on the way.)
    db.execute_unprepared("UPDATE audit_log SET seq = -seq WHERE seq > 12")
        .await
        .unwrap();
    db.execute_unprepared("UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0")
        .await
        .unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_break, Some(ChainBreak::Unlinked { seq: 12 }));
}

/// Group commit on a multi-threaded runtime: whichever request writes a batch, every
/// request returns only once its own entry is committed, and the chain stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_write_returns_only_once_its_entry_is_committed() {
    use salus_domain::audit::AccessLog;
    use sea_orm::{ConnectionTrait, Statement};
    let store = store().await;
    let writes: Vec<_> = (0..300u128)
        .map(|n| {
            let s = store.clone();
            tokio::spawn(async move {
                AccessLog::record(&s, access_event(n)).await.unwrap();
                let row = s
                    .connection()
                    .query_one_raw(Statement::from_string(
                        s.backend(),
                        format!("SELECT COUNT(*) AS n FROM audit_log WHERE request_id = 'req-{n}'"),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get::<i64>("", "n").unwrap()
            })
        })
        .collect();
    for w in writes {
        assert_eq!(
            w.await.unwrap(),
            1,
            "the entry is there when record returns"
        );
    }
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!((report.entries, report.first_break), (300, None));
}

#[tokio::test]
async fn the_audit_migration_chains_the_authentication_events_it_carries_over() {
    use salus_store::migration::Migrator;
    use sea_orm::ConnectionTrait;
    use sea_orm_migration::MigratorTrait;
    let url = salus_tests::test_database_url().await;
    let store = Store::connect(&url, PoolSettings::default()).await.unwrap();
    let db = store.connection();
    Migrator::up(db, Some(6)).await.unwrap();
    for (i, action) in ["auth.registered", "auth.sign_in_failed", "auth.sign_in"]
        .iter()
        .enumerate()
    {
        let id = uuid::Uuid::from_u128(100 + i as u128);
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 9, i as u32, 0).unwrap();
        let stmt = sea_orm::sea_query::Query::insert()
            .into_table(sea_orm::sea_query::Alias::new("audit_events"))
            .columns(["id", "at", "action"].map(sea_orm::sea_query::Alias::new))
            .values_panic([id.into(), at.into(), (*action).into()])
            .to_owned();
        db.execute(&stmt).await.unwrap();
    }
    store.migrate().await.unwrap();
    let report = store.verify_audit_chain().await.unwrap();
    assert_eq!((report.entries, report.first_break), (3, None));
    // New entries continue the same chain.
    salus_domain::audit::AccessLog::record(&store, access_event(1))
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain().await.unwrap().entries, 4);
}

/// Session lookups are remembered briefly, but every change this process makes to the session
/// or its account is visible to the very next lookup.
#[tokio::test]
async fn a_remembered_session_shows_changes_at_once() {
    use salus_domain::account::{
        Account, AccountRepository, AccountState, ChartLink, IdentityRepository, PasswordHash,
        Role, Session, SessionRepository, TokenDigest,
    };
    let store = store().await;
    let now = clock().now();
    let account = Account {
        id: salus_domain::AccountId::generate(&UuidV7Ids),
        email: salus_domain::text::Email::parse("rui@example.org").unwrap(),
        name: salus_domain::patient::PersonName::new("Rui", "Costa").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now },
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$old"),
        created_at: now,
    };
    AccountRepository::create(&store, &account).await.unwrap();
    let digest = TokenDigest([42; 32]);
    let session = Session {
        id: salus_domain::SessionId::generate(&UuidV7Ids),
        account: account.id,
        digest,
        created_at: now,
        last_seen_at: now,
        revoked_at: None,
        authenticated_at: now,
        previous_sign_in_at: None,
        device: None,
    };
    SessionRepository::create(&store, &session).await.unwrap();
    let lookup = || async { store.find_by_digest(&digest).await.unwrap().unwrap() };

    let (_, a) = lookup().await;
    assert_eq!(a.password.as_str(), "$argon2id$old");
    store
        .set_password(account.id, &PasswordHash::new("$argon2id$new"))
        .await
        .unwrap();
    assert_eq!(lookup().await.1.password.as_str(), "$argon2id$new");

    let clinic = org("cache", ReleasePolicy::default());
    salus_domain::organization::OrganizationRepository::create(&store, &clinic)
        .await
        .unwrap();
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01",
                      "name": [{"family": "Costa", "given": ["Rui"]}]}}]});
    let mapped = map_bundle(
        &serde_json::to_vec(&bundle).unwrap(),
        MapOptions {
            organization_id: clinic.id,
            from_outside: false,
        },
        &UuidV7Ids,
    )
    .unwrap();
    ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock())
        .import(clinic.id, mapped.draft)
        .await
        .unwrap();
    let patient = first_patient(&store, clinic.id).await;
    assert!(store.link(account.id, patient).await.unwrap());
    assert_eq!(lookup().await.1.chart, ChartLink::Linked { patient });

    let later = now + chrono::Duration::minutes(2);
    store.touch(session.id, later).await.unwrap();
    assert_eq!(lookup().await.0.last_seen_at, later);
    store.revoke(session.id, later).await.unwrap();
    assert_eq!(lookup().await.0.revoked_at, Some(later));
}

#[tokio::test]
async fn grants_round_trip_are_accepted_once_narrowed_and_revoked() {
    use salus_domain::access::{Action, GrantScope};
    use salus_domain::account::{
        Account, AccountRepository, AccountState, ChartLink, PasswordHash, Role, TokenDigest,
    };
    use salus_domain::consent::{Grant, GrantMaker, GrantRepository, GrantState, Grantee};
    use salus_domain::record::SensitivityLabels;
    use salus_domain::text::{Email, GrantText};
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    OrganizationRepository::create(&store, &clinic)
        .await
        .unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient = first_patient(&store, clinic.id).await;
    let now = clock().now();
    let account = |email: &str| Account {
        id: salus_domain::AccountId::generate(&UuidV7Ids),
        email: Email::parse(email).unwrap(),
        name: salus_domain::patient::PersonName::new("Ana", "Silva").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now },
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$x"),
        created_at: now,
    };
    let (owner, carer, other) = (
        account("owner@example.org"),
        account("carer@example.org"),
        account("other@example.org"),
    );
    for a in [&owner, &carer, &other] {
        AccountRepository::create(&store, a).await.unwrap();
    }
    let scope = GrantScope {
        kinds: [RecordKind::Observation, RecordKind::Medication].into(),
        actions: [Action::Read, Action::Export].into(),
        labels: SensitivityLabels::empty().with(SensitivityLabel::Hiv),
        valid_from: now,
        valid_until: now + chrono::Duration::days(365),
    };
    let grant = Grant {
        id: salus_domain::GrantId::generate(&UuidV7Ids),
        patient,
        grantee: Grantee::Proxy {
            account: None,
            email: Email::parse("carer@example.org").unwrap(),
            relationship: Some(GrantText::parse("my daughter").unwrap()),
        },
        scope: scope.clone(),
        state: GrantState::Pending {
            invited_at: now,
            expires: now + chrono::Duration::days(7),
        },
        note: Some(GrantText::parse("for appointments").unwrap()),
        made_by: GrantMaker::Patient(owner.id),
        made_at: now,
    };
    let token = TokenDigest([9; 32]);
    GrantRepository::create(&store, &grant, Some(token))
        .await
        .unwrap();
    assert_eq!(
        GrantRepository::find(&store, grant.id)
            .await
            .unwrap()
            .as_ref(),
        Some(&grant)
    );
    assert_eq!(
        store.by_token(&token).await.unwrap().map(|g| g.id),
        Some(grant.id)
    );
    assert_eq!(store.for_patient(patient).await.unwrap().len(), 1);

    // Two acceptances at once: exactly one wins, and the token is used up.
    let until = now + chrono::Duration::days(365);
    let (a, b) = tokio::join!(
        store.accept(grant.id, carer.id, now, until),
        store.accept(grant.id, other.id, now, until)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|won| **won).count(),
        1,
        "one acceptance"
    );
    assert!(store.by_token(&token).await.unwrap().is_none(), "used up");
    let accepted = GrantRepository::find(&store, grant.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(accepted.state, GrantState::Active { .. }));
    let holder = match accepted.grantee {
        Grantee::Proxy { account, .. } => account.unwrap(),
        Grantee::Guardian { .. } | Grantee::ShareLink { .. } => panic!("a proxy grant"),
    };
    assert_eq!(store.for_grantee(holder).await.unwrap().len(), 1);
    assert!(
        !store.accept(grant.id, carer.id, now, until).await.unwrap(),
        "not twice"
    );

    // Narrowed, then revoked once; a revoked grant's scope stays as it was.
    let narrow = GrantScope {
        kinds: [RecordKind::Observation].into(),
        actions: [Action::Read].into(),
        labels: SensitivityLabels::empty(),
        ..scope
    };
    assert!(store.set_scope(grant.id, &narrow).await.unwrap());
    assert_eq!(
        GrantRepository::find(&store, grant.id)
            .await
            .unwrap()
            .unwrap()
            .scope,
        narrow
    );
    assert!(store.revoke(grant.id, owner.id, now).await.unwrap());
    assert!(!store.revoke(grant.id, owner.id, now).await.unwrap());
    assert!(!store.set_scope(grant.id, &narrow).await.unwrap());
    assert_eq!(
        GrantRepository::find(&store, grant.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        GrantState::Revoked {
            at: now,
            by: owner.id
        }
    );
}

#[tokio::test]
async fn guardianships_are_told_once_and_wrong_passcodes_count_then_lock_a_link() {
    use salus_domain::access::{Action, GrantScope};
    use salus_domain::account::{
        Account, AccountRepository, AccountState, ChartLink, PasswordHash, Role, TokenDigest,
    };
    use salus_domain::consent::{
        Grant, GrantMaker, GrantRepository, GrantState, Grantee, PasscodeAttempts,
    };
    use salus_domain::organization::GuardianPolicy;
    use salus_domain::record::SensitivityLabels;
    use salus_domain::text::{Email, GrantText};
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let store = store().await;
    let clinic = org("demo", ReleasePolicy::default());
    OrganizationRepository::create(&store, &clinic)
        .await
        .unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient = first_patient(&store, clinic.id).await;
    let now = clock().now();

    // The organisation's guardian policy: the documented default, then changed.
    let stored = |store: &salus_store::Store| {
        let store = store.clone();
        async move {
            OrganizationRepository::find(&store, clinic.id)
                .await
                .unwrap()
                .unwrap()
                .guardian_policy
        }
    };
    assert_eq!(stored(&store).await, GuardianPolicy::default());
    let none = GuardianPolicy {
        hidden_from_teens: SensitivityLabels::empty(),
    };
    assert!(store.set_guardian_policy(clinic.id, none).await.unwrap());
    assert_eq!(stored(&store).await, none);

    let parent = Account {
        id: salus_domain::AccountId::generate(&UuidV7Ids),
        email: Email::parse("parent@example.org").unwrap(),
        name: salus_domain::patient::PersonName::new("Pat", "Parent").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now },
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$x"),
        created_at: now,
    };
    AccountRepository::create(&store, &parent).await.unwrap();
    let scope = |until| GrantScope {
        kinds: [RecordKind::Observation].into(),
        actions: [Action::Read, Action::Export].into(),
        labels: SensitivityLabels::empty(),
        valid_from: now - chrono::Duration::days(30),
        valid_until: until,
    };
    let ended_at = now - chrono::Duration::hours(1);
    let guardian = Grant {
        id: salus_domain::GrantId::generate(&UuidV7Ids),
        patient,
        grantee: Grantee::Guardian {
            account: parent.id,
            email: parent.email.clone(),
            relationship: Some(GrantText::parse("mother").unwrap()),
        },
        scope: scope(ended_at),
        state: GrantState::Active {
            accepted_at: now - chrono::Duration::days(30),
            until: ended_at,
        },
        note: None,
        made_by: GrantMaker::Staff(parent.id),
        made_at: now - chrono::Duration::days(30),
    };
    GrantRepository::create(&store, &guardian, None)
        .await
        .unwrap();
    assert_eq!(
        GrantRepository::find(&store, guardian.id).await.unwrap(),
        Some(guardian.clone()),
        "a guardianship reads back as written"
    );
    assert!(
        store
            .guardianships_ended(ended_at - chrono::Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.guardianships_ended(now, 10).await.unwrap();
    assert_eq!(due.iter().map(|g| g.id).collect::<Vec<_>>(), [guardian.id]);
    let (a, b) = tokio::join!(
        store.mark_end_notified(guardian.id, now),
        store.mark_end_notified(guardian.id, now)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|w| **w).count(),
        1,
        "told once"
    );
    assert!(store.guardianships_ended(now, 10).await.unwrap().is_empty());

    // A share link: ten wrong passcodes at once all count, and lock it for good.
    let link = Grant {
        id: salus_domain::GrantId::generate(&UuidV7Ids),
        patient,
        grantee: Grantee::ShareLink {
            recipient: Some(GrantText::parse("Dr Jones").unwrap()),
            passcode: Some(PasswordHash::new("$argon2id$passcode")),
            attempts: PasscodeAttempts::default(),
        },
        scope: scope(now + chrono::Duration::days(1)),
        state: GrantState::Active {
            accepted_at: now,
            until: now + chrono::Duration::days(1),
        },
        note: None,
        made_by: GrantMaker::Patient(parent.id),
        made_at: now,
    };
    let token = TokenDigest([7; 32]);
    GrantRepository::create(&store, &link, Some(token))
        .await
        .unwrap();
    assert_eq!(store.by_token(&token).await.unwrap(), Some(link.clone()));
    let first = store.passcode_failed(link.id, now, 10).await.unwrap();
    assert_eq!((first.failed, first.locked_at), (1, None));
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..9 {
        let store = store.clone();
        tries.spawn(async move { store.passcode_failed(link.id, now, 10).await });
    }
    while let Some(done) = tries.join_next().await {
        assert!(done.unwrap().is_ok());
    }
    let stored = GrantRepository::find(&store, link.id)
        .await
        .unwrap()
        .unwrap();
    let Grantee::ShareLink { attempts, .. } = stored.grantee.clone() else {
        panic!("a share link");
    };
    assert_eq!(attempts.failed, 10, "every wrong passcode counted");
    assert_eq!(attempts.locked_at, Some(now), "locked at the tenth");
    assert_eq!(
        store.by_token(&token).await.unwrap().map(|g| g.grantee),
        Some(stored.grantee.clone()),
        "its token still names it, to say it is locked"
    );
    assert!(
        stored.actor(None, now).is_none(),
        "a locked link gives no actor"
    );
}

/// A store several connections use at once: the PostgreSQL test database, or a SQLite file
/// (an in-memory SQLite database has one connection, which races nothing).
async fn racing_store() -> (Store, Option<tempfile::TempDir>) {
    if std::env::var("SALUS_TEST_POSTGRES_URL").is_ok() {
        return (store().await, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/race.db", dir.path().display());
    let store = Store::connect(
        &url,
        PoolSettings {
            max_connections: 8,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    (store, Some(dir))
}

#[tokio::test]
async fn fifty_concurrent_bookings_of_one_slot_give_one_appointment_and_a_reschedule_is_atomic() {
    use salus_domain::scheduling::{
        Appointment, AppointmentState, Location, OnlineBooking, Provider, SchedulingRepository,
        Slot, SlotState, SlotTime, VisitMode, VisitType,
    };
    use salus_domain::{AccountId, AppointmentId, LocationId, ProviderId, SlotId, VisitTypeId};
    let (store, _dir) = racing_store().await;
    let clinic = org("race-clinic", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    // One patient, imported from a small bundle.
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [{
        "fullUrl": "urn:uuid:7f1c2a10-0000-4000-8000-000000000001",
        "resource": {"resourceType": "Patient", "id": "race-1",
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "RACE0001"}],
            "name": [{"given": ["Rosa"], "family": "Diaz"}], "gender": "female",
            "birthDate": "1961-03-14"}}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patient.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient = first_patient(&store, clinic.id).await;

    let location = Location {
        id: LocationId::generate(&UuidV7Ids),
        organization: clinic.id,
        name: "Main Street".into(),
        address: "1 Main Street".into(),
        time_zone: "Europe/Berlin".parse().unwrap(),
    };
    store.create_location(&location).await.unwrap();
    let provider = Provider {
        id: ProviderId::generate(&UuidV7Ids),
        organization: clinic.id,
        practitioner: None,
        name: "Dr Mira Osei".into(),
        active: true,
        video_url: Some("https://video.example.test/osei".into()),
    };
    store.create_provider(&provider).await.unwrap();
    let kind = VisitType {
        id: VisitTypeId::generate(&UuidV7Ids),
        organization: clinic.id,
        name: "Check-up".into(),
        minutes: 20,
        mode: VisitMode::InPerson,
        online: OnlineBooking::Everyone,
        max_per_patient: 2,
        bring: None,
    };
    store.create_visit_type(&kind).await.unwrap();
    assert_eq!(store.visit_type(kind.id).await.unwrap(), Some(kind.clone()));
    let at = |hour| Utc.with_ymd_and_hms(2027, 1, 11, hour, 0, 0).unwrap();
    let slot = |hour| Slot {
        id: SlotId::generate(&UuidV7Ids),
        organization: clinic.id,
        provider: provider.id,
        location: location.id,
        visit_type: kind.id,
        time: SlotTime {
            start: at(hour),
            end: at(hour) + chrono::Duration::minutes(20),
        },
        state: SlotState::Open,
    };
    let slots = [slot(9), slot(10), slot(11)];
    assert_eq!(store.add_slots(&slots).await.unwrap(), 3);
    // Generating the same times again adds nothing.
    assert_eq!(store.add_slots(&[slot(9), slot(10)]).await.unwrap(), 0);

    let appointment = |s: &Slot| Appointment {
        id: AppointmentId::generate(&UuidV7Ids),
        organization: clinic.id,
        patient,
        slot: s.id,
        provider: s.provider,
        location: s.location,
        visit_type: s.visit_type,
        time: s.time,
        reason: "A check-up".into(),
        booked_by: AccountId::generate(&UuidV7Ids),
        booked_at: at(8),
        state: AppointmentState::Booked,
    };
    // Fifty at once for the nine o'clock slot: the database lets one through.
    let tries: Vec<_> = (0..50)
        .map(|_| {
            let (store, a) = (store.clone(), appointment(&slots[0]));
            tokio::spawn(async move { (store.book(&a).await.unwrap(), a.id) })
        })
        .collect();
    let mut won = Vec::new();
    for t in tries {
        let (booked, id) = t.await.unwrap();
        if booked {
            won.push(id);
        }
    }
    assert_eq!(won.len(), 1, "exactly one booking of the slot");
    let mine = won[0];
    assert_eq!(
        store.slot(slots[0].id).await.unwrap().unwrap().state,
        SlotState::Booked(mine)
    );
    assert_eq!(store.appointments_of(patient).await.unwrap().len(), 1);

    // Someone else has eleven o'clock: moving there changes nothing.
    assert!(store.book(&appointment(&slots[2])).await.unwrap());
    assert!(!store.reschedule(mine, &slots[2]).await.unwrap());
    assert_eq!(
        store.slot(slots[0].id).await.unwrap().unwrap().state,
        SlotState::Booked(mine),
        "the old slot is still held"
    );
    // Ten o'clock is free: taken, then nine freed.
    assert!(store.reschedule(mine, &slots[1]).await.unwrap());
    assert_eq!(
        store.slot(slots[0].id).await.unwrap().unwrap().state,
        SlotState::Open
    );
    assert_eq!(
        store.slot(slots[1].id).await.unwrap().unwrap().state,
        SlotState::Booked(mine)
    );
    let moved = store.appointment(mine).await.unwrap().unwrap();
    assert_eq!((moved.slot, moved.time.start), (slots[1].id, at(10)));

    // Cancelled once; the slot opens for the next patient.
    let by = AccountId::generate(&UuidV7Ids);
    assert!(store.cancel(mine, by, at(8), None).await.unwrap());
    assert!(!store.cancel(mine, by, at(8), None).await.unwrap());
    assert_eq!(
        store.slot(slots[1].id).await.unwrap().unwrap().state,
        SlotState::Open
    );
    assert!(store.book(&appointment(&slots[1])).await.unwrap());

    // Templates generate the rolling horizon's slots; a second run adds nothing, days off
    // stay empty, and the slots booked above stay booked.
    use chrono::{NaiveDate, NaiveTime, Weekday};
    use salus_domain::scheduling::{
        DayOff, SchedulingPorts, SchedulingService, Template, WeeklyTemplate,
    };
    let template = Template {
        id: salus_domain::TemplateId::generate(&UuidV7Ids),
        organization: clinic.id,
        provider: provider.id,
        location: location.id,
        visit_type: kind.id,
        weekly: WeeklyTemplate {
            weekday: Weekday::Mon,
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            minutes: 20,
            valid_from: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            valid_until: None,
        },
    };
    store.create_template(&template).await.unwrap();
    assert_eq!(store.templates_of(clinic.id).await.unwrap(), vec![template]);
    let off = DayOff {
        provider: provider.id,
        date: NaiveDate::from_ymd_opt(2027, 1, 18).unwrap(),
        reason: Some("Training".into()),
    };
    store.add_day_off(&off).await.unwrap();
    store.add_day_off(&off).await.unwrap();
    let from = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    let until = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
    assert_eq!(
        store.days_off(provider.id, from, until).await.unwrap(),
        vec![off]
    );
    let service = SchedulingService::new(SchedulingPorts {
        schedule: Arc::new(store.clone()),
        patients: Arc::new(store.clone()),
        log: Arc::new(store.clone()),
        clock: clock(),
        ids: Arc::new(UuidV7Ids),
        accounts: Arc::new(store.clone()),
        mailer: Arc::new(NoMail),
        public_url: "http://localhost".into(),
        cancel_cutoff_hours: 24,
        horizon_days: 90,
    });
    // Mondays of January 2027 from the 4th: 4, 11, 18 (off), 25; nine slots each.
    let added = service.generate_slots(clinic.id, from, 30).await.unwrap();
    assert_eq!(
        added,
        9 * 3 - 2,
        "the 11th's 10:00 and 11:00 Berlin time (09:00, 10:00 UTC) were there already"
    );
    assert_eq!(
        service.generate_slots(clinic.id, from, 30).await.unwrap(),
        0
    );
    assert!(
        matches!(
            store.slot(slots[2].id).await.unwrap().unwrap().state,
            SlotState::Booked(_)
        ),
        "a booked slot stays booked"
    );

    // "The next available": the earliest open slot however many empty days come first,
    // booked ones skipped, a provider filter that matches nothing answers nothing.
    use salus_domain::scheduling::SlotQuery;
    let query = |provider| SlotQuery {
        visit_type: kind.id,
        provider,
        location: None,
        from: Utc.with_ymd_and_hms(2027, 1, 11, 9, 0, 0).unwrap(),
        until: None,
        limit: 4,
    };
    let next = store.open_slots(clinic.id, &query(None)).await.unwrap();
    let starts: Vec<_> = next.iter().map(|s| s.time.start).collect();
    assert_eq!(
        starts,
        [
            Utc.with_ymd_and_hms(2027, 1, 11, 9, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 11, 9, 20, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 11, 9, 40, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 11, 10, 20, 0).unwrap(),
        ],
        "09:00 UTC was freed by the move; 10:00 is booked"
    );
    let nobody = Some(salus_domain::ProviderId::generate(&UuidV7Ids));
    assert!(
        store
            .open_slots(clinic.id, &query(nobody))
            .await
            .unwrap()
            .is_empty()
    );

    // The set-up lists, the organisation's cut-off, and which organisations have templates.
    assert_eq!(
        store.locations_of(clinic.id).await.unwrap(),
        vec![location.clone()]
    );
    assert_eq!(
        store.providers_of(clinic.id).await.unwrap(),
        vec![provider.clone()]
    );
    assert_eq!(
        store.provider(provider.id).await.unwrap(),
        Some(provider.clone())
    );
    // What the rules count: booked and not over at the time asked.
    let upcoming = store.upcoming_of(patient, at(11)).await.unwrap();
    assert_eq!(
        upcoming.iter().map(|a| a.time.start).collect::<Vec<_>>(),
        vec![at(11)],
        "ten o'clock is over by eleven; the cancelled one never counts"
    );
    assert_eq!(
        store.visit_types_of(clinic.id).await.unwrap(),
        vec![kind.clone()]
    );
    assert_eq!(store.cancel_cutoff(clinic.id).await.unwrap(), None);
    store.set_cancel_cutoff(clinic.id, 48).await.unwrap();
    store.set_cancel_cutoff(clinic.id, 12).await.unwrap();
    assert_eq!(store.cancel_cutoff(clinic.id).await.unwrap(), Some(12));
    assert_eq!(
        store.scheduling_organizations().await.unwrap(),
        vec![clinic.id]
    );

    // Blocking takes an open slot out and back; a booked one is neither.
    let open = next[0].id;
    assert!(store.set_blocked(open, true).await.unwrap());
    assert!(!store.set_blocked(open, true).await.unwrap());
    assert_eq!(
        store.slot(open).await.unwrap().unwrap().state,
        SlotState::Blocked
    );
    assert!(store.set_blocked(open, false).await.unwrap());
    assert!(
        !store.set_blocked(slots[2].id, true).await.unwrap(),
        "booked"
    );

    // A day's view holds every state; a day off removes only the open ones.
    let day = |h| Utc.with_ymd_and_hms(2027, 1, 25, h, 0, 0).unwrap();
    let monday = store
        .slots_between(clinic.id, Some(provider.id), None, day(0), day(23))
        .await
        .unwrap();
    assert_eq!(monday.len(), 9);
    let held = appointment(&monday[0]);
    assert!(store.book(&held).await.unwrap());
    assert!(store.set_blocked(monday[1].id, true).await.unwrap());
    assert_eq!(
        store
            .remove_open_slots(provider.id, day(0), day(23))
            .await
            .unwrap(),
        7
    );
    let left = store
        .slots_between(clinic.id, None, Some(location.id), day(0), day(23))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![SlotState::Booked(held.id), SlotState::Blocked]
    );
    assert_eq!(
        store.appointments_by_id(&[held.id]).await.unwrap(),
        vec![held.clone()]
    );

    // The waitlist: once per appointment; only those with a later booked visit wait for a
    // freed time, first come first.
    use salus_domain::scheduling::WaitlistEntry;
    let entry = |a: &Appointment, minutes| WaitlistEntry {
        appointment: a.id,
        organization: clinic.id,
        patient,
        visit_type: kind.id,
        created_at: at(8) + chrono::Duration::minutes(minutes),
        notified_at: None,
    };
    let later = appointment(&slot(12));
    store.add_slots(&[slot(12)]).await.unwrap_or_default();
    let twelve = store
        .slots_between(clinic.id, None, None, at(12), at(13))
        .await
        .unwrap();
    let later = Appointment {
        slot: twelve[0].id,
        ..later
    };
    assert!(store.book(&later).await.unwrap());
    assert!(store.join_waitlist(&entry(&held, 1)).await.unwrap());
    assert!(store.join_waitlist(&entry(&later, 2)).await.unwrap());
    assert!(
        !store.join_waitlist(&entry(&later, 3)).await.unwrap(),
        "once"
    );
    let waiting = store.waiting_for(clinic.id, kind.id, at(11)).await.unwrap();
    assert_eq!(
        waiting.iter().map(|w| w.appointment).collect::<Vec<_>>(),
        vec![held.id, later.id],
        "both hold a visit after 11:00 on the 11th, first come first"
    );
    let waiting = store.waiting_for(clinic.id, kind.id, day(1)).await.unwrap();
    assert_eq!(waiting.len(), 1, "only the 25th's is later than its 01:00");
    store.mark_notified(&[held.id], at(9)).await.unwrap();
    assert_eq!(
        store
            .waitlist_entry(held.id)
            .await
            .unwrap()
            .unwrap()
            .notified_at,
        Some(at(9))
    );
    assert!(store.leave_waitlist(held.id).await.unwrap());
    assert!(!store.leave_waitlist(held.id).await.unwrap());

    // Reminders: due ones by start; each taken once; a move makes a new one due.
    let due = store.due_reminders(at(11), at(13)).await.unwrap();
    assert_eq!(due.iter().map(|a| a.id).collect::<Vec<_>>(), vec![later.id]);
    assert!(store.take_reminder(later.id, at(9)).await.unwrap());
    assert!(!store.take_reminder(later.id, at(9)).await.unwrap());
    assert!(
        store
            .due_reminders(at(11), at(13))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn statements_round_trip_in_minor_units_and_numbers_are_unique_per_organisation() {
    use salus_domain::billing::{BillingRepository, Currency, LineItem, Money, Statement};
    let (store, _dir) = racing_store().await;
    let clinic = org("billing-clinic", ReleasePolicy::default());
    store.create(&clinic).await.unwrap();
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [{
        "fullUrl": "urn:uuid:7f1c2a10-0000-4000-8000-000000000002",
        "resource": {"resourceType": "Patient", "id": "bill-1",
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "BILL0001"}],
            "name": [{"given": ["Rosa"], "family": "Diaz"}], "gender": "female",
            "birthDate": "1961-03-14"}}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patient.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    import_file(&store, clinic.id, &path).await;
    let patient = first_patient(&store, clinic.id).await;
    let eur = Currency::parse("EUR").unwrap();
    let money = |minor| Money::new(minor, eur);
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let statement = |number: &str, issued| Statement {
        id: salus_domain::StatementId::generate(&UuidV7Ids),
        organization: clinic.id,
        patient,
        number: number.into(),
        issued,
        due: issued + chrono::Duration::days(30),
        currency: eur,
        items: vec![
            LineItem {
                service_date: day(2),
                description: "Office visit".into(),
                charge: money(20_000),
                insurance_paid: money(15_000),
                adjustments: money(2_000),
                patient_share: money(3_000),
            },
            LineItem {
                service_date: day(2),
                description: "Blood panel".into(),
                charge: money(9_999_999_999),
                insurance_paid: money(0),
                adjustments: money(0),
                patient_share: money(9_999_999_999),
            },
        ],
    };
    let first = statement("ST-1001", day(5));
    let second = statement("ST-1002", day(20));
    store.create_statement(&first).await.unwrap();
    store.create_statement(&second).await.unwrap();
    assert_eq!(
        store.statement(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.statements_of(patient).await.unwrap(),
        vec![second.clone(), first.clone()],
        "newest first, lines in order, amounts to the cent"
    );
    assert_eq!(
        store
            .statement(first.id)
            .await
            .unwrap()
            .unwrap()
            .totals()
            .unwrap()
            .patient_share,
        money(10_000_002_999)
    );
    // The same number again, in the same organisation: refused, nothing half-stored.
    let again = statement("ST-1001", day(21));
    assert!(matches!(
        store.create_statement(&again).await,
        Err(salus_domain::RepoError::Conflict(_))
    ));
    assert_eq!(store.statement(again.id).await.unwrap(), None);
    assert_eq!(store.statements_of(patient).await.unwrap().len(), 2);
    payments_are_recorded_once_per_key_and_version(&store, clinic.id, patient, eur).await;
}

/// Payments, refunds and adjustments of an account with two statements (version 2): twenty
/// records of one key at once give one payment; a stale version or a used key writes nothing;
/// a payment settles once; the ledger reads back what the balance is computed from.
async fn payments_are_recorded_once_per_key_and_version(
    store: &Store,
    organization: OrganizationId,
    patient: salus_domain::PatientId,
    eur: salus_domain::billing::Currency,
) {
    use salus_domain::billing::{
        Adjustment, BillingRepository, Money, Payment, PaymentState, Recorded, Refund,
    };
    let at = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
    let money = |minor| Money::new(minor, eur);
    let clerk = salus_domain::AccountId::generate(&UuidV7Ids);
    let pay = |key: &str, minor| Payment {
        id: salus_domain::PaymentId::generate(&UuidV7Ids),
        organization,
        patient,
        key: key.into(),
        amount: money(minor),
        state: PaymentState::Pending,
        created_at: at,
        made_by: None,
    };
    assert_eq!(store.ledger(patient).await.unwrap().version, 2);
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let (store, p) = (store.clone(), pay("same-key-1", 1_000));
            tokio::spawn(async move { store.record_payment(&p, 2).await.unwrap() })
        })
        .collect();
    let mut recorded = 0;
    for t in tries {
        if t.await.unwrap() == Recorded::Recorded {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1, "one of twenty records of one key");
    let ledger = store.ledger(patient).await.unwrap();
    assert_eq!((ledger.version, ledger.payments.len()), (3, 1));
    assert_eq!(
        store
            .record_payment(&pay("other-key-1", 500), 2)
            .await
            .unwrap(),
        Recorded::Stale
    );
    assert_eq!(
        store
            .record_payment(&pay("same-key-1", 1_000), 3)
            .await
            .unwrap(),
        Recorded::KeyUsed
    );
    let id = ledger.payments[0].id;
    assert_eq!(
        store
            .pending_payments(at - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        Vec::new()
    );
    assert_eq!(store.pending_payments(at).await.unwrap().len(), 1);
    let charged = PaymentState::Succeeded {
        at,
        reference: "ch_1".into(),
    };
    assert!(store.settle_payment(id, &charged).await.unwrap());
    assert!(
        !store
            .settle_payment(id, &PaymentState::Failed { at })
            .await
            .unwrap(),
        "settled once"
    );
    assert_eq!(store.payment(id).await.unwrap().unwrap().state, charged);
    let refund = Refund {
        id: salus_domain::RefundId::generate(&UuidV7Ids),
        payment: id,
        organization,
        patient,
        key: "refund-key-1".into(),
        amount: money(400),
        reason: "Charged twice".into(),
        by: clerk,
        created_at: at,
        state: PaymentState::Pending,
    };
    assert_eq!(
        store.record_refund(&refund, 4).await.unwrap(),
        Recorded::Recorded
    );
    let again = Refund {
        id: salus_domain::RefundId::generate(&UuidV7Ids),
        ..refund.clone()
    };
    assert_eq!(
        store.record_refund(&again, 5).await.unwrap(),
        Recorded::KeyUsed
    );
    assert!(store.settle_refund(refund.id, &charged).await.unwrap());
    store
        .record_adjustment(&Adjustment {
            id: salus_domain::AdjustmentId::generate(&UuidV7Ids),
            organization,
            patient,
            amount: money(-500),
            reason: "Courtesy".into(),
            by: clerk,
            at,
        })
        .await
        .unwrap();
    let ledger = store.ledger(patient).await.unwrap();
    assert_eq!(ledger.version, 7);
    assert_eq!(ledger.refunds[0].state, charged);
    let balance = ledger.balance(eur).unwrap();
    assert_eq!(balance.owed, money(2 * 10_000_002_999 - 1_000 + 400 - 500));
    assert_eq!(store.statement_count(organization).await.unwrap(), 2);
}

#[tokio::test]
async fn the_same_test_over_time_is_a_range_of_the_code_index() {
    let store = store().await;
    let plan = store.explain_trend().await.unwrap().join("\n");
    assert!(
        plan.contains("ix_records_patient_code_time"),
        "the trend does not use the code index:\n{plan}"
    );
    match store.backend() {
        sea_orm::DbBackend::Sqlite => assert!(
            !plan.contains("TEMP B-TREE"),
            "SQLite sorts instead of reading the index:\n{plan}"
        ),
        _ => assert!(
            !plan.contains("Sort"),
            "PostgreSQL sorts instead of reading the index:\n{plan}"
        ),
    }
}

/// All `report_results` rows, in order.
async fn report_links(store: &Store) -> Vec<(uuid::Uuid, i32, uuid::Uuid)> {
    use sea_orm::ConnectionTrait;
    let db = store.connection();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT report_id, position, result_id FROM report_results ORDER BY report_id, position",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "report_id").unwrap(),
                r.try_get("", "position").unwrap(),
                r.try_get("", "result_id").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_record_comes_with_its_context_and_the_migration_rebuilds_the_report_links() {
    use salus_domain::record::RecordBody;
    let Some(bundle) = salus_tests::synthea_bundles().into_iter().next() else {
        return; // fixtures_dir() already said so loudly (and panicked under CI)
    };
    let store = store().await;
    let o = org("context-clinic", ReleasePolicy::default());
    store.create(&o).await.unwrap();
    import_file(&store, o.id, &bundle).await;
    let chart = {
        use sea_orm::ConnectionTrait;
        let db = store.connection();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT id FROM patients",
            ))
            .await
            .unwrap()
            .unwrap();
        salus_domain::PatientId::from_uuid(row.try_get("", "id").unwrap())
    };
    let reports = store
        .list_for_patient(
            chart,
            RecordKind::DiagnosticReport,
            &RecordQuery::default(),
            None,
            200,
        )
        .await
        .unwrap()
        .items;
    let (report, results) = reports
        .iter()
        .find_map(|r| match &r.body {
            RecordBody::DiagnosticReport(d) if d.results.len() >= 2 => Some((r, &d.results)),
            _ => None,
        })
        .expect("a report of several results");

    // A report: its results, in its order.
    let got = store
        .find_in_context(report.meta.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.record, report);
    let ids: Vec<_> = got.related.iter().map(|r| r.meta.id).collect();
    assert_eq!(&ids, results);
    // A result: the report that groups it.
    let got = store
        .find_in_context(results[1], None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.record.meta.id, results[1]);
    assert_eq!(
        got.related.iter().map(|r| r.meta.id).collect::<Vec<_>>(),
        vec![report.meta.id]
    );
    // A visit: the records filed under it, oldest first.
    let visit = report.meta.encounter_id.expect("the report is of a visit");
    let got = store.find_in_context(visit, None).await.unwrap().unwrap();
    assert!(got.related.len() > results.len(), "{}", got.related.len());
    assert!(
        got.related
            .iter()
            .all(|r| r.meta.encounter_id == Some(visit))
    );
    assert!(
        got.related
            .windows(2)
            .all(|w| (w[0].sort_time(), w[0].meta.id) <= (w[1].sort_time(), w[1].meta.id))
    );
    // Related records not released by the instant asked are left out; the record is not
    // (the caller decides on it).
    let long_ago = Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).unwrap();
    let got = store
        .find_in_context(visit, Some(long_ago))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.record.meta.id, got.related.len()), (visit, 0));
    assert!(
        store
            .find_in_context(salus_domain::RecordId::from_uuid(uuid::Uuid::nil()), None)
            .await
            .unwrap()
            .is_none()
    );

    // The links written with the import are the ones the migration builds from the stored
    // reports.
    let written = report_links(&store).await;
    assert!(written.len() >= results.len());
    use salus_store::migration::Migrator;
    use sea_orm_migration::MigratorTrait;
    Migrator::down(store.connection(), Some(1)).await.unwrap();
    Migrator::up(store.connection(), None).await.unwrap();
    assert_eq!(report_links(&store).await, written);
}

#[tokio::test]
async fn an_export_reads_its_chart_through_a_patient_index() {
    let store = store().await;
    let plan = store.explain_export().await.unwrap().join("\n");
    assert!(
        plan.contains("ix_records_patient_"),
        "the export does not read by chart:\n{plan}"
    );
    assert!(
        !plan.contains("ix_records_release_state"),
        "the export reads every chart's records by state:\n{plan}"
    );
    if store.backend() == sea_orm::DbBackend::Sqlite {
        assert!(
            !plan.contains("TEMP B-TREE"),
            "SQLite sorts the chart instead of reading the index in order:\n{plan}"
        );
    }
}

#[tokio::test]
async fn a_record_view_is_index_lookups_only() {
    let store = store().await;
    let plan = store.explain_context().await.unwrap().join("\n");
    match store.backend() {
        sea_orm::DbBackend::Sqlite => {
            for index in ["ix_report_results_result", "ix_records_encounter"] {
                assert!(plan.contains(index), "{index} not used:\n{plan}");
            }
            assert!(
                !plan.contains("SCAN clinical_records") && !plan.contains("release_state"),
                "a part reads more than its rows:\n{plan}"
            );
        }
        _ => assert!(
            !plan.contains("Seq Scan on clinical_records"),
            "a part reads the whole table:\n{plan}"
        ),
    }
}
