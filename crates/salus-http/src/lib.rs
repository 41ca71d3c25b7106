//! The Salus JSON API (`/api/v1`): poem-openapi operations over the domain services, the
//! OpenAPI document (`/api/openapi.json`) and an interactive page (`/api/docs`).
//!
//! **Invariant:** DTOs here are separate from domain types and converted at the edge.
//! **Invariant:** every error answers a stable `code`; 5xx details go to the log only.

/// `Debug` for types that carry secrets or personal data: the type name only.
#[macro_export]
#[doc(hidden)]
macro_rules! redacted_debug {
    ($($t:ty),+ $(,)?) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )+};
}

mod auth;
mod billing;
mod codes;
mod consent;
mod detail;
mod error;
mod export;
mod guardians;
mod identity;
mod messaging;
mod organizations;
mod payload;
pub mod records;
mod refills;
mod scheduling;
mod session;
mod spec;
mod team;

pub use error::{ApiError, ErrorBody, error_as_json, json_error};
pub use spec::{carries_files, is_rate_limited};

use poem::http::{HeaderValue, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Route};
use poem_openapi::OpenApiService;
use salus_domain::account::AuthService;
use salus_domain::organization::DirectoryService;

/// The header carrying the request id (set when the client did not send a usable one).
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id: the client's `x-request-id` when it is a short token of letters, digits
/// and dashes, else a new UUIDv7, which is then set on the request. Audit entries and the
/// request log record it.
pub fn ensure_request_id(req: &mut poem::Request) -> Option<HeaderValue> {
    let given = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok());
    let usable = given.is_some_and(|v| {
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !usable {
        let id = uuid::Uuid::now_v7().to_string();
        if let Ok(v) = HeaderValue::from_str(&id) {
            req.headers_mut().insert(REQUEST_ID, v);
        }
    }
    req.headers().get(REQUEST_ID).cloned()
}

/// What the API needs from the application.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub directory: DirectoryService,
    pub auth: AuthService,
    pub records: salus_domain::chart::RecordsService,
    pub consent: salus_domain::consent::ConsentService,
    pub messaging: salus_domain::messaging::MessagingService,
    pub scheduling: salus_domain::scheduling::SchedulingService,
    pub billing: salus_domain::billing::BillingService,
}

type Apis = (
    organizations::OrganizationsApi,
    auth::SignInApi,
    auth::PasswordApi,
    auth::EmailApi,
    auth::SessionsApi,
    auth::TotpApi,
    identity::IdentityApi,
    team::TeamApi,
    records::RecordsApi,
    export::ExportApi,
    consent::ConsentApi,
    guardians::GuardianApi,
    messaging::MessagingApi,
    refills::RefillsApi,
    scheduling::SchedulingApi,
    billing::BillingApi,
);

fn service(state: ApiState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            organizations::OrganizationsApi {
                directory: state.directory,
            },
            auth::SignInApi {
                auth: state.auth.clone(),
            },
            auth::PasswordApi {
                auth: state.auth.clone(),
            },
            auth::EmailApi {
                auth: state.auth.clone(),
            },
            auth::SessionsApi {
                auth: state.auth.clone(),
            },
            auth::TotpApi {
                auth: state.auth.clone(),
            },
            identity::IdentityApi {
                auth: state.auth.clone(),
            },
            team::TeamApi {
                auth: state.auth.clone(),
            },
            records::RecordsApi {
                records: state.records.clone(),
            },
            export::ExportApi {
                records: state.records,
            },
            consent::ConsentApi {
                consent: state.consent.clone(),
            },
            guardians::GuardianApi {
                consent: state.consent,
            },
            messaging::MessagingApi {
                messaging: state.messaging.clone(),
            },
            refills::RefillsApi {
                messaging: state.messaging,
            },
            scheduling::SchedulingApi {
                scheduling: state.scheduling,
            },
            billing::BillingApi {
                billing: state.billing,
            },
        ),
        "Salus patient portal API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "JSON API of Salus, an open-source patient portal. Errors answer \
         `{\"code\": \"...\", \"message\": \"...\"}` with a stable `code`.",
    )
    .server("/api")
}

/// The OpenAPI document as pretty JSON (what `cargo xtask openapi` writes to `docs/`), with
/// the answers of the layers around the operations (see `spec`).
pub fn openapi_json(state: ApiState) -> String {
    spec::complete(&service(state).spec())
}

/// Routes to nest at `/api`: the operations, `/openapi.json` and `/docs`.
pub fn routes(state: ApiState) -> impl Endpoint {
    let auth = state.auth.clone();
    let consent = state.consent.clone();
    let api = service(state);
    let raw = api.spec();
    let document = spec::complete(&raw);
    // The interactive page embeds the document: give it the completed one.
    let docs_html = api.swagger_ui_html().replace(&raw, &document);
    let allow = std::sync::Arc::new(spec::AllowTable::from_spec(&document));
    let served = document.clone();
    Route::new()
        .nest("/", api)
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(served.clone())
            }),
        )
        .nest(
            "/docs",
            Route::new().at(
                "/",
                poem::endpoint::make_sync(move |_| poem::web::Html(docs_html.clone())),
            ),
        )
        .data(auth)
        .data(consent)
        .catch_all_error(error::as_json)
        .around(move |ep, req| {
            let allow = allow.clone();
            async move {
                let path = req.uri().path().to_owned();
                let mut resp = ep.call(req).await?.into_response();
                if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
                    && let Some(v) = allow
                        .allow(&path)
                        .and_then(|a| HeaderValue::from_str(a).ok())
                {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                Ok(resp)
            }
        })
        .around(|ep, mut req| async move {
            // Every API answer may carry account data: never cache it anywhere.
            let id = ensure_request_id(&mut req);
            let mut resp = ep.call(req).await?.into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(id) = id {
                resp.headers_mut().insert(REQUEST_ID, id);
            }
            Ok(resp)
        })
        .into_endpoint()
}
