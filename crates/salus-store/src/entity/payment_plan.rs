use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Uuid,
    pub active_patient_id: Option<Uuid>,
    pub total_minor: i64,
    pub currency: String,
    pub instalments: i16,
    pub starts: Date,
    pub card_token: String,
    pub created_at: DateTimeUtc,
    pub made_by: Option<Uuid>,
    pub state: String,
    pub ended_at: Option<DateTimeUtc>,
    pub failed_instalment: Option<i16>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
