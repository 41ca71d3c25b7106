//! `cargo xtask bench login`: sign-in throughput against the raw argon2id verify rate of the
//! same machine in the same run, and the latency of an authenticated read with and without a
//! sign-in flood. A load driver with its own latency samples (criterion measures one
//! function; this measures a server under concurrent load). The machine is shared, so raw and
//! sign-in phases alternate for five rounds and the median round is reported.
//!
//! Targets (design.md): sign-ins/s >= 0.85 x raw verifies/s; read p99 under flood <= 2 x.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark driver reports on stdout"
)]

use poem::listener::{Acceptor, Listener};
use salus_domain::account::{
    Account, AccountRepository, AccountState, ChartLink, PasswordHasher, Role, SecretText,
};
use salus_server::adapters::Argon2Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "tulip kettle orbit";
const PHASE: Duration = Duration::from_secs(8);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Raw argon2id verifies per second on every core, outside any server.
fn raw_verify_rate(phc: &str) -> f64 {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (stop, done, phc) = (stop.clone(), done.clone(), phc.to_owned());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&phc).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    assert!(
                        Argon2::default()
                            .verify_password(PASSWORD.as_bytes(), &parsed)
                            .is_ok()
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(PHASE / 2);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Signs in as a well-behaved client: a 503 (hashing saturated) is retried after a pause.
async fn login(http: &reqwest::Client, base: &str, n: usize) -> String {
    loop {
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(
                &serde_json::json!({"email": format!("user{n}@bench.test"), "password": PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(r.status(), 200);
        return r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
}

/// Sign-ins per second for `PHASE / 2`, `CLIENTS` clients signing in back to back.
async fn sign_in_rate(http: &reqwest::Client, base: &str, accounts: usize) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + PHASE / 2;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, base, count) = (http.clone(), base.to_owned(), count.clone());
            tokio::spawn(async move {
                let mut n = c;
                while Instant::now() < end {
                    login(&http, &base, n % accounts).await;
                    // Sign-ins still running at the end are not counted (a slight underestimate).
                    if Instant::now() <= end {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    n += CLIENTS;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / (end - started).as_secs_f64()
}

/// CPU time (ns) of the hashing threads and of the whole process, from Linux's per-thread
/// scheduler statistics; `None` elsewhere.
fn hashing_cpu() -> Option<(u64, u64)> {
    let (mut hashing, mut all) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let name = std::fs::read_to_string(dir.join("comm")).ok()?;
        let ns: u64 = std::fs::read_to_string(dir.join("schedstat"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        all += ns;
        if name.starts_with("salus-hash") {
            hashing += ns;
        }
    }
    Some((hashing, all))
}

const ROUNDS: usize = 5;

/// Concurrent sign-in clients: enough to keep every hashing worker and its queue busy.
const CLIENTS: usize = 8;

/// Authenticated reads one after another for `PHASE / 2`; their latencies.
async fn reads(http: &reqwest::Client, base: &str, token: &str) -> Vec<Duration> {
    let mut samples = Vec::new();
    let end = Instant::now() + PHASE / 2;
    while Instant::now() < end {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = salus_server::Config {
            database_url: format!("sqlite://{}/bench.db", dir.path().display()),
            outbox_dir: dir.path().join("outbox").display().to_string(),
            auth_requests_per_minute: u32::MAX,
            ..salus_server::Config::default()
        };
        let store = salus_server::config::open_store(&cfg).await.unwrap();
        let hash = Argon2Hasher::for_this_machine()
            .hash(SecretText::new(PASSWORD))
            .await
            .unwrap();
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let accounts = 64;
        for n in 0..accounts {
            let a = Account {
                id: salus_domain::AccountId::generate(&salus_store::UuidV7Ids),
                email: salus_domain::text::Email::parse(&format!("user{n}@bench.test")).unwrap(),
                name: salus_domain::patient::PersonName::new("Bench", &format!("User{n}")).unwrap(),
                birth_date: None,
                role: Role::Patient,
                state: AccountState::Active { verified_at: now },
                chart: ChartLink::Unlinked,
                password: hash.clone(),
                created_at: now,
            };
            AccountRepository::create(&store, &a).await.unwrap();
        }
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let base = format!(
            "http://{}",
            acceptor.local_addr()[0].as_socket_addr().unwrap()
        );
        let app =
            salus_server::app(store, &cfg, std::sync::Arc::new(salus_domain::SystemClock)).unwrap();
        tokio::spawn(async move { poem::Server::new_with_acceptor(acceptor).run(app).await });
        let http = reqwest::Client::new();

        // The machine is shared and its speed drifts: alternate short raw and sign-in phases
        // and take the median of the per-round ratios.
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let raw = tokio::task::spawn_blocking({
                let phc = hash.as_str().to_owned();
                move || raw_verify_rate(&phc)
            })
            .await
            .unwrap();
            let cpu_before = hashing_cpu();
            let logins = sign_in_rate(&http, &base, accounts).await;
            let cpu_after = hashing_cpu();
            rounds.push((raw, logins, cpu_before.zip(cpu_after)));
        }
        rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
        let (raw, logins, cpu) = rounds[rounds.len() / 2];

        // Reads alone, then reads during a sign-in flood, alternated; the median round by
        // p99 ratio is reported.
        let token = login(&http, &base, 0).await;
        let mut read_rounds = Vec::new();
        for _ in 0..ROUNDS {
            let quiet = reads(&http, &base, &token).await;
            let flood_on = Arc::new(AtomicBool::new(true));
            let flooders: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (http, base, on) = (http.clone(), base.clone(), flood_on.clone());
                    tokio::spawn(async move {
                        let mut n = c;
                        while on.load(Ordering::Relaxed) {
                            login(&http, &base, 1 + n % (accounts - 1)).await;
                            n += CLIENTS;
                        }
                    })
                })
                .collect();
            let busy = reads(&http, &base, &token).await;
            flood_on.store(false, Ordering::Relaxed);
            for f in flooders {
                f.await.unwrap();
            }
            read_rounds.push((quiet, busy));
        }
        let p99_ratio = |r: &(Vec<Duration>, Vec<Duration>)| {
            percentile(&r.1, 0.99).as_secs_f64() / percentile(&r.0, 0.99).as_secs_f64()
        };
        read_rounds.sort_by(|a, b| p99_ratio(a).total_cmp(&p99_ratio(b)));
        let read_ratios: Vec<String> = read_rounds
            .iter()
            .map(|r| format!("{:.2}", p99_ratio(r)))
            .collect();
        let (quiet, busy) = &read_rounds[read_rounds.len() / 2];

        let (q50, q99) = (percentile(quiet, 0.5), percentile(quiet, 0.99));
        let (b50, b99) = (percentile(busy, 0.5), percentile(busy, 0.99));
        println!(
            "login benchmark ({} cores, argon2id m=19456 KiB t=2 p=1, SQLite)",
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        );
        println!(
            "  per-round ratios                {}",
            rounds
                .iter()
                .map(|r| format!("{:.2}", r.1 / r.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "  median round: raw argon2id verifies/s {raw:.1}, sign-ins/s over HTTP {logins:.1}"
        );
        println!("  ratio (target >= 0.85)          {:.2}", logins / raw);
        if let Some(((h0, all0), (h1, all1))) = cpu {
            println!(
                "  CPU time on hashing threads     {:.0}% of the process during sign-ins",
                (h1 - h0) as f64 * 100.0 / (all1 - all0) as f64
            );
        }
        println!(
            "  per-round p99 ratios            {}",
            read_ratios.join(" ")
        );
        println!(
            "  GET /api/v1/me alone            p50 {:.2} ms  p99 {:.2} ms  ({} requests)",
            q50.as_secs_f64() * 1e3,
            q99.as_secs_f64() * 1e3,
            quiet.len()
        );
        println!(
            "  GET /api/v1/me during flood     p50 {:.2} ms  p99 {:.2} ms  ({} requests)",
            b50.as_secs_f64() * 1e3,
            b99.as_secs_f64() * 1e3,
            busy.len()
        );
        println!(
            "  p99 ratio (target <= 2.0)       {:.2}",
            b99.as_secs_f64() / q99.as_secs_f64()
        );
    });
}
