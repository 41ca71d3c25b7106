//! Staff administration pages: the organisation administrator's team page (list and invite),
//! and the invitation page where a new colleague chooses a password and sets up their
//! authenticator app.

use crate::account::{busy, with_status};
use crate::link::LinkToken;
use crate::security::qr_svg;
use crate::session::{CheckedForm, Refill, StaffMember};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data};
use poem::{Response, handler};
use salus_domain::access::Actor;
use salus_domain::account::{
    HashError, InviteError, ListStaffError, SecretText, StaffInvite, StaffRole, StaffSetupError,
};
use serde::Deserialize;
use std::sync::Arc;

/// Roles as the invitation form offers them, in plain words.
const ROLES: [(StaffRole, &str); 4] = [
    (StaffRole::Clinician, "Clinician"),
    (StaffRole::FrontDesk, "Front desk"),
    (StaffRole::Billing, "Billing"),
    (StaffRole::OrganizationAdmin, "Organisation administrator"),
];

fn role_label(role: StaffRole) -> &'static str {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map_or("Staff", |(_, label)| label)
}

struct MemberRow {
    name: String,
    email: String,
    role: &'static str,
    active: bool,
}

struct RoleOption {
    code: &'static str,
    label: &'static str,
}

/// What the invitation form shows again after a mistake.
#[derive(Default)]
struct InviteDraft {
    email: String,
    given_name: String,
    family_name: String,
    role: String,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage<'a> {
    csrf: &'a str,
    notice: Option<String>,
    message: Option<&'a str>,
    members: Vec<MemberRow>,
    roles: Vec<RoleOption>,
    draft: InviteDraft,
    /// The guardian policy's labels, ticked when hidden from guardians of 12–17-year-olds.
    hidden: Vec<crate::sharing::Choice>,
}

async fn team_page(
    state: &WebState,
    csrf: &CsrfToken,
    actor: &Actor,
    notice: Option<String>,
    message: Option<&str>,
    draft: InviteDraft,
    status: StatusCode,
) -> Response {
    let members = match state.auth.staff_members(actor).await {
        Ok(m) => m,
        Err(ListStaffError::Forbidden) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Not available",
                "This page is for organisation administrators.",
            );
        }
        Err(e) => return crate::unavailable("team page failed", &e),
    };
    let policy = match state.consent.guardian_policy(actor).await {
        Ok(p) => p,
        Err(salus_domain::consent::GuardianError::Repo(e)) => {
            return crate::unavailable("guardian policy failed", &e);
        }
        Err(_) => salus_domain::organization::GuardianPolicy::default(),
    };
    let page = TeamPage {
        hidden: salus_domain::record::SensitivityLabel::ALL
            .iter()
            .map(|l| crate::sharing::Choice {
                code: l.code(),
                label: crate::sharing::explain(*l),
                checked: policy.hidden_from_teens.contains(*l),
            })
            .collect(),
        csrf: &csrf.0,
        notice,
        message,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                name: m.name.full(),
                email: m.email.as_str().to_owned(),
                role: role_label(m.role),
                active: m.active,
            })
            .collect(),
        roles: ROLES
            .iter()
            .map(|(r, label)| RoleOption {
                code: r.code(),
                label,
            })
            .collect(),
        draft,
    };
    with_status(render(&page), status)
}

#[handler]
pub(crate) async fn team(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
) -> Response {
    team_page(
        &state,
        csrf,
        &me.actor,
        None,
        None,
        InviteDraft::default(),
        StatusCode::OK,
    )
    .await
}

impl Refill for InviteForm {}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    email: String,
    given_name: String,
    family_name: String,
    role: String,
}

#[handler]
pub(crate) async fn invite(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(f): CheckedForm<InviteForm>,
) -> Response {
    let draft = InviteDraft {
        email: f.email.clone(),
        given_name: f.given_name.clone(),
        family_name: f.family_name.clone(),
        role: f.role.clone(),
    };
    let refuse = |message: String, status: StatusCode, draft: InviteDraft| {
        let (state, actor) = (&state, &me.actor);
        async move { team_page(state, csrf, actor, None, Some(&message), draft, status).await }
    };
    let Some(role) = StaffRole::from_code(&f.role) else {
        return refuse("Choose a role.".into(), StatusCode::BAD_REQUEST, draft).await;
    };
    let invite = match StaffInvite::from_fields(&f.email, &f.given_name, &f.family_name, role) {
        Ok(i) => i,
        Err(e) => return refuse(e.to_string(), StatusCode::BAD_REQUEST, draft).await,
    };
    let shown = invite.email.as_str().to_owned();
    match state.auth.invite_staff(&me.actor, invite, rid.get()).await {
        Ok(_) => {
            team_page(
                &state,
                csrf,
                &me.actor,
                Some(format!(
                    "An invitation is on its way to {shown}. The link works for {} days.",
                    salus_domain::account::INVITE_TTL_DAYS
                )),
                None,
                InviteDraft::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(InviteError::Forbidden) => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is for organisation administrators.",
        ),
        Err(InviteError::EmailTaken) => {
            refuse(
                InviteError::EmailTaken.to_string(),
                StatusCode::CONFLICT,
                draft,
            )
            .await
        }
        Err(InviteError::Busy(HashError::Busy { .. })) => busy(),
        Err(e) => crate::unavailable("invitation failed", &e),
    }
}

#[derive(Template)]
#[template(path = "staff_setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    message: Option<String>,
    token: &'a str,
    name: String,
    given_name: String,
    family_name: String,
    email: String,
    role: &'static str,
    qr_svg: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "staff_ready.html")]
struct ReadyPage {
    codes: Vec<String>,
}

fn invalid_link() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This invitation does not work",
        "The link is invalid, already used or expired. Ask your administrator to invite you again.",
    )
}

/// The setup form for a working link (the authenticator secret is the same on every visit).
async fn setup_page(
    state: &WebState,
    csrf: &CsrfToken,
    token: &str,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    match state
        .auth
        .begin_staff_setup(&SecretText::new(token.trim()))
        .await
    {
        Ok(s) => with_status(
            render(&SetupPage {
                csrf: &csrf.0,
                message,
                token,
                name: s.name.full(),
                given_name: s.name.given().to_owned(),
                family_name: s.name.family().to_owned(),
                email: s.email.as_str().to_owned(),
                role: role_label(s.role),
                qr_svg: qr_svg(&s.totp.provisioning_uri),
                secret: s.totp.secret_base32,
            }),
            status,
        ),
        Err(StaffSetupError::Repo(e)) => crate::unavailable("invitation page failed", &e),
        Err(_) => invalid_link(),
    }
}

#[handler]
pub(crate) async fn setup_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    link: LinkToken,
) -> Response {
    if link.0.is_empty() {
        return invalid_link();
    }
    setup_page(&state, csrf, &link.0, None, StatusCode::OK).await
}

impl Refill for SetupForm {}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    token: String,
    password: String,
    code: String,
}

#[handler]
pub(crate) async fn setup(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    CheckedForm(f): CheckedForm<SetupForm>,
) -> Response {
    let again = |message: String, status| {
        let (state, token) = (&state, &f.token);
        async move { setup_page(state, csrf, token, Some(message), status).await }
    };
    match state
        .auth
        .complete_staff_setup(
            &SecretText::new(f.token.trim()),
            SecretText::new(f.password.clone()),
            f.code.trim(),
            rid.get(),
        )
        .await
    {
        Ok(codes) => render(&ReadyPage {
            codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        }),
        Err(StaffSetupError::InvalidOrExpired) => invalid_link(),
        Err(StaffSetupError::Password(r)) => {
            again(
                r.sentence(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(StaffSetupError::WrongCode) => {
            again(
                "The code from your authenticator app is not correct. Check the time on your phone and enter the code it shows now.".into(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(StaffSetupError::Busy(HashError::Busy { .. })) => busy(),
        Err(e) => crate::unavailable("staff setup failed", &e),
    }
}

/// Administrator: what guardians of the organisation's 12–17-year-olds do not see.
#[handler]
pub(crate) async fn guardian_policy(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    use salus_domain::record::{SensitivityLabel, SensitivityLabels};
    let hidden = fields
        .iter()
        .filter(|(name, _)| name == "hidden")
        .try_fold(SensitivityLabels::empty(), |acc, (_, code)| {
            SensitivityLabel::from_code(code).map(|l| acc.with(l))
        });
    let Some(hidden) = hidden else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Not saved",
            "Choose from the kinds of information listed on the page.",
        );
    };
    let policy = salus_domain::organization::GuardianPolicy {
        hidden_from_teens: hidden,
    };
    match state
        .consent
        .set_guardian_policy(&me.actor, policy, rid.get())
        .await
    {
        Ok(()) => {
            team_page(
                &state,
                csrf,
                &me.actor,
                Some("Guardian policy saved. It counts from each guardian's next page.".into()),
                None,
                InviteDraft::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(salus_domain::consent::GuardianError::Repo(e)) => {
            crate::unavailable("guardian policy failed", &e)
        }
        Err(_) => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "Only the organisation's administrators change this.",
        ),
    }
}
