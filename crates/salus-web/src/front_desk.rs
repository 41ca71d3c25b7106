//! The front desk's pages: the identity queue and activation codes.

use crate::account::with_status;
use crate::session::{CheckedForm, Refill, StaffMember};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path};
use poem::{Response, handler};
use salus_domain::access::Actor;
use salus_domain::account::{IssueCodeError, QueueError, ReviewError, ReviewOutcome};
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

fn not_for_you() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not available",
        "This page is for front-desk staff.",
    )
}

/// What the front-desk page says above its queue.
#[derive(Default)]
struct Said<'a> {
    notice: Option<&'a str>,
    message: Option<&'a str>,
    /// A new activation code, shown once.
    issued: Option<String>,
}

impl<'a> Said<'a> {
    fn notice(notice: &'a str) -> Self {
        Self {
            notice: Some(notice),
            ..Self::default()
        }
    }
    fn message(message: &'a str) -> Self {
        Self {
            message: Some(message),
            ..Self::default()
        }
    }
}

/// The request a front-desk page answers.
struct Desk<'a> {
    rid: &'a crate::RequestId,
    state: &'a WebState,
    csrf: &'a CsrfToken,
    actor: &'a Actor,
}

async fn page(desk: &Desk<'_>, said: Said<'_>, status: StatusCode) -> Response {
    let Desk {
        rid,
        state,
        csrf,
        actor,
    } = desk;
    let entries = match state.auth.identity_queue(actor, rid.get()).await {
        Ok(e) => e,
        Err(QueueError::Forbidden) => return not_for_you(),
        Err(QueueError::Repo(e)) => return crate::unavailable("identity queue failed", &e),
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
            notice: said.notice,
            message: said.message,
            issued: said.issued,
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
    StaffMember(me): StaffMember,
) -> Response {
    let desk = Desk {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
    };
    page(&desk, Said::default(), StatusCode::OK).await
}

impl Refill for CodeForm {}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    mrn: String,
}

#[handler]
pub(crate) async fn activation_code(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(f): CheckedForm<CodeForm>,
) -> Response {
    let desk = Desk {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
    };
    let Ok(mrn) = salus_domain::text::Mrn::parse(&f.mrn) else {
        return page(
            &desk,
            Said::message("Enter a medical record number."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match state
        .auth
        .issue_activation_code_for_mrn(&me.actor, &mrn, rid.get())
        .await
    {
        Ok(code) => {
            page(
                &desk,
                Said {
                    issued: Some(code.expose().to_owned()),
                    ..Said::default()
                },
                StatusCode::OK,
            )
            .await
        }
        Err(IssueCodeError::NotFound) => {
            page(
                &desk,
                Said::message("No record with that number in your organisation."),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(IssueCodeError::Forbidden) => not_for_you(),
        Err(IssueCodeError::Repo(e)) => crate::unavailable("activation code failed", &e),
    }
}

impl Refill for ReviewForm {}

#[derive(Deserialize)]
pub(crate) struct ReviewForm {
    decision: String,
    patient_id: String,
}

#[handler]
pub(crate) async fn review(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(account): Path<String>,
    CheckedForm(f): CheckedForm<ReviewForm>,
) -> Response {
    let desk = Desk {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
    };
    let not_found = "That account or record is no longer in the queue.";
    let Ok(account) = salus_domain::AccountId::parse(&account) else {
        return page(&desk, Said::message(not_found), StatusCode::NOT_FOUND).await;
    };
    let decision = match (
        f.decision.as_str(),
        salus_domain::PatientId::parse(&f.patient_id),
    ) {
        ("confirm", Ok(patient)) => ReviewOutcome::Confirmed { patient },
        ("reject", _) => ReviewOutcome::Rejected,
        _ => {
            return page(&desk, Said::message(not_found), StatusCode::BAD_REQUEST).await;
        }
    };
    match state
        .auth
        .review_identity(&me.actor, account, decision, rid.get())
        .await
    {
        Ok(()) => {
            let done = match decision {
                ReviewOutcome::Confirmed { .. } => "The account is now connected to the record.",
                ReviewOutcome::Rejected => "Recorded: none of these records is theirs.",
            };
            page(&desk, Said::notice(done), StatusCode::OK).await
        }
        Err(ReviewError::NotFound | ReviewError::AlreadyLinked) => {
            page(&desk, Said::message(not_found), StatusCode::NOT_FOUND).await
        }
        Err(ReviewError::Forbidden) => not_for_you(),
        Err(ReviewError::Repo(e)) => crate::unavailable("identity review failed", &e),
    }
}
