//! The audit log becomes one hash-chained table for authentication and health-data access
//! (`audit_log`, ordered by `seq`). Existing authentication events are carried over in their
//! original order and chained; the old `audit_events` table is dropped.

use crate::audit::{Entry, row};
use sea_orm::{ConnectionTrait, EntityTrait};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    Id,
    At,
    Action,
    ActorKind,
    ActorAccountId,
    ActorRole,
    GrantId,
    PatientId,
    RecordKind,
    RecordId,
    Outcome,
    RequestId,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Action,
    ActorAccountId,
    RequestId,
}

/// Authentication codes that record a failure (as `AuthEventKind::is_failure`).
const FAILURES: [&str; 7] = [
    "auth.sign_in_failed",
    "auth.email_verification_failed",
    "auth.sign_in_unverified",
    "auth.sign_in_throttled",
    "auth.account_locked",
    "auth.second_factor_failed",
    "identity.activation_code_rejected",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(
                    ColumnDef::new(AuditLog::Seq)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AuditLog::Id).uuid().not_null().unique_key())
                .col(
                    ColumnDef::new(AuditLog::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(AuditLog::Action).string_len(64).not_null())
                .col(ColumnDef::new(AuditLog::ActorKind).string_len(16).null())
                .col(ColumnDef::new(AuditLog::ActorAccountId).uuid().null())
                .col(ColumnDef::new(AuditLog::ActorRole).string_len(32).null())
                .col(ColumnDef::new(AuditLog::GrantId).uuid().null())
                .col(ColumnDef::new(AuditLog::PatientId).uuid().null())
                .col(ColumnDef::new(AuditLog::RecordKind).string_len(32).null())
                .col(ColumnDef::new(AuditLog::RecordId).uuid().null())
                .col(ColumnDef::new(AuditLog::Outcome).string_len(16).not_null())
                .col(ColumnDef::new(AuditLog::RequestId).string_len(64).null())
                .col(ColumnDef::new(AuditLog::PrevHash).binary().not_null())
                .col(ColumnDef::new(AuditLog::Hash).binary().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_log_patient_seq")
                .table(AuditLog::Table)
                .col(AuditLog::PatientId)
                .col(AuditLog::Seq)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_log_actor_at")
                .table(AuditLog::Table)
                .col(AuditLog::ActorAccountId)
                .col(AuditLog::At)
                .to_owned(),
        )
        .await?;

        // Carry the authentication events over, oldest first, chained.
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let select = Query::select()
            .columns([
                AuditEvents::Id,
                AuditEvents::At,
                AuditEvents::Action,
                AuditEvents::ActorAccountId,
                AuditEvents::RequestId,
            ])
            .from(AuditEvents::Table)
            .order_by(AuditEvents::At, Order::Asc)
            .order_by(AuditEvents::Id, Order::Asc)
            .to_owned();
        let old = db.query_all_raw(backend.build(&select)).await?;
        let mut prev = [0u8; 32];
        for (i, r) in old.iter().enumerate() {
            let action: String = r.try_get("", "action")?;
            let entry = Entry {
                id: r.try_get("", "id")?,
                at: r.try_get("", "at")?,
                outcome: if FAILURES.contains(&action.as_str()) {
                    "failure"
                } else {
                    "success"
                }
                .to_owned(),
                action,
                actor_kind: None,
                actor_account_id: r.try_get("", "actor_account_id")?,
                actor_role: None,
                grant_id: None,
                patient_id: None,
                record_kind: None,
                record_id: None,
                request_id: r.try_get("", "request_id")?,
            };
            let seq =
                <i64 as TryFrom<usize>>::try_from(i).map_err(|e| DbErr::Custom(e.to_string()))? + 1;
            let model = row(seq, prev, &entry);
            prev = crate::audit::entry_hash(&prev, seq, &entry);
            crate::entity::audit_log::Entity::insert(model)
                .exec_without_returning(db)
                .await?;
        }
        m.drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "the audit log cannot be un-chained; restore a backup instead".into(),
        ))
    }
}
