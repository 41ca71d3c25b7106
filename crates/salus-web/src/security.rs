//! The "sign-in and security" page: change the password, set up an authenticator app (with a
//! QR code), see and end sessions. Every action posts a CSRF-checked form and comes back here.

use crate::account::{busy, with_status};
use crate::session::{CheckedForm, NoFields, Refill, SignedIn, see_other};
use crate::{WebState, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path};
use poem::{Response, handler};
use salus_domain::account::{
    BeginTotpError, ChangePasswordError, ConfirmEmailError, EmailChangeError, HashError,
    LoginError, Role, SecondFactorChangeError, SecretText, SessionError, TotpError,
};
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

struct SessionRow {
    id: String,
    /// "Firefox on Windows", or that it is not known.
    device: String,
    created: String,
    last_seen: String,
    current: bool,
}

struct TotpSetup {
    qr_svg: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    csrf: &'a str,
    given_name: String,
    family_name: String,
    email: String,
    notice: Option<&'a str>,
    message: Option<String>,
    sessions: Vec<SessionRow>,
    /// The day the authenticator app was turned on, when it is on.
    totp_on_since: Option<String>,
    /// Patients may turn the app off; staff always sign in with one.
    may_turn_off: bool,
    totp_setup: Option<TotpSetup>,
    recovery_codes: Option<Vec<String>>,
}

/// What to show besides the sessions.
#[derive(Default)]
struct Extra<'a> {
    notice: Option<&'a str>,
    message: Option<String>,
    totp_setup: Option<TotpSetup>,
    recovery_codes: Option<Vec<String>>,
}

/// Renders the page for the signed-in person, or sends them to sign in.
async fn page(
    state: &WebState,
    csrf: &CsrfToken,
    me: &SignedIn,
    extra: Extra<'_>,
    status: StatusCode,
) -> Response {
    let account = &me.account;
    let zone = match crate::records::zone_of(state, account).await {
        Ok(z) => z,
        Err(r) => return r,
    };
    let totp_on_since = match state.auth.second_factor_since(account.id).await {
        Ok(since) => since.map(|t| when::day_of(t, zone)),
        Err(e) => return crate::unavailable("second factor state failed", &e),
    };
    let sessions = match state.auth.sessions(&me.token).await {
        Ok(s) => s,
        Err(SessionError::Invalid) => return see_other("/login"),
        Err(SessionError::Repo(e)) => return crate::unavailable("session list failed", &e),
    };
    let rows = sessions
        .iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            device: s
                .device
                .clone()
                .unwrap_or_else(|| "An unknown browser".to_owned()),
            created: when::moment(s.created_at, zone),
            last_seen: when::moment(s.last_seen_at, zone),
            current: s.current,
        })
        .collect();
    let r = render(&SecurityPage {
        csrf: &csrf.0,
        given_name: account.name.given().to_owned(),
        family_name: account.name.family().to_owned(),
        email: account.email.as_str().to_owned(),
        notice: extra.notice,
        message: extra.message,
        sessions: rows,
        totp_on_since,
        may_turn_off: account.role == Role::Patient,
        totp_setup: extra.totp_setup,
        recovery_codes: extra.recovery_codes,
    });
    with_status(r, status)
}

pub(crate) fn qr_svg(uri: &str) -> String {
    qrcode::QrCode::new(uri.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default()
}

#[handler]
pub(crate) async fn security(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
) -> Response {
    page(&state, csrf, &me, Extra::default(), StatusCode::OK).await
}

impl Refill for PasswordForm {}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current_password: String,
    new_password: String,
}

#[handler]
pub(crate) async fn change_password(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<PasswordForm>,
) -> Response {
    let token = &me.token;
    let fail = |m: String| Extra {
        message: Some(m),
        ..Extra::default()
    };
    let r = state
        .auth
        .change_password(
            token,
            SecretText::new(f.current_password),
            SecretText::new(f.new_password),
            rid.get(),
        )
        .await;
    match r {
        Ok(()) => {
            let done = Extra {
                notice: Some(
                    "Your password is changed. You were signed out on your other devices.",
                ),
                ..Extra::default()
            };
            page(&state, csrf, &me, done, StatusCode::OK).await
        }
        Err(ChangePasswordError::NotSignedIn) => see_other("/login"),
        Err(ChangePasswordError::WrongCurrentPassword) => {
            page(
                &state,
                csrf,
                &me,
                fail(ChangePasswordError::WrongCurrentPassword.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(ChangePasswordError::Password(r)) => {
            page(
                &state,
                csrf,
                &me,
                fail(r.sentence()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(ChangePasswordError::Busy(HashError::Busy { .. })) => busy(),
        Err(e) => crate::unavailable("password change failed", &e),
    }
}

impl Refill for TotpStartForm {}

#[derive(Deserialize)]
pub(crate) struct TotpStartForm {
    password: String,
}

/// The password entered again before a sensitive action; the page again, saying why, when
/// it is wrong (or attempts are throttled).
async fn reauthenticated(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &CsrfToken,
    me: &SignedIn,
    password: String,
) -> Result<(), Response> {
    let fail = |m: &str| Extra {
        message: Some(m.to_owned()),
        ..Extra::default()
    };
    match state
        .auth
        .reauthenticate(&me.token, SecretText::new(password), rid.get())
        .await
    {
        Ok(()) => Ok(()),
        Err(LoginError::SessionEnded) => Err(see_other("/login")),
        Err(LoginError::Throttled { .. }) => Err(page(
            state,
            csrf,
            me,
            fail(salus_domain::account::TOO_MANY_ATTEMPTS),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await),
        Err(LoginError::Busy(HashError::Busy { .. })) => Err(busy()),
        Err(_) => Err(page(
            state,
            csrf,
            me,
            fail(salus_domain::account::WRONG_PASSWORD),
            StatusCode::UNAUTHORIZED,
        )
        .await),
    }
}

/// Re-enters the password (a sensitive action) and starts enrolment.
#[handler]
pub(crate) async fn totp_start(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<TotpStartForm>,
) -> Response {
    if let Err(r) = reauthenticated(&rid, &state, csrf, &me, f.password).await {
        return r;
    }
    let token = &me.token;
    let fail = |m: &str| Extra {
        message: Some(m.to_owned()),
        ..Extra::default()
    };
    match state.auth.begin_totp(token).await {
        Ok(e) => {
            let setup = TotpSetup {
                qr_svg: qr_svg(&e.provisioning_uri),
                secret: e.secret_base32,
            };
            page(
                &state,
                csrf,
                &me,
                Extra {
                    totp_setup: Some(setup),
                    ..Extra::default()
                },
                StatusCode::OK,
            )
            .await
        }
        Err(BeginTotpError::AlreadyEnrolled) => {
            page(
                &state,
                csrf,
                &me,
                fail("An authenticator app is already set up."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(BeginTotpError::ReauthenticationRequired) => {
            page(
                &state,
                csrf,
                &me,
                fail("Please start again and enter your password."),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(BeginTotpError::NotSignedIn) => see_other("/login"),
        Err(BeginTotpError::Repo(e)) => crate::unavailable("authenticator setup failed", &e),
    }
}

impl Refill for TotpConfirmForm {}

#[derive(Deserialize)]
pub(crate) struct TotpConfirmForm {
    code: String,
}

#[handler]
pub(crate) async fn totp_confirm(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<TotpConfirmForm>,
) -> Response {
    let token = &me.token;
    let fail = |m: &str| Extra {
        message: Some(m.to_owned()),
        ..Extra::default()
    };
    match state.auth.confirm_totp(token, &f.code, rid.get()).await {
        Ok(codes) => {
            let codes = codes.iter().map(|c| c.expose().to_owned()).collect();
            page(
                &state,
                csrf,
                &me,
                Extra {
                    recovery_codes: Some(codes),
                    ..Extra::default()
                },
                StatusCode::OK,
            )
            .await
        }
        Err(TotpError::WrongCode | TotpError::NotStarted) => {
            page(
                &state,
                csrf,
                &me,
                fail("That code is not correct. Start again and enter the newest code."),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(TotpError::ReauthenticationRequired) => {
            page(
                &state,
                csrf,
                &me,
                fail("Please start again and enter your password."),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(TotpError::AlreadyEnrolled) => {
            page(
                &state,
                csrf,
                &me,
                fail("An authenticator app is already set up."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(TotpError::NotSignedIn) => see_other("/login"),
        Err(e) => crate::unavailable("authenticator confirmation failed", &e),
    }
}

#[handler]
pub(crate) async fn end_session(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    let token = &me.token;
    let ended = match salus_domain::SessionId::parse(&id) {
        Ok(target) => state.auth.revoke_session(token, target, rid.get()).await,
        Err(_) => Ok(false),
    };
    match ended {
        Ok(true) => {
            page(
                &state,
                csrf,
                &me,
                Extra {
                    notice: Some("That session has ended."),
                    ..Extra::default()
                },
                StatusCode::OK,
            )
            .await
        }
        Ok(false) => {
            page(
                &state,
                csrf,
                &me,
                Extra {
                    message: Some("No such session.".into()),
                    ..Extra::default()
                },
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(SessionError::Invalid) => see_other("/login"),
        Err(SessionError::Repo(e)) => crate::unavailable("ending a session failed", &e),
    }
}

#[handler]
pub(crate) async fn end_others(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    _form: CheckedForm<NoFields>,
) -> Response {
    let token = &me.token;
    match state.auth.revoke_other_sessions(token, rid.get()).await {
        Ok(_) => {
            page(
                &state,
                csrf,
                &me,
                Extra {
                    notice: Some("You are signed out everywhere else."),
                    ..Extra::default()
                },
                StatusCode::OK,
            )
            .await
        }
        Err(SessionError::Invalid) => see_other("/login"),
        Err(SessionError::Repo(e)) => crate::unavailable("ending sessions failed", &e),
    }
}

impl Refill for EmailForm {}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    new_email: String,
    password: String,
}

#[handler]
pub(crate) async fn change_email(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<EmailForm>,
) -> Response {
    let token = &me.token;
    let fail = |m: &str, status| {
        let extra = Extra {
            message: Some(m.to_owned()),
            ..Extra::default()
        };
        let (state, me) = (&state, &me);
        async move { page(state, csrf, me, extra, status).await }
    };
    let Ok(new_email) = salus_domain::text::Email::parse(&f.new_email) else {
        return fail(
            salus_domain::text::EmailError::SENTENCE,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let r = state
        .auth
        .request_email_change(token, SecretText::new(f.password), new_email, rid.get())
        .await;
    match r {
        Ok(()) => {
            let done = Extra {
                notice: Some(
                    "We sent a link to the new address. Open it to finish the change; until then you sign in with your current address.",
                ),
                ..Extra::default()
            };
            page(&state, csrf, &me, done, StatusCode::OK).await
        }
        Err(EmailChangeError::NotSignedIn) => see_other("/login"),
        Err(EmailChangeError::WrongPassword) => {
            fail(
                salus_domain::account::WRONG_PASSWORD,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(EmailChangeError::SameAddress) => {
            fail(
                &salus_domain::account::EmailChangeError::SameAddress.to_string(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(EmailChangeError::Throttled { .. }) => {
            fail(
                salus_domain::account::TOO_MANY_ATTEMPTS,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(EmailChangeError::TooSoon) => {
            fail(
                &salus_domain::account::EmailChangeError::TooSoon.to_string(),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(EmailChangeError::Busy) => busy(),
        Err(EmailChangeError::Repo(e)) => crate::unavailable("email change failed", &e),
    }
}

/// Opening the link only shows a button: mail scanners that fetch links must not use the
/// single-use token up.
#[handler]
pub(crate) fn email_confirm_form(csrf: &CsrfToken, link: crate::link::LinkToken) -> Response {
    render(&crate::account::VerifyPage {
        csrf: &csrf.0,
        message: None,
        token: &link.0,
        action: "/account/email/confirm",
    })
}

#[handler]
pub(crate) async fn email_confirm(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<crate::account::VerifyForm>,
) -> Response {
    let again = |m: &str, status| f.again(&csrf.0, "/account/email/confirm", m, status);
    match state
        .auth
        .confirm_email_change(&SecretText::new(f.token.trim()), rid.get())
        .await
    {
        Ok(_) => render(&crate::account::MessagePage {
            title: "Email address changed",
            message: "From now on you sign in with your new email address.",
            next: Some(("/account", "Your account")),
        }),
        Err(ConfirmEmailError::InvalidOrExpired) => again(
            &salus_domain::account::ConfirmEmailError::InvalidOrExpired.to_string(),
            StatusCode::BAD_REQUEST,
        ),
        Err(ConfirmEmailError::Taken) => again(
            &salus_domain::account::ConfirmEmailError::Taken.to_string(),
            StatusCode::CONFLICT,
        ),
        Err(ConfirmEmailError::Repo(e)) => crate::unavailable("email confirmation failed", &e),
    }
}

/// Turns the authenticator off, after the password is entered again.
#[handler]
pub(crate) async fn totp_off(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<TotpStartForm>,
) -> Response {
    if let Err(r) = reauthenticated(&rid, &state, csrf, &me, f.password).await {
        return r;
    }
    let done = state
        .auth
        .turn_off_totp(&me.token, rid.get())
        .await
        .map(|()| Extra {
            notice: Some("Your authenticator app is off. We sent you an email about it."),
            ..Extra::default()
        });
    totp_changed(&state, csrf, &me, done).await
}

/// Makes new recovery codes in place of the earlier ones, after the password is entered
/// again.
#[handler]
pub(crate) async fn new_codes(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<TotpStartForm>,
) -> Response {
    if let Err(r) = reauthenticated(&rid, &state, csrf, &me, f.password).await {
        return r;
    }
    let done = state
        .auth
        .new_recovery_codes(&me.token, rid.get())
        .await
        .map(|codes| Extra {
            recovery_codes: Some(codes.iter().map(|c| c.expose().to_owned()).collect()),
            ..Extra::default()
        });
    totp_changed(&state, csrf, &me, done).await
}

/// The security page after a change of the authenticator, or why it was refused.
async fn totp_changed(
    state: &WebState,
    csrf: &CsrfToken,
    me: &SignedIn,
    done: Result<Extra<'_>, SecondFactorChangeError>,
) -> Response {
    let (extra, status) = match done {
        Ok(extra) => (extra, StatusCode::OK),
        Err(SecondFactorChangeError::NotSignedIn) => return see_other("/login"),
        Err(SecondFactorChangeError::Repo(e)) => {
            return crate::unavailable("second factor change failed", &e);
        }
        Err(other) => (
            Extra {
                message: Some(other.to_string()),
                ..Extra::default()
            },
            StatusCode::CONFLICT,
        ),
    };
    page(state, csrf, me, extra, status).await
}
