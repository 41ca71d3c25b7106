use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clinical_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Uuid,
    pub kind: String,
    pub encounter_id: Option<Uuid>,
    pub sort_at: DateTimeUtc,
    pub code_system: Option<String>,
    pub code: Option<String>,
    pub title: String,
    pub status: String,
    pub source_author: Option<String>,
    pub source_performer: Option<String>,
    pub source_organization: Option<String>,
    pub source_outside: bool,
    pub source_identifier: Option<String>,
    pub sensitivity: i16,
    pub release_state: String,
    pub released_at: Option<DateTimeUtc>,
    pub filed_at: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
}

/// What a record is read back from: every column but the copies `record_to_row` makes from
/// the body for searching and sorting (`sort_at`, `code_system`, `code`, `title`, `status`).
/// The driver copies every value it reads, so record reads take only these.
#[derive(Clone, Debug, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct Stored {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Uuid,
    pub kind: String,
    pub encounter_id: Option<Uuid>,
    pub source_author: Option<String>,
    pub source_performer: Option<String>,
    pub source_organization: Option<String>,
    pub source_outside: bool,
    pub source_identifier: Option<String>,
    pub sensitivity: i16,
    pub release_state: String,
    pub released_at: Option<DateTimeUtc>,
    pub filed_at: DateTimeUtc,
    pub detail: String,
}

/// The columns of [`Stored`], for statements written as SQL.
pub const STORED_COLUMNS: [&str; 15] = [
    "id",
    "organization_id",
    "patient_id",
    "kind",
    "encounter_id",
    "source_author",
    "source_performer",
    "source_organization",
    "source_outside",
    "source_identifier",
    "sensitivity",
    "release_state",
    "released_at",
    "filed_at",
    "detail",
];

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
