//! The part of every page's header that depends on who is visiting: their name, the pages
//! their role has, and "Sign out" — or "Sign in" and "Create account".
//!
//! `base.html` carries the signed-out version between two markers; for each page answer of
//! the page routes, [`with_header`] puts in the version for the request's [`Visitor`] (found
//! once, before the handler). Every page gets it, error pages included, without each handler
//! passing it along.

use crate::session::{SignedIn, Visitor};
use askama::Template;
use poem::http::header;
use poem::{IntoResponse as _, Response};
use salus_domain::account::{Account, ChartLink, Role, StaffRole};

/// Where `base.html`'s account navigation starts and ends.
const START: &str = "<!--account-->";
const END: &str = "<!--/account-->";

struct Person {
    name: String,
    links: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "_account_nav.html")]
struct AccountNav<'a> {
    person: Option<Person>,
    csrf: &'a str,
}

/// What a grant lets a proxy do besides reading: message, book, pay bills.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProxyMay {
    pub(crate) message: bool,
    pub(crate) book: bool,
    pub(crate) pay: bool,
}

/// The pages an account's role has, as (address, label); `proxy` when it may open other
/// people's records, `for_someone` while it has one of them open (with what that grant lets
/// it do for them).
pub(crate) fn links(
    account: &Account,
    proxy: bool,
    for_someone: Option<ProxyMay>,
) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![("/account", "Home")];
    match account.role {
        Role::Patient if for_someone.is_some() => {
            // Someone else's record: what a grant can show; their history and their
            // sharing are theirs alone.
            links.extend([
                ("/records", "Their records"),
                ("/records/results", "Test results"),
                ("/records/medications", "Medications"),
                ("/records/visits", "Visits"),
                ("/records/download", "Download"),
            ]);
            let may = for_someone.unwrap_or_default();
            if may.message {
                links.push(("/messages", "Messages"));
            }
            if may.book {
                links.push(("/appointments", "Appointments"));
            }
            if may.pay {
                links.push(("/bills", "Bills"));
            }
        }
        Role::Patient => {
            if matches!(account.chart, ChartLink::Linked { .. }) {
                links.extend([
                    ("/records", "My records"),
                    ("/records/results", "Test results"),
                    ("/records/medications", "Medications"),
                    ("/records/visits", "Visits"),
                    ("/records/download", "Download"),
                    ("/records/history", "Who has looked"),
                    ("/messages", "Messages"),
                    ("/appointments", "Appointments"),
                    ("/bills", "Bills"),
                    ("/account/sharing", "Sharing"),
                ]);
            } else {
                links.push(("/account/activate", "Connect my record"));
            }
        }
        Role::Staff { role, .. } => {
            match role {
                StaffRole::Clinician => {
                    links.extend([("/staff/charts", "Charts"), ("/staff/refills", "Refills")]);
                }
                StaffRole::FrontDesk => {
                    links.extend([("/staff", "Front desk"), ("/staff/schedule", "Schedule")]);
                }
                StaffRole::OrganizationAdmin => {
                    links.extend([
                        ("/staff", "Front desk"),
                        ("/staff/schedule", "Schedule"),
                        ("/staff/team", "Team"),
                        ("/staff/pools", "Care teams"),
                        ("/staff/billing", "Billing"),
                    ]);
                }
                StaffRole::Billing => links.push(("/staff/billing", "Billing")),
            }
            links.push(("/staff/inbox", "Inbox"));
        }
    }
    if proxy {
        links.push(("/account/acting-for", "Shared with me"));
    }
    links.push(("/account/security", "Sign-in and security"));
    links
}

/// The account navigation for `visitor`.
fn nav(visitor: &Visitor, csrf: &str) -> Option<String> {
    let person = match visitor {
        Visitor::SignedIn(me) => Some(Person {
            name: me.account.name.full(),
            links: links(
                &me.account,
                !me.proxy.choices.is_empty(),
                me.proxy.open_for().map(|c| {
                    let actions = &c.grant.grant.scope.actions;
                    ProxyMay {
                        message: actions.contains(&salus_domain::access::Action::Message),
                        book: actions.contains(&salus_domain::access::Action::Book),
                        pay: actions.contains(&salus_domain::access::Action::PayBills),
                    }
                }),
            ),
        }),
        Visitor::Anonymous | Visitor::SessionEnded | Visitor::Unknown => None,
    };
    AccountNav { person, csrf }.render().ok()
}

/// One person a proxy may switch to.
struct SwitchTo {
    grant: String,
    name: String,
    open: bool,
}

/// The bar under the header of a proxy's pages: whose record is open, and a switch.
#[derive(Template)]
#[template(path = "_acting.html")]
struct ActingBar<'a> {
    /// The name of the person whose record is open; `None` for the proxy's own.
    open_for: Option<String>,
    has_own: bool,
    people: Vec<SwitchTo>,
    csrf: &'a str,
}

/// Whose record a page is about, for its title: "Ann Lee's record", or "My own record".
#[derive(Template)]
#[template(
    source = "{% if let Some(n) = name %}{{ n }}'s record{% else %}My own record{% endif %}",
    ext = "html"
)]
struct Whose<'a> {
    name: Option<&'a str>,
}

/// The bar and the title's addition for `me`, when they may open someone else's record.
fn acting(me: &SignedIn, csrf: &str) -> Option<(String, String)> {
    if me.proxy.choices.is_empty() {
        return None;
    }
    let open = me.proxy.open_for();
    let open_for = open.map(|c| c.name.full());
    let has_own = me.account.chart.is_linked();
    // Nothing to add to the title of a proxy who has no record of their own open.
    let whose = if open_for.is_some() || has_own {
        Whose {
            name: open_for.as_deref(),
        }
        .render()
        .ok()?
    } else {
        String::new()
    };
    let bar = ActingBar {
        has_own,
        people: me
            .proxy
            .choices
            .iter()
            .map(|c| SwitchTo {
                grant: c.grant.grant.id.to_string(),
                name: c.name.full(),
                open: open.is_some_and(|o| o.grant.grant.id == c.grant.grant.id),
            })
            .collect(),
        open_for,
        csrf,
    }
    .render()
    .ok()?;
    Some((bar, whose))
}

/// Where `base.html`'s bar for a proxy goes, and the end of every page title.
const ACTING: &str = "<!--acting-->";
const TITLE_END: &str = " · Salus patient portal</title>";

/// `resp` with the account navigation for `visitor`, when it is a page that has the slot.
pub(crate) async fn with_header(resp: Response, visitor: &Visitor, csrf: Option<&str>) -> Response {
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let signed_in = matches!(visitor, Visitor::SignedIn(_));
    if !is_html || !signed_in {
        // The signed-out navigation is already in the page.
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(html) = body.into_string().await else {
        return Response::from_parts(parts, poem::Body::empty());
    };
    let csrf = csrf.unwrap_or("");
    let mut spliced = match (html.find(START), html.find(END), nav(visitor, csrf)) {
        (Some(start), Some(end), Some(nav)) if start < end => {
            format!("{}{nav}{}", &html[..start], &html[end + END.len()..])
        }
        _ => html,
    };
    if let Visitor::SignedIn(me) = visitor
        && let Some((bar, whose)) = acting(me, csrf)
    {
        spliced = spliced.replacen(ACTING, &bar, 1);
        if !whose.is_empty() {
            spliced = spliced.replacen(TITLE_END, &format!(" · {whose}{TITLE_END}"), 1);
        }
    }
    let mut out = Response::from_parts(parts, poem::Body::from_string(spliced));
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_its_own_pages_and_everyone_security() {
        let account = |role, chart| Account {
            id: salus_domain::AccountId::from_uuid(uuid::Uuid::from_u128(1)),
            email: salus_domain::text::Email::parse("a@example.org")
                .unwrap_or_else(|_| unreachable!()),
            name: salus_domain::patient::PersonName::new("Ann", "Lee")
                .unwrap_or_else(|_| unreachable!()),
            birth_date: None,
            role,
            state: salus_domain::account::AccountState::PendingVerification,
            chart,
            password: salus_domain::account::PasswordHash::new("x"),
            created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        };
        let org = salus_domain::OrganizationId::from_uuid(uuid::Uuid::from_u128(2));
        let patient = salus_domain::PatientId::from_uuid(uuid::Uuid::from_u128(3));
        let addresses = |a: &Account| {
            links(a, false, None)
                .iter()
                .map(|(href, _)| *href)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            addresses(&account(Role::Patient, ChartLink::Linked { patient })),
            [
                "/account",
                "/records",
                "/records/results",
                "/records/medications",
                "/records/visits",
                "/records/download",
                "/records/history",
                "/messages",
                "/appointments",
                "/bills",
                "/account/sharing",
                "/account/security"
            ]
        );
        // For someone else: messages and appointments only when the grant says so.
        let someone = account(Role::Patient, ChartLink::Linked { patient });
        let for_them = |may| {
            links(&someone, true, Some(may))
                .iter()
                .map(|(href, _)| *href)
                .collect::<Vec<_>>()
        };
        let reads = for_them(ProxyMay::default());
        assert!(!reads.contains(&"/messages") && !reads.contains(&"/appointments"));
        let books = for_them(ProxyMay {
            message: false,
            book: true,
            pay: false,
        });
        assert!(books.contains(&"/appointments") && !books.contains(&"/messages"));
        assert!(!books.contains(&"/bills"));
        let pays = for_them(ProxyMay {
            message: false,
            book: false,
            pay: true,
        });
        assert!(pays.contains(&"/bills") && !pays.contains(&"/appointments"));
        assert_eq!(
            addresses(&account(Role::Patient, ChartLink::Unlinked)),
            ["/account", "/account/activate", "/account/security"]
        );
        let staff = |role| {
            account(
                Role::Staff {
                    role,
                    organization: org,
                },
                ChartLink::Unlinked,
            )
        };
        assert!(addresses(&staff(StaffRole::Clinician)).contains(&"/staff/charts"));
        assert!(!addresses(&staff(StaffRole::Clinician)).contains(&"/staff/team"));
        assert!(addresses(&staff(StaffRole::OrganizationAdmin)).contains(&"/staff/team"));
        assert!(!addresses(&staff(StaffRole::Billing)).contains(&"/staff"));
        assert!(addresses(&staff(StaffRole::FrontDesk)).contains(&"/staff/schedule"));
        assert!(!addresses(&staff(StaffRole::Clinician)).contains(&"/staff/schedule"));
    }
}
