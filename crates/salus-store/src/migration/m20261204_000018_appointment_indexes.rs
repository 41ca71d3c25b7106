//! The reminder sweep's index on appointments was `(state, start_at)`. Without statistics,
//! SQLite took it for "a patient's upcoming appointments" too (an equality on `state` looked
//! as good as one on `patient_id`), reading every booked appointment of the database for each
//! booking. By start alone, it serves the sweep's time window and leaves the patient's
//! queries to `ix_appointments_patient`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Appointments {
    Table,
    State,
    StartAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_appointments_due")
                .table(Appointments::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_appointments_start")
                .table(Appointments::Table)
                .col(Appointments::StartAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_appointments_start")
                .table(Appointments::Table)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_appointments_due")
                .table(Appointments::Table)
                .col(Appointments::State)
                .col(Appointments::StartAt)
                .to_owned(),
        )
        .await
    }
}
