//! Bills in the pages: the patient's balance, statements, payments and receipts, paying with
//! a card the processor's own card form turned into a token (the sandbox's in local use);
//! the billing staff's accounts (found by record number), statements, adjustments, refunds
//! and settings. The domain's `BillingService` decides, audits and keeps every payment to one
//! charge per form key.

use crate::account::with_status;
use crate::form::Problems;
use crate::session::{Acting, CheckedFiles, CheckedForm, Refill, StaffMember, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::billing::{
    Account, AdjustmentDraft, BillingError, BillingService, LineDraft, Payment, PaymentState,
    PlanState, RefundDraft, Statement, StatementDraft,
};
use salus_domain::{PatientId, PaymentId, PlanId, StatementId, when};
use serde::Deserialize;
use std::sync::Arc;

/// What a refusal answers when it is not about a field.
fn failed(e: BillingError) -> Response {
    match e {
        BillingError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such bill or payment, or it is not yours to see.",
        ),
        BillingError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is not for your role.",
        ),
        BillingError::Repo(r) => crate::unavailable("bills failed", &r),
        other => error_page(StatusCode::CONFLICT, "Not done", &other.to_string()),
    }
}

/// The status a refused form answers with.
fn status_of(e: &BillingError) -> StatusCode {
    match e.code() {
        "amount_above_balance"
        | "nothing_owed"
        | "idempotency_key_reused"
        | "try_again"
        | "plan_exists"
        | "plan_ended"
        | "statement_exists"
        | "not_refundable"
        | "refund_above_payment"
        | "currency_in_use" => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A statement as a list shows it.
pub(crate) struct StatementRow {
    id: String,
    number: String,
    issued: String,
    due: String,
    share: String,
}

/// A payment as a list or a receipt shows it.
pub(crate) struct PaymentRow {
    id: String,
    amount: String,
    made: String,
    /// "Paid", "Waiting for the card processor", "Declined", "Not taken".
    state: &'static str,
    paid: bool,
    pending: bool,
    /// Why it took nothing, in words.
    why: Option<&'static str>,
    reference: Option<String>,
    /// Billing staff: what may still be refunded (empty when nothing).
    refundable: String,
    /// Billing staff: the refund form's key (one refund per state of the account).
    refund_key: String,
}

/// A refund or an adjustment as the account shows it.
pub(crate) struct MoveRow {
    at: String,
    what: String,
    amount: String,
    reason: String,
}

/// Why a payment took nothing, in the patient's words.
fn why(state: &PaymentState) -> Option<&'static str> {
    match state {
        PaymentState::Declined { reason, .. } => Some(reason.sentence()),
        PaymentState::Failed { .. } => Some(
            "The card processor could not take the payment. Nothing was charged; try again later.",
        ),
        PaymentState::Pending | PaymentState::Succeeded { .. } => None,
    }
}

fn payment_row(p: &Payment, a: &Account, tz: salus_domain::chrono_tz::Tz) -> PaymentRow {
    PaymentRow {
        id: p.id.to_string(),
        amount: p.amount.to_string(),
        made: when::moment(p.created_at, tz),
        state: match p.state {
            PaymentState::Pending => "Waiting for the card processor",
            PaymentState::Succeeded { .. } => "Paid",
            PaymentState::Declined { .. } => "Declined",
            PaymentState::Failed { .. } => "Not taken",
        },
        paid: p.state.charged(),
        pending: p.state == PaymentState::Pending,
        why: why(&p.state),
        reference: match &p.state {
            PaymentState::Succeeded { reference, .. } => Some(reference.clone()),
            _ => None,
        },
        refundable: a
            .ledger
            .refundable(p)
            .ok()
            .filter(|m| m.is_positive())
            .map(|m| m.plain())
            .unwrap_or_default(),
        refund_key: format!("refund-{}-{}", p.id, a.ledger.version),
    }
}

fn statement_row(s: &Statement) -> StatementRow {
    StatementRow {
        id: s.id.to_string(),
        number: s.number.clone(),
        issued: when::day(s.issued),
        due: when::day(s.due),
        share: s
            .totals()
            .map(|t| t.patient_share.to_string())
            .unwrap_or_default(),
    }
}

/// The account as its pages show it.
struct AccountView {
    patient: String,
    mrn: String,
    patient_id: String,
    owed: String,
    credit: bool,
    pending: String,
    has_pending: bool,
    payable: String,
    may_pay: bool,
    statements: Vec<StatementRow>,
    payments: Vec<PaymentRow>,
    moves: Vec<MoveRow>,
    /// The newest payment plan, in words.
    plan: Option<PlanView>,
}

/// A payment plan as the pages say it.
struct PlanView {
    id: String,
    active: bool,
    failed: bool,
    /// "6 monthly instalments of $17.52 (the first $17.53)".
    terms: String,
    /// "2 of 6 paid; the next, $17.52, on 4 Jan 2027." or why it ended.
    progress: String,
}

fn plan_view(a: &Account, tz: salus_domain::chrono_tz::Tz) -> Option<PlanView> {
    let p = a.ledger.plans.first()?;
    let amounts = p.amounts();
    let paid = a
        .ledger
        .plan_payments(p)
        .iter()
        .filter(|(_, _, s)| s.charged())
        .count();
    let first = amounts.first().copied().unwrap_or(p.total);
    let last = amounts.last().copied().unwrap_or(p.total);
    let more = amounts.iter().filter(|m| **m == first).count();
    let terms = if first == last {
        format!("{} monthly instalments of {last}", p.instalments)
    } else {
        format!(
            "{} monthly instalments: {more} of {first}, then {} of {last}",
            p.instalments,
            amounts.len() - more
        )
    };
    let next = u8::try_from(paid + 1).unwrap_or(u8::MAX);
    let progress = match p.state {
        PlanState::Active => format!(
            "{paid} of {} paid; the next, {}, on {}.",
            p.instalments,
            amounts
                .get(paid)
                .map_or_else(String::new, ToString::to_string),
            when::day(p.due(next))
        ),
        PlanState::Completed { at } => format!("Paid off on {}.", when::day_of(at, tz)),
        PlanState::Cancelled { at } => format!("Stopped on {}; {paid} paid.", when::day_of(at, tz)),
        PlanState::Failed { instalment, at } => format!(
            "Stopped on {}: instalment {instalment} could not be charged, twice. Pay the balance or set up a new plan.",
            when::day_of(at, tz)
        ),
    };
    Some(PlanView {
        id: p.id.to_string(),
        active: p.state == PlanState::Active,
        failed: matches!(p.state, PlanState::Failed { .. }),
        terms,
        progress,
    })
}

/// What is owed as the pages write it: a credit (negative) without its sign, for the
/// "Your credit" heading.
fn owed_words(b: &salus_domain::billing::Balance) -> String {
    if b.owed.is_negative() {
        salus_domain::billing::Money::zero(b.owed.currency())
            .minus(b.owed)
            .map(|m| m.to_string())
            .unwrap_or_default()
    } else {
        b.owed.to_string()
    }
}

fn account_view(a: &Account, tz: salus_domain::chrono_tz::Tz) -> AccountView {
    let b = &a.balance;
    let mut moves: Vec<(chrono::DateTime<chrono::Utc>, MoveRow)> = a
        .ledger
        .refunds
        .iter()
        .map(|r| {
            let state = match r.state {
                PaymentState::Pending => " (waiting for the processor)",
                PaymentState::Succeeded { .. } => "",
                PaymentState::Declined { .. } | PaymentState::Failed { .. } => " (not made)",
            };
            (
                r.created_at,
                MoveRow {
                    at: when::moment(r.created_at, tz),
                    what: format!("Refund to your card{state}"),
                    amount: r.amount.to_string(),
                    reason: r.reason.clone(),
                },
            )
        })
        .chain(a.ledger.adjustments.iter().map(|x| {
            (
                x.at,
                MoveRow {
                    at: when::moment(x.at, tz),
                    what: if x.amount.is_negative() {
                        "Credit from the clinic".to_owned()
                    } else {
                        "Charge added by the clinic".to_owned()
                    },
                    amount: x.amount.to_string(),
                    reason: x.reason.clone(),
                },
            )
        }))
        .collect();
    moves.sort_by_key(|m| std::cmp::Reverse(m.0));
    AccountView {
        patient: a.patient.name.full(),
        mrn: a.patient.mrn.as_str().to_owned(),
        patient_id: a.patient.id.to_string(),
        owed: owed_words(b),
        credit: b.owed.is_negative(),
        pending: b.pending.to_string(),
        has_pending: b.pending.is_positive(),
        payable: b.payable.to_string(),
        may_pay: b.payable.is_positive(),
        statements: a.ledger.statements.iter().map(statement_row).collect(),
        payments: a
            .ledger
            .payments
            .iter()
            .map(|p| payment_row(p, a, tz))
            .collect(),
        moves: moves.into_iter().map(|(_, m)| m).collect(),
        plan: plan_view(a, tz),
    }
}

async fn zone(state: &WebState, acting: &Acting) -> salus_domain::chrono_tz::Tz {
    state
        .records
        .time_zone(&acting.actor)
        .await
        .unwrap_or(salus_domain::chrono_tz::UTC)
}

#[derive(Template)]
#[template(path = "bills.html")]
struct BillsPage<'a> {
    csrf: &'a str,
    a: AccountView,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// The patient's balance, statements and payments.
#[handler]
pub(crate) async fn bills(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Query(q): Query<DoneQuery>,
) -> Response {
    match state.billing.account(&acting.actor, None, rid.get()).await {
        Ok(a) => render(&BillsPage {
            csrf: &csrf.0,
            a: account_view(&a, zone(&state, &acting).await),
            notice: match q.done.as_deref() {
                Some("plan") => Some("Your payment plan is set up."),
                Some("plan-stopped") => Some("Your payment plan is stopped."),
                Some("plan-exists") => {
                    Some("You have a payment plan already (below); stop it before making another.")
                }
                _ => None,
            },
        }),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct PlanForm {
    #[serde(default)]
    card: String,
    #[serde(default)]
    instalments: String,
}

impl Refill for PlanForm {}

/// Sets up a payment plan with the card the processor's form gave.
#[handler]
pub(crate) async fn start_plan(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    CheckedForm(f): CheckedForm<PlanForm>,
) -> Response {
    let n = f.instalments.trim().parse::<u8>().unwrap_or(0);
    match state
        .billing
        .start_plan(&acting.actor, None, n, &f.card, rid.get())
        .await
    {
        Ok(_) => see_other("/bills?done=plan"),
        // A second click, or a second tab: the plan the first made is the one to show.
        Err(BillingError::Plan(salus_domain::billing::PlanProblem::Exists)) => {
            see_other("/bills?done=plan-exists")
        }
        Err(e @ (BillingError::Plan(_) | BillingError::InvalidCardToken)) => {
            let a = match state.billing.account(&acting.actor, None, rid.get()).await {
                Ok(a) => a,
                Err(e) => return failed(e),
            };
            let status = status_of(&e);
            with_status(
                render(&pay_page(
                    &state,
                    &csrf.0,
                    &a,
                    Some(f.card.clone()).filter(|c| !c.is_empty()),
                    PayForm {
                        choice: "plan".into(),
                        ..PayForm::default()
                    },
                    Problems::one("instalments", e.to_string()),
                )),
                status,
            )
        }
        Err(e) => failed(e),
    }
}

/// Stops the patient's payment plan.
#[handler]
pub(crate) async fn cancel_plan(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    CheckedForm(_): CheckedForm<crate::session::NoFields>,
) -> Response {
    let Ok(id) = PlanId::parse(&id) else {
        return failed(BillingError::NotFound);
    };
    match state
        .billing
        .cancel_plan(&acting.actor, id, rid.get())
        .await
    {
        Ok(()) => see_other("/bills?done=plan-stopped"),
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "bill_statement.html")]
struct StatementPage {
    s: StatementRow,
    lines: Vec<[String; 6]>,
    totals: [String; 4],
    /// Where "back" goes: the patient's bills or the staff's account page.
    back: String,
    patient: Option<String>,
}

/// One statement with its lines (printable).
#[handler]
pub(crate) async fn statement(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let (chart, s) = match addressed_statement(&state, &acting, &rid, &id).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let by_staff = matches!(acting.actor, salus_domain::access::Actor::Staff { .. });
    let totals = match s.totals() {
        Ok(t) => [
            t.charges.to_string(),
            t.insurance_paid.to_string(),
            t.adjustments.to_string(),
            t.patient_share.to_string(),
        ],
        Err(e) => return failed(e.into()),
    };
    render(&StatementPage {
        lines: s
            .items
            .iter()
            .map(|l| {
                [
                    when::day(l.service_date),
                    l.description.clone(),
                    l.charge.to_string(),
                    l.insurance_paid.to_string(),
                    l.adjustments.to_string(),
                    l.patient_share.to_string(),
                ]
            })
            .collect(),
        totals,
        back: if by_staff {
            format!("/staff/billing/patients/{}", chart.id)
        } else {
            "/bills".to_owned()
        },
        patient: by_staff.then(|| chart.name.full()),
        s: statement_row(&s),
    })
}

#[derive(Template)]
#[template(path = "bill_pay.html")]
struct PayPage<'a> {
    csrf: &'a str,
    payable: String,
    /// The processor's card form, and where it comes back to.
    card_form: String,
    /// The token the processor's card form gave, once it has.
    card: Option<String>,
    key: String,
    form: PayForm,
    problems: Problems,
    /// The numbers of monthly instalments a plan may have now (none: no plan offered).
    plan_choices: Vec<u8>,
    /// The smallest instalment, for saying why no plan is offered.
    min_instalment: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct PayForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    card: String,
    /// `all` or `other`.
    #[serde(default)]
    choice: String,
    #[serde(default)]
    amount: String,
}

impl Refill for PayForm {}

#[derive(Deserialize)]
pub(crate) struct CardQuery {
    card: Option<String>,
}

fn pay_page<'a>(
    state: &WebState,
    csrf: &'a str,
    a: &Account,
    card: Option<String>,
    form: PayForm,
    problems: Problems,
) -> PayPage<'a> {
    PayPage {
        csrf,
        payable: a.balance.payable.to_string(),
        card_form: format!("{}?return=/bills/pay", state.card_form_url),
        card,
        key: if form.key.is_empty() {
            BillingService::form_key(a)
        } else {
            form.key.clone()
        },
        form,
        problems,
        plan_choices: (salus_domain::billing::plan::MIN_INSTALMENTS
            ..=salus_domain::billing::plan::MAX_INSTALMENTS)
            .filter(|n| {
                salus_domain::billing::plan::check_plan(
                    a.balance.payable,
                    *n,
                    a.settings.min_instalment,
                )
                .is_ok()
            })
            .collect(),
        min_instalment: a.settings.min_instalment.to_string(),
    }
}

/// The payment form: first the processor's card form, then the amount.
#[handler]
pub(crate) async fn pay_form(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Query(q): Query<CardQuery>,
) -> Response {
    let a = match state.billing.account(&acting.actor, None, rid.get()).await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    if !a.balance.payable.is_positive() {
        return see_other("/bills");
    }
    let card = q.card.filter(|c| !c.trim().is_empty() && c.len() <= 200);
    render(&pay_page(
        &state,
        &csrf.0,
        &a,
        card,
        PayForm {
            choice: "all".into(),
            ..PayForm::default()
        },
        Problems::default(),
    ))
}

/// Pays: once per form key, whatever the number of clicks or tabs.
#[handler]
pub(crate) async fn pay(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    CheckedForm(f): CheckedForm<PayForm>,
) -> Response {
    let a = match state.billing.account(&acting.actor, None, rid.get()).await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let amount = if f.choice == "other" {
        f.amount.clone()
    } else {
        a.balance.payable.plain()
    };
    // A key used before answers its payment, so "all" is read from the first payment's
    // amount when the balance has moved since (a second tab after the first paid).
    let amount = a
        .ledger
        .payment_by_key(&f.key)
        .filter(|_| f.choice != "other")
        .map_or(amount, |p| p.amount.plain());
    match state
        .billing
        .pay(&acting.actor, None, &f.key, &amount, &f.card, rid.get())
        .await
    {
        Ok(paid) => see_other(&format!("/bills/payments/{}", paid.payment.id)),
        Err(e @ (BillingError::Amount(_) | BillingError::Money(_))) => {
            let status = status_of(&e);
            let card = Some(f.card.clone()).filter(|c| !c.is_empty());
            with_status(
                render(&pay_page(
                    &state,
                    &csrf.0,
                    &a,
                    card,
                    f,
                    Problems::one("amount", e.to_string()),
                )),
                status,
            )
        }
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "bill_payment.html")]
struct PaymentPage {
    p: PaymentRow,
    owed: String,
    credit: bool,
    may_pay: bool,
}

/// One payment: the receipt, or why it took nothing.
#[handler]
pub(crate) async fn payment(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    match addressed_payment(&state, &acting, &rid, &id).await {
        Ok((a, p)) => render(&PaymentPage {
            p: payment_row(&p, &a, zone(&state, &acting).await),
            owed: owed_words(&a.balance),
            credit: a.balance.owed.is_negative(),
            may_pay: a.balance.payable.is_positive(),
        }),
        Err(e) => failed(e),
    }
}

/// The statement a page's address names, when the actor may see it.
async fn addressed_statement(
    state: &WebState,
    acting: &Acting,
    rid: &crate::RequestId,
    id: &str,
) -> Result<(salus_domain::patient::Patient, Statement), BillingError> {
    let id = StatementId::parse(id).map_err(|_| BillingError::NotFound)?;
    state.billing.statement(&acting.actor, id, rid.get()).await
}

/// The payment a page's address names, with its account, when the actor may see it.
async fn addressed_payment(
    state: &WebState,
    acting: &Acting,
    rid: &crate::RequestId,
    id: &str,
) -> Result<(Account, Payment), BillingError> {
    let id = PaymentId::parse(id).map_err(|_| BillingError::NotFound)?;
    state.billing.payment(&acting.actor, id, rid.get()).await
}

/// A billing document of `chart` as a PDF download: `make` lays it out under the cover.
async fn pdf_download(
    state: &WebState,
    chart: &salus_domain::patient::Patient,
    title: &str,
    file: &str,
    make: impl FnOnce(&salus_pdf::Cover) -> Vec<u8>,
) -> Response {
    match state.billing.organization_of(chart).await {
        Ok(org) => {
            let cover = salus_pdf::Cover::new(title, chart, &org, state.billing.now());
            crate::download::download(poem::Body::from_vec(make(&cover)), "application/pdf", file)
        }
        Err(e) => failed(e),
    }
}

/// A statement as a PDF (to print or keep).
#[handler]
pub(crate) async fn statement_pdf(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let (chart, s) = match addressed_statement(&state, &acting, &rid, &id).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    pdf_download(
        &state,
        &chart,
        &format!("Statement {}", s.number),
        &format!("statement-{}.pdf", s.number),
        |cover| salus_pdf::statement(cover, &s),
    )
    .await
}

/// A receipt as a PDF; a payment that took nothing has none.
#[handler]
pub(crate) async fn receipt_pdf(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let (a, p) = match addressed_payment(&state, &acting, &rid, &id).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    if !p.state.charged() {
        return failed(BillingError::NotFound);
    }
    let day = p.created_at.date_naive();
    pdf_download(
        &state,
        &a.patient,
        "Receipt",
        &format!("receipt-{day}.pdf"),
        |cover| salus_pdf::receipt(cover, &p, a.balance.owed),
    )
    .await
}

// ---- Billing staff ----

#[derive(Template)]
#[template(path = "staff_billing.html")]
struct StaffHome<'a> {
    csrf: &'a str,
    mrn: String,
    currency: String,
    min_instalment: String,
    problems: Problems,
    notice: Option<String>,
    /// An import's problems, by row and column.
    rows: Vec<salus_domain::billing::RowProblem>,
}

#[derive(Deserialize, Default)]
pub(crate) struct FindForm {
    #[serde(default)]
    mrn: String,
}

impl Refill for FindForm {}

#[derive(Deserialize, Default)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    currency: String,
    #[serde(default)]
    min_instalment: String,
}

impl Refill for SettingsForm {}

async fn staff_home(
    state: &WebState,
    csrf: &str,
    acting: &Acting,
    mrn: String,
    problems: Problems,
    (notice, rows): (Option<String>, Vec<salus_domain::billing::RowProblem>),
) -> Response {
    match state.billing.settings(&acting.actor).await {
        Ok(s) => render(&StaffHome {
            csrf,
            mrn,
            currency: s.currency.code().to_owned(),
            min_instalment: s.min_instalment.plain(),
            problems,
            notice,
            rows,
        }),
        Err(e) => failed(e),
    }
}

/// The billing staff's start: find an account by record number; the settings.
#[handler]
pub(crate) async fn staff_home_page(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("settings")).then(|| "Settings saved.".to_owned());
    staff_home(
        &state,
        &csrf.0,
        &acting,
        String::new(),
        Problems::default(),
        (notice, Vec::new()),
    )
    .await
}

/// Finds an account by record number (sent in the body, never in the address).
#[handler]
pub(crate) async fn staff_find(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    CheckedForm(f): CheckedForm<FindForm>,
) -> Response {
    match state
        .billing
        .account_by_mrn(&acting.actor, &f.mrn, rid.get())
        .await
    {
        Ok(a) => see_other(&format!("/staff/billing/patients/{}", a.patient.id)),
        Err(BillingError::NotFound) => with_status(
            staff_home(
                &state,
                &csrf.0,
                &acting,
                f.mrn,
                Problems::one(
                    "mrn",
                    "No patient of your organisation has this record number.",
                ),
                (None, Vec::new()),
            )
            .await,
            StatusCode::NOT_FOUND,
        ),
        Err(e) => failed(e),
    }
}

/// Saves the organisation's currency and smallest instalment.
#[handler]
pub(crate) async fn staff_settings(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    CheckedForm(f): CheckedForm<SettingsForm>,
) -> Response {
    match state
        .billing
        .set_settings(&acting.actor, &f.currency, &f.min_instalment)
        .await
    {
        Ok(_) => see_other("/staff/billing?done=settings"),
        Err(
            e @ (BillingError::Money(_) | BillingError::Amount(_) | BillingError::Input { .. }),
        ) => {
            let field = if e.code() == "unknown_currency" || e.code() == "currency_in_use" {
                "currency"
            } else {
                "min_instalment"
            };
            with_status(
                staff_home(
                    &state,
                    &csrf.0,
                    &acting,
                    String::new(),
                    Problems::one(field, e.to_string()),
                    (None, Vec::new()),
                )
                .await,
                status_of(&e),
            )
        }
        Err(e) => failed(e),
    }
}

/// What the billing start page says about a file that could not be imported.
async fn import_refused(
    state: &WebState,
    csrf: &str,
    acting: &Acting,
    message: String,
    rows: Vec<salus_domain::billing::RowProblem>,
) -> Response {
    with_status(
        staff_home(
            state,
            csrf,
            acting,
            String::new(),
            Problems::one("file", message),
            (None, rows),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
}

/// Imports the statements of a CSV file: all, or none with every problem by row.
#[handler]
pub(crate) async fn staff_import(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    CheckedFiles { files, .. }: CheckedFiles<crate::session::NoFields>,
) -> Response {
    let Some(file) = files.first() else {
        return import_refused(
            &state,
            &csrf.0,
            &acting,
            "Choose the CSV file to import.".into(),
            Vec::new(),
        )
        .await;
    };
    let Ok(text) = std::str::from_utf8(&file.content) else {
        return import_refused(
            &state,
            &csrf.0,
            &acting,
            "The file is not text (UTF-8 CSV).".into(),
            Vec::new(),
        )
        .await;
    };
    match state
        .billing
        .import_statements(&acting.actor, text, rid.get())
        .await
    {
        Ok(r) => {
            let notice = format!(
                "Imported {} statement(s) with {} line(s).",
                r.statements, r.lines
            );
            staff_home(
                &state,
                &csrf.0,
                &acting,
                String::new(),
                Problems::default(),
                (Some(notice), Vec::new()),
            )
            .await
        }
        Err(BillingError::Rows(rows)) => {
            let message = format!(
                "Nothing was imported: {} problem(s) in the file, listed below.",
                rows.len()
            );
            import_refused(&state, &csrf.0, &acting, message, rows).await
        }
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "staff_billing_account.html")]
struct StaffAccountPage<'a> {
    csrf: &'a str,
    a: AccountView,
    statement: StatementForm,
    adjustment: AdjustmentForm,
    problems: Problems,
    notice: Option<&'static str>,
}

/// The statement form: its fields, and its line rows' fields in order.
#[derive(Default)]
pub(crate) struct StatementForm {
    number: String,
    issued: String,
    due: String,
    date: Vec<String>,
    description: Vec<String>,
    charge: Vec<String>,
    insurance: Vec<String>,
    adjusted: Vec<String>,
    share: Vec<String>,
}

impl StatementForm {
    /// The form as sent: the line rows' fields repeat, one of each per row.
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "number" => f.number = value,
                "issued" => f.issued = value,
                "due" => f.due = value,
                "date" => f.date.push(value),
                "description" => f.description.push(value),
                "charge" => f.charge.push(value),
                "insurance" => f.insurance.push(value),
                "adjusted" => f.adjusted.push(value),
                "share" => f.share.push(value),
                _ => {}
            }
        }
        f
    }

    /// The form's line rows (at least three, for typing into).
    fn rows(&self) -> Vec<[String; 6]> {
        let n = self.description.len().max(3);
        let at = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
        (0..n)
            .map(|i| {
                [
                    at(&self.date, i),
                    at(&self.description, i),
                    at(&self.charge, i),
                    at(&self.insurance, i),
                    at(&self.adjusted, i),
                    at(&self.share, i),
                ]
            })
            .collect()
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct AdjustmentForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

impl Refill for AdjustmentForm {}

#[derive(Deserialize, Default)]
pub(crate) struct RefundForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

impl Refill for RefundForm {}

/// The staff's account page, with what a form left (or fresh forms).
async fn account_page(
    rid: &crate::RequestId,
    state: &WebState,
    csrf: &str,
    acting: &Acting,
    patient: PatientId,
    forms: (StatementForm, AdjustmentForm),
    (problems, notice): (Problems, Option<&'static str>),
) -> Response {
    match state
        .billing
        .account(&acting.actor, Some(patient), rid.get())
        .await
    {
        Ok(a) => render(&StaffAccountPage {
            csrf,
            a: account_view(&a, zone(state, acting).await),
            statement: forms.0,
            adjustment: forms.1,
            problems,
            notice,
        }),
        Err(e) => failed(e),
    }
}

fn chart_of(id: &str) -> Result<PatientId, BillingError> {
    PatientId::parse(id).map_err(|_| BillingError::NotFound)
}

/// A patient's account, for billing staff.
#[handler]
pub(crate) async fn staff_account(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let patient = match chart_of(&id) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let notice = match q.done.as_deref() {
        Some("statement") => Some("Statement posted."),
        Some("adjusted") => Some("Balance adjusted."),
        Some("refunded") => Some("Refund sent to the card processor."),
        _ => None,
    };
    account_page(
        &rid,
        &state,
        &csrf.0,
        &acting,
        patient,
        (StatementForm::default(), AdjustmentForm::default()),
        (Problems::default(), notice),
    )
    .await
}

/// Posts a statement from the staff's form (empty line rows are left out).
#[handler]
pub(crate) async fn staff_post_statement(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(pairs): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let f = StatementForm::from_pairs(pairs);
    let patient = match chart_of(&id) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let date = |text: &str, field: &'static str| {
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| Problems::one(field, "Give the date as YYYY-MM-DD."))
    };
    let draft = (|| {
        let mut lines = Vec::new();
        for row in f.rows() {
            if row.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            lines.push(LineDraft {
                service_date: date(&row[0], "lines")?,
                description: row[1].clone(),
                charge: row[2].clone(),
                insurance_paid: row[3].clone(),
                adjustments: row[4].clone(),
                patient_share: row[5].clone(),
            });
        }
        Ok::<_, Problems>(StatementDraft {
            number: f.number.clone(),
            issued: date(&f.issued, "issued")?,
            due: date(&f.due, "due")?,
            lines,
        })
    })();
    let refused = |problems: Problems, status, f: StatementForm| {
        let (rid, state, csrf, acting) = (&rid, &state, &csrf.0, &acting);
        async move {
            with_status(
                account_page(
                    rid,
                    state,
                    csrf,
                    acting,
                    patient,
                    (f, AdjustmentForm::default()),
                    (problems, None),
                )
                .await,
                status,
            )
        }
    };
    let draft = match draft {
        Ok(d) => d,
        Err(p) => return refused(p, StatusCode::BAD_REQUEST, f).await,
    };
    match state
        .billing
        .post_statement(&acting.actor, patient, &draft, rid.get())
        .await
    {
        Ok(_) => see_other(&format!("/staff/billing/patients/{patient}?done=statement")),
        Err(
            e @ (BillingError::Statement(_) | BillingError::Input { .. } | BillingError::Money(_)),
        ) => {
            let field = match e.code() {
                "invalid_statement_number" | "statement_exists" => "number",
                "due_before_issued" => "due",
                _ => "lines",
            };
            let status = status_of(&e);
            refused(Problems::one(field, e.to_string()), status, f).await
        }
        Err(e) => failed(e),
    }
}

/// Adjusts a balance with a reason.
#[handler]
pub(crate) async fn staff_adjust(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<AdjustmentForm>,
) -> Response {
    let patient = match chart_of(&id) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let draft = AdjustmentDraft {
        credit: f.kind != "charge",
        amount: f.amount.clone(),
        reason: f.reason.clone(),
    };
    match state
        .billing
        .adjust(&acting.actor, patient, &draft, rid.get())
        .await
    {
        Ok(_) => see_other(&format!("/staff/billing/patients/{patient}?done=adjusted")),
        Err(
            e @ (BillingError::Amount(_) | BillingError::Money(_) | BillingError::Input { .. }),
        ) => {
            let field = if e.code() == "invalid_reason" {
                "adjust-reason"
            } else {
                "adjust-amount"
            };
            let status = status_of(&e);
            with_status(
                account_page(
                    &rid,
                    &state,
                    &csrf.0,
                    &acting,
                    patient,
                    (StatementForm::default(), f),
                    (Problems::one(field, e.to_string()), None),
                )
                .await,
                status,
            )
        }
        Err(e) => failed(e),
    }
}

/// Refunds (part of) a payment, once per form key.
#[handler]
pub(crate) async fn staff_refund(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<RefundForm>,
) -> Response {
    let Ok(id) = PaymentId::parse(&id) else {
        return failed(BillingError::NotFound);
    };
    let draft = RefundDraft {
        key: f.key,
        amount: f.amount,
        reason: f.reason,
    };
    match state
        .billing
        .refund(&acting.actor, id, &draft, rid.get())
        .await
    {
        Ok(r) => see_other(&format!(
            "/staff/billing/patients/{}?done=refunded",
            r.patient
        )),
        Err(
            e @ (BillingError::Amount(_) | BillingError::Money(_) | BillingError::Input { .. }),
        ) => {
            let patient = match state.billing.payment(&acting.actor, id, rid.get()).await {
                Ok((a, _)) => a.patient.id,
                Err(e) => return failed(e),
            };
            let status = status_of(&e);
            with_status(
                account_page(
                    &rid,
                    &state,
                    &csrf.0,
                    &acting,
                    patient,
                    (StatementForm::default(), AdjustmentForm::default()),
                    (Problems::one("refunds", e.to_string()), None),
                )
                .await,
                status,
            )
        }
        Err(e) => failed(e),
    }
}
