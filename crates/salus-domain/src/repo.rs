//! The error contract shared by every repository port.

/// What a repository can report. Never carries health data: adapters log details themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// A uniqueness or referential constraint refused the write.
    #[error("conflicting data: {0}")]
    Conflict(&'static str),
    /// The store is unreachable, timed out or failed; the operation may be retried.
    #[error("storage unavailable")]
    Unavailable,
    /// Data read back from storage does not make sense (a bug or a hand edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(&'static str),
}
