//! Throughput of importing every fixture bundle (map + store) into a fresh file-backed SQLite
//! database in WAL mode: criterion reports resources per second (bundle entries, including
//! the ones skipped as unmodelled).
//!
//! Run with `cargo xtask bench import` (or `cargo bench -p salus-store --bench import`).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use salus_domain::import::ImportService;
use salus_domain::organization::{
    Organization, OrganizationRepository, PortalFeature, ReleasePolicy,
};
use salus_domain::text::{OrgName, Slug};
use salus_domain::{OrganizationId, SystemClock};
use salus_fhir::{MapOptions, map_bundle};
use salus_store::{PoolSettings, Store, UuidV7Ids};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn import(c: &mut Criterion) {
    let bundles: Vec<Vec<u8>> = salus_tests::synthea_bundles()
        .iter()
        .map(|p| std::fs::read(p).expect("read fixture"))
        .collect();
    assert!(
        !bundles.is_empty(),
        "the import benchmark needs the fixtures (SALUS_FIXTURES)"
    );
    let resources: usize = bundles
        .iter()
        .map(|b| {
            map_bundle(b, opts(OrganizationId::generate(&UuidV7Ids)), &UuidV7Ids)
                .expect("fixture maps")
                .resources
        })
        .sum();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("fhir_import");
    group.throughput(Throughput::Elements(resources as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("all_fixture_bundles_into_sqlite_file", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile_dir();
                    let url = format!("sqlite://{}/bench.db", dir.display());
                    let store = Store::connect(&url, PoolSettings::default())
                        .await
                        .expect("connect");
                    store.migrate().await.expect("migrate");
                    let org = demo_org();
                    store.create(&org).await.expect("org");
                    let service = ImportService::new(
                        Arc::new(store.clone()),
                        Arc::new(store.clone()),
                        Arc::new(SystemClock),
                    );
                    let started = Instant::now();
                    for bytes in &bundles {
                        let mapped = map_bundle(bytes, opts(org.id), &UuidV7Ids).expect("map");
                        service.import(org.id, mapped.draft).await.expect("import");
                    }
                    total += started.elapsed();
                    drop(store);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                total
            })
        });
    });
    group.finish();
}

fn opts(organization_id: OrganizationId) -> MapOptions {
    MapOptions {
        organization_id,
        from_outside: false,
    }
}

fn demo_org() -> Organization {
    Organization {
        id: OrganizationId::generate(&UuidV7Ids),
        name: OrgName::parse("Bench Clinic").expect("name"),
        slug: Slug::parse("bench").expect("slug"),
        features: [PortalFeature::Records].into_iter().collect(),
        release_policy: ReleasePolicy::default(),
        phone: None,
        time_zone: salus_domain::chrono_tz::Tz::UTC,
        guardian_policy: salus_domain::organization::GuardianPolicy::default(),
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("salus-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

criterion_group!(benches, import);
criterion_main!(benches);
