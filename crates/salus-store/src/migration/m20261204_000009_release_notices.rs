//! The "something new" notices of records whose release is delayed, kept until their time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReleaseNotices {
    Table,
    RecordId,
    PatientId,
    DueAt,
    SentAt,
}

#[derive(DeriveIden)]
enum ClinicalRecords {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReleaseNotices::Table)
                .col(
                    ColumnDef::new(ReleaseNotices::RecordId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(ReleaseNotices::PatientId).uuid().not_null())
                .col(
                    ColumnDef::new(ReleaseNotices::DueAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(ReleaseNotices::SentAt).timestamp_with_time_zone())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_release_notices_record")
                        .from(ReleaseNotices::Table, ReleaseNotices::RecordId)
                        .to(ClinicalRecords::Table, ClinicalRecords::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // The scheduler's question: unsent notices due by now, oldest first.
        m.create_index(
            Index::create()
                .name("ix_release_notices_due")
                .table(ReleaseNotices::Table)
                .col(ReleaseNotices::SentAt)
                .col(ReleaseNotices::DueAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ReleaseNotices::Table).to_owned())
            .await
    }
}
