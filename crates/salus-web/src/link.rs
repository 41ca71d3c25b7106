//! Emailed links (confirm an address, reset a password, accept a staff invitation, confirm a
//! new address) carry a single-use token in their query string. A URL is the worst place to
//! keep a secret: it lands in browser history, in any log that records addresses, and in a
//! `Referer`. So the token stays in the address bar for one request only:
//!
//! 1. `GET /reset?token=T` answers `303 See Other` to the clean `/reset`, handing the token
//!    to the browser in a short-lived cookie scoped to that one path (`HttpOnly`,
//!    `SameSite=Lax` so that it survives the top-level navigation from the mail program,
//!    `Secure` over TLS);
//! 2. `GET /reset` reads it back ([`LinkToken`]) and puts it in the form, which posts it;
//! 3. a successful `POST` ends the cookie.
//!
//! Opening the link still spends nothing: mail scanners that fetch links cannot use it up.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, FromRequest, IntoResponse, Request, RequestBody, Response};

/// The cookie that carries an emailed token from the link to its form.
const COOKIE: &str = "salus_link";
/// How long the cookie lives: long enough to fill in the form, not longer.
const COOKIE_SECONDS: u32 = 30 * 60;
/// Tokens are base64url; anything longer or of other characters is not one of ours.
const MAX_TOKEN: usize = 128;

fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_TOKEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `token` parameter of a query string, when there is one (usable or not).
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// Wraps the endpoint of a page that emailed links open: a `GET` with `?token=` is answered
/// with a redirect to the same path without its query, the token moved into a cookie.
pub(crate) fn moves_token_out_of_url<E: Endpoint + 'static>(
    ep: E,
    path: &'static str,
    secure: bool,
) -> impl Endpoint {
    ep.around(move |ep, req| async move {
        let token = (req.method() == Method::GET)
            .then(|| req.uri().query().and_then(query_token))
            .flatten();
        let Some(token) = token else {
            let carried = req.method() == Method::POST && LinkToken::of(&req).is_some();
            let mut resp = ep.call(req).await?.into_response();
            // Once the form succeeds the token is spent: end its cookie. A refused form keeps
            // it for the next try.
            if carried && resp.status().is_success() {
                set_cookie(&mut resp, path, "", 0, secure);
            }
            return Ok(resp);
        };
        let mut resp = Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, path)
            .header(header::CACHE_CONTROL, "no-store")
            .finish();
        // A malformed token is dropped, and so is any earlier link's: the clean page then
        // says the link is not valid rather than use another one.
        if is_token(token) {
            set_cookie(&mut resp, path, token, COOKIE_SECONDS, secure);
        } else {
            set_cookie(&mut resp, path, "", 0, secure);
        }
        Ok(resp)
    })
}

fn set_cookie(resp: &mut Response, path: &str, value: &str, max_age: u32, secure: bool) {
    let cookie = format!(
        "{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The token an emailed link handed over (see the module docs); empty when there is none.
#[derive(Default)]
pub(crate) struct LinkToken(pub(crate) String);

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

impl LinkToken {
    /// The token the request's cookie carries, if it is one.
    fn of(req: &Request) -> Option<&str> {
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value)
            .filter(|v| is_token(v))
    }
}

impl<'a> FromRequest<'a> for LinkToken {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(Self::of(req).unwrap_or_default().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_base64url_tokens_of_sane_length_are_tokens() {
        assert!(is_token("abc-DEF_123"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a%20b"));
        assert!(!is_token(&"a".repeat(MAX_TOKEN + 1)));
    }

    #[test]
    fn finds_the_token_parameter_anywhere_in_the_query() {
        assert_eq!(query_token("token=abc"), Some("abc"));
        assert_eq!(query_token("x=1&token=abc&y=2"), Some("abc"));
        assert_eq!(query_token("x=1"), None);
        assert_eq!(query_token("mytoken=abc"), None);
    }
}
