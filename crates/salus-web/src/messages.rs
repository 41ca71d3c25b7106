//! Messages in the pages: a patient's (or a proxy's) conversations with the care team, the
//! compose page (not for emergencies; when to expect an answer), one conversation with its
//! read receipts and a reply form; the staff inbox of the teams they answer; the
//! administrator's teams. Every form carries a one-time key, so a double click or a resent
//! form stores one message. The domain's `MessagingService` decides and audits.

use crate::account::with_status;
use crate::form::Problems;
use crate::session::{Acting, CheckedFiles, CheckedForm, NoFields, Refill, StaffMember, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::messaging::{
    Attachment, CarePool, Draft, FileProblem, InboxFilter, MessagingError, NewPool, Side,
    ThreadState, ThreadView,
};
use salus_domain::{AccountId, PoolId, ThreadId, when};
use serde::Deserialize;
use std::sync::Arc;

/// A fresh one-time key for a form (its idempotency key).
fn form_key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a refusal answers when it is not about a field.
fn failed(e: MessagingError) -> Response {
    match e {
        MessagingError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such conversation.",
        ),
        MessagingError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is not for your role.",
        ),
        MessagingError::TooManyThreads { .. } => error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many new conversations today",
            &e.to_string(),
        ),
        MessagingError::Repo(r) => crate::unavailable("messaging failed", &r),
        other => error_page(StatusCode::CONFLICT, "Not sent", &other.to_string()),
    }
}

struct ThreadRow {
    id: String,
    subject: String,
    team: String,
    when: String,
    unread: u32,
    closed: bool,
    waiting_for_you: bool,
    patient: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct ListPage {
    threads: Vec<ThreadRow>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

async fn zone(state: &WebState, acting: &Acting) -> salus_domain::chrono_tz::Tz {
    state
        .records
        .time_zone(&acting.actor)
        .await
        .unwrap_or(salus_domain::chrono_tz::UTC)
}

/// The patient's conversations.
#[handler]
pub(crate) async fn list(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Query(q): Query<DoneQuery>,
) -> Response {
    let threads = match state.messaging.threads(&acting.actor, rid.get()).await {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let pools = match state.messaging.pools_to_write(&acting.actor).await {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let tz = zone(&state, &acting).await;
    let team = |id: PoolId| {
        pools
            .iter()
            .find(|p| p.id == id)
            .map_or("Your care team".to_owned(), |p| p.name.as_str().to_owned())
    };
    render(&ListPage {
        notice: (q.done.as_deref() == Some("sent")).then_some("Sent."),
        threads: threads
            .iter()
            .map(|s| ThreadRow {
                id: s.thread.id.to_string(),
                subject: s.thread.subject.as_str().to_owned(),
                team: team(s.thread.pool),
                when: when::moment(s.thread.last_at, tz),
                unread: s.unread,
                closed: matches!(s.thread.state, ThreadState::Closed { .. }),
                waiting_for_you: s.thread.last_from == Side::Staff,
                patient: String::new(),
            })
            .collect(),
    })
}

struct PoolOption {
    id: String,
    name: String,
    answer_days: u8,
    selected: bool,
}

#[derive(Template)]
#[template(path = "message_new.html")]
struct ComposePage<'a> {
    csrf: &'a str,
    key: String,
    max_mb: u64,
    pools: Vec<PoolOption>,
    subject: String,
    body: String,
    problems: Problems,
}

fn pool_options(pools: &[CarePool], chosen: &str) -> Vec<PoolOption> {
    pools
        .iter()
        .map(|p| PoolOption {
            id: p.id.to_string(),
            name: p.name.as_str().to_owned(),
            answer_days: p.answer_days,
            selected: p.id.to_string() == chosen,
        })
        .collect()
}

/// The compose page.
#[handler]
pub(crate) async fn compose(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
) -> Response {
    let pools = match state.messaging.pools_to_write(&acting.actor).await {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    render(&ComposePage {
        csrf: &csrf.0,
        key: form_key(),
        max_mb: state.messaging.max_file_mb(),
        pools: pool_options(&pools, ""),
        subject: String::new(),
        body: String::new(),
        problems: Problems::default(),
    })
}

#[derive(Deserialize)]
pub(crate) struct ComposeForm {
    #[serde(default)]
    pool: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    key: String,
}

impl Refill for ComposeForm {}

/// The status a refused message answers: what was wrong with its files, or its fields.
fn refusal_status(e: &MessagingError) -> StatusCode {
    match e {
        MessagingError::File(FileProblem::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        MessagingError::File(FileProblem::NotAllowed) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Starts a conversation.
#[handler]
pub(crate) async fn start(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    CheckedFiles { form: f, files }: CheckedFiles<ComposeForm>,
) -> Response {
    let refused = |field: &'static str, e: &MessagingError, pools: &[CarePool]| {
        with_status(
            render(&ComposePage {
                csrf: &csrf.0,
                // The same key: what was stored under it (nothing) stays the answer.
                key: f.key.clone(),
                max_mb: state.messaging.max_file_mb(),
                pools: pool_options(pools, &f.pool),
                subject: f.subject.clone(),
                body: f.body.clone(),
                problems: Problems::one(field, e.to_string()),
            }),
            refusal_status(e),
        )
    };
    let pools = match state.messaging.pools_to_write(&acting.actor).await {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let Ok(pool) = PoolId::parse(&f.pool) else {
        let e = MessagingError::Input {
            code: "invalid_pool",
            message: "Choose the team to write to.",
        };
        return refused("pool", &e, &pools);
    };
    let draft = Draft {
        body: &f.body,
        files,
        key: Some(&f.key),
    };
    match state
        .messaging
        .start_thread(&acting.actor, pool, &f.subject, draft, rid.get())
        .await
    {
        Ok(w) => see_other(&format!("/messages/{}?done=sent", w.value.thread.id)),
        Err(e @ (MessagingError::Input { .. } | MessagingError::File(_))) => {
            let field = match e.code() {
                "invalid_subject" => "subject",
                "invalid_body" => "body",
                "invalid_pool" => "pool",
                _ => "files",
            };
            refused(field, &e, &pools)
        }
        Err(e) => failed(e),
    }
}

struct MessageRow {
    mine: bool,
    author: String,
    when: String,
    body: String,
    read: Option<String>,
    files: Vec<FileRow>,
}

struct FileRow {
    id: String,
    name: String,
    size: String,
}

fn file_row(a: &Attachment) -> FileRow {
    let size = if a.size >= 1024 * 1024 {
        format!("{:.1} MB", a.size as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", a.size.div_ceil(1024))
    };
    FileRow {
        id: a.id.to_string(),
        name: a.name.clone(),
        size: format!("{} · {size}", a.kind.extension().to_uppercase()),
    }
}

#[derive(Template)]
#[template(path = "message_thread.html")]
struct ThreadPage<'a> {
    csrf: &'a str,
    key: String,
    id: String,
    subject: String,
    team: String,
    answer_days: u8,
    closed: bool,
    staff: bool,
    patient: String,
    /// Clinicians get a link to the chart beside the thread.
    chart: Option<String>,
    claimed_by: Option<String>,
    colleagues: Vec<(String, String)>,
    messages: Vec<MessageRow>,
    notice: Option<&'static str>,
    problems: Problems,
    draft: String,
    base: &'static str,
    max_mb: u64,
}

fn thread_page<'a>(
    csrf: &'a str,
    v: &ThreadView,
    tz: salus_domain::chrono_tz::Tz,
    clinician: bool,
    notice: Option<&'static str>,
    (problems, draft): (Problems, String),
    max_mb: u64,
) -> ThreadPage<'a> {
    let staff = v.side == Side::Staff;
    let name_of = |id: AccountId| {
        v.colleagues
            .iter()
            .find(|(a, _)| *a == id)
            .map(|(_, n)| n.clone())
    };
    ThreadPage {
        csrf,
        key: form_key(),
        id: v.thread.id.to_string(),
        subject: v.thread.subject.as_str().to_owned(),
        team: v.pool.name.as_str().to_owned(),
        answer_days: v.pool.answer_days,
        closed: matches!(v.thread.state, ThreadState::Closed { .. }),
        staff,
        patient: v.patient_name.clone(),
        chart: (staff && clinician).then(|| v.thread.patient.to_string()),
        claimed_by: v.thread.claimed_by.and_then(name_of),
        colleagues: v
            .colleagues
            .iter()
            .map(|(a, n)| (a.to_string(), n.clone()))
            .collect(),
        messages: v
            .messages
            .iter()
            .map(|(m, r, name)| MessageRow {
                mine: m.author.side == v.side,
                author: if m.author.side == Side::Staff && !staff {
                    format!("{name} ({})", v.pool.name.as_str())
                } else {
                    name.clone()
                },
                when: when::moment(m.sent_at, tz),
                body: m.body.as_str().to_owned(),
                read: r.map(|r| when::moment(r.read_at, tz)),
                files: m.attachments.iter().map(file_row).collect(),
            })
            .collect(),
        notice,
        problems,
        draft,
        base: if staff { "/staff/inbox" } else { "/messages" },
        max_mb,
    }
}

/// The conversation an address names, or the "not found" page.
fn thread_id(id: &str) -> Result<ThreadId, Box<Response>> {
    ThreadId::parse(id).map_err(|_| Box::new(failed(MessagingError::NotFound)))
}

/// One conversation, for either side.
#[handler]
pub(crate) async fn show(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let id = match thread_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let view = match state
        .messaging
        .open_thread(&acting.actor, id, rid.get())
        .await
    {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let tz = zone(&state, &acting).await;
    let notice = match q.done.as_deref() {
        Some("sent") => Some("Sent."),
        Some("claimed") => Some("It is yours now."),
        Some("closed") => Some("Closed."),
        Some("reopened") => Some("Reopened."),
        _ => None,
    };
    render(&thread_page(
        &csrf.0,
        &view,
        tz,
        is_clinician(&acting),
        notice,
        (Problems::default(), String::new()),
        state.messaging.max_file_mb(),
    ))
}

fn is_clinician(acting: &Acting) -> bool {
    matches!(
        acting.actor,
        salus_domain::access::Actor::Staff {
            role: salus_domain::account::StaffRole::Clinician,
            ..
        }
    )
}

#[derive(Deserialize)]
pub(crate) struct ReplyForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    key: String,
}

impl Refill for ReplyForm {}

/// Writes in a conversation (either side).
#[handler]
pub(crate) async fn reply(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(id): Path<String>,
    CheckedFiles { form: f, files }: CheckedFiles<ReplyForm>,
) -> Response {
    let id = match thread_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let draft = Draft {
        body: &f.body,
        files,
        key: Some(&f.key),
    };
    match state
        .messaging
        .reply(&acting.actor, id, draft, rid.get())
        .await
    {
        Ok(w) => {
            let base = if w.value.message.author.side == Side::Staff {
                "/staff/inbox"
            } else {
                "/messages"
            };
            see_other(&format!("{base}/{id}?done=sent"))
        }
        Err(e @ (MessagingError::Input { .. } | MessagingError::File(_))) => {
            let view = match state
                .messaging
                .open_thread(&acting.actor, id, rid.get())
                .await
            {
                Ok(v) => v,
                Err(e) => return failed(e),
            };
            let tz = zone(&state, &acting).await;
            let field = if matches!(e, MessagingError::File(_)) {
                "files"
            } else {
                "body"
            };
            let mut page = thread_page(
                &csrf.0,
                &view,
                tz,
                is_clinician(&acting),
                None,
                (Problems::one(field, e.to_string()), f.body.clone()),
                state.messaging.max_file_mb(),
            );
            page.key = f.key.clone();
            with_status(render(&page), refusal_status(&e))
        }
        Err(e) => failed(e),
    }
}

/// A file of a message, for either side of its conversation: saved, never shown inline.
#[handler]
pub(crate) async fn download(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let not_found = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such file, or it is not yours to see.",
        )
    };
    let Ok(id) = salus_domain::AttachmentId::parse(&id) else {
        return not_found();
    };
    match state.messaging.download(&acting.actor, id, rid.get()).await {
        Ok(d) => {
            use futures_util::TryStreamExt;
            let (kind, disposition) = (d.attachment.kind, d.attachment.disposition());
            let stream = d
                .stream()
                .map_err(|_| std::io::Error::other("the file could not be read"));
            Response::builder()
                .content_type(kind.media_type())
                .header(poem::http::header::CONTENT_DISPOSITION, disposition)
                .header("X-Content-Type-Options", "nosniff")
                .header(poem::http::header::CACHE_CONTROL, "no-store")
                .body(poem::Body::from_bytes_stream(stream))
        }
        Err(MessagingError::Repo(r)) => crate::unavailable("download failed", &r),
        Err(_) => not_found(),
    }
}

struct Tab {
    code: &'static str,
    label: &'static str,
    count: Option<u32>,
    current: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    tabs: Vec<Tab>,
    /// The next page's link, when older conversations follow.
    older: Option<String>,
    threads: Vec<ThreadRow>,
    unread: u32,
    empty: &'static str,
}

#[derive(Deserialize)]
pub(crate) struct InboxQuery {
    state: Option<String>,
    before: Option<String>,
}

/// Staff: the inbox of the teams they answer.
#[handler]
pub(crate) async fn inbox(
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Query(q): Query<InboxQuery>,
) -> Response {
    let filter =
        InboxFilter::from_code(q.state.as_deref().unwrap_or("new")).unwrap_or(InboxFilter::New);
    let before = q.before.as_deref().and_then(|b| ThreadId::parse(b).ok());
    let inbox = match state.messaging.inbox(&me.actor, filter, before).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let (threads, counts) = (inbox.threads, inbox.counts);
    let tz = zone(&state, &me).await;
    let tabs = [
        (InboxFilter::New, "New", Some(counts.new)),
        (InboxFilter::Mine, "Mine", None),
        (
            InboxFilter::WaitingForPatient,
            "Waiting for the patient",
            Some(counts.waiting_for_patient),
        ),
        (InboxFilter::Closed, "Closed", Some(counts.closed)),
    ]
    .into_iter()
    .map(|(f, label, count)| Tab {
        code: f.code(),
        label,
        count,
        current: f == filter,
    })
    .collect();
    render(&InboxPage {
        older: inbox
            .older
            .map(|t| format!("/staff/inbox?state={}&before={t}", filter.code())),
        tabs,
        unread: counts.unread,
        empty: match filter {
            InboxFilter::New => "No new conversations.",
            InboxFilter::Mine => "Nothing is yours right now.",
            InboxFilter::WaitingForPatient => "No conversation waits for a patient.",
            InboxFilter::Closed => "No closed conversations.",
        },
        threads: threads
            .iter()
            .map(|(s, patient, team)| ThreadRow {
                id: s.thread.id.to_string(),
                subject: s.thread.subject.as_str().to_owned(),
                team: team.clone(),
                when: when::moment(s.thread.last_at, tz),
                unread: s.unread,
                closed: matches!(s.thread.state, ThreadState::Closed { .. }),
                waiting_for_you: s.thread.last_from == Side::Patient,
                patient: patient.clone(),
            })
            .collect(),
    })
}

#[derive(Deserialize)]
pub(crate) struct ClaimForm {
    #[serde(default)]
    assignee: String,
}

impl Refill for ClaimForm {}

/// Staff: take a conversation on, or give it to a colleague.
#[handler]
pub(crate) async fn claim(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<ClaimForm>,
) -> Response {
    let id = match thread_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let assignee = match f.assignee.trim() {
        "" => None,
        a => match AccountId::parse(a) {
            Ok(a) => Some(a),
            Err(_) => return failed(MessagingError::NotInPool),
        },
    };
    match state
        .messaging
        .claim(&me.actor, id, assignee, rid.get())
        .await
    {
        Ok(()) => see_other(&format!("/staff/inbox/{id}?done=claimed")),
        Err(e) => failed(e),
    }
}

/// Staff: close a conversation (`opening` false) or reopen it.
async fn open_or_close(
    rid: &crate::RequestId,
    state: &WebState,
    me: &Acting,
    id: &str,
    opening: bool,
) -> Response {
    let id = match thread_id(id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (done, said) = if opening {
        (
            state.messaging.reopen(&me.actor, id, rid.get()).await,
            "reopened",
        )
    } else {
        (
            state.messaging.close(&me.actor, id, rid.get()).await,
            "closed",
        )
    };
    match done {
        Ok(()) => see_other(&format!("/staff/inbox/{id}?done={said}")),
        Err(e) => failed(e),
    }
}

/// Staff: close a conversation.
#[handler]
pub(crate) async fn close(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    open_or_close(&rid, &state, &me, &id, false).await
}

/// Staff: reopen a conversation.
#[handler]
pub(crate) async fn reopen(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    open_or_close(&rid, &state, &me, &id, true).await
}

struct PoolRow {
    id: String,
    name: String,
    answer_days: u8,
    active: bool,
    members: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "pools.html")]
struct PoolsPage<'a> {
    csrf: &'a str,
    pools: Vec<PoolRow>,
    staff: Vec<(String, String)>,
    notice: Option<&'static str>,
    problems: Problems,
}

async fn pools_page(
    state: &WebState,
    csrf: &CsrfToken,
    me: &Acting,
    notice: Option<&'static str>,
    problems: Problems,
    status: StatusCode,
) -> Response {
    let pools = match state.messaging.pools_to_manage(&me.actor).await {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let staff: Vec<(String, String)> = match state.auth.staff_members(&me.actor).await {
        Ok(m) => m
            .into_iter()
            .map(|m| (m.account.to_string(), m.name.full()))
            .collect(),
        Err(e) => return crate::unavailable("staff list failed", &e),
    };
    let rows = pools
        .iter()
        .map(|p| PoolRow {
            id: p.id.to_string(),
            name: p.name.as_str().to_owned(),
            answer_days: p.answer_days,
            active: p.active,
            members: staff
                .iter()
                .map(|(id, name)| {
                    let member = p.staff.iter().any(|a| a.to_string() == *id);
                    (id.clone(), name.clone(), member)
                })
                .collect(),
        })
        .collect();
    with_status(
        render(&PoolsPage {
            csrf: &csrf.0,
            pools: rows,
            staff,
            notice,
            problems,
        }),
        status,
    )
}

/// Administrator: the organisation's teams.
#[handler]
pub(crate) async fn teams(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Query(q): Query<DoneQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("saved")).then_some("Saved.");
    pools_page(
        &state,
        csrf,
        &me,
        notice,
        Problems::default(),
        StatusCode::OK,
    )
    .await
}

/// A pool's form, field by field (the staff checkboxes repeat).
fn pool_of(fields: &[(String, String)]) -> Result<NewPool, MessagingError> {
    let get = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map_or("", |(_, v)| v.as_str())
    };
    let staff = fields
        .iter()
        .filter(|(k, _)| k == "staff")
        .map(|(_, v)| AccountId::parse(v).map_err(|_| MessagingError::NotInPool))
        .collect::<Result<Vec<_>, _>>()?;
    NewPool::from_fields(
        get("name"),
        get("answer_days"),
        staff,
        get("active") == "yes",
    )
}

/// Administrator: a new team, or changes to one (`id`).
async fn save_pool(
    state: &WebState,
    csrf: &CsrfToken,
    me: &Acting,
    id: Option<PoolId>,
    fields: &[(String, String)],
) -> Response {
    let result = match pool_of(fields) {
        Err(e) => Err(e),
        Ok(pool) => match id {
            None => state.messaging.create_pool(&me.actor, pool).await,
            Some(id) => state.messaging.update_pool(&me.actor, id, pool).await,
        },
    };
    match result {
        Ok(_) => see_other("/staff/pools?done=saved"),
        Err(e @ (MessagingError::Input { .. } | MessagingError::NotInPool)) => {
            pools_page(
                state,
                csrf,
                me,
                None,
                Problems::one("name", e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => failed(e),
    }
}

#[handler]
pub(crate) async fn add_team(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    save_pool(&state, csrf, &me, None, &fields).await
}

#[handler]
pub(crate) async fn save_team(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let Ok(id) = PoolId::parse(&id) else {
        return failed(MessagingError::NotFound);
    };
    save_pool(&state, csrf, &me, Some(id), &fields).await
}
