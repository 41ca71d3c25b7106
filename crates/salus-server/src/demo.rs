//! Demo data: two organisations, the fixture patients when the fixtures are present, and
//! synthetic patients. Used by `salus serve --demo`, `salus seed` and `cargo xtask seed`.

use crate::importer;
use crate::synthetic;
use anyhow::Context;
use salus_domain::import::{ImportDraft, ImportService};
use salus_domain::organization::{
    Organization, OrganizationRepository, PortalFeature, ReleasePolicy, ReleaseRule,
};
use salus_domain::record::{RecordKind, SensitivityLabel};
use salus_domain::text::{OrgName, Phone, Slug};
use salus_domain::{Clock, OrganizationId};
use salus_store::{Store, UuidV7Ids};
use std::path::PathBuf;
use std::sync::Arc;

/// The slug of the demo organisation that receives the demo patients.
pub const DEMO_SLUG: &str = "demo-clinic";

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Folder holding `synthea/*.json`; skipped (with a log line) when absent.
    pub fixtures: Option<PathBuf>,
    /// How many synthetic patients to add.
    pub synthetic_patients: u32,
    /// Seed of the synthetic generator.
    pub seed: u64,
}

/// What seeding did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub organizations_created: u32,
    pub fixture_bundles: u32,
    pub records_created: u64,
    pub patients_created: u64,
}

fn demo_organizations() -> Vec<Organization> {
    let all = PortalFeature::ALL.into_iter().collect();
    // A policy a clinic might choose: results at once (Cures Act), sensitive notes held for
    // a clinician, psychotherapy-type material never online.
    let policy = ReleasePolicy::default()
        .with_label(
            SensitivityLabel::MentalHealth,
            ReleaseRule::HeldForManualRelease,
        )
        .with_label(
            SensitivityLabel::SubstanceUse,
            ReleaseRule::HeldForManualRelease,
        )
        .with_label(SensitivityLabel::Hiv, ReleaseRule::AfterHours { hours: 72 })
        .with_label(SensitivityLabel::Genetic, ReleaseRule::HeldForManualRelease)
        .with_kind(RecordKind::ClinicalNote, ReleaseRule::Immediate);
    vec![
        Organization {
            id: OrganizationId::generate(&UuidV7Ids),
            name: OrgName::parse("Salus Demo Clinic").expect("constant name"),
            slug: Slug::parse(DEMO_SLUG).expect("constant slug"),
            features: all,
            release_policy: policy,
            phone: Some(Phone::parse("+1 617 555 0100").expect("constant phone")),
            time_zone: salus_domain::chrono_tz::America::New_York,
            guardian_policy: salus_domain::organization::GuardianPolicy::default(),
        },
        Organization {
            id: OrganizationId::generate(&UuidV7Ids),
            name: OrgName::parse("Riverside Family Practice").expect("constant name"),
            slug: Slug::parse("riverside-family").expect("constant slug"),
            features: [PortalFeature::Records, PortalFeature::Scheduling]
                .into_iter()
                .collect(),
            release_policy: ReleasePolicy::default().with_kind(
                RecordKind::Observation,
                ReleaseRule::AfterHours { hours: 24 },
            ),
            phone: Some(Phone::parse("+1 413 555 0142").expect("constant phone")),
            time_zone: salus_domain::chrono_tz::America::New_York,
            guardian_policy: salus_domain::organization::GuardianPolicy::default(),
        },
    ]
}

/// Seeds demo data; safe to run again (everything is keyed by slug or source identifier).
///
/// # Errors
/// When the database fails or a fixture bundle is refused.
pub async fn seed(
    store: &Store,
    opts: &SeedOptions,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    for org in demo_organizations() {
        if store.find_by_slug(&org.slug).await?.is_none() {
            store
                .create(&org)
                .await
                .context("cannot create a demo organisation")?;
            report.organizations_created += 1;
        }
    }
    let demo = store
        .find_by_slug(&Slug::parse(DEMO_SLUG).expect("constant slug"))
        .await?
        .context("the demo organisation vanished")?;

    match opts
        .fixtures
        .as_ref()
        .map(|d| d.join("synthea"))
        .filter(|d| d.is_dir())
    {
        Some(dir) => {
            for r in importer::import_path(store, &demo, &dir, false, clock.clone()).await? {
                tracing::info!("{}", importer::summary(&r));
                report.fixture_bundles += 1;
                report.patients_created += r.outcome.created.patients;
                report.records_created += r.outcome.created.records.values().sum::<u64>();
            }
        }
        None => tracing::warn!(
            "fixtures folder not found; demo has synthetic patients only (set SALUS_FIXTURES)"
        ),
    }

    let (patients, records) =
        seed_synthetic(store, demo.id, 0..opts.synthetic_patients, opts.seed, clock).await?;
    report.patients_created += patients;
    report.records_created += records;
    Ok(report)
}

/// Imports synthetic patients `range` into `org`, several per transaction.
/// Returns (patients created, records created).
///
/// # Errors
/// When the database fails.
pub async fn seed_synthetic(
    store: &Store,
    org: OrganizationId,
    range: std::ops::Range<u32>,
    seed: u64,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(u64, u64)> {
    const PER_BATCH: u32 = 8;
    let today = clock.now();
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock);
    let (mut patients, mut records) = (0, 0);
    let mut start = range.start;
    while start < range.end {
        let end = (start + PER_BATCH).min(range.end);
        let mut batch = ImportDraft::default();
        for n in start..end {
            let d = synthetic::patient_draft(org, n, seed, today, &UuidV7Ids);
            batch.patients.extend(d.patients);
            batch.records.extend(d.records);
        }
        let outcome = service
            .import(org, batch)
            .await
            .context("cannot store synthetic patients")?;
        patients += outcome.created.patients;
        records += outcome.created.records.values().sum::<u64>();
        start = end;
    }
    Ok((patients, records))
}

/// The demo clinician's sign-in address.
pub const DEMO_CLINICIAN_EMAIL: &str = "clinician@demo.salus.test";

/// The demo patient's sign-in address.
pub const DEMO_PATIENT_EMAIL: &str = "patient@demo.salus.test";

/// Sign-in details of a demo account created by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub email: String,
    /// `None` when the password came from `SALUS_DEMO_PASSWORD` (not echoed).
    pub generated_password: Option<String>,
}

/// Creates the demo patient account (active, linked to the demo chart with records of every
/// kind) unless it exists. The password is `password` if given (it must pass the password
/// rules), else a random one that is returned to be printed once.
///
/// # Errors
/// When the given password breaks a rule, no synthetic chart exists, or storage fails.
pub async fn seed_demo_patient_account(
    store: &Store,
    hasher: &dyn salus_domain::account::PasswordHasher,
    password: Option<String>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<DemoAccount>> {
    use salus_domain::account::{
        Account, AccountRepository, AccountState, ChartLink, PersonalInfo, Role, SecretText,
        check_new_password,
    };
    use salus_domain::patient::PatientRepository as _;
    use salus_domain::record::{RecordKind, RecordRepository as _};
    let email = salus_domain::text::Email::parse(DEMO_PATIENT_EMAIL).expect("constant email");
    if store.find_by_email(&email).await?.is_some() {
        return Ok(None);
    }
    let demo = store
        .find_by_slug(&Slug::parse(DEMO_SLUG).expect("constant slug"))
        .await?
        .context("seed the demo organisation first")?;
    // The first synthetic chart that has every kind of record (else the fullest one).
    let mut best: Option<(salus_domain::patient::Patient, usize, u64)> = None;
    for n in 0..20u32 {
        let mrn = salus_domain::text::Mrn::parse(&format!("SYN{n:07}")).expect("MRN pattern");
        let Some(chart) = store.find_by_mrn(demo.id, &mrn).await? else {
            break;
        };
        let counts = store.count_by_kind(chart.id, None).await?;
        let kinds = counts.len();
        let total: u64 = counts.values().sum();
        let better = best
            .as_ref()
            .is_none_or(|(_, k, t)| (kinds, total) > (*k, *t));
        if better {
            best = Some((chart, kinds, total));
        }
        if kinds == RecordKind::ALL.len() {
            break;
        }
    }
    let (chart, _, _) = best.context(
        "no synthetic chart to link the demo patient to; seed with --patients 1 or more",
    )?;

    let (secret, generated) = match password {
        Some(p) => (SecretText::new(p), None),
        None => {
            let token = crate::adapters::OsSecrets.new_token_for_demo();
            (SecretText::new(token.clone()), Some(token))
        }
    };
    let info = PersonalInfo {
        given_name: chart.name.given(),
        family_name: chart.name.family(),
        email: email.as_str(),
        birth_date: Some(chart.birth_date),
    };
    check_new_password(&secret, &info, &crate::adapters::ZxcvbnCommonList)
        .map_err(|r| anyhow::anyhow!("SALUS_DEMO_PASSWORD is refused: {r}"))?;
    let hash = hasher
        .hash(secret)
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the demo password: {e}"))?;
    let now = clock.now();
    AccountRepository::create(
        store,
        &Account {
            id: salus_domain::AccountId::generate(&UuidV7Ids),
            email: email.clone(),
            name: chart.name.clone(),
            birth_date: Some(chart.birth_date),
            role: Role::Patient,
            state: AccountState::Active { verified_at: now },
            chart: ChartLink::Linked { patient: chart.id },
            password: hash,
            created_at: now,
        },
    )
    .await
    .context("cannot create the demo patient account")?;
    Ok(Some(DemoAccount {
        email: email.as_str().to_owned(),
        generated_password: generated,
    }))
}

/// The demo billing office's sign-in address.
pub const DEMO_BILLING_EMAIL: &str = "billing@demo.salus.test";

/// Two statements of the demo patient's account, posted by the demo billing office (`clerk`)
/// through the same use case staff use: an office visit and a lab panel partly paid by
/// insurance, and an earlier visit.
///
/// # Errors
/// When a use case refuses (a constant is wrong) or storage fails.
pub async fn seed_demo_bills(
    billing: &salus_domain::billing::BillingService,
    clerk: &salus_domain::access::Actor,
    patient: salus_domain::PatientId,
    today: chrono::NaiveDate,
) -> anyhow::Result<()> {
    use salus_domain::billing::{LineDraft, StatementDraft};
    let line = |days_ago: i64, what: &str, amounts: [&str; 4]| LineDraft {
        service_date: today - chrono::Duration::days(days_ago),
        description: what.to_owned(),
        charge: amounts[0].to_owned(),
        insurance_paid: amounts[1].to_owned(),
        adjustments: amounts[2].to_owned(),
        patient_share: amounts[3].to_owned(),
    };
    let statements = [
        StatementDraft {
            number: "DEMO-1001".into(),
            issued: today - chrono::Duration::days(40),
            due: today - chrono::Duration::days(10),
            lines: vec![line(
                45,
                "Office visit, established patient",
                ["180.00", "130.00", "20.00", "30.00"],
            )],
        },
        StatementDraft {
            number: "DEMO-1002".into(),
            issued: today - chrono::Duration::days(5),
            due: today + chrono::Duration::days(25),
            lines: vec![
                line(
                    9,
                    "Office visit, established patient",
                    ["180.00", "130.00", "20.00", "30.00"],
                ),
                line(9, "Lipid panel", ["45.10", "0", "0", "45.10"]),
            ],
        },
    ];
    for draft in &statements {
        billing
            .post_statement(clerk, patient, draft, None)
            .await
            .map_err(|e| anyhow::anyhow!("demo bills: {e}"))?;
    }
    Ok(())
}

/// The demo front desk's sign-in address.
pub const DEMO_FRONT_DESK_EMAIL: &str = "frontdesk@demo.salus.test";

/// The demo clinic's scheduling, set up by its front desk (`desk`) through the same use cases
/// staff use: one location in the organisation's zone, the demo clinician as a bookable
/// provider with a video room, three visit types and weekday hours; slots follow for the
/// horizon.
///
/// # Errors
/// When a use case refuses (a constant is wrong) or storage fails.
pub async fn seed_demo_schedule(
    scheduling: &salus_domain::scheduling::SchedulingService,
    desk: &salus_domain::access::Actor,
    zone: &str,
) -> anyhow::Result<()> {
    use salus_domain::scheduling::{NewLocation, NewProvider, NewTemplate, NewVisitType};
    let fail = |e: salus_domain::scheduling::SchedulingError| anyhow::anyhow!("demo schedule: {e}");
    let location = scheduling
        .add_location(
            desk,
            NewLocation {
                name: "Main Street Clinic",
                address: "100 Main Street, Springfield",
                time_zone: zone,
            },
        )
        .await
        .map_err(fail)?;
    let provider = scheduling
        .add_provider(
            desk,
            NewProvider {
                practitioner: "",
                name: "Dr Mira Osei",
                video_url: "https://video.demo.salus.test/osei",
            },
        )
        .await
        .map_err(fail)?;
    let kinds = [
        (
            "Follow-up visit",
            "20",
            "in_person",
            "everyone",
            "Your medication list",
        ),
        ("Video check-in", "15", "video", "everyone", ""),
        (
            "Annual physical",
            "40",
            "in_person",
            "existing_patients",
            "Your insurance card and medication list",
        ),
    ];
    let mut ids = Vec::new();
    for (name, minutes, mode, online, bring) in kinds {
        let kind = scheduling
            .add_visit_type(
                desk,
                NewVisitType {
                    name,
                    minutes,
                    mode,
                    online,
                    max_per_patient: "1",
                    bring,
                },
            )
            .await
            .map_err(fail)?;
        ids.push(kind.id.to_string());
    }
    let (provider, location) = (provider.id.to_string(), location.id.to_string());
    let hours = [
        (0, "monday", "09:00", "12:00"),
        (0, "tuesday", "09:00", "12:00"),
        (0, "wednesday", "09:00", "12:00"),
        (0, "thursday", "09:00", "12:00"),
        (0, "friday", "09:00", "12:00"),
        (1, "tuesday", "13:00", "15:00"),
        (1, "thursday", "13:00", "15:00"),
        (2, "wednesday", "14:00", "16:00"),
    ];
    for (kind, weekday, start, end) in hours {
        scheduling
            .add_template(
                desk,
                NewTemplate {
                    provider: &provider,
                    location: &location,
                    visit_type: &ids[kind],
                    weekday,
                    start,
                    end,
                    valid_from: "",
                    valid_until: "",
                },
            )
            .await
            .map_err(fail)?;
    }
    Ok(())
}
