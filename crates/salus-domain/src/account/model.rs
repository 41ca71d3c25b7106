//! The account model.

use crate::ids::{AccountId, OrganizationId, PatientId};
use crate::patient::PersonName;
use crate::text::Email;
use chrono::{DateTime, NaiveDate, Utc};

use super::ports::PasswordHash;

/// What a staff member does; decides what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaffRole {
    Clinician,
    FrontDesk,
    Billing,
    OrganizationAdmin,
}

impl StaffRole {
    pub fn code(self) -> &'static str {
        match self {
            Self::Clinician => "clinician",
            Self::FrontDesk => "front_desk",
            Self::Billing => "billing",
            Self::OrganizationAdmin => "organization_admin",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::Clinician,
            Self::FrontDesk,
            Self::Billing,
            Self::OrganizationAdmin,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Whose account it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    Staff {
        role: StaffRole,
        organization: OrganizationId,
    },
}

/// Where the account is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Registered; the email address is not proven yet. Cannot sign in.
    PendingVerification,
    /// Email proven; may sign in.
    Active { verified_at: DateTime<Utc> },
    /// Switched off by staff or an admin.
    Disabled { at: DateTime<Utc> },
}

/// Whether the account has been tied to a chart (identity proven).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartLink {
    /// Identity not proven yet: the account sees no records.
    Unlinked,
    Linked {
        patient: PatientId,
    },
}

impl ChartLink {
    /// Whether the account is tied to a chart.
    pub fn is_linked(self) -> bool {
        matches!(self, Self::Linked { .. })
    }
}

/// A sign-in account.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub name: PersonName,
    pub birth_date: Option<NaiveDate>,
    pub role: Role,
    pub state: AccountState,
    pub chart: ChartLink,
    pub password: PasswordHash,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
