//! What one record view reads, made cheap:
//! - `report_results`: a diagnostic report's results in report order, one row each, so that a
//!   result's report is one indexed lookup instead of decoding every report of its visit, and a
//!   report's results come in one query. Filled with every report written from now on, and here
//!   once from the reports already stored (their stored body is the only place the list lives).
//! - `ix_records_patient_code_time`: "the same test over time" as a range of one index
//!   (patient, kind, code, time) instead of every result of the chart filtered by code.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ReportResults {
    Table,
    ReportId,
    Position,
    ResultId,
}

#[derive(DeriveIden, Clone, Copy)]
enum ClinicalRecords {
    Table,
    Id,
    PatientId,
    Kind,
    CodeSystem,
    Code,
    SortAt,
}

/// Reports read per round of the backfill.
const BATCH: u64 = 500;

/// Links every stored report to its results.
async fn backfill(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use crate::entity::{clinical_record, report_result};
    let db = m.get_connection();
    let mut after: Option<uuid::Uuid> = None;
    loop {
        let mut q = clinical_record::Entity::find()
            .select_only()
            .column(clinical_record::Column::Id)
            .column(clinical_record::Column::Detail)
            .filter(clinical_record::Column::Kind.eq("diagnostic_report"));
        if let Some(a) = after {
            q = q.filter(clinical_record::Column::Id.gt(a));
        }
        let reports: Vec<(uuid::Uuid, String)> = q
            .order_by_asc(clinical_record::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        let Some(last) = reports.last() else {
            return Ok(());
        };
        after = Some(last.0);
        let mut links = Vec::new();
        for (id, detail) in &reports {
            let body = crate::body::read(detail)
                .map_err(|_| DbErr::Custom("a stored diagnostic report does not parse".into()))?;
            links.extend(crate::records::report_links(*id, &body));
        }
        for chunk in links.chunks(300) {
            report_result::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(db)
                .await?;
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReportResults::Table)
                .col(ColumnDef::new(ReportResults::ReportId).uuid().not_null())
                .col(ColumnDef::new(ReportResults::Position).integer().not_null())
                .col(ColumnDef::new(ReportResults::ResultId).uuid().not_null())
                .primary_key(
                    Index::create()
                        .col(ReportResults::ReportId)
                        .col(ReportResults::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_report_results_report")
                        .from(ReportResults::Table, ReportResults::ReportId)
                        .to(ClinicalRecords::Table, ClinicalRecords::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_report_results_result")
                .table(ReportResults::Table)
                .col(ReportResults::ResultId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_records_patient_code_time")
                .table(ClinicalRecords::Table)
                .col(ClinicalRecords::PatientId)
                .col(ClinicalRecords::Kind)
                .col(ClinicalRecords::CodeSystem)
                .col(ClinicalRecords::Code)
                .col(ClinicalRecords::SortAt)
                .col(ClinicalRecords::Id)
                .to_owned(),
        )
        .await?;
        backfill(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_records_patient_code_time")
                .table(ClinicalRecords::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(ReportResults::Table).to_owned())
            .await
    }
}
