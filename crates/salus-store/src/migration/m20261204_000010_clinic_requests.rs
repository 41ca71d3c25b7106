//! Which clinic a patient asked to confirm who they are, and what a patient needs to know of
//! a clinic: its phone number and the time zone its times are shown in. Charts are found by
//! birth date; held records across an organisation's charts by their state. A session remembers the sign-in before it (what is new is counted from then)
//! and the browser and system it was opened from.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdentityRequests {
    Table,
    AccountId,
    OrganizationId,
    RequestedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Phone,
    TimeZone,
}

#[derive(DeriveIden)]
enum ClinicalRecords {
    Table,
    ReleaseState,
    FiledAt,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    OrganizationId,
    BirthDate,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    PreviousSignInAt,
    Device,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(ColumnDef::new(Organizations::Phone).string_len(40))
                .to_owned(),
        )
        .await?;
        // An IANA zone name; existing organisations keep showing UTC until one is set.
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(
                    ColumnDef::new(Organizations::TimeZone)
                        .string_len(64)
                        .not_null()
                        .default("UTC"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(ColumnDef::new(Sessions::PreviousSignInAt).timestamp_with_time_zone())
                .to_owned(),
        )
        .await?;
        // "Firefox on Windows": derived from the user agent, which is not kept.
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(ColumnDef::new(Sessions::Device).string_len(80))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdentityRequests::Table)
                .col(
                    ColumnDef::new(IdentityRequests::AccountId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(IdentityRequests::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdentityRequests::RequestedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_identity_requests_account")
                        .from(IdentityRequests::Table, IdentityRequests::AccountId)
                        .to(Accounts::Table, Accounts::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_identity_requests_organization")
                        .from(IdentityRequests::Table, IdentityRequests::OrganizationId)
                        .to(Organizations::Table, Organizations::Id),
                )
                .to_owned(),
        )
        .await?;
        // The clinicians' queue of records held for release, across the organisation's charts.
        m.create_index(
            Index::create()
                .name("ix_records_release_state")
                .table(ClinicalRecords::Table)
                .col(ClinicalRecords::ReleaseState)
                .col(ClinicalRecords::FiledAt)
                .to_owned(),
        )
        .await?;
        // Finding a chart by name and birth date starts from the birth date.
        m.create_index(
            Index::create()
                .name("ix_patients_org_birth_date")
                .table(Patients::Table)
                .col(Patients::OrganizationId)
                .col(Patients::BirthDate)
                .to_owned(),
        )
        .await?;
        // The front desk's question: who is waiting for this organisation, oldest first.
        m.create_index(
            Index::create()
                .name("ix_identity_requests_org")
                .table(IdentityRequests::Table)
                .col(IdentityRequests::OrganizationId)
                .col(IdentityRequests::RequestedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_records_release_state")
                .table(ClinicalRecords::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("ix_patients_org_birth_date")
                .table(Patients::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(IdentityRequests::Table).to_owned())
            .await?;
        for col in [Sessions::PreviousSignInAt, Sessions::Device] {
            m.alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [Organizations::Phone, Organizations::TimeZone] {
            m.alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
