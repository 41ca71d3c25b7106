//! Who is asking: the session every signed-in operation takes, checked once before the
//! operation runs. An operation that names [`SessionToken`] among its parameters cannot run
//! without a live session; one that has none of it cannot reach account data.

use crate::error::json_error;
use chrono::{DateTime, Utc};
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use salus_domain::access::Actor;
use salus_domain::account::{Account, AuthService, SecretText, SessionError};

/// A session token from `POST /v1/auth/login`, sent as `Authorization: Bearer <token>`.
/// Without one, or with one that names no live session, the operation answers
/// `401 unauthorized`. A proxy opens the record of the person they act for by adding
/// `X-Acting-For: <grant id>` (from `GET /v1/me/acting-for`); a grant that is not theirs or
/// no longer in force answers `403 grant_not_in_force`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "SessionToken", checker = "check")]
pub struct SessionToken(pub(crate) SignedIn);

/// A live session and its account.
pub(crate) struct SignedIn {
    pub(crate) token: SecretText,
    pub(crate) account: Account,
    /// When the person last proved who they are in this session.
    pub(crate) authenticated_at: DateTime<Utc>,
    /// The proxy actor, when the request names a grant to act under (`X-Acting-For`).
    pub(crate) acting_as: Option<Actor>,
}

/// The header that names the grant a proxy acts under for one request.
pub const ACTING_FOR: &str = "x-acting-for";

/// The signed-in account is a patient whose account is not connected to a chart yet: it acts
/// on no chart.
pub(crate) struct NoChart;

impl SessionToken {
    /// The session's token, for the use cases that act on the session itself.
    pub(crate) fn secret(&self) -> &SecretText {
        &self.0.token
    }

    pub(crate) fn account(&self) -> &Account {
        &self.0.account
    }

    pub(crate) fn authenticated_at(&self) -> DateTime<Utc> {
        self.0.authenticated_at
    }

    /// The actor the account acts as: a proxy under the grant the request names, else a
    /// patient for their own chart, or staff.
    pub(crate) fn actor(&self) -> Result<Actor, NoChart> {
        if let Some(proxy) = &self.0.acting_as {
            return Ok(proxy.clone());
        }
        Actor::for_account(&self.0.account).ok_or(NoChart)
    }
}

async fn check(req: &Request, bearer: Bearer) -> poem::Result<SignedIn> {
    let Some(auth) = req.data::<AuthService>() else {
        tracing::error!("the API's account service is missing from the request");
        return Err(poem::Error::from_response(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )));
    };
    let token = SecretText::new(bearer.token);
    match auth.authenticate(&token).await {
        Ok(who) => {
            let acting_as = match req.headers().get(ACTING_FOR) {
                None => None,
                Some(v) => Some(acting_as(req, v, who.account.id).await?),
            };
            Ok(SignedIn {
                token,
                account: who.account,
                authenticated_at: who.authenticated_at,
                acting_as,
            })
        }
        Err(SessionError::Invalid) => Err(poem::Error::from_response(json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in to continue.",
        ))),
        Err(SessionError::Repo(e)) => {
            let answer: crate::ApiError = e.into();
            Err(poem::Error::from_response(
                poem::IntoResponse::into_response(answer),
            ))
        }
    }
}

/// The proxy actor of the grant an `X-Acting-For` header names, read at this request (so a
/// revoked or narrowed grant takes effect at once); else `403 grant_not_in_force`.
async fn acting_as(
    req: &Request,
    header: &poem::http::HeaderValue,
    account: salus_domain::AccountId,
) -> poem::Result<Actor> {
    let refused = || {
        poem::Error::from_response(json_error(
            StatusCode::FORBIDDEN,
            "grant_not_in_force",
            "You may not open this person's record: the permission ended, or is not yours.",
        ))
    };
    let Some(consent) = req.data::<salus_domain::consent::ConsentService>() else {
        tracing::error!("the API's consent service is missing from the request");
        return Err(refused());
    };
    let Some(grant) = header
        .to_str()
        .ok()
        .and_then(|v| salus_domain::GrantId::parse(v.trim()).ok())
    else {
        return Err(refused());
    };
    let request_id = req
        .headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok());
    match consent.actor_for(account, grant, request_id).await {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => Err(refused()),
        Err(e) => {
            let answer: crate::ApiError = e.into();
            Err(poem::Error::from_response(
                poem::IntoResponse::into_response(answer),
            ))
        }
    }
}

crate::redacted_debug!(SessionToken);
