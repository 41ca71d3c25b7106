//! Salus storage: sea-orm entities, migrations and the domain's repository ports, for SQLite
//! (embedded default) and PostgreSQL from the same code.
//!
//! **Invariant:** entities are private; callers see domain types and [`RepoError`] only.
//! **Invariant:** schema changes happen only in [`migration`]; migrations never write data.

mod accounts;
mod audit;
mod billing;
mod body;
mod convert;
mod entity;
mod grants;
mod identity;
mod import;
mod messages;
pub mod migration;
mod organizations;
mod patients;
mod records;
mod refills;
mod scheduling;
mod session_cache;
mod totp;

pub use records::{context_statement, export_statements};

use salus_domain::record::RecordQuery;
use salus_domain::{IdGenerator, RepoError};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// Why the store could not be opened or migrated. Carries no data, only what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL is not a supported sqlite:// or postgres:// URL")]
    UnsupportedUrl,
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("could not apply migrations: {0}")]
    Migrate(String),
}

/// Tuning of the connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Upper bound of pooled connections (SQLite in-memory databases always use one).
    pub max_connections: u32,
    /// How long SQLite waits for a lock before giving up; also the acquire timeout.
    pub busy_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The database behind every repository port.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    audit: std::sync::Arc<audit::AuditChain>,
    sessions: std::sync::Arc<session_cache::SessionCache>,
    /// SQLite takes one writer at a time: the busiest writes (bookings, the audit log's
    /// appends) queue here for their turn instead of sleeping in SQLite's busy handler while
    /// holding a pooled connection. Who gets a slot is still the database's decision.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Time-ordered UUIDv7 identifiers for new entities.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn next_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`).
    /// A SQLite file is created if missing and runs with WAL, foreign keys on, a busy
    /// timeout and `synchronous = NORMAL` (durable across application crashes; with WAL a
    /// power loss may drop the last commits but never corrupts the file).
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] or [`StoreError::Connect`].
    pub async fn connect(url: &str, pool: PoolSettings) -> Result<Self, StoreError> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false).acquire_timeout(pool.busy_timeout);
        if url.starts_with("sqlite:") {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            // Every connection to a private in-memory database is a new, empty database.
            opts.max_connections(if in_memory { 1 } else { pool.max_connections });
            let busy = pool.busy_timeout;
            opts.map_sqlx_sqlite_opts(move |o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(busy)
            });
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            opts.max_connections(pool.max_connections);
        } else {
            return Err(StoreError::UnsupportedUrl);
        }
        let db = Database::connect(opts)
            .await
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        Ok(Self {
            db,
            audit: std::sync::Arc::default(),
            sessions: std::sync::Arc::default(),
            writer: std::sync::Arc::default(),
        })
    }

    /// This process's turn to write, on SQLite (see `writer`); nothing to wait for on
    /// PostgreSQL, which takes concurrent writers.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => Some(self.writer.lock().await),
            _ => None,
        }
    }

    /// Applies every pending migration.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Answers when the database answers a trivial query.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    pub async fn health_check(&self) -> Result<(), RepoError> {
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .map_err(repo_err)?;
        Ok(())
    }

    /// The query plan the database chooses for one page of a patient's records of one kind,
    /// one line per plan step. Used by tests and docs to show the index range scan.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn explain_record_page(&self) -> Result<Vec<String>, RepoError> {
        records::explain_page(&self.db, &RecordQuery::default()).await
    }

    /// The plan of a record view's one statement, for the test that each of its parts is an
    /// index lookup.
    ///
    /// # Errors
    /// As [`Store::explain_record_page`].
    pub async fn explain_context(&self) -> Result<Vec<String>, RepoError> {
        records::explain_context(&self.db).await
    }

    /// The plan of an export's read of a whole chart, for the test that it reads the chart's
    /// rows through a patient index (and not every chart's by release state).
    ///
    /// # Errors
    /// As [`Store::explain_record_page`].
    pub async fn explain_export(&self) -> Result<Vec<String>, RepoError> {
        records::explain_export(&self.db).await
    }

    /// The plan of "the same test over time" (a page of one code), for the test that it
    /// reads `ix_records_patient_code_time` in order.
    ///
    /// # Errors
    /// As [`Store::explain_record_page`].
    pub async fn explain_trend(&self) -> Result<Vec<String>, RepoError> {
        let query = RecordQuery {
            code: Some(("http://loinc.org".into(), "4548-4".into())),
            released_by: Some(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH),
            ..RecordQuery::default()
        };
        records::explain_page(&self.db, &query).await
    }

    /// The connection, for adapters in this workspace that need raw access (benchmarks).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The one place a database error becomes a [`RepoError`]. Constraint violations become
/// `Conflict`; everything else is logged (without values) and reported as `Unavailable`.
pub(crate) fn repo_err(err: DbErr) -> RepoError {
    use sea_orm::SqlErr;
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepoError::Conflict("duplicate"),
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            RepoError::Conflict("missing referenced row")
        }
        _ => {
            tracing::error!(error = %err, "database operation failed");
            RepoError::Unavailable
        }
    }
}
