//! Consent: a patient's grants to proxies and share links.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    PatientId,
    GranteeKind,
    GranteeAccountId,
    InviteeEmail,
    Relationship,
    Recipient,
    PasscodeHash,
    TokenDigest,
    Kinds,
    Actions,
    Labels,
    ValidFrom,
    ValidUntil,
    State,
    InvitedAt,
    ExpiresAt,
    AcceptedAt,
    RevokedAt,
    RevokedBy,
    Note,
    MadeBy,
    MadeByStaff,
    MadeAt,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let ts = |c: Grants| ColumnDef::new(c).timestamp_with_time_zone().to_owned();
        m.create_table(
            Table::create()
                .table(Grants::Table)
                .col(ColumnDef::new(Grants::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Grants::PatientId).uuid().not_null())
                // `proxy` or `share_link`.
                .col(
                    ColumnDef::new(Grants::GranteeKind)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(Grants::GranteeAccountId).uuid())
                .col(ColumnDef::new(Grants::InviteeEmail).string_len(254))
                .col(ColumnDef::new(Grants::Relationship).string_len(200))
                .col(ColumnDef::new(Grants::Recipient).string_len(200))
                .col(ColumnDef::new(Grants::PasscodeHash).string_len(200))
                // SHA-256 of the invitation or link token, while it may still be used.
                .col(
                    ColumnDef::new(Grants::TokenDigest)
                        .binary_len(32)
                        .unique_key(),
                )
                // Comma-separated record kind and action codes; label bits.
                .col(ColumnDef::new(Grants::Kinds).string_len(300).not_null())
                .col(ColumnDef::new(Grants::Actions).string_len(300).not_null())
                .col(ColumnDef::new(Grants::Labels).small_integer().not_null())
                .col(ts(Grants::ValidFrom).not_null())
                .col(ts(Grants::ValidUntil).not_null())
                // `pending`, `active` or `revoked` (expiry is read from the times).
                .col(ColumnDef::new(Grants::State).string_len(16).not_null())
                .col(ts(Grants::InvitedAt))
                .col(ts(Grants::ExpiresAt))
                .col(ts(Grants::AcceptedAt))
                .col(ts(Grants::RevokedAt))
                .col(ColumnDef::new(Grants::RevokedBy).uuid())
                .col(ColumnDef::new(Grants::Note).string_len(200))
                .col(ColumnDef::new(Grants::MadeBy).uuid().not_null())
                .col(ColumnDef::new(Grants::MadeByStaff).boolean().not_null())
                .col(ts(Grants::MadeAt).not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_grants_patient")
                        .from(Grants::Table, Grants::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_grants_grantee")
                        .from(Grants::Table, Grants::GranteeAccountId)
                        .to(Accounts::Table, Accounts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_grants_patient")
                .table(Grants::Table)
                .col(Grants::PatientId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_grants_grantee")
                .table(Grants::Table)
                .col(Grants::GranteeAccountId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Grants::Table).to_owned())
            .await
    }
}
