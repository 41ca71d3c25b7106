//! The sandbox card processor: what `PaymentGateway` answers on a machine with no real
//! processor. Its test cards (documented in `docs/payments.md`) each give one outcome; it
//! charges once per idempotency key, records the charge before it answers (after a
//! configurable delay — so a server killed in between finds the charge by reconciling), and
//! keeps its ledger in a file when given one (one line per key, synced to disk), so like a
//! real processor it remembers across restarts.

use salus_domain::billing::{ChargeRequest, DeclineReason, Money, PaymentGateway, PaymentOutcome};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
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

/// What a sandbox ledger file keeps: each key and its outcome, in order. A line cut short (a
/// crash while writing) is skipped.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn read_ledger(file: &Path) -> std::io::Result<Vec<(String, PaymentOutcome)>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let key = parts.next()?.to_owned();
            let outcome = match (parts.next()?, parts.next()) {
                ("succeeded", Some(reference)) => PaymentOutcome::Succeeded {
                    reference: reference.to_owned(),
                },
                ("declined", Some(code)) => {
                    PaymentOutcome::Declined(DeclineReason::from_code(code)?)
                }
                ("failed", None) => PaymentOutcome::Failed,
                _ => return None,
            };
            Some((key, outcome))
        })
        .collect())
}

/// The sandbox's reference of a charge (`CH`) or refund (`RE`) made under `key`: readable on
/// a receipt, one per key.
fn reference_of(kind: &str, key: &str) -> String {
    let key = key.strip_prefix("pay-").unwrap_or(key);
    format!("SBX-{kind}-{}", key.to_ascii_uppercase())
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct SandboxGateway {
    delay: Duration,
    /// Outcome of each charge and refund key, as the processor keeps it.
    ledger: Mutex<HashMap<String, PaymentOutcome>>,
    /// Where the ledger is kept, if anywhere.
    file: Option<PathBuf>,
    /// How many charges actually took money so far (for tests: never two for one key).
    charged: Mutex<u64>,
}

/// One sandbox per ledger file in a process, so every part of the server asks the same one.
static SHARED: OnceLock<Mutex<HashMap<PathBuf, Arc<SandboxGateway>>>> = OnceLock::new();

impl SandboxGateway {
    /// A sandbox that answers after `delay` and keeps its ledger in memory.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// A sandbox that keeps its ledger in `file` (created when missing), reading what an
    /// earlier run kept there.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn with_ledger(delay: Duration, file: &Path) -> std::io::Result<Self> {
        let kept = read_ledger(file)?;
        // A line cut short by a crash is ended, so the next one starts on its own.
        if std::fs::read(file).is_ok_and(|b| b.last().is_some_and(|c| *c != b'\n')) {
            std::fs::OpenOptions::new()
                .append(true)
                .open(file)?
                .write_all(b"\n")?;
        }
        let charged = kept
            .iter()
            .filter(|(key, o)| {
                key.starts_with("pay-") && matches!(o, PaymentOutcome::Succeeded { .. })
            })
            .count() as u64;
        Ok(Self {
            delay,
            ledger: Mutex::new(kept.into_iter().collect()),
            file: Some(file.to_path_buf()),
            charged: Mutex::new(charged),
        })
    }

    /// The process's sandbox of `file`, or its one in-memory sandbox when `file` is `None`
    /// (made on first use, with that call's delay): every part of the server — the pages,
    /// the API, the reconciling task — asks the same processor.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn shared(delay: Duration, file: Option<&Path>) -> std::io::Result<Arc<Self>> {
        let key = file.map(Path::to_path_buf).unwrap_or_default();
        let mut all = SHARED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(one) = all.get(&key) {
            return Ok(one.clone());
        }
        let one = Arc::new(match file {
            Some(file) => Self::with_ledger(delay, file)?,
            None => Self::new(delay),
        });
        all.insert(key, one.clone());
        Ok(one)
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

    /// Keeps `outcome` for `key`: in memory, and in the file (synced) when there is one.
    fn keep(
        &self,
        ledger: &mut HashMap<String, PaymentOutcome>,
        key: &str,
        outcome: PaymentOutcome,
    ) {
        if let Some(file) = &self.file {
            let line = match &outcome {
                PaymentOutcome::Succeeded { reference } => {
                    format!("{key}\tsucceeded\t{reference}\n")
                }
                PaymentOutcome::Declined(reason) => format!("{key}\tdeclined\t{}\n", reason.code()),
                PaymentOutcome::Failed | PaymentOutcome::NoAnswer => format!("{key}\tfailed\n"),
            };
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| {
                    f.write_all(line.as_bytes())?;
                    f.sync_data()
                });
            if let Err(e) = written {
                tracing::error!(error = %e, "the sandbox could not keep its ledger");
            }
        }
        ledger.insert(key.to_owned(), outcome);
    }

    /// What the card of `token` does, and what the processor keeps for it.
    fn decide(&self, key: &str, token: &str) -> (PaymentOutcome, PaymentOutcome) {
        let kept = |o: PaymentOutcome| (o.clone(), o);
        match token {
            "tok_sandbox_success" => kept(PaymentOutcome::Succeeded {
                reference: reference_of("CH", key),
            }),
            "tok_sandbox_declined" => kept(PaymentOutcome::Declined(DeclineReason::Declined)),
            "tok_sandbox_insufficient_funds" => {
                kept(PaymentOutcome::Declined(DeclineReason::InsufficientFunds))
            }
            // Charged on the processor's side; the answer is lost on the way back.
            "tok_sandbox_no_answer" => (
                PaymentOutcome::NoAnswer,
                PaymentOutcome::Succeeded {
                    reference: reference_of("CH", key),
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
        let answer = {
            let mut ledger = self.ledger();
            if let Some(first) = ledger.get(&request.key) {
                first.clone()
            } else {
                let (answer, kept) = self.decide(&request.key, &request.card_token);
                if matches!(kept, PaymentOutcome::Succeeded { .. }) && request.amount.is_positive()
                {
                    *self
                        .charged
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                }
                self.keep(&mut ledger, &request.key, kept);
                answer
            }
        };
        // Charged (or not) first, answered after the delay: a server that dies meanwhile
        // finds the charge by its key.
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        answer
    }

    async fn lookup(&self, key: &str) -> Option<PaymentOutcome> {
        self.ledger().get(key).cloned()
    }

    async fn refund(&self, key: &str, reference: &str, amount: Money) -> PaymentOutcome {
        let answer = {
            let mut ledger = self.ledger();
            if let Some(first) = ledger.get(key) {
                first.clone()
            } else {
                let known = ledger.values().any(
                    |o| matches!(o, PaymentOutcome::Succeeded { reference: r } if r == reference),
                );
                let outcome = if known && amount.is_positive() {
                    PaymentOutcome::Succeeded {
                        reference: reference_of("RE", key),
                    }
                } else {
                    PaymentOutcome::Failed
                };
                self.keep(&mut ledger, key, outcome.clone());
                outcome
            }
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        answer
    }
}

/// Where the sandbox's card form is served: the processor's own page, where the patient types
/// a card number and is sent back to the portal with a token (a real processor hosts this
/// page on its own site).
pub const CARD_FORM: &str = "/sandbox/card";

/// Where the card form may send the patient back to: a path of the portal, nothing else.
fn return_path(text: &str) -> Option<&str> {
    let ok = text.starts_with('/')
        && !text.starts_with("//")
        && text.len() <= 100
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b));
    ok.then_some(text)
}

#[derive(serde::Deserialize)]
struct CardQuery {
    #[serde(rename = "return", default)]
    back: String,
}

#[derive(serde::Deserialize)]
struct CardFields {
    #[serde(rename = "return", default)]
    back: String,
    #[serde(default)]
    number: String,
}

/// The sandbox processor's card page; `problem` is said above the field.
fn card_page(back: &str, problem: Option<&str>) -> poem::Response {
    use poem::IntoResponse as _;
    let rows: String = TEST_CARDS
        .iter()
        .map(|(number, _, what)| format!("<tr><td>{number}</td><td>{what}</td></tr>"))
        .collect();
    let error = problem.map_or(String::new(), |p| {
        format!(r#"<p class="field-error" id="number-error">{p}</p>"#)
    });
    let invalid = if problem.is_some() {
        r#" aria-invalid="true" aria-describedby="number-error""#
    } else {
        ""
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox card processor</title><link rel="stylesheet" href="/static/salus.css"></head>
<body><main id="main" class="sandbox">
<h1>Sandbox card processor</h1>
<p class="lead">This page stands in for your clinic's card processor. Card numbers typed here stay with the processor; the portal only receives a token.</p>
<form method="post" action="{CARD_FORM}" class="stack" novalidate>
<input type="hidden" name="return" value="{back}">
<label for="number">Card number</label>
{error}<input id="number" name="number" inputmode="numeric" autocomplete="cc-number" maxlength="23"{invalid}>
<button type="submit">Continue</button>
</form>
<p><a href="{back}">Back without a card</a></p>
<table class="records"><caption>Test cards</caption><thead><tr><th scope="col">Number</th><th scope="col">A charge</th></tr></thead><tbody>{rows}</tbody></table>
</main></body></html>"#
    );
    let mut resp = poem::web::Html(html).into_response();
    if problem.is_some() {
        resp.set_status(poem::http::StatusCode::BAD_REQUEST);
    }
    resp
}

fn bad_return() -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::BAD_REQUEST)
        .body("The card form was opened without a valid page to return to.")
}

#[poem::handler]
fn show_card_form(poem::web::Query(q): poem::web::Query<CardQuery>) -> poem::Response {
    match return_path(&q.back) {
        Some(back) => card_page(back, None),
        None => bad_return(),
    }
}

#[poem::handler]
fn take_card(poem::web::Form(f): poem::web::Form<CardFields>) -> poem::Response {
    let Some(back) = return_path(&f.back) else {
        return bad_return();
    };
    match token_for(&f.number) {
        Some(token) => poem::Response::builder()
            .status(poem::http::StatusCode::SEE_OTHER)
            .header(poem::http::header::LOCATION, format!("{back}?card={token}"))
            .finish(),
        None => card_page(
            back,
            Some("This is not one of the sandbox's test cards below."),
        ),
    }
}

/// The sandbox's card form, to mount at [`CARD_FORM`].
pub fn card_form() -> impl poem::Endpoint {
    poem::get(show_card_form).post(take_card)
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
                reference: "SBX-CH-K1".into()
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
                reference: "SBX-CH-K1".into()
            }),
            "the charge happened"
        );
        assert_eq!(sandbox.charges_made(), 1);
        assert_eq!(sandbox.lookup("never-sent").await, None);
        let refund = sandbox
            .refund("r1", "SBX-CH-K1", Money::new(1_000, Currency::USD))
            .await;
        assert!(matches!(refund, PaymentOutcome::Succeeded { .. }));
        assert_eq!(
            sandbox
                .refund("r1", "SBX-CH-K1", Money::new(1_000, Currency::USD))
                .await,
            refund,
            "the same refund key refunds once"
        );
        assert_eq!(
            sandbox
                .refund("r2", "SBX-CH-NOTHING", Money::new(1_000, Currency::USD))
                .await,
            PaymentOutcome::Failed
        );
    }

    #[tokio::test]
    async fn a_ledger_file_outlives_the_sandbox_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ledger.log");
        let first = SandboxGateway::with_ledger(Duration::ZERO, &file).unwrap();
        first.charge(&charge("pay-1", "4000 0000 0000 3220")).await;
        first.charge(&charge("pay-2", "4000 0000 0000 9995")).await;
        drop(first);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"pay-3\tsucc")
            .unwrap();
        let again = SandboxGateway::with_ledger(Duration::ZERO, &file).unwrap();
        assert_eq!(again.charges_made(), 1);
        again.charge(&charge("pay-4", "4242 4242 4242 4242")).await;
        assert_eq!(
            read_ledger(&file).unwrap().len(),
            3,
            "the torn line left pay-4 whole"
        );
        assert!(matches!(
            again.lookup("pay-1").await,
            Some(PaymentOutcome::Succeeded { .. })
        ));
        assert_eq!(
            again.lookup("pay-2").await,
            Some(PaymentOutcome::Declined(DeclineReason::InsufficientFunds))
        );
        assert_eq!(again.lookup("pay-3").await, None);
        assert!(Arc::ptr_eq(
            &SandboxGateway::shared(Duration::ZERO, Some(&file)).unwrap(),
            &SandboxGateway::shared(Duration::ZERO, Some(&file)).unwrap()
        ));
        assert!(
            Arc::ptr_eq(
                &SandboxGateway::shared(Duration::ZERO, None).unwrap(),
                &SandboxGateway::shared(Duration::ZERO, None).unwrap()
            ),
            "one in-memory processor per process"
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
