use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_threads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub organization_id: Uuid,
    pub pool_id: Uuid,
    pub subject: String,
    pub started_by: Uuid,
    pub started_at: DateTimeUtc,
    pub claimed_by: Option<Uuid>,
    pub state: String,
    pub closed_at: Option<DateTimeUtc>,
    pub closed_by: Option<Uuid>,
    pub last_from: String,
    pub last_at: DateTimeUtc,
    /// Patient messages no member of staff has read.
    pub unread_by_staff: i32,
    /// Staff messages nobody on the patient's side has read.
    pub unread_by_patient: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
