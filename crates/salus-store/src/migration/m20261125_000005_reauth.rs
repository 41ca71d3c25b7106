//! When a session last proved who it is (sign-in or password re-entry).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    AuthenticatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Existing sessions count as authenticated when they were created (the column is
        // filled by the store on read when it is NULL).
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(
                    ColumnDef::new(Sessions::AuthenticatedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .drop_column(Sessions::AuthenticatedAt)
                .to_owned(),
        )
        .await
    }
}
