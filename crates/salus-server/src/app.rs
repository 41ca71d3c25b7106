//! The assembled application: health check, API and pages behind common middleware.

use crate::adapters::{Argon2Hasher, OsSecrets, Rfc6238, ZxcvbnCommonList};
use crate::config::Config;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
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

/// The domain services over one store and the adapters the configuration names, reading
/// time from `clock` (the wall clock in production; tests move their own).
///
/// # Errors
/// When the mail settings are unusable.
pub fn api_state(
    store: &Store,
    cfg: &Config,
    clock: Arc<dyn salus_domain::Clock>,
) -> anyhow::Result<salus_http::ApiState> {
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
    // One pool of hashing workers for passwords and share-link passcodes.
    let hasher: Arc<dyn salus_domain::account::PasswordHasher> =
        Arc::new(if cfg.cheap_password_hashing_for_tests {
            Argon2Hasher::cheap_for_tests(workers, queue)
        } else {
            Argon2Hasher::new(workers, queue)
        });
    let records = RecordsService::new(RecordsPorts {
        appointments: shared.clone(),
        records: shared.clone(),
        patients: shared.clone(),
        organizations: shared.clone(),
        accounts: shared.clone(),
        log: shared.clone(),
        mailer: mailer.clone(),
        grants: shared.clone(),
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids),
        public_url: cfg.public_url(),
    });
    let auth = AuthService::new(
        AuthPorts {
            accounts: shared.clone(),
            tokens: shared.clone(),
            sessions: shared.clone(),
            hasher: hasher.clone(),
            common: Arc::new(ZxcvbnCommonList),
            secrets: Arc::new(OsSecrets),
            mailer: mailer.clone(),
            audit: shared.clone(),
            access: shared.clone(),
            totp: shared.clone(),
            identity: shared.clone(),
            patients: shared.clone(),
            organizations: shared.clone(),
            totp_algorithm: Arc::new(Rfc6238::new("Salus")),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids),
        },
        cfg.auth(),
    );
    Ok(salus_http::ApiState {
        consent: salus_domain::consent::ConsentService::new(salus_domain::consent::ConsentPorts {
            grants: shared.clone(),
            secrets: Arc::new(OsSecrets),
            mailer: mailer.clone(),
            audit: shared.clone(),
            log: shared.clone(),
            patients: shared.clone(),
            organizations: shared.clone(),
            accounts: shared.clone(),
            hasher,
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids),
            public_url: cfg.public_url(),
        }),
        messaging: salus_domain::messaging::MessagingService::new(
            salus_domain::messaging::MessagingPorts {
                messages: shared.clone(),
                refills: shared.clone(),
                records: shared.clone(),
                patients: shared.clone(),
                accounts: shared.clone(),
                log: shared.clone(),
                mailer: mailer.clone(),
                secrets: Arc::new(OsSecrets),
                clock: clock.clone(),
                ids: Arc::new(UuidV7Ids),
                public_url: cfg.public_url(),
                threads_per_day: cfg.threads_per_day,
                max_file_bytes: cfg.attachment_max_bytes(),
            },
        ),
        billing: salus_domain::billing::BillingService::new(salus_domain::billing::BillingPorts {
            billing: shared.clone(),
            patients: shared.clone(),
            organizations: shared.clone(),
            gateway: cfg.gateway()?,
            log: shared.clone(),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids),
            accounts: shared.clone(),
            mailer: mailer.clone(),
            public_url: cfg.public_url(),
        }),
        scheduling: salus_domain::scheduling::SchedulingService::new(
            salus_domain::scheduling::SchedulingPorts {
                schedule: shared.clone(),
                patients: shared.clone(),
                log: shared.clone(),
                clock,
                ids: Arc::new(UuidV7Ids),
                accounts: shared.clone(),
                mailer: mailer.clone(),
                public_url: cfg.public_url(),
                cancel_cutoff_hours: cfg.cancel_cutoff_hours,
                horizon_days: cfg.slot_horizon_days,
            },
        ),
        directory: DirectoryService::new(shared),
        auth,
        records,
    })
}

/// How often the server looks for delayed releases whose notice is due.
pub const NOTICE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the server charges the payment plans' instalments that are due (they fall due
/// by the day; each round reads every active plan's account).
pub const INSTALMENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// How often the server generates the slots of the rolling horizon.
pub const SLOT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Sends the "something new" notices of delayed releases as their time comes, tells
/// patients who came of age that their guardian's access ended and sends appointment
/// reminders and settles payments left without the processor's answer for longer than
/// `reconcile_after_secs`, every [`NOTICE_INTERVAL`]; charges the payment plans' instalments
/// that are due at start and every [`INSTALMENT_INTERVAL`]; generates appointment slots at
/// start and daily, for as long as it runs (the server spawns it). Every node may run it: each notice is taken
/// by one.
///
/// # Errors
/// When the mail settings are unusable.
pub fn notice_sender(
    store: &Store,
    cfg: &Config,
    clock: Arc<dyn salus_domain::Clock>,
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + use<>> {
    let state = api_state(store, cfg, clock)?;
    let (records, consent, scheduling) = (state.records, state.consent, state.scheduling);
    let billing = state.billing;
    let reconcile_after = chrono::Duration::seconds(i64::from(cfg.reconcile_after_secs));
    let reminder_hours = cfg.reminder_hours;
    Ok(async move {
        let mut tick = tokio::time::interval(NOTICE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Slots are generated at start and then once a day, so the horizon rolls.
        let mut generated: Option<std::time::Instant> = None;
        let mut instalments: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if generated.is_none_or(|at| at.elapsed() >= SLOT_INTERVAL) {
                match scheduling.generate_all().await {
                    Ok(slots) => {
                        generated = Some(std::time::Instant::now());
                        tracing::info!(slots, "generated appointment slots");
                    }
                    Err(e) => tracing::warn!(error = %e, "slots not generated; will retry"),
                }
            }
            if reminder_hours > 0 {
                match scheduling.send_reminders(reminder_hours).await {
                    Ok(0) => {}
                    Ok(sent) => tracing::info!(sent, "sent appointment reminders"),
                    Err(e) => tracing::warn!(error = %e, "reminders not sent; will retry"),
                }
            }
            if instalments.is_none_or(|at| at.elapsed() >= INSTALMENT_INTERVAL) {
                match billing.charge_due_instalments().await {
                    Ok(charged) => {
                        instalments = Some(std::time::Instant::now());
                        if charged > 0 {
                            tracing::info!(charged, "charged payment-plan instalments");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "plan instalments not charged; will retry");
                    }
                }
            }
            match billing.reconcile(reconcile_after).await {
                Ok(r) if r.settled == 0 && r.still_pending == 0 => {}
                Ok(r) => tracing::info!(
                    settled = r.settled,
                    still_pending = r.still_pending,
                    "reconciled payments without an answer"
                ),
                Err(e) => tracing::warn!(error = %e, "payments not reconciled; will retry"),
            }
            match records.send_due_notices().await {
                Ok(0) => {}
                Ok(charts) => tracing::info!(charts, "sent the notices of delayed releases"),
                Err(e) => {
                    tracing::warn!(error = %e, "delayed-release notices not sent; will retry")
                }
            }
            match consent.tell_patients_who_came_of_age().await {
                Ok(0) => {}
                Ok(ended) => tracing::info!(ended, "told patients who came of age"),
                Err(e) => {
                    tracing::warn!(error = %e, "coming-of-age notices not sent; will retry")
                }
            }
        }
    })
}

/// Every route of Salus over one store, with time from `clock`.
///
/// # Errors
/// When the configured CSRF key is unusable.
pub fn app(
    store: Store,
    cfg: &Config,
    clock: Arc<dyn salus_domain::Clock>,
) -> anyhow::Result<impl Endpoint + use<>> {
    let state = api_state(&store, cfg, clock)?;
    let https = cfg.public_url().starts_with("https://");
    let web = salus_web::WebState {
        directory: state.directory.clone(),
        auth: state.auth.clone(),
        records: state.records.clone(),
        consent: state.consent.clone(),
        messaging: state.messaging.clone(),
        scheduling: state.scheduling.clone(),
        billing: state.billing.clone(),
        card_form_url: crate::sandbox::CARD_FORM.to_owned(),
        secure_cookies: https,
        csrf_key: cfg.csrf_key()?,
    };
    let routes = Route::new()
        .at("/healthz", get(healthz).data(store))
        .at(crate::sandbox::CARD_FORM, crate::sandbox::card_form())
        .nest("/api", salus_http::routes(state))
        .nest("/", salus_web::routes(web));
    let limit = usize::try_from(cfg.max_body_kib)
        .unwrap_or(usize::MAX / 1024)
        .saturating_mul(1024);
    let limited = crate::limit::per_client_address(
        errors_in_shape(routes),
        cfg.auth_requests_per_minute,
        crate::limit::TrustedProxies::parse(&cfg.trusted_proxies)?,
        takes_secrets_without_session,
        req_is_api,
    );
    Ok(crate::telemetry::request_log(salus_web::security_headers(
        body_limit(limited, limit, cfg.file_body_limit()),
        https,
    )))
}

/// Refuses request bodies over `limit` bytes (`file_limit` for the sends that may carry
/// files) with `413 payload_too_large` before they are read into memory: by the declared
/// `Content-Length`, or, for a body without one (chunked, or HTTP/2), by reading at most the
/// limit of it. The answer has the shape of the part asked (API JSON or a page). Reads that
/// carry no body are passed through untouched.
pub fn body_limit<E: Endpoint + 'static>(ep: E, limit: usize, file_limit: usize) -> impl Endpoint {
    use futures_util::TryStreamExt;
    ep.around(move |ep, mut req| async move {
        let api = req_is_api(req.uri().path());
        let limit = if carries_files(req.method().as_str(), req.uri().path()) {
            file_limit.max(limit)
        } else {
            limit
        };
        let too_large = || Ok(payload_too_large(api));
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(n) if n > limit as u64 => return too_large(),
            Some(_) => {}
            // Chunked (HTTP/1.1) or simply undeclared (HTTP/2): read at most the limit.
            None if may_carry_body(&req) => {
                let mut stream = req.take_body().into_bytes_stream();
                let mut read = Vec::new();
                while let Ok(Some(chunk)) = stream.try_next().await {
                    if read.len() + chunk.len() > limit {
                        return too_large();
                    }
                    read.extend_from_slice(&chunk);
                }
                req.set_body(read);
            }
            None => {}
        }
        ep.call(req).await.map(IntoResponse::into_response)
    })
}

/// A request whose body is read: a write, or anything sent in chunks.
fn may_carry_body(req: &poem::Request) -> bool {
    use poem::http::Method;
    matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        || req
            .headers()
            .contains_key(poem::http::header::TRANSFER_ENCODING)
}

/// The requests the per-address limit counts: the API's and the pages' that take a password,
/// a code or an emailed token without a session.
fn takes_secrets_without_session(method: &str, path: &str) -> bool {
    match path.strip_prefix("/api") {
        Some(api) => salus_http::is_rate_limited(method, api),
        None => salus_web::is_rate_limited(method, path),
    }
}

/// The requests that may carry a message's files: the API's and the pages'.
fn carries_files(method: &str, path: &str) -> bool {
    match path.strip_prefix("/api") {
        Some(api) => salus_http::carries_files(method, api),
        None => salus_web::carries_files(method, path),
    }
}

fn req_is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn payload_too_large(api: bool) -> Response {
    const MESSAGE: &str = "The request is larger than this server accepts.";
    if api {
        salus_http::json_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", MESSAGE)
    } else {
        salus_web::error_page(StatusCode::PAYLOAD_TOO_LARGE, "Too large", MESSAGE)
    }
}

/// Errors the router answers before any part of Salus sees the request (a path that does not
/// decode, say) get the answer shape of the part asked: the API's `{"code", "message"}`, or a
/// page.
fn errors_in_shape<E: Endpoint + 'static>(ep: E) -> impl Endpoint {
    ep.around(|ep, req| async move {
        let api = req_is_api(req.uri().path());
        match ep.call(req).await {
            Ok(r) => Ok(r.into_response()),
            Err(e) if api => Ok(salus_http::error_as_json(e)),
            Err(e) => Ok(match e.status() {
                StatusCode::NOT_FOUND => salus_web::error_page(
                    StatusCode::NOT_FOUND,
                    "Page not found",
                    "There is no page at this address.",
                ),
                s if s.is_client_error() => salus_web::error_page(
                    s,
                    "Not a valid request",
                    "This address or form is not one this site understands.",
                ),
                s => {
                    tracing::error!(status = s.as_u16(), "a page request failed in the router");
                    salus_web::error_page(
                        s,
                        "Something went wrong",
                        "Please try again in a few minutes.",
                    )
                }
            }),
        }
    })
}
