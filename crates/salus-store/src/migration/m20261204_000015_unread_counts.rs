//! What each side of a thread has not read, counted on the thread: a send adds one for the
//! other side, a read lowers it by the receipts it wrote (in the same transactions). Lists and
//! the inbox's counts read the column instead of joining every message with its receipt.
//! Existing threads are counted once here.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MessageThreads {
    Table,
    UnreadByStaff,
    UnreadByPatient,
}

/// The count of one side's messages of a thread that have no receipt.
fn backfill(column: &str, written_by: &str) -> String {
    format!(
        "UPDATE message_threads SET {column} = (SELECT COUNT(*) FROM messages m \
         WHERE m.thread_id = message_threads.id AND m.side = '{written_by}' \
         AND NOT EXISTS (SELECT 1 FROM message_receipts r WHERE r.message_id = m.id))"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            MessageThreads::UnreadByStaff,
            MessageThreads::UnreadByPatient,
        ] {
            m.alter_table(
                Table::alter()
                    .table(MessageThreads::Table)
                    .add_column(ColumnDef::new(column).integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        }
        let db = m.get_connection();
        db.execute_unprepared(&backfill("unread_by_staff", "patient"))
            .await?;
        db.execute_unprepared(&backfill("unread_by_patient", "staff"))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            MessageThreads::UnreadByStaff,
            MessageThreads::UnreadByPatient,
        ] {
            m.alter_table(
                Table::alter()
                    .table(MessageThreads::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
