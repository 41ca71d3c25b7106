//! Organisations, charts, practitioners, provider organisations and clinical records.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OrganizationFeatures {
    Table,
    OrganizationId,
    Feature,
}

#[derive(DeriveIden)]
enum ReleaseRules {
    Table,
    OrganizationId,
    Scope,
    Subject,
    Rule,
    Hours,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    OrganizationId,
    Mrn,
    GivenName,
    FamilyName,
    BirthDate,
    Sex,
    Phone,
    Email,
    Address,
    SourceIdentifier,
}

#[derive(DeriveIden)]
enum Practitioners {
    Table,
    Id,
    OrganizationId,
    Name,
    Npi,
    SourceIdentifier,
}

#[derive(DeriveIden)]
enum ProviderOrganizations {
    Table,
    Id,
    OrganizationId,
    Name,
    SourceIdentifier,
}

#[derive(DeriveIden)]
enum ClinicalRecords {
    Table,
    Id,
    OrganizationId,
    PatientId,
    Kind,
    EncounterId,
    SortAt,
    CodeSystem,
    Code,
    Title,
    Status,
    SourceAuthor,
    SourcePerformer,
    SourceOrganization,
    SourceOutside,
    SourceIdentifier,
    Sensitivity,
    ReleaseState,
    ReleasedAt,
    FiledAt,
    Detail,
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
                .table(Organizations::Table)
                .col(
                    ColumnDef::new(Organizations::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Organizations::Slug)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(Organizations::Name)
                        .string_len(200)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Organizations::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OrganizationFeatures::Table)
                .col(
                    ColumnDef::new(OrganizationFeatures::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(OrganizationFeatures::Feature)
                        .string_len(32)
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(OrganizationFeatures::OrganizationId)
                        .col(OrganizationFeatures::Feature),
                )
                .foreign_key(&mut fk(
                    "fk_features_org",
                    (
                        OrganizationFeatures::Table,
                        OrganizationFeatures::OrganizationId,
                    ),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await?;

        // One row per rule: scope 'kind' (subject = record kind code) or 'label'
        // (subject = sensitivity label code).
        m.create_table(
            Table::create()
                .table(ReleaseRules::Table)
                .col(
                    ColumnDef::new(ReleaseRules::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(ReleaseRules::Scope).string_len(8).not_null())
                .col(
                    ColumnDef::new(ReleaseRules::Subject)
                        .string_len(40)
                        .not_null(),
                )
                .col(ColumnDef::new(ReleaseRules::Rule).string_len(32).not_null())
                .col(ColumnDef::new(ReleaseRules::Hours).integer().null())
                .primary_key(
                    Index::create()
                        .col(ReleaseRules::OrganizationId)
                        .col(ReleaseRules::Scope)
                        .col(ReleaseRules::Subject),
                )
                .foreign_key(&mut fk(
                    "fk_release_rules_org",
                    (ReleaseRules::Table, ReleaseRules::OrganizationId),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Patients::Table)
                .col(ColumnDef::new(Patients::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Patients::OrganizationId).uuid().not_null())
                .col(ColumnDef::new(Patients::Mrn).string_len(64).not_null())
                .col(
                    ColumnDef::new(Patients::GivenName)
                        .string_len(200)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Patients::FamilyName)
                        .string_len(200)
                        .not_null(),
                )
                .col(ColumnDef::new(Patients::BirthDate).date().not_null())
                .col(ColumnDef::new(Patients::Sex).string_len(16).not_null())
                .col(ColumnDef::new(Patients::Phone).string_len(40).null())
                .col(ColumnDef::new(Patients::Email).string_len(254).null())
                .col(ColumnDef::new(Patients::Address).string_len(500).null())
                .col(
                    ColumnDef::new(Patients::SourceIdentifier)
                        .string_len(300)
                        .null(),
                )
                .foreign_key(&mut fk(
                    "fk_patients_org",
                    (Patients::Table, Patients::OrganizationId),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_patients_org_mrn")
                .table(Patients::Table)
                .col(Patients::OrganizationId)
                .col(Patients::Mrn)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_patients_org_source")
                .table(Patients::Table)
                .col(Patients::OrganizationId)
                .col(Patients::SourceIdentifier)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Practitioners::Table)
                .col(
                    ColumnDef::new(Practitioners::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Practitioners::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Practitioners::Name)
                        .string_len(300)
                        .not_null(),
                )
                .col(ColumnDef::new(Practitioners::Npi).string_len(20).null())
                .col(
                    ColumnDef::new(Practitioners::SourceIdentifier)
                        .string_len(300)
                        .null(),
                )
                .foreign_key(&mut fk(
                    "fk_practitioners_org",
                    (Practitioners::Table, Practitioners::OrganizationId),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_practitioners_org_source")
                .table(Practitioners::Table)
                .col(Practitioners::OrganizationId)
                .col(Practitioners::SourceIdentifier)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProviderOrganizations::Table)
                .col(
                    ColumnDef::new(ProviderOrganizations::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ProviderOrganizations::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProviderOrganizations::Name)
                        .string_len(300)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProviderOrganizations::SourceIdentifier)
                        .string_len(300)
                        .null(),
                )
                .foreign_key(&mut fk(
                    "fk_provider_orgs_org",
                    (
                        ProviderOrganizations::Table,
                        ProviderOrganizations::OrganizationId,
                    ),
                    (Organizations::Table, Organizations::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_provider_orgs_org_source")
                .table(ProviderOrganizations::Table)
                .col(ProviderOrganizations::OrganizationId)
                .col(ProviderOrganizations::SourceIdentifier)
                .unique()
                .to_owned(),
        )
        .await?;

        // Columns every kind shares (and lists filter or sort on); the kind-specific part is
        // a JSON document in `detail`, written and read only through the typed domain model.
        m.create_table(
            Table::create()
                .table(ClinicalRecords::Table)
                .col(
                    ColumnDef::new(ClinicalRecords::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::OrganizationId)
                        .uuid()
                        .not_null(),
                )
                .col(ColumnDef::new(ClinicalRecords::PatientId).uuid().not_null())
                .col(
                    ColumnDef::new(ClinicalRecords::Kind)
                        .string_len(32)
                        .not_null(),
                )
                .col(ColumnDef::new(ClinicalRecords::EncounterId).uuid().null())
                .col(
                    ColumnDef::new(ClinicalRecords::SortAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::CodeSystem)
                        .string_len(300)
                        .null(),
                )
                .col(ColumnDef::new(ClinicalRecords::Code).string_len(300).null())
                .col(
                    ColumnDef::new(ClinicalRecords::Title)
                        .string_len(1000)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::Status)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::SourceAuthor)
                        .string_len(300)
                        .null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::SourcePerformer)
                        .string_len(300)
                        .null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::SourceOrganization)
                        .string_len(300)
                        .null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::SourceOutside)
                        .boolean()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::SourceIdentifier)
                        .string_len(300)
                        .null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::Sensitivity)
                        .small_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::ReleaseState)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::ReleasedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(ClinicalRecords::FiledAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(ClinicalRecords::Detail).text().not_null())
                .foreign_key(&mut fk(
                    "fk_records_org",
                    (ClinicalRecords::Table, ClinicalRecords::OrganizationId),
                    (Organizations::Table, Organizations::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_records_patient",
                    (ClinicalRecords::Table, ClinicalRecords::PatientId),
                    (Patients::Table, Patients::Id),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_records_encounter")
                        .from(ClinicalRecords::Table, ClinicalRecords::EncounterId)
                        .to(ClinicalRecords::Table, ClinicalRecords::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        // "Records of patient P of kind K, newest first, after cursor C": a range scan of
        // this index, read backwards (see tests/store.rs: query_plan_*).
        m.create_index(
            Index::create()
                .name("ix_records_patient_kind_time")
                .table(ClinicalRecords::Table)
                .col(ClinicalRecords::PatientId)
                .col(ClinicalRecords::Kind)
                .col(ClinicalRecords::SortAt)
                .col(ClinicalRecords::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_records_org_source")
                .table(ClinicalRecords::Table)
                .col(ClinicalRecords::OrganizationId)
                .col(ClinicalRecords::SourceIdentifier)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_records_encounter")
                .table(ClinicalRecords::Table)
                .col(ClinicalRecords::EncounterId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ClinicalRecords::Table.into_iden(),
            ProviderOrganizations::Table.into_iden(),
            Practitioners::Table.into_iden(),
            Patients::Table.into_iden(),
            ReleaseRules::Table.into_iden(),
            OrganizationFeatures::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
