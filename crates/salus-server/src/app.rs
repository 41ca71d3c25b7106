//! The assembled application: health check, API and pages behind common middleware.

use crate::adapters::{Argon2Hasher, OsSecrets, Rfc6238, ZxcvbnCommonList};
use crate::config::Config;
use poem::http::StatusCode;
use poem::middleware::Tracing;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use salus_domain::SystemClock;
use salus_domain::account::{AuthPorts, AuthService};
use salus_domain::chart::{RecordsPorts, RecordsService};
use salus_domain::organization::DirectoryService;
use salus_store::{Store, UuidV7Ids};
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

/// The domain services over one store and the adapters the configuration names.
///
/// # Errors
/// When the mail settings are unusable.
pub fn api_state(store: &Store, cfg: &Config) -> anyhow::Result<salus_http::ApiState> {
    let shared = Arc::new(store.clone());
    let workers = match cfg.hash_workers {
        0 => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        n => n as usize,
    };
    let queue = match cfg.hash_queue {
        0 => workers * 4,
        n => n as usize,
    };
    let mailer = cfg.mailer()?;
    let clock: Arc<dyn salus_domain::Clock> = Arc::new(SystemClock);
    let records = RecordsService::new(RecordsPorts {
        records: shared.clone(),
        patients: shared.clone(),
        organizations: shared.clone(),
        accounts: shared.clone(),
        log: shared.clone(),
        mailer: mailer.clone(),
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids),
        public_url: cfg.public_url(),
    });
    let auth = AuthService::new(
        AuthPorts {
            accounts: shared.clone(),
            tokens: shared.clone(),
            sessions: shared.clone(),
            hasher: Arc::new(Argon2Hasher::new(workers, queue)),
            common: Arc::new(ZxcvbnCommonList),
            secrets: Arc::new(OsSecrets),
            mailer,
            audit: shared.clone(),
            access: shared.clone(),
            totp: shared.clone(),
            identity: shared.clone(),
            patients: shared.clone(),
            totp_algorithm: Arc::new(Rfc6238::new("Salus")),
            clock,
            ids: Arc::new(UuidV7Ids),
        },
        cfg.auth(),
    );
    Ok(salus_http::ApiState {
        directory: DirectoryService::new(shared),
        auth,
        records,
        auth_requests_per_minute: cfg.auth_requests_per_minute,
    })
}

/// Every route of Salus over one store.
///
/// # Errors
/// When the configured CSRF key is unusable.
pub fn app(store: Store, cfg: &Config) -> anyhow::Result<impl Endpoint + use<>> {
    let state = api_state(&store, cfg)?;
    let web = salus_web::WebState {
        directory: state.directory.clone(),
        auth: state.auth.clone(),
        records: state.records.clone(),
        secure_cookies: cfg.public_url().starts_with("https://"),
        csrf_key: cfg.csrf_key()?,
    };
    let routes = Route::new()
        .at("/healthz", get(healthz).data(store))
        .nest("/api", salus_http::routes(state))
        .nest("/", salus_web::routes(web));
    Ok(salus_web::security_headers(routes).with(Tracing))
}
