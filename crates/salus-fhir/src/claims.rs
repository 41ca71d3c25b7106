//! Adjudicated claims -> statements (bill pay). A `Claim` is what the organisation billed; its
//! `ExplanationOfBenefit` says what insurance made of it. Each claim with an explanation
//! becomes one statement, numbered `C-{claim id}`, dated when it was adjudicated and due 30
//! days later, with one line per billed service:
//! - a service the explanation adjudicated (it has a `net`): the charge submitted, what the
//!   insurer paid the provider, the patient's coinsurance and deductible as their share, and
//!   the rest (allowed less than submitted) as adjustments;
//! - the visit itself (the item that names the encounter, whose charge is the claim's
//!   submitted total and which the explanation leaves unadjudicated): the patient's to pay
//!   when they had no insurance ("NO_INSURANCE"), else written off as not billed to them;
//! - items that only name a diagnosis are not services and make no line.
//!
//! A claim without an explanation (not adjudicated yet: Synthea's pharmacy claims) makes no
//! statement. Amounts are read from the JSON text, rounded to cents half away from zero, and
//! never pass through floating point.

use crate::json::{array, first, str_at};
use chrono::NaiveDate;
use salus_domain::billing::{Currency, LineItem, Money, MoneyError, Statement};
use salus_domain::{OrganizationId, PatientId, StatementId};
use serde_json::Value;

/// Days from a statement's date to its due date.
const DUE_DAYS: i64 = 30;

/// The claim an explanation of benefit is about: its id (the last segment of `claim`).
pub(crate) fn claim_of(eob: &Value) -> Option<&str> {
    let reference = str_at(eob.get("claim")?, "reference")?;
    reference.rsplit([':', '/']).next()
}

fn amount(v: Option<&Value>, currency: Currency) -> Result<Money, MoneyError> {
    match v.and_then(|a| a.get("value")) {
        Some(Value::Number(n)) => Money::parse_rounded(&n.to_string(), currency),
        Some(_) => Err(MoneyError::NotAnAmount),
        None => Ok(Money::zero(currency)),
    }
}

/// The adjudicated amount of the item whose category code ends with `code`.
fn adjudicated(item: &Value, code: &str, currency: Currency) -> Result<Money, MoneyError> {
    let found = array(item, "adjudication").find(|a| {
        a.get("category")
            .and_then(|c| first(c, "coding"))
            .and_then(|c| str_at(c, "code"))
            .is_some_and(|c| c.ends_with(code))
    });
    amount(found.and_then(|a| a.get("amount")), currency)
}

fn date_of(text: Option<&str>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text?.get(..10)?, "%Y-%m-%d").ok()
}

fn description(item: &Value) -> Option<String> {
    let service = item.get("productOrService")?;
    let text = str_at(service, "text")
        .or_else(|| first(service, "coding").and_then(|c| str_at(c, "display")))?;
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The statement of an explanation of benefit, or `None` when it makes none (no billed
/// service, an unusable claim id or date, amounts that do not add up, another currency than
/// its lines').
pub(crate) fn statement_of(
    eob: &Value,
    id: StatementId,
    organization: OrganizationId,
    patient: PatientId,
) -> Option<Statement> {
    let total = first(eob, "total").and_then(|t| t.get("amount"));
    let currency =
        Currency::parse(total.and_then(|t| str_at(t, "currency")).unwrap_or("USD")).ok()?;
    let number = format!("C-{}", claim_of(eob)?);
    let issued = date_of(str_at(eob, "created"))?;
    let self_pay = array(eob, "insurance").any(|i| {
        i.get("coverage")
            .and_then(|c| str_at(c, "display"))
            .is_some_and(|d| d == "NO_INSURANCE")
    });
    let zero = Money::zero(currency);
    let mut items = Vec::new();
    for item in array(eob, "item") {
        let service_date = date_of(
            item.get("servicedPeriod")
                .and_then(|p| str_at(p, "start"))
                .or_else(|| str_at(item, "servicedDate")),
        )
        .unwrap_or(issued);
        let line = if item.get("net").is_some() {
            let charge = match adjudicated(item, "line_sbmtd_chrg_amt", currency).ok()? {
                m if m.is_positive() => m,
                _ => amount(item.get("net"), currency).ok()?,
            };
            let insurance_paid = adjudicated(item, "line_prvdr_pmt_amt", currency).ok()?;
            let owed = adjudicated(item, "line_coinsrnc_amt", currency)
                .ok()?
                .plus(adjudicated(item, "line_bene_ptb_ddctbl_amt", currency).ok()?)
                .ok()?;
            // Rounding each amount to the cent may leave the parts a cent over the charge:
            // the patient's share gives way.
            let room = charge.minus(insurance_paid).ok()?;
            let patient_share = if owed.compare(room).ok()?.is_gt() {
                room
            } else {
                owed
            };
            LineItem {
                service_date,
                description: description(item)?,
                charge,
                insurance_paid,
                adjustments: room.minus(patient_share).ok()?,
                patient_share,
            }
        } else if item.get("encounter").is_some() {
            let charge = amount(total, currency).ok()?;
            LineItem {
                service_date,
                description: description(item)?,
                charge,
                insurance_paid: zero,
                adjustments: if self_pay { zero } else { charge },
                patient_share: if self_pay { charge } else { zero },
            }
        } else {
            continue;
        };
        items.push(line);
    }
    let statement = Statement {
        id,
        organization,
        patient,
        number,
        issued,
        due: issued + chrono::Duration::days(DUE_DAYS),
        currency,
        items,
    };
    statement.check().is_ok().then_some(statement)
}
