use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Uuid,
    pub idem_key: String,
    pub amount_minor: i64,
    pub currency: String,
    pub state: String,
    pub decline_reason: Option<String>,
    pub reference: Option<String>,
    pub created_at: DateTimeUtc,
    pub settled_at: Option<DateTimeUtc>,
    pub made_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
