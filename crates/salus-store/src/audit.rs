//! The audit log: one append-only table for authentication events and health-data access,
//! chained by hash, written with group commit.
//!
//! **Invariant:** entry `n` stores `hash = SHA-256(prev_hash || canonical(entry))` where
//! `prev_hash` is entry `n - 1`'s hash (32 zero bytes for the first). Editing an entry breaks
//! its own hash; deleting one leaves a gap in `seq` and breaks the link of the next.
//! **Invariant:** `seq` is the primary key: of two writers (two server nodes) that read the
//! same tail, the database lets one insert `n + 1`; the other re-reads the tail and retries.
//!
//! Group commit: a request appends its entry to a shared queue and waits for whichever comes
//! first — its entry committed by someone else, or the writer lock. Whoever holds the lock
//! writes the oldest queued entries (up to 64) in one statement and tells their requests.
//! Under load one commit carries many entries, each response still waits for its own entry
//! to be durable, and a request whose entry is already written never queues for the lock.

use crate::entity::{account, audit_log};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::account::{AuthAudit, AuthEvent, StaffRole};
use salus_domain::audit::{
    AccessEntry, AccessEvent, AccessLog, Accessor, ChainBreak, ChainReport, Outcome,
};
use salus_domain::record::RecordKind;
use salus_domain::{AccountId, AuditEventId, GrantId, PatientId, RecordId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An entry before it has its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: uuid::Uuid,
    pub(crate) at: DateTime<Utc>,
    pub(crate) action: String,
    pub(crate) actor_kind: Option<String>,
    pub(crate) actor_account_id: Option<uuid::Uuid>,
    pub(crate) actor_role: Option<String>,
    pub(crate) grant_id: Option<uuid::Uuid>,
    pub(crate) patient_id: Option<uuid::Uuid>,
    pub(crate) record_kind: Option<String>,
    pub(crate) record_id: Option<uuid::Uuid>,
    pub(crate) outcome: String,
    pub(crate) request_id: Option<String>,
}

/// Microsecond precision: what both databases keep, so a re-read entry hashes the same.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// `SHA-256(prev || seq || fields)`, fields separated by the ASCII unit separator.
pub(crate) fn entry_hash(prev: &[u8], seq: i64, e: &Entry) -> [u8; 32] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let uid = |v: Option<uuid::Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    let fields = [
        seq.to_string(),
        e.id.to_string(),
        micros(e.at).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        e.action.clone(),
        opt(&e.actor_kind),
        uid(e.actor_account_id),
        opt(&e.actor_role),
        uid(e.grant_id),
        uid(e.patient_id),
        opt(&e.record_kind),
        uid(e.record_id),
        e.outcome.clone(),
        opt(&e.request_id),
    ];
    let mut h = Sha256::new();
    h.update(prev);
    for f in &fields {
        h.update(f.as_bytes());
        h.update([0x1f]);
    }
    h.finalize().into()
}

pub(crate) fn entry_from_row(r: &audit_log::Model) -> Entry {
    Entry {
        id: r.id,
        at: r.at,
        action: r.action.clone(),
        actor_kind: r.actor_kind.clone(),
        actor_account_id: r.actor_account_id,
        actor_role: r.actor_role.clone(),
        grant_id: r.grant_id,
        patient_id: r.patient_id,
        record_kind: r.record_kind.clone(),
        record_id: r.record_id,
        outcome: r.outcome.clone(),
        request_id: r.request_id.clone(),
    }
}

pub(crate) fn row(seq: i64, prev: [u8; 32], e: &Entry) -> audit_log::ActiveModel {
    let hash = entry_hash(&prev, seq, e);
    audit_log::ActiveModel {
        seq: Set(seq),
        id: Set(e.id),
        at: Set(micros(e.at)),
        action: Set(e.action.clone()),
        actor_kind: Set(e.actor_kind.clone()),
        actor_account_id: Set(e.actor_account_id),
        actor_role: Set(e.actor_role.clone()),
        grant_id: Set(e.grant_id),
        patient_id: Set(e.patient_id),
        record_kind: Set(e.record_kind.clone()),
        record_id: Set(e.record_id),
        outcome: Set(e.outcome.clone()),
        request_id: Set(e.request_id.clone()),
        prev_hash: Set(prev.to_vec()),
        hash: Set(hash.to_vec()),
    }
}

/// The last entry of the chain as this node last saw it.
type Tail = Option<(i64, [u8; 32])>;

struct Waiting {
    entry: Entry,
    done: tokio::sync::oneshot::Sender<Result<(), RepoError>>,
}

/// The group-commit appender shared by every clone of a [`Store`].
#[derive(Default)]
pub(crate) struct AuditChain {
    queue: Mutex<Vec<Waiting>>,
    /// Held while writing; holds the tail known to this node (`None`: read it first).
    writer: tokio::sync::Mutex<Option<Tail>>,
}

impl std::fmt::Debug for AuditChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditChain")
    }
}

async fn read_tail(db: &impl ConnectionTrait) -> Result<Tail, RepoError> {
    let last = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(db)
        .await
        .map_err(repo_err)?;
    last.map(|r| {
        <[u8; 32]>::try_from(r.hash.as_slice())
            .map(|h| (r.seq, h))
            .map_err(|_| RepoError::Corrupt("audit_log.hash"))
    })
    .transpose()
}

/// The most entries one statement writes.
const MAX_BATCH: usize = 64;

/// How many of `queued` entries the next statement writes: the largest power of two up to
/// [`MAX_BATCH`]. Every batch size is a statement of its own shape, which each connection
/// prepares once and keeps in its statement cache; with any size allowed that cache filled
/// with up to a hundred shapes per connection, the larger ones hundreds of parameters long
/// (25 MB more memory under load). Powers of two leave seven shapes.
fn batch_size(queued: usize) -> usize {
    match queued.min(MAX_BATCH) {
        0 => 0,
        n => 1 << n.ilog2(),
    }
}

/// Writes `batch` after `tail` in one statement (atomic by itself, so no transaction round
/// trips); answers the new tail.
async fn write_batch(
    db: &sea_orm::DatabaseConnection,
    tail: Tail,
    batch: &[Entry],
) -> Result<Tail, RepoError> {
    let (mut seq, mut prev) = tail.unwrap_or((0, [0u8; 32]));
    let mut rows = Vec::with_capacity(batch.len());
    for e in batch {
        seq += 1;
        let r = row(seq, prev, e);
        prev = entry_hash(&prev, seq, e);
        rows.push(r);
    }
    audit_log::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map_err(repo_err)?;
    Ok(Some((seq, prev)))
}

impl Store {
    /// Appends one entry; returns once it (and whatever was written with it) is committed.
    ///
    /// Each request waits for whichever comes first: its entry committed by another
    /// request's write, or the writer lock. The lock holder writes the oldest queued
    /// entries (a [`batch_size`] of them) and tells their requests; a request whose entry
    /// is still queued after that waits again, so every entry is written in queue order.
    pub(crate) async fn append_audit(&self, entry: Entry) -> Result<(), RepoError> {
        let (done, mut result) = tokio::sync::oneshot::channel();
        self.queue().push(Waiting { entry, done });
        loop {
            let mut tail = tokio::select! {
                biased;
                r = &mut result => return r.unwrap_or(Err(RepoError::Unavailable)),
                tail = self.audit.writer.lock() => tail,
            };
            let batch: Vec<Waiting> = {
                let mut queue = self.queue();
                let n = batch_size(queue.len());
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                // Written by the writer before us, who has told us already.
                continue;
            }
            let entries: Vec<Entry> = batch.iter().map(|w| w.entry.clone()).collect();
            let outcome = {
                let _turn = self.write_turn().await;
                self.write_with_retry(&mut tail, &entries).await
            };
            for w in batch {
                let _ = w.done.send(outcome.clone());
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.audit
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn write_with_retry(
        &self,
        tail: &mut Option<Tail>,
        entries: &[Entry],
    ) -> Result<(), RepoError> {
        // Another node may have appended since this one last wrote: re-read and retry.
        for _ in 0..5 {
            let known = match *tail {
                Some(t) => t,
                None => read_tail(&self.db).await?,
            };
            match write_batch(&self.db, known, entries).await {
                Ok(new_tail) => {
                    *tail = Some(new_tail);
                    return Ok(());
                }
                Err(RepoError::Conflict(_)) => *tail = None,
                Err(e) => {
                    *tail = None;
                    return Err(e);
                }
            }
        }
        Err(RepoError::Unavailable)
    }

    /// Walks the whole chain in order and reports the first entry where it breaks.
    ///
    /// # Errors
    /// `Unavailable` when the store fails.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, RepoError> {
        let mut prev = [0u8; 32];
        let mut expected = 1i64;
        let mut entries = 0u64;
        loop {
            let rows = audit_log::Entity::find()
                .filter(audit_log::Column::Seq.gte(expected))
                .order_by_asc(audit_log::Column::Seq)
                .limit(1000)
                .all(&self.db)
                .await
                .map_err(repo_err)?;
            if rows.is_empty() {
                return Ok(ChainReport {
                    entries,
                    first_break: None,
                });
            }
            for r in rows {
                let broken = if r.seq != expected {
                    Some(ChainBreak::Missing {
                        expected_seq: expected,
                        found_seq: r.seq,
                    })
                } else if r.prev_hash != prev {
                    Some(ChainBreak::Unlinked { seq: r.seq })
                } else if r.hash != entry_hash(&prev, r.seq, &entry_from_row(&r)) {
                    Some(ChainBreak::Edited { seq: r.seq })
                } else {
                    None
                };
                if let Some(b) = broken {
                    return Ok(ChainReport {
                        entries,
                        first_break: Some(b),
                    });
                }
                prev = <[u8; 32]>::try_from(r.hash.as_slice())
                    .map_err(|_| RepoError::Corrupt("audit_log.hash"))?;
                expected += 1;
                entries += 1;
            }
        }
    }
}

#[async_trait::async_trait]
impl AuthAudit for Store {
    async fn record(&self, e: AuthEvent) -> Result<(), RepoError> {
        self.append_audit(Entry {
            id: uuid::Uuid::now_v7(),
            at: e.at,
            action: e.kind.code().to_owned(),
            actor_kind: None,
            actor_account_id: e.account.map(|a| a.as_uuid()),
            actor_role: None,
            grant_id: None,
            patient_id: None,
            record_kind: None,
            record_id: None,
            outcome: if e.kind.is_failure() {
                "failure"
            } else {
                "success"
            }
            .to_owned(),
            request_id: e.request_id,
        })
        .await
    }
}

#[async_trait::async_trait]
impl AccessLog for Store {
    async fn record(&self, e: AccessEvent) -> Result<(), RepoError> {
        self.append_audit(Entry {
            id: uuid::Uuid::now_v7(),
            at: e.at,
            action: format!("record.{}", e.action_code()),
            actor_kind: Some(e.actor.kind.to_owned()),
            actor_account_id: e.actor.account.map(|a| a.as_uuid()),
            actor_role: e.actor.role.map(|r| r.code().to_owned()),
            grant_id: e.actor.grant.map(|g| g.as_uuid()),
            patient_id: e.patient.map(|p| p.as_uuid()),
            record_kind: e.record_kind.map(|k| k.code().to_owned()),
            record_id: e.record.map(|r| r.as_uuid()),
            outcome: e.outcome.code().to_owned(),
            request_id: e.request_id,
        })
        .await
    }

    async fn history(
        &self,
        patient: PatientId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessEntry>, RepoError> {
        let mut q =
            audit_log::Entity::find().filter(audit_log::Column::PatientId.eq(patient.as_uuid()));
        if let Some(b) = before {
            q = q.filter(audit_log::Column::Seq.lt(b));
        }
        let rows = q
            .order_by_desc(audit_log::Column::Seq)
            .limit(u64::from(limit.clamp(1, 200)))
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        self.access_entries(rows).await
    }

    async fn on_behalf(
        &self,
        account: AccountId,
        limit: u32,
    ) -> Result<Vec<AccessEntry>, RepoError> {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::ActorAccountId.eq(account.as_uuid()))
            .filter(audit_log::Column::GrantId.is_not_null())
            // Newest first along ix_audit_log_actor_at.
            .order_by_desc(audit_log::Column::At)
            .order_by_desc(audit_log::Column::Seq)
            .limit(u64::from(limit.clamp(1, 200)))
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        self.access_entries(rows).await
    }
}

impl Store {
    /// Log rows as history entries, each actor named by their account's name now.
    async fn access_entries(
        &self,
        rows: Vec<audit_log::Model>,
    ) -> Result<Vec<AccessEntry>, RepoError> {
        let ids: Vec<uuid::Uuid> = rows.iter().filter_map(|r| r.actor_account_id).collect();
        let names: BTreeMap<uuid::Uuid, String> = if ids.is_empty() {
            BTreeMap::new()
        } else {
            account::Entity::find()
                .filter(account::Column::Id.is_in(ids))
                .all(&self.db)
                .await
                .map_err(repo_err)?
                .into_iter()
                .map(|a| (a.id, format!("{} {}", a.given_name, a.family_name)))
                .collect()
        };
        rows.into_iter()
            .map(|r| {
                Ok(AccessEntry {
                    id: AuditEventId::from_uuid(r.id),
                    seq: r.seq,
                    at: r.at,
                    accessor: Accessor {
                        kind: r.actor_kind.clone().unwrap_or_default(),
                        account: r.actor_account_id.map(AccountId::from_uuid),
                        name: r.actor_account_id.and_then(|a| names.get(&a).cloned()),
                        role: r.actor_role.as_deref().and_then(StaffRole::from_code),
                        grant: r.grant_id.map(GrantId::from_uuid),
                    },
                    action: r
                        .action
                        .strip_prefix("record.")
                        .unwrap_or(&r.action)
                        .to_owned(),
                    record_kind: r.record_kind.as_deref().and_then(RecordKind::from_code),
                    record: r.record_id.map(RecordId::from_uuid),
                    outcome: Outcome::from_code(&r.outcome)
                        .ok_or(RepoError::Corrupt("audit_log.outcome"))?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: uuid::Uuid::from_u128(7),
            at: DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap_or_default(),
            action: "record.read".into(),
            actor_kind: Some("patient".into()),
            actor_account_id: Some(uuid::Uuid::from_u128(1)),
            actor_role: None,
            grant_id: None,
            patient_id: Some(uuid::Uuid::from_u128(2)),
            record_kind: Some("observation".into()),
            record_id: Some(uuid::Uuid::from_u128(3)),
            outcome: "allowed".into(),
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let base = entry_hash(&[0; 32], 1, &entry());
        assert_ne!(base, entry_hash(&[1; 32], 1, &entry()), "previous hash");
        assert_ne!(base, entry_hash(&[0; 32], 2, &entry()), "sequence number");
        let mut e = entry();
        e.outcome = "denied".into();
        assert_ne!(base, entry_hash(&[0; 32], 1, &e));
        let mut e = entry();
        e.record_id = None;
        assert_ne!(base, entry_hash(&[0; 32], 1, &e));
        // Nanoseconds below the stored precision do not matter.
        let mut e = entry();
        e.at = micros(e.at);
        assert_eq!(base, entry_hash(&[0; 32], 1, &e));
    }

    #[test]
    fn batches_are_powers_of_two_up_to_the_maximum() {
        let sizes: Vec<usize> = [0, 1, 2, 3, 7, 8, 13, 63, 64, 65, 1000]
            .iter()
            .map(|&n| batch_size(n))
            .collect();
        assert_eq!(sizes, [0, 1, 2, 2, 4, 8, 8, 32, 64, 64, 64]);
        // Writing the queue down batch by batch takes few statement shapes and leaves
        // nothing behind.
        let mut shapes = BTreeMap::new();
        for queued in 1..=300usize {
            let mut left = queued;
            while left > 0 {
                let n = batch_size(left);
                *shapes.entry(n).or_insert(0) += 1;
                left -= n;
            }
        }
        assert_eq!(shapes.len(), 7, "{shapes:?}");
    }
}
