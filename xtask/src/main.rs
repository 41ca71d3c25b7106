//! Project automation: `cargo xtask <command>`. See `cargo xtask --help`.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool reports to its operator on stdout"
)]

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use salus_domain::{Clock, SystemClock};
use salus_server::config::{Config, open_store};
use salus_server::{demo, importer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

mod fuzz;
mod postgres;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Salus project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply migrations to the configured (or given) database.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Seed the demo organisations, the fixture patients (when present) and N synthetic patients.
    Seed {
        #[arg(long, default_value_t = 20)]
        patients: u32,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Import FHIR bundles from a file or folder.
    Import {
        path: PathBuf,
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        outside: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Write docs/openapi.json, or with --check fail when it differs from the code.
    Openapi {
        #[arg(long)]
        check: bool,
    },
    /// fmt check, cargo deny (licences, bans, sources), clippy (warnings denied), all tests on
    /// SQLite, schemathesis against a live demo server, then the store and end-to-end suites
    /// on a throw-away PostgreSQL cluster.
    Test {
        /// Skip the PostgreSQL run (local use only; CI never skips it).
        #[arg(long)]
        skip_postgres: bool,
    },
    /// schemathesis against a live `salus serve --demo` (anonymous, patient, clinician); part
    /// of `test`. Needs the debug `salus` binary (`cargo build -p salus-server`).
    Fuzz,
    /// The audit log: `verify` checks its hash chain.
    Audit {
        #[arg(value_parser = ["verify"])]
        what: String,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Benchmarks. `import`: FHIR import throughput, synthetic seeding, bytes per record.
    /// `login`: sign-ins/s against raw argon2id verifies/s, and read latency during a flood.
    /// `records`: audited record reads against raw SQL at 1k/10k/100k patients, and memory.
    /// `export`: FHIR export resources/s (1,000-record chart) and memory (50,000 records).
    /// `messaging`: conversations, the staff inbox and sending at 10k patients, next to the
    /// lab results page, and memory.
    /// `scheduling`: the next open times and booking at 10k patients and 200 providers, next
    /// to the lab results page and the store's own booking rate, and memory.
    Bench {
        #[arg(value_parser = ["import", "login", "records", "export", "messaging", "scheduling"])]
        suite: String,
        /// Synthetic patients seeded for the seeding figure.
        #[arg(long, default_value_t = 10_000)]
        patients: u32,
    },
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn config(database_url: Option<String>) -> anyhow::Result<Config> {
    let mut cfg = Config::load(None)?;
    if let Some(url) = database_url {
        cfg.database_url = url;
    }
    if std::env::var_os("SALUS_FIXTURES").is_none() {
        cfg.fixtures = root().join("../shared/fixtures").display().to_string();
    }
    Ok(cfg)
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("\n==> {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    ensure!(status.success(), "{shown} failed ({status})");
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match Cli::parse().command {
        Cmd::Migrate { database_url } => {
            let cfg = config(database_url)?;
            open_store(&cfg).await?;
            println!("migrations applied to {}", redact_url(&cfg.database_url));
        }
        Cmd::Seed {
            patients,
            database_url,
        } => {
            let cfg = config(database_url)?;
            let store = open_store(&cfg).await?;
            let opts = demo::SeedOptions {
                fixtures: Some(PathBuf::from(&cfg.fixtures)),
                synthetic_patients: patients,
                seed: 2026,
            };
            let report = demo::seed(&store, &opts, clock).await?;
            println!("{report:?}");
        }
        Cmd::Import {
            path,
            org,
            outside,
            database_url,
        } => {
            let cfg = config(database_url)?;
            let store = open_store(&cfg).await?;
            let org = importer::target_org(&store, org.as_deref()).await?;
            for r in importer::import_path(&store, &org, &path, outside, clock).await? {
                println!("{}", importer::summary(&r));
            }
        }
        Cmd::Openapi { check } => {
            let path = root().join("docs/openapi.json");
            let spec = openapi_spec().await? + "\n";
            if check {
                let committed = std::fs::read_to_string(&path).unwrap_or_default();
                ensure!(
                    committed == spec,
                    "docs/openapi.json is out of date: run `cargo xtask openapi`"
                );
                println!("docs/openapi.json is up to date");
            } else {
                std::fs::write(&path, spec).context("cannot write docs/openapi.json")?;
                println!("wrote {}", path.display());
            }
        }
        Cmd::Test { skip_postgres } => test(skip_postgres)?,
        Cmd::Fuzz => fuzz::run(&root())?,
        Cmd::Audit {
            what: _,
            database_url,
        } => {
            let store = open_store(&config(database_url)?).await?;
            ensure!(
                salus_server::audit::verify(&store).await?,
                "the audit log's chain is broken"
            );
        }
        Cmd::Bench { suite, patients } => match suite.as_str() {
            "import" => bench_import(patients)?,
            "login" => run(cargo().args(["bench", "-p", "salus-server", "--bench", "login"]))?,
            // Scales in patients: BENCH_RECORDS_SCALES (default 1000,10000,100000).
            "records" => run(cargo().args(["bench", "-p", "salus-server", "--bench", "records"]))?,
            "export" => run(cargo().args(["bench", "-p", "salus-server", "--bench", "export"]))?,
            // Patients: BENCH_MESSAGING_PATIENTS (default 10000).
            "messaging" => {
                run(cargo().args(["bench", "-p", "salus-server", "--bench", "messaging"]))?
            }
            // Patients: BENCH_SCHEDULING_PATIENTS (default 10000).
            "scheduling" => {
                run(cargo().args(["bench", "-p", "salus-server", "--bench", "scheduling"]))?
            }
            other => bail!("unknown bench suite {other}"),
        },
    }
    Ok(())
}

/// The independent checkers the tests use, in a virtual environment under `target/`:
/// Python's `fhir.resources` pinned to its last release modelling FHIR R4 (4.0.1), and the
/// PDF reader `pypdf`.
fn fhir_validator() -> anyhow::Result<()> {
    let venv = root().join("target/fhir-validator");
    let marker = venv.join("installed-fhir.resources-6.4.0-pypdf-5.1.0-icalendar-7.3.2");
    if marker.is_file() {
        return Ok(());
    }
    eprintln!(
        "==> installing the FHIR validator (fhir.resources 6.4.0), PDF reader (pypdf 5.1.0) and iCalendar reader (icalendar 7.3.2) into {}",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "fhir.resources==6.4.0",
        "pydantic[email]>=1.10,<2",
        "pypdf==5.1.0",
        "icalendar==7.3.2",
    ]))?;
    std::fs::write(
        marker,
        "fhir.resources 6.4.0, pypdf 5.1.0, icalendar 7.3.2\n",
    )?;
    Ok(())
}

/// axe-core (the accessibility checker the browser suite runs in each page), pinned, from the
/// npm registry into `target/axe-core` (where the suite looks for it).
fn axe_core() -> anyhow::Result<()> {
    const VERSION: &str = "4.14.1";
    let dir = root().join("target/axe-core");
    let marker = dir.join(format!("installed-axe-core-{VERSION}"));
    if marker.is_file() {
        return Ok(());
    }
    eprintln!("==> installing axe-core {VERSION} into {}", dir.display());
    std::fs::create_dir_all(&dir)?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(&dir)
        .arg(format!("axe-core@{VERSION}")))?;
    std::fs::write(marker, format!("axe-core {VERSION}\n"))?;
    Ok(())
}

/// cargo-deny, pinned, installed from crates.io into `target/` on first use (about two
/// minutes of building).
fn cargo_deny() -> anyhow::Result<PathBuf> {
    let dir = root().join("target/cargo-deny-0.20.2");
    let bin = dir.join("bin/cargo-deny");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("==> installing cargo-deny 0.20.2 into {}", dir.display());
    run(cargo()
        .args([
            "install",
            "cargo-deny",
            "--locked",
            "--version",
            "0.20.2",
            "--root",
        ])
        .arg(&dir))?;
    Ok(bin)
}

fn test(skip_postgres: bool) -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // Licences, banned crates and sources of the dependency graph (deny.toml; advisories
    // need the RustSec database from GitHub, which these machines cannot reach).
    let deny = cargo_deny().context("cannot install cargo-deny")?;
    run(Command::new(deny).args([
        "--log-level",
        "error",
        "check",
        "licenses",
        "bans",
        "sources",
    ]))?;
    fhir_validator().context("cannot install the FHIR validator the tests need")?;
    axe_core().context("cannot install axe-core (npm) for the browser suite")?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args(["test", "--workspace"])
        .env_remove("SALUS_TEST_POSTGRES_URL"))?;
    fuzz::run(&root()).context("API fuzzing (schemathesis) failed")?;
    if skip_postgres {
        eprintln!("\n!!! PostgreSQL run SKIPPED (--skip-postgres): the suite is not complete !!!");
        return Ok(());
    }
    // The same feature set as the SQLite run, so nothing is rebuilt: only these suites run.
    let suites = [
        "test",
        "--workspace",
        "--test",
        "store",
        "--test",
        "e2e",
        "--test",
        "durability",
        "--test",
        "payment_durability",
        "--test",
        "two_nodes",
    ];
    if let Ok(url) = std::env::var("SALUS_TEST_POSTGRES_URL") {
        eprintln!("\n==> using the PostgreSQL cluster at SALUS_TEST_POSTGRES_URL");
        return run(cargo().args(suites).env("SALUS_TEST_POSTGRES_URL", url));
    }
    let cluster =
        postgres::Cluster::start().context("cannot start a throw-away PostgreSQL cluster")?;
    let result = run(cargo()
        .args(suites)
        .env("SALUS_TEST_POSTGRES_URL", cluster.url()));
    drop(cluster);
    result?;
    eprintln!("\nall tests passed on SQLite and PostgreSQL");
    Ok(())
}

fn bench_import(patients: u32) -> anyhow::Result<()> {
    // 1. FHIR bundle import into SQLite, measured by criterion (resources/s).
    run(cargo().args(["bench", "-p", "salus-store", "--bench", "import"]))?;

    // 2. Seeding synthetic patients with the release build of the salus binary.
    run(cargo().args(["build", "--release", "-p", "salus-server"]))?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let url = format!("sqlite://{}", db.display());
    let started = Instant::now();
    let out = Command::new(root().join("target/release/salus"))
        .args(["seed", "--patients", &patients.to_string()])
        .env("SALUS_DATABASE_URL", &url)
        .env("SALUS_FIXTURES", dir.path().join("none"))
        .env("SALUS_LOG_LEVEL", "warn")
        .current_dir(dir.path())
        .output()
        .context("cannot run salus seed")?;
    let elapsed = started.elapsed();
    ensure!(
        out.status.success(),
        "salus seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let number = |key: &str| -> u64 {
        report
            .split(&format!("{key}: "))
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let records = number("records_created");
    let charts = number("patients_created");
    let bytes: u64 = ["bench.db", "bench.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    let secs = elapsed.as_secs_f64();
    println!("\nsynthetic seeding into SQLite (release build, one run):");
    println!("  patients            {charts}");
    println!("  records             {records}");
    println!("  elapsed             {secs:.1} s");
    println!(
        "  throughput          {:.0} resources/s",
        (records + charts) as f64 / secs
    );
    println!(
        "  database size       {:.1} MiB",
        bytes as f64 / 1_048_576.0
    );
    println!(
        "  bytes per record    {:.0}",
        bytes as f64 / records.max(1) as f64
    );
    Ok(())
}

/// The OpenAPI document of the real wiring (over a throw-away in-memory database).
async fn openapi_spec() -> anyhow::Result<String> {
    let cfg = Config {
        database_url: "sqlite::memory:".into(),
        ..Config::default()
    };
    let store = open_store(&cfg).await?;
    Ok(salus_http::openapi_json(salus_server::app::api_state(
        &store,
        &cfg,
        Arc::new(SystemClock),
    )?))
}

/// Shows a database URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
