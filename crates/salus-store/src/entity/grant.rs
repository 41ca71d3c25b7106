use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub grantee_kind: String,
    pub grantee_account_id: Option<Uuid>,
    pub invitee_email: Option<String>,
    pub relationship: Option<String>,
    pub recipient: Option<String>,
    pub passcode_hash: Option<String>,
    pub token_digest: Option<Vec<u8>>,
    pub kinds: String,
    pub actions: String,
    pub labels: i16,
    pub valid_from: DateTimeUtc,
    pub valid_until: DateTimeUtc,
    pub state: String,
    pub invited_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub accepted_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_by: Option<Uuid>,
    pub note: Option<String>,
    pub made_by: Uuid,
    pub made_by_staff: bool,
    pub made_at: DateTimeUtc,
    pub end_notified_at: Option<DateTimeUtc>,
    pub failed_passcodes: i32,
    pub last_failed_at: Option<DateTimeUtc>,
    pub locked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
