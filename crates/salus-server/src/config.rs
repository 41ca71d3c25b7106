//! Settings: defaults, then a TOML file, then `SALUS_<NAME>` environment variables.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event, for log shippers.
    Json,
}

/// Every setting. Each can be given in the config file as `name = value` or in the
/// environment as `SALUS_NAME` (upper case); the environment wins. See README.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// Address and port to listen on.
    pub listen: String,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter: `info`, `debug`, `salus_store=debug,info`, ...
    pub log_level: String,
    /// Upper bound of pooled database connections.
    pub db_max_connections: u32,
    /// How long to wait for a database lock or a pooled connection, in milliseconds.
    pub db_busy_timeout_ms: u64,
    /// How long in-flight requests may finish after SIGINT/SIGTERM, in seconds.
    pub shutdown_grace_secs: u64,
    /// Folder of the FHIR fixtures that `--demo` imports when present.
    pub fixtures: String,
    /// How many synthetic patients `--demo` adds.
    pub demo_patients: u32,
    /// The portal's address as patients reach it, for links in emails. Empty: `http://<listen>`.
    pub public_url: String,
    /// Folder where emails are written when no SMTP relay is configured.
    pub outbox_dir: String,
    /// SMTP relay host; empty means "write emails to `outbox_dir`".
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none` (only for a relay on the same host).
    pub smtp_security: crate::smtp::SmtpSecurity,
    pub smtp_username: String,
    pub smtp_password: String,
    /// Sender of every email, e.g. `Clinic portal <no-reply@clinic.example>`.
    pub mail_from: String,
    /// Minutes without activity after which a session ends.
    pub session_idle_minutes: u32,
    /// Hours after sign-in after which a session ends, used or not.
    pub session_absolute_hours: u32,
    /// Hours an email verification link works.
    pub verification_ttl_hours: u32,
    /// Days an activation code from the front desk works.
    pub activation_ttl_days: u32,
    /// Requests per minute one client address may make to the sign-in, registration and
    /// recovery endpoints.
    pub auth_requests_per_minute: u32,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client; empty: the connection's address is the
    /// client's.
    pub trusted_proxies: String,
    /// Test suites only: hash passwords with the smallest argon2id parameters. Not a
    /// setting: no file or variable can set it (`serde(skip)`).
    #[serde(skip)]
    pub cheap_password_hashing_for_tests: bool,
    /// Largest request body accepted, in KiB; larger ones answer 413 before they are read.
    pub max_body_kib: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub hash_workers: u32,
    /// Password hashes allowed to wait for a worker before sign-ins answer 503; 0 means four per worker.
    pub hash_queue: u32,
    /// Password of the demo patient account `serve --demo` creates. Empty: a random one,
    /// printed once.
    pub demo_password: String,
    /// New message threads a patient may start in 24 hours.
    pub threads_per_day: u32,
    /// Largest file a message may carry, in MB (at most five per message). The requests that
    /// carry files may be up to five such files larger than `max_body_kib`.
    pub attachment_max_mb: u32,
    /// Hours before a visit when patients can no longer cancel or move it online, for
    /// organisations that did not set their own.
    pub cancel_cutoff_hours: u32,
    /// Days ahead for which appointment slots are generated from the weekly templates.
    pub slot_horizon_days: u32,
    /// Hours before a visit when its reminder email goes out; 0: no reminders.
    pub reminder_hours: u32,
    /// Seconds a payment may stay without the processor's answer before reconciliation asks
    /// the processor what became of it (longer than any charge takes).
    pub reconcile_after_secs: u32,
    /// The sandbox processor's delay before it answers, in milliseconds.
    pub sandbox_delay_ms: u32,
    /// Where the sandbox processor keeps its ledger (it remembers charges across restarts,
    /// as a real processor does). Empty: in memory only.
    pub sandbox_ledger: String,
    /// Key of the forms' CSRF tokens: 32 bytes, base64. Empty: a random key per start (one
    /// node only; several nodes behind a balancer must share a key).
    pub csrf_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./salus-data/salus.db".into(),
            listen: "127.0.0.1:8080".into(),
            log_format: LogFormat::Human,
            log_level: "info".into(),
            db_max_connections: 8,
            db_busy_timeout_ms: 5000,
            shutdown_grace_secs: 20,
            fixtures: "../shared/fixtures".into(),
            demo_patients: 20,
            public_url: String::new(),
            outbox_dir: "./salus-data/outbox".into(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: crate::smtp::SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: String::new(),
            mail_from: "Salus patient portal <no-reply@localhost>".into(),
            session_idle_minutes: 15,
            session_absolute_hours: 12,
            verification_ttl_hours: 24,
            activation_ttl_days: 30,
            auth_requests_per_minute: 60,
            max_body_kib: 1024,
            trusted_proxies: String::new(),
            cheap_password_hashing_for_tests: false,
            hash_workers: 0,
            hash_queue: 0,
            csrf_key: String::new(),
            demo_password: String::new(),
            threads_per_day: salus_domain::messaging::THREADS_PER_DAY,
            attachment_max_mb: 10,
            cancel_cutoff_hours: salus_domain::scheduling::CANCEL_CUTOFF_HOURS,
            slot_horizon_days: 90,
            reminder_hours: 24,
            reconcile_after_secs: 120,
            sandbox_delay_ms: 300,
            sandbox_ledger: "./salus-data/sandbox-ledger.log".into(),
        }
    }
}

/// Environment variables that configure the process but are not settings of this file.
const NOT_SETTINGS: &[&str] = &["config", "fixtures_dir", "test_postgres_url"];

impl Config {
    /// Reads defaults, then `file` (or `SALUS_CONFIG`, or `./salus.toml` when it exists),
    /// then `SALUS_*` variables.
    ///
    /// # Errors
    /// When the file cannot be read, a value has the wrong type, a setting is unknown, or
    /// the listen address does not parse.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let file: Option<PathBuf> = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SALUS_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("salus.toml")).filter(|p| p.exists()));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = &file {
            if !f.exists() {
                bail!("config file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        // Variables arrive as written (`SALUS_TEST_POSTGRES_URL`): compared without case.
        fig = fig.merge(Env::prefixed("SALUS_").filter(|k| {
            !NOT_SETTINGS
                .iter()
                .any(|n| k.as_str().eq_ignore_ascii_case(n))
        }));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.listen_addr()?;
        cfg.csrf_key()?;
        cfg.mailer()?;
        if !(1..=100).contains(&cfg.attachment_max_mb) {
            bail!("SALUS_ATTACHMENT_MAX_MB / attachment_max_mb must be 1 to 100");
        }
        if cfg.cancel_cutoff_hours > 168 {
            bail!("SALUS_CANCEL_CUTOFF_HOURS / cancel_cutoff_hours must be 0 to 168");
        }
        if !(1..=366).contains(&cfg.slot_horizon_days) {
            bail!("SALUS_SLOT_HORIZON_DAYS / slot_horizon_days must be 1 to 366");
        }
        if cfg.reminder_hours > 168 {
            bail!("SALUS_REMINDER_HOURS / reminder_hours must be 0 to 168");
        }
        if cfg.sandbox_delay_ms > 60_000 {
            bail!("SALUS_SANDBOX_DELAY_MS / sandbox_delay_ms must be 0 to 60000");
        }
        Ok(cfg)
    }

    /// The largest file a message may carry, in bytes.
    pub fn attachment_max_bytes(&self) -> u64 {
        u64::from(self.attachment_max_mb) * 1024 * 1024
    }

    /// The largest body of a request that carries files: the usual limit, plus the most
    /// files a message may carry at their largest.
    pub fn file_body_limit(&self) -> usize {
        let files = self.attachment_max_bytes() * salus_domain::messaging::MAX_FILES as u64;
        usize::try_from(u64::from(self.max_body_kib) * 1024 + files).unwrap_or(usize::MAX)
    }

    /// The parsed listen address.
    ///
    /// # Errors
    /// When `listen` is not `ip:port`.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "SALUS_LISTEN / listen must be ip:port, got {:?}",
                self.listen
            )
        })
    }

    /// The CSRF key: the configured one, or a fresh random one.
    ///
    /// # Errors
    /// When `csrf_key` is set but is not 32 bytes of base64.
    pub fn csrf_key(&self) -> anyhow::Result<[u8; 32]> {
        use base64::Engine as _;
        if self.csrf_key.is_empty() {
            let mut key = [0u8; 32];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key)
                .map_err(|_| anyhow::anyhow!("the operating system gave no randomness"))?;
            return Ok(key);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.csrf_key.trim())
            .context("csrf_key is not base64")?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("csrf_key must be 32 bytes"))
    }

    /// The card processor: the sandbox (the only one so far), one per ledger file in the
    /// process.
    ///
    /// # Errors
    /// When the sandbox's ledger file cannot be read.
    pub fn gateway(
        &self,
    ) -> anyhow::Result<std::sync::Arc<dyn salus_domain::billing::PaymentGateway>> {
        let file = Some(Path::new(&self.sandbox_ledger)).filter(|p| !p.as_os_str().is_empty());
        let sandbox = crate::sandbox::SandboxGateway::shared(
            std::time::Duration::from_millis(u64::from(self.sandbox_delay_ms)),
            file,
        )
        .context("cannot read the sandbox ledger")?;
        Ok(sandbox)
    }

    /// The mailer the settings name: SMTP when `smtp_host` is set, else the outbox folder.
    ///
    /// # Errors
    /// When the SMTP settings are unusable.
    pub fn mailer(&self) -> anyhow::Result<std::sync::Arc<dyn salus_domain::account::Mailer>> {
        if self.smtp_host.is_empty() {
            return Ok(std::sync::Arc::new(crate::adapters::OutboxMailer::new(
                &self.outbox_dir,
            )));
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(std::sync::Arc::new(crate::smtp::SmtpMailer::new(
            &crate::smtp::SmtpSettings {
                host: self.smtp_host.clone(),
                port: self.smtp_port,
                security: self.smtp_security,
                username: opt(&self.smtp_username),
                password: opt(&self.smtp_password),
                from: self.mail_from.clone(),
            },
        )?))
    }

    /// The public address without a trailing slash.
    pub fn public_url(&self) -> String {
        let url = if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.clone()
        };
        url.trim_end_matches('/').to_owned()
    }

    /// Account timeouts and links.
    pub fn auth(&self) -> salus_domain::account::AuthConfig {
        salus_domain::account::AuthConfig {
            verification_ttl: chrono::Duration::hours(i64::from(
                self.verification_ttl_hours.max(1),
            )),
            idle_timeout: chrono::Duration::minutes(i64::from(self.session_idle_minutes.max(1))),
            absolute_timeout: chrono::Duration::hours(i64::from(
                self.session_absolute_hours.max(1),
            )),
            public_url: self.public_url(),
            activation_ttl_days: i64::from(self.activation_ttl_days.max(1)),
        }
    }

    pub fn pool(&self) -> salus_store::PoolSettings {
        salus_store::PoolSettings {
            max_connections: self.db_max_connections.max(1),
            busy_timeout: std::time::Duration::from_millis(self.db_busy_timeout_ms),
        }
    }
}

/// Opens (creating the folder of a SQLite file if needed) and migrates the database.
///
/// # Errors
/// When the folder cannot be created, or the database cannot be opened or migrated.
pub async fn open_store(cfg: &Config) -> anyhow::Result<salus_store::Store> {
    let dir = sqlite_file(&cfg.database_url)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create database folder {}", dir.display()))?;
    }
    let store = salus_store::Store::connect(&cfg.database_url, cfg.pool())
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// The file of a `sqlite://` URL, if it names one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail decides the closure's error type"
)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file("sqlite://./salus-data/salus.db"),
            Some(PathBuf::from("./salus-data/salus.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/salus.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/salus.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x/y"), None);
    }

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "salus.toml",
                "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\ndemo_patients = 3",
            )?;
            jail.set_env("SALUS_LISTEN", "127.0.0.1:9100");
            jail.set_env("SALUS_DATABASE_URL", "sqlite::memory:");
            // The test suites' own variables sit beside the settings without being one.
            jail.set_env("SALUS_TEST_POSTGRES_URL", "postgres://elsewhere/x");
            jail.set_env("SALUS_FIXTURES_DIR", "/elsewhere");
            let cfg = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                cfg.listen, "127.0.0.1:9100",
                "environment wins over the file"
            );
            assert_eq!(cfg.log_format, LogFormat::Json);
            assert_eq!(cfg.demo_patients, 3);
            assert_eq!(cfg.database_url, "sqlite::memory:");
            assert_eq!(cfg.db_max_connections, Config::default().db_max_connections);
            Ok(())
        });
    }

    #[test]
    fn bad_settings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SALUS_LISTEN", "not an address");
            assert!(Config::load(None).is_err());
            jail.set_env("SALUS_LISTEN", "127.0.0.1:1");
            jail.set_env("SALUS_ATTACHMENT_MAX_MB", "0");
            assert!(Config::load(None).is_err(), "files of at most 0 MB");
            jail.set_env("SALUS_ATTACHMENT_MAX_MB", "10");
            jail.create_file("salus.toml", "lisen = \"typo\"")?;
            let err = Config::load(None).unwrap_err();
            assert!(format!("{err:#}").contains("lisen"), "{err:#}");
            Ok(())
        });
    }
}
