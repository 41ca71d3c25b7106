//! Payments, refunds, staff adjustments, the organisation's billing settings and each
//! account's version (bill pay). A client's idempotency key is unique per chart (payments) or
//! per payment (refunds), so a retry can never record a second one; a payment is recorded only
//! against the account version its amount was checked on.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden, Clone, Copy)]
enum BillingAccounts {
    Table,
    PatientId,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
enum BillingSettings {
    Table,
    OrganizationId,
    Currency,
    MinInstalmentMinor,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    OrganizationId,
    PatientId,
    IdemKey,
    AmountMinor,
    Currency,
    State,
    DeclineReason,
    Reference,
    CreatedAt,
    SettledAt,
    MadeBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    OrganizationId,
    PatientId,
    IdemKey,
    AmountMinor,
    Currency,
    Reason,
    MadeBy,
    State,
    Reference,
    CreatedAt,
    SettledAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BalanceAdjustments {
    Table,
    Id,
    OrganizationId,
    PatientId,
    AmountMinor,
    Currency,
    Reason,
    MadeBy,
    At,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}

fn minor(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}

fn text(c: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

fn to_patient(
    table: impl IntoIden + Copy,
    col: impl IntoIden,
    name: &str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(Patients::Table, Patients::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BillingAccounts::Table)
                .col(uuid(BillingAccounts::PatientId).primary_key())
                .col(
                    ColumnDef::new(BillingAccounts::Version)
                        .big_integer()
                        .not_null(),
                )
                .foreign_key(&mut to_patient(
                    BillingAccounts::Table,
                    BillingAccounts::PatientId,
                    "fk_billing_accounts_patient",
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BillingSettings::Table)
                .col(uuid(BillingSettings::OrganizationId).primary_key())
                .col(text(BillingSettings::Currency, 3))
                .col(minor(BillingSettings::MinInstalmentMinor))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_billing_settings_organization")
                        .from(BillingSettings::Table, BillingSettings::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let p = Payments::Table;
        m.create_table(
            Table::create()
                .table(p)
                .col(uuid(Payments::Id).primary_key())
                .col(uuid(Payments::OrganizationId))
                .col(uuid(Payments::PatientId))
                .col(text(Payments::IdemKey, 100))
                .col(minor(Payments::AmountMinor))
                .col(text(Payments::Currency, 3))
                .col(text(Payments::State, 16))
                .col(
                    ColumnDef::new(Payments::DeclineReason)
                        .string_len(32)
                        .null(),
                )
                .col(ColumnDef::new(Payments::Reference).string_len(200).null())
                .col(
                    ColumnDef::new(Payments::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Payments::SettledAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(Payments::MadeBy).uuid().null())
                .foreign_key(&mut to_patient(
                    p,
                    Payments::PatientId,
                    "fk_payments_patient",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_payments_patient_key")
                .table(p)
                .col(Payments::PatientId)
                .col(Payments::IdemKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_payments_state_created")
                .table(p)
                .col(Payments::State)
                .col(Payments::CreatedAt)
                .to_owned(),
        )
        .await?;
        let r = Refunds::Table;
        m.create_table(
            Table::create()
                .table(r)
                .col(uuid(Refunds::Id).primary_key())
                .col(uuid(Refunds::PaymentId))
                .col(uuid(Refunds::OrganizationId))
                .col(uuid(Refunds::PatientId))
                .col(text(Refunds::IdemKey, 100))
                .col(minor(Refunds::AmountMinor))
                .col(text(Refunds::Currency, 3))
                .col(text(Refunds::Reason, 300))
                .col(uuid(Refunds::MadeBy))
                .col(text(Refunds::State, 16))
                .col(ColumnDef::new(Refunds::Reference).string_len(200).null())
                .col(
                    ColumnDef::new(Refunds::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Refunds::SettledAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(&mut to_patient(r, Refunds::PatientId, "fk_refunds_patient"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_refunds_payment")
                        .from(r, Refunds::PaymentId)
                        .to(p, Payments::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_refunds_payment_key")
                .table(r)
                .col(Refunds::PaymentId)
                .col(Refunds::IdemKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_refunds_patient")
                .table(r)
                .col(Refunds::PatientId)
                .to_owned(),
        )
        .await?;
        let a = BalanceAdjustments::Table;
        m.create_table(
            Table::create()
                .table(a)
                .col(uuid(BalanceAdjustments::Id).primary_key())
                .col(uuid(BalanceAdjustments::OrganizationId))
                .col(uuid(BalanceAdjustments::PatientId))
                .col(minor(BalanceAdjustments::AmountMinor))
                .col(text(BalanceAdjustments::Currency, 3))
                .col(text(BalanceAdjustments::Reason, 300))
                .col(uuid(BalanceAdjustments::MadeBy))
                .col(
                    ColumnDef::new(BalanceAdjustments::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(&mut to_patient(
                    a,
                    BalanceAdjustments::PatientId,
                    "fk_balance_adjustments_patient",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_balance_adjustments_patient")
                .table(a)
                .col(BalanceAdjustments::PatientId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            BalanceAdjustments::Table.into_iden(),
            Refunds::Table.into_iden(),
            Payments::Table.into_iden(),
            BillingSettings::Table.into_iden(),
            BillingAccounts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
