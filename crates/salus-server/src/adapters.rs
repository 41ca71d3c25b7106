//! Adapters for the account ports that are not storage: argon2id hashing on a bounded
//! pool of low-priority threads, OS randomness for tokens, the common-password list, and the outbox mailer.

use argon2::password_hash::rand_core::OsRng as SaltRng;
use argon2::password_hash::{Output, ParamsString, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use rand::TryRngCore as _;
use salus_domain::account::{
    CommonPasswords, HashError, MailError, Mailer, OutgoingEmail, PasswordHash, PasswordHasher,
    SecretSource, SecretText, StrengthEstimate, TokenDigest, TotpAlgorithm, TotpSecret, Verified,
};
use sha2::Digest as _;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// argon2id parameters: OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1).
pub const ARGON2_M_KIB: u32 = 19_456;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

/// argon2id on a pool of its own: `workers` threads at the lowest scheduling priority (nice
/// 19), so a flood of sign-ins uses the CPU that requests leave idle instead of delaying them.
/// At most `queue` more hashes wait; beyond that, `Busy` (the API answers 503 + Retry-After).
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    admitted: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<HashJob>,
    dummy: Arc<str>,
}

/// A job for a hashing thread, given that thread's argon2 working memory.
type HashJob = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Starts `workers` hashing threads fed by one channel; they end when every sender is gone.
fn hashing_pool(workers: usize) -> std::sync::mpsc::Sender<HashJob> {
    let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for n in 0..workers {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("salus-hash-{n}"))
            .spawn(move || {
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::warn!(error = ?e, "hashing thread keeps normal priority");
                }
                // One argon2 working area (19 MiB) per thread, reused by every hash: a fresh
                // allocation per hash leaves the allocator holding many of them.
                let mut memory: Vec<Block> = Vec::new();
                loop {
                    // The lock is held only while waiting for the next job, not while hashing.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a hashing thread");
        }
    }
    tx
}

impl Argon2Hasher {
    /// The production hasher (argon2id, the parameters above).
    ///
    /// # Panics
    /// Never for the constant parameters above.
    pub fn new(workers: usize, queue: usize) -> Self {
        let params =
            Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).expect("valid argon2 parameters");
        Self::with_params(params, workers, queue)
    }

    /// A hasher with the smallest parameters argon2id allows (8 KiB, one pass), for test
    /// suites that exercise behaviour, not password strength. Never reachable from settings.
    ///
    /// # Panics
    /// Never for the constant parameters.
    pub fn cheap_for_tests(workers: usize, queue: usize) -> Self {
        let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
        Self::with_params(params, workers, queue)
    }

    fn with_params(params: Params, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut SaltRng);
        let dummy = hasher
            .hash_password(b"salus dummy password for unknown accounts", &salt)
            .expect("hashing a constant works")
            .to_string();
        Self {
            params,
            admitted: Arc::new(Semaphore::new(workers + queue)),
            jobs: hashing_pool(workers),
            dummy: dummy.into(),
        }
    }

    /// One core per worker by default; a queue four times as deep.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::new(cores, cores * 4)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| HashError::Busy {
                retry_after_secs: 1,
            })?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Vec<Block>| {
                // The admission slot is given back only when the hash is finished.
                let _held = admitted;
                let _ = done.send(job(memory));
            }))
            .map_err(|_| HashError::Failed)?;
        result.await.map_err(|_| HashError::Failed)
    }
}

/// argon2 of `password` and `salt` with `argon`'s parameters into `out_len` bytes, in the
/// thread's reusable `memory` (the library's own `hash_password_into_with_memory`).
fn argon2_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out_len: usize,
    memory: &mut Vec<Block>,
) -> Result<Output, HashError> {
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Output::init_with(out_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|_| HashError::Failed)
}

/// A new PHC string for `password` with the current parameters.
fn hash_phc(
    params: &Params,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut SaltRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Failed)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = argon2_into(
        &argon,
        password,
        salt_bytes,
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )?;
    let phc = argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|_| HashError::Failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant and parameters it
/// names); the comparison is the library's constant-time `Output` equality.
fn verify_phc(
    phc: &str,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<(bool, Option<Params>, bool), HashError> {
    let parsed = argon2::PasswordHash::new(phc).map_err(|_| HashError::Failed)?;
    let params = Params::try_from(&parsed).map_err(|_| HashError::Failed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Failed)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| HashError::Failed)?
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Failed);
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Failed)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = argon2_into(&argon, password, salt_bytes, expected.len(), memory)?;
    Ok((
        computed == expected,
        Some(params),
        algorithm == Algorithm::Argon2id,
    ))
}

#[async_trait::async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: SecretText) -> Result<PasswordHash, HashError> {
        let params = self.params.clone();
        self.run(move |memory| {
            hash_phc(&params, password.expose().as_bytes(), memory).map(PasswordHash::new)
        })
        .await?
    }

    async fn verify(
        &self,
        password: SecretText,
        hash: Option<PasswordHash>,
    ) -> Result<Verified, HashError> {
        let known = hash.is_some();
        let phc = hash.map_or_else(|| self.dummy.to_string(), |h| h.as_str().to_owned());
        let current = self.params.clone();
        self.run(move |memory| {
            let (matches, stored, argon2id) =
                verify_phc(&phc, password.expose().as_bytes(), memory)?;
            let weaker = !argon2id
                || stored.is_none_or(|p| {
                    p.m_cost() < current.m_cost()
                        || p.t_cost() < current.t_cost()
                        || p.p_cost() < current.p_cost()
                });
            Ok(Verified {
                matches: known && matches,
                needs_rehash: known && matches && weaker,
            })
        })
        .await?
    }
}

/// 256-bit tokens from the operating system's CSPRNG, SHA-256 digests.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSecrets;

impl SecretSource for OsSecrets {
    fn new_token(&self) -> SecretText {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system provides randomness");
        SecretText::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    fn digest(&self, token: &SecretText) -> TokenDigest {
        self.digest_bytes(token.expose().as_bytes())
    }

    fn digest_bytes(&self, bytes: &[u8]) -> TokenDigest {
        TokenDigest(sha2::Sha256::digest(bytes).into())
    }

    fn recovery_code(&self) -> SecretText {
        let mut bytes = [0u8; 10];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system provides randomness");
        let b32 = totp_rs::Secret::Raw(bytes.to_vec())
            .to_encoded()
            .to_string();
        let groups: Vec<&str> = b32
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        SecretText::new(groups.join("-"))
    }
}

/// RFC 6238 TOTP: SHA-1, 6 digits, 30-second steps, one step of clock drift either way.
#[derive(Debug, Clone)]
pub struct Rfc6238 {
    issuer: String,
}

impl Rfc6238 {
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
        }
    }

    fn totp(&self, secret: &TotpSecret, label: &str) -> Option<totp_rs::TOTP> {
        // totp-rs refuses ':' in labels; our labels are email addresses.
        let label = label.replace(':', "");
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            0,
            30,
            secret.bytes().to_vec(),
            Some(self.issuer.clone()),
            label,
        )
        .ok()
    }
}

impl TotpAlgorithm for Rfc6238 {
    fn new_secret(&self) -> TotpSecret {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system provides randomness");
        TotpSecret::new(bytes.to_vec())
    }

    fn matching_step(
        &self,
        secret: &TotpSecret,
        code: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<u64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(secret, "account")?;
        let step = u64::try_from(now.timestamp()).ok()? / 30;
        // `check` compares in constant time; each call looks at exactly one step (skew 0).
        [step, step.saturating_sub(1), step + 1]
            .into_iter()
            .find(|s| totp.check(code, s * 30))
    }

    fn provisioning_uri(&self, secret: &TotpSecret, account_label: &str) -> String {
        self.totp(secret, account_label)
            .map(|t| t.get_url())
            .unwrap_or_default()
    }

    fn base32(&self, secret: &TotpSecret) -> String {
        totp_rs::Secret::Raw(secret.bytes().to_vec())
            .to_encoded()
            .to_string()
    }
}

impl OsSecrets {
    /// A random password for a demo account: 128 bits, URL-safe text.
    pub fn new_token_for_demo(&self) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system provides randomness");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// zxcvbn's list of 30,000 common passwords (and its l33t/case variations): a password is
/// common when the whole of it is one entry of that list.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZxcvbnCommonList;

impl CommonPasswords for ZxcvbnCommonList {
    fn is_common(&self, candidate: &SecretText) -> bool {
        let pw = candidate.expose();
        let entropy = zxcvbn::zxcvbn(pw, &[]);
        entropy.sequence().iter().any(|m| {
            m.i == 0
                && m.j + 1 == pw.chars().count()
                && matches!(
                    &m.pattern,
                    // zxcvbn does not export its dictionary type; its default is the
                    // common-passwords dictionary.
                    zxcvbn::matching::patterns::MatchPattern::Dictionary(d)
                        if d.dictionary_name == Default::default()
                )
        })
    }

    fn estimate(&self, candidate: &SecretText, personal: &[String]) -> StrengthEstimate {
        let words: Vec<&str> = personal.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(candidate.expose(), &words);
        let feedback = entropy.feedback();
        StrengthEstimate {
            score: u8::from(entropy.score()),
            warning: feedback
                .and_then(zxcvbn::feedback::Feedback::warning)
                .map(|w| w.to_string()),
            suggestions: feedback
                .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        }
    }
}

/// Writes each message to a file in a folder (the local default instead of SMTP). The log
/// names the file, never what is in it.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: OutgoingEmail) -> Result<(), MailError> {
        let name = format!("{}.eml", uuid::Uuid::now_v7());
        let path = self.dir.join(name);
        let text = format!(
            "To: {}\nSubject: {}\n\n{}",
            email.to.as_str(),
            email.subject,
            email.body
        );
        let written = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&path, text).await
        }
        .await;
        match written {
            Ok(()) => {
                tracing::info!(path = %path.display(), "email written to the outbox");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "cannot write to the outbox");
                Err(MailError)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_with_the_required_parameters_and_rehash_detection() {
        let h = Argon2Hasher::new(2, 2);
        let hash = h.hash(SecretText::new("tulip kettle orbit")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        let ok = h
            .verify(SecretText::new("tulip kettle orbit"), Some(hash.clone()))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = h
            .verify(SecretText::new("tulip kettle orbiT"), Some(hash))
            .await
            .unwrap();
        assert!(!bad.matches);
        let unknown = h.verify(SecretText::new("whatever"), None).await.unwrap();
        assert!(!unknown.matches);

        // A hash made with weaker parameters verifies and asks to be replaced.
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"tulip kettle orbit", &SaltString::generate(&mut SaltRng))
        .unwrap()
        .to_string();
        let v = h
            .verify(
                SecretText::new("tulip kettle orbit"),
                Some(PasswordHash::new(weak)),
            )
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn reused_memory_gives_what_the_library_gives() {
        use argon2::password_hash::PasswordVerifier as _;
        let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).unwrap();
        let mut memory = Vec::new();
        // Ours, checked by the library.
        let ours = hash_phc(&params, b"tulip kettle orbit", &mut memory).unwrap();
        let parsed = argon2::PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"tulip kettle orbit", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"tulip kettle orbiT", &parsed)
                .is_err()
        );
        // The library's (with other parameters), checked by ours, in the same dirty memory.
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        )
        .hash_password(b"maple lantern", &SaltString::generate(&mut SaltRng))
        .unwrap()
        .to_string();
        for _ in 0..2 {
            assert!(
                verify_phc(&theirs, b"maple lantern", &mut memory)
                    .unwrap()
                    .0
            );
            assert!(
                !verify_phc(&theirs, b"maple lanterns", &mut memory)
                    .unwrap()
                    .0
            );
        }
        assert!(
            verify_phc(&ours, b"tulip kettle orbit", &mut memory)
                .unwrap()
                .0
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_instead_of_waiting() {
        let h = Argon2Hasher::new(1, 0);
        // Hold the only admission slot, as a running hash would.
        let held = Arc::clone(&h.admitted).try_acquire_owned().unwrap();
        let err = h
            .hash(SecretText::new("tulip kettle orbit"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            HashError::Busy {
                retry_after_secs: 1
            }
        );
        drop(held);
        assert!(h.hash(SecretText::new("tulip kettle orbit")).await.is_ok());
    }

    #[test]
    fn totp_matches_rfc_6238_and_tolerates_one_step_of_drift() {
        // RFC 6238 appendix B: SHA-1 secret "12345678901234567890", T = 59 s -> 94287082
        // (8 digits); its last 6 digits are the 6-digit code.
        let algo = Rfc6238::new("Salus");
        let secret = TotpSecret::new(b"12345678901234567890".to_vec());
        let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap();
        assert_eq!(algo.matching_step(&secret, "287082", at(59)), Some(1));
        assert_eq!(
            algo.matching_step(&secret, "287082", at(75)),
            Some(1),
            "one step late is accepted"
        );
        assert_eq!(
            algo.matching_step(&secret, "287082", at(150)),
            None,
            "three steps late is not"
        );
        assert_eq!(algo.matching_step(&secret, "28708x", at(59)), None);
        let uri = algo.provisioning_uri(&secret, "ann@example.org");
        assert!(
            uri.starts_with("otpauth://totp/Salus:ann%40example.org?secret="),
            "{uri}"
        );
        assert_eq!(algo.base32(&secret), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn recovery_codes_are_80_bit_grouped_base32() {
        let code = OsSecrets.recovery_code();
        assert_eq!(code.expose().len(), 19, "{:?}", code.expose().len());
        assert_eq!(code.expose().matches('-').count(), 3);
        assert_ne!(OsSecrets.recovery_code(), code);
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = OsSecrets.new_token();
        let b = OsSecrets.new_token();
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(a.expose())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(OsSecrets.digest(&a), OsSecrets.digest(&b));
    }

    #[test]
    fn common_list_is_large_and_matches_whole_passwords_only() {
        for pw in [
            "qazwsxedcrfv",
            "qwerty123456",
            "1qaz2wsx3edc",
            "QWERTY123456",
        ] {
            assert!(ZxcvbnCommonList.is_common(&SecretText::new(pw)), "{pw}");
        }
        assert!(!ZxcvbnCommonList.is_common(&SecretText::new("tulip kettle orbit")));
    }
}
