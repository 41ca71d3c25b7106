//! Guardians of minors and share links: an organisation's guardian policy, the notice sent
//! when a guardianship ends at 18, and the wrong-passcode count and lock of a share link.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    GranteeKind,
    ValidUntil,
    EndNotifiedAt,
    FailedPasscodes,
    LastFailedAt,
    LockedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    GuardianHiddenLabels,
}

/// Mental health, substance use, sexual and reproductive health, HIV (the label bits of
/// `SensitivityLabels`): what a guardian of a 12–17-year-old does not see unless the
/// organisation decides otherwise (`docs/architecture.md`).
const DEFAULT_HIDDEN: i16 = 1 | 2 | 4 | 8;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let add = |col: ColumnDef| {
            Table::alter()
                .table(Grants::Table)
                .add_column(col)
                .to_owned()
        };
        m.alter_table(add(ColumnDef::new(Grants::EndNotifiedAt)
            .timestamp_with_time_zone()
            .to_owned()))
            .await?;
        m.alter_table(add(ColumnDef::new(Grants::FailedPasscodes)
            .integer()
            .not_null()
            .default(0)
            .to_owned()))
            .await?;
        m.alter_table(add(ColumnDef::new(Grants::LastFailedAt)
            .timestamp_with_time_zone()
            .to_owned()))
            .await?;
        m.alter_table(add(ColumnDef::new(Grants::LockedAt)
            .timestamp_with_time_zone()
            .to_owned()))
            .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(
                    ColumnDef::new(Organizations::GuardianHiddenLabels)
                        .small_integer()
                        .not_null()
                        .default(DEFAULT_HIDDEN),
                )
                .to_owned(),
        )
        .await?;
        // The daily question: guardianships that ended by now.
        m.create_index(
            Index::create()
                .name("ix_grants_kind_until")
                .table(Grants::Table)
                .col(Grants::GranteeKind)
                .col(Grants::ValidUntil)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_grants_kind_until")
                .table(Grants::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .drop_column(Organizations::GuardianHiddenLabels)
                .to_owned(),
        )
        .await?;
        for col in [
            Grants::LockedAt,
            Grants::LastFailedAt,
            Grants::FailedPasscodes,
            Grants::EndNotifiedAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
