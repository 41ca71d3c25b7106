//! TOTP second factors and their recovery codes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    AccountId,
    Secret,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Digest,
    AccountId,
    UsedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TotpFactors::Table)
                .col(
                    ColumnDef::new(TotpFactors::AccountId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(TotpFactors::Secret)
                        .binary_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TotpFactors::ConfirmedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(TotpFactors::LastStep).big_integer().null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_totp_account")
                        .from(TotpFactors::Table, TotpFactors::AccountId)
                        .to(Accounts::Table, Accounts::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RecoveryCodes::Table)
                .col(
                    ColumnDef::new(RecoveryCodes::Digest)
                        .binary_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(RecoveryCodes::AccountId).uuid().not_null())
                .col(
                    ColumnDef::new(RecoveryCodes::UsedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_recovery_account")
                        .from(RecoveryCodes::Table, RecoveryCodes::AccountId)
                        .to(Accounts::Table, Accounts::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_recovery_account")
                .table(RecoveryCodes::Table)
                .col(RecoveryCodes::AccountId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await
    }
}
