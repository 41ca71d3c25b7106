//! Messages: patients (and proxies who may message for them) write to their clinic's care
//! pools; the pools' staff answer from an inbox; administrators set the pools up. Sends take
//! an `Idempotency-Key` header: a retry answers the first answer and stores nothing.

use crate::consent::body;
use crate::error::{ApiError, ErrorBody};
use crate::records::request_id;
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload as UploadField;
use poem_openapi::{ApiRequest, ApiResponse, Multipart, Object, OpenApi, Tags};
use salus_domain::messaging::{
    Attachment, CarePool, Draft, FileKind, FileProblem, Inbox, InboxFilter, IncomingFile, Message,
    MessagingError, MessagingService, NewPool, Receipt, SentMessage, Thread, ThreadState,
    ThreadSummary, ThreadView,
};
use salus_domain::{AccountId, AttachmentId, PoolId, ThreadId};

#[derive(Tags)]
enum ApiTags {
    /// Secure messages between patients and their care team.
    Messages,
}

#[derive(Object)]
pub struct PoolDto {
    pub id: String,
    pub name: String,
    /// Patients may expect an answer within this many working days.
    pub answer_days: u8,
    /// Offered for new conversations.
    pub active: bool,
    /// The staff who answer it (administrators only).
    #[oai(skip_serializing_if_is_none)]
    pub staff_ids: Option<Vec<String>>,
}

#[derive(Object)]
pub struct PoolList {
    pub pools: Vec<PoolDto>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct PoolInput {
    /// 1 to 80 characters, unique in the organisation.
    pub name: String,
    /// 1 to 10 working days.
    pub answer_days: u8,
    /// Account ids of the organisation's staff who answer it.
    #[oai(default)]
    pub staff_ids: Vec<String>,
    #[oai(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewThreadDto {
    pub pool_id: String,
    /// 1 to 200 characters.
    pub subject: String,
    /// Plain text, 1 to 10,000 characters; line breaks are kept.
    pub body: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ReplyDto {
    /// Plain text, 1 to 10,000 characters; line breaks are kept.
    pub body: String,
}

/// A new conversation with files: the fields of `NewThreadDto` and up to 5 files (PDF, PNG
/// or JPEG, decided by their content; 10 MB each unless the deployment says otherwise).
#[derive(Multipart)]
pub struct NewThreadForm {
    pub pool_id: String,
    pub subject: String,
    pub body: String,
    pub files: Vec<UploadField>,
}

/// A message with files: its text and up to 5 files (PDF, PNG or JPEG, decided by their
/// content; 10 MB each unless the deployment says otherwise).
#[derive(Multipart)]
pub struct ReplyForm {
    pub body: String,
    pub files: Vec<UploadField>,
}

/// A new conversation: JSON for text only, a multipart form with files.
#[derive(ApiRequest)]
pub enum NewThreadRequest {
    Json(Json<NewThreadDto>),
    Form(NewThreadForm),
}

/// A message: JSON for text only, a multipart form with files.
#[derive(ApiRequest)]
pub enum ReplyRequest {
    Json(Json<ReplyDto>),
    Form(ReplyForm),
}

/// The files of a multipart form, read whole (the request's size is bounded before it is
/// read). A file that cannot be read from the form counts as refused, nothing sent.
async fn files_of(uploads: Vec<UploadField>) -> Result<Vec<IncomingFile>, MessagingError> {
    let mut files = Vec::with_capacity(uploads.len());
    for u in uploads {
        let name = u.file_name().unwrap_or_default().to_owned();
        let content = u
            .into_vec()
            .await
            .map_err(|_| MessagingError::File(salus_domain::messaging::FileProblem::Empty))?;
        files.push(IncomingFile { name, content });
    }
    Ok(files)
}

/// A file of a message, as lists show it.
#[derive(Object)]
pub struct AttachmentDto {
    pub id: String,
    /// The name it downloads as.
    pub name: String,
    /// `application/pdf`, `image/png` or `image/jpeg`, decided from its content.
    pub media_type: String,
    pub size: u64,
}

fn attachment_dto(a: &Attachment) -> AttachmentDto {
    AttachmentDto {
        id: a.id.to_string(),
        name: a.name.clone(),
        media_type: a.kind.media_type().to_owned(),
        size: a.size,
    }
}

/// A file's bytes, served as what its content is.
pub struct FileBytes {
    kind: FileKind,
    body: poem::Body,
}

impl poem::IntoResponse for FileBytes {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(self.kind.media_type())
            .body(self.body)
    }
}

impl poem_openapi::ResponseContent for FileBytes {
    fn media_types() -> Vec<poem_openapi::registry::MetaMediaType> {
        [FileKind::Pdf, FileKind::Png, FileKind::Jpeg]
            .into_iter()
            .map(|k| poem_openapi::registry::MetaMediaType {
                content_type: k.media_type(),
                schema: poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
                    poem_openapi::registry::MetaSchema {
                        format: Some("binary"),
                        ..poem_openapi::registry::MetaSchema::new("string")
                    },
                )),
            })
            .collect()
    }
}

/// A file's download, or why not.
#[derive(ApiResponse)]
enum FileAnswer {
    /// The file, to save (never shown in the browser).
    #[oai(status = 200)]
    File(
        FileBytes,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such file, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ClaimDto {
    /// A colleague of the pool to give the conversation to; yourself when left out.
    pub assignee_id: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ThreadDto {
    pub id: String,
    pub pool_id: String,
    pub subject: String,
    /// `open` or `closed`.
    pub state: String,
    /// `patient` (waiting for the care team) or `staff` (waiting for the patient).
    pub last_from: String,
    pub last_at: chrono::DateTime<chrono::Utc>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub claimed_by: Option<String>,
    /// Messages of the other side the reader has not opened.
    pub unread: Option<u32>,
    /// Whose chart (staff lists only).
    pub patient_name: Option<String>,
    pub pool_name: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MessageDto {
    pub id: String,
    pub thread_id: String,
    /// `patient` or `staff`.
    pub side: String,
    pub author_name: Option<String>,
    /// Plain text; show it escaped, with its line breaks.
    pub body: String,
    pub sent_at: chrono::DateTime<chrono::Utc>,
    /// When the other side first opened it.
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its files, in the order sent.
    pub attachments: Vec<AttachmentDto>,
}

#[derive(Object)]
pub struct SentDto {
    pub thread: ThreadDto,
    pub message: MessageDto,
}

#[derive(Object)]
pub struct ThreadList {
    pub threads: Vec<ThreadDto>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InboxDto {
    pub threads: Vec<ThreadDto>,
    /// More, older conversations follow: ask again with `before` set to this.
    pub older: Option<String>,
    pub new: u32,
    pub waiting_for_patient: u32,
    pub closed: u32,
    /// Open conversations with a patient message nobody has read.
    pub unread: u32,
}

#[derive(Object)]
pub struct ThreadViewDto {
    pub thread: ThreadDto,
    pub pool_name: String,
    pub answer_days: u8,
    pub messages: Vec<MessageDto>,
}

fn pool_dto(p: &CarePool, with_staff: bool) -> PoolDto {
    PoolDto {
        id: p.id.to_string(),
        name: p.name.as_str().to_owned(),
        answer_days: p.answer_days,
        active: p.active,
        staff_ids: with_staff.then(|| p.staff.iter().map(ToString::to_string).collect()),
    }
}

fn thread_dto(t: &Thread) -> ThreadDto {
    ThreadDto {
        id: t.id.to_string(),
        pool_id: t.pool.to_string(),
        subject: t.subject.as_str().to_owned(),
        state: match t.state {
            ThreadState::Open => "open",
            ThreadState::Closed { .. } => "closed",
        }
        .to_owned(),
        last_from: t.last_from.code().to_owned(),
        last_at: t.last_at,
        started_at: t.started_at,
        claimed_by: t.claimed_by.map(|a| a.to_string()),
        unread: None,
        patient_name: None,
        pool_name: None,
    }
}

fn summary_dto(s: &ThreadSummary) -> ThreadDto {
    ThreadDto {
        unread: Some(s.unread),
        ..thread_dto(&s.thread)
    }
}

fn message_dto(m: &Message, receipt: Option<Receipt>, author: Option<String>) -> MessageDto {
    MessageDto {
        id: m.id.to_string(),
        thread_id: m.thread.to_string(),
        side: m.author.side.code().to_owned(),
        author_name: author,
        body: m.body.as_str().to_owned(),
        sent_at: m.sent_at,
        read_at: receipt.map(|r| r.read_at),
        attachments: m.attachments.iter().map(attachment_dto).collect(),
    }
}

fn sent_dto(s: &SentMessage) -> SentDto {
    SentDto {
        thread: thread_dto(&s.thread),
        message: message_dto(&s.message, None, None),
    }
}

/// The answers a messaging operation may give, besides its success.
#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
pub(crate) enum Answer<T: poem_openapi::types::ToJSON + Send + Sync> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Stored (or, for a retry with the same `Idempotency-Key`, the first answer).
    #[oai(status = 201)]
    Created(Json<T>),
    #[oai(status = 204)]
    Done,
    /// `invalid_subject`, `invalid_body`, `invalid_pool`, `invalid_name`,
    /// `invalid_answer_days`, `invalid_idempotency_key`, `not_in_pool`, `pool_name_taken`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such conversation or team, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `thread_closed` (start a new conversation), `thread_open`, `idempotency_key_reused`;
    /// for refills `refill_already_requested`, `medication_not_active`, `refill_not_pending`,
    /// `not_requester`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `file_too_large`: a file over the size a message may carry.
    #[oai(status = 413)]
    TooLarge(Json<ErrorBody>),
    /// `unsupported_file_type`: a file that is not a PDF, PNG or JPEG by its content.
    #[oai(status = 415)]
    Unsupported(Json<ErrorBody>),
    /// `too_many_threads`: the most new conversations a day.
    #[oai(status = 429)]
    TooMany(Json<ErrorBody>),
}

pub(crate) fn refused<T: poem_openapi::types::ToJSON + Send + Sync>(
    e: MessagingError,
) -> Result<Answer<T>, ApiError> {
    let b = body(e.code(), &e.to_string());
    Ok(match e {
        MessagingError::NotFound => Answer::NotFound(b),
        MessagingError::Forbidden => Answer::Forbidden(b),
        MessagingError::Input { .. } | MessagingError::NotInPool => Answer::Invalid(b),
        MessagingError::File(FileProblem::TooLarge { .. }) => Answer::TooLarge(b),
        MessagingError::File(FileProblem::NotAllowed) => Answer::Unsupported(b),
        MessagingError::File(_) => Answer::Invalid(b),
        MessagingError::Closed
        | MessagingError::KeyReused
        | MessagingError::Refill(_)
        | MessagingError::RefillPending
        | MessagingError::NotRefillable => Answer::Conflict(b),
        MessagingError::TooManyThreads { .. } => Answer::TooMany(b),
        MessagingError::Repo(r) => return Err(r.into()),
    })
}

fn thread_id(id: &str) -> Result<ThreadId, MessagingError> {
    ThreadId::parse(id).map_err(|_| MessagingError::NotFound)
}

fn pool_input(p: &PoolInput) -> Result<NewPool, MessagingError> {
    let staff = p
        .staff_ids
        .iter()
        .map(|s| AccountId::parse(s).map_err(|_| MessagingError::NotInPool))
        .collect::<Result<Vec<_>, _>>()?;
    NewPool::from_fields(&p.name, &p.answer_days.to_string(), staff, p.active)
}

pub(crate) struct MessagingApi {
    pub(crate) messaging: MessagingService,
}

/// The actor of a session, or the answer for an account with no chart yet.
#[macro_export]
#[doc(hidden)]
macro_rules! actor_or {
    ($token:expr) => {
        match $token.actor() {
            Ok(a) => a,
            Err(_) => return refused(MessagingError::Forbidden),
        }
    };
}

impl MessagingApi {
    /// Staff of the team: closes a conversation (`reopen` false) or reopens it.
    async fn open_or_close(
        &self,
        req: &Request,
        token: &SessionToken,
        id: &str,
        reopen: bool,
    ) -> Result<Answer<ThreadDto>, ApiError> {
        let actor = actor_or!(token);
        let id = match thread_id(id) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        let rid = request_id(req);
        let done = if reopen {
            self.messaging.reopen(&actor, id, rid.as_deref()).await
        } else {
            self.messaging.close(&actor, id, rid.as_deref()).await
        };
        match done {
            Ok(()) => Ok(Answer::Done),
            Err(e) => refused(e),
        }
    }
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagingApi {
    /// Patient (or a proxy who may message): the teams you may write to, with when to expect
    /// an answer. Messages are not for emergencies.
    #[oai(path = "/v1/pools", method = "get", operation_id = "writablePools")]
    async fn pools(&self, token: SessionToken) -> Result<Answer<PoolList>, ApiError> {
        let actor = actor_or!(token);
        match self.messaging.pools_to_write(&actor).await {
            Ok(p) => Ok(Answer::Ok(Json(PoolList {
                pools: p.iter().map(|p| pool_dto(p, false)).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Patient (or a proxy who may message): start a conversation with a team. At most 10
    /// new conversations a day.
    #[oai(path = "/v1/threads", method = "post", operation_id = "startThread")]
    async fn start(
        &self,
        req: &Request,
        token: SessionToken,
        #[oai(name = "Idempotency-Key")] key: Header<Option<String>>,
        b: NewThreadRequest,
    ) -> Result<Answer<SentDto>, ApiError> {
        let actor = actor_or!(token);
        let (pool, subject, body, files) = match b {
            NewThreadRequest::Json(j) => (j.0.pool_id, j.0.subject, j.0.body, Vec::new()),
            NewThreadRequest::Form(f) => match files_of(f.files).await {
                Ok(files) => (f.pool_id, f.subject, f.body, files),
                Err(e) => return refused(e),
            },
        };
        let Ok(pool) = PoolId::parse(&pool) else {
            return refused(MessagingError::Input {
                code: "invalid_pool",
                message: "Choose one of the teams listed.",
            });
        };
        let draft = Draft {
            body: &body,
            files,
            key: key.0.as_deref(),
        };
        match self
            .messaging
            .start_thread(&actor, pool, &subject, draft, request_id(req).as_deref())
            .await
        {
            Ok(w) => Ok(Answer::Created(Json(sent_dto(&w.value)))),
            Err(e) => refused(e),
        }
    }

    /// Patient (or a proxy who may message): your conversations, most recent first, with the
    /// care team's messages you have not opened.
    #[oai(path = "/v1/threads", method = "get", operation_id = "listThreads")]
    async fn threads(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<Answer<ThreadList>, ApiError> {
        let actor = actor_or!(token);
        match self
            .messaging
            .threads(&actor, request_id(req).as_deref())
            .await
        {
            Ok(t) => Ok(Answer::Ok(Json(ThreadList {
                threads: t.iter().map(summary_dto).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Either side: one conversation with its messages and when the other side read them.
    /// Opening it marks the other side's messages read.
    #[oai(path = "/v1/threads/:id", method = "get", operation_id = "openThread")]
    async fn open(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<ThreadViewDto>, ApiError> {
        let actor = actor_or!(token);
        let id = match thread_id(&id.0) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        match self
            .messaging
            .open_thread(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(v) => Ok(Answer::Ok(Json(view_dto(&v)))),
            Err(e) => refused(e),
        }
    }

    /// Either side: write in an open conversation.
    #[oai(
        path = "/v1/threads/:id/messages",
        method = "post",
        operation_id = "replyInThread"
    )]
    async fn reply(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] key: Header<Option<String>>,
        b: ReplyRequest,
    ) -> Result<Answer<MessageDto>, ApiError> {
        let actor = actor_or!(token);
        let id = match thread_id(&id.0) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        let (body, files) = match b {
            ReplyRequest::Json(j) => (j.0.body, Vec::new()),
            ReplyRequest::Form(f) => match files_of(f.files).await {
                Ok(files) => (f.body, files),
                Err(e) => return refused(e),
            },
        };
        let draft = Draft {
            body: &body,
            files,
            key: key.0.as_deref(),
        };
        match self
            .messaging
            .reply(&actor, id, draft, request_id(req).as_deref())
            .await
        {
            Ok(w) => Ok(Answer::Created(Json(message_dto(
                &w.value.message,
                None,
                None,
            )))),
            Err(e) => refused(e),
        }
    }

    /// Either side of the conversation: download one of its files. Served as an attachment
    /// of the type its content is, never to be shown in the browser.
    #[oai(
        path = "/v1/attachments/:id",
        method = "get",
        operation_id = "downloadAttachment"
    )]
    async fn download(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<FileAnswer, ApiError> {
        let not_found = |e: MessagingError| FileAnswer::NotFound(body(e.code(), &e.to_string()));
        let Ok(actor) = token.actor() else {
            let e = MessagingError::Forbidden;
            return Ok(FileAnswer::Forbidden(body(e.code(), &e.to_string())));
        };
        let Ok(id) = AttachmentId::parse(&id.0) else {
            return Ok(not_found(MessagingError::NotFound));
        };
        match self
            .messaging
            .download(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(d) => {
                use futures_util::TryStreamExt;
                let (kind, name) = (d.attachment.kind, d.attachment.disposition());
                let stream = d
                    .stream()
                    .map_err(|_| std::io::Error::other("the file could not be read"));
                Ok(FileAnswer::File(
                    FileBytes {
                        kind,
                        body: poem::Body::from_bytes_stream(stream),
                    },
                    name,
                    "nosniff".to_owned(),
                ))
            }
            Err(MessagingError::Repo(r)) => Err(r.into()),
            Err(e) => Ok(not_found(e)),
        }
    }

    /// Staff: the conversations of the teams you answer, in one state (`new`, `mine`,
    /// `waiting` for the patient, `closed`), most recent first, 50 a page (the next page:
    /// `before` = the answer's `older`), with every state's count.
    #[oai(path = "/v1/staff/inbox", method = "get", operation_id = "staffInbox")]
    async fn inbox(
        &self,
        token: SessionToken,
        state: Query<Option<String>>,
        before: Query<Option<String>>,
    ) -> Result<Answer<InboxDto>, ApiError> {
        let actor = actor_or!(token);
        let Some(filter) = InboxFilter::from_code(state.0.as_deref().unwrap_or("new")) else {
            return refused(MessagingError::Input {
                code: "invalid_state",
                message: "Choose new, mine, waiting or closed.",
            });
        };
        // A `before` that names no thread of these teams starts at the newest.
        let before = before.0.as_deref().and_then(|b| ThreadId::parse(b).ok());
        match self.messaging.inbox(&actor, filter, before).await {
            Ok(inbox) => Ok(Answer::Ok(Json(inbox_dto(&inbox)))),
            Err(e) => refused(e),
        }
    }

    /// Staff of the team: take a conversation on, or give it to a colleague of the team.
    #[oai(
        path = "/v1/threads/:id/claim",
        method = "post",
        operation_id = "claimThread"
    )]
    async fn claim(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<ClaimDto>,
    ) -> Result<Answer<ThreadDto>, ApiError> {
        let actor = actor_or!(token);
        let id = match thread_id(&id.0) {
            Ok(id) => id,
            Err(e) => return refused(e),
        };
        let assignee = match b.0.assignee_id.as_deref().map(AccountId::parse) {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(_)) => return refused(MessagingError::NotInPool),
        };
        match self
            .messaging
            .claim(&actor, id, assignee, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(Answer::Done),
            Err(e) => refused(e),
        }
    }

    /// Staff of the team: close a conversation (the patient starts a new one to write again).
    #[oai(
        path = "/v1/threads/:id/close",
        method = "post",
        operation_id = "closeThread"
    )]
    async fn close(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<ThreadDto>, ApiError> {
        self.open_or_close(req, &token, &id.0, false).await
    }

    /// Staff of the team: reopen a closed conversation.
    #[oai(
        path = "/v1/threads/:id/reopen",
        method = "post",
        operation_id = "reopenThread"
    )]
    async fn reopen(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<ThreadDto>, ApiError> {
        self.open_or_close(req, &token, &id.0, true).await
    }

    /// Administrator: the organisation's teams, with their staff.
    #[oai(path = "/v1/staff/pools", method = "get", operation_id = "listPools")]
    async fn all_pools(&self, token: SessionToken) -> Result<Answer<PoolList>, ApiError> {
        let actor = actor_or!(token);
        match self.messaging.pools_to_manage(&actor).await {
            Ok(p) => Ok(Answer::Ok(Json(PoolList {
                pools: p.iter().map(|p| pool_dto(p, true)).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Administrator: a new team that answers messages.
    #[oai(path = "/v1/staff/pools", method = "post", operation_id = "createPool")]
    async fn create_pool(
        &self,
        token: SessionToken,
        b: Json<PoolInput>,
    ) -> Result<Answer<PoolDto>, ApiError> {
        let actor = actor_or!(token);
        let pool = match pool_input(&b.0) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self.messaging.create_pool(&actor, pool).await {
            Ok(p) => Ok(Answer::Created(Json(pool_dto(&p, true)))),
            Err(e) => refused(e),
        }
    }

    /// Administrator: change a team (name, answer time, staff, whether it is offered).
    #[oai(
        path = "/v1/staff/pools/:id",
        method = "put",
        operation_id = "updatePool"
    )]
    async fn update_pool(
        &self,
        token: SessionToken,
        id: Path<String>,
        b: Json<PoolInput>,
    ) -> Result<Answer<PoolDto>, ApiError> {
        let actor = actor_or!(token);
        let Ok(id) = PoolId::parse(&id.0) else {
            return refused(MessagingError::NotFound);
        };
        let pool = match pool_input(&b.0) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self.messaging.update_pool(&actor, id, pool).await {
            Ok(p) => Ok(Answer::Ok(Json(pool_dto(&p, true)))),
            Err(e) => refused(e),
        }
    }
}

fn view_dto(v: &ThreadView) -> ThreadViewDto {
    ThreadViewDto {
        thread: ThreadDto {
            patient_name: (v.side == salus_domain::messaging::Side::Staff)
                .then(|| v.patient_name.clone()),
            ..thread_dto(&v.thread)
        },
        pool_name: v.pool.name.as_str().to_owned(),
        answer_days: v.pool.answer_days,
        messages: v
            .messages
            .iter()
            .map(|(m, r, name)| message_dto(m, *r, Some(name.clone())))
            .collect(),
    }
}

fn inbox_dto(inbox: &Inbox) -> InboxDto {
    let c = inbox.counts;
    InboxDto {
        older: inbox.older.map(|t| t.to_string()),
        threads: inbox
            .threads
            .iter()
            .map(|(s, patient, pool)| ThreadDto {
                patient_name: Some(patient.clone()),
                pool_name: Some(pool.clone()),
                ..summary_dto(s)
            })
            .collect(),
        new: c.new,
        waiting_for_patient: c.waiting_for_patient,
        closed: c.closed,
        unread: c.unread,
    }
}

crate::redacted_debug!(
    AttachmentDto,
    NewThreadForm,
    ReplyForm,
    NewThreadRequest,
    ReplyRequest,
    PoolDto,
    PoolList,
    PoolInput,
    NewThreadDto,
    ReplyDto,
    ClaimDto,
    ThreadDto,
    MessageDto,
    SentDto,
    ThreadList,
    InboxDto,
    ThreadViewDto
);
