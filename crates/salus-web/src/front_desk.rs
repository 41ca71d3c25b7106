//! The front desk's pages: the people waiting for their clinic to confirm who they are, a
//! search of the organisation's charts by name and date of birth to connect one of them or
//! to give an activation code, and activation codes by record number.

use crate::account::with_status;
use crate::clinician::{ChartRow, search_problem};
use crate::form::Problems;
use crate::session::{CheckedForm, Refill, StaffMember};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path};
use poem::{Response, handler};
use salus_domain::access::Actor;
use salus_domain::account::{IssueCodeError, QueueError, ReviewError, ReviewOutcome};
use salus_domain::patient::ChartSearch;
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

struct QueueRow {
    account_id: String,
    name: String,
    /// To start a search for them.
    family_name: String,
    birth_date: String,
    birth_date_iso: String,
    email: String,
    /// "Asked on 3 Dec 2026", or that they chose no clinic.
    asked: String,
    candidates: Vec<ChartRow>,
}

/// A search of the charts, and the waiting account it is for, if any.
struct SearchView {
    /// (account id, name) of the person the search is for.
    for_account: Option<(String, String)>,
    /// Charts found; `linkable` marks those with the account's birth date.
    found: Vec<(ChartRow, bool)>,
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
    problems: Problems,
    name: &'a str,
    birth_date: &'a str,
    search: Option<SearchView>,
}

/// The page for anyone who is not front desk (or an administrator).
pub(crate) fn not_for_you() -> Response {
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
    /// A chart search: what was typed, what was wrong with it, what it found.
    name: &'a str,
    birth_date: &'a str,
    problems: Problems,
    search: Option<SearchView>,
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
    let zone = match state.records.time_zone(actor).await {
        Ok(z) => z,
        Err(e) => return crate::unavailable("time zone lookup failed", &e),
    };
    let queue = entries
        .into_iter()
        .map(|e| QueueRow {
            account_id: e.account.id.to_string(),
            name: e.account.name.full(),
            family_name: e.account.name.family().to_owned(),
            birth_date: e.account.birth_date.map(when::day).unwrap_or_default(),
            birth_date_iso: e
                .account
                .birth_date
                .map(|d| d.to_string())
                .unwrap_or_default(),
            email: e.account.email.as_str().to_owned(),
            asked: match e.requested_at {
                Some(at) => format!("asked you on {}", when::day_of(at, zone)),
                None => format!(
                    "chose no clinic; registered {}",
                    when::day_of(e.account.created_at, zone)
                ),
            },
            candidates: e.candidates.iter().map(ChartRow::from).collect(),
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
            problems: said.problems,
            name: said.name,
            birth_date: said.birth_date,
            search: said.search,
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
                ReviewOutcome::Rejected => {
                    "Recorded: none of our records is theirs. They see this on their home page, with your phone number."
                }
            };
            page(&desk, Said::notice(done), StatusCode::OK).await
        }
        Err(ReviewError::NotFound) => {
            let why = "That account is not waiting for you, or that record does not have the birth date on their account (give them an activation code instead).";
            page(&desk, Said::message(why), StatusCode::NOT_FOUND).await
        }
        Err(ReviewError::AlreadyLinked) => {
            page(&desk, Said::message(not_found), StatusCode::CONFLICT).await
        }
        Err(ReviewError::Forbidden) => not_for_you(),
        Err(ReviewError::Repo(e)) => crate::unavailable("identity review failed", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct SearchForm {
    name: String,
    birth_date: String,
    /// The waiting account the search is for (its id), if any.
    #[serde(default)]
    for_account: String,
}

impl Refill for SearchForm {}

/// The organisation's charts by name and date of birth, for a waiting account (to connect
/// one) or for an activation code.
#[handler]
pub(crate) async fn search(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(f): CheckedForm<SearchForm>,
) -> Response {
    let desk = Desk {
        rid: &rid,
        state: &state,
        csrf,
        actor: &me.actor,
    };
    let typed = |problems: Problems, search: Option<SearchView>| Said {
        name: &f.name,
        birth_date: &f.birth_date,
        problems,
        search,
        ..Said::default()
    };
    let query = match ChartSearch::from_fields(&f.name, &f.birth_date) {
        Ok(q) => q,
        Err(e) => {
            return page(
                &desk,
                typed(search_problem(e), None),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    // The waiting person the search is for, if still waiting for this organisation.
    let waiting = match salus_domain::AccountId::parse(&f.for_account) {
        Err(_) => None,
        Ok(id) => match state.auth.waiting_account(&me.actor, id).await {
            Ok(w) => w,
            Err(QueueError::Forbidden) => return not_for_you(),
            Err(QueueError::Repo(e)) => return crate::unavailable("waiting account failed", &e),
        },
    };
    let found = match state
        .records
        .search_charts(&me.actor, &query, rid.get())
        .await
    {
        Ok(found) => found,
        Err(e) => return crate::records::failure(e),
    };
    let view = SearchView {
        for_account: waiting
            .as_ref()
            .map(|w| (w.account.id.to_string(), w.account.name.full())),
        found: found
            .iter()
            .map(|c| {
                let linkable = waiting
                    .as_ref()
                    .is_some_and(|w| w.account.birth_date == Some(c.birth_date));
                (ChartRow::from(c), linkable)
            })
            .collect(),
    };
    page(
        &desk,
        typed(Problems::default(), Some(view)),
        StatusCode::OK,
    )
    .await
}
