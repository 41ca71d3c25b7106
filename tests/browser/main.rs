//! The browser suite: headless Chromium driven through chromedriver (WebDriver) against a
//! real Salus server on loopback. Registers, confirms the email, signs in and signs out
//! through the real pages.
//!
//! Needs `chromedriver` (setting `SALUS_CHROMEDRIVER`, default `chromedriver` on the PATH) and
//! Chromium (`SALUS_CHROMIUM`, default `/usr/bin/chromium`). When they are missing the suite
//! says so loudly and fails under `CI=true` (`.ci/run` installs them).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use fantoccini::{ClientBuilder, Locator};
use poem::listener::{Acceptor, Listener};
use salus_server::demo::{self, SeedOptions};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools() -> Option<(String, String)> {
    let driver = std::env::var("SALUS_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let chromium = std::env::var("SALUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver_ok = Command::new(&driver)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if driver_ok && std::path::Path::new(&chromium).exists() {
        return Some((driver, chromium));
    }
    let msg =
        format!("BROWSER SUITE NOT RUN: chromedriver ({driver}) or Chromium ({chromium}) missing");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n!!!!! {msg} !!!!!\n");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const DEMO_PASSWORD: &str = "quartz lantern meadow";

/// Starts Salus on a free loopback port over a fresh SQLite file; answers its base URL, the
/// account use cases over the same store (to make staff), the demo clinic's id and the store.
async fn start_salus(
    dir: &std::path::Path,
) -> (
    String,
    salus_domain::account::AuthService,
    salus_domain::OrganizationId,
    salus_store::Store,
) {
    let cfg = salus_server::Config {
        database_url: format!("sqlite://{}/browser.db", dir.display()),
        outbox_dir: dir.join("outbox").display().to_string(),
        sandbox_ledger: dir.join("sandbox-ledger.log").display().to_string(),
        ..salus_server::Config::default()
    };
    let store = salus_server::config::open_store(&cfg).await.unwrap();
    let clock: Arc<dyn salus_domain::Clock> = Arc::new(salus_domain::SystemClock);
    demo::seed(
        &store,
        &SeedOptions {
            fixtures: None,
            synthetic_patients: 1,
            seed: 1,
        },
        clock.clone(),
    )
    .await
    .unwrap();
    // The demo patient, linked to the synthetic chart, with a known password.
    demo::seed_demo_patient_account(
        &store,
        &salus_server::adapters::Argon2Hasher::new(1, 4),
        Some(DEMO_PASSWORD.into()),
        clock.clone(),
    )
    .await
    .unwrap();
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let auth = salus_server::app::api_state(&store, &cfg, clock.clone())
        .unwrap()
        .auth;
    let clinic = salus_server::importer::target_org(&store, Some("demo-clinic"))
        .await
        .unwrap()
        .id;
    let app = salus_server::app(store.clone(), &cfg, clock).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    (format!("http://{addr}"), auth, clinic, store)
}

/// Starts chromedriver and a headless Chromium with a fresh profile under `dir`.
async fn open_chromium(
    driver: &str,
    chromium: &str,
    dir: &std::path::Path,
) -> (Driver, fantoccini::Client) {
    let port = free_port();
    let process = Driver(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port).await;
    let profile = dir.join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    (process, c)
}

/// Waits until chromedriver accepts connections (it starts in the background).
async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

fn newest_email(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::read_to_string(files.last().unwrap()).unwrap()
}

#[tokio::test]
async fn register_sign_in_and_out_then_read_results_a_trend_and_the_access_history_in_chromium() {
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, _, _, _) = start_salus(dir.path()).await;

    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;

    let result = async {
        let url = |path: &str| url::Url::parse(&format!("{base}{path}")).unwrap();
        // Fills a field of the current page, waiting for it to be there.
        let fill = |css: &'static str, text: &'static str| {
            let c = c.clone();
            async move {
                c.wait()
                    .for_element(Locator::Css(css))
                    .await?
                    .send_keys(text)
                    .await
            }
        };
        // Clicks the submit button and waits for the next page to load.
        let submit_then = |expect: url::Url| {
            let c = c.clone();
            async move {
                c.find(Locator::Css("button[type=submit]"))
                    .await?
                    .click()
                    .await?;
                c.wait().for_url(&expect).await
            }
        };

        c.goto(url("/register").as_str()).await?;
        // The clinic that is to confirm who she is, chosen from the directory.
        c.find(Locator::Css("#clinic option[value='demo-clinic']"))
            .await?
            .click()
            .await?;
        fill("#given_name", "Ann").await?;
        fill("#family_name", "Lee").await?;
        // Date inputs take typing in the browser's locale; set the value as a picker would.
        c.execute(
            "document.getElementById('birth_date').value = arguments[0];",
            vec![serde_json::json!("1980-01-02")],
        )
        .await?;
        fill("#email", "ann@example.org").await?;
        // The strength meter follows the typing with the server's rules.
        fill("#password", "kettle").await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@id='password-strength'][contains(., 'at least 12 characters')]",
            ))
            .await?;
        c.find(Locator::Css("#password")).await?.clear().await?;
        fill("#password", "tulip kettle orbit").await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@id='password-strength'][contains(., 'Strength:')][not(contains(., 'very weak'))]",
            ))
            .await?;
        submit_then(url("/register/check-email")).await?;

        let mail = newest_email(dir.path());
        let link = mail
            .lines()
            .find(|l| l.contains("/verify?token="))
            .unwrap()
            .trim()
            .to_owned();
        let query = link.split_once("/verify").unwrap().1.to_owned();
        c.goto(&format!("{base}/verify{query}")).await?;
        // The token left the address bar (and so history and any Referer) at once.
        assert_eq!(c.current_url().await?.as_str(), url("/verify").as_str());
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        // The confirmation posts back to /verify: wait for the new page's heading.
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Email address confirmed']"))
            .await?;

        c.goto(url("/login").as_str()).await?;
        fill("#email", "ann@example.org").await?;
        fill("#password", "tulip kettle orbit").await?;
        submit_then(url("/account")).await?;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Hello, Ann']"))
            .await?;

        c.find(Locator::Css("form[action='/logout'] button"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@class='notice'][text()='You are signed out.']",
            ))
            .await?;
        // The session is gone: the account page sends us to sign in.
        c.goto(url("/account").as_str()).await?;
        c.wait().for_url(&url("/login")).await?;

        // The demo patient opens their results, a trend, and sees their own views listed.
        fill("#email", "patient@demo.salus.test").await?;
        fill("#password", DEMO_PASSWORD).await?;
        submit_then(url("/account")).await?;
        c.find(Locator::LinkText("See your health record"))
            .await?
            .click()
            .await?;
        c.wait().for_url(&url("/records")).await?;
        c.find(Locator::LinkText("All test results"))
            .await?
            .click()
            .await?;
        c.wait().for_url(&url("/records/results")).await?;
        let mut links = Vec::new();
        for a in c.find_all(Locator::Css("table.records a")).await? {
            if let Some(href) = a.attr("href").await? {
                links.push(href);
            }
        }
        assert!(!links.is_empty(), "the results list has links");
        let mut trend = false;
        for href in links.iter().take(25) {
            c.goto(&format!("{base}{href}")).await?;
            c.wait().for_element(Locator::Css("dl.record")).await?;
            if !c.find_all(Locator::Css("svg.trend circle")).await?.is_empty() {
                c.find(Locator::XPath("//caption[text()='All values of this test']"))
                    .await?;
                // Printing the trend prints the chart and its table, without the page's
                // navigation or the Print button (shown once the script runs).
                let button = c.find(Locator::Css("button[data-print]")).await?;
                assert!(button.is_displayed().await?, "the Print button is shown");
                let pdf = c
                    .print(fantoccini::wd::PrintConfiguration::default())
                    .await?;
                assert!(pdf.starts_with(b"%PDF-"));
                if let Some(python) = salus_tests::fhir_validator() {
                    let text = salus_tests::pdf_text(&python, &pdf).unwrap();
                    for printed in [
                        "Over time",
                        "The shaded band is the normal range",
                        "All values of this test",
                    ] {
                        assert!(text.contains(printed), "the printout lacks {printed:?}");
                    }
                    for hidden in ["Print this page", "Skip to content", "API for developers"] {
                        assert!(!text.contains(hidden), "the printout shows {hidden:?}");
                    }
                }
                trend = true;
                break;
            }
        }
        assert!(trend, "one of the first results has a trend chart");
        c.goto(url("/records/history").as_str()).await?;
        c.wait()
            .for_element(Locator::XPath(
                "//tr[td[text()='You']][td[contains(., 'Opened one of your test results')]]",
            ))
            .await?;
        // On the narrowest phone nothing scrolls sideways: lists become cards, the header
        // wraps, the chart shrinks.
        c.set_window_size(320, 800).await?;
        let mut pages = vec![
            "/account".to_owned(),
            "/records".to_owned(),
            "/records/results".to_owned(),
            "/records/medications".to_owned(),
            "/records/history".to_owned(),
            "/records/download".to_owned(),
        ];
        pages.extend(links.iter().take(3).cloned());
        for path in &pages {
            c.goto(&format!("{base}{path}")).await?;
            c.wait().for_element(Locator::Css("main")).await?;
            let widths = c
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    vec![],
                )
                .await?;
            let (page, window) = (widths[0].as_u64(), widths[1].as_u64());
            assert!(
                page.is_some() && page <= window,
                "{path} is wider than a 320 px screen: {widths}"
            );
            assert!(
                c.find(Locator::Css("header.site nav.account")).await.is_ok(),
                "{path} has the header"
            );
        }
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
}

/// What one page must be at one width: no sideways scrolling, the header with the account
/// menu (and, signed in, Sign out), no code where words belong, and no WCAG 2.1 AA violation
/// that axe-core finds. Answers what is wrong, empty when nothing is; writes a screenshot to
/// `target/screenshots` for people to look at.
async fn check_page(
    c: &fantoccini::Client,
    axe: &str,
    who: &str,
    path: &str,
    width: u32,
) -> Result<Vec<String>, fantoccini::error::CmdError> {
    let mut wrong = Vec::new();
    let shape = c
        .execute(
            r#"const copy = document.body.cloneNode(true);
               copy.querySelectorAll('code').forEach(e => e.remove());
               const text = copy.textContent;
               const codes = (text.match(/\b[a-z]+_[a-z_]+\b|mm\[Hg\]|\/min\b|kg\/m2\b/g) || []);
               const nav = document.querySelector('header.site nav.account');
               return {
                 page: document.documentElement.scrollWidth,
                 window: window.innerWidth,
                 header: !!document.querySelector('header.site .brand'),
                 links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')).filter(h => !h.startsWith('#')).length,
                 menu: nav ? nav.querySelectorAll('a').length : 0,
                 signOut: !!document.querySelector('header.site form[action="/logout"] button'),
                 h1: document.querySelectorAll('main h1').length,
                 codes: codes.slice(0, 5),
               };"#,
            vec![],
        )
        .await?;
    if shape["page"].as_u64() > shape["window"].as_u64() {
        wrong.push(format!(
            "wider than the window: {} > {}",
            shape["page"], shape["window"]
        ));
    }
    if who == "processor" {
        // The card processor's own page (the sandbox's): not the portal's, no portal menu.
    } else if who == "share-link" {
        // Someone without an account: a header, and no way into the portal.
        if shape["header"] != true || shape["menu"].as_u64().unwrap_or(0) != 0 {
            wrong.push("a share link's page has no header, or the portal's menu".into());
        }
    } else {
        if shape["header"] != true || shape["menu"].as_u64().unwrap_or(0) == 0 {
            wrong.push("no header with the account menu".into());
        }
        if who != "anonymous" && shape["signOut"] != true {
            wrong.push("no Sign out in the header".into());
        }
    }
    if who == "share-link" && shape["links"].as_u64() != Some(0) {
        wrong.push(format!("{} links on a share link's page", shape["links"]));
    }
    if shape["h1"] != 1 {
        wrong.push(format!("{} main headings", shape["h1"]));
    }
    if shape["codes"].as_array().is_some_and(|c| !c.is_empty()) {
        wrong.push(format!("codes shown instead of words: {}", shape["codes"]));
    }
    c.execute(&format!("{axe}\n;return true;"), vec![]).await?;
    let violations = c
        .execute_async(
            "const done = arguments[0];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' +
                 v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await?;
    for v in violations.as_array().into_iter().flatten() {
        wrong.push(format!("axe: {}", v.as_str().unwrap_or_default()));
    }
    let shots = salus_tests::workspace_root().join("target/screenshots");
    let _ = std::fs::create_dir_all(&shots);
    // A share link's token is a credential: not in a file name.
    let path = if path.starts_with("/share/") {
        "/share"
    } else {
        path
    };
    let name = path.trim_matches('/').replace(['/', '?', '=', '&'], "_");
    let name = if name.is_empty() {
        "start".into()
    } else {
        name
    };
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(shots.join(format!("{who}-{width}-{name}.png")), png);
    }
    Ok(wrong)
}

#[tokio::test]
async fn every_page_keeps_its_shape_and_passes_axe_on_a_phone_and_a_desktop() {
    use salus_domain::account::{NewStaff, SecretText, StaffRole};
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let Some(axe) = salus_tests::axe_core() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, auth, clinic, store) = start_salus(dir.path()).await;
    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;

    let result = async {
        let url = |path: &str| format!("{base}{path}");
        let sign_in = |email: &'static str, password: &'static str| {
            let c = c.clone();
            let base = base.clone();
            async move {
                c.goto(&format!("{base}/login")).await?;
                c.find(Locator::Css("#email"))
                    .await?
                    .send_keys(email)
                    .await?;
                c.find(Locator::Css("#password"))
                    .await?
                    .send_keys(password)
                    .await?;
                c.find(Locator::Css("main button[type=submit]"))
                    .await?
                    .click()
                    .await?;
                c.wait().for_element(Locator::Css("main h1")).await?;
                Ok::<(), fantoccini::error::CmdError>(())
            }
        };
        let mut failures: Vec<String> = Vec::new();
        let mut visit = async |who: &str, pages: &[String]| {
            for width in [390_u32, 1280] {
                c.set_window_size(width, 900).await?;
                for path in pages {
                    c.goto(&url(path)).await?;
                    c.wait().for_element(Locator::Css("main")).await?;
                    for w in check_page(&c, &axe, who, path, width).await? {
                        failures.push(format!("{who} {path} at {width} px: {w}"));
                    }
                }
            }
            Ok::<(), fantoccini::error::CmdError>(())
        };

        let anonymous: Vec<String> = [
            "/",
            "/login",
            "/register",
            "/clinics/demo-clinic",
            "/forgot",
        ]
        .map(String::from)
        .to_vec();
        visit("anonymous", &anonymous).await?;

        sign_in("patient@demo.salus.test", DEMO_PASSWORD).await?;
        c.goto(&url("/records/results?all=1")).await?;
        let mut patient: Vec<String> = [
            "/account",
            "/records",
            "/records/results",
            "/records/results?all=1",
            "/records/medications",
            "/records/visits",
            "/records/problems",
            "/records/immunizations",
            "/records/history",
            "/records/download",
            "/account/security",
            "/account/sharing",
        ]
        .map(String::from)
        .to_vec();
        // A result with its trend, and a blood pressure (a result in parts), each found by a
        // search: on the plain first page, results of one day come in id order, which differs
        // from run to run, so either could fall past its end.
        for (title, search) in [
            ("Cholesterol, total", "Cholesterol"),
            ("Blood pressure panel", "Blood%20pressure"),
        ] {
            c.goto(&url(&format!("/records/results?q={search}")))
                .await?;
            let link = c
                .find(Locator::XPath(&format!(
                    "//table//a[contains(., '{title}')]"
                )))
                .await?;
            patient.push(link.attr("href").await?.unwrap_or_default());
        }
        visit("patient", &patient).await?;
        // A share link, made on the sharing page, for the anonymous pages below.
        c.goto(&url("/account/sharing")).await?;
        c.find(Locator::Css("input[name=link_kind][value=observation]"))
            .await?
            .click()
            .await?;
        c.find(Locator::XPath("//button[text()='Make the link']"))
            .await?
            .click()
            .await?;
        let shared = c
            .wait()
            .for_element(Locator::Css("input.copy"))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        let share_path = format!(
            "/share/{}",
            shared.split("/share/").nth(1).unwrap_or_default()
        );
        visit("patient", &["/account/sharing".to_owned()]).await?;
        c.goto(&url("/account")).await?;
        c.find(Locator::Css("form[action='/logout'] button"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_url(&url::Url::parse(&url("/login?signed_out=1")).unwrap())
            .await?;

        // The share link's page, for someone without an account.
        visit("share-link", &[share_path]).await?;

        // Staff: a clinician (a chart and its search), the front desk (with that chart's
        // guardians and proxies) and an administrator (the team and the guardian policy).
        let mut chart_id = String::new();
        for (email, role, pages) in [
            (
                "doc@browser.test",
                StaffRole::Clinician,
                vec!["/account".to_owned(), "/staff/charts".to_owned()],
            ),
            (
                "desk@browser.test",
                StaffRole::FrontDesk,
                vec!["/account".to_owned(), "/staff".to_owned()],
            ),
            (
                "admin@browser.test",
                StaffRole::OrganizationAdmin,
                vec!["/staff/team".to_owned(), "/staff/pools".to_owned()],
            ),
        ] {
            let creds = auth
                .create_staff(
                    NewStaff {
                        email: salus_domain::text::Email::parse(email).unwrap(),
                        name: salus_domain::patient::PersonName::new("Sam", "Staff").unwrap(),
                        role,
                        organization: clinic,
                        password: SecretText::new("tulip kettle orbit"),
                    },
                    None,
                )
                .await
                .unwrap();
            staff_signs_in(&c, &base, email, &creds.totp.secret_base32).await?;
            let mut pages = pages;
            if role == StaffRole::Clinician {
                // A care team the clinician answers, for the inbox (and a patient's compose page).
                care_team(&store, clinic, creds.account).await;
                pages.push("/staff/inbox".to_owned());
                c.goto(&url("/staff/charts?mrn=SYN0000000")).await?;
                c.wait().for_element(Locator::Css("main h1")).await?;
                let chart = c.current_url().await?.path().to_owned();
                chart_id = chart.rsplit('/').next().unwrap_or_default().to_owned();
                pages.push(chart);
            }
            if role == StaffRole::FrontDesk {
                pages.push(format!("/staff/patients/{chart_id}/access"));
            }
            visit(
                match role {
                    StaffRole::Clinician => "clinician",
                    StaffRole::FrontDesk => "front-desk",
                    _ => "admin",
                },
                &pages,
            )
            .await?;
            c.goto(&url("/account")).await?;
            c.find(Locator::Css("form[action='/logout'] button"))
                .await?
                .click()
                .await?;
            c.wait()
                .for_url(&url::Url::parse(&url("/login?signed_out=1")).unwrap())
                .await?;
        }
        Ok::<Vec<String>, fantoccini::error::CmdError>(failures)
    }
    .await;
    let _ = c.close().await;
    let failures = result.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_proxy_granted_lab_results_sees_only_them_and_is_refused_once_revoked_in_chromium() {
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, _, _, _) = start_salus(dir.path()).await;
    // The carer's own account (no record of their own), made through the API.
    let http = reqwest::Client::new();
    let carer = serde_json::json!({"given_name": "Cara", "family_name": "Carer",
        "birth_date": "1990-02-03", "email": "carer@browser.test", "password": "tulip kettle orbit"});
    let r = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&carer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mail = newest_email(dir.path());
    let token = mail
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let r = http
        .post(format!("{base}/api/v1/auth/verify"))
        .json(&serde_json::json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;
    let result = async {
        let url = |path: &str| url::Url::parse(&format!("{base}{path}")).unwrap();
        let sign_in = |email: &'static str, password: &'static str| {
            let c = c.clone();
            let login = url("/login");
            let home = url("/account");
            async move {
                c.goto(login.as_str()).await?;
                c.find(Locator::Css("#email"))
                    .await?
                    .send_keys(email)
                    .await?;
                c.find(Locator::Css("#password"))
                    .await?
                    .send_keys(password)
                    .await?;
                c.find(Locator::Css("main button[type=submit]"))
                    .await?
                    .click()
                    .await?;
                c.wait().for_url(&home).await
            }
        };
        let sign_out = || {
            let c = c.clone();
            let home = url("/account");
            async move {
                c.goto(home.as_str()).await?;
                c.find(Locator::Css("form[action='/logout'] button"))
                    .await?
                    .click()
                    .await?;
                c.wait().for_element(Locator::Css("main h1")).await?;
                Ok::<(), fantoccini::error::CmdError>(())
            }
        };

        // The patient lets the carer see lab results only.
        sign_in("patient@demo.salus.test", DEMO_PASSWORD).await?;
        c.goto(url("/account/sharing").as_str()).await?;
        c.find(Locator::Css("#email"))
            .await?
            .send_keys("carer@browser.test")
            .await?;
        c.find(Locator::Css("input[name=kind][value=observation]"))
            .await?
            .click()
            .await?;
        c.find(Locator::XPath("//button[text()='Send the invitation']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@class='notice'][starts-with(., 'Invitation sent')]",
            ))
            .await?;
        sign_out().await?;
        let mail = newest_email(dir.path());
        let link = mail
            .lines()
            .find(|l| l.contains("/grants/accept?token="))
            .unwrap()
            .trim()
            .to_owned();

        // The carer accepts, then opens the patient's record from the switch.
        sign_in("carer@browser.test", "tulip kettle orbit").await?;
        // The mail carries the configured public address; this server listens elsewhere.
        let query = link.split_once("/grants/accept").unwrap().1.to_owned();
        c.goto(&format!("{base}/grants/accept{query}")).await?;
        c.wait()
            .for_element(Locator::XPath("//button[text()='Accept the invitation']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Invitation accepted']"))
            .await?;
        c.goto(url("/account/acting-for").as_str()).await?;
        c.wait()
            .for_element(Locator::XPath("//button[starts-with(., 'Open ')]"))
            .await?
            .click()
            .await?;
        c.wait().for_url(&url("/records")).await?;
        let bar = c.find(Locator::Css(".acting")).await?.text().await?;
        assert!(bar.starts_with("You are looking at "), "{bar}");
        let whose = bar
            .trim_start_matches("You are looking at ")
            .split(", with")
            .next()
            .unwrap()
            .to_owned();
        assert!(whose.ends_with("'s record"), "{bar}");
        assert!(
            c.title().await?.contains(&whose),
            "the title says whose record is open"
        );
        // The proxy's pages keep their shape and pass axe too (screenshots for people).
        let failures = check_pages(
            &c,
            &base,
            "proxy",
            &[
                "/account",
                "/account/acting-for",
                "/records",
                "/records/results",
            ],
        )
        .await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        c.goto(url("/records/results?all=1").as_str()).await?;
        let results = c.find_all(Locator::Css("table.records tbody tr")).await?;
        assert!(!results.is_empty(), "the lab results are shown");
        for other in [
            "/records/medications",
            "/records/visits",
            "/records/problems",
        ] {
            c.goto(url(other).as_str()).await?;
            c.wait().for_element(Locator::Css("main h1")).await?;
            let rows = c.find_all(Locator::Css("table.records tbody tr")).await?;
            assert!(rows.is_empty(), "{other} was not shared, yet shows rows");
        }

        // The patient revokes (from the API, while the carer's page stays open) ...
        let session: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(
                &serde_json::json!({"email": "patient@demo.salus.test", "password": DEMO_PASSWORD}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = session["token"].as_str().unwrap().to_owned();
        let grants: serde_json::Value = http
            .get(format!("{base}/api/v1/grants"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = grants["grants"][0]["id"].as_str().unwrap().to_owned();
        let r = http
            .delete(format!("{base}/api/v1/grants/{id}"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());

        // ... and the carer's very next page is refused.
        c.goto(url("/records/results?all=1").as_str()).await?;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Access ended']"))
            .await?;
        assert!(
            c.find_all(Locator::Css("table.records tbody tr"))
                .await?
                .is_empty()
        );
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
}

/// A "Primary care" team of `clinic` answered by `member`.
async fn care_team(
    store: &salus_store::Store,
    clinic: salus_domain::OrganizationId,
    member: salus_domain::AccountId,
) {
    salus_domain::messaging::MessageRepository::create_pool(
        store,
        &salus_domain::messaging::CarePool {
            id: salus_domain::PoolId::generate(&salus_store::UuidV7Ids),
            organization: clinic,
            name: salus_domain::text::PoolName::parse("Primary care").unwrap(),
            answer_days: 2,
            staff: [member].into(),
            active: true,
        },
    )
    .await
    .unwrap();
}

/// Files an active medication in the demo patient's chart; answers its id.
async fn active_medication(
    store: &salus_store::Store,
    clinic: salus_domain::OrganizationId,
) -> String {
    use salus_domain::record::{
        ClinicalRecord, Medication, MedicationStatus, Period, RecordBody, RecordMeta, RecordSource,
        ReleaseState, SensitivityLabels,
    };
    let email = salus_domain::text::Email::parse(demo::DEMO_PATIENT_EMAIL).unwrap();
    let account = salus_domain::account::AccountRepository::find_by_email(store, &email)
        .await
        .unwrap()
        .unwrap();
    let salus_domain::account::ChartLink::Linked { patient } = account.chart else {
        panic!("the demo patient has a chart");
    };
    let now = salus_domain::Clock::now(&salus_domain::SystemClock);
    let record = ClinicalRecord {
        meta: RecordMeta {
            id: salus_domain::RecordId::generate(&salus_store::UuidV7Ids),
            patient_id: patient,
            organization_id: clinic,
            encounter_id: None,
            source: RecordSource::default(),
            source_identifier: None,
            sensitivity: SensitivityLabels::empty(),
            release: ReleaseState::Released {
                at: now - chrono::Duration::days(1),
            },
            filed_at: now - chrono::Duration::days(1),
        },
        body: RecordBody::Medication(Medication {
            medication: salus_domain::text::Code::new(None, None, "Lisinopril 10 mg tablet")
                .unwrap(),
            dosage: Some("One tablet every morning".into()),
            status: MedicationStatus::Active,
            authored_on: Some(now - chrono::Duration::days(30)),
            period: Period::default(),
        }),
    };
    salus_domain::record::RecordRepository::insert(store, &record, None)
        .await
        .unwrap();
    record.meta.id.to_string()
}

#[tokio::test]
async fn a_patient_writes_a_clinician_answers_from_the_inbox_and_the_patient_sees_the_answer_and_the_receipt_in_chromium()
 {
    use salus_domain::account::{NewStaff, SecretText, StaffRole};
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, auth, clinic, store) = start_salus(dir.path()).await;
    let creds = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse("doc@browser.test").unwrap(),
                name: salus_domain::patient::PersonName::new("Mira", "Osei").unwrap(),
                role: StaffRole::Clinician,
                organization: clinic,
                password: SecretText::new("tulip kettle orbit"),
            },
            None,
        )
        .await
        .unwrap();
    care_team(&store, clinic, creds.account).await;
    let medication = active_medication(&store, clinic).await;
    // A letter to attach: a PDF by its content.
    let letter = dir.path().join("lab letter.pdf");
    std::fs::write(
        &letter,
        b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
    )
    .unwrap();
    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;
    let result = async {
        let url = |path: &str| url::Url::parse(&format!("{base}{path}")).unwrap();
        let fill = |css: &'static str, text: &'static str| {
            let c = c.clone();
            async move { c.find(Locator::Css(css)).await?.send_keys(text).await }
        };
        // The patient writes from the menu's Messages.
        patient_signs_in(&c, &base).await?;
        c.find(Locator::LinkText("Messages")).await?.click().await?;
        c.wait().for_url(&url("/messages")).await?;
        c.find(Locator::LinkText("Write a new message"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//strong[text()='Not for emergencies.']"))
            .await?;
        c.find(Locator::Css("input[name=pool]"))
            .await?
            .click()
            .await?;
        fill("#subject", "Dizzy since the new tablets").await?;
        fill(
            "#body",
            "I feel dizzy in the mornings.\nIs that the tablets?",
        )
        .await?;
        c.find(Locator::Css("#files"))
            .await?
            .send_keys(&letter.display().to_string())
            .await?;
        c.find(Locator::XPath("//button[text()='Send']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//div[@class='notice'][text()='Sent.']"))
            .await?;
        let thread = c.current_url().await?.path().to_owned();
        assert!(
            c.find(Locator::XPath(
                "//p[@class='help receipt'][text()='Not read yet']"
            ))
            .await
            .is_ok()
        );

        // A refill from the medication's page, to a new pharmacy.
        let med_page = format!("/records/item/{medication}");
        c.goto(url(&med_page).as_str()).await?;
        c.find(Locator::LinkText("Ask for a refill"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#quantity")).await?;
        fill("#name", "Main Street Pharmacy").await?;
        fill("#address", "1 Main Street, Springfield").await?;
        fill("#phone", "555-0100").await?;
        fill("#quantity", "30").await?;
        fill("#note", "Running low by Friday").await?;
        c.find(Locator::XPath("//button[text()='Send the request']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@class='notice'][starts-with(text(),'Sent.')]",
            ))
            .await?;

        signs_out(&c, &base).await?;

        // The clinician answers from the inbox.
        staff_signs_in(&c, &base, "doc@browser.test", &creds.totp.secret_base32).await?;
        c.find(Locator::LinkText("Inbox")).await?.click().await?;
        c.wait()
            .for_element(Locator::XPath("//span[@class='new'][text()='1 unread']"))
            .await?;
        c.find(Locator::LinkText("Dizzy since the new tablets"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("ol.messages")).await?;
        let text = c.find(Locator::Css(".message-text")).await?.text().await?;
        assert_eq!(
            text, "I feel dizzy in the mornings.\nIs that the tablets?",
            "line breaks kept"
        );
        // The letter came with it, to download.
        let file = c.find(Locator::Css("ul.files a[download]")).await?;
        assert_eq!(file.text().await?, "lab letter.pdf");
        assert!(
            file.attr("href")
                .await?
                .is_some_and(|h| h.starts_with("/attachments/")),
            "a link to the file"
        );
        fill("#body", "Take them in the evening instead.").await?;
        c.find(Locator::XPath("//button[text()='Send']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//div[@class='notice'][text()='Sent.']"))
            .await?;

        // The clinician approves it from the queue.
        c.find(Locator::LinkText("Refills")).await?.click().await?;
        c.find(Locator::LinkText("Lisinopril 10 mg tablet"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#refills")).await?;
        let refills = c.find(Locator::Css("#refills")).await?;
        refills.clear().await?;
        refills.send_keys("2").await?;
        fill("#instructions", "Keep taking one every morning.").await?;
        c.find(Locator::XPath("//button[text()='Approve']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@class='notice'][starts-with(text(),'Approved.')]",
            ))
            .await?;

        signs_out(&c, &base).await?;

        // The patient reads the answer and sees that the clinician read her message.
        patient_signs_in(&c, &base).await?;
        c.goto(url("/messages").as_str()).await?;
        c.wait()
            .for_element(Locator::XPath("//span[@class='new'][text()='1 new']"))
            .await?;
        c.goto(url(&thread).as_str()).await?;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@class='message-text'][text()='Take them in the evening instead.']",
            ))
            .await?;
        let receipt = c
            .find(Locator::Css(".message.mine .receipt"))
            .await?
            .text()
            .await?;
        assert!(receipt.starts_with("Read "), "the read receipt: {receipt}");

        // The patient sees the answer on the medication's page.
        patient_signs_in(&c, &base).await?;
        c.goto(url(&med_page).as_str()).await?;
        c.wait()
            .for_element(Locator::XPath("//strong[text()='Approved']"))
            .await?;
        assert!(
            c.find(Locator::XPath(
                "//p[text()='Approved: 30 to the pharmacy, 2 refills.']"
            ))
            .await
            .is_ok(),
            "the answer in words"
        );
        let new_refill = format!("/refills/new?medication={medication}");
        let failures = check_pages(
            &c,
            &base,
            "patient",
            &[
                "/messages",
                "/messages/new",
                thread.as_str(),
                med_page.as_str(),
                "/refills",
                new_refill.as_str(),
            ],
        )
        .await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        // Where it stopped, for people to look at.
        let shots = salus_tests::workspace_root().join("target/screenshots");
        if let (Ok(png), Ok(())) = (c.screenshot().await, std::fs::create_dir_all(&shots)) {
            let _ = std::fs::write(shots.join("failed-messaging.png"), png);
        }
    }
    let _ = c.close().await;
    result.unwrap();
}

/// Signs a member of staff in with the shared test password and their authenticator's code;
/// waits for the home page.
async fn staff_signs_in(
    c: &fantoccini::Client,
    base: &str,
    email: &str,
    secret_base32: &str,
) -> Result<(), fantoccini::error::CmdError> {
    staff_signs_in_with(c, base, email, &totp_now(secret_base32)).await
}

/// Signs a member of staff in with the shared test password and `code` (an authenticator's
/// code, or a recovery code when the current one was just used); waits for the home page.
async fn staff_signs_in_with(
    c: &fantoccini::Client,
    base: &str,
    email: &str,
    code: &str,
) -> Result<(), fantoccini::error::CmdError> {
    c.goto(&format!("{base}/login")).await?;
    c.find(Locator::Css("#email"))
        .await?
        .send_keys(email)
        .await?;
    c.find(Locator::Css("#password"))
        .await?
        .send_keys("tulip kettle orbit")
        .await?;
    c.find(Locator::Css("main button[type=submit]"))
        .await?
        .click()
        .await?;
    c.wait().for_element(Locator::Css("#code")).await?;
    c.find(Locator::Css("#code")).await?.send_keys(code).await?;
    c.find(Locator::Css("main button[type=submit]"))
        .await?
        .click()
        .await?;
    c.wait()
        .for_url(&url::Url::parse(&format!("{base}/account")).unwrap())
        .await
}

/// The current code of an authenticator with this secret.
fn totp_now(secret_base32: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes, None, "x".into())
        .unwrap()
        .generate_current()
        .unwrap()
}

/// Signs the demo patient in; waits for the home page.
async fn patient_signs_in(
    c: &fantoccini::Client,
    base: &str,
) -> Result<(), fantoccini::error::CmdError> {
    c.goto(&format!("{base}/login")).await?;
    c.find(Locator::Css("#email"))
        .await?
        .send_keys("patient@demo.salus.test")
        .await?;
    c.find(Locator::Css("#password"))
        .await?
        .send_keys(DEMO_PASSWORD)
        .await?;
    c.find(Locator::Css("main button[type=submit]"))
        .await?
        .click()
        .await?;
    c.wait()
        .for_url(&url::Url::parse(&format!("{base}/account")).unwrap())
        .await
}

/// The page-shape checks and axe on each of `paths` at 390 and 1280 px, as `who`: what is
/// wrong, each line naming the page and the width (nothing when axe-core is missing, which
/// `axe_core` says loudly, and fails under CI).
async fn check_pages(
    c: &fantoccini::Client,
    base: &str,
    who: &str,
    paths: &[&str],
) -> Result<Vec<String>, fantoccini::error::CmdError> {
    let Some(axe) = salus_tests::axe_core() else {
        return Ok(Vec::new());
    };
    let mut failures = Vec::new();
    for width in [390_u32, 1280] {
        c.set_window_size(width, 900).await?;
        for path in paths {
            c.goto(&format!("{base}{path}")).await?;
            c.wait().for_element(Locator::Css("main")).await?;
            for w in check_page(c, &axe, who, path, width).await? {
                failures.push(format!("{who} {path} at {width} px: {w}"));
            }
        }
    }
    Ok(failures)
}

/// Signs whoever is signed in out.
async fn signs_out(c: &fantoccini::Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    c.goto(&format!("{base}/account")).await?;
    c.find(Locator::Css("form[action='/logout'] button"))
        .await?
        .click()
        .await?;
    c.wait().for_element(Locator::Css("main h1")).await?;
    Ok(())
}

/// The booked rows of the front desk's week from `day`: (time, patient) of each.
async fn booked_rows(
    c: &fantoccini::Client,
    base: &str,
    day: &str,
) -> Result<Vec<(String, String)>, fantoccini::error::CmdError> {
    c.goto(&format!("{base}/staff/schedule?date={day}&days=7"))
        .await?;
    c.wait().for_element(Locator::Css("main h1")).await?;
    let rows = c
        .execute(
            "return [...document.querySelectorAll('table.schedule tr.booked')].map(r => [r.cells[0].innerText, r.cells[5].innerText.split('\\n')[0]]);",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(rows).unwrap_or_default())
}

#[tokio::test]
async fn a_patient_books_the_next_time_downloads_the_calendar_moves_and_cancels_and_the_front_desk_sees_each_change_in_chromium()
 {
    use salus_domain::account::{NewStaff, SecretText, StaffRole};
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, auth, clinic, store) = start_salus(dir.path()).await;
    let desk = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse("desk@browser.test").unwrap(),
                name: salus_domain::patient::PersonName::new("Sam", "Rivera").unwrap(),
                role: StaffRole::FrontDesk,
                organization: clinic,
                password: SecretText::new("tulip kettle orbit"),
            },
            None,
        )
        .await
        .unwrap();
    // The demo clinic's hours, set up by its front desk.
    let scheduling = salus_server::app::api_state(
        &store,
        &salus_server::Config::default(),
        Arc::new(salus_domain::SystemClock),
    )
    .unwrap()
    .scheduling;
    demo::seed_demo_schedule(
        &scheduling,
        &salus_domain::access::Actor::Staff {
            account: desk.account,
            role: StaffRole::FrontDesk,
            organization: clinic,
        },
        "America/New_York",
    )
    .await
    .unwrap();
    let zone: salus_domain::chrono_tz::Tz = "America/New_York".parse().unwrap();
    let from = (salus_domain::Clock::now(&salus_domain::SystemClock) + chrono::Duration::days(3))
        .with_timezone(&zone)
        .date_naive()
        .to_string();
    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;
    let result = async {
        let url = |path: &str| url::Url::parse(&format!("{base}{path}")).unwrap();
        patient_signs_in(&c, &base).await?;
        // From the menu to the first open follow-up time three days ahead.
        c.find(Locator::LinkText("Appointments")).await?.click().await?;
        c.wait().for_url(&url("/appointments")).await?;
        c.find(Locator::LinkText("Book a visit")).await?.click().await?;
        c.wait().for_element(Locator::Css("#visit_type")).await?;
        c.find(Locator::Css("#visit_type"))
            .await?
            .select_by_label("Follow-up visit (20 minutes, in person)")
            .await?;
        c.execute(
            "document.querySelector('#from').value = arguments[0];",
            vec![serde_json::json!(from)],
        )
        .await?;
        c.find(Locator::XPath("//button[text()='Find times']"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("a.slot")).await?;
        let find_page = {
            let u = c.current_url().await?;
            format!("{}?{}", u.path(), u.query().unwrap_or_default())
        };
        let first = c.find(Locator::Css("a.slot")).await?;
        let first_time = first.text().await?;
        first.click().await?;
        c.wait().for_element(Locator::Css("#reason")).await?;
        let book_page = c.current_url().await?.path().to_owned();
        c.find(Locator::Css("#reason"))
            .await?
            .send_keys("Blood pressure follow-up")
            .await?;
        c.find(Locator::XPath("//button[text()='Book']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//div[@class='notice'][starts-with(text(),'Booked.')]"))
            .await?;
        let appointment = c.current_url().await?.path().to_owned();
        let heading = c.find(Locator::Css("main h1")).await?.text().await?;
        let booked_time = first_time.lines().next().unwrap_or_default().to_owned();
        assert!(heading.ends_with(&booked_time), "{heading} / {booked_time}");

        // The calendar file, fetched as the browser would download it.
        let link = c
            .find(Locator::Css("a[href$='/calendar.ics']"))
            .await?
            .attr("href")
            .await?
            .unwrap_or_default();
        let ics = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);",
                vec![serde_json::json!(link)],
            )
            .await?;
        let ics = ics.as_str().unwrap_or_default().to_owned();
        assert!(ics.starts_with("BEGIN:VCALENDAR"), "{ics}");
        assert!(ics.contains("TZID=America/New_York"), "{ics}");
        assert!(!ics.contains("Blood pressure"), "no reason in the file");

        // Move it to the second time offered.
        c.find(Locator::LinkText("Change the time")).await?.click().await?;
        c.wait().for_element(Locator::Css("button.slot")).await?;
        let second = c.find_all(Locator::Css("button.slot")).await?;
        let moved_time = second[1].text().await?.lines().next().unwrap_or_default().to_owned();
        second[1].click().await?;
        c.wait()
            .for_element(Locator::XPath("//div[@class='notice'][text()='Moved to the new time.']"))
            .await?;
        let heading = c.find(Locator::Css("main h1")).await?.text().await?;
        assert!(heading.ends_with(&moved_time), "{heading} / {moved_time}");
        signs_out(&c, &base).await?;

        // The front desk sees the moved visit, with the patient.
        staff_signs_in(&c, &base, "desk@browser.test", &desk.totp.secret_base32).await?;
        c.find(Locator::LinkText("Schedule")).await?.click().await?;
        c.wait().for_element(Locator::Css("main h1")).await?;
        let rows = booked_rows(&c, &base, &from).await?;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, moved_time);
        assert!(!rows[0].1.is_empty(), "the patient's name");
        signs_out(&c, &base).await?;

        // The patient cancels; the front desk's week is empty of bookings.
        patient_signs_in(&c, &base).await?;
        c.goto(url(&appointment).as_str()).await?;
        c.find(Locator::XPath("//button[text()='Cancel this appointment']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//div[@class='notice'][starts-with(text(),'Cancelled.')]"))
            .await?;
        let failures = check_pages(&c, &base, "patient", &["/appointments", find_page.as_str(), book_page.as_str(), appointment.as_str(),]).await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        signs_out(&c, &base).await?;
        // The authenticator's code of a minute ago is spent: a recovery code instead.
        staff_signs_in_with(
            &c,
            &base,
            "desk@browser.test",
            desk.recovery_codes[0].expose(),
        )
        .await?;
        assert!(booked_rows(&c, &base, &from).await?.is_empty(), "the cancellation shows");
        let week = format!("/staff/schedule?date={from}&days=7");
        let failures = check_pages(
            &c,
            &base,
            "front desk",
            &[week.as_str(), "/staff/schedule/setup"],
        )
        .await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        let shots = salus_tests::workspace_root().join("target/screenshots");
        if let (Ok(png), Ok(())) = (c.screenshot().await, std::fs::create_dir_all(&shots)) {
            let _ = std::fs::write(shots.join("failed-scheduling.png"), png);
        }
    }
    let _ = c.close().await;
    result.unwrap();
}

#[tokio::test]
async fn a_patient_opens_a_statement_pays_it_with_the_sandbox_card_sees_the_receipt_and_a_zero_balance_in_chromium()
 {
    use salus_domain::account::{
        AccountRepository as _, ChartLink, NewStaff, SecretText, StaffRole,
    };
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, auth, clinic, store) = start_salus(dir.path()).await;
    let clerk = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse("billing@browser.test").unwrap(),
                name: salus_domain::patient::PersonName::new("Lena", "Park").unwrap(),
                role: StaffRole::Billing,
                organization: clinic,
                password: SecretText::new("tulip kettle orbit"),
            },
            None,
        )
        .await
        .unwrap();
    let patient = store
        .find_by_email(&salus_domain::text::Email::parse(demo::DEMO_PATIENT_EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    let ChartLink::Linked { patient } = patient.chart else {
        panic!("the demo patient has a chart");
    };
    // Two statements (30.00 and 75.10 to pay), posted by the billing office.
    let billing = salus_server::app::api_state(
        &store,
        &salus_server::Config::default(),
        Arc::new(salus_domain::SystemClock),
    )
    .unwrap()
    .billing;
    let today = salus_domain::Clock::now(&salus_domain::SystemClock).date_naive();
    demo::seed_demo_bills(
        &billing,
        &salus_domain::access::Actor::Staff {
            account: clerk.account,
            role: StaffRole::Billing,
            organization: clinic,
        },
        patient,
        today,
    )
    .await
    .unwrap();
    let (_driver, c) = open_chromium(&driver, &chromium, dir.path()).await;
    let result = async {
        let url = |path: &str| url::Url::parse(&format!("{base}{path}")).unwrap();
        let text_of = |css: &'static str| {
            let c = c.clone();
            async move { c.find(Locator::Css(css)).await?.text().await }
        };
        patient_signs_in(&c, &base).await?;
        c.find(Locator::LinkText("Bills")).await?.click().await?;
        c.wait().for_url(&url("/bills")).await?;
        assert_eq!(text_of(".balance .amount").await?, "$105.10");
        // The newest statement, line by line.
        c.find(Locator::LinkText("DEMO-1002"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::Css("table.records tfoot"))
            .await?;
        let statement = c.current_url().await?.path().to_owned();
        let lines = text_of("table.records tbody").await?;
        assert!(
            lines.contains("Lipid panel") && lines.contains("$45.10"),
            "{lines}"
        );
        assert!(text_of("table.records tfoot").await?.contains("$75.10"));
        c.find(Locator::LinkText("Back to the account"))
            .await?
            .click()
            .await?;
        // Pay: the processor's card form first, then the whole balance.
        c.find(Locator::LinkText("Pay $105.10 or part of it"))
            .await?
            .click()
            .await?;
        c.find(Locator::LinkText("Enter card details"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#number")).await?;
        let card_form = {
            let u = c.current_url().await?;
            format!("{}?{}", u.path(), u.query().unwrap_or_default())
        };
        c.find(Locator::Css("#number"))
            .await?
            .send_keys("4242 4242 4242 4242")
            .await?;
        c.find(Locator::XPath("//button[text()='Continue']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//button[text()='Pay now']"))
            .await?;
        let amount_page = {
            let u = c.current_url().await?;
            format!("{}?{}", u.path(), u.query().unwrap_or_default())
        };
        assert!(
            amount_page.contains("card=tok_"),
            "a token came back, not a number"
        );
        assert!(!amount_page.contains("4242"));
        let mut before = check_pages(&c, &base, "patient", &[amount_page.as_str()]).await?;
        before.extend(check_pages(&c, &base, "processor", &[card_form.as_str()]).await?);
        assert!(before.is_empty(), "{}", before.join("\n"));
        c.goto(url(&amount_page).as_str()).await?;
        c.find(Locator::XPath("//button[text()='Pay now']"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Receipt']"))
            .await?;
        let receipt = c.current_url().await?.path().to_owned();
        let shown = text_of("dl.record").await?;
        assert!(
            shown.contains("$105.10") && shown.contains("Paid"),
            "{shown}"
        );
        assert!(shown.contains("$0.00"), "nothing owed now: {shown}");
        c.find(Locator::LinkText("Bills")).await?.click().await?;
        c.wait().for_url(&url("/bills")).await?;
        assert_eq!(text_of(".balance .amount").await?, "$0.00");
        assert!(text_of(".balance").await?.contains("Nothing to pay now"));
        let failures = check_pages(
            &c,
            &base,
            "patient",
            &["/bills", statement.as_str(), receipt.as_str()],
        )
        .await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        signs_out(&c, &base).await?;

        // The billing office finds the account by record number and sees the payment.
        staff_signs_in(&c, &base, "billing@browser.test", &clerk.totp.secret_base32).await?;
        c.find(Locator::LinkText("Billing")).await?.click().await?;
        c.wait().for_element(Locator::Css("#mrn")).await?;
        let mrn = salus_domain::patient::PatientRepository::find(&store, patient)
            .await
            .unwrap()
            .unwrap()
            .mrn;
        c.find(Locator::Css("#mrn"))
            .await?
            .send_keys(mrn.as_str())
            .await?;
        c.find(Locator::XPath("//button[text()='Open the account']"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("ul.payments")).await?;
        let account = c.current_url().await?.path().to_owned();
        let payments = text_of("ul.payments").await?;
        assert!(
            payments.contains("$105.10") && payments.contains("Paid"),
            "{payments}"
        );
        let failures =
            check_pages(&c, &base, "billing", &["/staff/billing", account.as_str()]).await?;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        let shots = salus_tests::workspace_root().join("target/screenshots");
        if let (Ok(png), Ok(())) = (c.screenshot().await, std::fs::create_dir_all(&shots)) {
            let _ = std::fs::write(shots.join("failed-billing.png"), png);
        }
    }
    let _ = c.close().await;
    result.unwrap();
}
