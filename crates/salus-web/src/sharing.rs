//! "Who can see my records": the patient invites a proxy (a family member, a carer) with a
//! scope they choose, sees every grant with its state, and revokes one; the invitee accepts
//! an invitation from its emailed link. Everything goes through the domain's
//! `ConsentService`.

use crate::account::{MessagePage, with_status};
use crate::form::Problems;
use crate::link::LinkToken;
use crate::session::{Acting, CheckedForm, Myself, NoFields, Refill, SignedIn, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::access::Action;
use salus_domain::account::SecretText;
use salus_domain::consent::{
    AcceptError, ConsentError, GrantState, Grantee, ProxyInvitation, ScopeChoice, ScopeError,
};
use salus_domain::record::{RecordKind, SensitivityLabel};
use salus_domain::when;
use serde::Deserialize;
use std::sync::Arc;

/// A grant as its patient reads it.
struct GrantRow {
    id: String,
    who: String,
    status: &'static str,
    /// Revoking makes sense only for a grant that has not ended (a guardianship is the
    /// clinic's to end).
    live: bool,
    /// Its scope can be changed (a share link's cannot: the patient makes a new one).
    changeable: bool,
    kinds: String,
    may_download: bool,
    /// What they may do for the patient beyond viewing, in words.
    acts: String,
    labels: String,
    until: String,
    /// Recorded at the front desk rather than by the patient online.
    by_staff: bool,
}

/// A checkbox of the form.
pub(crate) struct Choice {
    pub(crate) code: &'static str,
    pub(crate) label: &'static str,
    pub(crate) checked: bool,
}

/// The invitation form as typed.
#[derive(Default, Clone)]
pub(crate) struct Typed {
    pub(crate) email: String,
    pub(crate) relationship: String,
    pub(crate) note: String,
    pub(crate) until: String,
    pub(crate) kinds: Vec<String>,
    pub(crate) download: bool,
    pub(crate) labels: Vec<String>,
    /// What they may do for the patient beyond viewing (`message`, `book`, …).
    pub(crate) acts: Vec<String>,
}

#[derive(Template)]
#[template(path = "sharing.html")]
struct SharingPage<'a> {
    csrf: &'a str,
    notice: Option<&'a str>,
    problems: Problems,
    grants: Vec<GrantRow>,
    typed: Typed,
    kinds: Vec<Choice>,
    labels: Vec<Choice>,
    acts: Vec<Choice>,
}

/// The plain explanation of each sensitivity label, for the form.
pub(crate) fn explain(l: SensitivityLabel) -> &'static str {
    match l {
        SensitivityLabel::MentalHealth => {
            "Mental health: diagnoses, therapy notes and medicines for mental health"
        }
        SensitivityLabel::SubstanceUse => "Substance use: treatment for alcohol or drug use",
        SensitivityLabel::SexualReproductive => {
            "Sexual and reproductive health: tests for infections, contraception, pregnancy"
        }
        SensitivityLabel::Hiv => "HIV: tests and treatment",
        SensitivityLabel::Genetic => "Genetic information: genetic tests and counselling",
    }
}

fn status(s: GrantState) -> &'static str {
    match s {
        GrantState::Pending { .. } => "Invited, not accepted yet",
        GrantState::Active { .. } => "Active",
        GrantState::Revoked { .. } => "Revoked",
        GrantState::Expired => "Ended",
    }
}

async fn page(
    state: &WebState,
    csrf: &CsrfToken,
    acting: &Acting,
    notice: Option<&str>,
    problems: Problems,
    typed: Typed,
    code: StatusCode,
) -> Response {
    let grants = match state.consent.grants(&acting.actor).await {
        Ok(g) => g,
        Err(ConsentError::Repo(e)) => return crate::unavailable("grants failed", &e),
        Err(_) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Not available",
                "Only a patient decides who may see their own records.",
            );
        }
    };
    let zone = match crate::records::zone_of(state, &acting.signed_in.account).await {
        Ok(z) => z,
        Err(r) => return r,
    };
    let rows = grants
        .iter()
        .map(|v| {
            let g = &v.grant;
            let who = match &g.grantee {
                Grantee::Proxy {
                    email,
                    relationship,
                    ..
                } => match relationship {
                    Some(r) => format!("{} ({})", email.as_str(), r.as_str()),
                    None => email.as_str().to_owned(),
                },
                Grantee::Guardian {
                    email,
                    relationship,
                    ..
                } => match relationship {
                    Some(r) => format!("Guardian: {} ({})", email.as_str(), r.as_str()),
                    None => format!("Guardian: {}", email.as_str()),
                },
                Grantee::ShareLink { recipient, .. } => {
                    recipient.as_ref().map_or("A share link".to_owned(), |r| {
                        format!("Share link for {}", r.as_str())
                    })
                }
            };
            let locked = matches!(&g.grantee, Grantee::ShareLink { attempts, .. } if attempts.locked_at.is_some());
            let guardian = matches!(g.grantee, Grantee::Guardian { .. });
            let link = matches!(g.grantee, Grantee::ShareLink { .. });
            GrantRow {
                id: g.id.to_string(),
                who,
                status: if locked && matches!(v.state, GrantState::Active { .. }) {
                    "Locked after wrong passcodes"
                } else {
                    status(v.state)
                },
                live: matches!(
                    v.state,
                    GrantState::Pending { .. } | GrantState::Active { .. }
                ) && !guardian,
                changeable: !link,
                kinds: g
                    .scope
                    .kinds
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(", "),
                may_download: g.scope.actions.contains(&Action::Export),
                acts: g
                    .scope
                    .actions
                    .iter()
                    .filter(|a| a.acts_for_patient())
                    .map(|a| act_label(*a).to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", "),
                labels: g
                    .scope
                    .labels
                    .iter()
                    .map(|l| l.label())
                    .collect::<Vec<_>>()
                    .join(", "),
                until: if link {
                    when::moment(g.scope.valid_until, zone)
                } else {
                    when::day_of(g.scope.valid_until - chrono::Duration::seconds(1), zone)
                },
                by_staff: matches!(g.made_by, salus_domain::consent::GrantMaker::Staff(_)),
            }
        })
        .collect();
    let (kinds, labels) = choices(&typed);
    let acts = act_choices(&typed);
    with_status(
        render(&SharingPage {
            csrf: &csrf.0,
            notice,
            problems,
            grants: rows,
            typed,
            kinds,
            labels,
            acts,
        }),
        code,
    )
}

/// The form's checkboxes, ticked as typed.
/// What a patient may let someone do for them beyond viewing, in words.
pub(crate) fn act_label(a: Action) -> &'static str {
    match a {
        Action::Message => "Message your care team",
        Action::Book => "Book appointments",
        Action::RequestRefill => "Request medication refills",
        Action::PayBills => "Pay your bills",
        _ => "",
    }
}

/// The checkboxes of what they may do for the patient, ticked as typed.
pub(crate) fn act_choices(typed: &Typed) -> Vec<Choice> {
    salus_domain::consent::GRANTABLE_ACTIONS
        .iter()
        .filter(|a| a.acts_for_patient())
        .map(|a| Choice {
            code: a.code(),
            label: act_label(*a),
            checked: typed.acts.iter().any(|c| c == a.code()),
        })
        .collect()
}

pub(crate) fn choices(typed: &Typed) -> (Vec<Choice>, Vec<Choice>) {
    let kinds = RecordKind::ALL
        .iter()
        .map(|k| Choice {
            code: k.code(),
            label: k.label(),
            checked: typed.kinds.iter().any(|c| c == k.code()),
        })
        .collect();
    let labels = SensitivityLabel::ALL
        .iter()
        .map(|l| Choice {
            code: l.code(),
            label: explain(*l),
            checked: typed.labels.iter().any(|c| c == l.code()),
        })
        .collect();
    (kinds, labels)
}

impl Typed {
    /// The form's fields as sent.
    pub(crate) fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut t = Self::default();
        for (name, v) in fields {
            match name.as_str() {
                "email" => t.email = v,
                "relationship" => t.relationship = v,
                "note" => t.note = v,
                "until" => t.until = v,
                "kind" => t.kinds.push(v),
                "label" => t.labels.push(v),
                "download" => t.download = v == "yes",
                "act" => t.acts.push(v),
                _ => {}
            }
        }
        t
    }

    /// The scope the form asks for.
    pub(crate) fn scope(&self) -> Result<ScopeChoice, ScopeError> {
        let download: &[&str] = if self.download {
            &["read", "export"]
        } else {
            &["read"]
        };
        let actions = download
            .iter()
            .copied()
            .chain(self.acts.iter().map(String::as_str));
        ScopeChoice::from_codes(
            self.kinds.iter().map(String::as_str),
            actions,
            self.labels.iter().map(String::as_str),
            Some(self.until.as_str()),
        )
    }
}

#[derive(Deserialize)]
pub(crate) struct SharingQuery {
    done: Option<String>,
}

#[handler]
pub(crate) async fn sharing(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Myself(acting): Myself,
    Query(q): Query<SharingQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("invited") => Some("Invitation sent. They see your records once they accept it."),
        Some("revoked") => Some("Revoked: they can no longer see your records."),
        Some("changed") => Some("Changed: it counts from their next page."),
        _ => None,
    };
    page(
        &state,
        csrf,
        &acting,
        notice,
        Problems::default(),
        Typed::default(),
        StatusCode::OK,
    )
    .await
}

/// The field of the form a refusal is about.
pub(crate) fn field(e: ScopeError) -> &'static str {
    match e {
        ScopeError::NoKinds | ScopeError::Kind => "kinds",
        ScopeError::Action => "download",
        ScopeError::Label => "labels",
        ScopeError::Until => "until",
        ScopeError::Email => "email",
        ScopeError::Text => "relationship",
        ScopeError::Hours => "hours",
        ScopeError::Passcode => "passcode",
    }
}

#[handler]
pub(crate) async fn invite(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Myself(acting): Myself,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let t = Typed::from_fields(fields);
    let invitation = t
        .scope()
        .and_then(|scope| ProxyInvitation::from_fields(&t.email, scope, &t.relationship, &t.note));
    let refused = |e: ScopeError, t: Typed| {
        let problems = Problems::one(field(e), e.to_string());
        page(
            &state,
            csrf,
            &acting,
            None,
            problems,
            t,
            StatusCode::BAD_REQUEST,
        )
    };
    let inv = match invitation {
        Ok(i) => i,
        Err(e) => return refused(e, t).await,
    };
    match state
        .consent
        .invite_proxy(&acting.actor, inv, rid.get())
        .await
    {
        Ok(_) => see_other("/account/sharing?done=invited"),
        Err(ConsentError::Input(e)) => refused(e, t).await,
        Err(ConsentError::Repo(e)) => crate::unavailable("invitation failed", &e),
        Err(_) => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "Only a patient decides who may see their own records.",
        ),
    }
}

#[handler]
pub(crate) async fn revoke(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    Myself(acting): Myself,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    let missing = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such permission, or it has already ended.",
        )
    };
    let Ok(id) = salus_domain::GrantId::parse(&id) else {
        return missing();
    };
    match state.consent.revoke(&acting.actor, id, rid.get()).await {
        Ok(()) => see_other("/account/sharing?done=revoked"),
        Err(ConsentError::Repo(e)) => crate::unavailable("revocation failed", &e),
        Err(_) => missing(),
    }
}

#[derive(Template)]
#[template(path = "grant_accept.html")]
struct AcceptPage<'a> {
    csrf: &'a str,
    token: &'a str,
    message: Option<&'a str>,
}

/// Opening the invitation shows a button (a mail scanner fetching the link uses nothing up);
/// it asks the person to sign in first.
#[handler]
pub(crate) fn accept_form(csrf: &CsrfToken, link: LinkToken) -> Response {
    render(&AcceptPage {
        csrf: &csrf.0,
        token: &link.0,
        message: None,
    })
}

#[derive(Deserialize)]
pub(crate) struct AcceptForm {
    token: String,
}

impl Refill for AcceptForm {}

#[handler]
pub(crate) async fn accept(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    me: SignedIn,
    CheckedForm(f): CheckedForm<AcceptForm>,
) -> Response {
    let again = |m: &str, code| {
        with_status(
            render(&AcceptPage {
                csrf: &csrf.0,
                token: &f.token,
                message: Some(m),
            }),
            code,
        )
    };
    match state
        .consent
        .accept(&me.account, &SecretText::new(f.token.trim()), rid.get())
        .await
    {
        Ok(_) => render(&MessagePage {
            title: "Invitation accepted",
            message: "You may now open the records you were given access to, for as long as the permission lasts. The patient can change or end it at any time.",
            next: Some(("/account", "Go to your home page")),
        }),
        Err(e @ AcceptError::InvalidOrExpired) => again(&e.to_string(), StatusCode::BAD_REQUEST),
        Err(e @ AcceptError::WrongAccount) => again(&e.to_string(), StatusCode::FORBIDDEN),
        Err(AcceptError::Repo(e)) => crate::unavailable("acceptance failed", &e),
    }
}

#[derive(Template)]
#[template(path = "sharing_edit.html")]
struct EditPage<'a> {
    csrf: &'a str,
    id: String,
    who: String,
    problems: Problems,
    typed: Typed,
    kinds: Vec<Choice>,
    labels: Vec<Choice>,
    acts: Vec<Choice>,
}

/// The patient's live grant `id` with the words for who it is for.
async fn live_grant(
    state: &WebState,
    acting: &Acting,
    id: &str,
) -> Result<(salus_domain::consent::Grant, String), Response> {
    let missing = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such permission, or it has already ended.",
        )
    };
    let id = salus_domain::GrantId::parse(id).map_err(|_| missing())?;
    let grants = match state.consent.grants(&acting.actor).await {
        Ok(g) => g,
        Err(ConsentError::Repo(e)) => return Err(crate::unavailable("grants failed", &e)),
        Err(_) => return Err(missing()),
    };
    let v = grants
        .into_iter()
        .find(|v| {
            v.grant.id == id
                && matches!(
                    v.state,
                    GrantState::Pending { .. } | GrantState::Active { .. }
                )
        })
        .ok_or_else(missing)?;
    let who = match &v.grant.grantee {
        Grantee::Proxy { email, .. } => email.as_str().to_owned(),
        // A guardianship is the clinic's, a share link is made anew: neither is edited.
        Grantee::Guardian { .. } | Grantee::ShareLink { .. } => return Err(missing()),
    };
    Ok((v.grant, who))
}

/// Opens the change form of a grant, filled in with what it allows now.
#[handler]
pub(crate) async fn edit_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Myself(acting): Myself,
    Path(id): Path<String>,
) -> Response {
    let (grant, who) = match live_grant(&state, &acting, &id).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let zone = match crate::records::zone_of(&state, &acting.signed_in.account).await {
        Ok(z) => z,
        Err(r) => return r,
    };
    let typed = Typed {
        kinds: grant
            .scope
            .kinds
            .iter()
            .map(|k| k.code().to_owned())
            .collect(),
        labels: grant
            .scope
            .labels
            .iter()
            .map(|l| l.code().to_owned())
            .collect(),
        download: grant.scope.actions.contains(&Action::Export),
        acts: grant
            .scope
            .actions
            .iter()
            .filter(|a| a.acts_for_patient())
            .map(|a| a.code().to_owned())
            .collect(),
        until: (grant.scope.valid_until - chrono::Duration::seconds(1))
            .with_timezone(&zone)
            .date_naive()
            .to_string(),
        ..Typed::default()
    };
    let (kinds, labels) = choices(&typed);
    let acts = act_choices(&typed);
    render(&EditPage {
        csrf: &csrf.0,
        id: grant.id.to_string(),
        who,
        problems: Problems::default(),
        typed,
        kinds,
        labels,
        acts,
    })
}

/// Saves a change of what a grant allows; it counts from the grantee's next request.
#[handler]
pub(crate) async fn edit(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Myself(acting): Myself,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let (grant, who) = match live_grant(&state, &acting, &id).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let typed = Typed::from_fields(fields);
    let refused = |e: ScopeError, typed: Typed| {
        let (kinds, labels) = choices(&typed);
        let acts = act_choices(&typed);
        with_status(
            render(&EditPage {
                csrf: &csrf.0,
                id: grant.id.to_string(),
                who: who.clone(),
                problems: Problems::one(field(e), e.to_string()),
                typed,
                kinds,
                labels,
                acts,
            }),
            StatusCode::BAD_REQUEST,
        )
    };
    let choice = match typed.scope() {
        Ok(c) => c,
        Err(e) => return refused(e, typed),
    };
    match state
        .consent
        .change_scope(&acting.actor, grant.id, &choice, rid.get())
        .await
    {
        Ok(_) => see_other("/account/sharing?done=changed"),
        Err(ConsentError::Input(e)) => refused(e, typed),
        Err(ConsentError::Repo(e)) => crate::unavailable("grant change failed", &e),
        Err(_) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such permission, or it has already ended.",
        ),
    }
}

/// The share-link form as typed (never the passcode: it is not shown again).
#[derive(Default, Clone)]
struct LinkTyped {
    kinds: Vec<String>,
    hours: String,
    recipient: String,
}

#[derive(Template)]
#[template(path = "share_made.html")]
struct LinkMadePage {
    url: String,
    recipient: Option<String>,
    until: String,
    has_passcode: bool,
}

/// Patient: makes a share link and shows it once.
#[handler]
pub(crate) async fn make_link(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    Myself(acting): Myself,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let mut t = LinkTyped::default();
    let mut passcode = String::new();
    for (name, v) in fields {
        match name.as_str() {
            "link_kind" => t.kinds.push(v),
            "hours" => t.hours = v,
            "recipient" => t.recipient = v,
            "passcode" => passcode = v,
            _ => {}
        }
    }
    let refused = |e: ScopeError| {
        let problems = Problems::one(
            match e {
                ScopeError::NoKinds | ScopeError::Kind => "link_kinds",
                ScopeError::Hours => "hours",
                ScopeError::Passcode => "passcode",
                _ => "recipient",
            },
            e.to_string(),
        );
        page(
            &state,
            csrf,
            &acting,
            None,
            problems,
            Typed::default(),
            StatusCode::BAD_REQUEST,
        )
    };
    let request = match salus_domain::consent::LinkRequest::from_fields(
        t.kinds.iter().map(String::as_str),
        Some(t.hours.as_str()),
        &passcode,
        &t.recipient,
    ) {
        Ok(r) => r,
        Err(e) => return refused(e).await,
    };
    let has_passcode = request.passcode.is_some();
    match state
        .consent
        .create_share_link(&acting.actor, request, rid.get())
        .await
    {
        Ok(made) => {
            let zone = match crate::records::zone_of(&state, &acting.signed_in.account).await {
                Ok(z) => z,
                Err(r) => return r,
            };
            let recipient = match &made.grant.grantee {
                Grantee::ShareLink { recipient, .. } => {
                    recipient.as_ref().map(|r| r.as_str().to_owned())
                }
                Grantee::Proxy { .. } | Grantee::Guardian { .. } => None,
            };
            render(&LinkMadePage {
                url: made.url,
                recipient,
                until: when::moment(made.grant.scope.valid_until, zone),
                has_passcode,
            })
        }
        Err(ConsentError::Input(e)) => refused(e).await,
        Err(ConsentError::Busy { .. }) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too busy right now. Nothing was made. Please try again in a few seconds.",
        ),
        Err(ConsentError::Repo(e)) => crate::unavailable("share link failed", &e),
        Err(_) => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "Only a patient shares their own records.",
        ),
    }
}
