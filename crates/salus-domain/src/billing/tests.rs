//! The billing rules: money read and written without floats, lines and statements that add
//! up, the amount a payment may take, and the payment's one legal path.

use super::*;
use crate::ids::{OrganizationId, PatientId, StatementId};
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

#[test]
fn amounts_are_read_digit_by_digit_in_the_currencys_minor_units() {
    let jpy = Currency::parse("JPY").unwrap();
    for (text, currency, minor) in [
        ("12", Currency::USD, 1200),
        ("12.5", Currency::USD, 1250),
        ("12.50", Currency::USD, 1250),
        ("1,234.05", Currency::USD, 123_405),
        (".99", Currency::USD, 99),
        ("-5", Currency::USD, -500),
        ("1200", jpy, 1200),
    ] {
        assert_eq!(
            Money::parse(text, currency).unwrap().minor(),
            minor,
            "{text}"
        );
    }
    for (text, currency, code) in [
        ("12.345", Currency::USD, "too_many_decimals"),
        ("12.5", jpy, "too_many_decimals"),
        ("twelve", Currency::USD, "invalid_amount"),
        ("", Currency::USD, "invalid_amount"),
        ("12.", Currency::USD, "invalid_amount"),
        ("1e3", Currency::USD, "invalid_amount"),
        ("99999999999999999999", Currency::USD, "amount_too_large"),
    ] {
        assert_eq!(
            Money::parse(text, currency).unwrap_err().code(),
            code,
            "{text}"
        );
    }
    assert_eq!(
        Currency::parse("XYZ").unwrap_err().code(),
        "unknown_currency"
    );
}

#[test]
fn amounts_are_written_with_their_symbol_grouping_and_decimals() {
    let eur = Currency::parse("EUR").unwrap();
    let jpy = Currency::parse("JPY").unwrap();
    assert_eq!(usd(123_456_789).to_string(), "$1,234,567.89");
    assert_eq!(usd(5).to_string(), "$0.05");
    assert_eq!(usd(-500).to_string(), "-$5.00");
    assert_eq!(Money::new(1200, eur).to_string(), "€12.00");
    assert_eq!(Money::new(1200, jpy).to_string(), "¥1,200");
    assert_eq!(
        usd(1).plus(Money::new(1, eur)).unwrap_err(),
        MoneyError::CurrencyMismatch
    );
    assert_eq!(
        usd(i64::MAX).plus(usd(1)).unwrap_err(),
        MoneyError::Overflow
    );
}

fn line(charge: i64, insurance: i64, adjustments: i64, share: i64) -> LineItem {
    LineItem {
        service_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        description: "Office visit".into(),
        charge: usd(charge),
        insurance_paid: usd(insurance),
        adjustments: usd(adjustments),
        patient_share: usd(share),
    }
}

fn statement(items: Vec<LineItem>) -> Statement {
    Statement {
        id: StatementId::from_uuid(Uuid::from_u128(1)),
        organization: OrganizationId::from_uuid(Uuid::from_u128(2)),
        patient: PatientId::from_uuid(Uuid::from_u128(3)),
        number: "ST-1001".into(),
        issued: NaiveDate::from_ymd_opt(2026, 11, 5).unwrap(),
        due: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
        currency: Currency::USD,
        items,
    }
}

#[test]
fn a_statement_is_refused_when_a_line_does_not_add_up_and_says_which() {
    assert!(
        statement(vec![line(20_000, 15_000, 2_000, 3_000)])
            .check()
            .is_ok()
    );
    for (items, code) in [
        (
            vec![line(20_000, 15_000, 2_000, 3_000), line(100, 0, 0, 99)],
            "line_does_not_add_up",
        ),
        (vec![line(100, 200, -100, 0)], "negative_amount"),
        (vec![], "no_lines"),
    ] {
        assert_eq!(statement(items).check().unwrap_err().code(), code);
    }
    let wrong = statement(vec![
        line(20_000, 15_000, 2_000, 3_000),
        line(100, 0, 0, 99),
    ]);
    assert_eq!(
        wrong.check().unwrap_err(),
        StatementProblem::DoesNotAddUp { line: 2 }
    );
    let mut late = statement(vec![line(100, 0, 0, 100)]);
    late.due = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    assert_eq!(late.check().unwrap_err().code(), "due_before_issued");
    let mut odd = statement(vec![line(100, 0, 0, 100)]);
    odd.number = "ST 1001; DROP".into();
    assert_eq!(odd.check().unwrap_err().code(), "invalid_statement_number");
}

proptest! {
    /// Whatever the lines, the totals are their sums and add up like each line does.
    #[test]
    fn totals_always_add_up(lines in proptest::collection::vec((0..1_000_000_i64, 0..1_000_000_i64, 0..1_000_000_i64), 1..40)) {
        let items: Vec<LineItem> = lines
            .iter()
            .map(|(insurance, adjustments, share)| line(insurance + adjustments + share, *insurance, *adjustments, *share))
            .collect();
        let s = statement(items);
        prop_assert!(s.check().is_ok());
        let t = s.totals().unwrap();
        prop_assert_eq!(
            t.charges,
            Money::sum(Currency::USD, [t.insurance_paid, t.adjustments, t.patient_share]).unwrap()
        );
        let shares: i64 = lines.iter().map(|(_, _, share)| share).sum();
        prop_assert_eq!(t.patient_share.minor(), shares);
    }

    /// Written and read back, an amount is the same amount.
    #[test]
    fn an_amount_reads_back_as_written(minor in -10_000_000_000_i64..10_000_000_000) {
        let written = usd(minor).to_string().replace('$', "");
        prop_assert_eq!(Money::parse(&written, Currency::USD).unwrap(), usd(minor));
    }
}

#[test]
fn a_payment_is_above_zero_and_at_most_the_balance() {
    assert!(check_amount(usd(5_000), usd(5_000)).is_ok());
    assert!(check_amount(usd(1), usd(5_000)).is_ok());
    for (amount, balance, code) in [
        (usd(5_001), usd(5_000), "amount_above_balance"),
        (usd(0), usd(5_000), "amount_not_positive"),
        (usd(-1), usd(5_000), "amount_not_positive"),
        (usd(100), usd(0), "nothing_owed"),
        (
            Money::new(100, Currency::parse("EUR").unwrap()),
            usd(5_000),
            "currency_mismatch",
        ),
    ] {
        assert_eq!(check_amount(amount, balance).unwrap_err().code(), code);
    }
}

#[test]
fn a_payment_settles_once_from_pending_and_an_answer_twice_counts_once() {
    let at = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
    let ok = PaymentOutcome::Succeeded {
        reference: "sbx_1".into(),
    };
    let paid = PaymentState::Pending.settle(&ok, at).unwrap();
    assert!(paid.charged());
    assert_eq!(
        paid.settle(&ok, at),
        None,
        "a second answer changes nothing"
    );
    assert_eq!(
        paid.settle(&PaymentOutcome::Declined(DeclineReason::Declined), at),
        None
    );
    assert_eq!(
        PaymentState::Pending.settle(&PaymentOutcome::NoAnswer, at),
        None
    );
    let declined = PaymentState::Pending
        .settle(
            &PaymentOutcome::Declined(DeclineReason::InsufficientFunds),
            at,
        )
        .unwrap();
    assert!(!declined.charged());
    assert_eq!(
        declined.settle(&ok, at),
        None,
        "a declined payment is never charged later"
    );
    let failed = PaymentState::Pending
        .settle(&PaymentOutcome::Failed, at)
        .unwrap();
    assert_eq!(failed, PaymentState::Failed { at });
}

#[test]
fn no_floating_point_type_appears_in_the_billing_code() {
    for (file, source) in [
        ("mod.rs", include_str!("mod.rs")),
        ("money.rs", include_str!("money.rs")),
        ("statement.rs", include_str!("statement.rs")),
        ("payment.rs", include_str!("payment.rs")),
        ("gateway.rs", include_str!("gateway.rs")),
    ] {
        for float in ["f32", "f64"] {
            assert!(
                !source
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|word| word == float),
                "{float} in billing/{file}"
            );
        }
    }
}

#[test]
fn amounts_of_other_systems_are_rounded_to_the_minor_unit_half_away_from_zero() {
    let jpy = Currency::parse("JPY").unwrap();
    for (text, currency, minor) in [
        ("28.104000000000003", Currency::USD, 2_810),
        ("112.41600000000001", Currency::USD, 11_242),
        ("0.005", Currency::USD, 1),
        ("0.0049", Currency::USD, 0),
        ("-2.345", Currency::USD, -235),
        ("129.16", Currency::USD, 12_916),
        ("0.0", Currency::USD, 0),
        ("1200.5", jpy, 1_201),
    ] {
        assert_eq!(
            Money::parse_rounded(text, currency).unwrap().minor(),
            minor,
            "{text}"
        );
    }
    assert_eq!(
        Money::parse_rounded("1.5e-3", Currency::USD),
        Err(MoneyError::NotAnAmount)
    );
}

mod plans {
    use super::super::plan::{Plan, PlanState, Step, check_plan, next_step, split};
    use super::super::*;
    use super::usd;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn plan(total: i64, n: u8, starts: NaiveDate) -> Plan {
        Plan {
            id: crate::ids::PlanId::from_uuid(uuid::Uuid::from_u128(7)),
            organization: crate::ids::OrganizationId::from_uuid(uuid::Uuid::from_u128(1)),
            patient: crate::ids::PatientId::from_uuid(uuid::Uuid::from_u128(2)),
            total: usd(total),
            instalments: n,
            starts,
            card_token: "tok".into(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0).unwrap(),
            made_by: None,
            state: PlanState::Active,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_balance_splits_into_instalments_that_add_up_and_fall_monthly() {
        let parts = split(usd(10_000), 3).unwrap();
        assert_eq!(parts, vec![usd(3_334), usd(3_333), usd(3_333)]);
        assert_eq!(Money::sum(Currency::USD, parts).unwrap(), usd(10_000));
        for n in [2, 13, 0] {
            assert!(split(usd(10_000), n).is_err(), "{n}");
        }
        assert_eq!(
            check_plan(usd(7_000), 3, usd(2_500)).unwrap_err().code(),
            "instalment_too_small"
        );
        assert!(check_plan(usd(7_500), 3, usd(2_500)).is_ok());
        assert_eq!(
            check_plan(usd(0), 3, usd(100)).unwrap_err().code(),
            "nothing_owed"
        );
        // The 31st falls on each month's last day when the month is shorter.
        let p = plan(10_000, 3, day(2026, 1, 31));
        assert_eq!(
            (p.due(1), p.due(2), p.due(3)),
            (day(2026, 1, 31), day(2026, 2, 28), day(2026, 3, 31))
        );
        assert_eq!(p.instalment_of(&p.key(2, 1)), Some((2, 1)));
        assert_eq!(p.instalment_of("form-x-1"), None);
    }

    #[test]
    fn an_instalment_is_charged_when_due_retried_the_next_day_once_then_the_plan_stops() {
        let p = plan(9_000, 3, day(2026, 3, 1));
        let paid = PaymentState::Succeeded {
            at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
            reference: "r".into(),
        };
        let failed_on = |d: u32| PaymentState::Declined {
            at: Utc.with_ymd_and_hms(2026, 4, d, 9, 0, 0).unwrap(),
            reason: DeclineReason::InsufficientFunds,
        };
        let pending = PaymentState::Pending;
        assert_eq!(
            next_step(&p, &[], day(2026, 3, 1)),
            Step::Charge {
                number: 1,
                attempt: 1
            }
        );
        assert_eq!(
            next_step(&p, &[(1, 1, &paid)], day(2026, 3, 20)),
            Step::Wait
        );
        assert_eq!(
            next_step(&p, &[(1, 1, &paid)], day(2026, 4, 1)),
            Step::Charge {
                number: 2,
                attempt: 1
            }
        );
        assert_eq!(
            next_step(&p, &[(1, 1, &paid), (2, 1, &pending)], day(2026, 4, 2)),
            Step::Wait,
            "an attempt waiting for the processor is not tried again"
        );
        let first = failed_on(1);
        assert_eq!(
            next_step(&p, &[(1, 1, &paid), (2, 1, &first)], day(2026, 4, 1)),
            Step::Wait,
            "not again the same day"
        );
        assert_eq!(
            next_step(&p, &[(1, 1, &paid), (2, 1, &first)], day(2026, 4, 2)),
            Step::Charge {
                number: 2,
                attempt: 2
            }
        );
        let second = failed_on(2);
        assert_eq!(
            next_step(
                &p,
                &[(1, 1, &paid), (2, 1, &first), (2, 2, &second)],
                day(2026, 4, 3)
            ),
            Step::Stop { number: 2 }
        );
        assert_eq!(
            next_step(
                &p,
                &[(1, 1, &paid), (2, 1, &paid), (3, 1, &paid)],
                day(2026, 6, 1)
            ),
            Step::Done
        );
    }
}
