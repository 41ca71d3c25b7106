//! The messaging use cases: pools (administrators), threads and messages (patients, proxies
//! who may message, and the pools' staff), read receipts, claims, closing and reopening.

use super::attachment::{self, Attachment, FileProblem, IncomingFile, Upload};
use super::refill::{IllegalMove, RefillRepository};
use super::{
    Author, CarePool, IdempotencyKey, InboxCounts, InboxState, Message, MessageRepository, Receipt,
    Side, Stored, Thread, ThreadState, ThreadSummary,
};
use crate::access::{Action, Actor, Target, decide};
use crate::account::{AccountRepository, Mailer, SecretSource, SecretText};
use crate::audit::{AccessEvent, AccessLog, Outcome};
use crate::clock::Clock;
use crate::ids::{AccountId, AttachmentId, IdGenerator, MessageId, PoolId, ThreadId};
use crate::patient::PatientRepository;
use crate::repo::RepoError;
use crate::text::{MessageText, PoolName, Subject};
use chrono::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Threads one page of a staff inbox lists.
pub const INBOX_PAGE: u32 = 50;

/// One page of a staff inbox: its threads (each with the patient's and the team's name),
/// every state's count, and where the next page starts.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub threads: Vec<(ThreadSummary, String, String)>,
    pub counts: InboxCounts,
    /// The last thread listed, when older ones follow: the next page's `before`.
    pub older: Option<ThreadId>,
}

/// New threads a patient may open in 24 hours unless the deployment says otherwise.
pub const THREADS_PER_DAY: u32 = 10;

/// What the messaging use cases need.
#[derive(Clone)]
pub struct MessagingPorts {
    pub messages: Arc<dyn MessageRepository>,
    pub refills: Arc<dyn RefillRepository>,
    /// The medications refills are asked for.
    pub records: Arc<dyn crate::record::RecordRepository>,
    pub patients: Arc<dyn PatientRepository>,
    /// Names of authors, the staff a pool may hold, the accounts told of a reply.
    pub accounts: Arc<dyn AccountRepository>,
    pub log: Arc<dyn AccessLog>,
    pub mailer: Arc<dyn Mailer>,
    /// The digest of what a send carried (idempotency fingerprints).
    pub secrets: Arc<dyn SecretSource>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// The portal's public address, for the link in emails (no trailing slash).
    pub public_url: String,
    /// New threads a patient may open in 24 hours.
    pub threads_per_day: u32,
    /// The largest file a message may carry, in bytes.
    pub max_file_bytes: u64,
}

impl std::fmt::Debug for MessagingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingPorts").finish_non_exhaustive()
    }
}

/// Why a messaging use case changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// No such thread or pool, or not the actor's (one answer for both).
    #[error("There is no such conversation.")]
    NotFound,
    /// The actor's role does not do this.
    #[error("This is not yours to do.")]
    Forbidden,
    #[error("{message}")]
    Input {
        code: &'static str,
        message: &'static str,
    },
    #[error("This conversation is closed. Start a new one to write again.")]
    Closed,
    #[error(
        "You have started {limit} conversations today, the most a day. Please wait until tomorrow, or call the clinic if it is urgent."
    )]
    TooManyThreads { limit: u32 },
    #[error("This idempotency key was already used for a different message.")]
    KeyReused,
    #[error("Choose a member of this team.")]
    NotInPool,
    /// The files of a message were refused.
    #[error(transparent)]
    File(#[from] FileProblem),
    /// A refill request cannot make that move.
    #[error(transparent)]
    Refill(#[from] IllegalMove),
    #[error(
        "You already asked for a refill of this medication; it is waiting for an answer. You can cancel it and ask again."
    )]
    RefillPending,
    #[error(
        "Only a medication you take now can be refilled. For one that was stopped or completed, write to your care team."
    )]
    NotRefillable,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl MessagingError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Input { code, .. } => code,
            Self::Closed => "thread_closed",
            Self::TooManyThreads { .. } => "too_many_threads",
            Self::KeyReused => "idempotency_key_reused",
            Self::NotInPool => "not_in_pool",
            Self::File(p) => p.code(),
            Self::Refill(m) => m.code(),
            Self::RefillPending => "refill_already_requested",
            Self::NotRefillable => "medication_not_active",
            Self::Repo(_) => "unavailable",
        }
    }
}

pub(super) fn input(code: &'static str, message: &'static str) -> MessagingError {
    MessagingError::Input { code, message }
}

/// A pool as an administrator sets it up.
#[derive(Debug, Clone)]
pub struct NewPool {
    pub name: PoolName,
    pub answer_days: u8,
    pub staff: BTreeSet<AccountId>,
    pub active: bool,
}

impl NewPool {
    /// A pool from the fields as typed.
    ///
    /// # Errors
    /// `Input` naming the field.
    pub fn from_fields(
        name: &str,
        answer_days: &str,
        staff: impl IntoIterator<Item = AccountId>,
        active: bool,
    ) -> Result<Self, MessagingError> {
        let name = PoolName::parse(name)
            .map_err(|_| input("invalid_name", "Name the team in 1 to 80 characters."))?;
        let answer_days = answer_days
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|d| (1..=10).contains(d));
        let Some(answer_days) = answer_days else {
            return Err(input(
                "invalid_answer_days",
                "Say within how many working days patients get an answer: 1 to 10.",
            ));
        };
        Ok(Self {
            name,
            answer_days,
            staff: staff.into_iter().collect(),
            active,
        })
    }
}

/// A subject as typed.
fn subject_of(subject: &str) -> Result<Subject, MessagingError> {
    Subject::parse(subject).map_err(|_| {
        input(
            "invalid_subject",
            "Give the conversation a subject of 1 to 200 characters.",
        )
    })
}

/// A message's text as typed.
fn text_of(body: &str) -> Result<MessageText, MessagingError> {
    MessageText::parse(body).map_err(|_| {
        input(
            "invalid_body",
            "Write your message: 1 to 10,000 characters of text.",
        )
    })
}

/// A send: its idempotency key, as the request gave it.
fn key_of(key: Option<&str>) -> Result<Option<&str>, MessagingError> {
    match key.map(str::trim) {
        None | Some("") => Ok(None),
        Some(k) if k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k)),
        Some(_) => Err(input(
            "invalid_idempotency_key",
            "An idempotency key is 1 to 200 visible ASCII characters.",
        )),
    }
}

/// What was written, and whether it is a retry's first answer.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    /// A retry with the same key: nothing new was stored.
    pub replayed: bool,
}

/// What a message carries as the sender wrote it: its text, its files, and the key that makes
/// the send safe to retry.
#[derive(Debug, Clone, Default)]
pub struct Draft<'a> {
    pub body: &'a str,
    pub files: Vec<IncomingFile>,
    pub key: Option<&'a str>,
}

/// A file the reader may download: its description, and its bytes read a chunk at a time.
#[derive(Clone)]
pub struct Download {
    pub attachment: Attachment,
    messages: Arc<dyn MessageRepository>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.attachment.fmt(f)
    }
}

impl Download {
    /// The bytes of the file from `offset` on, at most `len` (none past its end).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn chunk(&self, offset: u64, len: u32) -> Result<Vec<u8>, RepoError> {
        if offset >= self.attachment.size {
            return Ok(Vec::new());
        }
        self.messages
            .attachment_bytes(self.attachment.id, offset, len)
            .await
    }

    /// The whole file as a stream of chunks of [`Download::CHUNK`] bytes, each read when the
    /// one before has been sent: a large file never sits whole in memory.
    pub fn stream(self) -> impl futures_util::Stream<Item = Result<Vec<u8>, RepoError>> + Send {
        futures_util::stream::try_unfold((self, 0u64), |(d, offset)| async move {
            let chunk = d.chunk(offset, Self::CHUNK).await?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let next = offset + chunk.len() as u64;
            Ok(Some((chunk, (d, next))))
        })
    }

    /// Bytes read from the store at a time.
    pub const CHUNK: u32 = 256 * 1024;
}

/// What an email tells the patient, and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    NewMessage,
    RefillChanged,
}

/// A sent message with its thread.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub thread: Thread,
    pub message: Message,
}

/// A thread as its reader sees it.
#[derive(Debug, Clone)]
pub struct ThreadView {
    pub thread: Thread,
    pub pool: CarePool,
    /// Each message, its receipt, and its author's name now.
    pub messages: Vec<(Message, Option<Receipt>, String)>,
    /// Whose chart it is (for staff).
    pub patient_name: String,
    /// The reader's side.
    pub side: Side,
    /// The pool's staff with their names (for staff: whom a thread may be given to).
    pub colleagues: Vec<(AccountId, String)>,
}

/// Which threads an inbox lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxFilter {
    New,
    Mine,
    WaitingForPatient,
    Closed,
}

impl InboxFilter {
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "new" => Some(Self::New),
            "mine" => Some(Self::Mine),
            "waiting" => Some(Self::WaitingForPatient),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Mine => "mine",
            Self::WaitingForPatient => "waiting",
            Self::Closed => "closed",
        }
    }
}

/// The messaging use cases.
#[derive(Clone)]
pub struct MessagingService {
    pub(super) p: MessagingPorts,
}

impl std::fmt::Debug for MessagingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingService").finish_non_exhaustive()
    }
}

/// Who writes, as a message records it: the patient's side (themselves or a proxy) or staff.
pub(super) fn author_of(actor: &Actor) -> Option<Author> {
    match actor {
        Actor::Patient { account, .. } => Some(Author {
            account: *account,
            side: Side::Patient,
            grant: None,
            role: None,
        }),
        Actor::Proxy { account, grant, .. } => Some(Author {
            account: *account,
            side: Side::Patient,
            grant: Some(*grant),
            role: None,
        }),
        Actor::Staff { account, role, .. } => Some(Author {
            account: *account,
            side: Side::Staff,
            grant: None,
            role: Some(*role),
        }),
        Actor::ShareLink { .. } => None,
    }
}

impl MessagingService {
    pub fn new(p: MessagingPorts) -> Self {
        Self { p }
    }

    /// The largest file a message may carry, in whole MB (for the forms' help text).
    pub fn max_file_mb(&self) -> u64 {
        self.p.max_file_bytes.div_ceil(1024 * 1024)
    }

    pub(super) async fn audit(
        &self,
        actor: &Actor,
        action: Action,
        patient: crate::ids::PatientId,
        outcome: Outcome,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.p
            .log
            .record(AccessEvent {
                at: self.p.clock.now(),
                actor: actor.into(),
                patient: Some(patient),
                action,
                step: None,
                export: None,
                record_kind: None,
                record: None,
                outcome,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// The fingerprint of a send: its text parts and the digest of each file's bytes.
    fn fingerprint(&self, parts: &[&str], files: &[Upload]) -> [u8; 32] {
        let mut all = parts.join("\u{1f}");
        for f in files {
            use std::fmt::Write as _;
            all.push('\u{1e}');
            for b in self.p.secrets.digest_bytes(&f.content).0 {
                let _ = write!(all, "{b:02x}");
            }
        }
        self.p.secrets.digest(&SecretText::new(all)).0
    }

    /// The staff of `organization`, for checking a pool's members.
    async fn staff_ids(
        &self,
        organization: crate::ids::OrganizationId,
    ) -> Result<BTreeSet<AccountId>, RepoError> {
        Ok(self
            .p
            .accounts
            .staff_of(organization)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect())
    }

    /// Administrator: the organisation's pools.
    ///
    /// # Errors
    /// `Forbidden` for anyone but the organisation's administrators.
    pub async fn pools_to_manage(&self, actor: &Actor) -> Result<Vec<CarePool>, MessagingError> {
        let organization = self.admin_org(actor)?;
        Ok(self.p.messages.pools_of(organization).await?)
    }

    fn admin_org(&self, actor: &Actor) -> Result<crate::ids::OrganizationId, MessagingError> {
        let Actor::Staff { organization, .. } = actor else {
            return Err(MessagingError::Forbidden);
        };
        let business = Target::Organization {
            organization: *organization,
        };
        if decide(actor, Action::ManageTeam, business, self.p.clock.now()).is_allowed() {
            Ok(*organization)
        } else {
            Err(MessagingError::Forbidden)
        }
    }

    /// Administrator: a new care pool of the organisation, answered by `pool.staff` (staff of
    /// the organisation).
    ///
    /// # Errors
    /// `Forbidden`; `NotInPool` for a member who is not the organisation's staff; `Input`
    /// (`pool_name_taken`) for a name the organisation already uses.
    pub async fn create_pool(
        &self,
        actor: &Actor,
        pool: NewPool,
    ) -> Result<CarePool, MessagingError> {
        let organization = self.admin_org(actor)?;
        if !pool.staff.is_subset(&self.staff_ids(organization).await?) {
            return Err(MessagingError::NotInPool);
        }
        let made = CarePool {
            id: PoolId::generate(self.p.ids.as_ref()),
            organization,
            name: pool.name,
            answer_days: pool.answer_days,
            staff: pool.staff,
            active: pool.active,
        };
        match self.p.messages.create_pool(&made).await {
            Ok(()) => Ok(made),
            Err(RepoError::Conflict(_)) => Err(input(
                "pool_name_taken",
                "The organisation already has a team of that name.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Administrator: changes a pool of the organisation.
    ///
    /// # Errors
    /// As [`MessagingService::create_pool`]; `NotFound` for another organisation's pool.
    pub async fn update_pool(
        &self,
        actor: &Actor,
        id: PoolId,
        pool: NewPool,
    ) -> Result<CarePool, MessagingError> {
        let organization = self.admin_org(actor)?;
        let Some(existing) = self
            .p
            .messages
            .pool(id)
            .await?
            .filter(|p| p.organization == organization)
        else {
            return Err(MessagingError::NotFound);
        };
        if !pool.staff.is_subset(&self.staff_ids(organization).await?) {
            return Err(MessagingError::NotInPool);
        }
        let changed = CarePool {
            name: pool.name,
            answer_days: pool.answer_days,
            staff: pool.staff,
            active: pool.active,
            ..existing
        };
        match self.p.messages.update_pool(&changed).await {
            Ok(true) => Ok(changed),
            Ok(false) => Err(MessagingError::NotFound),
            Err(RepoError::Conflict(_)) => Err(input(
                "pool_name_taken",
                "The organisation already has a team of that name.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The patient's side: the chart the actor writes for, if it may message for it.
    pub(super) async fn writing_for(
        &self,
        actor: &Actor,
        action: Action,
        request_id: Option<&str>,
    ) -> Result<crate::patient::Patient, MessagingError> {
        let Some(patient) = actor.own_chart() else {
            return Err(MessagingError::Forbidden);
        };
        let chart = self
            .p
            .patients
            .find(patient)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let target = Target::Chart {
            patient: chart.id,
            organization: chart.organization_id,
        };
        if !decide(actor, action, target, self.p.clock.now()).is_allowed() {
            self.audit(actor, action, chart.id, Outcome::Denied, request_id)
                .await?;
            return Err(MessagingError::NotFound);
        }
        Ok(chart)
    }

    /// Patient (or a proxy who may message): the pools they may write to.
    ///
    /// # Errors
    /// `Forbidden` for staff; `NotFound` for a proxy without the messaging grant.
    pub async fn pools_to_write(&self, actor: &Actor) -> Result<Vec<CarePool>, MessagingError> {
        let chart = self.writing_for(actor, Action::Message, None).await?;
        Ok(self
            .p
            .messages
            .pools_of(chart.organization_id)
            .await?
            .into_iter()
            .filter(|p| p.active)
            .collect())
    }

    /// Patient (or a proxy who may message): starts a thread with one of the chart's
    /// organisation's pools. At most [`MessagingPorts::threads_per_day`] a day; safe to retry
    /// with the same `key`.
    ///
    /// # Errors
    /// See [`MessagingError`].
    pub async fn start_thread(
        &self,
        actor: &Actor,
        pool: PoolId,
        subject: &str,
        draft: Draft<'_>,
        request_id: Option<&str>,
    ) -> Result<Written<SentMessage>, MessagingError> {
        let key = key_of(draft.key)?;
        let (subject, body) = (subject_of(subject)?, text_of(draft.body)?);
        let author = author_of(actor).ok_or(MessagingError::Forbidden)?;
        if author.side != Side::Patient {
            return Err(MessagingError::Forbidden);
        }
        let chart = self.writing_for(actor, Action::Message, request_id).await?;
        let pool = self
            .p
            .messages
            .pool(pool)
            .await?
            .filter(|p| p.organization == chart.organization_id && p.active)
            .ok_or(input("invalid_pool", "Choose one of the teams listed."))?;
        let files = self.accept_files(draft.files)?;
        let now = self.p.clock.now();
        let key = key.map(|k| IdempotencyKey {
            account: author.account,
            key: k.to_owned(),
            fingerprint: self.fingerprint(
                &[
                    "start",
                    &pool.id.to_string(),
                    subject.as_str(),
                    body.as_str(),
                ],
                &files,
            ),
        });
        // A retry is answered with the first answer before the daily limit counts.
        if let Some(k) = &key
            && let Some(first) = self.replay(k).await?
        {
            return Ok(first);
        }
        let started = self
            .p
            .messages
            .started_since(chart.id, now - Duration::hours(24))
            .await?;
        if started >= self.p.threads_per_day {
            return Err(MessagingError::TooManyThreads {
                limit: self.p.threads_per_day,
            });
        }
        let thread = Thread {
            id: ThreadId::generate(self.p.ids.as_ref()),
            patient: chart.id,
            organization: chart.organization_id,
            pool: pool.id,
            subject,
            started_by: author.account,
            started_at: now,
            claimed_by: None,
            state: ThreadState::Open,
            last_from: Side::Patient,
            last_at: now,
        };
        let message = Message {
            id: MessageId::generate(self.p.ids.as_ref()),
            thread: thread.id,
            author,
            body,
            sent_at: now,
            attachments: files.iter().map(|f| f.attachment.clone()).collect(),
        };
        match self
            .p
            .messages
            .start(&thread, &message, &files, key.clone())
            .await?
        {
            Stored::New((thread, message)) => {
                self.audit(
                    actor,
                    Action::Message,
                    chart.id,
                    Outcome::Allowed,
                    request_id,
                )
                .await?;
                Ok(Written {
                    value: SentMessage { thread, message },
                    replayed: false,
                })
            }
            Stored::Replayed((thread, message)) => Ok(Written {
                value: SentMessage { thread, message },
                replayed: true,
            }),
            Stored::KeyReused => Err(MessagingError::KeyReused),
        }
    }

    /// The first answer of a send made before with this key: `KeyReused` when it carried
    /// something else; `None` when the key is new.
    async fn replay(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<Written<SentMessage>>, MessagingError> {
        match self.p.messages.keyed(key.account, &key.key).await? {
            None => Ok(None),
            Some((fingerprint, thread, message)) if fingerprint == key.fingerprint => {
                Ok(Some(Written {
                    value: SentMessage { thread, message },
                    replayed: true,
                }))
            }
            Some(_) => Err(MessagingError::KeyReused),
        }
    }

    /// A thread and its pool, when the actor may do `action` on it (else `NotFound`, written
    /// to the patient's history as refused).
    async fn thread_for(
        &self,
        actor: &Actor,
        id: ThreadId,
        action: Action,
        request_id: Option<&str>,
    ) -> Result<(Thread, CarePool), MessagingError> {
        let thread = self
            .p
            .messages
            .thread(id)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let pool = self
            .p
            .messages
            .pool(thread.pool)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let target = Target::Thread {
            patient: thread.patient,
            organization: thread.organization,
            pool_staff: &pool.staff,
        };
        if !decide(actor, action, target, self.p.clock.now()).is_allowed() {
            self.audit(actor, action, thread.patient, Outcome::Denied, request_id)
                .await?;
            return Err(MessagingError::NotFound);
        }
        Ok((thread, pool))
    }

    /// Patient (or a proxy who may message): the chart's threads, most recent first, with the
    /// staff messages not read yet. Audited as a look at the messages.
    ///
    /// # Errors
    /// See [`MessagingError`].
    pub async fn threads(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
    ) -> Result<Vec<ThreadSummary>, MessagingError> {
        let chart = self
            .writing_for(actor, Action::ReadMessages, request_id)
            .await?;
        let threads = self.p.messages.threads_of(chart.id).await?;
        self.audit(
            actor,
            Action::ReadMessages,
            chart.id,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(threads)
    }

    /// Staff: the inbox of the pools they answer — one state's threads (with the patient's
    /// name) and every state's count.
    ///
    /// # Errors
    /// `Forbidden` for anyone but staff.
    pub async fn inbox(
        &self,
        actor: &Actor,
        filter: InboxFilter,
        before: Option<ThreadId>,
    ) -> Result<Inbox, MessagingError> {
        let Actor::Staff {
            account,
            organization,
            ..
        } = actor
        else {
            return Err(MessagingError::Forbidden);
        };
        let pools: Vec<CarePool> = self
            .p
            .messages
            .pools_of(*organization)
            .await?
            .into_iter()
            .filter(|p| p.staff.contains(account))
            .collect();
        let ids: Vec<PoolId> = pools.iter().map(|p| p.id).collect();
        if ids.is_empty() {
            return Ok(Inbox {
                threads: Vec::new(),
                counts: InboxCounts::default(),
                older: None,
            });
        }
        let state = match filter {
            InboxFilter::New => InboxState::New,
            InboxFilter::Mine => InboxState::ClaimedBy(*account),
            InboxFilter::WaitingForPatient => InboxState::WaitingForPatient,
            InboxFilter::Closed => InboxState::Closed,
        };
        // A page starts after the thread named (one of these pools'), else at the newest.
        let after = match before {
            Some(id) => self
                .p
                .messages
                .thread(id)
                .await?
                .filter(|t| ids.contains(&t.pool))
                .map(|t| (t.last_at, t.id)),
            None => None,
        };
        let mut listed = self
            .p
            .messages
            .inbox(&ids, state, after, INBOX_PAGE + 1)
            .await?;
        let more = listed.len() > INBOX_PAGE as usize;
        listed.truncate(INBOX_PAGE as usize);
        let older = more.then(|| listed.last().map(|s| s.thread.id)).flatten();
        let counts = self.p.messages.inbox_counts(&ids).await?;
        let names = self
            .p
            .messages
            .patient_names(listed.iter().map(|s| s.thread.patient).collect())
            .await?;
        let mut out = Vec::with_capacity(listed.len());
        for summary in listed {
            let name = names
                .get(&summary.thread.patient)
                .cloned()
                .unwrap_or_default();
            let pool = pools
                .iter()
                .find(|p| p.id == summary.thread.pool)
                .map(|p| p.name.as_str().to_owned())
                .unwrap_or_default();
            out.push((summary, name, pool));
        }
        Ok(Inbox {
            threads: out,
            counts,
            older,
        })
    }

    /// Opens a thread: its messages with receipts and authors' names. The reader's side marks
    /// the other side's messages read (a member of staff opening it is the patient's read
    /// receipt). Audited as reading the patient's messages.
    ///
    /// # Errors
    /// See [`MessagingError`].
    pub async fn open_thread(
        &self,
        actor: &Actor,
        id: ThreadId,
        request_id: Option<&str>,
    ) -> Result<ThreadView, MessagingError> {
        let (thread, pool) = self
            .thread_for(actor, id, Action::ReadMessages, request_id)
            .await?;
        let reader = author_of(actor).ok_or(MessagingError::NotFound)?;
        let messages = self.p.messages.messages(thread.id).await?;
        // The other side's messages without a receipt are read now, by this reader.
        let unread: Vec<MessageId> = messages
            .iter()
            .filter(|(m, r)| m.author.side != reader.side && r.is_none())
            .map(|(m, _)| m.id)
            .collect();
        if !unread.is_empty() {
            self.p
                .messages
                .mark_read(
                    thread.id,
                    reader.side,
                    unread,
                    reader.account,
                    self.p.clock.now(),
                )
                .await?;
        }
        self.audit(
            actor,
            Action::ReadMessages,
            thread.patient,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        let mut names: BTreeMap<AccountId, String> = BTreeMap::new();
        for (m, _) in &messages {
            if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(m.author.account)
            {
                let name = self
                    .p
                    .accounts
                    .find(m.author.account)
                    .await?
                    .map(|a| a.name.full())
                    .unwrap_or_else(|| "Someone".to_owned());
                slot.insert(name);
            }
        }
        let patient_name = self
            .p
            .patients
            .find(thread.patient)
            .await?
            .map(|c| c.name.full())
            .unwrap_or_default();
        let mut colleagues = Vec::new();
        if reader.side == Side::Staff {
            for member in &pool.staff {
                if let Some(a) = self.p.accounts.find(*member).await? {
                    colleagues.push((a.id, a.name.full()));
                }
            }
        }
        Ok(ThreadView {
            colleagues,
            messages: messages
                .into_iter()
                .map(|(m, r)| {
                    let name = names.get(&m.author.account).cloned().unwrap_or_default();
                    (m, r, name)
                })
                .collect(),
            thread,
            pool,
            patient_name,
            side: reader.side,
        })
    }

    /// Writes in a thread (either side) while it is open; safe to retry with the same `key`.
    /// A reply from staff emails the patient's connected accounts that there is a new message
    /// — nothing else.
    ///
    /// # Errors
    /// See [`MessagingError`].
    pub async fn reply(
        &self,
        actor: &Actor,
        id: ThreadId,
        draft: Draft<'_>,
        request_id: Option<&str>,
    ) -> Result<Written<SentMessage>, MessagingError> {
        let key = key_of(draft.key)?;
        let body = text_of(draft.body)?;
        let author = author_of(actor).ok_or(MessagingError::NotFound)?;
        let (thread, _) = self
            .thread_for(actor, id, Action::Message, request_id)
            .await?;
        let files = self.accept_files(draft.files)?;
        let key = key.map(|k| IdempotencyKey {
            account: author.account,
            key: k.to_owned(),
            fingerprint: self
                .fingerprint(&["reply", &thread.id.to_string(), body.as_str()], &files),
        });
        if let Some(k) = &key
            && let Some(first) = self.replay(k).await?
        {
            return Ok(first);
        }
        if matches!(thread.state, ThreadState::Closed { .. }) {
            return Err(MessagingError::Closed);
        }
        let message = Message {
            id: MessageId::generate(self.p.ids.as_ref()),
            thread: thread.id,
            author,
            body,
            sent_at: self.p.clock.now(),
            attachments: files.iter().map(|f| f.attachment.clone()).collect(),
        };
        let stored = self
            .p
            .messages
            .send(&message, &files, key.clone())
            .await?
            .ok_or(MessagingError::Closed)?;
        let (message, replayed) = match stored {
            Stored::New(m) => (m, false),
            Stored::Replayed(m) => (m, true),
            Stored::KeyReused => return Err(MessagingError::KeyReused),
        };
        if !replayed {
            self.audit(
                actor,
                Action::Message,
                thread.patient,
                Outcome::Allowed,
                request_id,
            )
            .await?;
            if author.side == Side::Staff {
                self.tell_patient(thread.patient, Notice::NewMessage)
                    .await?;
            }
        }
        let thread = self
            .p
            .messages
            .thread(thread.id)
            .await?
            .ok_or(MessagingError::NotFound)?;
        Ok(Written {
            value: SentMessage { thread, message },
            replayed,
        })
    }

    fn accept_files(&self, files: Vec<IncomingFile>) -> Result<Vec<Upload>, MessagingError> {
        Ok(attachment::accept(
            files,
            self.p.max_file_bytes,
            self.p.ids.as_ref(),
        )?)
    }

    /// A file of a message, for a reader of its thread (the patient's side, the pool's staff):
    /// its description and a reader of its bytes. Audited as reading the patient's messages.
    ///
    /// # Errors
    /// `NotFound` for no such file or not the actor's thread.
    pub async fn download(
        &self,
        actor: &Actor,
        id: AttachmentId,
        request_id: Option<&str>,
    ) -> Result<Download, MessagingError> {
        let (attachment, thread) = self
            .p
            .messages
            .attachment(id)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let (thread, _) = self
            .thread_for(actor, thread, Action::ReadMessages, request_id)
            .await?;
        self.audit(
            actor,
            Action::ReadMessages,
            thread.patient,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(Download {
            attachment,
            messages: self.p.messages.clone(),
        })
    }

    /// Emails the accounts connected to a chart that something waits in the portal: no
    /// subject, no team, no medication, no content.
    pub(super) async fn tell_patient(
        &self,
        patient: crate::ids::PatientId,
        notice: Notice,
    ) -> Result<(), RepoError> {
        let (subject, what, page) = match notice {
            Notice::NewMessage => (
                "You have a new message",
                "You have a new message in your patient portal.",
                "messages",
            ),
            Notice::RefillChanged => (
                "A refill request changed",
                "A refill request changed in your patient portal.",
                "refills",
            ),
        };
        let body = format!(
            "Hello,\n\n{what}\nSign in to see it: {}/{page}\n",
            self.p.public_url
        );
        crate::account::email_chart(
            self.p.accounts.as_ref(),
            self.p.mailer.as_ref(),
            patient,
            subject,
            &body,
        )
        .await
    }

    /// Staff of the thread's pool: the thread and the staff member's account; `Forbidden` for
    /// the thread's patient side, `NotFound` for anyone else.
    async fn staff_thread(
        &self,
        actor: &Actor,
        id: ThreadId,
        request_id: Option<&str>,
    ) -> Result<(Thread, CarePool, AccountId), MessagingError> {
        let Actor::Staff { account, .. } = actor else {
            // The patient's side sees the thread but does not manage it: "not for your role";
            // anyone else learns nothing.
            self.thread_for(actor, id, Action::ReadMessages, request_id)
                .await?;
            return Err(MessagingError::Forbidden);
        };
        let (thread, pool) = self
            .thread_for(actor, id, Action::Message, request_id)
            .await?;
        Ok((thread, pool, *account))
    }

    /// Staff of the pool: takes a thread on (`assignee` `None`), or gives it to a colleague of
    /// the pool.
    ///
    /// # Errors
    /// `NotInPool` for an assignee who does not answer the pool.
    pub async fn claim(
        &self,
        actor: &Actor,
        id: ThreadId,
        assignee: Option<AccountId>,
        request_id: Option<&str>,
    ) -> Result<(), MessagingError> {
        let (thread, pool, me) = self.staff_thread(actor, id, request_id).await?;
        let to = assignee.unwrap_or(me);
        if !pool.staff.contains(&to) {
            return Err(MessagingError::NotInPool);
        }
        self.p.messages.set_claim(thread.id, Some(to)).await?;
        Ok(())
    }

    /// Staff of the pool: closes an open thread (the patient then starts a new one).
    ///
    /// # Errors
    /// `Closed` when it already is.
    pub async fn close(
        &self,
        actor: &Actor,
        id: ThreadId,
        request_id: Option<&str>,
    ) -> Result<(), MessagingError> {
        let (thread, _, me) = self.staff_thread(actor, id, request_id).await?;
        let closed = ThreadState::Closed {
            at: self.p.clock.now(),
            by: me,
        };
        if !self.p.messages.set_state(thread.id, closed).await? {
            return Err(MessagingError::Closed);
        }
        Ok(())
    }

    /// Staff of the pool: reopens a closed thread.
    ///
    /// # Errors
    /// `Input` (`thread_open`) when it is open.
    pub async fn reopen(
        &self,
        actor: &Actor,
        id: ThreadId,
        request_id: Option<&str>,
    ) -> Result<(), MessagingError> {
        let (thread, _, _) = self.staff_thread(actor, id, request_id).await?;
        if !self
            .p
            .messages
            .set_state(thread.id, ThreadState::Open)
            .await?
        {
            return Err(input("thread_open", "This conversation is open already."));
        }
        Ok(())
    }
}
