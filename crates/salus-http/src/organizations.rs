//! `/v1/organizations`: the public directory.

use crate::error::ApiError;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use salus_domain::organization::{DirectoryService, Organization, PortalFeature};

#[derive(Tags)]
enum ApiTags {
    /// Organisations on this deployment and what their portals offer.
    Directory,
}

/// A portal feature.
#[derive(Debug, Clone, Copy, Enum, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum FeatureDto {
    Records,
    Messaging,
    Scheduling,
    BillPay,
    ProxyAccess,
}

impl From<PortalFeature> for FeatureDto {
    fn from(f: PortalFeature) -> Self {
        match f {
            PortalFeature::Records => Self::Records,
            PortalFeature::Messaging => Self::Messaging,
            PortalFeature::Scheduling => Self::Scheduling,
            PortalFeature::BillPay => Self::BillPay,
            PortalFeature::ProxyAccess => Self::ProxyAccess,
        }
    }
}

/// One organisation of the directory.
#[derive(Debug, Clone, Object)]
pub struct OrganizationDto {
    /// Short name used in URLs.
    pub slug: String,
    pub name: String,
    /// Portal features the organisation offers.
    pub features: Vec<FeatureDto>,
}

impl From<&Organization> for OrganizationDto {
    fn from(o: &Organization) -> Self {
        Self {
            slug: o.slug.as_str().to_owned(),
            name: o.name.as_str().to_owned(),
            features: o.features.iter().map(|f| (*f).into()).collect(),
        }
    }
}

/// The directory.
#[derive(Debug, Clone, Object)]
pub struct OrganizationList {
    pub organizations: Vec<OrganizationDto>,
}

#[derive(Debug, ApiResponse)]
enum ListResponse {
    /// Every organisation, ordered by name.
    #[oai(status = 200)]
    Ok(Json<OrganizationList>),
}

pub(crate) struct OrganizationsApi {
    pub(crate) directory: DirectoryService,
}

#[OpenApi(tag = "ApiTags::Directory")]
impl OrganizationsApi {
    /// List organisations and their portal features.
    ///
    /// Public: no sign-in needed. Holds no health information.
    #[oai(
        path = "/v1/organizations",
        method = "get",
        operation_id = "listOrganizations"
    )]
    async fn list(&self) -> Result<ListResponse, ApiError> {
        let orgs = self.directory.list().await?;
        Ok(ListResponse::Ok(Json(OrganizationList {
            organizations: orgs.iter().map(OrganizationDto::from).collect(),
        })))
    }
}
