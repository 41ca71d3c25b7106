//! [`RecordRepository`] on sea-orm.

use crate::convert::{record_from_row, record_to_row};
use crate::entity::clinical_record::{self, Column};
use crate::entity::{patient, release_notice};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::record::{
    ClinicalRecord, Cursor, Page, RecordKind, RecordQuery, RecordRepository,
};
use salus_domain::{OrganizationId, PatientId, RecordId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Statement, TransactionTrait,
};
use std::collections::BTreeMap;

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 200;

/// Only records released online by `t`.
fn released_by<Q: QueryFilter>(q: Q, t: Option<DateTime<Utc>>) -> Q {
    match t {
        Some(t) => q
            .filter(Column::ReleaseState.eq("released"))
            .filter(Column::ReleasedAt.lte(t)),
        None => q,
    }
}

fn page_query(
    patient: PatientId,
    kind: RecordKind,
    query: &RecordQuery,
    after: Option<Cursor>,
    limit: u32,
) -> Select<clinical_record::Entity> {
    let mut q = clinical_record::Entity::find()
        .filter(Column::PatientId.eq(patient.as_uuid()))
        .filter(Column::Kind.eq(kind.code()));
    q = released_by(q, query.released_by);
    if let Some(from) = query.from {
        q = q.filter(Column::SortAt.gte(from));
    }
    if let Some(until) = query.until {
        q = q.filter(Column::SortAt.lt(until));
    }
    if let Some(text) = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        // LIKE with the wildcards of the search text escaped, on lower-cased titles.
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q = q.filter(
            Expr::expr(Func::lower(Expr::col(Column::Title)))
                .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
        );
    }
    if !query.statuses.is_empty() {
        q = q.filter(Column::Status.is_in(query.statuses.iter().copied()));
    }
    if query.held_only {
        q = q.filter(Column::ReleaseState.eq("held"));
    }
    if let Some((system, code)) = &query.code {
        q = q
            .filter(Column::CodeSystem.eq(system.as_str()))
            .filter(Column::Code.eq(code.as_str()));
    }
    if let Some(c) = after {
        // A row-value comparison, so both databases bound the index range with it.
        q = q.filter(
            Expr::tuple([Expr::col(Column::SortAt), Expr::col(Column::Id)]).lt(Expr::tuple([
                Expr::value(c.sort_time),
                Expr::value(c.id.as_uuid()),
            ])),
        );
    }
    q.order_by_desc(Column::SortAt)
        .order_by_desc(Column::Id)
        .limit(u64::from(limit.clamp(1, MAX_PAGE)) + 1)
}

pub(crate) async fn explain_page(db: &DatabaseConnection) -> Result<Vec<String>, RepoError> {
    let backend = db.get_database_backend();
    let cursor = Cursor {
        sort_time: chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0)
            .unwrap_or_default(),
        id: RecordId::from_uuid(uuid::Uuid::nil()),
    };
    let sql = page_query(
        PatientId::from_uuid(uuid::Uuid::nil()),
        RecordKind::Observation,
        &RecordQuery::default(),
        Some(cursor),
        50,
    )
    .build(backend)
    .to_string();
    let (prefix, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        _ => ("EXPLAIN ", "QUERY PLAN"),
    };
    let txn = db.begin().await.map_err(repo_err)?;
    if backend == DbBackend::Postgres {
        // On a near-empty table PostgreSQL rightly prefers a sequential scan; switching that
        // off for this one transaction shows which index it uses once the table is large.
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .map_err(repo_err)?;
    }
    let rows = txn
        .query_all_raw(Statement::from_string(backend, format!("{prefix}{sql}")))
        .await
        .map_err(repo_err)?;
    txn.rollback().await.map_err(repo_err)?;
    rows.iter()
        .map(|r| {
            r.try_get::<String>("", column)
                .map_err(|_| RepoError::Corrupt("plan"))
        })
        .collect()
}

#[async_trait::async_trait]
impl RecordRepository for Store {
    async fn find(&self, id: RecordId) -> Result<Option<ClinicalRecord>, RepoError> {
        clinical_record::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_err)?
            .map(record_from_row)
            .transpose()
    }

    async fn list_for_patient(
        &self,
        patient: PatientId,
        kind: RecordKind,
        query: &RecordQuery,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ClinicalRecord>, RepoError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let rows = page_query(patient, kind, query, after, limit as u32)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let more = rows.len() > limit;
        let items = rows
            .into_iter()
            .take(limit)
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match items.last() {
            Some(last) if more => Some(Cursor {
                sort_time: last.sort_time(),
                id: last.meta.id,
            }),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn list_for_encounter(
        &self,
        patient: PatientId,
        encounter: RecordId,
        kind: Option<RecordKind>,
        released: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ClinicalRecord>, RepoError> {
        let mut q = clinical_record::Entity::find()
            .filter(Column::EncounterId.eq(encounter.as_uuid()))
            .filter(Column::PatientId.eq(patient.as_uuid()));
        if let Some(kind) = kind {
            q = q.filter(Column::Kind.eq(kind.code()));
        }
        released_by(q, released)
            .order_by_asc(Column::SortAt)
            .order_by_asc(Column::Id)
            .limit(u64::from(limit.clamp(1, MAX_PAGE)))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(record_from_row)
            .collect()
    }

    async fn held_in(
        &self,
        organization: OrganizationId,
        limit: u32,
    ) -> Result<Vec<ClinicalRecord>, RepoError> {
        let charts = Query::select()
            .column(patient::Column::Id)
            .from(patient::Entity)
            .and_where(patient::Column::OrganizationId.eq(organization.as_uuid()))
            .to_owned();
        clinical_record::Entity::find()
            .filter(Column::ReleaseState.eq("held"))
            .filter(Column::PatientId.in_subquery(charts))
            .order_by_asc(Column::FiledAt)
            .order_by_asc(Column::Id)
            .limit(u64::from(limit.clamp(1, MAX_PAGE)))
            .all(&self.db)
            .await
            .map_err(repo_err)?
            .into_iter()
            .map(record_from_row)
            .collect()
    }

    async fn insert(
        &self,
        record: &ClinicalRecord,
        notice_at: Option<DateTime<Utc>>,
    ) -> Result<(), RepoError> {
        let row = record_to_row(record)?;
        let txn = self.db.begin().await.map_err(repo_err)?;
        clinical_record::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        if let Some(due_at) = notice_at {
            release_notice::Entity::insert(release_notice::ActiveModel {
                record_id: Set(record.meta.id.as_uuid()),
                patient_id: Set(record.meta.patient_id.as_uuid()),
                due_at: Set(due_at),
                sent_at: Set(None),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(repo_err)?;
        }
        txn.commit().await.map_err(repo_err)
    }

    async fn take_due_notices(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PatientId>, RepoError> {
        let due = release_notice::Entity::find()
            .filter(release_notice::Column::SentAt.is_null())
            .filter(release_notice::Column::DueAt.lte(now))
            .order_by_asc(release_notice::Column::DueAt)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        let mut taken = Vec::with_capacity(due.len());
        for notice in due {
            // Whoever marks it sent first sends it; another node finds it taken.
            let marked = release_notice::Entity::update_many()
                .col_expr(release_notice::Column::SentAt, Expr::value(now))
                .filter(release_notice::Column::RecordId.eq(notice.record_id))
                .filter(release_notice::Column::SentAt.is_null())
                .exec(&self.db)
                .await
                .map_err(repo_err)?;
            if marked.rows_affected == 1 {
                taken.push(PatientId::from_uuid(notice.patient_id));
            }
        }
        Ok(taken)
    }

    async fn release(&self, id: RecordId, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let r = clinical_record::Entity::update_many()
            .col_expr(Column::ReleaseState, Expr::value("released"))
            .col_expr(Column::ReleasedAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::ReleaseState.eq("held"))
            .exec(&self.db)
            .await
            .map_err(repo_err)?;
        Ok(r.rows_affected == 1)
    }

    async fn count_by_kind(
        &self,
        patient: PatientId,
        released: Option<DateTime<Utc>>,
    ) -> Result<BTreeMap<RecordKind, u64>, RepoError> {
        let q = clinical_record::Entity::find()
            .select_only()
            .column(Column::Kind)
            .column_as(Expr::expr(Func::count(Expr::col(Column::Id))), "n")
            .filter(Column::PatientId.eq(patient.as_uuid()));
        let rows: Vec<(String, i64)> = released_by(q, released)
            .group_by(Column::Kind)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        rows.into_iter()
            .map(|(kind, n)| {
                let kind = RecordKind::from_code(&kind).ok_or(RepoError::Corrupt("kind"))?;
                Ok((kind, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }
}
