//! [`RecordRepository`] on sea-orm.

use crate::convert::record_from_row;
use crate::entity::clinical_record::{self, Column};
use crate::{Store, repo_err};
use salus_domain::record::{ClinicalRecord, Cursor, Page, RecordKind, RecordRepository};
use salus_domain::{PatientId, RecordId, RepoError};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Statement, TransactionTrait,
};
use std::collections::BTreeMap;

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 200;

fn page_query(
    patient: PatientId,
    kind: RecordKind,
    after: Option<Cursor>,
    limit: u32,
) -> Select<clinical_record::Entity> {
    let mut q = clinical_record::Entity::find()
        .filter(Column::PatientId.eq(patient.as_uuid()))
        .filter(Column::Kind.eq(kind.code()));
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
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Page<ClinicalRecord>, RepoError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let rows = page_query(patient, kind, after, limit as u32)
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

    async fn count_by_kind(
        &self,
        patient: PatientId,
    ) -> Result<BTreeMap<RecordKind, u64>, RepoError> {
        let rows: Vec<(String, i64)> = clinical_record::Entity::find()
            .select_only()
            .column(Column::Kind)
            .column_as(Expr::expr(Func::count(Expr::col(Column::Id))), "n")
            .filter(Column::PatientId.eq(patient.as_uuid()))
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
