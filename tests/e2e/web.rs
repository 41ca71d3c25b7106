//! The account pages end to end: register, confirm, sign in, home, sign out, with CSRF
//! tokens and cookies as a browser would send them.

use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use std::collections::BTreeMap;

/// A minimal browser: keeps cookies, reads the CSRF field out of forms.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    headers: poem::http::HeaderMap,
    html: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: poem::test::TestResponse) -> Page {
        for set in resp.0.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = resp.0.status();
        let location = resp
            .0
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let headers = resp.0.headers().clone();
        let html = resp.0.into_body().into_string().await.unwrap();
        Page {
            status,
            location,
            headers,
            html,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .app
            .client
            .get(path)
            .header("cookie", self.cookie_header())
            .send()
            .await;
        self.finish(resp).await
    }

    /// Opens an emailed link as a browser does: the link answers a redirect to the same path
    /// without its query (the token moves into a cookie for that path), which is followed.
    async fn open_link(&mut self, link: &str) -> Page {
        let (clean, query) = link.split_once('?').unwrap();
        let token = query.strip_prefix("token=").unwrap();
        let resp = self
            .app
            .client
            .get(link)
            .header("cookie", self.cookie_header())
            .send()
            .await;
        let set_cookie = resp
            .0
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let moved = self.finish(resp).await;
        assert_eq!(
            (moved.status, moved.location.as_deref()),
            (StatusCode::SEE_OTHER, Some(clean)),
            "the token leaves the address bar at once"
        );
        assert!(
            set_cookie.starts_with(&format!("salus_link={token};"))
                && set_cookie.contains(&format!("Path={clean}"))
                && set_cookie.contains("HttpOnly")
                && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        self.get(clean).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded(fields);
        let resp = self
            .app
            .client
            .post(path)
            .header("cookie", self.cookie_header())
            .content_type("application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        self.finish(resp).await
    }
}

fn serde_urlencoded(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", url_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The path and query of the link in the newest email that has one starting with `prefix`.
fn emailed_path(app: &TestApp, prefix: &str) -> String {
    let mail = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.contains(prefix))
        .expect("an email with the link");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains(prefix))
        .unwrap();
    link[link.find(prefix).unwrap()..].to_owned()
}

/// The page with its CSRF tokens (fresh on every answer) blanked.
fn without_csrf(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("name=\"csrf\" value=\"") {
        let (head, tail) = rest.split_at(at + "name=\"csrf\" value=\"".len());
        out.push_str(head);
        rest = tail.split_once('"').map_or("", |(_, after)| after);
        out.push('"');
    }
    out.push_str(rest);
    out
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn register_confirm_sign_in_and_out_through_the_pages() {
    let app = spawn_app(0).await;
    let mut b = Browser::new(&app);

    let form = b.get("/register").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = csrf_of(&form.html);
    let fields = [
        ("csrf", csrf.as_str()),
        ("given_name", "Ann"),
        ("family_name", "Lee"),
        ("birth_date", "1980-01-02"),
        ("email", "ann@example.org"),
        ("password", "short"),
    ];
    // A refused password keeps everything else that was typed.
    let refused = b.post("/register", &fields).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains("Choose another password: use at least 12 characters."),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("value=\"ann@example.org\"")
            && refused.html.contains("value=\"1980-01-02\"")
    );
    assert!(
        !refused.html.contains("value=\"short\""),
        "the password is never echoed"
    );

    let mut fields = fields;
    fields[5] = ("password", "tulip kettle orbit");
    let done = b.post("/register", &fields).await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/register/check-email"))
    );

    let mail = app.emails().pop().unwrap();
    let link = mail
        .lines()
        .find(|l| l.contains("/verify?token="))
        .unwrap()
        .trim()
        .to_owned();
    let path = link
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .map(|(_, p)| format!("/{p}"))
        .unwrap();
    let confirm = b.open_link(&path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let token = path.split("token=").nth(1).unwrap();
    assert!(
        confirm.html.contains(token),
        "the code is filled in; opening the link did not use it"
    );
    let confirmed = b
        .post(
            "/verify",
            &[("csrf", &csrf_of(&confirm.html)), ("token", token)],
        )
        .await;
    assert!(
        confirmed.html.contains("Email address confirmed"),
        "{}",
        confirmed.html
    );
    assert!(
        !b.cookies.contains_key("salus_link"),
        "the spent token's cookie is ended"
    );

    let login = b.get("/login").await;
    // An unknown address gets the generic message (a wrong password would too, and would
    // also start the account's throttling delay).
    let wrong = b
        .post(
            "/login",
            &[
                ("csrf", &csrf_of(&login.html)),
                ("email", "bob@example.org"),
                ("password", "nope nope nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("The email or password is not correct."));
    assert!(
        wrong.html.contains("value=\"bob@example.org\""),
        "the email stays filled in"
    );
    let signed_in = b
        .post(
            "/login",
            &[
                ("csrf", &csrf_of(&wrong.html)),
                ("email", "ann@example.org"),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/account"))
    );
    assert!(
        b.cookies.contains_key("salus_session"),
        "session cookie set"
    );

    let home = b.get("/account").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains("Hello, Ann") && home.html.contains("ann@example.org"));

    let out = b.post("/logout", &[("csrf", &csrf_of(&home.html))]).await;
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));
    assert!(!b.cookies.contains_key("salus_session"), "cookie removed");
    let after = b.get("/account").await;
    assert_eq!(
        (after.status, after.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
}

#[tokio::test]
async fn forgot_password_then_reset_through_the_pages_and_activation_page_refuses_a_bad_code() {
    let app = spawn_app(0).await;
    crate::auth::verified_account(&app).await;

    let mut b = Browser::new(&app);
    let login = b.get("/login").await;
    assert!(login.html.contains("href=\"/forgot\""));
    assert!(login.html.contains("href=\"/verify/resend\""));
    let resend = b.get("/verify/resend").await;
    let asked = b
        .post(
            "/verify/resend",
            &[
                ("csrf", &csrf_of(&resend.html)),
                ("email", "ann@example.org"),
            ],
        )
        .await;
    assert!(
        asked
            .html
            .contains("If this address has an account waiting for confirmation")
    );
    let forgot = b.get("/forgot").await;
    let sent = b
        .post(
            "/forgot",
            &[
                ("csrf", &csrf_of(&forgot.html)),
                ("email", "ann@example.org"),
            ],
        )
        .await;
    assert!(
        sent.html.contains("If this address has an account"),
        "{}",
        sent.html
    );
    let mail = app.emails().pop().unwrap();
    let reset_token = mail
        .split("/reset?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let form = b.open_link(&format!("/reset?token={reset_token}")).await;
    assert!(
        form.html.contains(&reset_token),
        "the token rides along in the form"
    );
    let weak = b
        .post(
            "/reset",
            &[
                ("csrf", &csrf_of(&form.html)),
                ("token", &reset_token),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(
        weak.html
            .contains("Choose another password: use at least 12 characters."),
        "{}",
        weak.html
    );
    let done = b
        .post(
            "/reset",
            &[
                ("csrf", &csrf_of(&weak.html)),
                ("token", &reset_token),
                ("password", "maple lantern quartz"),
            ],
        )
        .await;
    assert!(done.html.contains("Password changed"), "{}", done.html);

    let login = b.get("/login").await;
    let signed_in = b
        .post(
            "/login",
            &[
                ("csrf", &csrf_of(&login.html)),
                ("email", "ann@example.org"),
                ("password", "maple lantern quartz"),
            ],
        )
        .await;
    assert_eq!(signed_in.location.as_deref(), Some("/account"));
    let home = b.get("/account").await;
    assert!(
        home.html.contains("href=\"/account/activate\""),
        "an unlinked account is offered the code page"
    );
    let page = b.get("/account/activate").await;
    let refused = b
        .post(
            "/account/activate",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("code", "AAAA-BBBB-CCCC-DDDD"),
                ("birth_date", "1980-01-02"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains("The code or date of birth is not correct")
    );
    assert!(
        refused.html.contains("value=\"AAAA-BBBB-CCCC-DDDD\""),
        "what was typed is kept"
    );
}

#[tokio::test]
async fn security_page_sets_up_an_authenticator_and_manages_password_and_sessions() {
    let app = spawn_app(0).await;
    crate::auth::verified_account(&app).await;
    // A second session elsewhere (through the API).
    let login = serde_json::json!({"email": "ann@example.org", "password": "tulip kettle orbit"});
    let resp = app
        .client
        .post("/api/v1/auth/login")
        .header(
            "user-agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        )
        .body_json(&login)
        .send()
        .await;
    let (_, other) = crate::auth::body(resp).await;
    let other = other["token"].as_str().unwrap().to_owned();

    let mut b = Browser::new(&app);
    let form = b.get("/login").await;
    b.post(
        "/login",
        &[
            ("csrf", &csrf_of(&form.html)),
            ("email", "ann@example.org"),
            ("password", "tulip kettle orbit"),
        ],
    )
    .await;
    let page = b.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("(this one)"));
    assert!(
        page.html.contains("<strong>Firefox on Windows</strong>"),
        "each session is named by its browser and system: {}",
        page.html
    );
    assert_eq!(
        page.html.matches("Sign out there").count(),
        1,
        "the other session can be ended"
    );

    let wrong = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("current_password", "nope nope nope"),
                ("new_password", "maple lantern quartz"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.html.contains("The current password is not correct."));

    // Setting up the app asks for the password, then shows a QR code and the key.
    let setup = b
        .post(
            "/account/totp",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.html);
    assert!(setup.html.contains("<svg"), "a QR code is drawn inline");
    let key = setup
        .html
        .split("Key: <code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_owned();
    let confirmed = b
        .post(
            "/account/totp/confirm",
            &[
                ("csrf", &csrf_of(&setup.html)),
                ("code", &crate::auth::code_now(&app, &key)),
            ],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
    assert_eq!(
        confirmed.html.matches("<li><code>").count(),
        10,
        "ten recovery codes"
    );
    // Once on, the page says so and no longer offers to set it up.
    let later = b.get("/account/security").await;
    assert!(later.html.contains("<strong>On</strong> since"));
    assert!(!later.html.contains("Set up an authenticator app"));
    assert!(
        later
            .html
            .contains("class=\"danger\">Sign out everywhere else"),
        "ending sessions looks like it ends something"
    );

    let first_codes = confirmed.html.clone();

    // New recovery codes, and turning the app off, both need the password again.
    let wrong = b
        .post(
            "/account/totp/recovery-codes",
            &[
                ("csrf", &csrf_of(&later.html)),
                ("password", "not my password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("The password is not correct."));
    app.advance_minutes(1); // past the short wait a wrong password costs
    let renewed = b
        .post(
            "/account/totp/recovery-codes",
            &[
                ("csrf", &csrf_of(&later.html)),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.html);
    assert_eq!(renewed.html.matches("<li><code>").count(), 10);
    let code_of = |html: &str| {
        html.split("<li><code>")
            .nth(1)
            .unwrap()
            .split("</code>")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(code_of(&renewed.html), code_of(&first_codes), "new codes");
    assert!(
        app.emails()
            .last()
            .is_some_and(|m| m.contains("New recovery codes")),
        "the owner is told"
    );
    let off = b
        .post(
            "/account/totp/off",
            &[
                ("csrf", &csrf_of(&renewed.html)),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.html);
    assert!(off.html.contains("Your authenticator app is off."));
    assert!(off.html.contains("Set up an authenticator app"));
    assert!(
        app.emails()
            .last()
            .is_some_and(|m| m.contains("was turned off")),
        "the owner is told"
    );
    let events = app.auth_events().await;
    for e in ["auth.recovery_codes_replaced", "auth.second_factor_removed"] {
        assert!(events.iter().any(|a| a == e), "{e} in {events:?}");
    }

    let ended = b
        .post(
            "/account/sessions/end-others",
            &[("csrf", &csrf_of(&off.html))],
        )
        .await;
    assert!(ended.html.contains("You are signed out everywhere else."));
    let me = app
        .client
        .get("/api/v1/me")
        .header("authorization", format!("Bearer {other}"))
        .send()
        .await;
    me.assert_status(StatusCode::UNAUTHORIZED);
}

/// Creates a staff member of the demo clinic and signs them in through the pages (password,
/// then the authenticator code).
async fn staff_signs_in(b: &mut Browser<'_>, email: &str, role: salus_domain::account::StaffRole) {
    use salus_domain::account::{NewStaff, SecretText};
    let org = salus_server::importer::target_org(&b.app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let auth = b.app.auth();
    let creds = auth
        .create_staff(
            NewStaff {
                email: salus_domain::text::Email::parse(email).unwrap(),
                name: salus_domain::patient::PersonName::new("Staff", "Member").unwrap(),
                role,
                organization: org.id,
                password: SecretText::new("tulip kettle orbit"),
            },
            None,
        )
        .await
        .unwrap();
    let form = b.get("/login").await;
    let step = b
        .post(
            "/login",
            &[
                ("csrf", &csrf_of(&form.html)),
                ("email", email),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(
        step.location.as_deref(),
        Some("/login/code"),
        "staff need the code"
    );
    let code_page = b.get("/login/code").await;
    let code = crate::auth::code_now(b.app, &creds.totp.secret_base32);
    let done = b
        .post(
            "/login/code",
            &[("csrf", &csrf_of(&code_page.html)), ("code", &code)],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/account"));
}

#[tokio::test]
async fn front_desk_pages_issue_codes_and_confirm_identities() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let chart = crate::identity::chart(&app, "SYN0000000").await;
    // A patient who registered with the chart's name and birth date waits in the queue.
    let reg = serde_json::json!({"given_name": chart.name.given(), "family_name": chart.name.family(),
        "birth_date": chart.birth_date.to_string(), "email": "pat@example.org", "password": "tulip kettle orbit"});
    crate::auth::post(&app, "/api/v1/auth/register", &reg).await;
    let token = crate::auth::token_from_outbox(&app);
    crate::auth::post(
        &app,
        "/api/v1/auth/verify",
        &serde_json::json!({"token": token}),
    )
    .await;

    let mut b = Browser::new(&app);
    staff_signs_in(&mut b, "desk@example.org", StaffRole::FrontDesk).await;
    let home = b.get("/account").await;
    assert!(home.html.contains("href=\"/staff\""));

    let desk = b.get("/staff").await;
    assert_eq!(desk.status, StatusCode::OK);
    assert!(desk.html.contains("pat@example.org"));
    assert!(desk.html.contains("record number SYN0000000"));
    let issued = b
        .post(
            "/staff/activation-code",
            &[("csrf", &csrf_of(&desk.html)), ("mrn", "SYN0000000")],
        )
        .await;
    assert!(
        issued.html.contains("Give this code to the patient"),
        "{}",
        issued.html
    );
    let unknown = b
        .post(
            "/staff/activation-code",
            &[("csrf", &csrf_of(&issued.html)), ("mrn", "NOPE")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let account_id = unknown
        .html
        .split("action=\"/staff/identity/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let confirmed = b
        .post(
            &format!("/staff/identity/{account_id}"),
            &[
                ("csrf", &csrf_of(&unknown.html)),
                ("decision", "confirm"),
                ("patient_id", &chart.id.to_string()),
            ],
        )
        .await;
    assert!(
        confirmed
            .html
            .contains("The account is now connected to the record."),
        "{}",
        confirmed.html
    );
    assert!(
        !confirmed.html.contains("pat@example.org"),
        "no longer waiting"
    );
}

#[tokio::test]
async fn team_page_invites_and_the_invitation_page_sets_up_the_account() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(0).await;
    let mut admin = Browser::new(&app);
    staff_signs_in(
        &mut admin,
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let home = admin.get("/account").await;
    assert!(home.html.contains("href=\"/staff/team\""));
    let team = admin.get("/staff/team").await;
    assert_eq!(team.status, StatusCode::OK);
    assert!(team.html.contains("admin@example.org"));

    let invite = |csrf: &str| {
        let fields = [
            ("csrf", csrf),
            ("given_name", "Nia"),
            ("family_name", "Okafor"),
            ("email", "nia@example.org"),
            ("role", "clinician"),
        ];
        fields.map(|(k, v)| (k, v.to_owned()))
    };
    let forged = invite("forged");
    let forged = admin
        .post(
            "/staff/invitations",
            &forged.each_ref().map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF is checked");
    let fields = invite(&csrf_of(&team.html));
    let refs = fields.each_ref().map(|(k, v)| (*k, v.as_str()));
    let sent = admin.post("/staff/invitations", &refs).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(
        sent.html
            .contains("An invitation is on its way to nia@example.org")
    );
    assert!(sent.html.contains("Invited, not set up yet"));

    // The colleague opens the link in their own browser.
    let path = &emailed_path(&app, "/staff/setup?token=");
    let mut nia = Browser::new(&app);
    let setup = nia.open_link(path).await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(setup.html.contains("<svg"), "a QR code");
    let secret = setup
        .html
        .split("Key: <code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        nia.get("/staff/setup").await.html.contains(&secret),
        "opening the link again shows the same key"
    );
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let csrf = csrf_of(&setup.html);
    let wrong = nia
        .post(
            "/staff/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "tulip kettle orbit"),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.html.contains("not correct"));
    let code = crate::auth::code_now(&app, &secret);
    let ready = nia
        .post(
            "/staff/setup",
            &[
                ("csrf", &csrf_of(&wrong.html)),
                ("token", &token),
                ("password", "tulip kettle orbit"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.html);
    assert!(ready.html.contains("Your account is ready"));
    assert_eq!(
        ready.html.matches("<li><code>").count(),
        10,
        "ten recovery codes"
    );
    let used = nia.open_link(path).await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST, "the link is used up");

    let team = admin.get("/staff/team").await;
    assert!(team.html.contains("nia@example.org"));
    assert!(!team.html.contains("Invited, not set up yet"));

    // Front desk may not open the team page.
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk@example.org", StaffRole::FrontDesk).await;
    assert_eq!(desk.get("/staff/team").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn security_page_changes_the_email_address_after_confirmation_from_the_new_inbox() {
    let app = spawn_app(0).await;
    crate::auth::verified_account(&app).await;
    let mut b = Browser::new(&app);
    let form = b.get("/login").await;
    b.post(
        "/login",
        &[
            ("csrf", &csrf_of(&form.html)),
            ("email", "ann@example.org"),
            ("password", "tulip kettle orbit"),
        ],
    )
    .await;
    let page = b.get("/account/security").await;
    assert!(
        page.html
            .contains("You sign in with <strong>ann@example.org</strong>")
    );
    // The strength meter knows the person's own words.
    assert!(page.html.contains("data-email=\"ann@example.org\""));
    let asked = b
        .post(
            "/account/email",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("new_email", "ann.lee@example.net"),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.html.contains("We sent a link to the new address"));

    let path = &emailed_path(&app, "/account/email/confirm?token=");
    // Opening the link (as a mail scanner would) changes nothing by itself.
    let confirm = b.open_link(path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.html.contains("action=\"/account/email/confirm\""));
    let token = path.split("token=").nth(1).unwrap();
    let done = b
        .post(
            "/account/email/confirm",
            &[("csrf", &csrf_of(&confirm.html)), ("token", token)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.html.contains("Email address changed"));
    let page = b.get("/account/security").await;
    assert!(
        page.html
            .contains("You sign in with <strong>ann.lee@example.net</strong>")
    );
}

/// Signs `email` in through the login form (no second factor).
async fn patient_signs_in(b: &mut Browser<'_>, email: &str) {
    let form = b.get("/login").await;
    let done = b
        .post(
            "/login",
            &[
                ("csrf", &csrf_of(&form.html)),
                ("email", email),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/account"));
}

#[tokio::test]
async fn record_pages_show_the_chart_lists_a_result_with_its_trend_and_the_access_history() {
    let app = spawn_app(2).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    crate::records::linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    assert!(ann.get("/account").await.html.contains("href=\"/records\""));

    let home = ann.get("/records").await;
    assert_eq!(home.status, StatusCode::OK);
    // Record pages offer a Print button (the script shows it) and a print stylesheet.
    assert!(home.html.contains("data-print"));
    let css = ann.get("/static/salus.css").await.html;
    assert!(
        css.contains("@media print") && css.contains(".print-row, nav.account { display: none; }")
    );
    for heading in [
        "Recent test results",
        "Medications you take",
        "Health problems",
        "Allergies",
        "Recent visits",
    ] {
        assert!(home.html.contains(heading), "{heading}");
    }
    assert!(home.html.contains("href=\"/records/history\""));

    let results = ann.get("/records/results").await;
    assert_eq!(results.status, StatusCode::OK);
    let ids: Vec<String> = results
        .html
        .split("href=\"/records/item/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    assert!(!ids.is_empty());
    // Some result has a trend: a chart and its table.
    let mut charted = None;
    for id in &ids {
        let page = ann.get(&format!("/records/item/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html.contains("<dt>Result</dt>") || page.html.contains("<dt>Status</dt>"));
        if page.html.contains("<svg class=\"trend\"") {
            assert!(
                page.html.contains("All values of this test"),
                "a table alternative"
            );
            charted = Some(id.clone());
            break;
        }
    }
    assert!(charted.is_some(), "a repeated test shows a trend chart");

    let filtered = ann.get("/records/results?from=not-a-date").await;
    assert_eq!(filtered.status, StatusCode::BAD_REQUEST);
    assert!(filtered.html.contains("Check the dates"));
    let bad_link = ann.get("/records/results?cursor=zzz").await;
    assert_eq!(bad_link.status, StatusCode::BAD_REQUEST);
    assert!(bad_link.html.contains("This page link is not valid"));
    assert_eq!(
        ann.get("/records/nonsense").await.status,
        StatusCode::NOT_FOUND
    );

    // Bo cannot open Ann's result: the same page as for a record that does not exist.
    let mut bo = Browser::new(&app);
    patient_signs_in(&mut bo, "bo@example.org").await;
    let theirs = bo.get(&format!("/records/item/{}", ids[0])).await;
    let missing = bo
        .get(&format!("/records/item/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(
        without_csrf(&theirs.html),
        without_csrf(&missing.html),
        "the same page but for the sign-out form's fresh token"
    );

    let history = ann.get("/records/history").await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(history.html.contains("Opened one of your test results"));
    assert!(history.html.contains("<td data-label=\"Who\">You</td>"));
    assert!(history.html.contains("Refused"), "Bo's attempt is listed");
    // Times are in the clinic's zone (the demo clinic is in New York), with the zone named.
    assert!(
        (history.html.contains(" EST</td>") || history.html.contains(" EDT</td>"))
            && !history.html.contains(" UTC"),
        "{}",
        history.html
    );
}

#[tokio::test]
async fn clinician_pages_open_a_chart_file_a_result_and_a_held_note_and_release_it() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let (ann, _) = crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut doc = Browser::new(&app);
    staff_signs_in(&mut doc, "doc@example.org", StaffRole::Clinician).await;
    assert!(
        doc.get("/account")
            .await
            .html
            .contains("href=\"/staff/charts\"")
    );
    assert_eq!(doc.get("/staff/charts").await.status, StatusCode::OK);
    let before = crate::records::audit_entries(&app).await;
    let unknown = doc.get("/staff/charts?mrn=NOPE0000").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .html
            .contains("No chart with this medical record number")
    );
    let found = doc.get("/staff/charts?mrn=SYN0000000").await;
    assert_eq!(
        crate::records::audit_entries(&app).await,
        before + 2,
        "both lookups by record number are audited, the unknown one too"
    );
    let chart_path = found.location.clone().expect("a redirect to the chart");
    assert!(chart_path.starts_with("/staff/charts/"));
    let chart = doc.get(&chart_path).await;
    assert_eq!(chart.status, StatusCode::OK);
    assert!(chart.html.contains("MRN SYN0000000"));
    assert!(chart.html.contains("Nothing is held."));

    let post = format!("{chart_path}/records");
    let forged = doc
        .post(
            &post,
            &[
                ("csrf", "forged"),
                ("kind", "note"),
                ("title", "x"),
                ("text", "y"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&chart.html);
    let bad = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "lab_result"),
                ("title", "Ferritin"),
                ("value", "lots"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // The form comes back as it was sent, the reason beside the field (not 3,000 px above),
    // and summarised at the top with a link to that field.
    let summary = bad.html.split("id=\"file-result-h\"").next().unwrap();
    assert!(
        summary.contains("<a href=\"#r-value\">Numbers must be written like 5.4.</a>"),
        "{}",
        bad.html
    );
    let result_form = bad.html.split("id=\"file-result-h\"").nth(1).unwrap();
    assert!(result_form.contains(
        "<p class=\"field-error\" id=\"r-value-error\">Numbers must be written like 5.4.</p>"
    ));
    assert!(result_form.contains("aria-invalid=\"true\" aria-describedby=\"r-value-error\""));
    assert!(result_form.contains("name=\"title\" value=\"Ferritin\""));
    assert!(result_form.contains("name=\"value\" inputmode=\"decimal\" value=\"lots\""));
    // A note without its text names the text field.
    let empty_note = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "note"),
                ("title", "Call back"),
                ("text", " "),
            ],
        )
        .await;
    assert_eq!(empty_note.status, StatusCode::BAD_REQUEST);
    assert!(
        empty_note
            .html
            .contains("<a href=\"#n-text\">A note needs its text.</a>")
    );
    assert!(
        empty_note.html.contains("value=\"Call back\""),
        "the title is kept"
    );
    assert!(
        bad.html.contains("action=\"/staff/charts/"),
        "{}",
        "posts back to the form"
    );
    assert!(
        bad.html.contains("/records#file-result-h\""),
        "and scrolls to it"
    );
    let filed = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "lab_result"),
                ("title", "Ferritin"),
                ("value", "12,5"),
                ("unit", "ng/mL"),
                ("reference_low", "15"),
                ("reference_high", "150"),
            ],
        )
        .await;
    assert_eq!(
        filed.location.as_deref(),
        Some(format!("{chart_path}?filed=released").as_str())
    );
    // The page files into one of the chart's visits, as the API does; any other id is refused.
    let visit = chart
        .html
        .split("<select id=\"r-visit\" name=\"visit\">")
        .nth(1)
        .and_then(|s| s.split("<option value=\"").nth(2))
        .and_then(|s| s.split('"').next())
        .expect("the form offers the chart's visits")
        .to_owned();
    let in_visit = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "lab_result"),
                ("title", "Ferritin again"),
                ("value", "14"),
                ("visit", &visit),
            ],
        )
        .await;
    assert_eq!(
        in_visit.location.as_deref(),
        Some(format!("{chart_path}?filed=released").as_str())
    );
    let not_a_visit = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "note"),
                ("title", "Wrong visit"),
                ("text", "x"),
                ("visit", &uuid::Uuid::now_v7().to_string()),
            ],
        )
        .await;
    assert_eq!(not_a_visit.status, StatusCode::BAD_REQUEST);
    assert!(not_a_visit.html.contains("Choose one of this patient"));
    let note_form = not_a_visit.html.split("id=\"file-note-h\"").nth(1).unwrap();
    assert!(
        note_form.contains("Choose one of this patient"),
        "beside the note form"
    );
    assert!(
        note_form.contains("value=\"Wrong visit\""),
        "the note's title is kept"
    );
    let held = doc
        .post(
            &post,
            &[
                ("csrf", &csrf),
                ("kind", "note"),
                ("title", "Counselling"),
                ("text", "Line one.\nLine <two>."),
                ("label", "mental_health"),
            ],
        )
        .await;
    assert_eq!(
        held.location.as_deref(),
        Some(format!("{chart_path}?filed=held").as_str())
    );
    let chart = doc.get(&format!("{chart_path}?filed=held")).await;
    assert!(chart.html.contains("Filed and held"));
    let note_id = chart
        .html
        .split("action=\"/staff/records/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // It waits in the organisation's queue of held records, with whose chart it is in.
    let queue = doc.get("/staff/charts").await;
    assert!(
        queue
            .html
            .contains(&format!("href=\"/records/item/{note_id}\""))
            && queue.html.contains(&format!("href=\"{chart_path}\"")),
        "{}",
        queue.html
    );
    // The patient does not see the held note; after release they do, as escaped text.
    let path = format!("/api/v1/records/{note_id}");
    assert_eq!(
        crate::identity::call(&app, "GET", &path, &ann, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let patient_id = chart_path.trim_start_matches("/staff/charts/");
    let released = doc
        .post(
            &format!("/staff/records/{note_id}/release"),
            &[("csrf", &csrf_of(&chart.html)), ("patient_id", patient_id)],
        )
        .await;
    assert_eq!(
        released.location.as_deref(),
        Some(format!("{chart_path}?released=1").as_str())
    );
    assert_eq!(
        crate::identity::call(&app, "GET", &path, &ann, None)
            .await
            .0,
        StatusCode::OK
    );
    let page = doc.get(&format!("/records/item/{note_id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("Line &#60;two&#62;.") || page.html.contains("Line &lt;two&gt;."),
        "notes render as safe text: {}",
        page.html
    );
    assert!(page.html.contains("Back to the chart"));

    // Other roles and organisations do not get in.
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk@example.org", StaffRole::FrontDesk).await;
    assert_eq!(desk.get(&chart_path).await.status, StatusCode::NOT_FOUND);
    let mut patient = Browser::new(&app);
    patient_signs_in(&mut patient, "ann@example.org").await;
    assert_eq!(patient.get(&chart_path).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_download_page_asks_for_the_password_then_downloads_and_the_history_says_so() {
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    // Ten minutes pass after the web sign-in.
    app.advance_minutes(10);
    assert!(
        ann.get("/records")
            .await
            .html
            .contains("href=\"/records/download\"")
    );

    let page = ann.get("/records/download").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("enter your password again"));
    assert!(!page.html.contains("href=\"/records/download/fhir\""));
    // Straight to the file without the password: back to the page that asks for it.
    let direct = ann.get("/records/download/fhir").await;
    assert_eq!(direct.location.as_deref(), Some("/records/download"));
    let done = ann
        .post(
            "/records/download",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/records/download"));
    let page = ann.get("/records/download").await;
    assert!(page.html.contains("href=\"/records/download/fhir\""));
    assert!(page.html.contains("href=\"/records/download/ips\""));

    let fhir = ann.get("/records/download/fhir").await;
    assert_eq!(fhir.status, StatusCode::OK);
    let bundle: serde_json::Value = serde_json::from_str(&fhir.html).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert!(bundle["entry"].as_array().unwrap().len() > 10);
    let ips = ann.get("/records/download/ips").await;
    let doc: serde_json::Value = serde_json::from_str(&ips.html).unwrap();
    assert_eq!(doc["type"], "document");

    assert!(page.html.contains("href=\"/records/download/pdf\""));
    for (path, status) in [
        ("/records/download/pdf", StatusCode::OK),
        ("/records/download/pdf?kind=medication", StatusCode::OK),
        ("/records/download/pdf?kind=x-rays", StatusCode::BAD_REQUEST),
    ] {
        // Files are not text: read the answer's head only.
        let resp = app
            .client
            .get(path)
            .header("cookie", ann.cookie_header())
            .send()
            .await
            .0;
        assert_eq!(resp.status(), status, "{path}");
        if status == StatusCode::OK {
            assert_eq!(resp.headers()["content-type"], "application/pdf");
            let bytes = resp.into_body().into_vec().await.unwrap();
            assert!(bytes.starts_with(b"%PDF-"), "{path}");
        }
    }

    let history = ann.get("/records/history").await;
    assert!(history.html.contains("Downloaded your records (FHIR file)"));
    assert!(history.html.contains("Downloaded a PDF of your records"));
    assert!(
        history
            .html
            .contains("Downloaded a PDF of your medications")
    );
    assert!(
        history
            .html
            .contains("Downloaded your patient summary (IPS)")
    );
}

/// Every page route behind sign-in, as (method, path): each gets its person through the
/// session extractor, so a stranger is sent to sign in before anything is read or changed.
const SIGNED_IN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/account"),
    ("GET", "/account/security"),
    ("GET", "/account/activate"),
    ("POST", "/account/activate"),
    ("POST", "/account/password"),
    ("POST", "/account/email"),
    ("POST", "/account/totp"),
    ("POST", "/account/totp/confirm"),
    ("POST", "/account/sessions/end-others"),
    (
        "POST",
        "/account/sessions/01890000-0000-7000-8000-000000000001/end",
    ),
    ("GET", "/records"),
    ("GET", "/records/results"),
    ("GET", "/records/history"),
    ("GET", "/records/item/01890000-0000-7000-8000-000000000001"),
    ("GET", "/records/download"),
    ("POST", "/records/download"),
    ("GET", "/records/download/fhir"),
    ("GET", "/records/download/ips"),
    ("GET", "/records/download/pdf"),
    ("GET", "/staff"),
    ("POST", "/staff/activation-code"),
    (
        "POST",
        "/staff/identity/01890000-0000-7000-8000-000000000001",
    ),
    ("GET", "/staff/charts"),
    ("GET", "/staff/charts/01890000-0000-7000-8000-000000000001"),
    (
        "POST",
        "/staff/charts/01890000-0000-7000-8000-000000000001/records",
    ),
    (
        "POST",
        "/staff/records/01890000-0000-7000-8000-000000000001/release",
    ),
    ("GET", "/staff/team"),
    ("POST", "/staff/invitations"),
    ("GET", "/appointments"),
    ("GET", "/appointments/new"),
    (
        "GET",
        "/appointments/new/01890000-0000-7000-8000-000000000001",
    ),
    (
        "POST",
        "/appointments/new/01890000-0000-7000-8000-000000000001",
    ),
    ("GET", "/appointments/01890000-0000-7000-8000-000000000001"),
    (
        "GET",
        "/appointments/01890000-0000-7000-8000-000000000001/calendar.ics",
    ),
    (
        "POST",
        "/appointments/01890000-0000-7000-8000-000000000001/cancel",
    ),
    (
        "GET",
        "/appointments/01890000-0000-7000-8000-000000000001/move",
    ),
    (
        "POST",
        "/appointments/01890000-0000-7000-8000-000000000001/move",
    ),
    (
        "POST",
        "/appointments/01890000-0000-7000-8000-000000000001/waitlist",
    ),
    (
        "POST",
        "/appointments/01890000-0000-7000-8000-000000000001/waitlist/leave",
    ),
    ("GET", "/staff/schedule"),
    ("GET", "/staff/schedule/find"),
    ("GET", "/staff/schedule/setup"),
    ("POST", "/staff/schedule/setup"),
    (
        "POST",
        "/staff/slots/01890000-0000-7000-8000-000000000001/block",
    ),
    (
        "POST",
        "/staff/slots/01890000-0000-7000-8000-000000000001/unblock",
    ),
    ("GET", "/bills"),
    (
        "GET",
        "/bills/statements/01890000-0000-7000-8000-000000000001",
    ),
    (
        "GET",
        "/bills/statements/01890000-0000-7000-8000-000000000001/statement.pdf",
    ),
    ("GET", "/bills/pay"),
    ("POST", "/bills/pay"),
    (
        "GET",
        "/bills/payments/01890000-0000-7000-8000-000000000001",
    ),
    (
        "GET",
        "/bills/payments/01890000-0000-7000-8000-000000000001/receipt.pdf",
    ),
    ("POST", "/bills/plans"),
    (
        "POST",
        "/bills/plans/01890000-0000-7000-8000-000000000001/cancel",
    ),
    ("GET", "/staff/billing"),
    ("POST", "/staff/billing/find"),
    ("POST", "/staff/billing/settings"),
    ("POST", "/staff/billing/import"),
    (
        "GET",
        "/staff/billing/patients/01890000-0000-7000-8000-000000000001",
    ),
    (
        "POST",
        "/staff/billing/patients/01890000-0000-7000-8000-000000000001/statements",
    ),
    (
        "POST",
        "/staff/billing/patients/01890000-0000-7000-8000-000000000001/adjustments",
    ),
    (
        "POST",
        "/staff/billing/payments/01890000-0000-7000-8000-000000000001/refund",
    ),
];

/// Every form, signed in or not: each checks its CSRF token through the form extractor.
const FORMS: &[&str] = &[
    "/register",
    "/verify",
    "/verify/resend",
    "/login",
    "/login/code",
    "/forgot",
    "/reset",
    "/staff/setup",
    "/account/email/confirm",
    "/logout",
];

async fn send(b: &mut Browser<'_>, method: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    if method == "GET" {
        b.get(path).await
    } else {
        b.post(path, fields).await
    }
}

#[tokio::test]
async fn every_signed_in_page_sends_a_stranger_to_sign_in_and_drops_a_dead_session() {
    let app = spawn_app(1).await;
    let mut stranger = Browser::new(&app);
    let csrf = csrf_of(&stranger.get("/login").await.html);
    let before = (
        crate::records::audit_entries(&app).await,
        app.emails().len(),
    );
    for (method, path) in SIGNED_IN_ROUTES {
        let page = send(&mut stranger, method, path, &[("csrf", &csrf)]).await;
        assert_eq!(
            (page.status, page.location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/login")),
            "{method} {path}"
        );
    }
    // A session cookie that names no live session: to sign in, and the cookie goes.
    let mut stale = Browser::new(&app);
    stale
        .cookies
        .insert("salus_session".into(), "no-such-session".into());
    for (method, path) in SIGNED_IN_ROUTES {
        stale
            .cookies
            .insert("salus_session".into(), "no-such-session".into());
        let page = send(&mut stale, method, path, &[("csrf", &csrf)]).await;
        assert_eq!(
            (page.status, page.location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/login")),
            "{method} {path}"
        );
        assert!(
            !stale.cookies.contains_key("salus_session"),
            "{method} {path} drops the dead cookie"
        );
    }
    assert_eq!(
        (
            crate::records::audit_entries(&app).await,
            app.emails().len()
        ),
        before,
        "nothing was read or written for strangers"
    );
}

#[tokio::test]
async fn every_form_refuses_a_forged_token_and_does_nothing() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let mut admin = Browser::new(&app);
    staff_signs_in(
        &mut admin,
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let before = (
        crate::records::audit_entries(&app).await,
        app.emails().len(),
    );
    let posts = SIGNED_IN_ROUTES
        .iter()
        .filter(|(m, _)| *m == "POST")
        .map(|(_, p)| *p)
        .chain(FORMS.iter().copied());
    let fields = [
        ("csrf", "forged"),
        ("email", "someone@example.org"),
        ("given_name", "Someone"),
        ("family_name", "Else"),
        ("role", "clinician"),
        ("password", "tulip kettle orbit"),
        ("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("kind", "note"),
        ("title", "Forged"),
        ("text", "Forged"),
    ];
    for path in posts {
        let page = admin.post(path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path}");
        assert!(page.html.contains("This form has expired"), "POST {path}");
        assert!(
            !page.html.contains("tulip kettle orbit"),
            "POST {path}: a password is never shown again"
        );
    }
    assert_eq!(
        (
            crate::records::audit_entries(&app).await,
            app.emails().len()
        ),
        before,
        "no forged form read, wrote or sent anything"
    );
    assert_eq!(
        admin.get("/account").await.status,
        StatusCode::OK,
        "a forged sign-out does not sign out"
    );
    // What was typed into a public form is kept on its page, with a fresh token.
    let login = admin.post("/login", &fields).await;
    assert!(login.html.contains("value=\"someone@example.org\""));
    assert_ne!(csrf_of(&login.html), "forged");
}

#[tokio::test]
async fn a_form_must_arrive_as_a_form() {
    let app = spawn_app(1).await;
    let mut b = Browser::new(&app);
    let csrf = csrf_of(&b.get("/login").await.html);
    let resp = app
        .client
        .post("/login")
        .header("cookie", b.cookie_header())
        .content_type("application/json")
        .body(format!(
            r#"{{"csrf":"{csrf}","email":"a@b.org","password":"x"}}"#
        ))
        .send()
        .await;
    let page = b.finish(resp).await;
    assert_eq!(page.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        page.html
            .contains("This address takes a form sent from its page.")
    );
}

#[tokio::test]
async fn staff_pages_are_for_staff_and_each_role_gets_only_its_own() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    for path in ["/staff", "/staff/charts", "/staff/team"] {
        let page = ann.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.html.contains("This page is for the clinic"), "{path}");
    }
    // Staff get in, and the one access decision says what each role may do there.
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk@example.org", StaffRole::FrontDesk).await;
    assert_eq!(desk.get("/staff").await.status, StatusCode::OK);
    assert_eq!(desk.get("/staff/team").await.status, StatusCode::FORBIDDEN);
    let mut doc = Browser::new(&app);
    staff_signs_in(&mut doc, "doc@example.org", StaffRole::Clinician).await;
    assert_eq!(doc.get("/staff").await.status, StatusCode::FORBIDDEN);
    assert_eq!(doc.get("/staff/team").await.status, StatusCode::FORBIDDEN);
    let mut admin = Browser::new(&app);
    staff_signs_in(
        &mut admin,
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    assert_eq!(admin.get("/staff").await.status, StatusCode::OK);
    assert_eq!(admin.get("/staff/team").await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_page_header_names_who_is_signed_in_and_offers_sign_out() {
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut stranger = Browser::new(&app);
    let start = stranger.get("/").await;
    assert!(start.html.contains("<a href=\"/login\">Sign in</a>"));
    assert!(!start.html.contains("Sign out"));

    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    use salus_domain::account::AccountRepository as _;
    let name = app
        .store
        .find_by_email(&salus_domain::text::Email::parse("ann@example.org").unwrap())
        .await
        .unwrap()
        .unwrap()
        .name
        .full();
    for path in [
        "/",
        "/records",
        "/records/results",
        "/account/security",
        "/no/such/page",
    ] {
        let page = ann.get(path).await;
        assert!(
            page.html
                .contains(&format!("<span class=\"who\">{name}</span>")),
            "{path} names who is signed in"
        );
        assert!(
            page.html.contains("action=\"/logout\""),
            "{path} offers sign out"
        );
        assert!(
            page.html.contains("href=\"/records\""),
            "{path} links the records"
        );
        assert!(!page.html.contains(">Create account<"), "{path}");
    }
    // The header's own form signs out.
    let records = ann.get("/records").await;
    let header_form = records.html.split("<nav class=\"account\"").nth(1).unwrap();
    let out = ann
        .post("/logout", &[("csrf", &csrf_of(header_form))])
        .await;
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));
    assert_eq!(
        ann.get("/records").await.location.as_deref(),
        Some("/login")
    );
}

#[tokio::test]
async fn a_blood_pressure_reads_as_two_numbers_with_each_part_judged_by_its_own_range() {
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    let list = ann.get("/records/results?q=Blood%20pressure").await;
    assert_eq!(list.status, StatusCode::OK);
    let row = list
        .html
        .split("<tr")
        .find(|r| r.contains("Blood pressure panel"))
        .expect("the synthetic chart has blood pressures");
    let reading = row
        .split(" mmHg")
        .next()
        .and_then(|s| s.rsplit('>').next())
        .unwrap_or_default()
        .trim();
    let (systolic, diastolic) = reading.split_once('/').expect("two numbers");
    assert!(
        systolic.parse::<u32>().is_ok() && diastolic.parse::<u32>().is_ok(),
        "whole numbers: {reading}"
    );
    assert!(!list.html.contains("mm[Hg]"), "no unit codes");
    let id = row
        .split("href=\"/records/item/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let page = ann.get(&format!("/records/item/{id}")).await;
    assert!(page.html.contains("<dt>Systolic blood pressure</dt>"));
    assert!(page.html.contains("<dt>Diastolic blood pressure</dt>"));
    assert!(
        page.html.contains("(normal 90 to 120)"),
        "each part with its own range"
    );
    assert_eq!(
        page.html.matches("<polyline").count(),
        2,
        "both parts on one chart"
    );
}

/// The text a person sees on a page: tags (and so attribute values) left out.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn record_pages_speak_in_words_not_codes() {
    use salus_domain::record::RecordKind;
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    let codes: Vec<&str> = RecordKind::ALL
        .iter()
        .flat_map(|k| k.status_codes())
        .filter(|c| c.contains('_'))
        .chain([
            "vital_signs",
            "mm[Hg]",
            "kg/m2",
            "discharge_summary",
            "progress_note",
        ])
        .collect();
    let mut pages = vec!["/records".to_owned()];
    for list in [
        "visits",
        "results",
        "medications",
        "problems",
        "allergies",
        "notes",
    ] {
        pages.push(format!("/records/{list}"));
        let page = ann.get(&format!("/records/{list}")).await;
        if let Some(id) = page
            .html
            .split("href=\"/records/item/")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            pages.push(format!("/records/item/{id}"));
        }
    }
    for path in &pages {
        let page = ann.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let text = visible_text(&page.html);
        for code in &codes {
            assert!(!text.contains(code), "{path} shows the code {code}");
        }
    }
    let visits = visible_text(&ann.get("/records/visits").await.html);
    assert!(
        visits.contains("Completed"),
        "a finished visit reads Completed"
    );
    let results = ann.get("/records/results?all=1").await;
    assert!(
        results.html.contains(">Final</option>") || results.html.contains(">Final<"),
        "statuses in words, in the filter too"
    );
}

#[tokio::test]
async fn an_unconnected_patient_sees_where_things_stand_and_the_desk_connects_them_through_the_pages()
 {
    use salus_domain::account::StaffRole;
    let app = spawn_app(2).await;
    let chart = crate::identity::chart(&app, "SYN0000001").await;
    let dob = chart.birth_date.to_string();

    // The clinic's page leads to a registration form with the clinic chosen.
    let mut pat = Browser::new(&app);
    let clinic = pat.get("/clinics/demo-clinic").await;
    assert_eq!(clinic.status, StatusCode::OK);
    assert!(
        clinic
            .html
            .contains("href=\"/register?clinic=demo-clinic\""),
        "{}",
        clinic.html
    );
    assert!(
        clinic.html.contains("href=\"tel:"),
        "the clinic's phone number"
    );
    assert_eq!(
        pat.get("/clinics/nowhere").await.status,
        StatusCode::NOT_FOUND
    );
    let form = pat.get("/register?clinic=demo-clinic").await;
    assert!(
        form.html
            .contains("<option value=\"demo-clinic\" selected>"),
        "{}",
        form.html
    );
    // Registered under a name the chart does not have (a new family name).
    let done = pat
        .post(
            "/register",
            &[
                ("csrf", &csrf_of(&form.html)),
                ("clinic", "demo-clinic"),
                ("given_name", chart.name.given()),
                ("family_name", "Newname"),
                ("birth_date", &dob),
                ("email", "pat@example.org"),
                ("password", "tulip kettle orbit"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/register/check-email"));
    let token = crate::auth::token_from_outbox(&app);
    crate::auth::post(
        &app,
        "/api/v1/auth/verify",
        &serde_json::json!({"token": token}),
    )
    .await;
    patient_signs_in(&mut pat, "pat@example.org").await;
    let home = pat.get("/account").await;
    assert!(
        home.html.contains("Waiting for Salus Demo Clinic"),
        "{}",
        home.html
    );
    assert!(
        home.html.contains("href=\"tel:"),
        "whom to call: {}",
        home.html
    );
    assert!(
        home.html.contains("href=\"/account/activate\""),
        "a code can be entered any time"
    );

    // The desk sees them although no chart matches exactly, searches, and connects them.
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk@example.org", StaffRole::FrontDesk).await;
    let home = desk.get("/account").await;
    assert!(home.html.contains("1 person is waiting"), "{}", home.html);
    let page = desk.get("/staff").await;
    assert!(page.html.contains("pat@example.org"));
    assert!(
        page.html
            .contains("No record has exactly this name and date of birth.")
    );
    let account_id = page
        .html
        .split("name=\"for_account\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let refused = desk
        .post(
            "/staff/search",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("for_account", &account_id),
                ("name", "x"),
                ("birth_date", &dob),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.html.contains("href=\"#name\"") && refused.html.contains("id=\"name-error\""),
        "the error is beside the field and summarised with a link: {}",
        refused.html
    );
    assert!(
        refused.html.contains(&format!("value=\"{dob}\"")),
        "what was typed is kept"
    );
    let found = desk
        .post(
            "/staff/search",
            &[
                ("csrf", &csrf_of(&refused.html)),
                ("for_account", &account_id),
                ("name", chart.name.given()),
                ("birth_date", &dob),
            ],
        )
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.html.contains("record number SYN0000001"),
        "{}",
        found.html
    );
    let connected = desk
        .post(
            &format!("/staff/identity/{account_id}"),
            &[
                ("csrf", &csrf_of(&found.html)),
                ("decision", "confirm"),
                ("patient_id", &chart.id.to_string()),
            ],
        )
        .await;
    assert!(
        connected
            .html
            .contains("The account is now connected to the record."),
        "{}",
        connected.html
    );

    // The patient's home now shows what is in their record.
    let home = pat.get("/account").await;
    assert!(
        home.html.contains("What&#x27;s new") || home.html.contains("What's new"),
        "{}",
        home.html
    );
    assert!(home.html.contains("href=\"/records\""));
}

#[tokio::test]
async fn clinicians_find_a_chart_by_name_and_birth_date_on_the_pages() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let chart = crate::identity::chart(&app, "SYN0000000").await;
    let mut doc = Browser::new(&app);
    staff_signs_in(&mut doc, "doc@example.org", StaffRole::Clinician).await;
    let form = doc.get("/staff/charts").await;
    let found = doc
        .post(
            "/staff/charts",
            &[
                ("csrf", &csrf_of(&form.html)),
                ("name", chart.name.family()),
                ("birth_date", &chart.birth_date.to_string()),
            ],
        )
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found
            .html
            .contains(&format!("href=\"/staff/charts/{}\"", chart.id)),
        "{}",
        found.html
    );
    let bad = doc
        .post(
            "/staff/charts",
            &[
                ("csrf", &csrf_of(&found.html)),
                ("name", chart.name.family()),
                ("birth_date", "31/12/1999"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("id=\"birth_date-error\""), "{}", bad.html);
}

#[tokio::test]
async fn results_show_the_latest_of_each_test_by_report_and_mark_what_is_new_since_the_last_sign_in()
 {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let (_, chart) = crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    // (The account signed in once through the API already.)
    let first = ann.get("/account").await;
    assert!(
        first.html.contains("Nothing new since you last signed in."),
        "{}",
        first.html
    );

    let latest = ann.get("/records/results").await;
    assert_eq!(latest.status, StatusCode::OK);
    let text = visible_text(&latest.html);
    assert!(
        text.contains("Lab tests") && text.contains("Vital signs"),
        "{text}"
    );
    let labs = latest.html.split("id=\"vitals-h\"").next().unwrap();
    assert!(
        labs.contains("<section class=\"card group\""),
        "labs come grouped by report"
    );
    // Each test once: the number of rows is the number of different test names.
    let names: Vec<&str> = latest
        .html
        .split("<td data-label=\"What\"><a href=\"/records/item/")
        .skip(1)
        .map(|s| s.split('>').nth(1).unwrap().split('<').next().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert!(!names.is_empty());
    assert_eq!(names.len(), distinct.len(), "one row per test: {names:?}");
    assert!(
        !latest.html.contains("class=\"new\""),
        "nothing came in since the last sign-in"
    );
    let every = ann.get("/records/results?all=1").await;
    assert!(
        every
            .html
            .contains("<form method=\"get\" action=\"/records/results\" class=\"filters\">")
    );

    // A result filed after this sign-in is new at the next one, on the home page and in
    // the results.
    let doc =
        crate::identity::staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    app.advance_minutes(5);
    let (status, _) = crate::identity::call(
        &app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        &doc,
        Some(
            serde_json::json!({"kind": "lab_result", "title": "Hemoglobin A1c", "loinc": "4548-4",
            "value": 5.1, "unit": "%", "reference_low": 4.0, "reference_high": 5.6}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    app.advance_minutes(5);
    let mut again = Browser::new(&app);
    patient_signs_in(&mut again, "ann@example.org").await;
    let home = again.get("/account").await;
    assert!(home.html.contains("You last signed in on"), "{}", home.html);
    assert!(
        home.html
            .contains("href=\"/records/results\">1 test result new</a>"),
        "{}",
        home.html
    );
    let latest = again.get("/records/results").await;
    let new_rows = latest
        .html
        .matches("<span class=\"new\">New</span>")
        .count();
    assert_eq!(new_rows, 1, "only the new result is marked");
    assert!(latest.html.contains("Hemoglobin A1c"));
}

#[tokio::test]
async fn a_patient_invites_a_proxy_on_the_sharing_page_who_accepts_from_the_link_then_loses_access()
{
    let app = spawn_app(1).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    crate::identity::patient_of(
        &app,
        None,
        "Cara",
        "Carer",
        "1990-02-03",
        "carer@example.org",
    )
    .await;
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    let page = ann.get("/account/sharing").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("href=\"/account/sharing\""),
        "in the menu"
    );
    assert!(page.html.contains("No one but you and your care team"));

    let refused = ann
        .post(
            "/account/sharing",
            &[
                ("csrf", &csrf_of(&page.html)),
                ("email", "carer@example.org"),
                ("relationship", "my sister"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains("<a href=\"#kinds\">Choose at least one kind of record.</a>"),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("value=\"my sister\""),
        "what was typed is kept"
    );
    let before = app.emails().len();
    let sent = ann
        .post(
            "/account/sharing",
            &[
                ("csrf", &csrf_of(&refused.html)),
                ("email", "carer@example.org"),
                ("relationship", "my sister"),
                ("kind", "observation"),
                ("kind", "medication"),
            ],
        )
        .await;
    assert_eq!(
        sent.location.as_deref(),
        Some("/account/sharing?done=invited")
    );
    let listed = ann.get("/account/sharing?done=invited").await;
    assert!(listed.html.contains("carer@example.org (my sister)"));
    assert!(listed.html.contains("Invited, not accepted yet"));
    assert!(listed.html.contains("Test results, Medications"));

    let mail = app.emails()[before..].join("\n");
    let link = mail
        .lines()
        .find(|l| l.contains("/grants/accept?token="))
        .unwrap()
        .trim()
        .to_owned();
    let path = format!(
        "/{}",
        link.split_once("://").unwrap().1.split_once('/').unwrap().1
    );
    let mut carer = Browser::new(&app);
    patient_signs_in(&mut carer, "carer@example.org").await;
    let form = carer.open_link(&path).await;
    assert!(form.html.contains("Accept the invitation"));
    let token = path.split("token=").nth(1).unwrap();
    let done = carer
        .post(
            "/grants/accept",
            &[("csrf", &csrf_of(&form.html)), ("token", token)],
        )
        .await;
    assert!(done.html.contains("Invitation accepted"), "{}", done.html);

    // The carer has no record of their own; the home page and the menu lead to Ann's.
    let home = carer.get("/account").await;
    assert!(
        home.html.contains("Records shared with you"),
        "{}",
        home.html
    );
    assert!(home.html.contains("href=\"/account/acting-for\""));
    let shared = carer.get("/account/acting-for").await;
    assert_eq!(shared.status, StatusCode::OK);
    let name = between(&shared.html, "<h3>", "</h3>");
    let grant = between(&shared.html, "name=\"grant\" value=\"", "\"");
    assert!(
        shared
            .html
            .contains("You may see: Test results, Medications.")
    );
    assert!(
        shared.html.contains("Choose whose record to open."),
        "no record of their own is open: {}",
        shared.html
    );
    let forged = carer
        .post(
            "/account/acting-for",
            &[
                ("csrf", &csrf_of(&shared.html)),
                ("grant", "0190a5f0-0000-7000-8000-000000000000"),
            ],
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "not a grant of theirs"
    );
    let opened = carer
        .post(
            "/account/acting-for",
            &[("csrf", &csrf_of(&shared.html)), ("grant", &grant)],
        )
        .await;
    assert_eq!(opened.location.as_deref(), Some("/records"));
    let results = carer.get("/records/results?all=1").await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.html);
    assert!(
        results.html.contains(&format!(
            " · {name}'s record · Salus patient portal</title>"
        )),
        "the title says whose record: {}",
        results.html
    );
    assert!(results.html.contains(&format!(
        "You are looking at <strong>{name}'s record</strong>"
    )));
    assert!(
        results.html.contains("href=\"/records/medications\""),
        "the menu has the record's pages"
    );
    assert!(!results.html.contains("href=\"/account/sharing\""));
    assert!(
        ann.get("/records/visits").await.html.contains("<td"),
        "Ann has visits"
    );
    let visits = carer.get("/records/visits").await;
    assert!(
        !visits.html.contains("<td"),
        "visits were not shared: {}",
        visits.html
    );
    let back = carer.get("/account/acting-for").await;
    assert!(
        back.html.contains("Looked at the list of test results"),
        "the carer's own history: {}",
        back.html
    );

    let active = ann.get("/account/sharing").await;
    assert!(
        active.html.contains("<td data-label=\"State\">Active</td>"),
        "{}",
        active.html
    );
    let id = active
        .html
        .split("action=\"/account/sharing/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Narrowed on its own page, which starts from what the grant allows now.
    let edit = ann.get(&format!("/account/sharing/{id}")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(
        edit.html.contains("value=\"observation\" checked"),
        "{}",
        edit.html
    );
    assert!(edit.html.contains("value=\"medication\" checked"));
    let refused = ann
        .post(
            &format!("/account/sharing/{id}"),
            &[("csrf", &csrf_of(&edit.html))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("id=\"kinds-error\""));
    let changed = ann
        .post(
            &format!("/account/sharing/{id}"),
            &[("csrf", &csrf_of(&edit.html)), ("kind", "medication")],
        )
        .await;
    assert_eq!(
        changed.location.as_deref(),
        Some("/account/sharing?done=changed")
    );
    let active = ann.get("/account/sharing?done=changed").await;
    assert!(
        active
            .html
            .contains("<td data-label=\"May see\">Medications</td>"),
        "{}",
        active.html
    );
    let ended = ann
        .post(
            &format!("/account/sharing/{id}/revoke"),
            &[("csrf", &csrf_of(&active.html))],
        )
        .await;
    assert_eq!(
        ended.location.as_deref(),
        Some("/account/sharing?done=revoked")
    );
    let after = ann.get("/account/sharing?done=revoked").await;
    assert!(after.html.contains("<td data-label=\"State\">Revoked</td>"));
    assert!(!after.html.contains("End access"), "nothing left to end");

    // The carer's very next page is refused, and the choice is forgotten.
    let refused = carer.get("/records/medications").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("Access ended"), "{}", refused.html);
    let home = carer.get("/account").await;
    assert!(!home.html.contains("Records shared with you"));
    let history = ann.get("/records/history").await;
    assert!(
        history.html.contains("(your proxy)") && history.html.contains("Refused"),
        "Ann sees the carer's look and the refused attempt: {}",
        history.html
    );
}

/// The text between the first `start` and the next `end` after it.
fn between(html: &str, start: &str, end: &str) -> String {
    html.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inside, _)| inside.to_owned())
        .unwrap_or_else(|| panic!("no {start}…{end} in {html}"))
}

#[tokio::test]
async fn a_share_link_shows_and_downloads_only_what_it_covers_until_revoked_and_a_passcode_locks_after_ten_wrong_tries()
 {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let (ann_api, chart) =
        crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc =
        crate::identity::staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let (status, filed) = crate::identity::call(
        &app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        &doc,
        Some(
            serde_json::json!({"kind": "lab_result", "title": "Chlamydia trachomatis DNA",
            "value": 0, "unit": "", "sensitive": ["sexual_reproductive_health"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");

    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    let sharing = ann.get("/account/sharing").await;
    let refused = ann
        .post(
            "/account/sharing/links",
            &[("csrf", &csrf_of(&sharing.html)), ("hours", "24")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("id=\"link_kinds-error\""));
    let made = ann
        .post(
            "/account/sharing/links",
            &[
                ("csrf", &csrf_of(&sharing.html)),
                ("link_kind", "observation"),
                ("hours", "24"),
                ("recipient", "Dr Jones"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    let url = between(&made.html, "class=\"copy\" readonly value=\"", "\"");
    let token = url.split("/share/").nth(1).unwrap().to_owned();
    assert!(token.len() >= 22, "at least 128 random bits");
    crate::logcheck::remember(&token);
    let path = format!("/share/{token}");

    // Someone without an account opens it: the results, nothing else, no way into the portal.
    let mut nurse = Browser::new(&app);
    let shown = nurse.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    assert!(shown.html.contains("Records of "), "{}", shown.html);
    assert!(shown.html.contains("Dr Jones"));
    assert!(shown.html.contains("<h2 id=\"kind-1\">Test results</h2>"));
    assert!(!shown.html.contains("Medications"), "only what it covers");
    assert!(!shown.html.contains("Chlamydia"), "never a labelled record");
    assert!(
        shown
            .html
            .split("<a ")
            .skip(1)
            .all(|a| a.starts_with("class=\"skip\" href=\"#main\"")),
        "nothing links back into the portal (only the skip link, within the page)"
    );
    assert!(!shown.html.contains("action=\"/account") && !shown.html.contains("/logout"));
    assert_eq!(shown.headers["cache-control"], "no-store");
    assert_eq!(shown.headers["referrer-policy"], "no-referrer");

    let download = |what: &'static str| {
        let app = &app;
        let csrf = csrf_of(&shown.html);
        let cookie = nurse.cookie_header();
        let path = format!("{path}/{what}");
        async move {
            app.client
                .post(path)
                .header("cookie", cookie)
                .content_type("application/x-www-form-urlencoded")
                .body(format!("csrf={}&passcode=", url_escape(&csrf)))
                .send()
                .await
        }
    };
    let fhir = download("fhir").await;
    fhir.assert_status_is_ok();
    assert_eq!(fhir.0.headers()["cache-control"], "no-store");
    let bundle: serde_json::Value =
        serde_json::from_str(&fhir.0.into_body().into_string().await.unwrap()).unwrap();
    let types: std::collections::BTreeSet<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert!(types.contains("Observation"), "{types:?}");
    assert!(
        types.iter().all(|t| ["Patient", "Observation"].contains(t)),
        "exactly what the link covers (and no grants): {types:?}"
    );
    assert!(!bundle.to_string().contains("Chlamydia"));
    let pdf = download("pdf").await;
    pdf.assert_status_is_ok();
    assert_eq!(pdf.0.headers()["content-type"], "application/pdf");

    // Ann sees each open and download, naming whom the link was for; then she ends it.
    let history = ann.get("/records/history").await;
    assert!(
        history
            .html
            .contains("Someone with your share link for Dr Jones"),
        "{}",
        history.html
    );
    assert!(history.html.contains("Downloaded your records (FHIR file)"));
    let listed = ann.get("/account/sharing").await;
    assert!(listed.html.contains("Share link for Dr Jones"));
    let id = between(&listed.html, "action=\"/account/sharing/", "/revoke\"");
    let ended = ann
        .post(
            &format!("/account/sharing/{id}/revoke"),
            &[("csrf", &csrf_of(&listed.html))],
        )
        .await;
    assert_eq!(
        ended.location.as_deref(),
        Some("/account/sharing?done=revoked")
    );
    let gone = nurse.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.html.contains("does not work any more"));

    // With a passcode: wrong ones are counted, then throttled, and the tenth locks the link.
    let (status, made) = crate::identity::call(
        &app,
        "POST",
        "/api/v1/share-links",
        &ann_api,
        Some(
            serde_json::json!({"kinds": ["observation"], "passcode": "river stone 42",
            "recipient": "School nurse"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["url"]
        .as_str()
        .unwrap()
        .split("/share/")
        .nth(1)
        .unwrap()
        .to_owned();
    crate::logcheck::remember(&token);
    let path = format!("/share/{token}");
    let form = nurse.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("Enter the passcode"));
    assert!(
        !form.html.contains("Records of "),
        "nothing before the passcode"
    );
    let csrf = csrf_of(&form.html);
    let right = nurse
        .post(&path, &[("csrf", &csrf), ("passcode", "river stone 42")])
        .await;
    assert_eq!(right.status, StatusCode::OK);
    assert!(right.html.contains("School nurse"));
    for left in [9, 8, 7] {
        let wrong = nurse
            .post(&path, &[("csrf", &csrf), ("passcode", "guess")])
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(
            wrong
                .html
                .contains(&format!("After {left} more wrong tries")),
            "{}",
            wrong.html
        );
    }
    let waiting = nurse
        .post(&path, &[("csrf", &csrf), ("passcode", "river stone 42")])
        .await;
    assert_eq!(
        waiting.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right one waits"
    );
    for _ in 0..7 {
        app.advance_minutes(60);
        let wrong = nurse
            .post(&path, &[("csrf", &csrf), ("passcode", "guess")])
            .await;
        assert!(wrong.status == StatusCode::UNAUTHORIZED || wrong.status == StatusCode::GONE);
    }
    let locked = nurse
        .post(&path, &[("csrf", &csrf), ("passcode", "river stone 42")])
        .await;
    assert_eq!(locked.status, StatusCode::GONE, "locked for good");
    assert!(
        locked
            .html
            .contains("locked after too many wrong passcodes")
    );
    // Ann's API session idled out meanwhile: she signs in again.
    let (_, again) = crate::auth::post(
        &app,
        "/api/v1/auth/login",
        &serde_json::json!({"email": "ann@example.org", "password": crate::auth::PASSWORD}),
    )
    .await;
    let ann_api = again["token"].as_str().unwrap().to_owned();
    let (_, grants) = crate::identity::call(&app, "GET", "/api/v1/grants", &ann_api, None).await;
    let nurse_link = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["relationship"] == "School nurse")
        .unwrap();
    assert_eq!(nurse_link["status"], "locked", "{grants}");

    // A link that expired opens nothing.
    let (_, short) = crate::identity::call(
        &app,
        "POST",
        "/api/v1/share-links",
        &ann_api,
        Some(serde_json::json!({"kinds": ["observation"], "hours": 1})),
    )
    .await;
    let token = short["url"]
        .as_str()
        .unwrap()
        .split("/share/")
        .nth(1)
        .unwrap()
        .to_owned();
    crate::logcheck::remember(&token);
    app.advance_minutes(61);
    assert_eq!(
        nurse.get(&format!("/share/{token}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_front_desk_records_and_ends_a_guardian_and_records_a_proxy_on_a_charts_page() {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let now = salus_domain::Clock::now(app.clock.as_ref()).date_naive();
    let teen =
        crate::guardians::chart_born(&app, "TEEN00002", now - chrono::Duration::days(15 * 366))
            .await;
    crate::identity::patient_of(
        &app,
        None,
        "Pat",
        "Parent",
        "1980-01-01",
        "parent@example.org",
    )
    .await;
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk@example.org", StaffRole::FrontDesk).await;
    let path = format!("/staff/patients/{teen}/access");
    let adult =
        crate::guardians::chart_born(&app, "ADULT0002", now - chrono::Duration::days(40 * 366))
            .await;
    let grown = desk.get(&format!("/staff/patients/{adult}/access")).await;
    assert!(grown.html.contains("is 18 or older"), "{}", grown.html);
    assert!(!grown.html.contains("Record the guardian"));
    let page = desk.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Tess Young, born"));
    assert!(page.html.contains("No guardian is recorded"));

    let refused = desk
        .post(
            &format!("/staff/patients/{teen}/guardians"),
            &[
                ("csrf", &csrf_of(&page.html)),
                ("email", "nobody@example.org"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.html.contains("id=\"guardian_email-error\""),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("value=\"nobody@example.org\""),
        "kept as typed"
    );
    let done = desk
        .post(
            &format!("/staff/patients/{teen}/guardians"),
            &[
                ("csrf", &csrf_of(&page.html)),
                ("email", "parent@example.org"),
                ("relationship", "mother"),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some(format!("{path}?done=guardian").as_str())
    );
    let listed = desk.get(&format!("{path}?done=guardian")).await;
    assert!(listed.html.contains("parent@example.org (mother)"));
    assert!(listed.html.contains("<td data-label=\"State\">Active</td>"));
    let id = between(&listed.html, "/guardians/", "/end\"");
    let ended = desk
        .post(
            &format!("/staff/patients/{teen}/guardians/{id}/end"),
            &[("csrf", &csrf_of(&listed.html))],
        )
        .await;
    assert_eq!(
        ended.location.as_deref(),
        Some(format!("{path}?done=ended").as_str())
    );
    let after = desk.get(&path).await;
    assert!(after.html.contains("Ended by the clinic"), "{}", after.html);

    let proxy = desk
        .post(
            &format!("/staff/patients/{teen}/proxies"),
            &[
                ("csrf", &csrf_of(&after.html)),
                ("email", "aunt@example.org"),
                ("kind", "immunization"),
            ],
        )
        .await;
    assert_eq!(
        proxy.location.as_deref(),
        Some(format!("{path}?done=proxy").as_str())
    );
    assert!(app.emails().iter().any(|m| m.contains("aunt@example.org")));

    // A clinician has no such page; the administrator sets the guardian policy.
    let mut doc = Browser::new(&app);
    staff_signs_in(&mut doc, "doc@example.org", StaffRole::Clinician).await;
    assert_eq!(doc.get(&path).await.status, StatusCode::FORBIDDEN);
    let mut admin = Browser::new(&app);
    staff_signs_in(
        &mut admin,
        "admin@example.org",
        StaffRole::OrganizationAdmin,
    )
    .await;
    let team = admin.get("/staff/team").await;
    assert!(team.html.contains("Guardians of 12–17-year-olds"));
    assert!(
        team.html.contains("value=\"hiv\" checked"),
        "the default hides HIV"
    );
    let saved = admin
        .post(
            "/staff/guardian-policy",
            &[("csrf", &csrf_of(&team.html)), ("hidden", "mental_health")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK);
    assert!(saved.html.contains("Guardian policy saved"));
    assert!(saved.html.contains("value=\"mental_health\" checked"));
    assert!(!saved.html.contains("value=\"hiv\" checked"));
}

/// A chart imported with one visit (`Encounter`) from `start` for half an hour.
async fn chart_with_a_visit(app: &TestApp, mrn: &str, start: chrono::DateTime<chrono::Utc>) {
    use serde_json::json;
    let patient = format!("urn:uuid:{}", uuid::Uuid::now_v7());
    let practitioner = format!("urn:uuid:{}", uuid::Uuid::now_v7());
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": patient, "resource": {"resourceType": "Patient", "id": mrn.to_lowercase(),
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}],
            "name": [{"use": "official", "given": ["Rosa"], "family": "Diaz"}],
            "gender": "female", "birthDate": "1961-03-14"}},
        {"fullUrl": format!("urn:uuid:{}", uuid::Uuid::now_v7()), "resource": {
            "resourceType": "Encounter", "id": uuid::Uuid::now_v7().to_string(), "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Follow-up"}],
            "subject": {"reference": patient},
            "participant": [{"individual": {"reference": practitioner, "display": "Dr. Ana Silva"}}],
            "period": {"start": at(start), "end": at(start + chrono::Duration::minutes(30))}}},
        {"fullUrl": practitioner, "resource": {"resourceType": "Practitioner", "id": "ana-silva",
            "name": [{"given": ["Ana"], "family": "Silva", "prefix": ["Dr."]}]}},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("visit.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    salus_server::importer::import_file(&app.store, &org, &path, false, app.clock.clone())
        .await
        .unwrap();
}

/// The `href`s in `html` that start with `prefix`, in order.
fn links_starting(html: &str, prefix: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with(prefix))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn a_patient_books_moves_and_cancels_through_the_pages_and_the_visit_links_to_its_appointment()
 {
    use salus_domain::account::StaffRole;
    let app = spawn_app(1).await;
    let desk_api = crate::identity::staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let clinic = crate::scheduling::set_up(&app, &desk_api, 1).await;
    // The first open time three days ahead is 09:00 in New York; the visit record of that
    // day begins ten minutes late.
    let day =
        (salus_domain::Clock::now(app.clock.as_ref()) + chrono::Duration::days(3)).date_naive();
    let zone: salus_domain::chrono_tz::Tz = "America/New_York".parse().unwrap();
    let nine = chrono::TimeZone::from_local_datetime(&zone, &day.and_hms_opt(9, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    chart_with_a_visit(&app, "VISIT0001", nine + chrono::Duration::minutes(10)).await;
    let (rosa_api, _) = crate::records::linked_patient(&app, "VISIT0001", "rosa@example.org").await;
    // The visit's clinician is in the practitioner directory: a bookable provider links to
    // them (named as there when no name is given); a clinician not in it is refused.
    let (_, setup) =
        crate::identity::call(&app, "GET", "/api/v1/staff/schedule/setup", &desk_api, None).await;
    let entry = setup["directory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"].as_str().is_some_and(|n| n.contains("Silva")))
        .unwrap_or_else(|| panic!("{setup}"))
        .clone();
    let (status, linked) = crate::identity::call(
        &app,
        "POST",
        "/api/v1/staff/schedule/providers",
        &desk_api,
        Some(serde_json::json!({"practitioner_id": entry["practitioner_id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    let provider = linked["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["practitioner_id"] == entry["practitioner_id"])
        .unwrap();
    assert_eq!(provider["name"], entry["name"]);
    let (status, refused) = crate::identity::call(
        &app,
        "POST",
        "/api/v1/staff/schedule/providers",
        &desk_api,
        Some(serde_json::json!({"practitioner_id": uuid::Uuid::now_v7().to_string(), "name": "Dr Who"})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_practitioner"))
    );
    let mut rosa = Browser::new(&app);
    patient_signs_in(&mut rosa, "rosa@example.org").await;

    // Find the times of the day, choose the first, book it with a reason.
    let found = rosa
        .get(&format!(
            "/appointments/new?visit_type={}&from={day}",
            clinic.kind
        ))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    let times = links_starting(&found.html, "/appointments/new/");
    assert!(times.len() >= 2, "{}", found.html);
    let form = rosa.get(&times[0]).await;
    assert!(form.html.contains("Follow-up visit"), "{}", form.html);
    let too_long = "x".repeat(501);
    let refused = rosa
        .post(
            &times[0],
            &[("csrf", &csrf_of(&form.html)), ("reason", &too_long)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("id=\"reason-error\""));
    let booked = rosa
        .post(
            &times[0],
            &[
                ("csrf", &csrf_of(&form.html)),
                ("reason", "Blood pressure check"),
            ],
        )
        .await;
    let to = booked.location.clone().unwrap();
    assert!(to.ends_with("?done=booked"), "{to}");
    let appointment = to.split('?').next().unwrap().to_owned();
    let page = rosa.get(&to).await;
    assert!(page.html.contains("09:00"), "{}", page.html);
    assert!(page.html.contains("Your medication list"));
    assert!(page.html.contains(&format!("{appointment}/calendar.ics")));

    // The home page lists it; the visit record of that day links to it.
    let home = rosa.get("/account").await;
    assert!(home.html.contains("Your visits") && home.html.contains(&appointment));
    let (_, visits) = crate::identity::call(
        &app,
        "GET",
        "/api/v1/records?kind=encounter",
        &rosa_api,
        None,
    )
    .await;
    let visit = visits["records"][0]["id"].as_str().unwrap().to_owned();
    let record = rosa.get(&format!("/records/item/{visit}")).await;
    assert!(
        record.html.contains(&format!("href=\"{appointment}\"")),
        "the visit links to its appointment"
    );

    // The calendar file.
    let ics = rosa.get(&format!("{appointment}/calendar.ics")).await;
    assert_eq!(
        ics.headers.get("content-type").unwrap(),
        "text/calendar; charset=utf-8"
    );
    assert!(ics.html.contains("TZID=America/New_York"));

    // Move to the next time of the list.
    let move_page = rosa.get(&format!("{appointment}/move?from={day}")).await;
    let slots: Vec<&str> = move_page
        .html
        .split("name=\"slot\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let moved = rosa
        .post(
            &format!("{appointment}/move"),
            &[("csrf", &csrf_of(&move_page.html)), ("slot", slots[0])],
        )
        .await;
    assert_eq!(
        moved.location.as_deref(),
        Some(format!("{appointment}?done=moved").as_str())
    );
    assert!(rosa.get(&appointment).await.html.contains("09:20"));

    // The waitlist, on and off.
    let page = rosa.get(&appointment).await;
    let waiting = rosa
        .post(
            &format!("{appointment}/waitlist"),
            &[("csrf", &csrf_of(&page.html))],
        )
        .await;
    assert_eq!(
        waiting.location.as_deref(),
        Some(format!("{appointment}?done=waiting").as_str())
    );
    let page = rosa.get(&appointment).await;
    assert!(page.html.contains("Stop telling me"));
    rosa.post(
        &format!("{appointment}/waitlist/leave"),
        &[("csrf", &csrf_of(&page.html))],
    )
    .await;
    assert!(
        rosa.get(&appointment)
            .await
            .html
            .contains("Tell me of earlier times")
    );

    // Cancelled from its page.
    let page = rosa.get(&appointment).await;
    let cancelled = rosa
        .post(
            &format!("{appointment}/cancel"),
            &[("csrf", &csrf_of(&page.html))],
        )
        .await;
    assert_eq!(
        cancelled.location.as_deref(),
        Some(format!("{appointment}?done=cancelled").as_str())
    );
    assert!(rosa.get(&appointment).await.html.contains("Cancelled:"));

    // The front desk: a set-up field refused beside the field, what was typed kept; then
    // books for Rosa by her record number and blocks a time, from the day's page.
    let mut desk = Browser::new(&app);
    staff_signs_in(&mut desk, "desk2@example.org", StaffRole::FrontDesk).await;
    let setup = desk.get("/staff/schedule/setup").await;
    assert_eq!(setup.status, StatusCode::OK);
    let bad = desk
        .post(
            "/staff/schedule/setup",
            &[
                ("csrf", &csrf_of(&setup.html)),
                ("part", "location"),
                ("name", "Annex"),
                ("address", "2 Main Street"),
                ("time_zone", "Mars/Olympus"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("href=\"#loc-time_zone\""), "{}", bad.html);
    assert!(bad.html.contains("value=\"Annex\""));
    let schedule = desk.get(&format!("/staff/schedule?date={day}")).await;
    let open = links_starting(&schedule.html, "/appointments/new/");
    let form = desk.get(&open[0]).await;
    assert!(form.html.contains("id=\"mrn\""));
    let unknown = desk
        .post(
            &open[0],
            &[
                ("csrf", &csrf_of(&form.html)),
                ("mrn", "NOSUCH1"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let done = desk
        .post(
            &open[0],
            &[
                ("csrf", &csrf_of(&form.html)),
                ("mrn", "VISIT0001"),
                ("reason", "Called in"),
            ],
        )
        .await;
    let back = done.location.unwrap();
    assert!(back.ends_with("&done=booked"), "{back}");
    let schedule = desk.get(&back).await;
    assert!(schedule.html.contains("Rosa Diaz") && schedule.html.contains("Called in"));
    let blocks: Vec<String> = schedule
        .html
        .split("action=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|a| a.ends_with("/block"))
        .map(str::to_owned)
        .collect();
    let blocked = desk
        .post(
            &blocks[0],
            &[
                ("csrf", &csrf_of(&schedule.html)),
                ("date", &day.to_string()),
            ],
        )
        .await;
    assert_eq!(
        blocked.location.as_deref(),
        Some(format!("/staff/schedule?date={day}&done=blocked").as_str())
    );
    assert!(
        desk.get(&format!("/staff/schedule?date={day}"))
            .await
            .html
            .contains("1 blocked")
    );
}

/// The value of the form field `name` in a page (the first one).
fn field_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn bills_pages_pay_once_per_form_and_billing_staff_post_import_adjust_and_refund() {
    use salus_domain::account::StaffRole;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.log");
    let ledger_path = ledger.display().to_string();
    let app = crate::spawn_app_with(2, |c| c.sandbox_ledger = ledger_path).await;
    crate::records::linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let mut clerk = Browser::new(&app);
    staff_signs_in(&mut clerk, "billing@example.org", StaffRole::Billing).await;
    let home = clerk.get("/staff/billing").await;
    assert_eq!(home.status, StatusCode::OK);
    let csrf = csrf_of(&home.html);
    let unknown = clerk
        .post("/staff/billing/find", &[("csrf", &csrf), ("mrn", "NOBODY")])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .html
            .contains("No patient of your organisation has this record number.")
    );
    let found = clerk
        .post(
            "/staff/billing/find",
            &[("csrf", &csrf), ("mrn", "SYN0000000")],
        )
        .await;
    let account = found.location.clone().unwrap();
    assert!(account.starts_with("/staff/billing/patients/"), "{account}");
    assert!(!account.contains("SYN"), "no record number in the address");
    let page = clerk.get(&account).await;
    let csrf = csrf_of(&page.html);
    let line = |charge: &'static str| {
        vec![
            ("date", "2026-11-02"),
            ("description", "Office visit"),
            ("charge", charge),
            ("insurance", "150.00"),
            ("adjusted", "20.00"),
            ("share", "30.00"),
        ]
    };
    let statement = |charge: &'static str| {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("number", "WEB-1"),
            ("issued", "2026-11-20"),
            ("due", "2026-12-20"),
        ];
        f.extend(line(charge));
        f.extend([
            ("date", "2026-11-02"),
            ("description", "Lipid panel"),
            ("charge", "45.10"),
            ("insurance", "0"),
            ("adjusted", "0"),
            ("share", "45.10"),
        ]);
        f
    };
    let refused = clerk
        .post(&format!("{account}/statements"), &statement("201.00"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains("Line 1: the charge is not insurance paid")
    );
    assert!(
        refused.html.contains("value=\"Lipid panel\""),
        "what was typed stays"
    );
    let posted = clerk
        .post(&format!("{account}/statements"), &statement("200.00"))
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);

    // The patient pays through the card form; a double click pays once.
    let mut ann = Browser::new(&app);
    patient_signs_in(&mut ann, "ann@example.org").await;
    let bills = ann.get("/bills").await;
    assert!(bills.html.contains("$75.10"));
    let pay = ann.get("/bills/pay").await;
    assert!(
        pay.html
            .contains("href=\"/sandbox/card?return=/bills/pay\"")
    );
    let card = ann.get("/sandbox/card?return=/bills/pay").await;
    assert_eq!(card.status, StatusCode::OK);
    for (number, back, status) in [
        ("5555 5555 5555 4444", "/bills/pay", StatusCode::BAD_REQUEST),
        (
            "4242 4242 4242 4242",
            "//evil.example/steal",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = ann
            .post("/sandbox/card", &[("number", number), ("return", back)])
            .await;
        assert_eq!(r.status, status, "{number} {back}");
    }
    let token = ann
        .post(
            "/sandbox/card",
            &[("number", "4242 4242 4242 4242"), ("return", "/bills/pay")],
        )
        .await;
    let back = token.location.unwrap();
    assert_eq!(back, "/bills/pay?card=tok_sandbox_success");
    let form = ann.get(&back).await;
    let fields = [
        ("csrf", csrf_of(&form.html)),
        ("key", field_value(&form.html, "key")),
        ("card", field_value(&form.html, "card")),
        ("choice", "all".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = ann.post("/bills/pay", &fields).await;
    let second = ann.post("/bills/pay", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location, second.location, "the same payment");
    let charged = salus_server::sandbox::read_ledger(&ledger).unwrap();
    assert_eq!(charged.len(), 1, "one charge for two clicks");
    let receipt = ann.get(first.location.as_deref().unwrap()).await;
    assert!(receipt.html.contains("Receipt") && receipt.html.contains("$75.10"));
    let pdf = app
        .client
        .get(format!(
            "{}/receipt.pdf",
            first.location.as_deref().unwrap()
        ))
        .header("cookie", ann.cookie_header())
        .send()
        .await;
    pdf.assert_status_is_ok();
    pdf.assert_content_type("application/pdf");
    let payment = first
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Billing staff refund part of it and credit the balance, each with a reason.
    let page = clerk.get(&account).await;
    let csrf = csrf_of(&page.html);
    let refund_key = field_value(&page.html, "key");
    let refunded = clerk
        .post(
            &format!("/staff/billing/payments/{payment}/refund"),
            &[
                ("csrf", &csrf),
                ("key", &refund_key),
                ("amount", "5.00"),
                ("reason", "Lab test not done"),
            ],
        )
        .await;
    assert_eq!(refunded.status, StatusCode::SEE_OTHER);
    let adjusted = clerk
        .post(
            &format!("{account}/adjustments"),
            &[
                ("csrf", &csrf),
                ("kind", "charge"),
                ("amount", "2.50"),
                ("reason", "Copy of records"),
            ],
        )
        .await;
    assert_eq!(adjusted.status, StatusCode::SEE_OTHER);
    let bills = ann.get("/bills").await;
    assert!(bills.html.contains("Lab test not done") && bills.html.contains("Copy of records"));
    assert!(bills.html.contains("$7.50"), "5.00 refunded + 2.50 charged");

    // A CSV export through the billing page: all rows or none, each problem by row.
    let import = |csv: &'static str| {
        let csrf = csrf_of(&home.html);
        let boundary = "----salus-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let home = clerk.get("/staff/billing").await;
    let _ = &home;
    for (csv, status, said) in [
        (
            "mrn,statement_number,issued,due,service_date,description,charge,insurance_paid,adjustments,patient_share\n\
             SYN0000001,CSV-1,2026-11-20,2026-12-20,2026-11-02,Visit,10,0,0,9\n",
            StatusCode::BAD_REQUEST,
            "Problems in the file",
        ),
        (
            "mrn,statement_number,issued,due,service_date,description,charge,insurance_paid,adjustments,patient_share\n\
             SYN0000001,CSV-1,2026-11-20,2026-12-20,2026-11-02,Visit,10,0,0,10\n",
            StatusCode::OK,
            "Imported 1 statement(s) with 1 line(s).",
        ),
    ] {
        let (content_type, body) = import(csv);
        let resp = app
            .client
            .post("/staff/billing/import")
            .header("cookie", clerk.cookie_header())
            .content_type(content_type)
            .body(body)
            .send()
            .await;
        let page = clerk.finish(resp).await;
        assert_eq!(page.status, status, "{}", page.html);
        assert!(page.html.contains(said));
    }
}

#[tokio::test]
async fn a_second_click_on_set_up_the_plan_shows_the_plan_the_first_made() {
    let app = crate::spawn_app(2).await;
    let clerk = crate::identity::staff(
        &app,
        "demo-clinic",
        "billing@example.org",
        salus_domain::account::StaffRole::Billing,
    )
    .await;
    let (_, chart) = crate::records::linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let (status, _) = crate::billing::post_statement(&app, &clerk, &chart, "PLAN-1").await;
    assert_eq!(status, StatusCode::CREATED);
    let mut bo = Browser::new(&app);
    patient_signs_in(&mut bo, "bo@example.org").await;
    let form = bo.get("/bills/pay?card=tok_sandbox_success").await;
    assert!(form.html.contains("<option value=\"3\">3 months</option>"));
    assert!(
        !form.html.contains("<option value=\"4\">"),
        "75.10 over 4 would be under the smallest instalment"
    );
    let fields = [
        ("csrf", csrf_of(&form.html)),
        ("card", "tok_sandbox_success".to_owned()),
        ("instalments", "3".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = bo.post("/bills/plans", &fields).await;
    let second = bo.post("/bills/plans", &fields).await;
    assert_eq!(first.location.as_deref(), Some("/bills?done=plan"));
    assert_eq!(second.location.as_deref(), Some("/bills?done=plan-exists"));
    let bills = bo.get("/bills?done=plan-exists").await;
    assert!(bills.html.contains("You have a payment plan already"));
    assert!(
        bills
            .html
            .contains("3 monthly instalments: 1 of $25.04, then 2 of $25.03")
    );
    assert!(bills.html.contains("1 of 3 paid"));
}
