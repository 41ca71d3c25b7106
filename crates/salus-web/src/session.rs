//! Who is asking, and whether their form is theirs: the extractors every page handler takes
//! instead of reading cookies or checking CSRF tokens itself.
//!
//! - [`SignedIn`]: a live session (else `303` to `/login`, dropping a dead session cookie).
//! - [`Acting`]: the actor the signed-in person acts as — a proxy for the person whose record
//!   they chose (read from the grant at every request: a revoked or narrowed grant takes effect
//!   at once; an ended one answers `403`), else a patient for their own chart, or staff (else
//!   `403` "not connected yet").
//! - [`Myself`]: the actor the signed-in person is on their own, whatever record they chose
//!   (for the pages about their own account and their own grants).
//! - [`StaffMember`]: an [`Acting`] that is staff (else `403`).
//! - [`CheckedForm`]: a urlencoded form whose `csrf` field matches the request's CSRF cookie
//!   (else `403`, nothing done).
//!
//! A rejection is a whole page (or a redirect); the handler never runs.
//!
//! The session is looked up once per page request, by [`look_up_visitor`] before the handler
//! runs; the extractors and the page header (`layout`) read that one answer.

use crate::{WebState, error_page};
use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::web::cookie::{Cookie, SameSite};
use poem::web::{CsrfToken, CsrfVerifier};
use poem::{FromRequest, Request, RequestBody, Response};
use salus_domain::GrantId;
use salus_domain::access::Actor;
use salus_domain::account::{Account, SecretText, SessionError};
use salus_domain::consent::ProxyChoice;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The sentence of a form whose CSRF token does not match.
pub(crate) const FORM_EXPIRED: &str = "This form has expired, or it was sent from another site. Nothing was saved. Open the page again and send the form once more.";

/// The session cookie's name: `__Host-` only works (and is only needed) over TLS.
pub(crate) fn session_cookie(state: &WebState) -> &'static str {
    if state.secure_cookies {
        "__Host-salus_session"
    } else {
        "salus_session"
    }
}

/// The cookie that remembers whose record a proxy chose (a grant id; absent for their own).
pub(crate) fn acting_cookie(state: &WebState) -> &'static str {
    if state.secure_cookies {
        "__Host-salus_acting"
    } else {
        "salus_acting"
    }
}

/// A cookie only this site's own top-level requests carry, readable by no script.
pub(crate) fn strict_cookie(name: &'static str, value: &str, secure: bool) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(secure);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    cookie
}

pub(crate) fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// A rejection that is already the whole answer (a page or a redirect): the application's
/// outer layers pass it on unchanged.
#[derive(Clone, Copy)]
pub(crate) struct Answered;

/// The error an extractor rejects with: exactly this response.
pub(crate) fn answered(resp: Response) -> poem::Error {
    let mut e = poem::Error::from_response(resp);
    e.set_data(Answered);
    e
}

/// Turns the rejections of the extractors back into their answers; other errors go on.
pub(crate) fn answer_rejections<E: poem::Endpoint + 'static>(ep: E) -> impl poem::Endpoint {
    use poem::{EndpointExt as _, IntoResponse as _};
    ep.around(|ep, req| async move {
        match ep.call(req).await {
            Ok(r) => Ok(r.into_response()),
            Err(e) if e.data::<Answered>().is_some() => Ok(e.into_response()),
            Err(e) => Err(e),
        }
    })
}

fn state(req: &Request) -> poem::Result<&Arc<WebState>> {
    req.data::<Arc<WebState>>().ok_or_else(|| {
        tracing::error!("page state missing from the request");
        poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// The session token the request's cookie carries, if any (not yet checked).
pub(crate) fn session_token(req: &Request) -> poem::Result<Option<SecretText>> {
    let name = session_cookie(state(req)?);
    Ok(req
        .cookie()
        .get(name)
        .map(|c| SecretText::new(c.value_str())))
}

/// To sign in, forgetting the session cookie the browser sent (it names no live session).
fn to_sign_in(state: &WebState) -> poem::Error {
    let mut gone = strict_cookie(session_cookie(state), "", state.secure_cookies);
    gone.set_max_age(std::time::Duration::ZERO);
    let mut resp = see_other("/login");
    if let Ok(v) = header::HeaderValue::from_str(&gone.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    answered(resp)
}

/// Who is visiting, found once per page request from the session cookie.
#[derive(Clone)]
pub(crate) enum Visitor {
    /// No session cookie.
    Anonymous,
    /// A live session.
    SignedIn(Arc<SignedIn>),
    /// A session cookie that names no live session (ended, expired, or never one).
    SessionEnded,
    /// The session could not be checked (storage failed); pages that need it say so.
    Unknown,
}

impl Visitor {
    /// The visitor of a request ([`Visitor::Anonymous`] outside the page routes).
    pub(crate) fn of(req: &Request) -> Self {
        req.extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or(Self::Anonymous)
    }
}

/// Looks the session up once, for the extractors and the page header of this request.
pub(crate) async fn look_up_visitor(req: &mut Request) {
    // The stylesheet and the script are the same for everyone: no lookup for them.
    if req.uri().path().starts_with("/static/") {
        return;
    }
    let visitor = match (state(req), session_token(req)) {
        (Ok(state), Ok(Some(token))) => match state.auth.authenticate(&token).await {
            Ok(who) => {
                let proxy = proxy_state(state, req, &who.account).await;
                Visitor::SignedIn(Arc::new(SignedIn {
                    token,
                    account: who.account,
                    authenticated_at: who.authenticated_at,
                    previous_sign_in: who.previous_sign_in,
                    proxy,
                }))
            }
            Err(SessionError::Invalid) => Visitor::SessionEnded,
            Err(SessionError::Repo(e)) => {
                tracing::error!(error = %e, "session check failed");
                Visitor::Unknown
            }
        },
        _ => Visitor::Anonymous,
    };
    req.extensions_mut().insert(visitor);
}

/// Whose records a signed-in patient account may open for others, and which one it chose.
#[derive(Clone, Default)]
pub(crate) struct ProxyState {
    /// The people whose records it may open now (grants in force).
    pub(crate) choices: Vec<ProxyChoice>,
    /// The grant the acting cookie names, if any (checked again by [`Acting`]).
    pub(crate) chosen: Option<GrantId>,
}

impl ProxyState {
    /// The person whose record is open, when it is someone else's and still offered.
    pub(crate) fn open_for(&self) -> Option<&ProxyChoice> {
        let chosen = self.chosen?;
        self.choices.iter().find(|c| c.grant.grant.id == chosen)
    }
}

/// The grant the request's acting cookie names, if any.
fn chosen_grant(state: &WebState, req: &Request) -> Option<GrantId> {
    req.cookie()
        .get(acting_cookie(state))
        .and_then(|c| GrantId::parse(c.value_str()).ok())
}

/// The proxy switcher's state for `account` (staff act for nobody).
async fn proxy_state(state: &WebState, req: &Request, account: &Account) -> ProxyState {
    if account.role != salus_domain::account::Role::Patient {
        return ProxyState::default();
    }
    let choices = match state.consent.proxy_choices(account.id).await {
        Ok(c) => c,
        Err(e) => {
            // The pages still work for the person's own record; the switcher is missing.
            tracing::error!(error = %e, "proxy choices failed");
            Vec::new()
        }
    };
    ProxyState {
        choices,
        chosen: chosen_grant(state, req),
    }
}

/// A signed-in person: a live session and its account.
#[derive(Clone)]
pub(crate) struct SignedIn {
    /// The session's token, for the use cases that act on the session itself.
    pub(crate) token: SecretText,
    pub(crate) account: Account,
    /// When the person last proved who they are in this session.
    pub(crate) authenticated_at: DateTime<Utc>,
    /// When they signed in before this session: what is new is counted from then.
    pub(crate) previous_sign_in: Option<DateTime<Utc>>,
    /// Whose records they may open for others, and which one they chose.
    pub(crate) proxy: ProxyState,
}

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = state(req)?;
        // The answer found once for this request, when the page routes looked it up.
        match req.extensions().get::<Visitor>() {
            Some(Visitor::SignedIn(me)) => return Ok((**me).clone()),
            Some(Visitor::Anonymous) => return Err(answered(see_other("/login"))),
            Some(Visitor::SessionEnded) => return Err(to_sign_in(state)),
            Some(Visitor::Unknown) | None => {}
        }
        let Some(token) = session_token(req)? else {
            return Err(answered(see_other("/login")));
        };
        match state.auth.authenticate(&token).await {
            Ok(who) => Ok(Self {
                proxy: proxy_state(state, req, &who.account).await,
                token,
                account: who.account,
                authenticated_at: who.authenticated_at,
                previous_sign_in: who.previous_sign_in,
            }),
            Err(SessionError::Invalid) => Err(to_sign_in(state)),
            Err(SessionError::Repo(e)) => {
                Err(answered(crate::unavailable("session check failed", &e)))
            }
        }
    }
}

/// The actor a signed-in person acts as in this request.
pub(crate) struct Acting {
    pub(crate) actor: Actor,
    pub(crate) signed_in: SignedIn,
}

impl Acting {
    /// The account holder's full name (the author of what staff file).
    pub(crate) fn name(&self) -> String {
        self.signed_in.account.name.full()
    }
}

impl<'a> FromRequest<'a> for Acting {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed_in = SignedIn::from_request(req, body).await?;
        if let Some(grant) = signed_in.proxy.chosen {
            let state = state(req)?;
            let rid = crate::RequestId::from_request(req, body).await?;
            // Read from the grant now, never remembered: a revoked or narrowed grant takes
            // effect at this very request (an ended one is written to the patient's history).
            return match state
                .consent
                .actor_for(signed_in.account.id, grant, rid.get())
                .await
            {
                Ok(Some(actor)) => Ok(Self { actor, signed_in }),
                Ok(None) => Err(access_ended(state)),
                Err(e) => Err(answered(crate::unavailable("grant check failed", &e))),
            };
        }
        Myself::from_request(req, body).await.map(|m| m.0)
    }
}

/// The refusal when the record a proxy chose is not theirs to open any more: the page says
/// so, and the choice is forgotten (the next page is their own).
fn access_ended(state: &WebState) -> poem::Error {
    let mut resp = error_page(
        StatusCode::FORBIDDEN,
        "Access ended",
        "You may no longer open this person's record: they ended your access, or it expired. Nothing of it is shown. Your home page lists the records you may still open.",
    );
    let mut gone = strict_cookie(acting_cookie(state), "", state.secure_cookies);
    gone.set_max_age(std::time::Duration::ZERO);
    if let Ok(v) = header::HeaderValue::from_str(&gone.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    answered(resp)
}

/// The actor the signed-in person is on their own — a patient for their own chart, or staff
/// — whatever record they chose to open for someone else.
pub(crate) struct Myself(pub(crate) Acting);

impl<'a> FromRequest<'a> for Myself {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed_in = SignedIn::from_request(req, body).await?;
        match Actor::for_account(&signed_in.account) {
            Some(actor) => Ok(Self(Acting { actor, signed_in })),
            None => Err(answered(error_page(
                StatusCode::FORBIDDEN,
                "Not connected yet",
                "Your account is not connected to your medical record yet. Your home page shows where things stand: which clinic is confirming who you are, and how to reach it.",
            ))),
        }
    }
}

/// A signed-in member of an organisation's staff.
pub(crate) struct StaffMember(pub(crate) Acting);

impl<'a> FromRequest<'a> for StaffMember {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Myself(acting) = Myself::from_request(req, body).await?;
        if matches!(acting.actor, Actor::Staff { .. }) {
            Ok(Self(acting))
        } else {
            Err(answered(error_page(
                StatusCode::FORBIDDEN,
                "Not available",
                "This page is for the clinic's staff.",
            )))
        }
    }
}

/// A posted form (`application/x-www-form-urlencoded`) whose `csrf` field is valid for this
/// browser. Its other fields are `T`'s.
pub(crate) struct CheckedForm<T>(pub(crate) T);

/// What a form answers when its CSRF token does not verify (nothing is done either way). By
/// default a page that says so; a form whose typed text is worth keeping shows its page
/// again with that text (never a secret) and a fresh token, so nothing typed is lost.
pub(crate) trait Refill {
    /// The form's page again, saying it expired; `csrf` is a fresh token, `path` where the
    /// form was posted.
    fn refill(&self, _csrf: &str, _path: &str) -> Option<Response> {
        None
    }
}

/// A form with no fields but the CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

impl Refill for NoFields {}

/// A form read field by field, in order (repeated fields such as checkboxes included).
impl Refill for Vec<(String, String)> {}

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: String,
}

fn form_refused(status: StatusCode, title: &str, message: &str) -> poem::Error {
    answered(error_page(status, title, message))
}

fn refused_form() -> poem::Error {
    form_refused(
        StatusCode::BAD_REQUEST,
        "Form incomplete",
        "The form arrived incomplete. Nothing was saved. Open the page again and send the form once more.",
    )
}

/// The form `T` from its urlencoded fields, when their `csrf` field is valid for this browser;
/// else the answer: the form's page again with what was typed (see [`Refill`]) or a page
/// saying it expired.
async fn verified<T: DeserializeOwned + Refill>(req: &Request, fields: &[u8]) -> poem::Result<T> {
    let verifier = <&CsrfVerifier>::from_request_without_body(req).await?;
    let fresh = <&CsrfToken>::from_request_without_body(req).await?;
    let form = serde_urlencoded::from_bytes::<T>(fields);
    let valid = serde_urlencoded::from_bytes::<CsrfField>(fields)
        .is_ok_and(|field| verifier.is_valid(&field.csrf));
    if !valid {
        let again = form.ok().and_then(|f| f.refill(&fresh.0, req.uri().path()));
        return Err(match again {
            Some(mut page) => {
                page.set_status(StatusCode::FORBIDDEN);
                answered(page)
            }
            None => form_refused(StatusCode::FORBIDDEN, "Form expired", FORM_EXPIRED),
        });
    }
    form.map_err(|_| refused_form())
}

fn is_urlencoded(req: &Request) -> bool {
    req.content_type()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
}

impl<'a, T: DeserializeOwned + Refill> FromRequest<'a> for CheckedForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if !is_urlencoded(req) {
            return Err(form_refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "This address takes a form sent from its page.",
            ));
        }
        let bytes = body.take()?.into_bytes().await?;
        verified(req, &bytes).await.map(Self)
    }
}

/// A posted form that may carry files (`multipart/form-data`; a plain urlencoded form is
/// taken too, with no files), whose `csrf` field is valid for this browser. Its text fields
/// are `T`'s; its files are read whole (the request's size was bounded before). A file
/// input left empty sends a nameless empty part, which is no file.
pub(crate) struct CheckedFiles<T> {
    pub(crate) form: T,
    pub(crate) files: Vec<salus_domain::messaging::IncomingFile>,
}

impl<'a, T: DeserializeOwned + Refill> FromRequest<'a> for CheckedFiles<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if is_urlencoded(req) {
            let CheckedForm(form) = CheckedForm::from_request(req, body).await?;
            return Ok(Self {
                form,
                files: Vec::new(),
            });
        }
        let multipart = req
            .content_type()
            .is_some_and(|t| t.starts_with("multipart/form-data"));
        if !multipart {
            return Err(form_refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "This address takes a form sent from its page.",
            ));
        }
        let mut parts = poem::web::Multipart::from_request(req, body)
            .await
            .map_err(|_| refused_form())?;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        while let Some(part) = parts.next_field().await.map_err(|_| refused_form())? {
            let name = part.name().unwrap_or_default().to_owned();
            match part.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let content = part.bytes().await.map_err(|_| refused_form())?;
                    if !(file_name.is_empty() && content.is_empty()) {
                        files.push(salus_domain::messaging::IncomingFile {
                            name: file_name,
                            content,
                        });
                    }
                }
                None => fields.push((name, part.text().await.map_err(|_| refused_form())?)),
            }
        }
        let encoded = serde_urlencoded::to_string(&fields).map_err(|_| refused_form())?;
        let form = verified(req, encoded.as_bytes()).await?;
        Ok(Self { form, files })
    }
}
