//! The port to a card processor. Card numbers never reach Salus: the processor's own card
//! form turns a card into a token, and Salus charges the token. Every charge carries an
//! idempotency key, and the processor charges once per key whatever the number of tries; an
//! answer that does not come (a timeout) leaves the payment pending until `lookup` tells what
//! became of that key (reconciliation).

use super::money::Money;
use super::payment::PaymentOutcome;

/// A charge asked of the processor.
#[derive(Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// One per payment: a retry sends the same key.
    pub key: String,
    pub amount: Money,
    /// What the processor's card form gave for the card.
    pub card_token: String,
}

impl std::fmt::Debug for ChargeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargeRequest")
            .field("key", &self.key)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// A card processor.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charges the card once for this key: a second call with the key answers the first
    /// outcome and charges nothing more. `NoAnswer` when the processor did not answer in
    /// time (the charge may or may not have happened: ask `lookup` later).
    async fn charge(&self, request: &ChargeRequest) -> PaymentOutcome;

    /// What became of the charge (or refund) with this key: its outcome; `None` when the
    /// processor never received it (then nothing was charged); `Some(NoAnswer)` when the
    /// processor did not answer the question itself (ask again later).
    async fn lookup(&self, key: &str) -> Option<PaymentOutcome>;

    /// Refunds `amount` of the charge `reference`, once per `key`.
    async fn refund(&self, key: &str, reference: &str, amount: Money) -> PaymentOutcome;
}
