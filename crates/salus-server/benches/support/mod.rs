//! What the server benchmarks share: where their data lives, and the real `salus serve`
//! process they measure.
#![allow(dead_code, reason = "each benchmark uses part of it")]

use rand::{Rng as _, SeedableRng as _};
use salus_domain::account::{
    Account, AccountRepository, AccountState, ChartLink, PasswordHasher as _, Role, SecretText,
};
use salus_domain::patient::PatientRepository as _;
use salus_domain::{OrganizationId, PatientId};
use salus_server::adapters::Argon2Hasher;
use salus_store::{Store, UuidV7Ids};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
            // As the README recommends for Linux deployments (glibc's per-thread arenas).
            .env("MALLOC_ARENA_MAX", "2")
            .env("SALUS_OUTBOX_DIR", outbox)
            .env("SALUS_FIXTURES", outbox.join("none"))
            .env_remove("SALUS_CONFIG")
            .stdout(Stdio::null())
            // Warnings and errors only (`SALUS_LOG_LEVEL=warn`), kept for a failed run.
            .stderr(std::fs::File::create(outbox.join("server.log")).unwrap())
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

/// The database for `patients` synthetic charts, seeded once with the release binary.
pub fn seeded(patients: u32) -> PathBuf {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("records-{patients}.db"));
    let done = dir.join(format!("records-{patients}.seeded"));
    if done.exists() && db.exists() {
        return db;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    eprintln!(
        "seeding {patients} patients into {} (once) ...",
        db.display()
    );
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_salus"))
        .args(["seed", "--patients", &patients.to_string()])
        .env("SALUS_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("SALUS_FIXTURES", dir.join("no-fixtures"))
        .env("SALUS_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "salus seed failed");
    eprintln!("  seeded in {:.0} s", started.elapsed().as_secs_f64());
    std::fs::write(&done, b"ok").unwrap();
    db
}

/// Patient accounts the benchmarks sign in as (`bench{n}@bench.test`).
pub const ACCOUNTS: usize = 200;

/// `ACCOUNTS` active patient accounts linked to random charts; their charts.
pub async fn accounts(store: &Store, patients: u32) -> Vec<PatientId> {
    let org: OrganizationId = salus_server::importer::target_org(store, Some("demo-clinic"))
        .await
        .unwrap()
        .id;
    let hash = Argon2Hasher::new(1, 1)
        .hash(SecretText::new(PASSWORD))
        .await
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut charts = Vec::new();
    for n in 0..ACCOUNTS {
        let email = salus_domain::text::Email::parse(&format!("bench{n}@bench.test")).unwrap();
        if let Some(a) = store.find_by_email(&email).await.unwrap() {
            if let ChartLink::Linked { patient } = a.chart {
                charts.push(patient);
            }
            continue;
        }
        let mrn =
            salus_domain::text::Mrn::parse(&format!("SYN{:07}", rng.random_range(0..patients)))
                .unwrap();
        let chart = store.find_by_mrn(org, &mrn).await.unwrap().unwrap();
        patient_account(store, email, &chart, &hash).await;
        charts.push(chart.id);
    }
    charts
}

/// A signed-up, active patient account linked to `chart`, with the password hash `hash`.
pub async fn patient_account(
    store: &Store,
    email: salus_domain::text::Email,
    chart: &salus_domain::patient::Patient,
    hash: &salus_domain::account::PasswordHash,
) {
    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
    AccountRepository::create(
        store,
        &Account {
            id: salus_domain::AccountId::generate(&UuidV7Ids),
            email,
            name: chart.name.clone(),
            birth_date: Some(chart.birth_date),
            role: Role::Patient,
            state: AccountState::Active { verified_at: now },
            chart: ChartLink::Linked { patient: chart.id },
            password: hash.clone(),
            created_at: now,
        },
    )
    .await
    .unwrap();
}

pub struct Figures {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// One request wrk sends: method, path, bearer token and JSON body.
pub struct Hit {
    pub method: &'static str,
    pub path: String,
    pub token: String,
    pub body: Option<String>,
}

impl Hit {
    pub fn get(path: &str, token: &str) -> Self {
        Self {
            method: "GET",
            path: path.to_owned(),
            token: token.to_owned(),
            body: None,
        }
    }

    pub fn post(path: &str, token: &str, body: &serde_json::Value) -> Self {
        Self {
            method: "POST",
            path: path.to_owned(),
            token: token.to_owned(),
            body: Some(body.to_string()),
        }
    }
}

/// A wrk duration ("7.26ms", "850.00us", "1.02s") in our units.
pub fn wrk_duration(v: &str) -> Duration {
    let (number, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 1.0)
    };
    Duration::from_secs_f64(number.parse::<f64>().unwrap() * scale)
}

/// `conns` connections sending requests back to back for `phase`, driven by `wrk` (a C load
/// generator: it takes far less of the two cores than a client written here would, so the
/// server gets what a real client machine would leave it). Each request is one of
/// `requests`, picked at random by wrk's Lua hook.
pub fn load(base: &str, conns: usize, requests: &[Hit], phase: Duration) -> Figures {
    let mut lua = lua_requests(requests);
    lua.push_str(
        "math.randomseed(7)\nrequest = function()\n  local r = reqs[math.random(#reqs)]\n  \
         local headers = {[\"Authorization\"] = r[3]}\n  \
         if r[4] then headers[\"Content-Type\"] = \"application/json\" end\n  \
         return wrk.format(r[1], r[2], headers, r[4])\nend\n",
    );
    run_wrk(base, conns, &lua, phase)
}

/// As [`load`], but each request of `requests` is sent at most once, in order, the two wrk
/// threads taking turns (for writes that may not be repeated, such as booking a time).
/// `requests` must hold more than the phase can send: a repeat would be refused and fail the
/// run.
pub fn load_once_each(base: &str, conns: usize, requests: &[Hit], phase: Duration) -> Figures {
    let mut lua = lua_requests(requests);
    lua.push_str(
        "local made = 0\nfunction setup(thread)\n  thread:set(\"tid\", made)\n  made = made + 1\nend\n\
         local turn = nil\nrequest = function()\n  if turn == nil then turn = tid end\n  \
         local r = reqs[turn + 1]\n  turn = turn + 2\n  \
         local headers = {[\"Authorization\"] = r[3]}\n  \
         if r[4] then headers[\"Content-Type\"] = \"application/json\" end\n  \
         return wrk.format(r[1], r[2], headers, r[4])\nend\n",
    );
    run_wrk(base, conns, &lua, phase)
}

/// The requests as a Lua table `reqs` of {method, path, authorization, body}.
fn lua_requests(requests: &[Hit]) -> String {
    let mut lua = String::from("reqs = {\n");
    for h in requests {
        // Bodies are JSON: a Lua long string takes them as they are.
        let body = h
            .body
            .as_deref()
            .map_or("nil".to_owned(), |b| format!("[==[{b}]==]"));
        lua.push_str(&format!(
            "  {{\"{}\", \"{}\", \"Bearer {}\", {body}}},\n",
            h.method, h.path, h.token
        ));
    }
    lua.push_str("}\n");
    lua
}

/// `conns` connections running the Lua `script` against `base` for `phase`, driven by `wrk`
/// (a C load generator: it takes far less of the two cores than a client written here
/// would, so the server gets what a real client machine would leave it).
fn run_wrk(base: &str, conns: usize, script: &str, phase: Duration) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.lua");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{}s", phase.as_secs()),
        ])
        .arg("--latency")
        .arg("-s")
        .arg(&path)
        .arg(base)
        .output()
        .expect("the server benchmarks drive the server with wrk: apt-get install wrk");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("Non-2xx") && !report.contains("Socket errors"),
        "the server refused or dropped requests under load: {report}"
    );
    let field = |prefix: &str| -> &str {
        report
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's report: {report}"))
    };
    Figures {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: wrk_duration(field("50%")),
        p99: wrk_duration(field("99%")),
    }
}

pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Server {
    /// Waits until the server answers its health check (at most 20 s).
    pub async fn ready(&self, http: &reqwest::Client) {
        for _ in 0..400 {
            if http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not answer its health check");
    }
}

/// Patient sign-in with the benchmark password: the bearer token.
pub async fn patient_token(http: &reqwest::Client, base: &str, email: &str) -> String {
    let r: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

/// Staff sign-in: password, then the authenticator's current code.
pub async fn staff_token(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    secret_base32: &str,
) -> String {
    let json = |r: reqwest::Response| async move { r.json::<serde_json::Value>().await.unwrap() };
    let challenge = json(
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    let code = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret, None, "x".into())
        .unwrap()
        .generate_current()
        .unwrap();
    let signed = json(
        http.post(format!("{base}/api/v1/auth/login/second-factor"))
            .json(&serde_json::json!({"challenge": challenge["challenge"], "code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    signed["token"].as_str().unwrap().to_owned()
}

/// Picks the next raw SQL statements (what the server runs for the same request).
pub type MakeQuery =
    std::sync::Arc<dyn Fn(&mut rand::rngs::StdRng) -> Vec<sea_orm::Statement> + Send + Sync>;

/// The statements of `make`, straight on the database by `conns` tasks for `phase`: how
/// many times per second the whole set runs (the ceiling of the request it mirrors).
pub async fn raw(store: &Store, conns: usize, phase: Duration, make: MakeQuery) -> f64 {
    use sea_orm::ConnectionTrait as _;
    let end = Instant::now() + phase;
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| {
            let (store, make) = (store.clone(), make.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + c as u64);
                let mut n = 0u64;
                while Instant::now() < end {
                    for statement in make(&mut rng) {
                        let rows = store.connection().query_all_raw(statement).await.unwrap();
                        std::hint::black_box(rows);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Folds the write-ahead log back into the database file (the server is idle between
/// phases), so that every phase starts from the same file.
pub async fn checkpoint(store: &Store) {
    use sea_orm::ConnectionTrait as _;
    store
        .connection()
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
}
