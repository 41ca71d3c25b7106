//! The Salus JSON API (`/api/v1`): poem-openapi operations over the domain services, the
//! OpenAPI document (`/api/openapi.json`) and an interactive page (`/api/docs`).
//!
//! **Invariant:** DTOs here are separate from domain types and converted at the edge.
//! **Invariant:** every error answers a stable `code`; 5xx details go to the log only.

mod error;
mod organizations;

pub use error::{ApiError, ErrorBody};

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::OpenApiService;
use salus_domain::organization::DirectoryService;

/// What the API needs from the application.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub directory: DirectoryService,
}

fn service(state: ApiState) -> OpenApiService<organizations::OrganizationsApi, ()> {
    OpenApiService::new(
        organizations::OrganizationsApi {
            directory: state.directory,
        },
        "Salus patient portal API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "JSON API of Salus, an open-source patient portal. Errors answer \
         `{\"code\": \"...\", \"message\": \"...\"}` with a stable `code`.",
    )
    .server("/api")
}

/// The OpenAPI document as pretty JSON (what `cargo xtask openapi` writes to `docs/`).
///
/// The document depends only on types, but poem-openapi builds it from a service value; the
/// value here answers every call with "unavailable" and is never served.
pub fn openapi_json() -> String {
    let directory = DirectoryService::new(std::sync::Arc::new(SpecOnly));
    service(ApiState { directory }).spec()
}

/// Stands in for storage when only the OpenAPI document is wanted.
struct SpecOnly;

#[async_trait::async_trait]
impl salus_domain::organization::OrganizationRepository for SpecOnly {
    async fn create(
        &self,
        _: &salus_domain::organization::Organization,
    ) -> Result<(), salus_domain::RepoError> {
        Err(salus_domain::RepoError::Unavailable)
    }
    async fn list(
        &self,
    ) -> Result<Vec<salus_domain::organization::Organization>, salus_domain::RepoError> {
        Err(salus_domain::RepoError::Unavailable)
    }
    async fn find(
        &self,
        _: salus_domain::OrganizationId,
    ) -> Result<Option<salus_domain::organization::Organization>, salus_domain::RepoError> {
        Err(salus_domain::RepoError::Unavailable)
    }
    async fn find_by_slug(
        &self,
        _: &salus_domain::text::Slug,
    ) -> Result<Option<salus_domain::organization::Organization>, salus_domain::RepoError> {
        Err(salus_domain::RepoError::Unavailable)
    }
}

/// Routes to nest at `/api`: the operations, `/openapi.json` and `/docs`.
pub fn routes(state: ApiState) -> impl Endpoint {
    let api = service(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .catch_error(error::not_found)
        .catch_error(error::method_not_allowed)
        .into_endpoint()
}
