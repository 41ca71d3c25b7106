//! `cargo xtask bench scheduling`: appointments through the real `salus` server process on a
//! database of 10,000 synthetic patients (or `BENCH_SCHEDULING_PATIENTS`).
//!
//! - one location, 200 bookable providers, one 20-minute visit type, weekday hours 09:00–12:00
//!   for every provider, slots generated for 90 days (about 117,000);
//! - at 16 and 64 concurrent connections (`wrk`): the lab results page (the yardstick), the
//!   patient's search for the next open times (`GET /api/v1/slots`), and the front desk
//!   booking distinct times for distinct patients (`POST /api/v1/appointments`, each request
//!   sent once): requests/s, p50, p99, the median of three rounds; every request is
//!   authenticated, authorised and audited;
//! - the ceiling of booking: the same writes (the conditional take of the slot with the
//!   appointment's insert in one transaction, then the audit entry) straight on the store at
//!   the same concurrency, without HTTP, sessions or the domain's checks;
//! - the server's peak resident memory (`VmHWM`).
//!
//! Targets (issue 16): the search within 2x the lab results page's latency at the same load;
//! booking limited by the database's commits (its rate near the store's ceiling), not by
//! locks in our code.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark driver reports on stdout"
)]

mod support;

use chrono::{NaiveTime, Weekday};
use salus_domain::access::{Action, Actor};
use salus_domain::audit::{AccessEvent, AccessLog as _, ActorRef, BookingStep, Outcome, Step};
use salus_domain::scheduling::{
    Appointment, AppointmentState, Location, OnlineBooking, Provider, SchedulingRepository as _,
    Slot, SlotState, Template, VisitMode, VisitType, WeeklyTemplate,
};
use salus_store::{PoolSettings, Store, UuidV7Ids};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{ACCOUNTS, Hit, Server, accounts, load, load_once_each, median, ms, seeded};

const PHASE: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;
const PROVIDERS: usize = 200;
const HORIZON_DAYS: u32 = 90;

/// Creates the organisation's schedule on the store and generates its slots. Answers the
/// visit type.
async fn schedule(store: &Store, org: salus_domain::OrganizationId, patients: u32) -> VisitType {
    for table in [
        "waitlist",
        "appointments",
        "slots",
        "availability_exceptions",
        "availability_templates",
        "visit_types",
        "bookable_providers",
        "locations",
        "scheduling_settings",
    ] {
        sea_orm::ConnectionTrait::execute_unprepared(
            store.connection(),
            &format!("DELETE FROM {table}"),
        )
        .await
        .unwrap();
    }
    let location = Location {
        id: salus_domain::LocationId::generate(&UuidV7Ids),
        organization: org,
        name: "Main Street Clinic".into(),
        address: "100 Main Street, Springfield".into(),
        time_zone: "America/New_York".parse().unwrap(),
    };
    store.create_location(&location).await.unwrap();
    let kind = VisitType {
        id: salus_domain::VisitTypeId::generate(&UuidV7Ids),
        organization: org,
        name: "Follow-up visit".into(),
        minutes: 20,
        mode: VisitMode::InPerson,
        online: OnlineBooking::Everyone,
        // Enough for every patient to share out the ~117,000 slots (distinct times each).
        max_per_patient: u8::try_from((120_000 / patients.max(1)).clamp(1, 200)).unwrap(),
        bring: None,
    };
    store.create_visit_type(&kind).await.unwrap();
    let today = salus_domain::Clock::now(&salus_domain::SystemClock).date_naive();
    for n in 0..PROVIDERS {
        let provider = Provider {
            id: salus_domain::ProviderId::generate(&UuidV7Ids),
            organization: org,
            practitioner: None,
            name: format!("Dr Provider {n:03}"),
            active: true,
            video_url: None,
        };
        store.create_provider(&provider).await.unwrap();
        for weekday in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            store
                .create_template(&Template {
                    id: salus_domain::TemplateId::generate(&UuidV7Ids),
                    organization: org,
                    provider: provider.id,
                    location: location.id,
                    visit_type: kind.id,
                    weekly: WeeklyTemplate {
                        weekday,
                        start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                        end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
                        minutes: 20,
                        valid_from: today,
                        valid_until: None,
                    },
                })
                .await
                .unwrap();
        }
    }
    kind
}

/// The store's booking ceiling: `conns` tasks booking the given (slot, patient) pairs (each
/// once) with the same two writes the server makes, for `phase`. Bookings per second.
async fn store_ceiling(
    store: &Store,
    conns: usize,
    pairs: Arc<Vec<(Slot, salus_domain::PatientId)>>,
    desk: salus_domain::AccountId,
    org: salus_domain::OrganizationId,
    phase: Duration,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (store, pairs, next, done) =
                (store.clone(), pairs.clone(), next.clone(), done.clone());
            tokio::spawn(async move {
                let actor = Actor::Staff {
                    account: desk,
                    role: salus_domain::account::StaffRole::FrontDesk,
                    organization: org,
                };
                while started.elapsed() < phase {
                    let Some((slot, patient)) = pairs.get(next.fetch_add(1, Ordering::Relaxed))
                    else {
                        break;
                    };
                    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
                    let a = Appointment {
                        id: salus_domain::AppointmentId::generate(&UuidV7Ids),
                        organization: org,
                        patient: *patient,
                        slot: slot.id,
                        provider: slot.provider,
                        location: slot.location,
                        visit_type: slot.visit_type,
                        time: slot.time,
                        reason: String::new(),
                        booked_by: desk,
                        booked_at: now,
                        state: AppointmentState::Booked,
                    };
                    assert!(store.book(&a).await.unwrap(), "each time once");
                    store
                        .record(AccessEvent {
                            at: now,
                            actor: ActorRef::from(&actor),
                            patient: Some(*patient),
                            action: Action::Book,
                            export: None,
                            step: Some(Step::Booking(BookingStep::Booked)),
                            record_kind: None,
                            record: None,
                            outcome: Outcome::Allowed,
                            request_id: None,
                        })
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let patients: u32 = std::env::var("BENCH_SCHEDULING_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let db = seeded(patients);
    let outbox = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let store = Store::connect(&url, PoolSettings::default()).await.unwrap();
        store.migrate().await.unwrap();
        accounts(&store, patients).await;
        let org = salus_server::importer::target_org(&store, Some("demo-clinic"))
            .await
            .unwrap();
        let started = Instant::now();
        let kind = schedule(&store, org.id, patients).await;
        let cfg = salus_server::Config {
            cheap_password_hashing_for_tests: true,
            slot_horizon_days: HORIZON_DAYS,
            ..salus_server::Config::default()
        };
        let clock: Arc<dyn salus_domain::Clock> = Arc::new(salus_domain::SystemClock);
        let state = salus_server::app::api_state(&store, &cfg, clock).unwrap();
        let slots = state.scheduling.generate_all().await.unwrap();
        eprintln!(
            "{PROVIDERS} providers, {slots} slots for {HORIZON_DAYS} days, in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        // A front desk to book with (a new one each run: its secret is known at creation).
        let desk_email = format!("desk-{}@bench.test", uuid::Uuid::now_v7().simple());
        let desk = state
            .auth
            .create_staff(
                salus_domain::account::NewStaff {
                    email: salus_domain::text::Email::parse(&desk_email).unwrap(),
                    name: salus_domain::patient::PersonName::new("Sam", "Rivera").unwrap(),
                    role: salus_domain::account::StaffRole::FrontDesk,
                    organization: org.id,
                    password: salus_domain::account::SecretText::new(support::PASSWORD),
                },
                None,
            )
            .await
            .unwrap();

        // Distinct (time, patient) pairs: the slots by start, patients in turn, so that no
        // patient holds two at once or more than the visit type allows.
        let from = salus_domain::Clock::now(&salus_domain::SystemClock) + chrono::Duration::hours(1);
        // A day at a time (a day view answers at most 5,000 times).
        let mut all = Vec::new();
        for day in 0..i64::from(HORIZON_DAYS) {
            let start = from + chrono::Duration::days(day);
            all.extend(
                store
                    .slots_between(org.id, None, None, start, start + chrono::Duration::days(1))
                    .await
                    .unwrap(),
            );
        }
        let mut charts = Vec::new();
        for n in 0..patients {
            let mrn = salus_domain::text::Mrn::parse(&format!("SYN{n:07}")).unwrap();
            if let Some(c) = salus_domain::patient::PatientRepository::find_by_mrn(&store, org.id, &mrn)
                .await
                .unwrap()
            {
                charts.push(c.id);
            }
        }
        let open: Vec<Slot> = all.into_iter().filter(|s| s.state == SlotState::Open).collect();
        let per_patient = usize::from(kind.max_per_patient);
        let pairs: Vec<(Slot, salus_domain::PatientId)> = open
            .into_iter()
            .take(charts.len() * per_patient)
            .enumerate()
            .map(|(i, s)| (s, charts[i % charts.len()]))
            .collect();
        // The last fifth is the store's, for the ceiling; the rest goes to the server.
        let (server_pairs, ceiling_pairs) = pairs.split_at(pairs.len() * 4 / 5);

        let server = Server::start(&db, outbox.path());
        let http = reqwest::Client::new();
        server.ready(&http).await;
        let base = server.base.clone();
        let mut tokens = Vec::new();
        for n in 0..ACCOUNTS {
            tokens.push(support::patient_token(&http, &base, &format!("bench{n}@bench.test")).await);
        }
        let desk_token = support::staff_token(&http, &base, &desk_email, &desk.totp.secret_base32).await;
        let lab: Vec<Hit> = tokens
            .iter()
            .map(|t| Hit::get("/api/v1/records?kind=observation&limit=25", t))
            .collect();
        let search: Vec<Hit> = tokens
            .iter()
            .map(|t| Hit::get(&format!("/api/v1/slots?visit_type_id={}&limit=20", kind.id), t))
            .collect();
        println!(
            "\n{patients} patients, {PROVIDERS} providers, {slots} slots; server peak before load {:.0} MB",
            server.peak_mb()
        );
        let mut lab_p50 = BTreeMap::new();
        for conns in [16usize, 64] {
            for (name, hits) in [("lab results page", &lab), ("next open times ", &search)] {
                let rounds: Vec<_> = (0..ROUNDS).map(|_| load(&base, conns, hits, PHASE)).collect();
                let rps = median(rounds.iter().map(|f| f.rps));
                let p50 = median(rounds.iter().map(|f| ms(f.p50)));
                let p99 = median(rounds.iter().map(|f| ms(f.p99)));
                let vs_lab = if name.starts_with("lab") {
                    lab_p50.insert(conns, p50);
                    String::new()
                } else {
                    format!(" | p50 {:.2}x the lab page", p50 / lab_p50[&conns])
                };
                println!(
                    "  {name} {conns:>2} conns: {rps:>7.0} req/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms{vs_lab} | peak so far {:.0} MB",
                    server.peak_mb()
                );
            }
        }
        // Booking: each round its own share of the pairs, each sent once.
        let shares = server_pairs.chunks(server_pairs.len() / (2 * ROUNDS));
        let mut shares = shares.map(|chunk| {
            chunk
                .iter()
                .map(|(slot, patient)| {
                    Hit::post(
                        "/api/v1/appointments",
                        &desk_token,
                        &serde_json::json!({"slot_id": slot.id.to_string(), "patient_id": patient.to_string()}),
                    )
                })
                .collect::<Vec<Hit>>()
        });
        let mut booked_rps = BTreeMap::new();
        for conns in [16usize, 64] {
            let rounds: Vec<_> = (0..ROUNDS)
                .map(|_| load_once_each(&base, conns, &shares.next().unwrap(), PHASE))
                .collect();
            let rps = median(rounds.iter().map(|f| f.rps));
            let p50 = median(rounds.iter().map(|f| ms(f.p50)));
            let p99 = median(rounds.iter().map(|f| ms(f.p99)));
            booked_rps.insert(conns, rps);
            println!(
                "  book a time      {conns:>2} conns: {rps:>7.0} req/s  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms | peak so far {:.0} MB",
                server.peak_mb()
            );
        }
        let peak = server.peak_mb();
        drop(server);
        // The ceiling: the same writes on the store, at the same concurrency.
        let ceiling = Arc::new(ceiling_pairs.to_vec());
        let half = ceiling.len() / 2;
        for (conns, part) in [(16usize, 0..half), (64, half..ceiling.len())] {
            let pairs = Arc::new(ceiling[part].to_vec());
            let rate = store_ceiling(&store, conns, pairs, desk.account, org.id, PHASE).await;
            println!(
                "  store ceiling    {conns:>2} tasks: {rate:>7.0} bookings/s (the server's booking rate is {:.2}x of it)",
                booked_rps[&conns] / rate
            );
        }
        println!("  peak server memory {peak:.1} MB (target <= 100)");
    });
}
