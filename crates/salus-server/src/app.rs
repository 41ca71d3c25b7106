//! The assembled application: health check, API and pages behind common middleware.

use poem::http::StatusCode;
use poem::middleware::Tracing;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use salus_domain::organization::DirectoryService;
use salus_store::Store;
use std::sync::Arc;

/// `GET /healthz`: 200 when the database answers, 503 when it does not.
#[handler]
async fn healthz(store: Data<&Store>) -> Response {
    match store.health_check().await {
        Ok(()) => Json(serde_json::json!({ "status": "ok", "database": "ok" })).into_response(),
        Err(_) => {
            let body =
                Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" }));
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

/// Every route of Salus over one store.
pub fn app(store: Store) -> impl Endpoint {
    let organizations: Arc<Store> = Arc::new(store.clone());
    let directory = DirectoryService::new(organizations);
    let routes = Route::new()
        .at("/healthz", get(healthz).data(store))
        .nest(
            "/api",
            salus_http::routes(salus_http::ApiState {
                directory: directory.clone(),
            }),
        )
        .nest("/", salus_web::routes(salus_web::WebState { directory }));
    salus_web::security_headers(routes).with(Tracing)
}
