//! Recovery and identity pages: forgot password, choose a new one, enter an activation code.

use crate::account::{FORM_EXPIRED, MessagePage, see_other, session_token, with_status};
use crate::link::LinkToken;
use crate::{WebState, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{CsrfToken, CsrfVerifier, Data, Form};
use poem::{Response, handler};
use salus_domain::account::{HashError, IdentityError, ResetError, SecretText};
use salus_domain::text::Email;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    csrf: &'a str,
    message: Option<String>,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
    code: &'a str,
    birth_date: &'a str,
}

#[derive(Template)]
#[template(path = "resend.html")]
struct ResendPage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
    email: &'a str,
}

#[handler]
pub(crate) fn resend_form(csrf: &CsrfToken) -> Response {
    render(&ResendPage {
        csrf: &csrf.0,
        message: None,
        email: "",
    })
}

#[handler]
pub(crate) async fn resend(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(f): Form<ForgotForm>,
) -> Response {
    let again = |m: &str, status| {
        with_status(
            render(&ResendPage {
                csrf: &csrf.0,
                message: Some(m),
                email: &f.email,
            }),
            status,
        )
    };
    if !verifier.is_valid(&f.csrf) {
        return again(FORM_EXPIRED, StatusCode::FORBIDDEN);
    }
    let Ok(email) = Email::parse(&f.email) else {
        return again("Enter a valid email address.", StatusCode::BAD_REQUEST);
    };
    match state.auth.resend_verification(&email, rid.get()).await {
        Ok(()) => render(&MessagePage {
            title: "Check your email",
            message: "If this address has an account waiting for confirmation, we have sent the email again (at most once a minute).",
            next: Some(("/verify", "Enter the code")),
        }),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}

#[handler]
pub(crate) fn forgot_form(csrf: &CsrfToken) -> Response {
    render(&ForgotPage {
        csrf: &csrf.0,
        message: None,
        email: "",
    })
}

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    csrf: String,
    email: String,
}

#[handler]
pub(crate) async fn forgot(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(f): Form<ForgotForm>,
) -> Response {
    let again = |m: &str, status| {
        with_status(
            render(&ForgotPage {
                csrf: &csrf.0,
                message: Some(m),
                email: &f.email,
            }),
            status,
        )
    };
    if !verifier.is_valid(&f.csrf) {
        return again(FORM_EXPIRED, StatusCode::FORBIDDEN);
    }
    let Ok(email) = Email::parse(&f.email) else {
        return again("Enter a valid email address.", StatusCode::BAD_REQUEST);
    };
    match state.auth.request_password_reset(&email, rid.get()).await {
        Ok(()) => render(&MessagePage {
            title: "Check your email",
            message: "If this address has an account, we have sent it a link to choose a new password. The link works for one hour.",
            next: None,
        }),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}

#[handler]
pub(crate) fn reset_form(csrf: &CsrfToken, link: LinkToken) -> Response {
    render(&ResetPage {
        csrf: &csrf.0,
        message: None,
        token: &link.0,
    })
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    csrf: String,
    token: String,
    password: String,
}

#[handler]
pub(crate) async fn reset(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(f): Form<ResetForm>,
) -> Response {
    let again = |m: String, status| {
        with_status(
            render(&ResetPage {
                csrf: &csrf.0,
                message: Some(m),
                token: &f.token,
            }),
            status,
        )
    };
    if !verifier.is_valid(&f.csrf) {
        return again(FORM_EXPIRED.into(), StatusCode::FORBIDDEN);
    }
    match state
        .auth
        .reset_password(
            &SecretText::new(f.token.trim()),
            SecretText::new(f.password.clone()),
            rid.get(),
        )
        .await
    {
        Ok(()) => render(&MessagePage {
            title: "Password changed",
            message: "Your password is changed and you were signed out everywhere. Sign in with the new password.",
            next: Some(("/login", "Sign in")),
        }),
        Err(ResetError::InvalidOrExpired) => again(
            "This link is invalid or has expired. Ask for a new one.".into(),
            StatusCode::BAD_REQUEST,
        ),
        Err(ResetError::Password(r)) => again(
            format!("Choose another password: {r}."),
            StatusCode::BAD_REQUEST,
        ),
        Err(ResetError::Busy(HashError::Busy { .. })) => crate::account::busy(),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}

#[handler]
pub(crate) fn activate_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
) -> Response {
    if session_token(&state, jar).is_none() {
        return see_other("/login");
    }
    render(&ActivatePage {
        csrf: &csrf.0,
        message: None,
        code: "",
        birth_date: "",
    })
}

#[derive(Deserialize)]
pub(crate) struct ActivateForm {
    csrf: String,
    code: String,
    birth_date: String,
}

#[handler]
pub(crate) async fn activate(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Form(f): Form<ActivateForm>,
) -> Response {
    let again = |m: &str, status| {
        with_status(
            render(&ActivatePage {
                csrf: &csrf.0,
                message: Some(m),
                code: &f.code,
                birth_date: &f.birth_date,
            }),
            status,
        )
    };
    if !verifier.is_valid(&f.csrf) {
        return again(FORM_EXPIRED, StatusCode::FORBIDDEN);
    }
    let Some(token) = session_token(&state, jar) else {
        return see_other("/login");
    };
    let Ok(dob) = chrono::NaiveDate::parse_from_str(&f.birth_date, "%Y-%m-%d") else {
        return again("Enter your date of birth.", StatusCode::BAD_REQUEST);
    };
    match state
        .auth
        .redeem_activation_code(&token, &SecretText::new(f.code.clone()), dob, rid.get())
        .await
    {
        Ok(_) => see_other("/account"),
        Err(IdentityError::NotSignedIn) => see_other("/login"),
        Err(IdentityError::CodeRejected) => again(
            "The code or date of birth is not correct, or the code has expired.",
            StatusCode::BAD_REQUEST,
        ),
        Err(IdentityError::AlreadyLinked) => see_other("/account"),
        Err(IdentityError::Forbidden) => again(
            "Staff accounts are not connected to records.",
            StatusCode::FORBIDDEN,
        ),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}
