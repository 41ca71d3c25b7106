//! [`MessageRepository`] on sea-orm: pools with their staff, threads, messages (inserted,
//! never updated), receipts, and idempotency keys stored in the same transaction as the
//! message they answer for.

use crate::entity::{
    care_pool, care_pool_staff, message, message_attachment, message_key, message_receipt,
    message_thread,
};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::account::StaffRole;
use salus_domain::messaging::{
    Attachment, Author, CarePool, FileKind, IdempotencyKey, InboxCounts, InboxState, Message,
    MessageRepository, Receipt, Side, Stored, Thread, ThreadState, ThreadSummary, Upload,
};
use salus_domain::text::{MessageText, PoolName, Subject};
use salus_domain::{
    AccountId, AttachmentId, GrantId, MessageId, OrganizationId, PatientId, PoolId, RepoError,
    ThreadId,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use std::collections::{BTreeMap, BTreeSet};

fn pool_from(p: care_pool::Model, staff: BTreeSet<AccountId>) -> Result<CarePool, RepoError> {
    Ok(CarePool {
        id: PoolId::from_uuid(p.id),
        organization: OrganizationId::from_uuid(p.organization_id),
        name: PoolName::parse(&p.name).map_err(|_| RepoError::Corrupt("care_pools.name"))?,
        answer_days: u8::try_from(p.answer_days)
            .map_err(|_| RepoError::Corrupt("care_pools.answer_days"))?,
        staff,
        active: p.active,
    })
}

fn thread_row(t: &Thread) -> message_thread::ActiveModel {
    let (state, closed_at, closed_by) = match t.state {
        ThreadState::Open => ("open", None, None),
        ThreadState::Closed { at, by } => ("closed", Some(at), Some(by.as_uuid())),
    };
    message_thread::ActiveModel {
        id: Set(t.id.as_uuid()),
        patient_id: Set(t.patient.as_uuid()),
        organization_id: Set(t.organization.as_uuid()),
        pool_id: Set(t.pool.as_uuid()),
        subject: Set(t.subject.as_str().to_owned()),
        started_by: Set(t.started_by.as_uuid()),
        started_at: Set(t.started_at),
        claimed_by: Set(t.claimed_by.map(|a| a.as_uuid())),
        state: Set(state.to_owned()),
        closed_at: Set(closed_at),
        closed_by: Set(closed_by),
        last_from: Set(t.last_from.code().to_owned()),
        last_at: Set(t.last_at),
        // A new thread holds its first message, unread by the other side.
        unread_by_staff: Set(i32::from(t.last_from == Side::Patient)),
        unread_by_patient: Set(i32::from(t.last_from == Side::Staff)),
    }
}

/// The column counting what `reader` has not read of the other side's messages.
fn unread_column(reader: Side) -> message_thread::Column {
    match reader {
        Side::Staff => message_thread::Column::UnreadByStaff,
        Side::Patient => message_thread::Column::UnreadByPatient,
    }
}

fn thread_from(r: message_thread::Model) -> Result<Thread, RepoError> {
    let state = match (r.state.as_str(), r.closed_at, r.closed_by) {
        ("open", _, _) => ThreadState::Open,
        ("closed", Some(at), Some(by)) => ThreadState::Closed {
            at,
            by: AccountId::from_uuid(by),
        },
        _ => return Err(RepoError::Corrupt("message_threads.state")),
    };
    Ok(Thread {
        id: ThreadId::from_uuid(r.id),
        patient: PatientId::from_uuid(r.patient_id),
        organization: OrganizationId::from_uuid(r.organization_id),
        pool: PoolId::from_uuid(r.pool_id),
        subject: Subject::parse(&r.subject)
            .map_err(|_| RepoError::Corrupt("message_threads.subject"))?,
        started_by: AccountId::from_uuid(r.started_by),
        started_at: r.started_at,
        claimed_by: r.claimed_by.map(AccountId::from_uuid),
        state,
        last_from: Side::from_code(&r.last_from)
            .ok_or(RepoError::Corrupt("message_threads.last_from"))?,
        last_at: r.last_at,
    })
}

fn message_row(m: &Message) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(m.id.as_uuid()),
        thread_id: Set(m.thread.as_uuid()),
        author_account_id: Set(m.author.account.as_uuid()),
        side: Set(m.author.side.code().to_owned()),
        grant_id: Set(m.author.grant.map(|g| g.as_uuid())),
        role: Set(m.author.role.map(|r| r.code().to_owned())),
        body: Set(m.body.as_str().to_owned()),
        sent_at: Set(m.sent_at),
    }
}

fn message_from(r: message::Model, attachments: Vec<Attachment>) -> Result<Message, RepoError> {
    Ok(Message {
        id: MessageId::from_uuid(r.id),
        thread: ThreadId::from_uuid(r.thread_id),
        author: Author {
            account: AccountId::from_uuid(r.author_account_id),
            side: Side::from_code(&r.side).ok_or(RepoError::Corrupt("messages.side"))?,
            grant: r.grant_id.map(GrantId::from_uuid),
            role: r.role.as_deref().and_then(StaffRole::from_code),
        },
        body: MessageText::parse(&r.body).map_err(|_| RepoError::Corrupt("messages.body"))?,
        sent_at: r.sent_at,
        attachments,
    })
}

/// Stores a message's files in the transaction of the message, in the order sent.
async fn insert_files(
    txn: &DatabaseTransaction,
    message: MessageId,
    files: &[Upload],
) -> Result<(), RepoError> {
    for (position, f) in files.iter().enumerate() {
        let row = message_attachment::ActiveModel {
            id: Set(f.attachment.id.as_uuid()),
            message_id: Set(message.as_uuid()),
            position: Set(i16::try_from(position).map_err(|_| RepoError::Corrupt("position"))?),
            name: Set(f.attachment.name.clone()),
            media_type: Set(f.attachment.kind.media_type().to_owned()),
            size: Set(i64::try_from(f.attachment.size).map_err(|_| RepoError::Corrupt("size"))?),
            content: Set(f.content.clone()),
        };
        message_attachment::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(repo_err)?;
    }
    Ok(())
}

/// A file's description from its columns (never its content).
fn attachment_from(
    (id, name, media_type, size): (uuid::Uuid, String, String, i64),
) -> Result<Attachment, RepoError> {
    Ok(Attachment {
        id: AttachmentId::from_uuid(id),
        name,
        kind: FileKind::from_media_type(&media_type)
            .ok_or(RepoError::Corrupt("message_attachments.media_type"))?,
        size: u64::try_from(size).map_err(|_| RepoError::Corrupt("message_attachments.size"))?,
    })
}

/// Stores the key of a send in the transaction of the send. Answers whether the key was new;
/// when it was not, the transaction is left to be rolled back by the caller.
async fn insert_key(
    txn: &DatabaseTransaction,
    key: &IdempotencyKey,
    thread: ThreadId,
    message: MessageId,
) -> Result<bool, RepoError> {
    let done = message_key::Entity::insert(message_key::ActiveModel {
        account_id: Set(key.account.as_uuid()),
        key: Set(key.key.clone()),
        fingerprint: Set(key.fingerprint.to_vec()),
        thread_id: Set(thread.as_uuid()),
        message_id: Set(message.as_uuid()),
    })
    .exec_without_returning(txn)
    .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) => match repo_err(e) {
            RepoError::Conflict(_) => Ok(false),
            other => Err(other),
        },
    }
}

impl Store {
    /// The staff of each of these pools.
    async fn pool_staff(&self, pools: Vec<care_pool::Model>) -> Result<Vec<CarePool>, RepoError> {
        let ids: Vec<uuid::Uuid> = pools.iter().map(|p| p.id).collect();
        let mut staff: BTreeMap<uuid::Uuid, BTreeSet<AccountId>> = BTreeMap::new();
        if !ids.is_empty() {
            for s in care_pool_staff::Entity::find()
                .filter(care_pool_staff::Column::PoolId.is_in(ids))
                .all(&self.db)
                .await
                .map_err(repo_err)?
            {
                staff
                    .entry(s.pool_id)
                    .or_default()
                    .insert(AccountId::from_uuid(s.account_id));
            }
        }
        pools
            .into_iter()
            .map(|p| {
                let members = staff.remove(&p.id).unwrap_or_default();
                pool_from(p, members)
            })
            .collect()
    }

    async fn write_pool(&self, pool: &CarePool, new: bool) -> Result<bool, RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        let row = care_pool::ActiveModel {
            id: Set(pool.id.as_uuid()),
            organization_id: Set(pool.organization.as_uuid()),
            name: Set(pool.name.as_str().to_owned()),
            answer_days: Set(i16::from(pool.answer_days)),
            active: Set(pool.active),
        };
        if new {
            care_pool::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map_err(repo_err)?;
        } else {
            let done = care_pool::Entity::update_many()
                .col_expr(care_pool::Column::Name, Expr::value(pool.name.as_str()))
                .col_expr(
                    care_pool::Column::AnswerDays,
                    Expr::value(i16::from(pool.answer_days)),
                )
                .col_expr(care_pool::Column::Active, Expr::value(pool.active))
                .filter(care_pool::Column::Id.eq(pool.id.as_uuid()))
                .exec(&txn)
                .await
                .map_err(repo_err)?;
            if done.rows_affected == 0 {
                return Ok(false);
            }
            care_pool_staff::Entity::delete_many()
                .filter(care_pool_staff::Column::PoolId.eq(pool.id.as_uuid()))
                .exec(&txn)
                .await
                .map_err(repo_err)?;
        }
        if !pool.staff.is_empty() {
            care_pool_staff::Entity::insert_many(pool.staff.iter().map(|a| {
                care_pool_staff::ActiveModel {
                    pool_id: Set(pool.id.as_uuid()),
                    account_id: Set(a.as_uuid()),
                }
            }))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)?;
        Ok(true)
    }

    /// How many messages of `side` in each of these threads have no receipt.
    fn summaries(
        rows: Vec<message_thread::Model>,
        reader: Side,
    ) -> Result<Vec<ThreadSummary>, RepoError> {
        rows.into_iter()
            .map(|r| {
                let n = match reader {
                    Side::Staff => r.unread_by_staff,
                    Side::Patient => r.unread_by_patient,
                };
                Ok(ThreadSummary {
                    unread: u32::try_from(n).unwrap_or(0),
                    thread: thread_from(r)?,
                })
            })
            .collect()
    }

    /// The files of these messages, in the order sent, without their content.
    async fn attachments_of(
        &self,
        messages: Vec<uuid::Uuid>,
    ) -> Result<BTreeMap<uuid::Uuid, Vec<Attachment>>, RepoError> {
        let mut out: BTreeMap<uuid::Uuid, Vec<Attachment>> = BTreeMap::new();
        if messages.is_empty() {
            return Ok(out);
        }
        use message_attachment::Column as C;
        let rows: Vec<(uuid::Uuid, uuid::Uuid, String, String, i64)> =
            message_attachment::Entity::find()
                .select_only()
                .columns([C::MessageId, C::Id, C::Name, C::MediaType, C::Size])
                .filter(C::MessageId.is_in(messages))
                .order_by_asc(C::MessageId)
                .order_by_asc(C::Position)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(repo_err)?;
        for (message, id, name, media_type, size) in rows {
            out.entry(message)
                .or_default()
                .push(attachment_from((id, name, media_type, size))?);
        }
        Ok(out)
    }

    async fn replayed(
        &self,
        txn: DatabaseTransaction,
        key: &IdempotencyKey,
    ) -> Result<Option<(bool, Thread, Message)>, RepoError> {
        txn.rollback().await.map_err(repo_err)?;
        Ok(self
            .keyed(key.account, &key.key)
            .await?
            .map(|(fingerprint, t, m)| (fingerprint == key.fingerprint, t, m)))
    }
}

#[async_trait::async_trait]
impl MessageRepository for Store {
    async fn create_pool(&self, pool: &CarePool) -> Result<(), RepoError> {
        self.write_pool(pool, true).await.map(|_| ())
    }

    async fn update_pool(&self, pool: &CarePool) -> Result<bool, RepoError> {
        self.write_pool(pool, false).await
    }

    async fn pool(&self, id: PoolId) -> Result<Option<CarePool>, RepoError> {
        let rows = care_pool::Entity::find_by_id(id.as_uuid())
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(self.pool_staff(rows).await?.pop())
    }

    async fn pools_of(&self, organization: OrganizationId) -> Result<Vec<CarePool>, RepoError> {
        let rows = care_pool::Entity::find()
            .filter(care_pool::Column::OrganizationId.eq(organization.as_uuid()))
            .order_by_asc(care_pool::Column::Name)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        self.pool_staff(rows).await
    }

    async fn start(
        &self,
        thread: &Thread,
        first: &Message,
        files: &[Upload],
        key: Option<IdempotencyKey>,
    ) -> Result<Stored<(Thread, Message)>, RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        message_thread::Entity::insert(thread_row(thread))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        message::Entity::insert(message_row(first))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        insert_files(&txn, first.id, files).await?;
        if let Some(k) = &key
            && !insert_key(&txn, k, thread.id, first.id).await?
        {
            // Another request with this key was first: its answer, or a refusal.
            return Ok(match self.replayed(txn, k).await? {
                Some((true, t, m)) => Stored::Replayed((t, m)),
                _ => Stored::KeyReused,
            });
        }
        txn.commit().await.map_err(repo_err)?;
        Ok(Stored::New((thread.clone(), first.clone())))
    }

    async fn send(
        &self,
        m: &Message,
        files: &[Upload],
        key: Option<IdempotencyKey>,
    ) -> Result<Option<Stored<Message>>, RepoError> {
        let txn = self.db.begin().await.map_err(repo_err)?;
        // The thread's last message, only while it is open: the guard of the whole send.
        let open = message_thread::Entity::update_many()
            .col_expr(
                message_thread::Column::LastFrom,
                Expr::value(m.author.side.code()),
            )
            .col_expr(message_thread::Column::LastAt, Expr::value(m.sent_at))
            .col_expr(
                unread_column(m.author.side.other()),
                Expr::col(unread_column(m.author.side.other())).add(1),
            )
            .filter(message_thread::Column::Id.eq(m.thread.as_uuid()))
            .filter(message_thread::Column::State.eq("open"))
            .exec(&txn)
            .await
            .map_err(repo_err)?;
        if open.rows_affected == 0 {
            txn.rollback().await.map_err(repo_err)?;
            return Ok(None);
        }
        message::Entity::insert(message_row(m))
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        insert_files(&txn, m.id, files).await?;
        if let Some(k) = &key
            && !insert_key(&txn, k, m.thread, m.id).await?
        {
            return Ok(Some(match self.replayed(txn, k).await? {
                Some((true, _, first)) => Stored::Replayed(first),
                _ => Stored::KeyReused,
            }));
        }
        txn.commit().await.map_err(repo_err)?;
        Ok(Some(Stored::New(m.clone())))
    }

    async fn keyed(
        &self,
        account: AccountId,
        key: &str,
    ) -> Result<Option<([u8; 32], Thread, Message)>, RepoError> {
        let Some(k) = message_key::Entity::find_by_id((account.as_uuid(), key.to_owned()))
            .one(&self.db)
            .await
            .map_err(repo_err)?
        else {
            return Ok(None);
        };
        let fingerprint: [u8; 32] = k
            .fingerprint
            .as_slice()
            .try_into()
            .map_err(|_| RepoError::Corrupt("message_keys.fingerprint"))?;
        let thread = self
            .thread(ThreadId::from_uuid(k.thread_id))
            .await?
            .ok_or(RepoError::Corrupt("message_keys.thread_id"))?;
        let message = message::Entity::find_by_id(k.message_id)
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .ok_or(RepoError::Corrupt("message_keys.message_id"))?;
        let files = self
            .attachments_of(vec![message.id])
            .await?
            .remove(&message.id)
            .unwrap_or_default();
        Ok(Some((fingerprint, thread, message_from(message, files)?)))
    }

    async fn attachment(
        &self,
        id: AttachmentId,
    ) -> Result<Option<(Attachment, ThreadId)>, RepoError> {
        use message_attachment::Column as C;
        let row: Option<(uuid::Uuid, String, String, i64, uuid::Uuid)> =
            message_attachment::Entity::find_by_id(id.as_uuid())
                .select_only()
                .columns([C::Id, C::Name, C::MediaType, C::Size])
                .column(message::Column::ThreadId)
                .join(
                    sea_orm::JoinType::InnerJoin,
                    message_attachment::Entity::belongs_to(message::Entity)
                        .from(C::MessageId)
                        .to(message::Column::Id)
                        .into(),
                )
                .into_tuple()
                .one(&self.db)
                .await
                .map_err(repo_err)?;
        row.map(|(id, name, media_type, size, thread)| {
            Ok((
                attachment_from((id, name, media_type, size))?,
                ThreadId::from_uuid(thread),
            ))
        })
        .transpose()
    }

    async fn attachment_bytes(
        &self,
        id: AttachmentId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, RepoError> {
        // `substr` counts from 1 and takes the same arguments on SQLite (blob) and PostgreSQL
        // (bytea): one chunk read, never the whole file.
        let from = i32::try_from(offset.saturating_add(1))
            .map_err(|_| RepoError::Corrupt("attachment offset"))?;
        let len = i32::try_from(len).map_err(|_| RepoError::Corrupt("attachment chunk"))?;
        let chunk = sea_orm::sea_query::Func::cust(sea_orm::sea_query::Alias::new("substr"))
            .arg(Expr::col(message_attachment::Column::Content))
            .arg(from)
            .arg(len);
        let bytes: Option<Vec<u8>> = message_attachment::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column_as(Expr::expr(chunk), "chunk")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(bytes.unwrap_or_default())
    }

    async fn thread(&self, id: ThreadId) -> Result<Option<Thread>, RepoError> {
        message_thread::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(thread_from)
            .transpose()
    }

    async fn messages(
        &self,
        thread: ThreadId,
    ) -> Result<Vec<(Message, Option<Receipt>)>, RepoError> {
        let rows = message::Entity::find()
            .filter(message::Column::ThreadId.eq(thread.as_uuid()))
            .order_by_asc(message::Column::SentAt)
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|m| m.id).collect();
        let ids_again = ids.clone();
        let receipts: BTreeMap<uuid::Uuid, Receipt> = if ids.is_empty() {
            BTreeMap::new()
        } else {
            message_receipt::Entity::find()
                .filter(message_receipt::Column::MessageId.is_in(ids))
                .all(&self.db)
                .await
                .map_err(repo_err)?
                .into_iter()
                .map(|r| {
                    (
                        r.message_id,
                        Receipt {
                            read_at: r.read_at,
                            read_by: AccountId::from_uuid(r.read_by),
                        },
                    )
                })
                .collect()
        };
        let mut files = self.attachments_of(ids_again).await?;
        rows.into_iter()
            .map(|r| {
                let receipt = receipts.get(&r.id).copied();
                let attached = files.remove(&r.id).unwrap_or_default();
                Ok((message_from(r, attached)?, receipt))
            })
            .collect()
    }

    async fn mark_read(
        &self,
        thread: ThreadId,
        reader_side: Side,
        messages: Vec<MessageId>,
        reader: AccountId,
        at: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await.map_err(repo_err)?;
        // A receipt is written once: the first reader's, whoever else reads it at once.
        let new = message_receipt::Entity::insert_many(messages.iter().map(|id| {
            message_receipt::ActiveModel {
                message_id: Set(id.as_uuid()),
                read_at: Set(at),
                read_by: Set(reader.as_uuid()),
            }
        }))
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(message_receipt::Column::MessageId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(repo_err)?;
        if new > 0 {
            let column = unread_column(reader_side);
            let lowered = i32::try_from(new).unwrap_or(i32::MAX);
            // Never below zero (the same expression on both databases).
            message_thread::Entity::update_many()
                .col_expr(
                    column,
                    Expr::case(
                        Expr::col(column).gt(lowered),
                        Expr::col(column).sub(lowered),
                    )
                    .finally(0)
                    .into(),
                )
                .filter(message_thread::Column::Id.eq(thread.as_uuid()))
                .exec(&txn)
                .await
                .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)?;
        Ok(new)
    }

    async fn patient_names(
        &self,
        patients: Vec<PatientId>,
    ) -> Result<BTreeMap<PatientId, String>, RepoError> {
        if patients.is_empty() {
            return Ok(BTreeMap::new());
        }
        use crate::entity::patient::Column as C;
        let ids: BTreeSet<uuid::Uuid> = patients.iter().map(PatientId::as_uuid).collect();
        let rows: Vec<(uuid::Uuid, String, String)> = crate::entity::patient::Entity::find()
            .select_only()
            .columns([C::Id, C::GivenName, C::FamilyName])
            .filter(C::Id.is_in(ids))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, given, family)| {
                let name = match (given.is_empty(), family.is_empty()) {
                    (false, false) => format!("{given} {family}"),
                    (true, _) => family,
                    (_, true) => given,
                };
                (PatientId::from_uuid(id), name)
            })
            .collect())
    }

    async fn threads_of(&self, patient: PatientId) -> Result<Vec<ThreadSummary>, RepoError> {
        let rows = message_thread::Entity::find()
            .filter(message_thread::Column::PatientId.eq(patient.as_uuid()))
            .order_by_desc(message_thread::Column::LastAt)
            .limit(200)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        Self::summaries(rows, Side::Patient)
    }

    async fn inbox(
        &self,
        pools: &[PoolId],
        state: InboxState,
        after: Option<(DateTime<Utc>, ThreadId)>,
        limit: u32,
    ) -> Result<Vec<ThreadSummary>, RepoError> {
        use message_thread::Column as C;
        let ids: Vec<uuid::Uuid> = pools.iter().map(PoolId::as_uuid).collect();
        let mut q = message_thread::Entity::find().filter(C::PoolId.is_in(ids));
        if let Some((at, id)) = after {
            // Keyset paging on (last message, id), newest first.
            q = q.filter(
                sea_orm::Condition::any()
                    .add(C::LastAt.lt(at))
                    .add(C::LastAt.eq(at).and(C::Id.lt(id.as_uuid()))),
            );
        }
        q = match state {
            InboxState::New => q
                .filter(message_thread::Column::State.eq("open"))
                .filter(message_thread::Column::ClaimedBy.is_null()),
            InboxState::ClaimedBy(a) => q
                .filter(message_thread::Column::State.eq("open"))
                .filter(message_thread::Column::ClaimedBy.eq(a.as_uuid())),
            InboxState::WaitingForPatient => q
                .filter(message_thread::Column::State.eq("open"))
                .filter(message_thread::Column::LastFrom.eq(Side::Staff.code())),
            InboxState::Closed => q.filter(message_thread::Column::State.eq("closed")),
        };
        let rows = q
            .order_by_desc(C::LastAt)
            .order_by_desc(C::Id)
            .limit(u64::from(limit.clamp(1, 500)))
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        Self::summaries(rows, Side::Staff)
    }

    async fn inbox_counts(&self, pools: &[PoolId]) -> Result<InboxCounts, RepoError> {
        let ids: Vec<uuid::Uuid> = pools.iter().map(PoolId::as_uuid).collect();
        // Every count in one pass over the pools' threads.
        let sum = |condition: &str| {
            Expr::cust(format!(
                "COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"
            ))
        };
        let (new, waiting, closed, unread): (i64, i64, i64, i64) = message_thread::Entity::find()
            .select_only()
            .column_as(sum("state = 'open' AND claimed_by IS NULL"), "new")
            .column_as(sum("state = 'open' AND last_from = 'staff'"), "waiting")
            .column_as(sum("state = 'closed'"), "closed")
            .column_as(sum("state = 'open' AND unread_by_staff > 0"), "unread")
            .filter(message_thread::Column::PoolId.is_in(ids))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .unwrap_or_default();
        let count = |n: i64| u32::try_from(n).unwrap_or(0);
        Ok(InboxCounts {
            new: count(new),
            waiting_for_patient: count(waiting),
            closed: count(closed),
            unread: count(unread),
        })
    }

    async fn started_since(
        &self,
        patient: PatientId,
        since: DateTime<Utc>,
    ) -> Result<u32, RepoError> {
        let n = message_thread::Entity::find()
            .filter(message_thread::Column::PatientId.eq(patient.as_uuid()))
            .filter(message_thread::Column::StartedAt.gte(since))
            .count(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn set_claim(&self, thread: ThreadId, by: Option<AccountId>) -> Result<bool, RepoError> {
        let done = message_thread::Entity::update_many()
            .col_expr(
                message_thread::Column::ClaimedBy,
                Expr::value(by.map(|a| a.as_uuid())),
            )
            .filter(message_thread::Column::Id.eq(thread.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }

    async fn set_state(&self, thread: ThreadId, state: ThreadState) -> Result<bool, RepoError> {
        let q = message_thread::Entity::update_many()
            .filter(message_thread::Column::Id.eq(thread.as_uuid()));
        let done = match state {
            ThreadState::Closed { at, by } => q
                .col_expr(message_thread::Column::State, Expr::value("closed"))
                .col_expr(message_thread::Column::ClosedAt, Expr::value(at))
                .col_expr(message_thread::Column::ClosedBy, Expr::value(by.as_uuid()))
                .filter(message_thread::Column::State.eq("open")),
            ThreadState::Open => q
                .col_expr(message_thread::Column::State, Expr::value("open"))
                .col_expr(
                    message_thread::Column::ClosedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    message_thread::Column::ClosedBy,
                    Expr::value(Option::<uuid::Uuid>::None),
                )
                .filter(message_thread::Column::State.eq("closed")),
        }
        .exec(&self.db)
        .await
        .map_err(repo_err)?;
        Ok(done.rows_affected == 1)
    }
}
