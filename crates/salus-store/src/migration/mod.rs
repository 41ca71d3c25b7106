//! Schema migrations. **Invariant:** schema, and only the data a new column or table must be
//! filled with from what is already stored (a backfill); never edits of existing data.

use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_accounts;
mod m20261125_000003_totp;
mod m20261125_000004_identity;
mod m20261125_000005_reauth;
mod m20261125_000006_email_change;
mod m20261125_000007_audit_chain;
mod m20261204_000008_failures_by_address;
mod m20261204_000009_release_notices;
mod m20261204_000010_clinic_requests;
mod m20261204_000011_grants;
mod m20261204_000012_guardians_and_links;
mod m20261204_000013_messaging;
mod m20261204_000014_attachments_and_refills;
mod m20261204_000015_unread_counts;
mod m20261204_000016_scheduling;
mod m20261204_000017_scheduling_notices;
mod m20261204_000018_appointment_indexes;
mod m20261204_000019_statements;
mod m20261204_000020_payments;
mod m20261204_000021_payment_plans;
mod m20261204_000022_record_context;

/// Applies every migration in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_accounts::Migration),
            Box::new(m20261125_000003_totp::Migration),
            Box::new(m20261125_000004_identity::Migration),
            Box::new(m20261125_000005_reauth::Migration),
            Box::new(m20261125_000006_email_change::Migration),
            Box::new(m20261125_000007_audit_chain::Migration),
            Box::new(m20261204_000008_failures_by_address::Migration),
            Box::new(m20261204_000009_release_notices::Migration),
            Box::new(m20261204_000010_clinic_requests::Migration),
            Box::new(m20261204_000011_grants::Migration),
            Box::new(m20261204_000012_guardians_and_links::Migration),
            Box::new(m20261204_000013_messaging::Migration),
            Box::new(m20261204_000014_attachments_and_refills::Migration),
            Box::new(m20261204_000015_unread_counts::Migration),
            Box::new(m20261204_000016_scheduling::Migration),
            Box::new(m20261204_000017_scheduling_notices::Migration),
            Box::new(m20261204_000018_appointment_indexes::Migration),
            Box::new(m20261204_000019_statements::Migration),
            Box::new(m20261204_000020_payments::Migration),
            Box::new(m20261204_000021_payment_plans::Migration),
            Box::new(m20261204_000022_record_context::Migration),
        ]
    }
}
