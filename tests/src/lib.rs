//! Helpers shared by every Salus test suite, and (under `tests/`) the end-to-end tests.
//!
//! - [`fixtures_dir`]: the one setting that finds `../shared/fixtures`.
//! - [`test_database_url`]: a fresh, empty database for one test, on SQLite or PostgreSQL.

use sea_orm::{ConnectionTrait, Database};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Where the shared FHIR fixtures are: `SALUS_FIXTURES`, default `../shared/fixtures` from the
/// project root. Returns `None` (after saying so loudly on stderr) when the folder is
/// missing; panics instead when `CI=true`, so CI can never pass without the fixtures.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SALUS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/fixtures"));
    if dir.join("synthea").is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "FIXTURES MISSING: no synthea/ folder under {} (set SALUS_FIXTURES); fixture tests did not run",
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n!!!!! {msg} !!!!!\n");
    None
}

/// Every Synthea bundle in the fixtures, sorted by file name; empty when fixtures are missing.
pub fn synthea_bundles() -> Vec<PathBuf> {
    let Some(dir) = fixtures_dir() else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("synthea"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(
        !files.is_empty(),
        "the fixtures folder has no synthea/*.json bundles"
    );
    files
}

/// The source of axe-core, the accessibility checker the browser suite runs in every page
/// (`cargo xtask test` installs the pinned version from the npm registry): `SALUS_AXE_JS`,
/// default `target/axe-core/node_modules/axe-core/axe.min.js`. `None` (said loudly) when it
/// is missing; panics instead when `CI=true`.
pub fn axe_core() -> Option<String> {
    let path = std::env::var_os("SALUS_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/axe-core/node_modules/axe-core/axe.min.js")
        });
    if let Ok(source) = std::fs::read_to_string(&path) {
        return Some(source);
    }
    let msg = format!(
        "AXE-CORE MISSING: no {} (run `cargo xtask test`, or set SALUS_AXE_JS); the accessibility check did not run",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n!!!!! {msg} !!!!!\n");
    None
}

/// The Python of the independent FHIR R4 validator (`cargo xtask test` installs it):
/// `FHIR_VALIDATOR_PYTHON`, default `target/fhir-validator/bin/python`. `None` (said loudly)
/// when it is missing; panics instead when `CI=true`.
pub fn fhir_validator() -> Option<PathBuf> {
    let python = std::env::var_os("FHIR_VALIDATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/fhir-validator/bin/python"));
    if python.is_file() {
        return Some(python);
    }
    let msg = format!(
        "FHIR VALIDATOR MISSING: no {} (run `cargo xtask test`, or set FHIR_VALIDATOR_PYTHON); validation did not run",
        python.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n!!!!! {msg} !!!!!\n");
    None
}

/// Runs the independent validator (`tests/tools/validate.py`) over FHIR JSON documents.
/// `Ok(report)` when every document and every resource in it parses as FHIR R4.
///
/// # Errors
/// The validator's report when anything does not parse.
pub fn validate_fhir(python: &std::path::Path, documents: &[&[u8]]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for (i, doc) in documents.iter().enumerate() {
        let f = dir.path().join(format!("document-{i}.json"));
        std::fs::write(&f, doc).map_err(|e| e.to_string())?;
        files.push(f);
    }
    let out = std::process::Command::new(python)
        .arg(workspace_root().join("tests/tools/validate.py"))
        .args(&files)
        .output()
        .map_err(|e| format!("cannot run the validator: {e}"))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The text an independent PDF reader (`pypdf`, in the validator's environment) extracts
/// from `pdf`, pages separated by `--- page N ---` lines.
///
/// # Errors
/// The reader's message when it cannot read the PDF.
pub fn pdf_text(python: &std::path::Path, pdf: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let f = dir.path().join("document.pdf");
    std::fs::write(&f, pdf).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(python)
        .arg(workspace_root().join("tests/tools/pdf_text.py"))
        .arg(&f)
        .output()
        .map_err(|e| format!("cannot run the PDF reader: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What an independent iCalendar reader (`icalendar`, in the validator's environment) reads
/// in an `.ics` file: each event's start and end with their offsets, zone, summary, location.
///
/// # Errors
/// The reader's message when the file does not parse or names a zone it does not define.
pub fn ics_events(python: &std::path::Path, ics: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let f = dir.path().join("appointment.ics");
    std::fs::write(&f, ics).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(python)
        .arg(workspace_root().join("tests/tools/ics_events.py"))
        .arg(&f)
        .output()
        .map_err(|e| format!("cannot run the iCalendar reader: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// Which backend the store and end-to-end suites run on in this process.
pub fn backend_name() -> &'static str {
    if std::env::var_os("SALUS_TEST_POSTGRES_URL").is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A URL of a fresh, empty database. With `SALUS_TEST_POSTGRES_URL` set (an administrative
/// URL of a throw-away cluster, as `cargo xtask test` starts), a new PostgreSQL database is
/// created for the caller; otherwise a private SQLite in-memory database.
pub async fn test_database_url() -> String {
    let Ok(admin) = std::env::var("SALUS_TEST_POSTGRES_URL") else {
        return "sqlite::memory:".to_owned();
    };
    let name = format!(
        "salus_t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let conn = Database::connect(admin.as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL cluster: {e}"));
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot drop old test database: {e}"));
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let _ = conn.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}
