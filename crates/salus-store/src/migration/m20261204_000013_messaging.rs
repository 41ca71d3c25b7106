//! Messaging: care pools and their staff, threads, messages (never changed once written),
//! read receipts beside them, and the idempotency keys of sends.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CarePools {
    Table,
    Id,
    OrganizationId,
    Name,
    AnswerDays,
    Active,
}

#[derive(DeriveIden)]
enum CarePoolStaff {
    Table,
    PoolId,
    AccountId,
}

#[derive(DeriveIden)]
enum MessageThreads {
    Table,
    Id,
    PatientId,
    OrganizationId,
    PoolId,
    Subject,
    StartedBy,
    StartedAt,
    ClaimedBy,
    State,
    ClosedAt,
    ClosedBy,
    LastFrom,
    LastAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ThreadId,
    AuthorAccountId,
    Side,
    GrantId,
    Role,
    Body,
    SentAt,
}

#[derive(DeriveIden)]
enum MessageReceipts {
    Table,
    MessageId,
    ReadAt,
    ReadBy,
}

#[derive(DeriveIden)]
enum MessageKeys {
    Table,
    AccountId,
    Key,
    Fingerprint,
    ThreadId,
    MessageId,
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

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

/// A timestamp column.
fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CarePools::Table)
                .col(
                    ColumnDef::new(CarePools::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(CarePools::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(CarePools::Name).string_len(80).not_null())
                .col(
                    ColumnDef::new(CarePools::AnswerDays)
                        .small_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(CarePools::Active).boolean().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_care_pools_org")
                        .from(CarePools::Table, CarePools::OrganizationId)
                        .to(Organizations::Table, Organizations::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_care_pools_org_name")
                .table(CarePools::Table)
                .col(CarePools::OrganizationId)
                .col(CarePools::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(CarePoolStaff::Table)
                .col(ColumnDef::new(CarePoolStaff::PoolId).uuid().not_null())
                .col(ColumnDef::new(CarePoolStaff::AccountId).uuid().not_null())
                .primary_key(
                    Index::create()
                        .col(CarePoolStaff::PoolId)
                        .col(CarePoolStaff::AccountId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_care_pool_staff_pool")
                        .from(CarePoolStaff::Table, CarePoolStaff::PoolId)
                        .to(CarePools::Table, CarePools::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_care_pool_staff_account")
                        .from(CarePoolStaff::Table, CarePoolStaff::AccountId)
                        .to(Accounts::Table, Accounts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MessageThreads::Table)
                .col(
                    ColumnDef::new(MessageThreads::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(MessageThreads::PatientId).uuid().not_null())
                .col(
                    ColumnDef::new(MessageThreads::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(MessageThreads::PoolId).uuid().not_null())
                .col(
                    ColumnDef::new(MessageThreads::Subject)
                        .string_len(200)
                        .not_null(),
                )
                .col(ColumnDef::new(MessageThreads::StartedBy).uuid().not_null())
                .col(ts(MessageThreads::StartedAt).not_null())
                .col(ColumnDef::new(MessageThreads::ClaimedBy).uuid())
                // `open` or `closed`.
                .col(
                    ColumnDef::new(MessageThreads::State)
                        .string_len(8)
                        .not_null(),
                )
                .col(ts(MessageThreads::ClosedAt))
                .col(ColumnDef::new(MessageThreads::ClosedBy).uuid())
                // `patient` or `staff`.
                .col(
                    ColumnDef::new(MessageThreads::LastFrom)
                        .string_len(8)
                        .not_null(),
                )
                .col(ts(MessageThreads::LastAt).not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_message_threads_patient")
                        .from(MessageThreads::Table, MessageThreads::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_message_threads_pool")
                        .from(MessageThreads::Table, MessageThreads::PoolId)
                        .to(CarePools::Table, CarePools::Id),
                )
                .to_owned(),
        )
        .await?;
        // The inbox: a pool's threads of one state, most recent first.
        m.create_index(
            Index::create()
                .name("ix_message_threads_pool_state")
                .table(MessageThreads::Table)
                .col(MessageThreads::PoolId)
                .col(MessageThreads::State)
                .col(MessageThreads::LastAt)
                .to_owned(),
        )
        .await?;
        // A patient's threads, and how many were started today.
        m.create_index(
            Index::create()
                .name("ix_message_threads_patient")
                .table(MessageThreads::Table)
                .col(MessageThreads::PatientId)
                .col(MessageThreads::StartedAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(ColumnDef::new(Messages::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Messages::ThreadId).uuid().not_null())
                .col(ColumnDef::new(Messages::AuthorAccountId).uuid().not_null())
                .col(ColumnDef::new(Messages::Side).string_len(8).not_null())
                .col(ColumnDef::new(Messages::GrantId).uuid())
                .col(ColumnDef::new(Messages::Role).string_len(32))
                .col(ColumnDef::new(Messages::Body).text().not_null())
                .col(ts(Messages::SentAt).not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_messages_thread")
                        .from(Messages::Table, Messages::ThreadId)
                        .to(MessageThreads::Table, MessageThreads::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_messages_thread")
                .table(Messages::Table)
                .col(Messages::ThreadId)
                .col(Messages::SentAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MessageReceipts::Table)
                .col(
                    ColumnDef::new(MessageReceipts::MessageId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ts(MessageReceipts::ReadAt).not_null())
                .col(ColumnDef::new(MessageReceipts::ReadBy).uuid().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_message_receipts_message")
                        .from(MessageReceipts::Table, MessageReceipts::MessageId)
                        .to(Messages::Table, Messages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(MessageKeys::Table)
                .col(ColumnDef::new(MessageKeys::AccountId).uuid().not_null())
                .col(ColumnDef::new(MessageKeys::Key).string_len(200).not_null())
                .col(
                    ColumnDef::new(MessageKeys::Fingerprint)
                        .binary_len(32)
                        .not_null(),
                )
                .col(ColumnDef::new(MessageKeys::ThreadId).uuid().not_null())
                .col(ColumnDef::new(MessageKeys::MessageId).uuid().not_null())
                .primary_key(
                    Index::create()
                        .col(MessageKeys::AccountId)
                        .col(MessageKeys::Key),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_message_keys_message")
                        .from(MessageKeys::Table, MessageKeys::MessageId)
                        .to(Messages::Table, Messages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            MessageKeys::Table.into_iden(),
            MessageReceipts::Table.into_iden(),
            Messages::Table.into_iden(),
            MessageThreads::Table.into_iden(),
            CarePoolStaff::Table.into_iden(),
            CarePools::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
