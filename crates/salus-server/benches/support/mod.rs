//! What the server benchmarks share: where their data lives, and the real `salus serve`
//! process they measure.
#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The password of every benchmark account.
pub const PASSWORD: &str = "tulip kettle orbit";

/// Databases the benchmarks build, kept between runs: `target/bench-data/`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `salus serve` on a SQLite file, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(db: &Path, outbox: &Path) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_salus"))
            .arg("serve")
            .env("SALUS_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("SALUS_LISTEN", format!("127.0.0.1:{port}"))
            .env("SALUS_AUTH_REQUESTS_PER_MINUTE", "1000000")
            .env("SALUS_LOG_LEVEL", "warn")
            .env("SALUS_OUTBOX_DIR", outbox)
            .env("SALUS_FIXTURES", outbox.join("none"))
            .env_remove("SALUS_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Peak resident memory of the server process, in MB.
    pub fn peak_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
