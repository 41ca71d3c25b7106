//! What the tests that run the real `salus` process share: a free port, and `serve --demo`
//! on a database, up and answering.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The demo accounts' password in these tests.
pub const PASSWORD: &str = "violet harbour compass";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `salus serve --demo` in `dir` on `database_url` at `port`, with `env` on top of the
/// common settings (no fixtures, no sign-in limit, warnings only), once `/healthz` answers;
/// its log goes to `dir/salus-{port}.log`.
pub async fn start_demo(
    dir: &std::path::Path,
    database_url: &str,
    port: u16,
    env: &[(&str, &str)],
) -> Child {
    let log = dir.join(format!("salus-{port}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_salus"))
        .args(["serve", "--demo"])
        .current_dir(dir)
        .env("SALUS_DATABASE_URL", database_url)
        .env("SALUS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SALUS_DEMO_PASSWORD", PASSWORD)
        .env("SALUS_FIXTURES", dir.join("no-fixtures-here"))
        .env("SALUS_AUTH_REQUESTS_PER_MINUTE", "100000")
        .env("SALUS_LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .env_remove("SALUS_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..1200 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "salus did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Signs the demo patient in through the API; answers the bearer token.
#[allow(
    dead_code,
    reason = "the two-node test signs the front desk in instead"
)]
pub async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let r: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "patient@demo.salus.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}
