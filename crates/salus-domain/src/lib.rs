//! The Salus domain: the model and the rules of a patient portal.
//!
//! **Invariant:** this crate does no I/O and depends on no runtime, database or web crate
//! (`tests/no_io_dependencies.rs` enforces it). Adapters implement the ports declared here.
//!
//! Modules follow bounded contexts: [`organization`] (tenants, features, release policy,
//! the public directory of organisations), [`patient`] (the chart), [`record`] (clinical
//! records), [`providers`] (practitioners and the organisations records come from),
//! [`import`] (bringing outside data in), [`messaging`] (care pools, threads and messages), [`account`] (registration, sign-in, sessions,
//! second factor, recovery, staff accounts, identity proofing), [`access`] (the one access
//! decision: actors, actions, targets), [`chart`] (the records use cases: summary, lists,
//! one record, filing, release, access history, export), [`export`] (what a download holds), [`words`] (the words patients read for codes)
//! and [`audit`] (access events). Shared pieces: [`ids`], [`text`] (value types), [`clock`],
//! [`repo`].

pub mod access;
pub mod account;
pub mod audit;
pub mod billing;
pub mod chart;
pub mod clock;
pub mod consent;
pub mod export;
pub mod ids;
pub mod import;
pub mod messaging;
pub mod organization;
pub mod patient;
pub mod providers;
pub mod record;
pub mod repo;
pub mod scheduling;
pub mod text;
pub mod when;
pub mod words;

/// The time-zone database the organisations' zones come from.
pub use chrono_tz;
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{
    AccountId, AdjustmentId, AppointmentId, AttachmentId, AuditEventId, GrantId, IdGenerator,
    LocationId, MessageId, OrganizationId, PatientId, PaymentId, PharmacyId, PlanId, PoolId,
    PractitionerId, ProviderId, ProviderOrgId, RecordId, RefillId, RefundId, SessionId, SlotId,
    StatementId, TemplateId, ThreadId, VisitTypeId,
};
pub use repo::RepoError;
