//! Account use cases on mocked ports with a fixed clock.

use super::service::throttle;
use super::*;
use crate::clock::FixedClock;
use crate::ids::{AccountId, IdGenerator};
use crate::patient::PersonName;
use crate::text::Email;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Seq(AtomicU64);
impl IdGenerator for Seq {
    fn next_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

#[test]
fn throttle_grows_then_locks() {
    let now = t0();
    assert_eq!(throttle(&[], now), None);
    let one = [now - Duration::milliseconds(500)];
    assert_eq!(throttle(&one, now), Some(one[0] + Duration::seconds(1)));
    let three: Vec<_> = (0..3).map(|i| now - Duration::seconds(10 - i)).collect();
    assert_eq!(
        throttle(&three, now),
        None,
        "4 s wait after the 3rd failure has passed"
    );
    let three_recent: Vec<_> = (0..3).map(|i| now - Duration::seconds(3 - i)).collect();
    assert_eq!(
        throttle(&three_recent, now),
        Some(three_recent[2] + Duration::seconds(4))
    );
    let five: Vec<_> = (0..5)
        .map(|i| now - Duration::minutes(5) + Duration::seconds(i))
        .collect();
    assert_eq!(
        throttle(&five, now),
        Some(five[4] + Duration::minutes(15)),
        "locked"
    );
    let old: Vec<_> = (0..5)
        .map(|i| now - Duration::minutes(40) + Duration::seconds(i))
        .collect();
    assert_eq!(
        throttle(&old, now),
        None,
        "failures older than the window do not count"
    );
}

struct Mocks {
    accounts: MockAccountRepository,
    tokens: MockTokenRepository,
    sessions: MockSessionRepository,
    hasher: MockPasswordHasher,
    common: MockCommonPasswords,
    secrets: MockSecretSource,
    mailer: MockMailer,
    audit: MockAuthAudit,
    totp: MockTotpRepository,
}

impl Mocks {
    fn new() -> Self {
        let mut common = MockCommonPasswords::new();
        common.expect_is_common().return_const(false);
        let mut secrets = MockSecretSource::new();
        secrets
            .expect_new_token()
            .returning(|| SecretText::new("token-abc"));
        secrets
            .expect_digest()
            .returning(|t| TokenDigest([t.expose().len() as u8; 32]));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Ok(PasswordHash::new("$argon2id$fake")));
        Self {
            accounts: MockAccountRepository::new(),
            tokens: MockTokenRepository::new(),
            sessions: MockSessionRepository::new(),
            hasher,
            common,
            secrets,
            mailer: MockMailer::new(),
            audit: MockAuthAudit::new(),
            totp: MockTotpRepository::new(),
        }
    }

    fn service(self) -> AuthService {
        self.service_with_totp(MockTotpAlgorithm::new())
    }

    fn service_with_totp(self, totp_algorithm: MockTotpAlgorithm) -> AuthService {
        AuthService::new(
            AuthPorts {
                accounts: Arc::new(self.accounts),
                tokens: Arc::new(self.tokens),
                sessions: Arc::new(self.sessions),
                hasher: Arc::new(self.hasher),
                common: Arc::new(self.common),
                secrets: Arc::new(self.secrets),
                mailer: Arc::new(self.mailer),
                audit: Arc::new(self.audit),
                access: Arc::new(crate::audit::MockAccessLog::new()),
                totp: Arc::new(self.totp),
                identity: Arc::new(MockIdentityRepository::new()),
                patients: Arc::new(crate::patient::MockPatientRepository::new()),
                organizations: Arc::new(crate::organization::MockOrganizationRepository::new()),
                totp_algorithm: Arc::new(totp_algorithm),
                clock: Arc::new(FixedClock::new(t0())),
                ids: Arc::new(Seq::default()),
            },
            AuthConfig::default(),
        )
    }
}

fn registration(email: &str) -> Registration {
    Registration {
        clinic: None,
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
        email: Email::parse(email).unwrap(),
        password: SecretText::new("tulip kettle orbit"),
    }
}

fn account(email: &str, state: AccountState) -> Account {
    Account {
        id: AccountId::from_uuid(uuid::Uuid::from_u128(77)),
        email: Email::parse(email).unwrap(),
        name: PersonName::new("Ann", "Lee").unwrap(),
        birth_date: None,
        role: Role::Patient,
        state,
        chart: ChartLink::Unlinked,
        password: PasswordHash::new("$argon2id$stored"),
        created_at: t0(),
    }
}

#[test]
fn new_registration_stores_pending_account_and_sends_a_verification_link() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().returning(|_| Ok(None));
    m.accounts
        .expect_create()
        .withf(|a| {
            a.state == AccountState::PendingVerification && a.password.as_str() == "$argon2id$fake"
        })
        .times(1)
        .returning(|_| Ok(()));
    m.tokens
        .expect_store()
        .withf(|t| {
            t.purpose == TokenPurpose::VerifyEmail && t.expires_at == t0() + Duration::hours(24)
        })
        .times(1)
        .returning(|_| Ok(()));
    m.mailer
        .expect_send()
        .withf(|e| e.body.contains("/verify?token=token-abc") && e.to.as_str() == "ann@example.org")
        .times(1)
        .returning(|_| Ok(()));
    m.audit
        .expect_record()
        .withf(|e| e.kind == AuthEventKind::Registered)
        .times(1)
        .returning(|_| Ok(()));
    futures_executor::block_on(m.service().register(registration("ann@example.org"), None))
        .unwrap();
}

#[test]
fn registering_a_known_email_answers_the_same_and_notifies_the_owner() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().returning(|e| {
        Ok(Some(account(
            e.as_str(),
            AccountState::Active { verified_at: t0() },
        )))
    });
    m.accounts.expect_create().never();
    m.tokens.expect_store().never();
    m.mailer
        .expect_send()
        .withf(|e| e.subject.contains("tried to register") && !e.body.contains("token"))
        .times(1)
        .returning(|_| Ok(()));
    m.audit
        .expect_record()
        .withf(|e| e.kind == AuthEventKind::RegistrationForExistingEmail)
        .times(1)
        .returning(|_| Ok(()));
    futures_executor::block_on(m.service().register(registration("ann@example.org"), None))
        .unwrap();
}

#[test]
fn weak_password_is_refused_before_anything_is_looked_up() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().never();
    let mut r = registration("ann@example.org");
    r.password = SecretText::new("ann-lee-is-me-1");
    let err = futures_executor::block_on(m.service().register(r, None)).unwrap_err();
    assert!(matches!(
        err,
        RegisterError::Password(PasswordRejection::ContainsName)
    ));
}

#[test]
fn a_registration_is_read_from_its_fields_once_for_every_adapter() {
    let secret = || SecretText::new("tulip kettle orbit");
    let ok = Registration::from_fields(
        " northside ",
        " Ann ",
        "Lee",
        " 1980-01-02 ",
        "Ann@Example.org",
        secret(),
    )
    .unwrap();
    assert_eq!(ok.clinic.as_ref().map(|c| c.as_str()), Some("northside"));
    assert_eq!(ok.name.full(), "Ann Lee");
    assert_eq!(ok.birth_date, NaiveDate::from_ymd_opt(1980, 1, 2).unwrap());
    assert_eq!(
        ok.email.as_str(),
        "Ann@example.org",
        "the domain part is case-free"
    );
    let later = Registration::from_fields("", "Ann", "Lee", "1980-01-02", "a@b.org", secret());
    assert!(
        later.unwrap().clinic.is_none(),
        "the clinic may be chosen after signing in"
    );
    assert_eq!(
        Registration::from_fields("Not a slug!", "", "", "", "", secret()).unwrap_err(),
        RegistrationInputError::Clinic,
        "the clinic comes first, as on the form"
    );
    let refused = |g, f, b, e| Registration::from_fields("", g, f, b, e, secret()).unwrap_err();
    assert_eq!(
        refused(" ", "", "1980-01-02", "ann@example.org"),
        RegistrationInputError::Name
    );
    for date in ["02.01.1980", "1980-13-01", "1899-12-31", ""] {
        assert_eq!(
            refused("Ann", "Lee", date, "ann@example.org"),
            RegistrationInputError::BirthDate,
            "{date}"
        );
    }
    assert_eq!(
        refused("Ann", "Lee", "1980-01-02", "not an address"),
        RegistrationInputError::Email
    );
    assert_eq!(
        RegistrationInputError::BirthDate.code(),
        "invalid_birth_date"
    );
}

#[test]
fn a_birth_date_after_today_is_refused_before_anything_is_looked_up() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().never();
    let mut r = registration("ann@example.org");
    r.birth_date = t0().date_naive() + Duration::days(1);
    let err = futures_executor::block_on(m.service().register(r, None)).unwrap_err();
    assert!(matches!(
        err,
        RegisterError::Input(RegistrationInputError::BirthDate)
    ));
}

#[test]
fn a_refused_password_reads_the_same_everywhere() {
    assert_eq!(
        PasswordRejection::TooShort { min: 12 }.sentence(),
        "Choose another password: use at least 12 characters."
    );
}

#[test]
fn unknown_email_spends_a_dummy_verify_and_gets_the_generic_error() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().returning(|_| Ok(None));
    m.accounts
        .expect_failures_since()
        .returning(|_, _| Ok(vec![]));
    m.hasher
        .expect_verify()
        .withf(|_, h| h.is_none())
        .times(1)
        .returning(|_, _| {
            Ok(Verified {
                matches: false,
                needs_rehash: false,
            })
        });
    m.accounts
        .expect_add_failure()
        .withf(|who, _| who.as_str() == "who@example.org")
        .times(1)
        .returning(|_, _| Ok(()));
    m.audit
        .expect_record()
        .withf(|e| e.kind == AuthEventKind::SignInFailed)
        .returning(|_| Ok(()));
    let err = futures_executor::block_on(m.service().login(
        &Email::parse("who@example.org").unwrap(),
        SecretText::new("whatever whatever"),
        None,
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials));
}

/// The throttle is keyed by the address, not the account: an unknown address that just failed
/// waits like a registered one, with no password work, so the answers cannot tell them apart.
#[test]
fn an_unknown_email_is_throttled_like_a_known_one() {
    for known in [false, true] {
        let mut m = Mocks::new();
        m.accounts.expect_find_by_email().returning(move |e| {
            Ok(known.then(|| account(e.as_str(), AccountState::Active { verified_at: t0() })))
        });
        m.accounts
            .expect_failures_since()
            .withf(|who, _| who.as_str() == "who@example.org")
            .returning(|_, _| Ok(vec![t0() - Duration::milliseconds(300)]));
        m.hasher.expect_verify().never();
        m.accounts.expect_add_failure().never();
        m.audit
            .expect_record()
            .withf(|e| e.kind == AuthEventKind::SignInThrottled)
            .times(1)
            .returning(|_| Ok(()));
        let err = futures_executor::block_on(m.service().login(
            &Email::parse("who@example.org").unwrap(),
            SecretText::new("whatever whatever"),
            None,
            None,
        ))
        .unwrap_err();
        assert!(
            matches!(
                err,
                LoginError::Throttled {
                    retry_after_secs: 1
                }
            ),
            "known account: {known}, {err:?}"
        );
    }
}

#[test]
fn fifth_failure_locks_and_is_audited() {
    let mut m = Mocks::new();
    m.accounts.expect_find_by_email().returning(|e| {
        Ok(Some(account(
            e.as_str(),
            AccountState::Active { verified_at: t0() },
        )))
    });
    // Four failures long enough ago that no delay applies, all inside the 15-minute window.
    m.accounts.expect_failures_since().returning(|_, _| {
        Ok((0..4)
            .map(|i| t0() - Duration::minutes(10) + Duration::seconds(i))
            .collect())
    });
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verified {
            matches: false,
            needs_rehash: false,
        })
    });
    m.accounts
        .expect_add_failure()
        .times(1)
        .returning(|_, _| Ok(()));
    m.audit
        .expect_record()
        .withf(|e| e.kind == AuthEventKind::SignInFailed)
        .times(1)
        .returning(|_| Ok(()));
    m.audit
        .expect_record()
        .withf(|e| e.kind == AuthEventKind::AccountLocked)
        .times(1)
        .returning(|_| Ok(()));
    let err = futures_executor::block_on(m.service().login(
        &Email::parse("ann@example.org").unwrap(),
        SecretText::new("wrong password!"),
        None,
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials));
}

#[test]
fn right_password_on_unverified_account_says_verify_first_and_opens_no_session() {
    let mut m = Mocks::new();
    m.accounts
        .expect_find_by_email()
        .returning(|e| Ok(Some(account(e.as_str(), AccountState::PendingVerification))));
    m.accounts
        .expect_failures_since()
        .returning(|_, _| Ok(vec![]));
    m.hasher.expect_verify().returning(|_, _| {
        Ok(Verified {
            matches: true,
            needs_rehash: false,
        })
    });
    m.sessions.expect_create().never();
    m.audit.expect_record().returning(|_| Ok(()));
    let err = futures_executor::block_on(m.service().login(
        &Email::parse("ann@example.org").unwrap(),
        SecretText::new("right password!"),
        None,
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, LoginError::NotVerified));
}

#[test]
fn sessions_end_after_idle_and_absolute_timeouts() {
    for (created, last_seen, live) in [
        (
            t0() - Duration::minutes(30),
            t0() - Duration::minutes(14),
            true,
        ),
        (
            t0() - Duration::minutes(30),
            t0() - Duration::minutes(16),
            false,
        ),
        (
            t0() - Duration::hours(12) - Duration::minutes(1),
            t0() - Duration::minutes(1),
            false,
        ),
    ] {
        let mut m = Mocks::new();
        m.sessions.expect_find_by_digest().returning(move |d| {
            Ok(Some((
                Session {
                    id: crate::ids::SessionId::from_uuid(uuid::Uuid::from_u128(5)),
                    account: AccountId::from_uuid(uuid::Uuid::from_u128(77)),
                    digest: *d,
                    created_at: created,
                    last_seen_at: last_seen,
                    revoked_at: None,
                    authenticated_at: created,
                    previous_sign_in_at: None,
                    device: None,
                },
                account(
                    "ann@example.org",
                    AccountState::Active { verified_at: t0() },
                ),
            )))
        });
        m.sessions.expect_touch().returning(|_, _| Ok(()));
        let result = futures_executor::block_on(m.service().authenticate(&SecretText::new("tok")));
        assert_eq!(
            result.is_ok(),
            live,
            "created {created}, last seen {last_seen}"
        );
    }
}

#[test]
fn second_factor_changes_need_a_recent_sign_in() {
    let session_at = |authenticated_at: DateTime<Utc>| {
        move |d: &TokenDigest| {
            Ok(Some((
                Session {
                    id: crate::ids::SessionId::from_uuid(uuid::Uuid::from_u128(5)),
                    account: AccountId::from_uuid(uuid::Uuid::from_u128(77)),
                    digest: *d,
                    created_at: t0() - Duration::minutes(10),
                    last_seen_at: t0() - Duration::minutes(1),
                    revoked_at: None,
                    authenticated_at,
                    previous_sign_in_at: None,
                    device: None,
                },
                account(
                    "ann@example.org",
                    AccountState::Active { verified_at: t0() },
                ),
            )))
        }
    };
    // Signed in 10 minutes ago, never re-entered the password: refused.
    let mut m = Mocks::new();
    m.sessions
        .expect_find_by_digest()
        .returning(session_at(t0() - Duration::minutes(10)));
    m.sessions.expect_touch().returning(|_, _| Ok(()));
    m.totp.expect_put_pending().never();
    let err =
        futures_executor::block_on(m.service().begin_totp(&SecretText::new("tok"))).unwrap_err();
    assert!(matches!(err, BeginTotpError::ReauthenticationRequired));

    // Password re-entered 4 minutes ago: allowed.
    let mut m = Mocks::new();
    m.sessions
        .expect_find_by_digest()
        .returning(session_at(t0() - Duration::minutes(4)));
    m.sessions.expect_touch().returning(|_, _| Ok(()));
    m.totp
        .expect_put_pending()
        .times(1)
        .returning(|_, _| Ok(()));
    let mut algo = MockTotpAlgorithm::new();
    algo.expect_new_secret()
        .returning(|| TotpSecret::new(vec![1; 20]));
    algo.expect_provisioning_uri()
        .returning(|_, _| "otpauth://totp/x".into());
    algo.expect_base32().returning(|_| "AE".into());
    let service = m.service_with_totp(algo);
    assert!(futures_executor::block_on(service.begin_totp(&SecretText::new("tok"))).is_ok());
}
