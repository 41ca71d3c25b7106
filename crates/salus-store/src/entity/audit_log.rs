use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    pub action: String,
    pub actor_kind: Option<String>,
    pub actor_account_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub grant_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub record_kind: Option<String>,
    pub record_id: Option<Uuid>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
