//! Messaging: patients (and proxies who may message for them) write to one of their
//! organisation's care pools; the pool's staff answer. A thread has a subject and messages of
//! plain text; messages never change once sent (a read receipt is kept beside them, not in
//! them).
//!
//! **Invariant:** who may read or write a thread is `access::decide`'s answer for
//! `Action::ReadMessages` / `Action::Message` on `Target::Thread` (the patient's side by chart,
//! the staff's side by pool membership). Nothing else decides it.
//! **Invariant:** a send with an idempotency key is stored at most once: a retry with the same
//! key returns the first answer; the same key with another body is refused.

pub mod attachment;
pub mod refill;
mod refills;
mod service;
#[cfg(test)]
mod tests;

pub use attachment::{
    Attachment, FileKind, FileProblem, IncomingFile, MAX_FILE_BYTES, MAX_FILES, Upload,
};
pub use refill::{
    Approval, DenyReason, IllegalMove, Pharmacy, RefillMove, RefillRepository, RefillRequest,
    RefillState,
};
pub use refills::{NewPharmacy, PharmacyChoice};
pub use service::{
    Download, Draft, INBOX_PAGE, Inbox, InboxFilter, MessagingError, MessagingPorts,
    MessagingService, NewPool, SentMessage, THREADS_PER_DAY, ThreadView, Written,
};

use crate::account::StaffRole;
use crate::ids::{
    AccountId, AttachmentId, GrantId, MessageId, OrganizationId, PatientId, PoolId, ThreadId,
};
use crate::repo::RepoError;
use crate::text::{MessageText, PoolName, Subject};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// One of an organisation's teams that answer messages ("Primary care", "Billing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarePool {
    pub id: PoolId,
    pub organization: OrganizationId,
    pub name: PoolName,
    /// The answer patients may expect, in working days (shown on the compose page).
    pub answer_days: u8,
    /// The staff who answer it (any role: front desk and billing answer without seeing
    /// clinical records).
    pub staff: BTreeSet<AccountId>,
    /// Offered to patients for new threads.
    pub active: bool,
}

/// Which side wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The patient, or someone acting for them under a grant.
    Patient,
    /// A member of the care pool.
    Staff,
}

impl Side {
    pub fn code(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Staff => "staff",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "patient" => Some(Self::Patient),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }
    /// The side that reads what this side writes.
    pub fn other(self) -> Self {
        match self {
            Self::Patient => Self::Staff,
            Self::Staff => Self::Patient,
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Author {
    pub account: AccountId,
    pub side: Side,
    /// A proxy's grant, when they wrote for the patient.
    pub grant: Option<GrantId>,
    /// A member of staff's role.
    pub role: Option<StaffRole>,
}

/// One message: never changed once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub thread: ThreadId,
    pub author: Author,
    pub body: MessageText,
    pub sent_at: DateTime<Utc>,
    /// Its files, in the order sent.
    pub attachments: Vec<Attachment>,
}

/// That the other side opened a message, and who.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub read_at: DateTime<Utc>,
    pub read_by: AccountId,
}

/// Where a thread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    Open,
    /// Closed by staff: the patient starts a new thread to write again; staff may reopen it.
    Closed {
        at: DateTime<Utc>,
        by: AccountId,
    },
}

/// A conversation between a patient and a care pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: ThreadId,
    pub patient: PatientId,
    pub organization: OrganizationId,
    pub pool: PoolId,
    pub subject: Subject,
    pub started_by: AccountId,
    pub started_at: DateTime<Utc>,
    /// The member of staff who took it on, if any.
    pub claimed_by: Option<AccountId>,
    pub state: ThreadState,
    /// Who wrote last: the patient's side waits for staff, or staff wait for the patient.
    pub last_from: Side,
    pub last_at: DateTime<Utc>,
}

/// A thread in a list: with how many messages of the other side are unread by the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub thread: Thread,
    pub unread: u32,
}

/// A key that makes a send safe to retry: per account, with the fingerprint of what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub account: AccountId,
    pub key: String,
    pub fingerprint: [u8; 32],
}

/// What storing a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<T> {
    /// Stored now.
    New(T),
    /// The key was used before for the same content: the first answer, nothing stored.
    Replayed(T),
    /// The key was used before for other content: nothing stored.
    KeyReused,
}

/// Which threads of the pools an inbox lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Open, claimed by nobody.
    New,
    /// Open, claimed by this account.
    ClaimedBy(AccountId),
    /// Open, the last message from staff.
    WaitingForPatient,
    Closed,
}

/// Storage of pools, threads and messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores a new pool.
    ///
    /// # Errors
    /// `Conflict` when an organisation already has a pool of that name.
    async fn create_pool(&self, pool: &CarePool) -> Result<(), RepoError>;

    /// Replaces a pool's name, answer time, staff and whether it is offered.
    ///
    /// # Errors
    /// `Conflict` as for `create_pool`; `Unavailable` when the store fails.
    async fn update_pool(&self, pool: &CarePool) -> Result<bool, RepoError>;

    /// The pool with this id.
    ///
    /// # Errors
    /// `Unavailable` when the store fails; `Corrupt` when a row does not parse.
    async fn pool(&self, id: PoolId) -> Result<Option<CarePool>, RepoError>;

    /// An organisation's pools, by name.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn pools_of(&self, organization: OrganizationId) -> Result<Vec<CarePool>, RepoError>;

    /// Stores a new thread with its first message and that message's files (`files`, whose
    /// descriptions are `first.attachments`), in one transaction (and the key, when given:
    /// see [`Stored`]).
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn start(
        &self,
        thread: &Thread,
        first: &Message,
        files: &[Upload],
        key: Option<IdempotencyKey>,
    ) -> Result<Stored<(Thread, Message)>, RepoError>;

    /// Stores a message of an open thread with its files and makes it the thread's last, in
    /// one transaction (and the key, when given). `None` when the thread is not open.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn send(
        &self,
        message: &Message,
        files: &[Upload],
        key: Option<IdempotencyKey>,
    ) -> Result<Option<Stored<Message>>, RepoError>;

    /// A stored file's description and the thread it was sent in.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn attachment(
        &self,
        id: AttachmentId,
    ) -> Result<Option<(Attachment, ThreadId)>, RepoError>;

    /// Up to `len` bytes of a stored file from byte `offset` (fewer at its end).
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn attachment_bytes(
        &self,
        id: AttachmentId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, RepoError>;

    /// What an account sent with an idempotency key before: the fingerprint of what it
    /// carried, and the thread and message it made.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn keyed(
        &self,
        account: AccountId,
        key: &str,
    ) -> Result<Option<([u8; 32], Thread, Message)>, RepoError>;

    /// The thread with this id.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn thread(&self, id: ThreadId) -> Result<Option<Thread>, RepoError>;

    /// A thread's messages, oldest first, each with its receipt.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn messages(
        &self,
        thread: ThreadId,
    ) -> Result<Vec<(Message, Option<Receipt>)>, RepoError>;

    /// Writes the receipts of these messages of `thread`, written by the side other than
    /// `reader_side`: read by `reader` at `at` (a message that has a receipt keeps its first),
    /// and lowers the thread's count of what that side has not read by the receipts that were
    /// new, in one transaction. Answers how many were new.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn mark_read(
        &self,
        thread: ThreadId,
        reader_side: Side,
        messages: Vec<MessageId>,
        reader: AccountId,
        at: DateTime<Utc>,
    ) -> Result<u64, RepoError>;

    /// The names of these charts' patients ("Given Family"), for lists of threads.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn patient_names(
        &self,
        patients: Vec<PatientId>,
    ) -> Result<std::collections::BTreeMap<PatientId, String>, RepoError>;

    /// A chart's threads, most recent first, with the staff messages its side has not read.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn threads_of(&self, patient: PatientId) -> Result<Vec<ThreadSummary>, RepoError>;

    /// The threads of these pools in one state, most recent first (at most `limit`, and only
    /// those after the thread whose last message and id `after` gives), with the patient
    /// messages staff have not read.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn inbox(
        &self,
        pools: &[PoolId],
        state: InboxState,
        after: Option<(DateTime<Utc>, ThreadId)>,
        limit: u32,
    ) -> Result<Vec<ThreadSummary>, RepoError>;

    /// How many threads of each state the pools hold, and how many have unread patient
    /// messages: (new, waiting for the patient, closed, unread).
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn inbox_counts(&self, pools: &[PoolId]) -> Result<InboxCounts, RepoError>;

    /// How many threads were started for a chart since `since`.
    ///
    /// # Errors
    /// As [`MessageRepository::pool`].
    async fn started_since(
        &self,
        patient: PatientId,
        since: DateTime<Utc>,
    ) -> Result<u32, RepoError>;

    /// Sets who has taken a thread on (`None`: nobody); false when there is no such thread.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_claim(&self, thread: ThreadId, by: Option<AccountId>) -> Result<bool, RepoError>;

    /// Changes an open thread to `state` (closing it) or a closed one to open; false when it
    /// was already so.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    async fn set_state(&self, thread: ThreadId, state: ThreadState) -> Result<bool, RepoError>;
}

/// An inbox's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub new: u32,
    pub waiting_for_patient: u32,
    pub closed: u32,
    /// Open threads with a patient message no one of staff has read.
    pub unread: u32,
}

/// A messaging service whose ports are mocks with no expectations: any use fails the test.
/// For adapter tests that never reach messaging.
#[cfg(any(test, feature = "mocks"))]
pub fn messaging_without_expectations() -> MessagingService {
    #[derive(Debug)]
    struct NilIds;
    impl crate::ids::IdGenerator for NilIds {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::nil()
        }
    }
    MessagingService::new(MessagingPorts {
        messages: std::sync::Arc::new(MockMessageRepository::new()),
        refills: std::sync::Arc::new(refill::MockRefillRepository::new()),
        records: std::sync::Arc::new(crate::record::MockRecordRepository::new()),
        patients: std::sync::Arc::new(crate::patient::MockPatientRepository::new()),
        accounts: std::sync::Arc::new(crate::account::MockAccountRepository::new()),
        log: std::sync::Arc::new(crate::audit::MockAccessLog::new()),
        mailer: std::sync::Arc::new(crate::account::MockMailer::new()),
        secrets: std::sync::Arc::new(crate::account::MockSecretSource::new()),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        ids: std::sync::Arc::new(NilIds),
        public_url: String::new(),
        threads_per_day: THREADS_PER_DAY,
        max_file_bytes: MAX_FILE_BYTES,
    })
}
