//! Activation codes and identity reviews.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActivationCodes {
    Table,
    Digest,
    PatientId,
    IssuedBy,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    UsedBy,
}

#[derive(DeriveIden)]
enum IdentityReviews {
    Table,
    AccountId,
    OrganizationId,
    Outcome,
    PatientId,
    DecidedBy,
    DecidedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
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

fn fk(
    name: &str,
    from: (impl IntoTableRef, impl IntoIden),
    to: (impl IntoTableRef, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ActivationCodes::Table)
                .col(
                    ColumnDef::new(ActivationCodes::Digest)
                        .binary_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(ActivationCodes::PatientId).uuid().not_null())
                .col(ColumnDef::new(ActivationCodes::IssuedBy).uuid().not_null())
                .col(
                    ColumnDef::new(ActivationCodes::IssuedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActivationCodes::ExpiresAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActivationCodes::UsedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(ActivationCodes::UsedBy).uuid().null())
                .foreign_key(&mut fk(
                    "fk_activation_patient",
                    (ActivationCodes::Table, ActivationCodes::PatientId),
                    (Patients::Table, Patients::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_activation_issuer",
                    (ActivationCodes::Table, ActivationCodes::IssuedBy),
                    (Accounts::Table, Accounts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdentityReviews::Table)
                .col(ColumnDef::new(IdentityReviews::AccountId).uuid().not_null())
                .col(
                    ColumnDef::new(IdentityReviews::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdentityReviews::Outcome)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(IdentityReviews::PatientId).uuid().null())
                .col(ColumnDef::new(IdentityReviews::DecidedBy).uuid().not_null())
                .col(
                    ColumnDef::new(IdentityReviews::DecidedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(IdentityReviews::AccountId)
                        .col(IdentityReviews::OrganizationId),
                )
                .foreign_key(&mut fk(
                    "fk_review_account",
                    (IdentityReviews::Table, IdentityReviews::AccountId),
                    (Accounts::Table, Accounts::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_review_org",
                    (IdentityReviews::Table, IdentityReviews::OrganizationId),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentityReviews::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ActivationCodes::Table).to_owned())
            .await
    }
}
