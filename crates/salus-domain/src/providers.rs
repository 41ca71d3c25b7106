//! People and organisations that records name as their source.

use crate::ids::{OrganizationId, PractitionerId, ProviderOrgId};
use crate::text::{DisplayName, SourceIdentifier};

/// A clinician known from imported data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practitioner {
    pub id: PractitionerId,
    pub organization_id: OrganizationId,
    pub name: DisplayName,
    /// US National Provider Identifier, when the source gives one.
    pub npi: Option<String>,
    pub source_identifier: Option<SourceIdentifier>,
}

/// An organisation where care happened (a hospital, a lab): the source of records, not a
/// tenant of this portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOrganization {
    pub id: ProviderOrgId,
    pub organization_id: OrganizationId,
    pub name: DisplayName,
    pub source_identifier: Option<SourceIdentifier>,
}
