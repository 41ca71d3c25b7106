//! Files attached to messages (stored in the database, so several nodes share them), the
//! pharmacies patients save, and refill requests — at most one waiting per medication,
//! decided by a unique index over the waiting ones.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageAttachments {
    Table,
    Id,
    MessageId,
    Position,
    Name,
    MediaType,
    Size,
    Content,
}

#[derive(DeriveIden)]
enum Pharmacies {
    Table,
    Id,
    PatientId,
    Name,
    Address,
    Phone,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefillRequests {
    Table,
    Id,
    PatientId,
    OrganizationId,
    MedicationId,
    MedicationName,
    PharmacyId,
    PharmacyName,
    PharmacyAddress,
    PharmacyPhone,
    Quantity,
    Note,
    RequestedBy,
    RequestedAt,
    State,
    DecidedBy,
    DecidedAt,
    ApprovedQuantity,
    ApprovedRefills,
    Instructions,
    DenyReason,
    DenyNote,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MessageAttachments::Table)
                .col(
                    ColumnDef::new(MessageAttachments::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::MessageId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::Position)
                        .small_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::Name)
                        .string_len(160)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::MediaType)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::Size)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(MessageAttachments::Content)
                        .blob()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_message_attachments_message")
                        .from(MessageAttachments::Table, MessageAttachments::MessageId)
                        .to(Messages::Table, Messages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_message_attachments_message")
                .table(MessageAttachments::Table)
                .col(MessageAttachments::MessageId)
                .col(MessageAttachments::Position)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Pharmacies::Table)
                .col(
                    ColumnDef::new(Pharmacies::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Pharmacies::PatientId).uuid().not_null())
                .col(ColumnDef::new(Pharmacies::Name).string_len(120).not_null())
                .col(
                    ColumnDef::new(Pharmacies::Address)
                        .string_len(500)
                        .not_null(),
                )
                .col(ColumnDef::new(Pharmacies::Phone).string_len(40).not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_pharmacies_patient")
                        .from(Pharmacies::Table, Pharmacies::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_pharmacies_patient")
                .table(Pharmacies::Table)
                .col(Pharmacies::PatientId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RefillRequests::Table)
                .col(
                    ColumnDef::new(RefillRequests::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(RefillRequests::PatientId).uuid().not_null())
                .col(
                    ColumnDef::new(RefillRequests::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefillRequests::MedicationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefillRequests::MedicationName)
                        .string_len(1000)
                        .not_null(),
                )
                .col(ColumnDef::new(RefillRequests::PharmacyId).uuid().not_null())
                .col(
                    ColumnDef::new(RefillRequests::PharmacyName)
                        .string_len(120)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefillRequests::PharmacyAddress)
                        .string_len(500)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefillRequests::PharmacyPhone)
                        .string_len(40)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefillRequests::Quantity)
                        .integer()
                        .not_null(),
                )
                .col(ColumnDef::new(RefillRequests::Note).text())
                .col(
                    ColumnDef::new(RefillRequests::RequestedBy)
                        .uuid()
                        .not_null(),
                )
                .col(ts(RefillRequests::RequestedAt).not_null())
                // `requested`, `approved`, `denied`, `cancelled`.
                .col(
                    ColumnDef::new(RefillRequests::State)
                        .string_len(12)
                        .not_null(),
                )
                .col(ColumnDef::new(RefillRequests::DecidedBy).uuid())
                .col(ts(RefillRequests::DecidedAt))
                .col(ColumnDef::new(RefillRequests::ApprovedQuantity).integer())
                .col(ColumnDef::new(RefillRequests::ApprovedRefills).small_integer())
                .col(ColumnDef::new(RefillRequests::Instructions).text())
                .col(ColumnDef::new(RefillRequests::DenyReason).string_len(32))
                .col(ColumnDef::new(RefillRequests::DenyNote).text())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_refill_requests_patient")
                        .from(RefillRequests::Table, RefillRequests::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A patient's requests, newest first.
        m.create_index(
            Index::create()
                .name("ix_refill_requests_patient")
                .table(RefillRequests::Table)
                .col(RefillRequests::PatientId)
                .col(RefillRequests::RequestedAt)
                .to_owned(),
        )
        .await?;
        // The clinicians' queue: an organisation's requests of one state, by time.
        m.create_index(
            Index::create()
                .name("ix_refill_requests_queue")
                .table(RefillRequests::Table)
                .col(RefillRequests::OrganizationId)
                .col(RefillRequests::State)
                .col(RefillRequests::RequestedAt)
                .to_owned(),
        )
        .await?;
        // One waiting request per medication: the database decides, not a read before the
        // write. The same partial-index statement on SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_refill_requests_waiting ON refill_requests (medication_id) \
                 WHERE state = 'requested'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            RefillRequests::Table.into_iden(),
            Pharmacies::Table.into_iden(),
            MessageAttachments::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
