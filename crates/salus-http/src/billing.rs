//! Bills: the patient's side (or a proxy who may pay bills) sees the balance, statements and
//! payments and pays; billing staff find an account, post statements, adjust balances,
//! refund payments and set the organisation's currency. Amounts are strings of the
//! currency's decimal form ("12.50"), read and written without floating point.

use crate::consent::body;
use crate::error::{ApiError, ErrorBody};
use crate::records::request_id;
use crate::session::SessionToken;
use chrono::{DateTime, NaiveDate, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json, PlainText};
use poem_openapi::{ApiRequest, ApiResponse, Enum, Object, OpenApi, Tags};
use salus_domain::billing::{
    Account, Adjustment, AdjustmentDraft, BillingError, BillingService, LineDraft, Money, Payment,
    PaymentProblem, PaymentState, Plan, PlanProblem, PlanState, Refund, RefundDraft, Statement,
    StatementDraft,
};
use salus_domain::{PatientId, PaymentId, PlanId, StatementId};

#[derive(Tags)]
enum ApiTags {
    /// Bills: balance, statements, payments (once per `Idempotency-Key`), receipts, and the
    /// billing staff's statements, adjustments and refunds.
    Billing,
}

#[derive(ApiResponse)]
pub(crate) enum Answer<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// The answer; for a payment, the payment this key made before (charged once).
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Paid, posted or refunded.
    #[oai(status = 201)]
    Created(Json<T>),
    /// Done (a plan stopped).
    #[oai(status = 204)]
    Done,
    /// Sent to the processor without an answer yet: the payment is pending until
    /// reconciled (look at it again later; do not pay again).
    #[oai(status = 202)]
    Pending(Json<T>),
    /// `invalid_amount`, `too_many_decimals`, `amount_too_large`, `amount_not_positive`,
    /// `invalid_idempotency_key`, `invalid_card_token`, `invalid_reason`,
    /// `line_does_not_add_up`, `negative_amount`, `invalid_description`, `no_lines`,
    /// `invalid_statement_number`, `due_before_issued`, `unknown_currency`, `invalid_date`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// The card took nothing: `card_declined`, `insufficient_funds`, `card_expired`,
    /// `processor_error`. The balance is unchanged.
    #[oai(status = 402)]
    NotPaid(Json<ErrorBody>),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such account, statement or payment, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `amount_above_balance`, `nothing_owed`, `idempotency_key_reused`, `statement_exists`,
    /// `not_refundable`, `refund_above_payment`, `currency_in_use`, `currency_mismatch`,
    /// `try_again`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

pub(crate) fn refused<T: poem_openapi::types::ToJSON + Send + Sync>(
    e: BillingError,
) -> Result<Answer<T>, ApiError> {
    let b = body(e.code(), &e.to_string());
    Ok(match e {
        BillingError::NotFound => Answer::NotFound(b),
        BillingError::Forbidden => Answer::Forbidden(b),
        BillingError::Plan(PlanProblem::Exists | PlanProblem::Ended | PlanProblem::NothingOwed) => {
            Answer::Conflict(b)
        }
        BillingError::Plan(_) => Answer::Invalid(b),
        BillingError::Amount(PaymentProblem::AboveBalance | PaymentProblem::NothingOwed)
        | BillingError::Money(salus_domain::billing::MoneyError::CurrencyMismatch)
        | BillingError::KeyReused
        | BillingError::Busy => Answer::Conflict(b),
        BillingError::Input {
            code: "statement_exists" | "not_refundable" | "refund_above_payment" | "currency_in_use",
            ..
        } => Answer::Conflict(b),
        BillingError::Amount(_)
        | BillingError::Money(_)
        | BillingError::Statement(_)
        | BillingError::InvalidKey
        | BillingError::InvalidCardToken
        | BillingError::Input { .. }
        | BillingError::Rows(_) => Answer::Invalid(b),
        BillingError::Repo(r) => return Err(r.into()),
    })
}

macro_rules! actor_or {
    ($token:expr) => {
        match $token.actor() {
            Ok(a) => a,
            Err(_) => return refused(BillingError::Forbidden),
        }
    };
}

/// An id from a path or body: a malformed one is "not found", like a missing one.
macro_rules! id_or {
    ($ty:ty, $text:expr) => {
        match <$ty>::parse($text) {
            Ok(id) => id,
            Err(_) => return refused(BillingError::NotFound),
        }
    };
}

/// An optional chart named by staff (`patient_id`); the patient's side names none.
fn chart(patient_id: Option<&str>) -> Result<Option<PatientId>, BillingError> {
    patient_id
        .map(|p| PatientId::parse(p).map_err(|_| BillingError::NotFound))
        .transpose()
}

fn date(text: &str) -> Result<NaiveDate, BillingError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| BillingError::Input {
        code: "invalid_date",
        message: "Give dates as YYYY-MM-DD.",
    })
}

/// The balance and what it is made of, as amounts of the account's currency.
#[derive(Object)]
pub struct BalanceDto {
    /// What is owed now (negative: a credit).
    pub owed: String,
    /// What may be paid now: owed less pending payments.
    pub payable: String,
    pub pending: String,
    /// The statements' patient shares.
    pub billed: String,
    pub paid: String,
    pub refunded: String,
    /// Staff adjustments, signed.
    pub adjusted: String,
}

#[derive(Object)]
pub struct StatementSummaryDto {
    pub id: String,
    pub number: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub charges: String,
    pub insurance_paid: String,
    pub adjustments: String,
    /// What the patient owes for it.
    pub patient_share: String,
}

#[derive(Object)]
pub struct LineDto {
    pub service_date: NaiveDate,
    pub description: String,
    pub charge: String,
    pub insurance_paid: String,
    pub adjustments: String,
    pub patient_share: String,
}

#[derive(Object)]
pub struct StatementDto {
    pub id: String,
    pub patient_id: String,
    pub number: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    pub currency: String,
    pub lines: Vec<LineDto>,
    pub totals: StatementSummaryDto,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum PaymentStateDto {
    Pending,
    Succeeded,
    Declined,
    Failed,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PaymentDto {
    pub id: String,
    pub amount: String,
    pub currency: String,
    pub state: PaymentStateDto,
    /// Why it took nothing (`card_declined`, `insufficient_funds`, `card_expired`,
    /// `processor_error`), in `message` in words.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The processor's reference of a succeeded payment (on the receipt).
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[derive(Object)]
pub struct RefundDto {
    pub id: String,
    pub payment_id: String,
    pub amount: String,
    pub state: PaymentStateDto,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Object)]
pub struct AdjustmentDto {
    pub id: String,
    /// Signed: negative lowered what is owed.
    pub amount: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Object)]
pub struct AccountDto {
    pub patient_id: String,
    /// Staff only: who the account is of.
    #[oai(skip_serializing_if_is_none)]
    pub patient_name: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub mrn: Option<String>,
    pub currency: String,
    pub balance: BalanceDto,
    /// Newest first.
    pub statements: Vec<StatementSummaryDto>,
    pub payments: Vec<PaymentDto>,
    pub refunds: Vec<RefundDto>,
    pub adjustments: Vec<AdjustmentDto>,
    /// Payment plans, newest first.
    pub plans: Vec<PlanDto>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum PlanStateDto {
    Active,
    Completed,
    /// An instalment failed twice (`failed_instalment`); nothing more is charged.
    Failed,
    Cancelled,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PlanDto {
    pub id: String,
    pub state: PlanStateDto,
    /// What the plan pays off.
    pub total: String,
    pub instalments: u8,
    /// Each instalment's amount, in order.
    pub amounts: Vec<String>,
    /// Instalments charged so far.
    pub paid: u8,
    /// When the next one is due (an active plan).
    pub next_due: Option<NaiveDate>,
    pub failed_instalment: Option<u8>,
}

fn state_dto(s: &PaymentState) -> PaymentStateDto {
    match s {
        PaymentState::Pending => PaymentStateDto::Pending,
        PaymentState::Succeeded { .. } => PaymentStateDto::Succeeded,
        PaymentState::Declined { .. } => PaymentStateDto::Declined,
        PaymentState::Failed { .. } => PaymentStateDto::Failed,
    }
}

/// Why a payment took nothing: its code and the patient's sentence.
fn not_paid(state: &PaymentState) -> Option<(&'static str, &'static str)> {
    match state {
        PaymentState::Declined { reason, .. } => Some((reason.code(), reason.sentence())),
        PaymentState::Failed { .. } => Some((
            "processor_error",
            "The card processor could not take the payment. Nothing was charged; try again later.",
        )),
        PaymentState::Pending | PaymentState::Succeeded { .. } => None,
    }
}

fn payment_dto(p: &Payment) -> PaymentDto {
    let why = not_paid(&p.state);
    PaymentDto {
        id: p.id.to_string(),
        amount: p.amount.plain(),
        currency: p.amount.currency().code().to_owned(),
        state: state_dto(&p.state),
        reason: why.map(|(c, _)| c.to_owned()),
        message: why.map(|(_, m)| m.to_owned()),
        reference: match &p.state {
            PaymentState::Succeeded { reference, .. } => Some(reference.clone()),
            _ => None,
        },
        created_at: p.created_at,
        settled_at: p.state.settled_at(),
    }
}

fn refund_dto(r: &Refund) -> RefundDto {
    RefundDto {
        id: r.id.to_string(),
        payment_id: r.payment.to_string(),
        amount: r.amount.plain(),
        state: state_dto(&r.state),
        reason: r.reason.clone(),
        created_at: r.created_at,
    }
}

fn adjustment_dto(a: &Adjustment) -> AdjustmentDto {
    AdjustmentDto {
        id: a.id.to_string(),
        amount: a.amount.plain(),
        reason: a.reason.clone(),
        at: a.at,
    }
}

fn summary_dto(s: &Statement) -> Result<StatementSummaryDto, BillingError> {
    let t = s.totals()?;
    Ok(StatementSummaryDto {
        id: s.id.to_string(),
        number: s.number.clone(),
        issued: s.issued,
        due: s.due,
        charges: t.charges.plain(),
        insurance_paid: t.insurance_paid.plain(),
        adjustments: t.adjustments.plain(),
        patient_share: t.patient_share.plain(),
    })
}

fn statement_dto(s: &Statement) -> Result<StatementDto, BillingError> {
    Ok(StatementDto {
        id: s.id.to_string(),
        patient_id: s.patient.to_string(),
        number: s.number.clone(),
        issued: s.issued,
        due: s.due,
        currency: s.currency.code().to_owned(),
        lines: s
            .items
            .iter()
            .map(|l| LineDto {
                service_date: l.service_date,
                description: l.description.clone(),
                charge: l.charge.plain(),
                insurance_paid: l.insurance_paid.plain(),
                adjustments: l.adjustments.plain(),
                patient_share: l.patient_share.plain(),
            })
            .collect(),
        totals: summary_dto(s)?,
    })
}

fn account_dto(a: &Account, staff: bool) -> Result<AccountDto, BillingError> {
    let b = &a.balance;
    let plain = |m: Money| m.plain();
    Ok(AccountDto {
        patient_id: a.patient.id.to_string(),
        patient_name: staff.then(|| a.patient.name.full()),
        mrn: staff.then(|| a.patient.mrn.as_str().to_owned()),
        currency: a.settings.currency.code().to_owned(),
        balance: BalanceDto {
            owed: plain(b.owed),
            payable: plain(b.payable),
            pending: plain(b.pending),
            billed: plain(b.billed),
            paid: plain(b.paid),
            refunded: plain(b.refunded),
            adjusted: plain(b.adjusted),
        },
        statements: a
            .ledger
            .statements
            .iter()
            .map(summary_dto)
            .collect::<Result<_, _>>()?,
        payments: a.ledger.payments.iter().map(payment_dto).collect(),
        refunds: a.ledger.refunds.iter().map(refund_dto).collect(),
        adjustments: a.ledger.adjustments.iter().map(adjustment_dto).collect(),
        plans: a.ledger.plans.iter().map(|p| plan_dto(a, p)).collect(),
    })
}

fn plan_dto(a: &Account, p: &Plan) -> PlanDto {
    let paid = a
        .ledger
        .plan_payments(p)
        .iter()
        .filter(|(_, _, s)| s.charged())
        .count();
    let paid = u8::try_from(paid).unwrap_or(u8::MAX);
    PlanDto {
        id: p.id.to_string(),
        state: match p.state {
            PlanState::Active => PlanStateDto::Active,
            PlanState::Completed { .. } => PlanStateDto::Completed,
            PlanState::Failed { .. } => PlanStateDto::Failed,
            PlanState::Cancelled { .. } => PlanStateDto::Cancelled,
        },
        total: p.total.plain(),
        instalments: p.instalments,
        amounts: p.amounts().iter().map(|m| m.plain()).collect(),
        paid,
        next_due: (p.state == PlanState::Active && paid < p.instalments).then(|| p.due(paid + 1)),
        failed_instalment: match p.state {
            PlanState::Failed { instalment, .. } => Some(instalment),
            _ => None,
        },
    }
}

#[derive(Object)]
pub struct PlanInput {
    /// 3 to 12 monthly instalments of what may be paid now, the first today.
    pub instalments: u8,
    /// The processor's reusable reference of the card (see `docs/payments.md`).
    pub card_token: String,
    pub patient_id: Option<String>,
}

#[derive(Object)]
pub struct PayInput {
    /// The amount, in the account's currency ("45.10"): above zero, not above `payable`.
    pub amount: String,
    /// What the processor's card form gave for the card (the sandbox's test tokens are in
    /// `docs/payments.md`). Never a card number.
    pub card_token: String,
    /// Not used by the patient's side (a proxy acts for the chart of its grant).
    pub patient_id: Option<String>,
}

#[derive(Object)]
pub struct LineInput {
    /// YYYY-MM-DD.
    pub service_date: String,
    pub description: String,
    pub charge: String,
    pub insurance_paid: String,
    pub adjustments: String,
    pub patient_share: String,
}

#[derive(Object)]
pub struct StatementInput {
    pub patient_id: String,
    /// The organisation's own number: 1 to 40 letters, digits or dashes, unique.
    pub number: String,
    /// YYYY-MM-DD.
    pub issued: String,
    /// YYYY-MM-DD, not before `issued`.
    pub due: String,
    pub lines: Vec<LineInput>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// Lowers what is owed (a write-off, a discount).
    Credit,
    /// Raises what is owed (a charge corrected).
    Charge,
}

#[derive(Object)]
pub struct AdjustmentInput {
    pub patient_id: String,
    pub kind: AdjustmentKind,
    /// Above zero.
    pub amount: String,
    /// 3 to 300 characters; the patient sees it.
    pub reason: String,
}

#[derive(Object)]
pub struct RefundInput {
    /// Above zero, not above what is left of the payment.
    pub amount: String,
    /// 3 to 300 characters.
    pub reason: String,
}

#[derive(Object)]
pub struct SettingsDto {
    /// ISO 4217 code.
    pub currency: String,
    /// The smallest instalment of a payment plan.
    pub min_instalment: String,
}

/// A practice-management export: one row per line item, the first row naming the columns
/// `mrn, statement_number, issued, due, service_date, description, charge, insurance_paid,
/// adjustments, patient_share` (any order). Rows of one statement number make one statement.
#[derive(ApiRequest)]
pub enum CsvRequest {
    #[oai(content_type = "text/csv")]
    Csv(PlainText<String>),
}

#[derive(Object, Debug)]
pub struct ImportDto {
    pub statements: u64,
    pub lines: u64,
}

#[derive(Object, Debug)]
pub struct RowProblemDto {
    /// The file's row (the header is row 1).
    pub row: u64,
    pub column: String,
    pub code: String,
    pub message: String,
}

#[derive(Object, Debug)]
pub struct RowsErrorBody {
    /// `invalid_rows`.
    pub code: String,
    pub message: String,
    /// Every problem (at most 200), by row and column.
    pub rows: Vec<RowProblemDto>,
}

#[derive(ApiResponse, Debug)]
pub enum ImportAnswer {
    /// Stored: every statement of the file.
    #[oai(status = 201)]
    Created(Json<ImportDto>),
    /// `invalid_rows`: nothing was stored; each problem by row and column.
    #[oai(status = 400)]
    Invalid(Json<RowsErrorBody>),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub(crate) enum PdfAnswer {
    /// The PDF; `Content-Disposition` names the file.
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
    ),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such statement or paid payment, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

fn pdf_refused(e: BillingError) -> Result<PdfAnswer, ApiError> {
    let b = body(e.code(), &e.to_string());
    match e {
        BillingError::Repo(r) => Err(r.into()),
        BillingError::Forbidden => Ok(PdfAnswer::Forbidden(b)),
        _ => Ok(PdfAnswer::NotFound(b)),
    }
}

pub struct BillingApi {
    pub(crate) billing: BillingService,
}

impl BillingApi {
    /// A billing document of `chart` as a PDF named `file`: `make` lays it out under the cover.
    async fn pdf(
        &self,
        chart: &salus_domain::patient::Patient,
        title: &str,
        file: &str,
        make: impl FnOnce(&salus_pdf::Cover) -> Vec<u8>,
    ) -> Result<PdfAnswer, ApiError> {
        match self.billing.organization_of(chart).await {
            Ok(org) => {
                let cover = salus_pdf::Cover::new(title, chart, &org, self.billing.now());
                Ok(PdfAnswer::Pdf(
                    Binary(make(&cover)),
                    format!("attachment; filename=\"{file}\""),
                ))
            }
            Err(e) => pdf_refused(e),
        }
    }
}

#[OpenApi(tag = "ApiTags::Billing")]
impl BillingApi {
    /// Your balance (staff: `patient_id`'s), statements, payments, refunds and adjustments.
    #[oai(
        path = "/v1/billing/account",
        method = "get",
        operation_id = "getBillingAccount"
    )]
    async fn account(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<Answer<AccountDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = match chart(patient_id.0.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        let staff = matches!(actor, salus_domain::access::Actor::Staff { .. });
        match self
            .billing
            .account(&actor, patient, request_id(req).as_deref())
            .await
            .and_then(|a| account_dto(&a, staff))
        {
            Ok(a) => Ok(Answer::Ok(Json(a))),
            Err(e) => refused(e),
        }
    }

    /// One statement with its lines.
    #[oai(
        path = "/v1/billing/statements/:id",
        method = "get",
        operation_id = "getStatement"
    )]
    async fn statement(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<StatementDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(StatementId, &id.0);
        match self
            .billing
            .statement(&actor, id, request_id(req).as_deref())
            .await
            .and_then(|(_, s)| statement_dto(&s))
        {
            Ok(s) => Ok(Answer::Ok(Json(s))),
            Err(e) => refused(e),
        }
    }

    /// Pays an amount of your balance with a card token, once per `Idempotency-Key`: the same
    /// key again (a retry, a second tab) answers the first payment and charges nothing more.
    /// `201` paid, `202` pending (no answer from the processor yet), `402` the card took
    /// nothing (the balance is unchanged).
    #[oai(
        path = "/v1/billing/payments",
        method = "post",
        operation_id = "payBill"
    )]
    async fn pay(
        &self,
        req: &Request,
        token: SessionToken,
        #[oai(name = "Idempotency-Key")] key: Header<Option<String>>,
        b: Json<PayInput>,
    ) -> Result<Answer<PaymentDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = match chart(b.0.patient_id.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        let key = key.0.unwrap_or_default();
        match self
            .billing
            .pay(
                &actor,
                patient,
                &key,
                &b.0.amount,
                &b.0.card_token,
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(paid) => Ok(payment_answer(&paid.payment, paid.new)),
            Err(e) => refused(e),
        }
    }

    /// One statement as a PDF.
    #[oai(
        path = "/v1/billing/statements/:id/pdf",
        method = "get",
        operation_id = "getStatementPdf"
    )]
    async fn statement_pdf(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<PdfAnswer, ApiError> {
        let Ok(actor) = token.actor() else {
            return pdf_refused(BillingError::Forbidden);
        };
        let Ok(id) = StatementId::parse(&id.0) else {
            return pdf_refused(BillingError::NotFound);
        };
        let (chart, s) = match self
            .billing
            .statement(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(v) => v,
            Err(e) => return pdf_refused(e),
        };
        self.pdf(
            &chart,
            &format!("Statement {}", s.number),
            &format!("statement-{}.pdf", s.number),
            |cover| salus_pdf::statement(cover, &s),
        )
        .await
    }

    /// The receipt of a payment that succeeded, as a PDF.
    #[oai(
        path = "/v1/billing/payments/:id/receipt",
        method = "get",
        operation_id = "getReceiptPdf"
    )]
    async fn receipt_pdf(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<PdfAnswer, ApiError> {
        let Ok(actor) = token.actor() else {
            return pdf_refused(BillingError::Forbidden);
        };
        let Ok(id) = PaymentId::parse(&id.0) else {
            return pdf_refused(BillingError::NotFound);
        };
        let (a, p) = match self
            .billing
            .payment(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(v) if v.1.state.charged() => v,
            Ok(_) => return pdf_refused(BillingError::NotFound),
            Err(e) => return pdf_refused(e),
        };
        let file = format!("receipt-{}.pdf", p.created_at.date_naive());
        self.pdf(&a.patient, "Receipt", &file, |cover| {
            salus_pdf::receipt(cover, &p, a.balance.owed)
        })
        .await
    }

    /// Splits what may be paid now over 3–12 monthly instalments charged to a card, the first
    /// today; each instalment is charged once, a failed one is tried again the next day, and
    /// a second failure stops the plan. One plan at a time.
    #[oai(
        path = "/v1/billing/plans",
        method = "post",
        operation_id = "startPaymentPlan"
    )]
    async fn start_plan(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<PlanInput>,
    ) -> Result<Answer<PlanDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = match chart(b.0.patient_id.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        let rid = request_id(req);
        let plan = match self
            .billing
            .start_plan(
                &actor,
                patient,
                b.0.instalments,
                &b.0.card_token,
                rid.as_deref(),
            )
            .await
        {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self
            .billing
            .account(&actor, Some(plan.patient), rid.as_deref())
            .await
        {
            Ok(a) => Ok(Answer::Created(Json(plan_dto(&a, &plan)))),
            Err(e) => refused(e),
        }
    }

    /// Stops an active payment plan; instalments charged stay paid.
    #[oai(
        path = "/v1/billing/plans/:id/cancel",
        method = "post",
        operation_id = "cancelPaymentPlan"
    )]
    async fn cancel_plan(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<PlanDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(PlanId, &id.0);
        match self
            .billing
            .cancel_plan(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(Answer::Done),
            Err(e) => refused(e),
        }
    }

    /// One payment: a receipt when it succeeded, the reason when it took nothing.
    #[oai(
        path = "/v1/billing/payments/:id",
        method = "get",
        operation_id = "getPayment"
    )]
    async fn payment(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<PaymentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(PaymentId, &id.0);
        match self
            .billing
            .payment(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok((_, p)) => Ok(Answer::Ok(Json(payment_dto(&p)))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: the account of the organisation's chart with this record number.
    #[oai(
        path = "/v1/staff/billing/accounts",
        method = "get",
        operation_id = "findBillingAccount"
    )]
    async fn find(
        &self,
        req: &Request,
        token: SessionToken,
        mrn: Query<String>,
    ) -> Result<Answer<AccountDto>, ApiError> {
        let actor = actor_or!(token);
        match self
            .billing
            .account_by_mrn(&actor, &mrn.0, request_id(req).as_deref())
            .await
            .and_then(|a| account_dto(&a, true))
        {
            Ok(a) => Ok(Answer::Ok(Json(a))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: posts a statement to a patient's account, in the organisation's
    /// currency. Each line must add up: charge = insurance paid + adjustments + patient share.
    #[oai(
        path = "/v1/staff/billing/statements",
        method = "post",
        operation_id = "postStatement"
    )]
    async fn post_statement(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<StatementInput>,
    ) -> Result<Answer<StatementDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = id_or!(PatientId, &b.0.patient_id);
        let draft = match statement_draft(b.0) {
            Ok(d) => d,
            Err(e) => return refused(e),
        };
        match self
            .billing
            .post_statement(&actor, patient, &draft, request_id(req).as_deref())
            .await
            .and_then(|s| statement_dto(&s))
        {
            Ok(s) => Ok(Answer::Created(Json(s))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: adjusts a patient's balance (a credit lowers it), with a reason the
    /// patient reads.
    #[oai(
        path = "/v1/staff/billing/adjustments",
        method = "post",
        operation_id = "adjustBalance"
    )]
    async fn adjust(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<AdjustmentInput>,
    ) -> Result<Answer<AdjustmentDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = id_or!(PatientId, &b.0.patient_id);
        let draft = AdjustmentDraft {
            credit: b.0.kind == AdjustmentKind::Credit,
            amount: b.0.amount,
            reason: b.0.reason,
        };
        match self
            .billing
            .adjust(&actor, patient, &draft, request_id(req).as_deref())
            .await
        {
            Ok(a) => Ok(Answer::Created(Json(adjustment_dto(&a)))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: refunds (part of) a succeeded payment through the processor, once per
    /// `Idempotency-Key`.
    #[oai(
        path = "/v1/staff/billing/payments/:id/refunds",
        method = "post",
        operation_id = "refundPayment"
    )]
    async fn refund(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] key: Header<Option<String>>,
        b: Json<RefundInput>,
    ) -> Result<Answer<RefundDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(PaymentId, &id.0);
        let draft = RefundDraft {
            key: key.0.unwrap_or_default(),
            amount: b.0.amount,
            reason: b.0.reason,
        };
        match self
            .billing
            .refund(&actor, id, &draft, request_id(req).as_deref())
            .await
        {
            Ok(r) if r.state == PaymentState::Pending => Ok(Answer::Pending(Json(refund_dto(&r)))),
            Ok(r) => Ok(Answer::Created(Json(refund_dto(&r)))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: imports the statements of a practice-management export (CSV). Every row
    /// is checked; when any is bad nothing is stored and every problem is listed by row and
    /// column.
    #[oai(
        path = "/v1/staff/billing/imports",
        method = "post",
        operation_id = "importStatements"
    )]
    async fn import(
        &self,
        req: &Request,
        token: SessionToken,
        b: CsvRequest,
    ) -> Result<ImportAnswer, ApiError> {
        let forbidden = || {
            let e = BillingError::Forbidden;
            ImportAnswer::Forbidden(body(e.code(), &e.to_string()))
        };
        let Ok(actor) = token.actor() else {
            return Ok(forbidden());
        };
        let CsvRequest::Csv(text) = b;
        match self
            .billing
            .import_statements(&actor, &text.0, request_id(req).as_deref())
            .await
        {
            Ok(r) => Ok(ImportAnswer::Created(Json(ImportDto {
                statements: r.statements as u64,
                lines: r.lines as u64,
            }))),
            Err(BillingError::Rows(rows)) => Ok(ImportAnswer::Invalid(Json(RowsErrorBody {
                code: "invalid_rows".into(),
                message: format!(
                    "Nothing was imported: {} problem(s) in the file.",
                    rows.len()
                ),
                rows: rows
                    .into_iter()
                    .map(|p| RowProblemDto {
                        row: p.row as u64,
                        column: p.column.to_owned(),
                        code: p.code.to_owned(),
                        message: p.message,
                    })
                    .collect(),
            }))),
            Err(BillingError::Repo(r)) => Err(r.into()),
            Err(_) => Ok(forbidden()),
        }
    }

    /// Billing staff: the organisation's currency and smallest plan instalment.
    #[oai(
        path = "/v1/staff/billing/settings",
        method = "get",
        operation_id = "getBillingSettings"
    )]
    async fn settings(&self, token: SessionToken) -> Result<Answer<SettingsDto>, ApiError> {
        let actor = actor_or!(token);
        match self.billing.settings(&actor).await {
            Ok(s) => Ok(Answer::Ok(Json(SettingsDto {
                currency: s.currency.code().to_owned(),
                min_instalment: s.min_instalment.plain(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Billing staff: sets the currency (only while no statement was posted) and the
    /// smallest plan instalment.
    #[oai(
        path = "/v1/staff/billing/settings",
        method = "put",
        operation_id = "setBillingSettings"
    )]
    async fn set_settings(
        &self,
        token: SessionToken,
        b: Json<SettingsDto>,
    ) -> Result<Answer<SettingsDto>, ApiError> {
        let actor = actor_or!(token);
        match self
            .billing
            .set_settings(&actor, &b.0.currency, &b.0.min_instalment)
            .await
        {
            Ok(s) => Ok(Answer::Ok(Json(SettingsDto {
                currency: s.currency.code().to_owned(),
                min_instalment: s.min_instalment.plain(),
            }))),
            Err(e) => refused(e),
        }
    }
}

/// The answer to a payment: created (or, for a key used before, the first answer again),
/// pending, or not paid with the reason.
fn payment_answer(p: &Payment, new: bool) -> Answer<PaymentDto> {
    if let Some((code, message)) = not_paid(&p.state) {
        return Answer::NotPaid(body(code, message));
    }
    match (&p.state, new) {
        (PaymentState::Pending, _) => Answer::Pending(Json(payment_dto(p))),
        (_, true) => Answer::Created(Json(payment_dto(p))),
        (_, false) => Answer::Ok(Json(payment_dto(p))),
    }
}

fn statement_draft(b: StatementInput) -> Result<StatementDraft, BillingError> {
    let mut lines = Vec::with_capacity(b.lines.len());
    for l in b.lines {
        lines.push(LineDraft {
            service_date: date(&l.service_date)?,
            description: l.description,
            charge: l.charge,
            insurance_paid: l.insurance_paid,
            adjustments: l.adjustments,
            patient_share: l.patient_share,
        });
    }
    Ok(StatementDraft {
        number: b.number,
        issued: date(&b.issued)?,
        due: date(&b.due)?,
        lines,
    })
}
