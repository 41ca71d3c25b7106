//! Statements and their lines (bill pay). Money is stored as integer minor units with the
//! statement's ISO 4217 currency; an organisation's statement numbers are unique.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Statements {
    Table,
    Id,
    OrganizationId,
    PatientId,
    Number,
    Issued,
    Due,
    Currency,
}

#[derive(DeriveIden, Clone, Copy)]
enum StatementLines {
    Table,
    StatementId,
    Position,
    ServiceDate,
    Description,
    ChargeMinor,
    InsurancePaidMinor,
    AdjustmentsMinor,
    PatientShareMinor,
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

fn minor(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let s = Statements::Table;
        m.create_table(
            Table::create()
                .table(s)
                .col(
                    ColumnDef::new(Statements::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Statements::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(Statements::PatientId).uuid().not_null())
                .col(ColumnDef::new(Statements::Number).string_len(40).not_null())
                .col(ColumnDef::new(Statements::Issued).date().not_null())
                .col(ColumnDef::new(Statements::Due).date().not_null())
                .col(
                    ColumnDef::new(Statements::Currency)
                        .string_len(3)
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_statements_patient")
                        .from(s, Statements::PatientId)
                        .to(Patients::Table, Patients::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_statements_organization")
                        .from(s, Statements::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_statements_org_number")
                .table(s)
                .col(Statements::OrganizationId)
                .col(Statements::Number)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_statements_patient")
                .table(s)
                .col(Statements::PatientId)
                .col(Statements::Issued)
                .to_owned(),
        )
        .await?;
        let l = StatementLines::Table;
        m.create_table(
            Table::create()
                .table(l)
                .col(
                    ColumnDef::new(StatementLines::StatementId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(StatementLines::Position)
                        .integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(StatementLines::ServiceDate)
                        .date()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(StatementLines::Description)
                        .string_len(200)
                        .not_null(),
                )
                .col(minor(StatementLines::ChargeMinor))
                .col(minor(StatementLines::InsurancePaidMinor))
                .col(minor(StatementLines::AdjustmentsMinor))
                .col(minor(StatementLines::PatientShareMinor))
                .primary_key(
                    Index::create()
                        .col(StatementLines::StatementId)
                        .col(StatementLines::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_statement_lines_statement")
                        .from(l, StatementLines::StatementId)
                        .to(s, Statements::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(StatementLines::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Statements::Table).to_owned())
            .await
    }
}
