//! Recovery and identity pages: forgot password, choose a new one, enter an activation code.

use crate::account::{MessagePage, with_status};
use crate::link::LinkToken;
use crate::session::{CheckedForm, FORM_EXPIRED, Refill, SignedIn, see_other};
use crate::{WebState, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data};
use poem::{Response, handler};
use salus_domain::account::{HashError, RedeemError, ResetError, SecretText};
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
    CheckedForm(f): CheckedForm<ForgotForm>,
) -> Response {
    let again = |m: &str, status| f.again(&csrf.0, "/verify/resend", m, status);
    let Ok(email) = Email::parse(&f.email) else {
        return again(
            salus_domain::text::EmailError::SENTENCE,
            StatusCode::BAD_REQUEST,
        );
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

/// An email address: what the "forgot password" and "send the email again" forms take.
#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    email: String,
}

impl ForgotForm {
    /// The form posted to `path` again, with the address typed and why it was refused.
    fn again(&self, csrf: &str, path: &str, message: &str, status: StatusCode) -> Response {
        let page = if path == "/verify/resend" {
            render(&ResendPage {
                csrf,
                message: Some(message),
                email: &self.email,
            })
        } else {
            render(&ForgotPage {
                csrf,
                message: Some(message),
                email: &self.email,
            })
        };
        with_status(page, status)
    }
}

impl Refill for ForgotForm {
    fn refill(&self, csrf: &str, path: &str) -> Option<Response> {
        Some(self.again(csrf, path, FORM_EXPIRED, StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn forgot(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<ForgotForm>,
) -> Response {
    let again = |m: &str, status| f.again(&csrf.0, "/forgot", m, status);
    let Ok(email) = Email::parse(&f.email) else {
        return again(
            salus_domain::text::EmailError::SENTENCE,
            StatusCode::BAD_REQUEST,
        );
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
    token: String,
    password: String,
}

impl ResetForm {
    /// The form again (the link's token kept, never the password), saying why.
    fn again(&self, csrf: &str, message: String, status: StatusCode) -> Response {
        with_status(
            render(&ResetPage {
                csrf,
                message: Some(message),
                token: &self.token,
            }),
            status,
        )
    }
}

impl Refill for ResetForm {
    fn refill(&self, csrf: &str, _path: &str) -> Option<Response> {
        Some(self.again(csrf, FORM_EXPIRED.into(), StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn reset(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<ResetForm>,
) -> Response {
    let again = |m: String, status| f.again(&csrf.0, m, status);
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
            ResetError::InvalidOrExpired.to_string(),
            StatusCode::BAD_REQUEST,
        ),
        Err(ResetError::Password(r)) => again(r.sentence(), StatusCode::BAD_REQUEST),
        Err(ResetError::Busy(HashError::Busy { .. })) => crate::account::busy(),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}

#[handler]
pub(crate) fn activate_form(csrf: &CsrfToken, _me: SignedIn) -> Response {
    render(&ActivatePage {
        csrf: &csrf.0,
        message: None,
        code: "",
        birth_date: "",
    })
}

#[derive(Deserialize)]
pub(crate) struct ActivateForm {
    code: String,
    birth_date: String,
}

impl ActivateForm {
    /// The form again with what was typed and why it was refused.
    fn again(&self, csrf: &str, message: &str, status: StatusCode) -> Response {
        with_status(
            render(&ActivatePage {
                csrf,
                message: Some(message),
                code: &self.code,
                birth_date: &self.birth_date,
            }),
            status,
        )
    }
}

impl Refill for ActivateForm {
    fn refill(&self, csrf: &str, _path: &str) -> Option<Response> {
        Some(self.again(csrf, FORM_EXPIRED, StatusCode::FORBIDDEN))
    }
}

#[handler]
pub(crate) async fn activate(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<ActivateForm>,
) -> Response {
    let again = |m: &str, status| f.again(&csrf.0, m, status);
    let Ok(dob) = salus_domain::patient::parse_birth_date(&f.birth_date) else {
        return again(
            &salus_domain::patient::InvalidBirthDate.to_string(),
            StatusCode::BAD_REQUEST,
        );
    };
    match state
        .auth
        .redeem_activation_code(
            &me.account,
            &SecretText::new(f.code.clone()),
            dob,
            rid.get(),
        )
        .await
    {
        Ok(_) => see_other("/account"),
        Err(RedeemError::CodeRejected) => again(
            &salus_domain::account::RedeemError::CodeRejected.to_string(),
            StatusCode::BAD_REQUEST,
        ),
        Err(RedeemError::AlreadyLinked) => see_other("/account"),
        Err(RedeemError::Forbidden) => again(
            &salus_domain::account::RedeemError::Forbidden.to_string(),
            StatusCode::FORBIDDEN,
        ),
        Err(e) => crate::unavailable("recovery page", &e),
    }
}
