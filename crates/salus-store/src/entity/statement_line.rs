use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "statement_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub statement_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub service_date: Date,
    pub description: String,
    pub charge_minor: i64,
    pub insurance_paid_minor: i64,
    pub adjustments_minor: i64,
    pub patient_share_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::statement::Entity",
        from = "Column::StatementId",
        to = "super::statement::Column::Id"
    )]
    Statement,
}

impl Related<super::statement::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Statement.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
