//! Staff pages: the front desk's identity queue and activation codes.

use crate::account::{FORM_EXPIRED, see_other, session_token, with_status};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{CsrfToken, CsrfVerifier, Data, Form, Path};
use poem::{Response, handler};
use salus_domain::account::{IdentityError, ReviewOutcome, SecretText};
use serde::Deserialize;
use std::sync::Arc;

struct CandidateRow {
    patient_id: String,
    name: String,
    birth_date: String,
    mrn: String,
}

struct QueueRow {
    account_id: String,
    name: String,
    birth_date: String,
    email: String,
    registered: String,
    candidates: Vec<CandidateRow>,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage<'a> {
    csrf: &'a str,
    notice: Option<&'a str>,
    message: Option<&'a str>,
    issued: Option<String>,
    valid_days: i64,
    queue: Vec<QueueRow>,
}

fn identity_failure(e: IdentityError) -> Response {
    match e {
        IdentityError::NotSignedIn => see_other("/login"),
        IdentityError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is for front-desk staff.",
        ),
        other => crate::unavailable("front-desk page failed", &other),
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the page context these travel in is the shared layout work of issue 12"
)]
async fn page(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &CsrfToken,
    token: &SecretText,
    notice: Option<&str>,
    message: Option<&str>,
    issued: Option<String>,
    status: StatusCode,
) -> Response {
    let entries = match state.auth.identity_queue(token, rid.get()).await {
        Ok(e) => e,
        Err(e) => return identity_failure(e),
    };
    let queue = entries
        .into_iter()
        .map(|e| QueueRow {
            account_id: e.account.id.to_string(),
            name: e.account.name.full(),
            birth_date: e
                .account
                .birth_date
                .map(|d| d.to_string())
                .unwrap_or_default(),
            email: e.account.email.as_str().to_owned(),
            registered: e.account.created_at.format("%Y-%m-%d").to_string(),
            candidates: e
                .candidates
                .iter()
                .map(|c| CandidateRow {
                    patient_id: c.id.to_string(),
                    name: c.name.full(),
                    birth_date: c.birth_date.to_string(),
                    mrn: c.mrn.as_str().to_owned(),
                })
                .collect(),
        })
        .collect();
    let valid_days = state.auth.config().activation_ttl_days;
    with_status(
        render(&StaffPage {
            csrf: &csrf.0,
            notice,
            message,
            issued,
            valid_days,
            queue,
        }),
        status,
    )
}

#[handler]
pub(crate) async fn staff_home(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    jar: &CookieJar,
) -> Response {
    let Some(token) = session_token(&state, jar) else {
        return see_other("/login");
    };
    page(&rid, &state, csrf, &token, None, None, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    csrf: String,
    mrn: String,
}

#[handler]
pub(crate) async fn activation_code(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Form(f): Form<CodeForm>,
) -> Response {
    let Some(token) = session_token(&state, jar) else {
        return see_other("/login");
    };
    if !verifier.is_valid(&f.csrf) {
        return page(
            &rid,
            &state,
            csrf,
            &token,
            None,
            Some(FORM_EXPIRED),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let Ok(mrn) = salus_domain::text::Mrn::parse(&f.mrn) else {
        return page(
            &rid,
            &state,
            csrf,
            &token,
            None,
            Some("Enter a medical record number."),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match state
        .auth
        .issue_activation_code_for_mrn(&token, &mrn, rid.get())
        .await
    {
        Ok(code) => {
            page(
                &rid,
                &state,
                csrf,
                &token,
                None,
                None,
                Some(code.expose().to_owned()),
                StatusCode::OK,
            )
            .await
        }
        Err(IdentityError::NotFound) => {
            page(
                &rid,
                &state,
                csrf,
                &token,
                None,
                Some("No record with that number in your organisation."),
                None,
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => identity_failure(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReviewForm {
    csrf: String,
    decision: String,
    patient_id: String,
}

#[handler]
pub(crate) async fn review(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    jar: &CookieJar,
    Path(account): Path<String>,
    Form(f): Form<ReviewForm>,
) -> Response {
    let Some(token) = session_token(&state, jar) else {
        return see_other("/login");
    };
    if !verifier.is_valid(&f.csrf) {
        return page(
            &rid,
            &state,
            csrf,
            &token,
            None,
            Some(FORM_EXPIRED),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let not_found = "That account or record is no longer in the queue.";
    let Ok(account) = salus_domain::AccountId::parse(&account) else {
        return page(
            &rid,
            &state,
            csrf,
            &token,
            None,
            Some(not_found),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    let decision = match (
        f.decision.as_str(),
        salus_domain::PatientId::parse(&f.patient_id),
    ) {
        ("confirm", Ok(patient)) => ReviewOutcome::Confirmed { patient },
        ("reject", _) => ReviewOutcome::Rejected,
        _ => {
            return page(
                &rid,
                &state,
                csrf,
                &token,
                None,
                Some(not_found),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    match state
        .auth
        .review_identity(&token, account, decision, rid.get())
        .await
    {
        Ok(()) => {
            let done = match decision {
                ReviewOutcome::Confirmed { .. } => "The account is now connected to the record.",
                ReviewOutcome::Rejected => "Recorded: none of these records is theirs.",
            };
            page(
                &rid,
                &state,
                csrf,
                &token,
                Some(done),
                None,
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(IdentityError::NotFound | IdentityError::AlreadyLinked) => {
            page(
                &rid,
                &state,
                csrf,
                &token,
                None,
                Some(not_found),
                None,
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => identity_failure(e),
    }
}
