use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email_key: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<Date>,
    pub role: String,
    pub staff_organization_id: Option<Uuid>,
    pub state: String,
    pub state_at: Option<DateTimeUtc>,
    pub patient_id: Option<Uuid>,
    pub password_hash: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
