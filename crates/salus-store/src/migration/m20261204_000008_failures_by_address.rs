//! Failed sign-ins are counted per email address (a digest of it), whether or not an account
//! has the address, so the throttle cannot tell registered addresses from unknown ones. The
//! per-account table is replaced; its rows are at most an hour of throttling state.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
}

#[derive(DeriveIden)]
enum SignInFailures {
    Table,
    Id,
    Subject,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table(SignInFailures::Table)
                .col(
                    ColumnDef::new(SignInFailures::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                // Hex SHA-256 of the normalised address: no address of a stranger is stored.
                .col(
                    ColumnDef::new(SignInFailures::Subject)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SignInFailures::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sign_in_failures_subject_at")
                .table(SignInFailures::Table)
                .col(SignInFailures::Subject)
                .col(SignInFailures::At)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sign_in_failures_at")
                .table(SignInFailures::Table)
                .col(SignInFailures::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SignInFailures::Table).to_owned())
            .await
    }
}
