//! API fuzzing in the test suite: schemathesis (pinned, in a virtual environment under
//! `target/`) against a live `salus serve --demo`, from the server's own OpenAPI document, as
//! anonymous, patient and clinician (`tests/tools/api_fuzz.py` signs in and runs it).

use anyhow::{Context, bail, ensure};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Test cases per operation and role: enough to find what a change breaks in about a minute.
const EXAMPLES: &str = "20";
/// Only for this throw-away demo database.
const DEMO_PASSWORD: &str = "fuzzing tulip kettle orbit";

/// The virtual environment with schemathesis; its Python.
fn environment(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let venv = root.join("target/schemathesis");
    let marker = venv.join("installed-schemathesis-4.32.5");
    let python = venv.join("bin/python");
    if marker.is_file() {
        return Ok(python);
    }
    eprintln!("==> installing {SCHEMATHESIS} into {}", venv.display());
    crate::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    crate::run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SCHEMATHESIS,
    ]))?;
    std::fs::write(marker, format!("{SCHEMATHESIS}\n"))?;
    Ok(python)
}

/// Stops the server when the run ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the debug `salus` binary (built by the test run) with the demo data in a fresh
/// folder and waits until it serves; its base URL.
fn start(root: &Path, dir: &Path) -> anyhow::Result<(Server, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(root.join("target/debug/salus"))
        .args(["serve", "--demo"])
        .current_dir(dir)
        .env("SALUS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SALUS_DEMO_PATIENTS", "3")
        .env("SALUS_DEMO_PASSWORD", DEMO_PASSWORD)
        .env("SALUS_AUTH_REQUESTS_PER_MINUTE", "1000000")
        .env("SALUS_LOG_LEVEL", "warn")
        .env("SALUS_FIXTURES", dir.join("no-fixtures"))
        .env_remove("SALUS_DATABASE_URL")
        .env_remove("SALUS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start target/debug/salus (run after the tests built it)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Server(child);
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with("Salus is running at") {
            return Ok((server, format!("http://127.0.0.1:{port}")));
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "salus did not start within 5 minutes"
        );
    }
    bail!("salus exited before it served")
}

/// Runs the fuzzing stage of `cargo xtask test`.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let python = environment(root).context("cannot install schemathesis")?;
    let dir = tempfile::Builder::new().prefix("salus-fuzz-").tempdir()?;
    let (_server, base) = start(root, dir.path())?;
    let credentials = dir.path().join("salus-data/demo-credentials.txt");
    crate::run(
        Command::new(python)
            .arg(root.join("tests/tools/api_fuzz.py"))
            .arg(&base)
            .arg(&credentials)
            .arg(DEMO_PASSWORD)
            .arg(EXAMPLES),
    )
}
