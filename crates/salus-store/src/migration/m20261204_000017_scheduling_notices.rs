//! What booking needed after its first tables: a provider's video room, the day an
//! appointment's reminder went out (taken by one node with a conditional update), one waitlist
//! entry per appointment, and an organisation's own cancellation cut-off.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BookableProviders {
    Table,
    VideoUrl,
}

#[derive(DeriveIden)]
enum Appointments {
    Table,
    RemindedAt,
    State,
    StartAt,
}

#[derive(DeriveIden)]
enum Waitlist {
    Table,
    AppointmentId,
}

#[derive(DeriveIden)]
enum SchedulingSettings {
    Table,
    OrganizationId,
    CancelCutoffHours,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(BookableProviders::Table)
                .add_column(ColumnDef::new(BookableProviders::VideoUrl).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Appointments::Table)
                .add_column(
                    ColumnDef::new(Appointments::RemindedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        // The reminder sweep reads booked appointments by start.
        m.create_index(
            Index::create()
                .name("ix_appointments_due")
                .table(Appointments::Table)
                .col(Appointments::State)
                .col(Appointments::StartAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_waitlist_appointment")
                .table(Waitlist::Table)
                .col(Waitlist::AppointmentId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SchedulingSettings::Table)
                .col(
                    ColumnDef::new(SchedulingSettings::OrganizationId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SchedulingSettings::CancelCutoffHours)
                        .integer()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_scheduling_settings_organization")
                        .from(
                            SchedulingSettings::Table,
                            SchedulingSettings::OrganizationId,
                        )
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SchedulingSettings::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("ux_waitlist_appointment")
                .table(Waitlist::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("ix_appointments_due")
                .table(Appointments::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Appointments::Table)
                .drop_column(Appointments::RemindedAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(BookableProviders::Table)
                .drop_column(BookableProviders::VideoUrl)
                .to_owned(),
        )
        .await
    }
}
