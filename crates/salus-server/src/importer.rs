//! Importing FHIR bundle files into an organisation (`salus import`, `cargo xtask import`).

use anyhow::{Context, bail};
use salus_domain::Clock;
use salus_domain::import::{ImportOutcome, ImportService};
use salus_domain::organization::{Organization, OrganizationRepository};
use salus_domain::text::Slug;
use salus_fhir::{MapOptions, map_bundle};
use salus_store::{Store, UuidV7Ids};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What importing one file did.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub resources: usize,
    pub outcome: ImportOutcome,
    pub skipped: BTreeMap<String, usize>,
}

/// The `*.json` files of `path` (itself when it is a file), sorted.
///
/// # Errors
/// When the path cannot be read.
pub fn bundle_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The organisation to import into: the named one, or the only one.
///
/// # Errors
/// When the named one does not exist, or none is named and there is not exactly one.
pub async fn target_org(store: &Store, slug: Option<&str>) -> anyhow::Result<Organization> {
    if let Some(slug) = slug {
        let slug = Slug::parse(slug).context("--org is not a valid organisation slug")?;
        return store
            .find_by_slug(&slug)
            .await?
            .context("no organisation with that slug");
    }
    let mut all = store.list().await?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => bail!(
            "no organisation exists yet: create one with `salus org create` or run `salus serve --demo`"
        ),
        _ => bail!("several organisations exist: name one with --org <slug>"),
    }
}

/// Maps and stores one bundle file (one transaction).
///
/// # Errors
/// When the file cannot be read, the bundle is refused (the message names the entry and
/// the problem), or the database fails. Nothing of a refused bundle is stored.
pub async fn import_file(
    store: &Store,
    org: &Organization,
    path: &Path,
    from_outside: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<FileReport> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mapped = map_bundle(
        &bytes,
        MapOptions {
            organization_id: org.id,
            from_outside,
        },
        &UuidV7Ids,
    )
    .with_context(|| format!("{} was refused", path.display()))?;
    let service = ImportService::new(Arc::new(store.clone()), Arc::new(store.clone()), clock);
    let outcome = service
        .import(org.id, mapped.draft)
        .await
        .with_context(|| format!("{} could not be stored", path.display()))?;
    Ok(FileReport {
        path: path.to_path_buf(),
        resources: mapped.resources,
        outcome,
        skipped: mapped.skipped,
    })
}

/// Imports every bundle file of `path` (a file or a folder), each in its own transaction;
/// a refused file is logged and does not stop the others.
///
/// # Errors
/// When the folder cannot be read, or when any file was not imported (after trying all).
pub async fn import_path(
    store: &Store,
    org: &Organization,
    path: &Path,
    from_outside: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Vec<FileReport>> {
    let mut reports = Vec::new();
    let mut failed = 0;
    for file in bundle_files(path)? {
        match import_file(store, org, &file, from_outside, clock.clone()).await {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed += 1;
                tracing::error!("{e:#}");
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} file(s) were not imported; nothing of them was stored"
    );
    Ok(reports)
}

/// One line per file for operators: created, already present, skipped.
pub fn summary(r: &FileReport) -> String {
    let records = |c: &salus_domain::import::ImportCounts| {
        c.records
            .iter()
            .map(|(k, n)| format!("{}={n}", k.code()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let skipped: Vec<String> = r.skipped.iter().map(|(t, n)| format!("{t}={n}")).collect();
    format!(
        "{}: {} resources; created {} (patients={} practitioners={} organizations={} {} statements={}); already present {}; skipped [{}]",
        r.path.display(),
        r.resources,
        r.outcome.created.total(),
        r.outcome.created.patients,
        r.outcome.created.practitioners,
        r.outcome.created.provider_organizations,
        records(&r.outcome.created),
        r.outcome.created.statements,
        r.outcome.already_present.total(),
        skipped.join(" "),
    )
}
