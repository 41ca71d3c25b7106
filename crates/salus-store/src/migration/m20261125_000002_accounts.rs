//! Accounts, emailed tokens, sessions, failed sign-ins and the audit log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    EmailKey,
    Email,
    GivenName,
    FamilyName,
    BirthDate,
    Role,
    StaffOrganizationId,
    State,
    StateAt,
    PatientId,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Digest,
    AccountId,
    Purpose,
    IssuedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    AccountId,
    Digest,
    CreatedAt,
    LastSeenAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    AccountId,
    At,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Action,
    ActorAccountId,
    RequestId,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

fn to_account(name: &str, from: (impl IntoTableRef, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(Accounts::Table, Accounts::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Accounts::Table)
                .col(ColumnDef::new(Accounts::Id).uuid().not_null().primary_key())
                // The address lower-cased: uniqueness ignores case, the address keeps it.
                .col(
                    ColumnDef::new(Accounts::EmailKey)
                        .string_len(254)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Accounts::Email).string_len(254).not_null())
                .col(
                    ColumnDef::new(Accounts::GivenName)
                        .string_len(200)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Accounts::FamilyName)
                        .string_len(200)
                        .not_null(),
                )
                .col(ColumnDef::new(Accounts::BirthDate).date().null())
                .col(ColumnDef::new(Accounts::Role).string_len(32).not_null())
                .col(ColumnDef::new(Accounts::StaffOrganizationId).uuid().null())
                .col(ColumnDef::new(Accounts::State).string_len(16).not_null())
                .col(
                    ColumnDef::new(Accounts::StateAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(Accounts::PatientId).uuid().null())
                .col(
                    ColumnDef::new(Accounts::PasswordHash)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Accounts::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_accounts_staff_org")
                        .from(Accounts::Table, Accounts::StaffOrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_accounts_patient")
                        .from(Accounts::Table, Accounts::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(EmailTokens::Table)
                .col(
                    ColumnDef::new(EmailTokens::Digest)
                        .binary_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(EmailTokens::AccountId).uuid().not_null())
                .col(
                    ColumnDef::new(EmailTokens::Purpose)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EmailTokens::IssuedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EmailTokens::ExpiresAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EmailTokens::UsedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(&mut to_account(
                    "fk_tokens_account",
                    (EmailTokens::Table, EmailTokens::AccountId),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(ColumnDef::new(Sessions::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Sessions::AccountId).uuid().not_null())
                .col(
                    ColumnDef::new(Sessions::Digest)
                        .binary_len(32)
                        .not_null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(Sessions::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Sessions::LastSeenAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Sessions::RevokedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(&mut to_account(
                    "fk_sessions_account",
                    (Sessions::Table, Sessions::AccountId),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sessions_account")
                .table(Sessions::Table)
                .col(Sessions::AccountId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(LoginFailures::Table)
                .col(
                    ColumnDef::new(LoginFailures::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(LoginFailures::AccountId).uuid().not_null())
                .col(
                    ColumnDef::new(LoginFailures::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(&mut to_account(
                    "fk_failures_account",
                    (LoginFailures::Table, LoginFailures::AccountId),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_failures_account_at")
                .table(LoginFailures::Table)
                .col(LoginFailures::AccountId)
                .col(LoginFailures::At)
                .to_owned(),
        )
        .await?;

        // Append-only. The records issue extends entries with patient, record and outcome and
        // chains them with hashes.
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(
                    ColumnDef::new(AuditEvents::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(AuditEvents::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AuditEvents::Action)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditEvents::ActorAccountId).uuid().null())
                .col(ColumnDef::new(AuditEvents::RequestId).string_len(64).null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_actor_at")
                .table(AuditEvents::Table)
                .col(AuditEvents::ActorAccountId)
                .col(AuditEvents::At)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            LoginFailures::Table.into_iden(),
            Sessions::Table.into_iden(),
            EmailTokens::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
