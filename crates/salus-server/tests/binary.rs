//! The real `salus` binary: first run creates the SQLite database, seeds the demo, serves the
//! landing page, health check, directory and spec, and stops cleanly on SIGTERM.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_demo_on_a_fresh_folder_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_salus"))
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env("SALUS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SALUS_DEMO_PATIENTS", "2")
        .env("SALUS_FIXTURES", dir.path().join("no-fixtures-here"))
        .env("SALUS_LOG_FORMAT", "json")
        .env("SALUS_AUTH_REQUESTS_PER_MINUTE", "3")
        .env_remove("SALUS_DATABASE_URL")
        .env_remove("SALUS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // It prints the demo sign-in, then its URL once the socket is bound.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    let line = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "salus exited early: {printed:?}"
        );
        if line.starts_with("Salus is running at") {
            break line;
        }
        printed.push(line);
    };
    // Standard output is not a terminal here (as under a service manager, which logs it):
    // the secrets go to a file only its owner may read, and stdout only says where.
    let all_printed = printed.concat();
    let secrets_file = dir.path().join("salus-data/demo-credentials.txt");
    assert!(
        all_printed.contains(
            &std::fs::canonicalize(&secrets_file)
                .unwrap()
                .display()
                .to_string()
        ),
        "{printed:?}"
    );
    for secret_marker in [
        "with password",
        "otpauth://",
        "recovery codes",
        "secret (by hand)",
    ] {
        assert!(
            !all_printed.contains(secret_marker),
            "stdout carries {secret_marker:?}: {printed:?}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only file");
    }
    let secrets = std::fs::read_to_string(&secrets_file).unwrap();
    let demo_line = secrets
        .lines()
        .find(|l| l.starts_with("Demo patient:"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        secrets
            .lines()
            .any(|l| l.starts_with("Staff account clinician@demo.salus.test")),
        "{secrets}"
    );
    assert!(
        secrets.contains("otpauth://totp/Salus:clinician%40demo.salus.test"),
        "{secrets}"
    );
    let password = demo_line
        .split("with password ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no demo password in {demo_line:?}"))
        .to_owned();
    let base = format!("http://127.0.0.1:{port}");
    assert!(line.contains(&format!("{base}/")), "{line}");
    assert!(
        dir.path().join("salus-data/salus.db").is_file(),
        "default SQLite database created"
    );

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    // The address is printed once the socket is bound, so the first request is answered.
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok", "database": "ok"})
    );

    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Salus Demo Clinic"));

    let orgs: serde_json::Value = get("/api/v1/organizations")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"demo-clinic"), "{orgs}");

    let spec = get("/api/openapi.json").await.unwrap();
    assert_eq!(spec.status(), 200);

    // The printed demo password signs in, and the account is linked to a chart.
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "patient@demo.salus.test", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: serde_json::Value = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "patient@demo.salus.test");
    assert_eq!(me["chart_linked"], true);

    // The strength meter checks a password at every pause in typing: it does not spend the
    // address's budget of authentication requests.
    for _ in 0..5 {
        let r = http
            .post(format!("{base}/api/v1/password-check"))
            .json(&serde_json::json!({"password": "tulip kettle orbit"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let script = get("/static/salus.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script
            .text()
            .await
            .unwrap()
            .contains("/api/v1/password-check")
    );

    // One client address gets 3 authentication requests a minute: the demo sign-in above
    // was one; the 4th is turned away before any password work.
    // (A different unknown address each time: one address is throttled on its own.)
    let wrong = |n: u32| serde_json::json!({"email": format!("nobody{n}@example.org"), "password": "whatever whatever"});
    for n in 0..2 {
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&wrong(n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&wrong(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");

    // The sign-ins above are in the audit log, and its chain verifies; after an edit it does not.
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_salus"))
            .args(["audit", "verify"])
            .current_dir(dir.path())
            .env_remove("SALUS_DATABASE_URL")
            .env_remove("SALUS_CONFIG")
            .env("SALUS_LOG_LEVEL", "error")
            .output()
            .unwrap()
    };
    let ok = verify();
    let said = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{said}");
    assert!(said.starts_with("audit log intact:"), "{said}");
    let url = format!("sqlite://{}/salus-data/salus.db", dir.path().display());
    let store = salus_store::Store::connect(&url, salus_store::PoolSettings::default())
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        store.connection(),
        "UPDATE audit_log SET outcome = 'tampered' WHERE seq = 2",
    )
    .await
    .unwrap();
    let broken = verify();
    let said = String::from_utf8_lossy(&broken.stdout).into_owned();
    assert_eq!(broken.status.code(), Some(1), "{said}");
    assert!(said.contains("BROKEN at entry 2"), "{said}");
}
