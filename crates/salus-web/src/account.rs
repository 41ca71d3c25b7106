//! Account pages: register, confirm email, sign in, the signed-in home, sign out.
//!
//! Every form carries a CSRF token (poem's encrypted double-submit cookie). The session
//! lives in a cookie (`__Host-` prefixed, `Secure` over TLS; always `HttpOnly`,
//! `SameSite=Strict`); the server keeps only its digest. Pages of a signed-in person are
//! `Cache-Control: no-store`.

use crate::link::LinkToken;
use crate::session::{
    CheckedForm, FORM_EXPIRED, NoFields, Refill, SignedIn, acting_cookie, see_other,
    session_cookie, session_token, strict_cookie,
};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::cookie::CookieJar;
use poem::web::{CsrfToken, Data, Query};
use poem::{Response, handler};
use salus_domain::account::{
    Account, ChooseClinicError, HashError, IdentityStatus, LoginError, LoginOutcome, QueueError,
    RegisterError, Registration, Role, SecretText, SessionError, StaffRole, VerifyError,
};
use salus_domain::text::Email;
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

/// A clinic a person may choose on the registration form.
pub(crate) struct ClinicOption {
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) selected: bool,
}

/// The directory's clinics, `chosen` selected.
pub(crate) async fn clinic_options(
    state: &WebState,
    chosen: &str,
) -> Result<Vec<ClinicOption>, Response> {
    let orgs = state
        .directory
        .list()
        .await
        .map_err(|e| crate::unavailable("directory unavailable", &e))?;
    Ok(orgs
        .into_iter()
        .map(|o| ClinicOption {
            selected: o.slug.as_str() == chosen.trim(),
            slug: o.slug.as_str().to_owned(),
            name: o.name.as_str().to_owned(),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    csrf: &'a str,
    message: Option<String>,
    clinics: Vec<ClinicOption>,
    given_name: &'a str,
    family_name: &'a str,
    birth_date: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    message: Option<String>,
    notice: Option<&'a str>,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub(crate) struct VerifyPage<'a> {
    pub(crate) csrf: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) token: &'a str,
    /// Where the form posts: `/verify` for a new account, `/account/email/confirm` for a
    /// changed address.
    pub(crate) action: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
    pub(crate) next: Option<(&'a str, &'a str)>,
}

/// A link on the home page: where it goes and what it says.
pub(crate) struct Link {
    href: String,
    text: String,
}

/// Where a patient's account stands on the way to its records, as the home page says it.
pub(crate) struct Standing {
    /// `waiting`, `declined` or `no_clinic`.
    state: &'static str,
    clinic: String,
    phone: Option<String>,
    since: String,
    clinics: Vec<ClinicOption>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    csrf: &'a str,
    given_name: &'a str,
    email: &'a str,
    /// A patient not yet connected to a record.
    standing: Option<Standing>,
    /// A patient with a record: what came online since the last sign-in.
    news: Option<Vec<Link>>,
    last_sign_in: Option<String>,
    /// What needs doing, most important first.
    todo: Vec<Link>,
    /// Staff who find charts (a search form).
    finds_charts: bool,
    staff_links: Vec<Link>,
    /// The people who share their records with this person.
    shared_with_me: Vec<String>,
    /// A patient with a record: their next visits and their last ones (three each at most).
    visits: Option<(
        Vec<crate::scheduling::AppointmentRow>,
        Vec<crate::scheduling::AppointmentRow>,
    )>,
}

pub(crate) fn with_status(mut r: Response, status: StatusCode) -> Response {
    r.set_status(status);
    r
}

pub(crate) fn busy() -> Response {
    let mut r = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "Too many people are signing in right now. Please try again in a moment.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

#[derive(Deserialize)]
pub(crate) struct RegisterQuery {
    /// A clinic's slug, when the person came from its page.
    clinic: Option<String>,
}

#[handler]
pub(crate) async fn register_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Query(q): Query<RegisterQuery>,
) -> Response {
    let clinics = match clinic_options(&state, q.clinic.as_deref().unwrap_or_default()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    render(&RegisterPage {
        csrf: &csrf.0,
        message: None,
        clinics,
        given_name: "",
        family_name: "",
        birth_date: "",
        email: "",
    })
}

#[derive(Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    clinic: String,
    given_name: String,
    family_name: String,
    birth_date: String,
    email: String,
    password: String,
}

impl RegisterForm {
    /// The form again with what was typed (never the password) and why it was refused.
    fn again(
        &self,
        csrf: &str,
        clinics: Vec<ClinicOption>,
        message: &str,
        status: StatusCode,
    ) -> Response {
        with_status(
            render(&RegisterPage {
                csrf,
                message: Some(message.to_owned()),
                clinics,
                given_name: &self.given_name,
                family_name: &self.family_name,
                birth_date: &self.birth_date,
                email: &self.email,
            }),
            status,
        )
    }
}

impl Refill for RegisterForm {
    fn refill(&self, csrf: &str, _path: &str) -> Option<Response> {
        // The clinic list needs the directory; the form comes back with the clinic typed
        // in as the only choice, so the person can send it again as it was.
        let clinics = (!self.clinic.is_empty())
            .then(|| ClinicOption {
                slug: self.clinic.clone(),
                name: self.clinic.clone(),
                selected: true,
            })
            .into_iter()
            .collect();
        Some(self.again(csrf, clinics, FORM_EXPIRED, StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn register(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<RegisterForm>,
) -> Response {
    let clinics = match clinic_options(&state, &f.clinic).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let again = |message: &str, status: StatusCode| f.again(&csrf.0, clinics, message, status);
    let registration = match Registration::from_fields(
        &f.clinic,
        &f.given_name,
        &f.family_name,
        &f.birth_date,
        &f.email,
        SecretText::new(f.password.clone()),
    ) {
        Ok(r) => r,
        Err(e) => return again(&e.to_string(), StatusCode::BAD_REQUEST),
    };
    match state.auth.register(registration, rid.get()).await {
        Ok(()) => see_other("/register/check-email"),
        Err(RegisterError::Input(e)) => again(&e.to_string(), StatusCode::BAD_REQUEST),
        Err(RegisterError::Password(r)) => again(&r.sentence(), StatusCode::BAD_REQUEST),
        Err(RegisterError::Busy(HashError::Busy { .. })) => busy(),
        Err(e) => crate::unavailable("registration failed", &e),
    }
}

#[handler]
pub(crate) fn check_email() -> Response {
    render(&MessagePage {
        title: "Check your email",
        message: "We have sent a message to the address you gave. Open the link in it, or enter its code, to confirm your address. If you already had an account, the message tells you how to sign in.",
        next: Some(("/verify", "Enter the code")),
    })
}

/// Opening the link only shows a button: mail scanners that fetch links must not use the
/// single-use token up.
#[handler]
pub(crate) fn verify_form(csrf: &CsrfToken, link: LinkToken) -> Response {
    render(&VerifyPage {
        csrf: &csrf.0,
        message: None,
        token: &link.0,
        action: "/verify",
    })
}

#[derive(Deserialize)]
pub(crate) struct VerifyForm {
    pub(crate) token: String,
}

impl VerifyForm {
    /// The form again (it posts to `action`), saying why the token was refused.
    pub(crate) fn again(
        &self,
        csrf: &str,
        action: &str,
        message: &str,
        status: StatusCode,
    ) -> Response {
        with_status(
            render(&VerifyPage {
                csrf,
                message: Some(message),
                token: &self.token,
                action,
            }),
            status,
        )
    }
}

impl Refill for VerifyForm {
    fn refill(&self, csrf: &str, path: &str) -> Option<Response> {
        Some(self.again(csrf, path, FORM_EXPIRED, StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn verify(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<VerifyForm>,
) -> Response {
    let again = |m: &str, status| f.again(&csrf.0, "/verify", m, status);
    match state
        .auth
        .verify_email(&SecretText::new(f.token.trim()), rid.get())
        .await
    {
        Ok(_) => render(&MessagePage {
            title: "Email address confirmed",
            message: "Thank you. You can sign in now.",
            next: Some(("/login", "Sign in")),
        }),
        Err(VerifyError::InvalidOrExpired) => again(
            "This code is invalid or has expired.",
            StatusCode::BAD_REQUEST,
        ),
        Err(VerifyError::Repo(e)) => crate::unavailable("verification failed", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    signed_out: Option<String>,
}

#[handler]
pub(crate) fn login_form(csrf: &CsrfToken, Query(q): Query<LoginQuery>) -> Response {
    let notice = q.signed_out.map(|_| "You are signed out.");
    render(&LoginPage {
        csrf: &csrf.0,
        message: None,
        notice,
        email: "",
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
}

impl LoginForm {
    /// The form again with the address typed (never the password) and why it was refused.
    fn again(&self, csrf: &str, message: String, status: StatusCode) -> Response {
        with_status(
            render(&LoginPage {
                csrf,
                message: Some(message),
                notice: None,
                email: &self.email,
            }),
            status,
        )
    }
}

impl Refill for LoginForm {
    fn refill(&self, csrf: &str, _path: &str) -> Option<Response> {
        Some(self.again(csrf, FORM_EXPIRED.into(), StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn login(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
    req: &poem::Request,
    CheckedForm(f): CheckedForm<LoginForm>,
) -> Response {
    let again = |m: String, status| f.again(&csrf.0, m, status);
    let generic = || LoginError::InvalidCredentials.to_string();
    let Ok(email) = Email::parse(&f.email) else {
        return again(generic(), StatusCode::UNAUTHORIZED);
    };
    match state
        .auth
        .login(
            &email,
            SecretText::new(f.password.clone()),
            user_agent(req),
            rid.get(),
        )
        .await
    {
        Ok(LoginOutcome::Signed { token, .. }) => {
            // A new session starts on the person's own record.
            jar.remove(acting_cookie(&state));
            jar.add(strict_cookie(
                session_cookie(&state),
                token.expose(),
                state.secure_cookies,
            ));
            see_other("/account")
        }
        Ok(LoginOutcome::SecondFactor { challenge }) => {
            jar.add(strict_cookie(
                challenge_cookie(&state),
                challenge.expose(),
                state.secure_cookies,
            ));
            see_other("/login/code")
        }
        Err(LoginError::SecondFactorRequired) => again(
            "This account must use an authenticator app. Ask your administrator to set it up."
                .into(),
            StatusCode::FORBIDDEN,
        ),
        Err(LoginError::InvalidCredentials) => again(generic(), StatusCode::UNAUTHORIZED),
        Err(LoginError::NotVerified) => again(
            "Please confirm your email address first: open the link we sent you.".into(),
            StatusCode::FORBIDDEN,
        ),
        Err(LoginError::Throttled { retry_after_secs }) => again(
            format!(
                "Too many attempts. Please wait {retry_after_secs} seconds and try again, or reset your password."
            ),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(LoginError::Busy(HashError::Busy { .. })) => busy(),
        Err(e) => crate::unavailable("sign-in failed", &e),
    }
}

/// The browser's `User-Agent`, from which the session is named ("Firefox on Windows").
fn user_agent(req: &poem::Request) -> Option<&str> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// Holds the second-factor challenge between the password and the code.
fn challenge_cookie(state: &WebState) -> &'static str {
    if state.secure_cookies {
        "__Host-salus_2fa"
    } else {
        "salus_2fa"
    }
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
}

#[handler]
pub(crate) fn code_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
) -> Response {
    if jar.get(challenge_cookie(&state)).is_none() {
        return see_other("/login");
    }
    render(&CodePage {
        csrf: &csrf.0,
        message: None,
    })
}

impl Refill for CodeForm {}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    code: String,
}

#[handler]
pub(crate) async fn code(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
    req: &poem::Request,
    CheckedForm(f): CheckedForm<CodeForm>,
) -> Response {
    let again = |m: &str, status| {
        with_status(
            render(&CodePage {
                csrf: &csrf.0,
                message: Some(m),
            }),
            status,
        )
    };
    let Some(challenge) = jar
        .get(challenge_cookie(&state))
        .map(|c| SecretText::new(c.value_str()))
    else {
        return see_other("/login");
    };
    match state
        .auth
        .complete_second_factor(&challenge, &f.code, user_agent(req), rid.get())
        .await
    {
        Ok(LoginOutcome::Signed { token, .. }) => {
            jar.remove(challenge_cookie(&state));
            jar.remove(acting_cookie(&state));
            jar.add(strict_cookie(
                session_cookie(&state),
                token.expose(),
                state.secure_cookies,
            ));
            see_other("/account")
        }
        Ok(LoginOutcome::SecondFactor { .. }) | Err(LoginError::InvalidCredentials) => again(
            "That code is not correct, or this sign-in has expired.",
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::Throttled { .. }) => again(
            salus_domain::account::TOO_MANY_ATTEMPTS,
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => crate::unavailable("second factor failed", &e),
    }
}

/// The home page: what is new and what needs doing, for the person signed in.
#[handler]
pub(crate) async fn account(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
) -> Response {
    let account = &me.account;
    let mut page = HomePage {
        csrf: &csrf.0,
        given_name: account.name.given(),
        email: account.email.as_str(),
        standing: None,
        news: None,
        last_sign_in: None,
        todo: Vec::new(),
        finds_charts: false,
        staff_links: Vec::new(),
        shared_with_me: me.proxy.choices.iter().map(|c| c.name.full()).collect(),
        visits: None,
    };
    let role = |r: StaffRole| matches!(account.role, Role::Staff { role, .. } if role == r);
    let actor = salus_domain::access::Actor::for_account(account);
    let zone = match &actor {
        Some(a) => match state.records.time_zone(a).await {
            Ok(tz) => tz,
            Err(e) => return crate::unavailable("time zone lookup failed", &e),
        },
        None => salus_domain::chrono_tz::Tz::UTC,
    };
    page.last_sign_in = me.previous_sign_in.map(|at| when::moment(at, zone));
    match (&account.role, &actor) {
        (Role::Patient, None) => {
            page.standing = match standing(&state, account).await {
                Ok(s) => s,
                Err(r) => return r,
            };
        }
        (Role::Patient, Some(actor)) => {
            let since = me.previous_sign_in.unwrap_or(account.created_at);
            let news = match state.records.new_since(actor, since, rid.get()).await {
                Ok(n) => n,
                Err(e) => return crate::records::failure(e),
            };
            page.visits = match crate::scheduling::home_visits(&state, actor, rid.get()).await {
                Ok(v) => Some(v),
                Err(r) => return r,
            };
            page.news = Some(
                news.into_iter()
                    .map(|(kind, n)| Link {
                        href: format!("/records/{}", crate::records::slug_of(kind)),
                        text: format!("{} new", kind.counted(n)),
                    })
                    .collect(),
            );
        }
        (Role::Staff { .. }, Some(actor)) => {
            page.finds_charts = role(StaffRole::Clinician);
            if role(StaffRole::FrontDesk) || role(StaffRole::OrganizationAdmin) {
                match state.auth.waiting_count(actor).await {
                    Ok(0) => {}
                    Ok(n) => page.todo.push(Link {
                        href: "/staff".into(),
                        text: if n == 1 {
                            "1 person is waiting for you to confirm who they are".into()
                        } else {
                            format!("{n} people are waiting for you to confirm who they are")
                        },
                    }),
                    Err(QueueError::Forbidden) => {}
                    Err(QueueError::Repo(e)) => {
                        return crate::unavailable("waiting count failed", &e);
                    }
                }
            }
            let links = crate::layout::links(account, false, None);
            page.staff_links = links
                .into_iter()
                .filter(|(href, _)| href.starts_with("/staff"))
                .map(|(href, text)| Link {
                    href: href.into(),
                    text: text.into(),
                })
                .collect();
        }
        (Role::Staff { .. }, None) => {}
    }
    match state.auth.second_factor_since(account.id).await {
        Ok(None) if account.role == Role::Patient => page.todo.push(Link {
            href: "/account/security#authenticator".into(),
            text: "Protect your account with an authenticator app".into(),
        }),
        Ok(_) => {}
        Err(e) => return crate::unavailable("second factor lookup failed", &e),
    }
    render(&page)
}

/// A patient account's way to its records, when it is not connected yet.
async fn standing(state: &WebState, who: &Account) -> Result<Option<Standing>, Response> {
    let status = state
        .auth
        .identity_status(who)
        .await
        .map_err(|e| crate::unavailable("identity status failed", &e))?;
    let (state_code, clinic, at) = match status {
        IdentityStatus::Linked => return Ok(None),
        IdentityStatus::NoClinic => ("no_clinic", None, None),
        IdentityStatus::Waiting { clinic, since } => ("waiting", Some(clinic), Some(since)),
        IdentityStatus::Declined { clinic, at } => ("declined", Some(clinic), Some(at)),
    };
    let chosen = clinic.as_ref().map(|c| c.slug.as_str()).unwrap_or_default();
    let clinics = clinic_options(state, chosen).await?;
    Ok(Some(Standing {
        state: state_code,
        phone: clinic
            .as_ref()
            .and_then(|c| c.phone.as_ref())
            .map(|p| p.as_str().to_owned()),
        since: match (&clinic, at) {
            (Some(c), Some(at)) => when::day_of(at, c.time_zone),
            _ => String::new(),
        },
        clinic: clinic
            .map(|c| c.name.as_str().to_owned())
            .unwrap_or_default(),
        clinics,
    }))
}

#[derive(Deserialize)]
pub(crate) struct ClinicForm {
    clinic: String,
}

impl Refill for ClinicForm {}

/// A patient asks a clinic (again, or another one) to confirm who they are.
#[handler]
pub(crate) async fn choose_clinic(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    me: SignedIn,
    CheckedForm(f): CheckedForm<ClinicForm>,
) -> Response {
    let refused =
        |message: &str| error_page(StatusCode::BAD_REQUEST, "Choose your clinic", message);
    let Ok(slug) = salus_domain::text::Slug::parse(f.clinic.trim()) else {
        return refused(&ChooseClinicError::UnknownClinic.to_string());
    };
    match state
        .auth
        .choose_clinic(&me.account, &slug, rid.get())
        .await
    {
        Ok(_) | Err(ChooseClinicError::AlreadyLinked) => see_other("/account"),
        Err(e @ (ChooseClinicError::UnknownClinic | ChooseClinicError::Forbidden)) => {
            refused(&e.to_string())
        }
        Err(ChooseClinicError::Repo(e)) => crate::unavailable("choosing a clinic failed", &e),
    }
}

/// Signs out. Posting the form is enough even when the session already ended.
#[handler]
pub(crate) async fn logout(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    req: &poem::Request,
    jar: &CookieJar,
    _form: CheckedForm<NoFields>,
) -> Response {
    if let Ok(Some(token)) = session_token(req) {
        // An already-ended session is fine: the person is signed out either way.
        if let Err(SessionError::Repo(e)) = state.auth.logout(&token, rid.get()).await {
            tracing::error!(error = %e, "sign-out failed");
        }
    }
    jar.remove(session_cookie(&state));
    jar.remove(acting_cookie(&state));
    see_other("/login?signed_out=1")
}
