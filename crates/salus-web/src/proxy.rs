//! A proxy's side of consent: whose records they may open, the switch between their own record
//! and someone else's, and what they did on others' behalf. Which record is open is kept in a
//! cookie holding only the grant's id; [`crate::session::Acting`] reads the grant again at
//! every request, so nothing here can widen what a proxy sees.

use crate::session::{CheckedForm, Refill, SignedIn, acting_cookie, see_other, strict_cookie};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{CsrfToken, Data};
use poem::{Response, handler};
use salus_domain::access::Action;
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

/// A person whose records the proxy may open.
struct Person {
    grant: String,
    name: String,
    kinds: String,
    may_download: bool,
    until: String,
    open: bool,
}

/// One thing the proxy did for someone.
struct Done {
    when: String,
    whose: String,
    what: String,
    refused: bool,
}

#[derive(Template)]
#[template(path = "acting_for.html")]
struct ActingForPage<'a> {
    csrf: &'a str,
    people: Vec<Person>,
    has_own: bool,
    open_for_someone: bool,
    done: Vec<Done>,
}

/// How many of the proxy's own actions the page lists.
const HISTORY: u32 = 50;

/// "Shared with me": the people whose records the signed-in person may open, and what they
/// opened or downloaded for them.
#[handler]
pub(crate) async fn acting_for(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
) -> Response {
    let zone = |tz: Option<salus_domain::chrono_tz::Tz>| tz.unwrap_or(salus_domain::chrono_tz::UTC);
    let tz = match crate::records::zone_of(&state, &me.account).await {
        Ok(z) => Some(z).filter(|_| me.account.chart.is_linked()),
        Err(r) => return r,
    };
    let open = me.proxy.open_for().map(|c| c.grant.grant.id);
    let people = me
        .proxy
        .choices
        .iter()
        .map(|c| {
            let g = &c.grant.grant;
            Person {
                grant: g.id.to_string(),
                name: c.name.full(),
                kinds: g
                    .scope
                    .kinds
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(", "),
                may_download: g.scope.actions.contains(&Action::Export),
                until: when::day_of(g.scope.valid_until - chrono::Duration::seconds(1), zone(tz)),
                open: open == Some(g.id),
            }
        })
        .collect();
    let done = match state.consent.on_behalf(me.account.id, HISTORY).await {
        Ok(d) => d,
        Err(e) => return crate::unavailable("proxy history failed", &e),
    };
    let done = done
        .iter()
        .map(|(e, name)| Done {
            when: when::moment(e.at, zone(tz)),
            whose: name
                .as_ref()
                .map_or_else(|| "Someone".to_owned(), |n| n.full()),
            what: crate::records::action_words(e, "their"),
            refused: e.outcome != salus_domain::audit::Outcome::Allowed,
        })
        .collect();
    render(&ActingForPage {
        csrf: &csrf.0,
        people,
        has_own: me.account.chart.is_linked(),
        open_for_someone: open.is_some(),
        done,
    })
}

#[derive(Deserialize)]
pub(crate) struct SwitchForm {
    /// A grant's id, or `self` for the person's own record.
    grant: String,
}

impl Refill for SwitchForm {}

/// Opens someone else's record (a grant the person holds now), or their own again.
#[handler]
pub(crate) async fn switch(
    state: Data<&Arc<WebState>>,
    me: SignedIn,
    CheckedForm(form): CheckedForm<SwitchForm>,
) -> Response {
    let name = acting_cookie(&state);
    let choice = form.grant.trim();
    let (mut resp, cookie) = if choice == "self" {
        let mut gone = strict_cookie(name, "", state.secure_cookies);
        gone.set_max_age(std::time::Duration::ZERO);
        let to = if me.account.chart.is_linked() {
            "/records"
        } else {
            "/account"
        };
        (see_other(to), gone)
    } else {
        // Only a grant offered now; `Acting` checks it again at every page.
        let offered = me
            .proxy
            .choices
            .iter()
            .find(|c| c.grant.grant.id.to_string() == choice);
        let Some(c) = offered else {
            return error_page(
                StatusCode::FORBIDDEN,
                "Not available",
                "You may not open this record: the permission ended, or it is not yours. The list of records shared with you is on your home page.",
            );
        };
        (
            see_other("/records"),
            strict_cookie(name, &c.grant.grant.id.to_string(), state.secure_cookies),
        )
    };
    if let Ok(v) = header::HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
