//! [`RecordRepository`] on sea-orm.

use crate::convert::{record_from_row, record_to_row};
use crate::entity::clinical_record::{self, Column, STORED_COLUMNS, Stored};
use crate::entity::{patient, release_notice, report_result};
use crate::{Store, repo_err};
use chrono::{DateTime, Utc};
use salus_domain::export::{EXPORT_BATCH, EXPORT_ORDER};
use salus_domain::record::{
    ClinicalRecord, Cursor, InContext, Page, RecordBody, RecordKind, RecordQuery, RecordRepository,
};
use salus_domain::{OrganizationId, PatientId, RecordId, RepoError};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Select, SelectModel, Selector, Statement,
    TransactionTrait,
};
use std::collections::BTreeMap;

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 200;
/// Largest batch of a read of several kinds at once (an export's).
const MAX_EXPORT_BATCH: u32 = 1000;

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
) -> Selector<SelectModel<Stored>> {
    let q = clinical_record::Entity::find()
        .filter(Column::PatientId.eq(patient.as_uuid()))
        .filter(Column::Kind.eq(kind.code()));
    matching(q, query, after)
        .order_by_desc(Column::SortAt)
        .order_by_desc(Column::Id)
        .limit(u64::from(limit.clamp(1, MAX_PAGE)) + 1)
        .into_partial_model()
}

/// Records of `kinds` of one patient in the index's order (kind, then newest first), read
/// backwards along `ix_records_patient_kind_time`: no sort.
fn kinds_query(
    patient: PatientId,
    kinds: &[RecordKind],
    query: &RecordQuery,
    limit: u32,
) -> Selector<SelectModel<Stored>> {
    let mut q = clinical_record::Entity::find().filter(Column::PatientId.eq(patient.as_uuid()));
    if !RecordKind::ALL.iter().all(|k| kinds.contains(k)) {
        q = q.filter(Column::Kind.is_in(kinds.iter().map(|k| k.code())));
    }
    let released = query.released_by;
    let rest = RecordQuery {
        released_by: None,
        ..query.clone()
    };
    let mut q = matching(q, &rest, None);
    if let Some(t) = released {
        // `released_at` alone: it is set for released records only (and the caller decides
        // on each record again). An equality on `release_state` would draw SQLite, without
        // statistics, to its index of every chart's records by state instead of this chart's
        // (a scan of the whole table per export).
        q = q.filter(Column::ReleasedAt.lte(t));
    }
    q.order_by_desc(Column::Kind)
        .order_by_desc(Column::SortAt)
        .order_by_desc(Column::Id)
        .limit(u64::from(limit.clamp(1, MAX_EXPORT_BATCH)) + 1)
        .into_partial_model()
}

/// The reads of a whole-chart export of a chart of at most [`EXPORT_BATCH`] records, as the
/// export runs them (public for the benchmark's raw-SQL ceiling of the same reads).
pub fn export_statements(
    backend: DbBackend,
    patient: PatientId,
    released: Option<DateTime<Utc>>,
) -> Vec<Statement> {
    let query = RecordQuery {
        released_by: released,
        ..RecordQuery::default()
    };
    vec![kinds_query(patient, &EXPORT_ORDER, &query, EXPORT_BATCH).into_statement(backend)]
}

/// `query`'s filters and the cursor on a select of records.
fn matching(
    mut q: Select<clinical_record::Entity>,
    query: &RecordQuery,
    after: Option<Cursor>,
) -> Select<clinical_record::Entity> {
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
    q
}

pub(crate) async fn explain_page(
    db: &DatabaseConnection,
    query: &RecordQuery,
) -> Result<Vec<String>, RepoError> {
    let cursor = Cursor {
        sort_time: chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0)
            .unwrap_or_default(),
        id: RecordId::from_uuid(uuid::Uuid::nil()),
    };
    let patient = PatientId::from_uuid(uuid::Uuid::nil());
    let select = page_query(patient, RecordKind::Observation, query, Some(cursor), 50);
    explain(db, select.into_statement(db.get_database_backend())).await
}

/// The plan of a record view's one statement (for a patient: related records released by
/// then).
pub(crate) async fn explain_context(db: &DatabaseConnection) -> Result<Vec<String>, RepoError> {
    let id = RecordId::from_uuid(uuid::Uuid::nil());
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    explain(
        db,
        context_statement(db.get_database_backend(), id, Some(at)),
    )
    .await
}

/// The plan of an export's read of every kind at once (`released_by` set, as for a patient).
pub(crate) async fn explain_export(db: &DatabaseConnection) -> Result<Vec<String>, RepoError> {
    let query = RecordQuery {
        released_by: Some(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH),
        ..RecordQuery::default()
    };
    let patient = PatientId::from_uuid(uuid::Uuid::nil());
    let select = kinds_query(patient, &EXPORT_ORDER, &query, EXPORT_BATCH);
    explain(db, select.into_statement(db.get_database_backend())).await
}

/// The database's plan of `statement`, one line per step.
async fn explain(db: &DatabaseConnection, statement: Statement) -> Result<Vec<String>, RepoError> {
    let backend = db.get_database_backend();
    let sql = statement.to_string();
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

/// The columns a record is read from, and `sort_at` to order by, of table alias `t`.
fn columns(t: &str) -> String {
    STORED_COLUMNS
        .iter()
        .chain(&["sort_at"])
        .map(|c| format!("{t}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One statement for a record and its context, each row tagged with its `part`: 0 the record,
/// 1 the reports holding it, 2 its results (a report), 3 the records of its visit (a visit);
/// the parts that do not apply to its kind are index probes that find nothing. `$1` is the
/// record's id; with `released`, `$2` the instant related records must be released by.
fn context_sql(released: bool) -> String {
    let shown = if released {
        " AND x.release_state = 'released' AND x.released_at <= $2"
    } else {
        ""
    };
    let (r, x) = (columns("r"), columns("x"));
    format!(
        "SELECT 0 AS part, 0 AS ord, {r} FROM clinical_records r WHERE r.id = $1 \
         UNION ALL SELECT 1, 0, {x} FROM report_results l \
           JOIN clinical_records x ON x.id = l.report_id WHERE l.result_id = $1{shown} \
         UNION ALL SELECT 2, l.position, {x} FROM report_results l \
           JOIN clinical_records x ON x.id = l.result_id WHERE l.report_id = $1{shown} \
         UNION ALL SELECT * FROM (SELECT 3 AS part, 0 AS ord, {x} FROM clinical_records x \
           WHERE x.encounter_id = $1{shown} ORDER BY x.sort_at, x.id LIMIT {MAX_PAGE}) v \
         ORDER BY part, ord, sort_at, id"
    )
}

/// The statement [`RecordRepository::find_in_context`] runs (public for the benchmark's
/// raw-SQL ceiling of the same read).
pub fn context_statement(
    backend: DbBackend,
    id: RecordId,
    released: Option<DateTime<Utc>>,
) -> Statement {
    let mut values: Vec<sea_orm::Value> = vec![id.as_uuid().into()];
    if let Some(t) = released {
        values.push(t.into());
    }
    Statement::from_sql_and_values(backend, context_sql(released.is_some()), values)
}

/// The `report_results` rows of a record: one per result of a diagnostic report, in report
/// order; none for any other kind.
pub(crate) fn report_links(id: uuid::Uuid, body: &RecordBody) -> Vec<report_result::ActiveModel> {
    let RecordBody::DiagnosticReport(report) = body else {
        return Vec::new();
    };
    report
        .results
        .iter()
        .zip(0..)
        .map(|(result, position)| report_result::ActiveModel {
            report_id: Set(id),
            position: Set(position),
            result_id: Set(result.as_uuid()),
        })
        .collect()
}

#[async_trait::async_trait]
impl RecordRepository for Store {
    async fn find(&self, id: RecordId) -> Result<Option<ClinicalRecord>, RepoError> {
        clinical_record::Entity::find_by_id(id.as_uuid())
            .into_partial_model::<Stored>()
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

    async fn list_kinds_within(
        &self,
        patient: PatientId,
        kinds: &[RecordKind],
        query: &RecordQuery,
        limit: u32,
    ) -> Result<Option<Vec<ClinicalRecord>>, RepoError> {
        if kinds.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let limit = limit.clamp(1, MAX_EXPORT_BATCH) as usize;
        let rows = kinds_query(patient, kinds, query, limit as u32)
            .all(&self.db)
            .await
            .map_err(repo_err)?;
        if rows.len() > limit {
            return Ok(None);
        }
        rows.into_iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn find_in_context(
        &self,
        id: RecordId,
        released: Option<DateTime<Utc>>,
    ) -> Result<Option<InContext>, RepoError> {
        let rows = self
            .db
            .query_all_raw(context_statement(
                self.db.get_database_backend(),
                id,
                released,
            ))
            .await
            .map_err(repo_err)?;
        let mut record = None;
        let mut related = Vec::with_capacity(rows.len().saturating_sub(1));
        for row in rows {
            let part: i32 = row
                .try_get("", "part")
                .map_err(|_| RepoError::Corrupt("record context"))?;
            let r = Stored::from_query_result(&row, "")
                .map_err(|_| RepoError::Corrupt("record context"))
                .and_then(record_from_row)?;
            if part == 0 {
                record = Some(r);
            } else {
                related.push(r);
            }
        }
        Ok(record.map(|record| InContext { record, related }))
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
            .into_partial_model::<Stored>()
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
        let links = report_links(record.meta.id.as_uuid(), &record.body);
        if !links.is_empty() {
            report_result::Entity::insert_many(links)
                .exec_without_returning(&txn)
                .await
                .map_err(repo_err)?;
        }
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
