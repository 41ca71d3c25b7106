//! Salus web pages: server-rendered HTML from compile-time-checked askama templates, which
//! escape every value by default.
//!
//! **Invariant:** pages call the same domain services as the JSON API.
//! **Invariant:** every response carries the security headers of [`security_headers`].

mod account;
mod billing;
mod clinician;
mod download;
mod form;
mod front_desk;
mod guardians;
mod layout;
mod link;
mod messages;
mod proxy;
mod records;
mod recovery;
mod refills;
mod scheduling;
mod security;
mod session;
mod share;
mod sharing;
mod team;

use askama::Template;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use salus_domain::account::AuthService;
use salus_domain::organization::{DirectoryService, PortalFeature};
use std::sync::Arc;

/// What the pages need from the application.
#[derive(Debug, Clone)]
pub struct WebState {
    pub directory: DirectoryService,
    pub auth: AuthService,
    pub records: salus_domain::chart::RecordsService,
    pub consent: salus_domain::consent::ConsentService,
    pub messaging: salus_domain::messaging::MessagingService,
    pub scheduling: salus_domain::scheduling::SchedulingService,
    pub billing: salus_domain::billing::BillingService,
    /// Where patients enter a card: the card processor's own form (the sandbox's in local
    /// use), which sends them back with a token.
    pub card_form_url: String,
    /// Served over TLS: cookies get `Secure` and the `__Host-` prefix.
    pub secure_cookies: bool,
    /// Key of the CSRF tokens; every node of a deployment must share it.
    pub csrf_key: [u8; 32],
}

struct FeatureView {
    label: &'static str,
    offered: bool,
}

struct OrgView {
    name: String,
    slug: String,
    features: Vec<FeatureView>,
}

#[derive(Template)]
#[template(path = "clinic.html")]
struct ClinicPage {
    org: OrgView,
    phone: Option<String>,
    zone: String,
}

/// What an organisation offers today, as the directory shows it.
fn org_view(o: &salus_domain::organization::Organization) -> OrgView {
    OrgView {
        name: o.name.as_str().to_owned(),
        slug: o.slug.as_str().to_owned(),
        features: PortalFeature::ALL
            .iter()
            .filter(|f| f.is_available())
            .map(|f| FeatureView {
                label: f.label(),
                offered: o.offers(*f),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    organizations: Vec<OrgView>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body("Something went wrong.")
        }
    }
}

/// The page shown when storage or another part of the system fails; the cause goes to the
/// log (it never contains health data), the person gets a plain sentence.
pub(crate) fn unavailable(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, what, "page failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Please try again in a few minutes.",
    )
}

/// An HTML error page with a status.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut resp = render(&ErrorPage { title, message });
    resp.set_status(status);
    resp
}

#[handler]
async fn index(state: poem::web::Data<&Arc<WebState>>) -> Response {
    match state.directory.list().await {
        Ok(orgs) => render(&IndexPage {
            organizations: orgs.iter().map(org_view).collect(),
        }),
        Err(e) => {
            tracing::error!(error = %e, "directory unavailable for the start page");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The portal cannot reach its records right now. Please try again in a few minutes.",
            )
        }
    }
}

/// A clinic's public page: what it offers online, how to reach it, how to join.
#[handler]
async fn clinic(
    state: poem::web::Data<&Arc<WebState>>,
    poem::web::Path(slug): poem::web::Path<String>,
) -> Response {
    let missing = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Clinic not found",
            "No clinic runs its portal here under that address. The start page lists every one.",
        )
    };
    let Ok(slug) = salus_domain::text::Slug::parse(&slug) else {
        return missing();
    };
    match state.directory.find(&slug).await {
        Ok(Some(o)) => render(&ClinicPage {
            org: org_view(&o),
            phone: o.phone.as_ref().map(|p| p.as_str().to_owned()),
            zone: o.time_zone.name().replace('_', " "),
        }),
        Ok(None) => missing(),
        Err(e) => unavailable("directory unavailable", &e),
    }
}

const CSS: &str = include_str!("../static/salus.css");
const JS: &str = include_str!("../static/salus.js");

#[handler]
fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(CSS)
}

#[handler]
fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(JS)
}

/// The pages, to mount at `/`.
pub fn routes(state: WebState) -> impl Endpoint {
    let csrf = poem::middleware::Csrf::new()
        .cookie_name(if state.secure_cookies {
            "__Host-salus_csrf"
        } else {
            "salus_csrf"
        })
        .key(state.csrf_key)
        .secure(state.secure_cookies)
        .same_site(poem::web::cookie::SameSite::Strict);
    let secure = state.secure_cookies;
    let pages = Route::new()
        .at("/", get(index))
        .at("/clinics/:slug", get(clinic))
        .at("/static/salus.css", get(stylesheet))
        .at("/static/salus.js", get(script))
        .at(
            "/register",
            get(account::register_form).post(account::register),
        )
        .at("/register/check-email", get(account::check_email))
        .at(
            "/verify",
            link::moves_token_out_of_url(
                get(account::verify_form).post(account::verify),
                "/verify",
                secure,
            ),
        )
        .at(
            "/verify/resend",
            get(recovery::resend_form).post(recovery::resend),
        )
        .at("/login", get(account::login_form).post(account::login))
        .at("/login/code", get(account::code_form).post(account::code))
        .at("/account", get(account::account))
        .at(
            "/account/activate",
            get(recovery::activate_form).post(recovery::activate),
        )
        .at("/forgot", get(recovery::forgot_form).post(recovery::forgot))
        .at(
            "/reset",
            link::moves_token_out_of_url(
                get(recovery::reset_form).post(recovery::reset),
                "/reset",
                secure,
            ),
        )
        .at("/account/security", get(security::security))
        .at("/account/clinic", poem::post(account::choose_clinic))
        .at(
            "/account/sharing",
            get(sharing::sharing).post(sharing::invite),
        )
        .at(
            "/account/sharing/:id",
            get(sharing::edit_form).post(sharing::edit),
        )
        .at("/account/sharing/links", poem::post(sharing::make_link))
        .at("/account/sharing/:id/revoke", poem::post(sharing::revoke))
        .at(
            "/account/acting-for",
            get(proxy::acting_for).post(proxy::switch),
        )
        .at(
            "/grants/accept",
            link::moves_token_out_of_url(
                get(sharing::accept_form).post(sharing::accept),
                "/grants/accept",
                secure,
            ),
        )
        .at("/share/:token", get(share::show).post(share::unlock))
        .at("/share/:token/fhir", poem::post(share::fhir))
        .at("/share/:token/pdf", poem::post(share::pdf))
        .at("/messages", get(messages::list))
        .at(
            "/messages/new",
            get(messages::compose).post(messages::start),
        )
        .at("/messages/:id", get(messages::show).post(messages::reply))
        .at("/attachments/:id", get(messages::download))
        .at("/refills", get(refills::list))
        .at("/refills/new", get(refills::new).post(refills::ask))
        .at("/refills/:id/cancel", poem::post(refills::cancel))
        .at("/staff/refills", get(refills::queue))
        .at("/staff/refills/:id", get(refills::show))
        .at(
            "/staff/refills/:id/approve",
            poem::post(refills::approve_form),
        )
        .at("/staff/refills/:id/deny", poem::post(refills::deny_form))
        .at("/appointments", get(scheduling::list))
        .at("/appointments/new", get(scheduling::find_new))
        .at(
            "/appointments/new/:slot",
            get(scheduling::book_form).post(scheduling::book),
        )
        .at("/appointments/:id", get(scheduling::show))
        .at("/appointments/:id/calendar.ics", get(scheduling::calendar))
        .at("/appointments/:id/cancel", poem::post(scheduling::cancel))
        .at(
            "/appointments/:id/move",
            get(scheduling::find_move).post(scheduling::reschedule),
        )
        .at(
            "/appointments/:id/waitlist",
            poem::post(scheduling::join_waitlist),
        )
        .at(
            "/appointments/:id/waitlist/leave",
            poem::post(scheduling::leave_waitlist),
        )
        .at("/bills", get(billing::bills))
        .at("/bills/statements/:id", get(billing::statement))
        .at(
            "/bills/statements/:id/statement.pdf",
            get(billing::statement_pdf),
        )
        .at("/bills/payments/:id/receipt.pdf", get(billing::receipt_pdf))
        .at("/bills/pay", get(billing::pay_form).post(billing::pay))
        .at("/bills/payments/:id", get(billing::payment))
        .at("/bills/plans", poem::post(billing::start_plan))
        .at("/bills/plans/:id/cancel", poem::post(billing::cancel_plan))
        .at("/staff/billing", get(billing::staff_home_page))
        .at("/staff/billing/find", poem::post(billing::staff_find))
        .at(
            "/staff/billing/settings",
            poem::post(billing::staff_settings),
        )
        .at("/staff/billing/import", poem::post(billing::staff_import))
        .at("/staff/billing/patients/:id", get(billing::staff_account))
        .at(
            "/staff/billing/patients/:id/statements",
            poem::post(billing::staff_post_statement),
        )
        .at(
            "/staff/billing/patients/:id/adjustments",
            poem::post(billing::staff_adjust),
        )
        .at(
            "/staff/billing/payments/:id/refund",
            poem::post(billing::staff_refund),
        )
        .at("/staff/schedule", get(scheduling::schedule))
        .at("/staff/schedule/find", get(scheduling::staff_find))
        .at(
            "/staff/schedule/setup",
            get(scheduling::setup_form).post(scheduling::save_setup),
        )
        .at("/staff/slots/:id/block", poem::post(scheduling::block))
        .at("/staff/slots/:id/unblock", poem::post(scheduling::unblock))
        .at("/staff/inbox", get(messages::inbox))
        .at(
            "/staff/inbox/:id",
            get(messages::show).post(messages::reply),
        )
        .at("/staff/inbox/:id/claim", poem::post(messages::claim))
        .at("/staff/inbox/:id/close", poem::post(messages::close))
        .at("/staff/inbox/:id/reopen", poem::post(messages::reopen))
        .at(
            "/staff/pools",
            get(messages::teams).post(messages::add_team),
        )
        .at("/staff/pools/:id", poem::post(messages::save_team))
        .at("/records", get(records::home))
        .at("/records/history", get(records::history))
        .at(
            "/records/download",
            get(download::download_page).post(download::confirm),
        )
        .at("/records/download/fhir", get(download::fhir))
        .at("/records/download/ips", get(download::ips))
        .at("/records/download/pdf", get(download::pdf))
        .at("/records/item/:id", get(records::record))
        .at("/records/:kind", get(records::list))
        .at("/staff", get(front_desk::staff_home))
        .at(
            "/staff/charts",
            get(clinician::find).post(clinician::search),
        )
        .at("/staff/charts/:id", get(clinician::chart))
        .at("/staff/charts/:id/records", poem::post(clinician::file))
        .at("/staff/records/:id/release", poem::post(clinician::release))
        .at("/staff/team", get(team::team))
        .at("/staff/invitations", poem::post(team::invite))
        .at("/staff/guardian-policy", poem::post(team::guardian_policy))
        .at(
            "/staff/setup",
            link::moves_token_out_of_url(
                get(team::setup_form).post(team::setup),
                "/staff/setup",
                secure,
            ),
        )
        .at(
            "/staff/activation-code",
            poem::post(front_desk::activation_code),
        )
        .at("/staff/identity/:account", poem::post(front_desk::review))
        .at("/staff/search", poem::post(front_desk::search))
        .at("/staff/patients/:id/access", get(guardians::access))
        .at(
            "/staff/patients/:id/guardians",
            poem::post(guardians::record_guardian),
        )
        .at(
            "/staff/patients/:id/guardians/:grant/end",
            poem::post(guardians::end_guardian),
        )
        .at(
            "/staff/patients/:id/proxies",
            poem::post(guardians::record_proxy),
        )
        .at("/account/password", poem::post(security::change_password))
        .at("/account/email", poem::post(security::change_email))
        .at(
            "/account/email/confirm",
            link::moves_token_out_of_url(
                get(security::email_confirm_form).post(security::email_confirm),
                "/account/email/confirm",
                secure,
            ),
        )
        .at("/account/totp", poem::post(security::totp_start))
        .at("/account/totp/confirm", poem::post(security::totp_confirm))
        .at("/account/totp/off", poem::post(security::totp_off))
        .at(
            "/account/totp/recovery-codes",
            poem::post(security::new_codes),
        )
        .at(
            "/account/sessions/end-others",
            poem::post(security::end_others),
        )
        .at(
            "/account/sessions/:id/end",
            poem::post(security::end_session),
        )
        .at("/logout", poem::post(account::logout))
        .catch_error(|_: poem::error::NotFoundError| async {
            error_page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no page at this address.",
            )
        });
    session::answer_rejections(pages)
        .around(|ep, mut req| async move {
            // One session lookup per page: the extractors and the header read its answer.
            session::look_up_visitor(&mut req).await;
            let visitor = session::Visitor::of(&req);
            let csrf = req
                .extensions()
                .get::<poem::web::CsrfToken>()
                .map(|t| t.0.clone());
            let resp = ep.call(req).await?.into_response();
            Ok(layout::with_header(resp, &visitor, csrf.as_deref()).await)
        })
        .with(csrf)
        .with(poem::middleware::CookieJarManager::new())
        .data(Arc::new(state))
}

/// The page forms that take a password, a code or an emailed token without a session: the
/// application limits how often one client address may post them (as it does their API
/// counterparts).
pub const RATE_LIMITED_FORMS: &[&str] = &[
    "/login",
    "/login/code",
    "/register",
    "/verify",
    "/verify/resend",
    "/forgot",
    "/reset",
    "/staff/setup",
    "/account/email/confirm",
];

/// Whether the per-address limit applies to a request of this page path: the forms above,
/// and a share link's passcode (and the downloads that carry it).
pub fn is_rate_limited(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("post")
        && (RATE_LIMITED_FORMS.contains(&path) || path.starts_with("/share/"))
}

/// Whether a page's form may carry a message's files (and so a larger body): a new
/// conversation, and a reply from either side.
pub fn carries_files(method: &str, path: &str) -> bool {
    let one_segment = |rest: &str| !rest.is_empty() && !rest.contains('/');
    method.eq_ignore_ascii_case("post")
        && (path == "/messages/new"
            || path.strip_prefix("/messages/").is_some_and(one_segment)
            || path.strip_prefix("/staff/inbox/").is_some_and(one_segment))
}

/// The request's id (`x-request-id`, set for every request by the application's outermost
/// layer), for the audit entries a page's use cases write.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestId(Option<String>);

impl RequestId {
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'a> poem::FromRequest<'a> for RequestId {
    async fn from_request(
        req: &'a poem::Request,
        _body: &mut poem::RequestBody,
    ) -> poem::Result<Self> {
        Ok(Self(
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

/// Content-Security-Policy of every page: nothing but our own origin, no inline script,
/// no framing.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The interactive API page is generated by poem-openapi with inline script and styles; it
/// gets a policy that allows exactly that and still forbids framing and other origins.
pub const API_DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// `Strict-Transport-Security` of a deployment served over TLS: browsers use only https for a
/// year. Subdomains are left alone; they may be other services of the organisation.
pub const HSTS: &str = "max-age=31536000";

/// Wraps an endpoint so every response carries the security headers and, unless it sets its
/// own `Cache-Control`, `no-store`; with `https` (the portal's public address is https) also
/// `Strict-Transport-Security`.
pub fn security_headers<E: Endpoint + 'static>(ep: E, https: bool) -> impl Endpoint {
    ep.around(move |ep, req| async move {
        let docs = req.uri().path().starts_with("/api/docs");
        let mut resp = match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let h = resp.headers_mut();
        let csp = if docs { API_DOCS_CSP } else { PAGE_CSP };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // Any answer may carry account or health data (a page, a download, an error that
        // names a form): none is kept in a cache unless it says so itself (the static
        // stylesheet and script do).
        if !h.contains_key(header::CACHE_CONTROL) {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if https {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        Ok(resp)
    })
}
