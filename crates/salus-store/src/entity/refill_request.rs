use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refill_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub organization_id: Uuid,
    pub medication_id: Uuid,
    pub medication_name: String,
    pub pharmacy_id: Uuid,
    pub pharmacy_name: String,
    pub pharmacy_address: String,
    pub pharmacy_phone: String,
    pub quantity: i32,
    pub note: Option<String>,
    pub requested_by: Uuid,
    pub requested_at: DateTimeUtc,
    pub state: String,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTimeUtc>,
    pub approved_quantity: Option<i32>,
    pub approved_refills: Option<i16>,
    pub instructions: Option<String>,
    pub deny_reason: Option<String>,
    pub deny_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
