//! The bill-pay use cases with mocked ports: the balance, who may pay or keep an account, a
//! key used twice, a stale account, no answer, a decline, reconciliation, refunds and
//! adjustments.

use super::gateway::MockPaymentGateway;
use super::*;
use crate::access::{Action, Actor, GrantScope};
use crate::account::{MockAccountRepository, MockMailer, OutgoingEmail, StaffRole};
use crate::audit::{AccessEvent, MockAccessLog, Outcome};
use crate::clock::FixedClock;
use crate::ids::{AccountId, IdGenerator, OrganizationId, PatientId, PaymentId, RefundId};
use crate::patient::{AdministrativeSex, MockPatientRepository, Patient, PersonName};
use crate::text::Mrn;
use chrono::{Duration, NaiveDate, TimeZone};
use futures_executor::block_on;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
const OTHER_ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(2));
const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
const ANN_ACCOUNT: AccountId = AccountId::from_uuid(Uuid::from_u128(20));
const KEY: &str = "key-0000001";

#[derive(Debug)]
struct Ids;
impl IdGenerator for Ids {
    fn next_uuid(&self) -> Uuid {
        Uuid::from_u128(999)
    }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

fn ann() -> Actor {
    Actor::Patient {
        account: ANN_ACCOUNT,
        patient: ANN,
    }
}

fn staff(role: StaffRole, organization: OrganizationId) -> Actor {
    Actor::Staff {
        account: AccountId::from_uuid(Uuid::from_u128(21)),
        role,
        organization,
    }
}

fn proxy(actions: &[Action]) -> Actor {
    Actor::Proxy {
        account: AccountId::from_uuid(Uuid::from_u128(22)),
        grant: crate::ids::GrantId::from_uuid(Uuid::from_u128(23)),
        patient: ANN,
        scope: GrantScope {
            kinds: [crate::record::RecordKind::Encounter].into(),
            actions: actions.iter().copied().collect(),
            labels: crate::record::SensitivityLabels::empty(),
            valid_from: now() - Duration::days(1),
            valid_until: now() + Duration::days(1),
        },
    }
}

fn chart(organization: OrganizationId) -> Patient {
    Patient {
        id: ANN,
        organization_id: organization,
        mrn: Mrn::parse("MRN1").unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
        sex: AdministrativeSex::Female,
        contact: crate::patient::ContactDetails::default(),
        source_identifier: None,
    }
}

fn ann_account() -> crate::account::Account {
    use crate::account::{AccountState, ChartLink, PasswordHash, Role};
    use crate::text::Email;
    crate::account::Account {
        id: ANN_ACCOUNT,
        email: Email::parse("ann@example.test").unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state: AccountState::Active { verified_at: now() },
        chart: ChartLink::Linked { patient: ANN },
        password: PasswordHash::new("$argon2id$stored"),
        created_at: now(),
    }
}

fn statement(share: i64) -> Statement {
    let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    Statement {
        id: crate::ids::StatementId::from_uuid(Uuid::from_u128(30)),
        organization: ORG,
        patient: ANN,
        number: "S-1".into(),
        issued: d,
        due: d,
        currency: Currency::USD,
        items: vec![LineItem {
            service_date: d,
            description: "Office visit".into(),
            charge: usd(share + 5_000),
            insurance_paid: usd(5_000),
            adjustments: usd(0),
            patient_share: usd(share),
        }],
    }
}

fn payment(n: u128, key: &str, minor: i64, state: PaymentState) -> Payment {
    Payment {
        id: PaymentId::from_uuid(Uuid::from_u128(n)),
        organization: ORG,
        patient: ANN,
        key: key.into(),
        amount: usd(minor),
        state,
        created_at: now() - Duration::hours(1),
        made_by: Some(ANN_ACCOUNT),
    }
}

fn succeeded(reference: &str) -> PaymentState {
    PaymentState::Succeeded {
        at: now() - Duration::hours(1),
        reference: reference.into(),
    }
}

type Kept = Arc<Mutex<Vec<AccessEvent>>>;
type Mails = Arc<Mutex<Vec<OutgoingEmail>>>;

/// A service over `billing` and `gateway`, whose chart is of `organization`, keeping its
/// audit entries and emails.
fn service(
    mut billing: MockBillingRepository,
    gateway: MockPaymentGateway,
    organization: OrganizationId,
) -> (BillingService, Kept, Mails) {
    billing.expect_settings().returning(|_| Ok(None));
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    let mut log = MockAccessLog::new();
    log.expect_record().returning(move |e| {
        k.lock().unwrap().push(e);
        Ok(())
    });
    let mut patients = MockPatientRepository::new();
    patients
        .expect_find()
        .returning(move |_| Ok(Some(chart(organization))));
    patients
        .expect_find_by_mrn()
        .returning(move |_, _| Ok(Some(chart(organization))));
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    let mut mailer = MockMailer::new();
    mailer.expect_send().returning(move |e| {
        m.lock().unwrap().push(e);
        Ok(())
    });
    let mut accounts = MockAccountRepository::new();
    accounts
        .expect_linked_to()
        .returning(|_| Ok(vec![ann_account()]));
    let s = BillingService::new(BillingPorts {
        billing: Arc::new(billing),
        patients: Arc::new(patients),
        organizations: Arc::new(crate::organization::MockOrganizationRepository::new()),
        gateway: Arc::new(gateway),
        log: Arc::new(log),
        clock: Arc::new(FixedClock::new(now())),
        ids: Arc::new(Ids),
        accounts: Arc::new(accounts),
        mailer: Arc::new(mailer),
        public_url: "https://portal.example.test".into(),
    });
    (s, kept, mails)
}

fn codes(kept: &Kept) -> Vec<(&'static str, Outcome)> {
    kept.lock()
        .unwrap()
        .iter()
        .map(|e| (e.action_code(), e.outcome))
        .collect()
}

#[test]
fn the_balance_counts_payments_refunds_and_adjustments_and_holds_back_pending() {
    let ledger = Ledger {
        version: 7,
        statements: vec![statement(10_000)],
        payments: vec![
            payment(1, "a", 3_000, succeeded("ch_1")),
            payment(2, "b", 2_000, PaymentState::Pending),
            payment(
                3,
                "c",
                5_000,
                PaymentState::Declined {
                    at: now(),
                    reason: DeclineReason::Declined,
                },
            ),
        ],
        refunds: vec![Refund {
            id: RefundId::from_uuid(Uuid::from_u128(4)),
            payment: PaymentId::from_uuid(Uuid::from_u128(1)),
            organization: ORG,
            patient: ANN,
            key: "r".into(),
            amount: usd(1_000),
            reason: "Paid twice".into(),
            by: ANN_ACCOUNT,
            created_at: now(),
            state: succeeded("rf_1"),
        }],
        adjustments: vec![Adjustment {
            id: crate::ids::AdjustmentId::from_uuid(Uuid::from_u128(5)),
            organization: ORG,
            patient: ANN,
            amount: usd(-500),
            reason: "Courtesy".into(),
            by: ANN_ACCOUNT,
            at: now(),
        }],
        plans: Vec::new(),
    };
    let b = ledger.balance(Currency::USD).unwrap();
    assert_eq!(b.billed, usd(10_000));
    assert_eq!(b.paid, usd(3_000), "the declined payment took nothing");
    assert_eq!(b.owed, usd(10_000 - 3_000 + 1_000 - 500));
    assert_eq!(b.pending, usd(2_000));
    assert_eq!(b.payable, usd(7_500 - 2_000));
    assert_eq!(
        ledger.refundable(&ledger.payments[0]).unwrap(),
        usd(2_000),
        "what is left of the payment"
    );
    assert_eq!(ledger.refundable(&ledger.payments[2]).unwrap(), usd(0));
    assert_eq!(
        ledger.balance(Currency::parse("EUR").unwrap()),
        Err(MoneyError::CurrencyMismatch)
    );
}

fn ledger_with(payments: Vec<Payment>) -> Ledger {
    Ledger {
        version: 3,
        statements: vec![statement(10_000)],
        payments,
        ..Ledger::default()
    }
}

#[test]
fn a_key_used_again_answers_the_first_payment_and_charges_nothing() {
    let mut billing = MockBillingRepository::new();
    billing
        .expect_ledger()
        .returning(|_| Ok(ledger_with(vec![payment(1, KEY, 2_000, succeeded("ch_1"))])));
    billing.expect_record_payment().never();
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_charge().never();
    let (s, _, mails) = service(billing, gateway, ORG);
    let again = block_on(s.pay(&ann(), None, KEY, "20.00", "tok", None)).unwrap();
    assert!(!again.new);
    assert_eq!(again.payment.id, PaymentId::from_uuid(Uuid::from_u128(1)));
    let other = block_on(s.pay(&ann(), None, KEY, "30", "tok", None)).unwrap_err();
    assert_eq!(other.code(), "idempotency_key_reused");
    assert!(mails.lock().unwrap().is_empty());
}

#[test]
fn a_payment_recorded_while_the_account_moved_is_checked_again_then_charged_once() {
    let mut billing = MockBillingRepository::new();
    billing
        .expect_ledger()
        .returning(|_| Ok(ledger_with(Vec::new())));
    let tries = Arc::new(Mutex::new(0));
    let t = tries.clone();
    billing
        .expect_record_payment()
        .returning(move |p, version| {
            assert_eq!(version, 3);
            assert_eq!(p.state, PaymentState::Pending, "recorded before charging");
            let mut n = t.lock().unwrap();
            *n += 1;
            Ok(if *n == 1 {
                Recorded::Stale
            } else {
                Recorded::Recorded
            })
        });
    billing
        .expect_settle_payment()
        .times(1)
        .withf(|_, state| state.charged())
        .returning(|_, _| Ok(true));
    let mut gateway = MockPaymentGateway::new();
    gateway
        .expect_charge()
        .times(1)
        .withf(|r| r.key == "pay-00000000-0000-0000-0000-0000000003e7" && r.amount == usd(2_500))
        .returning(|_| PaymentOutcome::Succeeded {
            reference: "ch_9".into(),
        });
    let (s, kept, mails) = service(billing, gateway, ORG);
    let paid = block_on(s.pay(&ann(), None, KEY, "25", "tok_x", Some("rq"))).unwrap();
    assert!(paid.new);
    assert!(paid.payment.state.charged());
    assert_eq!(*tries.lock().unwrap(), 2);
    assert_eq!(codes(&kept), vec![("pay_bill", Outcome::Allowed)]);
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "Payment received");
    assert!(
        !mails[0].body.contains("25"),
        "the email names no amount: {}",
        mails[0].body
    );
}

#[test]
fn no_answer_leaves_the_payment_pending_and_a_decline_takes_nothing() {
    for (outcome, settled) in [
        (PaymentOutcome::NoAnswer, false),
        (
            PaymentOutcome::Declined(DeclineReason::InsufficientFunds),
            true,
        ),
    ] {
        let mut billing = MockBillingRepository::new();
        billing
            .expect_ledger()
            .returning(|_| Ok(ledger_with(Vec::new())));
        billing
            .expect_record_payment()
            .returning(|_, _| Ok(Recorded::Recorded));
        billing
            .expect_settle_payment()
            .times(usize::from(settled))
            .withf(|_, s| matches!(s, PaymentState::Declined { .. }))
            .returning(|_, _| Ok(true));
        let mut gateway = MockPaymentGateway::new();
        let o = outcome.clone();
        gateway.expect_charge().returning(move |_| o.clone());
        let (s, _, mails) = service(billing, gateway, ORG);
        let paid = block_on(s.pay(&ann(), None, KEY, "10.00", "tok", None)).unwrap();
        assert_eq!(
            paid.payment.state == PaymentState::Pending,
            !settled,
            "{outcome:?}"
        );
        assert!(
            mails.lock().unwrap().is_empty(),
            "only receipts are emailed"
        );
    }
}

#[test]
fn amounts_are_checked_against_what_may_be_paid_before_anything_is_recorded() {
    let mut billing = MockBillingRepository::new();
    billing.expect_ledger().returning(|_| {
        Ok(ledger_with(vec![payment(
            1,
            "earlier-key",
            4_000,
            PaymentState::Pending,
        )]))
    });
    billing.expect_record_payment().never();
    let (s, _, _) = service(billing, MockPaymentGateway::new(), ORG);
    for (amount, code) in [
        ("60.01", "amount_above_balance"),
        ("0", "amount_not_positive"),
        ("1.005", "too_many_decimals"),
        ("ten", "invalid_amount"),
    ] {
        let err = block_on(s.pay(&ann(), None, KEY, amount, "tok", None)).unwrap_err();
        assert_eq!(err.code(), code);
    }
    for (key, token, code) in [
        ("short", "tok", "invalid_idempotency_key"),
        ("key with space", "tok", "invalid_idempotency_key"),
        (KEY, " ", "invalid_card_token"),
    ] {
        let err = block_on(s.pay(&ann(), None, key, "1", token, None)).unwrap_err();
        assert_eq!(err.code(), code);
    }
}

#[test]
fn the_patient_and_a_proxy_with_the_grant_pay_no_one_else_does() {
    let mut billing = MockBillingRepository::new();
    billing
        .expect_ledger()
        .returning(|_| Ok(ledger_with(Vec::new())));
    let (s, kept, _) = service(billing, MockPaymentGateway::new(), ORG);
    assert!(block_on(s.account(&ann(), None, None)).is_ok());
    assert!(block_on(s.account(&proxy(&[Action::PayBills]), None, None)).is_ok());
    let err = block_on(s.account(&proxy(&[Action::Message]), None, None)).unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        codes(&kept),
        vec![
            ("view_bills", Outcome::Allowed),
            ("view_bills", Outcome::Allowed),
            ("view_bills", Outcome::Denied),
        ]
    );
    let billing_staff = staff(StaffRole::Billing, ORG);
    assert!(block_on(s.account(&billing_staff, Some(ANN), None)).is_ok());
    let err = block_on(s.pay(&billing_staff, Some(ANN), KEY, "1", "t", None)).unwrap_err();
    assert_eq!(err.code(), "forbidden", "staff never pay");
    for actor in [
        staff(StaffRole::Clinician, ORG),
        staff(StaffRole::FrontDesk, ORG),
        staff(StaffRole::Billing, OTHER_ORG),
    ] {
        let err = block_on(s.account(&actor, Some(ANN), None)).unwrap_err();
        assert_eq!(err.code(), "not_found", "{actor:?}");
    }
    let err = block_on(s.account_by_mrn(&ann(), "MRN1", None)).unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

#[test]
fn reconciliation_settles_by_the_processors_answer_and_leaves_the_unanswered() {
    let mut billing = MockBillingRepository::new();
    billing.expect_pending_payments().returning(|_| {
        Ok(vec![
            payment(1, "k1", 100, PaymentState::Pending),
            payment(2, "k2", 200, PaymentState::Pending),
            payment(3, "k3", 300, PaymentState::Pending),
        ])
    });
    billing
        .expect_pending_refunds()
        .returning(|_| Ok(Vec::new()));
    let settled = Arc::new(Mutex::new(Vec::new()));
    let s2 = settled.clone();
    billing.expect_settle_payment().returning(move |id, state| {
        s2.lock().unwrap().push((id, state.clone()));
        Ok(true)
    });
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_lookup().returning(|key| {
        if key.ends_with('1') {
            Some(PaymentOutcome::Succeeded {
                reference: "ch_1".into(),
            })
        } else if key.ends_with('2') {
            None
        } else {
            Some(PaymentOutcome::NoAnswer)
        }
    });
    let (s, _, mails) = service(billing, gateway, ORG);
    let report = block_on(s.reconcile(Duration::minutes(2))).unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            settled: 2,
            still_pending: 1
        }
    );
    let settled = settled.lock().unwrap();
    assert!(settled[0].1.charged(), "found charged");
    assert!(
        matches!(settled[1].1, PaymentState::Failed { .. }),
        "never received: nothing taken"
    );
    assert_eq!(mails.lock().unwrap().len(), 1, "the found charge's receipt");
}

#[test]
fn refunds_take_at_most_what_is_left_of_a_payment_that_took_money() {
    let mut billing = MockBillingRepository::new();
    let paid = payment(1, "k1", 3_000, succeeded("ch_1"));
    let declined = payment(
        2,
        "k2",
        3_000,
        PaymentState::Failed {
            at: now() - Duration::hours(1),
        },
    );
    let (p1, p2) = (paid.clone(), declined.clone());
    billing
        .expect_payment()
        .returning(move |id| Ok(Some(if id == p1.id { p1.clone() } else { p2.clone() })));
    let all = vec![paid.clone(), declined.clone()];
    billing
        .expect_ledger()
        .returning(move |_| Ok(ledger_with(all.clone())));
    billing
        .expect_record_refund()
        .times(1)
        .returning(|_, _| Ok(Recorded::Recorded));
    billing
        .expect_settle_refund()
        .times(1)
        .withf(|_, s| s.charged())
        .returning(|_, _| Ok(true));
    let mut gateway = MockPaymentGateway::new();
    gateway
        .expect_refund()
        .times(1)
        .withf(|_, reference, amount| reference == "ch_1" && *amount == usd(1_000))
        .returning(|_, _, _| PaymentOutcome::Succeeded {
            reference: "rf_1".into(),
        });
    let (s, kept, _) = service(billing, gateway, ORG);
    let clerk = staff(StaffRole::Billing, ORG);
    let draft = |amount: &str, reason: &str| RefundDraft {
        key: "refund-key-1".into(),
        amount: amount.into(),
        reason: reason.into(),
    };
    let err = block_on(s.refund(&clerk, paid.id, &draft("30.01", "Paid twice"), None)).unwrap_err();
    assert_eq!(err.code(), "refund_above_payment");
    let err = block_on(s.refund(&clerk, declined.id, &draft("1", "Paid twice"), None)).unwrap_err();
    assert_eq!(err.code(), "not_refundable");
    let err = block_on(s.refund(&clerk, paid.id, &draft("1", "x"), None)).unwrap_err();
    assert_eq!(err.code(), "invalid_reason");
    let err = block_on(s.refund(&ann(), paid.id, &draft("1", "Paid twice"), None)).unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let refund = block_on(s.refund(&clerk, paid.id, &draft("10", "Paid twice"), None)).unwrap();
    assert!(refund.state.charged());
    assert_eq!(codes(&kept), vec![("refund_payment", Outcome::Allowed)]);
}

#[test]
fn adjustments_carry_a_reason_and_a_sign_and_statements_name_the_bad_line() {
    let mut billing = MockBillingRepository::new();
    billing
        .expect_record_adjustment()
        .times(1)
        .withf(|a| a.amount == usd(-1_250) && a.reason == "Hardship")
        .returning(|_| Ok(()));
    billing.expect_create_statement().never();
    let (s, kept, _) = service(billing, MockPaymentGateway::new(), ORG);
    let clerk = staff(StaffRole::Billing, ORG);
    let adjustment = AdjustmentDraft {
        credit: true,
        amount: "12.50".into(),
        reason: " Hardship ".into(),
    };
    block_on(s.adjust(&clerk, ANN, &adjustment, None)).unwrap();
    assert_eq!(codes(&kept), vec![("adjust_balance", Outcome::Allowed)]);
    let err =
        block_on(s.adjust(&staff(StaffRole::FrontDesk, ORG), ANN, &adjustment, None)).unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let line = |charge: &str, share: &str| LineDraft {
        service_date: d,
        description: "Office visit".into(),
        charge: charge.into(),
        insurance_paid: "80".into(),
        adjustments: "0".into(),
        patient_share: share.into(),
    };
    for (lines, code, message) in [
        (
            vec![line("100", "20"), line("100", "twenty")],
            "invalid_amount",
            "Line 2: the patient's share",
        ),
        (vec![line("100", "21")], "line_does_not_add_up", "Line 1"),
    ] {
        let draft = StatementDraft {
            number: "S-9".into(),
            issued: d,
            due: d,
            lines,
        };
        let err = block_on(s.post_statement(&clerk, ANN, &draft, None)).unwrap_err();
        assert_eq!(err.code(), code);
        assert!(err.to_string().starts_with(message), "{err}");
    }
}
