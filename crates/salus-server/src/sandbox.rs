//! The sandbox card processor: what `PaymentGateway` answers on a machine with no real
//! processor. Its test cards (documented in `docs/payments.md`) each give one outcome; it
//! charges once per idempotency key, answers after a configurable delay, and keeps its ledger
//! in memory (a restart forgets it, as a real processor never would: the durability of
//! payments across a crash is Salus's side, tested against a processor that remembers).

use salus_domain::billing::{ChargeRequest, DeclineReason, Money, PaymentGateway, PaymentOutcome};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The sandbox's test cards: number, the token its card form gives, and what a charge does.
pub const TEST_CARDS: [(&str, &str, &str); 5] = [
    ("4242 4242 4242 4242", "tok_sandbox_success", "succeeds"),
    ("4000 0000 0000 0002", "tok_sandbox_declined", "is declined"),
    (
        "4000 0000 0000 9995",
        "tok_sandbox_insufficient_funds",
        "is declined for insufficient funds",
    ),
    (
        "4000 0000 0000 0119",
        "tok_sandbox_processor_error",
        "fails at the processor (nothing charged)",
    ),
    (
        "4000 0000 0000 3220",
        "tok_sandbox_no_answer",
        "is charged, but the answer never comes (the payment stays pending until reconciled)",
    ),
];

/// The token the sandbox's card form gives for a test card number (spaces allowed); `None`
/// for any other number.
pub fn token_for(card_number: &str) -> Option<&'static str> {
    let digits: String = card_number.chars().filter(char::is_ascii_digit).collect();
    TEST_CARDS
        .iter()
        .find(|(number, _, _)| number.replace(' ', "") == digits)
        .map(|(_, token, _)| *token)
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct SandboxGateway {
    delay: Duration,
    /// Outcome of each charge and refund key, as the processor would keep it.
    ledger: Mutex<HashMap<String, PaymentOutcome>>,
    /// How many charges actually took money (for tests: never two for one key).
    charged: Mutex<u64>,
}

impl SandboxGateway {
    /// A sandbox that answers after `delay`.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// How many charges took money so far.
    pub fn charges_made(&self) -> u64 {
        *self
            .charged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, HashMap<String, PaymentOutcome>> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the card of `token` does, and what the processor keeps for it.
    fn decide(&self, key: &str, token: &str) -> (PaymentOutcome, PaymentOutcome) {
        let kept = |o: PaymentOutcome| (o.clone(), o);
        match token {
            "tok_sandbox_success" => kept(PaymentOutcome::Succeeded {
                reference: format!("sbx_ch_{key}"),
            }),
            "tok_sandbox_declined" => kept(PaymentOutcome::Declined(DeclineReason::Declined)),
            "tok_sandbox_insufficient_funds" => {
                kept(PaymentOutcome::Declined(DeclineReason::InsufficientFunds))
            }
            // Charged on the processor's side; the answer is lost on the way back.
            "tok_sandbox_no_answer" => (
                PaymentOutcome::NoAnswer,
                PaymentOutcome::Succeeded {
                    reference: format!("sbx_ch_{key}"),
                },
            ),
            // A token this processor never issued, or its processor-error card.
            _ => kept(PaymentOutcome::Failed),
        }
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SandboxGateway {
    async fn charge(&self, request: &ChargeRequest) -> PaymentOutcome {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut ledger = self.ledger();
        if let Some(first) = ledger.get(&request.key) {
            return first.clone();
        }
        let (answer, kept) = self.decide(&request.key, &request.card_token);
        if matches!(kept, PaymentOutcome::Succeeded { .. }) && request.amount.is_positive() {
            *self
                .charged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        }
        ledger.insert(request.key.clone(), kept);
        answer
    }

    async fn lookup(&self, key: &str) -> Option<PaymentOutcome> {
        self.ledger().get(key).cloned()
    }

    async fn refund(&self, key: &str, reference: &str, amount: Money) -> PaymentOutcome {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut ledger = self.ledger();
        if let Some(first) = ledger.get(key) {
            return first.clone();
        }
        let known = ledger
            .values()
            .any(|o| matches!(o, PaymentOutcome::Succeeded { reference: r } if r == reference));
        let outcome = if known && amount.is_positive() {
            PaymentOutcome::Succeeded {
                reference: format!("sbx_re_{key}"),
            }
        } else {
            PaymentOutcome::Failed
        };
        ledger.insert(key.to_owned(), outcome.clone());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salus_domain::billing::Currency;

    fn charge(key: &str, card: &str) -> ChargeRequest {
        ChargeRequest {
            key: key.into(),
            amount: Money::new(5_000, Currency::USD),
            card_token: token_for(card).unwrap_or("tok_unknown").into(),
        }
    }

    #[tokio::test]
    async fn each_test_card_gives_its_outcome_and_a_key_is_charged_once() {
        let sandbox = SandboxGateway::new(Duration::ZERO);
        let paid = sandbox.charge(&charge("k1", "4242 4242 4242 4242")).await;
        assert_eq!(
            paid,
            PaymentOutcome::Succeeded {
                reference: "sbx_ch_k1".into()
            }
        );
        // A retry, a double click, a second tab: the same answer, no second charge.
        for _ in 0..3 {
            assert_eq!(
                sandbox.charge(&charge("k1", "4242424242424242")).await,
                paid
            );
        }
        assert_eq!(sandbox.charges_made(), 1);
        for (key, card, outcome) in [
            (
                "k2",
                "4000 0000 0000 0002",
                PaymentOutcome::Declined(DeclineReason::Declined),
            ),
            (
                "k3",
                "4000 0000 0000 9995",
                PaymentOutcome::Declined(DeclineReason::InsufficientFunds),
            ),
            ("k4", "4000 0000 0000 0119", PaymentOutcome::Failed),
            ("k5", "5555 5555 5555 4444", PaymentOutcome::Failed),
        ] {
            assert_eq!(sandbox.charge(&charge(key, card)).await, outcome, "{card}");
        }
        assert_eq!(
            sandbox.charges_made(),
            1,
            "declines and failures take nothing"
        );
    }

    #[tokio::test]
    async fn an_answer_lost_on_the_way_is_found_by_its_key_and_refunds_go_once() {
        let sandbox = SandboxGateway::new(Duration::ZERO);
        let lost = sandbox.charge(&charge("k1", "4000 0000 0000 3220")).await;
        assert_eq!(lost, PaymentOutcome::NoAnswer);
        let found = sandbox.lookup("k1").await;
        assert_eq!(
            found,
            Some(PaymentOutcome::Succeeded {
                reference: "sbx_ch_k1".into()
            }),
            "the charge happened"
        );
        assert_eq!(sandbox.charges_made(), 1);
        assert_eq!(sandbox.lookup("never-sent").await, None);
        let refund = sandbox
            .refund("r1", "sbx_ch_k1", Money::new(1_000, Currency::USD))
            .await;
        assert!(matches!(refund, PaymentOutcome::Succeeded { .. }));
        assert_eq!(
            sandbox
                .refund("r1", "sbx_ch_k1", Money::new(1_000, Currency::USD))
                .await,
            refund,
            "the same refund key refunds once"
        );
        assert_eq!(
            sandbox
                .refund("r2", "sbx_ch_nothing", Money::new(1_000, Currency::USD))
                .await,
            PaymentOutcome::Failed
        );
    }

    /// A lower bound only: the answer never comes before the delay.
    #[tokio::test]
    async fn the_sandbox_answers_after_its_delay() {
        let sandbox = SandboxGateway::new(Duration::from_millis(30));
        let started = std::time::Instant::now();
        sandbox.charge(&charge("k1", "4242 4242 4242 4242")).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
