//! Payment plans (bill pay). `active_patient_id` is the chart while the plan is active and
//! empty after: its unique index lets a chart have one active plan, decided by the database.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone, Copy)]
enum PaymentPlans {
    Table,
    Id,
    OrganizationId,
    PatientId,
    ActivePatientId,
    TotalMinor,
    Currency,
    Instalments,
    Starts,
    CardToken,
    CreatedAt,
    MadeBy,
    State,
    EndedAt,
    FailedInstalment,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let t = PaymentPlans::Table;
        m.create_table(
            Table::create()
                .table(t)
                .col(
                    ColumnDef::new(PaymentPlans::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(PaymentPlans::PatientId).uuid().not_null())
                .col(ColumnDef::new(PaymentPlans::ActivePatientId).uuid().null())
                .col(
                    ColumnDef::new(PaymentPlans::TotalMinor)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::Currency)
                        .string_len(3)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::Instalments)
                        .small_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(PaymentPlans::Starts).date().not_null())
                .col(
                    ColumnDef::new(PaymentPlans::CardToken)
                        .string_len(200)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(PaymentPlans::MadeBy).uuid().null())
                .col(
                    ColumnDef::new(PaymentPlans::State)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::EndedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(PaymentPlans::FailedInstalment)
                        .small_integer()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_payment_plans_patient")
                        .from(t, PaymentPlans::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_payment_plans_active_patient")
                .table(t)
                .col(PaymentPlans::ActivePatientId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_payment_plans_patient")
                .table(t)
                .col(PaymentPlans::PatientId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_payment_plans_state")
                .table(t)
                .col(PaymentPlans::State)
                .col(PaymentPlans::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PaymentPlans::Table).to_owned())
            .await
    }
}
