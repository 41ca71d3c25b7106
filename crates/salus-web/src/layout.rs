//! The part of every page's header that depends on who is visiting: their name, the pages
//! their role has, and "Sign out" — or "Sign in" and "Create account".
//!
//! `base.html` carries the signed-out version between two markers; for each page answer of
//! the page routes, [`with_header`] puts in the version for the request's [`Visitor`] (found
//! once, before the handler). Every page gets it, error pages included, without each handler
//! passing it along.

use crate::session::Visitor;
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

/// The pages an account's role has, as (address, label).
pub(crate) fn links(account: &Account) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![("/account", "Home")];
    match account.role {
        Role::Patient => {
            if matches!(account.chart, ChartLink::Linked { .. }) {
                links.extend([
                    ("/records", "My records"),
                    ("/records/results", "Test results"),
                    ("/records/medications", "Medications"),
                    ("/records/visits", "Visits"),
                    ("/records/download", "Download"),
                    ("/records/history", "Who has looked"),
                    ("/account/sharing", "Sharing"),
                ]);
            } else {
                links.push(("/account/activate", "Connect my record"));
            }
        }
        Role::Staff { role, .. } => match role {
            StaffRole::Clinician => links.push(("/staff/charts", "Charts")),
            StaffRole::FrontDesk => links.push(("/staff", "Front desk")),
            StaffRole::OrganizationAdmin => {
                links.extend([("/staff", "Front desk"), ("/staff/team", "Team")]);
            }
            StaffRole::Billing => {}
        },
    }
    links.push(("/account/security", "Sign-in and security"));
    links
}

/// The account navigation for `visitor`.
fn nav(visitor: &Visitor, csrf: &str) -> Option<String> {
    let person = match visitor {
        Visitor::SignedIn(me) => Some(Person {
            name: me.account.name.full(),
            links: links(&me.account),
        }),
        Visitor::Anonymous | Visitor::SessionEnded | Visitor::Unknown => None,
    };
    AccountNav { person, csrf }.render().ok()
}

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
    let spliced = match (
        html.find(START),
        html.find(END),
        nav(visitor, csrf.unwrap_or("")),
    ) {
        (Some(start), Some(end), Some(nav)) if start < end => {
            format!("{}{nav}{}", &html[..start], &html[end + END.len()..])
        }
        _ => html,
    };
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
        let addresses = |a: &Account| links(a).iter().map(|(href, _)| *href).collect::<Vec<_>>();
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
                "/account/sharing",
                "/account/security"
            ]
        );
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
    }
}
